from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def codec():
    from neuralzip.core.codec import Codec

    return Codec.named("photo")


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    """The repository's sample photograph (BSDS500 validation image, 240x160)."""
    return np.asarray(Image.open(ROOT / "samples" / "sample.png").convert("RGB"))


@pytest.fixture(scope="session")
def urban_crop() -> np.ndarray:
    """A 96x64 crop of an Urban100 validation photo."""
    return np.asarray(Image.open(ROOT / "tests" / "data" / "urban_crop.png").convert("RGB"))
