"""`neuralzip publish`: a trained model goes into a weights folder with a manifest entry
written from its training report, and the zoo then loads and codes with it."""

import json
import shutil

import numpy as np
from click.testing import CliRunner
from PIL import Image

from neuralzip import zoo
from neuralzip.cli import main

ROOT_WEIGHTS = zoo.weights_dir()


def test_publish_writes_the_manifest_entry_and_the_model_codes(tmp_path, sample, monkeypatch):
    npz = tmp_path / "run.npz"
    shutil.copy(zoo.weights_dir() / "photo.npz", npz)  # stands in for a trained export
    Image.fromarray(sample[:40, :48]).save(tmp_path / "val.png")
    npz.with_suffix(".json").write_text(json.dumps({"steps": 7, "val_images": [str(tmp_path / "val.png")]}))
    weights = tmp_path / "weights"
    result = CliRunner().invoke(main, ["publish", str(npz), "--name", "mine", "--command", "neuralzip train x",
                                       "--weights", str(weights)])
    assert result.exit_code == 0, result.output
    entry = json.loads((weights / "manifest.json").read_text())["mine"]
    assert entry["command"] == "neuralzip train x" and entry["steps"] == 7 and "val_images" not in entry
    assert entry["validation"]["images"] == 1 and 2 < entry["validation"]["bpsp"] < 5
    monkeypatch.setenv("NEURALZIP_WEIGHTS", str(weights))
    zoo.load.cache_clear()
    try:
        codec = zoo.codec("mine")
        image = sample[:40, :48]
        first = codec.encode(image)[0]
        assert np.array_equal(codec.decode(first), image)
        # a new version of "mine": the first one is retired, its file kept, and its files still decode
        shutil.copy(ROOT_WEIGHTS / "cifar10.npz", npz)
        result = CliRunner().invoke(main, ["publish", str(npz), "--name", "mine", "--command", "neuralzip train y",
                                           "--weights", str(weights)])
        assert result.exit_code == 0, result.output
        zoo.load.cache_clear()
        entry = json.loads((weights / "manifest.json").read_text())["mine"]
        assert entry["command"] == "neuralzip train y"
        assert [e["command"] for e in entry["retired"]] == ["neuralzip train x"]
        assert len(list(weights.glob("mine-*.npz"))) == 2
        assert zoo.codec("mine").zoo_model.tag != codec.zoo_model.tag
        assert np.array_equal(zoo.codec_for_file(first).decode(first), image)
    finally:
        zoo.load.cache_clear()


def test_publish_without_a_training_report_says_so(tmp_path):
    npz = tmp_path / "run.npz"
    npz.write_bytes(b"x")
    result = CliRunner().invoke(main, ["publish", str(npz), "--name", "m", "--command", "c"])
    assert result.exit_code == 1 and "no training report" in result.output
