"""Training pipeline end to end on a few small images: data, fit, export, codec."""

import json

import numpy as np
import pytest
from PIL import Image

from neuralzip.codec import Codec
from neuralzip.intmodel import IntegerModel
from neuralzip.train import split, train_main
from neuralzip.zoo import ZooModel

torch = pytest.importorskip("torch")


def test_split_is_deterministic_and_disjoint():
    names = [f"img_{i:03d}.png" for i in range(240)]
    train, val = split(names)
    assert split(names) == (train, val)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 240 and 5 < len(val) < 40


def test_training_lowers_nll_and_exports_an_exact_integer_model(tmp_path, sample):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):  # 12 crops of the sample photo; the hash split holds some out
        r, c = divmod(i, 4)
        Image.fromarray(sample[r * 50 : r * 50 + 48, c * 60 : c * 60 + 56]).save(folder / f"crop{i:02d}.png")
    out = tmp_path / "m.npz"
    report = train_main([str(folder)], out, minutes=0.15, hidden=(16,), components=2, keep=1.0, threads=1,
                        log=lambda *_: None)
    curve = report["curve"]
    assert curve[-1]["val_bpsp"] < curve[0]["val_bpsp"] - 0.05  # it learned something
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == curve[-1]["step"]
    codec = Codec(ZooModel("photo", "00" * 32, IntegerModel.load(out)))
    image = sample[:40, :40]
    data, stats = codec.encode(image)
    assert np.array_equal(codec.decode(data), image)
    assert abs(stats.nll_bpsp - stats.bpsp) < 0.5
