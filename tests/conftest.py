from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def codec():
    """The ``photo`` model's codec at the default effort's search (the default effort
    itself codes photos with ``photo-wide``: tests/test_effort.py)."""
    from neuralzip import zoo
    from neuralzip.core.codec import Codec

    return Codec(zoo.load("photo"))


def _photo_of_context(context: int):
    """A ``photo`` ZooModel whose inputs are those of ``context``: a shipped version if one
    is, else the current weights grown into it with small random integer weights on the
    new inputs (so that they matter)."""
    from dataclasses import replace

    from neuralzip import zoo
    from neuralzip.core.units import n_features

    for entry in zoo.versions("photo"):
        shipped = zoo.load("photo", bytes.fromhex(entry["sha256"][:8]))
        if shipped.model.context == context:
            return shipped
    current = zoo.load("photo")
    model = current.model
    w0 = model.mlp.weights[0]
    rng = np.random.default_rng(context)
    extra = rng.integers(-(1 << 12), 1 << 12, (n_features(context) - w0.shape[0], w0.shape[1])).astype(np.float64)
    mlp = replace(model.mlp, weights=[np.vstack([w0, extra]), *model.mlp.weights[1:]])
    return zoo.ZooModel("photo", current.sha256, replace(model, mlp=mlp, context=context))


def _int16_photo():
    """The current ``photo`` model in int16 arithmetic (``training.quantize.to_int16``) if it
    is not shipped in it already."""
    from dataclasses import replace

    from neuralzip import zoo
    from neuralzip.training.quantize import to_int16

    current = zoo.load("photo")
    if current.model.mlp.arithmetic == "int16":
        return current
    float64 = next(zoo.load("photo", bytes.fromhex(e["sha256"][:8])) for e in zoo.versions("photo")
                   if e.get("architecture", {}).get("context") == 2 and e.get("arithmetic", "float64") == "float64")
    return replace(float64, model=to_int16(float64.model))


def _int16_photo_of_context(context: int):
    """``_int16_photo`` with the inputs of ``context``: a smaller context keeps the first
    rows of layer 0 (each context's inputs start with the previous one's)."""
    from dataclasses import replace

    from neuralzip.core.units import n_features

    int16 = _int16_photo()
    model = int16.model
    if model.context == context:
        return int16
    mlp = replace(model.mlp, weights=[model.mlp.weights[0][: n_features(context)], *model.mlp.weights[1:]])
    return replace(int16, model=replace(model, mlp=mlp, context=context))


@pytest.fixture(scope="session", params=["context1", "context2", "context1-int16", "context2-int16"])
def context_codec(request):
    """Codecs of a ``photo`` model of each context (``_photo_of_context``) and arithmetic."""
    from neuralzip.core.codec import Codec

    context = int(request.param[len("context")])
    if request.param.endswith("-int16"):
        return Codec(_int16_photo_of_context(context))
    return Codec(_photo_of_context(context))


@pytest.fixture(scope="session")
def sample() -> np.ndarray:
    """The repository's sample photograph (BSDS500 validation image, 240x160)."""
    return np.asarray(Image.open(ROOT / "samples" / "sample.png").convert("RGB"))


@pytest.fixture(scope="session")
def urban_crop() -> np.ndarray:
    """A 96x64 crop of an Urban100 validation photo."""
    return np.asarray(Image.open(ROOT / "tests" / "data" / "urban_crop.png").convert("RGB"))
