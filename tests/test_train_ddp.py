"""``torchrun --nproc_per_node=2 -m neuralzip train``: two CPU processes (gloo) for a few
seconds, then a resumed run."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("this torch build has no torch.distributed", allow_module_level=True)

from neuralzip.core.codec import Codec  # noqa: E402
from neuralzip.core.intmodel import IntegerModel  # noqa: E402
from neuralzip.zoo import ZooModel  # noqa: E402


def _torchrun(*args, cwd):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "neuralzip", "train", *map(str, args)]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240)


@pytest.fixture
def crops(tmp_path, sample):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):
        r, c = divmod(i, 4)
        Image.fromarray(sample[r * 50 : r * 50 + 48, c * 60 : c * 60 + 56]).save(folder / f"crop{i:02d}.png")
    return [folder, "--out", tmp_path / "m.npz", "--hidden", "16", "--components", "2", "--threads", "1"]


def _two_processes(args, tmp_path) -> dict:
    """Train with 2 processes for a few seconds; check the output and return the report."""
    run = _torchrun(*args, "--minutes", "0.04", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("wrote ") == 1  # rank 0 alone reports
    assert "2 processes on cpu" in run.stdout
    out = tmp_path / "m.npz"
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["processes"] == 2 and report["steps"] > 0 and report["pixels_per_s"] > 0
    first, second = report["rank_weights_sha256"]
    assert first == second  # gradients averaged, the same steps: the same weights bit for bit
    return report


def test_two_processes_train_identical_weights_and_export(tmp_path, crops, sample):
    report = _two_processes(crops, tmp_path)
    out = tmp_path / "m.npz"
    codec = Codec(ZooModel("photo", "00" * 32, IntegerModel.load(out)))  # the export loads and codes
    image = sample[:24, :30]
    assert np.array_equal(codec.decode(codec.encode(image)[0]), image)
    assert torch.load(out.with_suffix(".ckpt"), weights_only=False)["step"] == report["steps"]


@pytest.mark.slow
def test_two_processes_resume(tmp_path, crops):
    report = _two_processes(crops, tmp_path)
    resumed = _torchrun(*crops, "--minutes", "0.08", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed at step {report['steps']}" in resumed.stdout
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["steps"] > report["steps"] and len(set(again["rank_weights_sha256"])) == 1
    assert again["curve"][: len(report["curve"])] == report["curve"]
    first, second = again["stretches"]  # one record per run, each starting where the last ended
    assert first == report["stretches"][0] and second["from_step"] == first["to_step"] == report["steps"]
    assert second["val_before"] == first["val_after"] and second["processes"] == 2
