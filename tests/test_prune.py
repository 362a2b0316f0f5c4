"""Pruning hidden units that no pixel activates (``training/prune.py``): the pruned model
computes the same integers wherever those units are 0, and shipped pruned weights are
exactly their source without the units their manifest entry lists."""

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from reference import mlp_outputs

from neuralzip import zoo
from neuralzip.core.intmodel import IntegerModel
from neuralzip.core.terms import analyse
from neuralzip.images import read_rgb
from neuralzip.training.prune import activity, hidden_activations, main, without_units

URBAN = Path(__file__).parent / "data" / "urban_crop.png"
PRUNED = [(n, e) for n in zoo.available() for e in zoo.versions(n) if "pruned_from" in e]


def _features(model: IntegerModel) -> np.ndarray:
    image = read_rgb(str(URBAN))
    return analyse(image, model.default_coefs, model.context).features


def _with_dead_unit(model: IntegerModel, layer: int, unit: int) -> IntegerModel:
    """``model`` with hidden unit ``unit`` of ``layer`` given no input weights and a negative
    bias: 0 on every pixel, while its weights into the next layer stay."""
    mlp = model.mlp
    weights, biases = list(mlp.weights), list(mlp.biases)
    weights[layer] = weights[layer].copy()
    weights[layer][:, unit] = 0
    biases[layer] = biases[layer].copy()
    biases[layer][unit] = -1000
    return replace(model, mlp=replace(mlp, weights=weights, biases=biases))


def test_hidden_activations_are_the_reference_integers():
    model = zoo.load("photo-fast").model
    features = _features(model)
    hidden = hidden_activations(model, features)
    mlp = model.mlp
    last = replace(mlp, weights=[mlp.weights[-1]], biases=[mlp.biases[-1]], fracs=[mlp.fracs[-1]])
    np.testing.assert_array_equal(mlp_outputs(last, hidden[-1]), mlp_outputs(mlp, features))


@pytest.mark.parametrize("layer", [0, 1])
def test_a_unit_no_pixel_activates_is_found_and_dropped_without_changing_outputs(layer):
    model = _with_dead_unit(zoo.load("photo-fast").model, layer, 5)
    features = _features(model)
    dead = activity(model, features).dead()
    assert 5 in dead[layer]
    pruned = without_units(model, dead)
    assert pruned.mlp.weights[layer].shape[1] == model.mlp.weights[layer].shape[1] - len(dead[layer])
    np.testing.assert_array_equal(mlp_outputs(pruned.mlp, features), mlp_outputs(model.mlp, features))


def test_dropping_a_live_unit_changes_outputs():
    model = zoo.load("photo-fast").model
    features = _features(model)
    live = np.flatnonzero(activity(model, features).counts[1])
    pruned = without_units(model, [np.array([], np.int64), live[:1]])
    assert not np.array_equal(mlp_outputs(pruned.mlp, features), mlp_outputs(model.mlp, features))


def test_without_units_refuses_to_empty_a_layer():
    model = zoo.load("photo-fast").model
    with pytest.raises(ValueError, match="keep no unit"):
        without_units(model, [np.array([], np.int64), np.arange(len(model.mlp.biases[1]))])


def test_prune_command_writes_the_model_and_its_report(tmp_path):
    import json

    source = tmp_path / "source.npz"
    np.savez(source, **_with_dead_unit(zoo.load("photo-fast").model, 1, 7).arrays())
    folder = tmp_path / "train"
    folder.mkdir()
    for i in range(3):
        (folder / f"crop{i}.png").write_bytes(URBAN.read_bytes())
    main([str(source), str(tmp_path / "out.npz"), str(folder), "--keep", "0.5", "--jobs", "1"])
    report = json.loads((tmp_path / "out.json").read_text())
    assert 7 in report["units_dropped"][1]
    assert report["pruned_from"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert IntegerModel.load(tmp_path / "out.npz").mlp.weights[1].shape[1] == 64 - len(report["units_dropped"][1])


@pytest.mark.parametrize("name,entry", PRUNED, ids=lambda x: x if isinstance(x, str) else x["sha256"][:8])
def test_shipped_pruned_weights_are_their_source_without_the_listed_units(name, entry, tmp_path):
    source = next(e for e in zoo.versions(name) if e["sha256"] == entry["pruned_from"])  # a shipped version
    model = IntegerModel.load(zoo.weights_dir() / source["file"])
    pruned = without_units(model, [np.array(units, np.int64) for units in entry["units_dropped"]])
    np.savez(tmp_path / "p.npz", **pruned.arrays())
    assert hashlib.sha256((tmp_path / "p.npz").read_bytes()).hexdigest() == entry["sha256"]
