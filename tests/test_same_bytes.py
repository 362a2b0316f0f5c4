"""Same input, version and options: the same bytes, on any machine. The encoder's every
choice (LS coefficients, the per-image adaptation, packing) is made in arithmetic of a
fixed order, so neither the BLAS nor its thread count, the kernel's thread count, the
instruction-set path (NEURALZIP_ISA) nor a batch run (-j) changes a byte; the committed
encode goldens (tests/golden, current entries) pin the bytes themselves."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip.cli import main
from neuralzip.core import _kernel

HERE = Path(__file__).resolve().parent
MANIFEST = json.loads((HERE / "golden" / "golden.json").read_text())
CURRENT = {entry["source"]: entry["nz_md5"] for entry in MANIFEST.values() if not entry["frozen"]}

ENCODE_ALL = """
import hashlib, json, sys
sys.path.insert(0, {golden!r})
from regenerate import METADATA, golden_codec, golden_images
out = {{}}
for source, (model, image) in golden_images().items():
    data = golden_codec(model).encode(image, metadata=METADATA.get(source))[0]
    out[source] = hashlib.md5(data).hexdigest()
print(json.dumps(out))
"""

ONE_THREAD = {"NEURALZIP_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
SETTINGS = {
    "one thread everywhere": ONE_THREAD,
    "two kernel threads, BLAS unlimited": {"NEURALZIP_THREADS": "2"},
    **{f"NEURALZIP_ISA={path}": {"NEURALZIP_ISA": path, "NEURALZIP_THREADS": "3"} for path in _kernel.ISA_PATHS},
}


@pytest.mark.parametrize("setting", sorted(SETTINGS))
def test_encoding_gives_the_golden_bytes_in_every_setting(setting):
    env = {k: v for k, v in os.environ.items() if k not in ONE_THREAD and k != "NEURALZIP_ISA"}
    env.update(SETTINGS[setting])
    script = ENCODE_ALL.format(golden=str(HERE / "golden"))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == CURRENT


def test_a_batch_run_gives_the_bytes_of_single_runs(tmp_path, sample, urban_crop):
    import numpy as np

    noisy = np.clip(sample.astype(int) + np.random.default_rng(1).integers(-5, 6, sample.shape), 0, 255)
    paths = []
    for name, image in (("noisy", noisy.astype(np.uint8)), ("urban", urban_crop)):
        Image.fromarray(image).save(tmp_path / f"{name}.png")
        paths.append(str(tmp_path / f"{name}.png"))
    single, batch = tmp_path / "single", tmp_path / "batch"
    for path in paths:
        result = CliRunner().invoke(main, ["compress", path, "--out-dir", str(single), "-q"])
        assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["compress", "-j", "2", *paths, "--out-dir", str(batch), "-q"])
    assert result.exit_code == 0, result.output
    for name in ("noisy.nz", "urban.nz"):
        one, other = (single / name).read_bytes(), (batch / name).read_bytes()
        assert hashlib.md5(one).digest() == hashlib.md5(other).digest()
