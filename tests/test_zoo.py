"""Shipped weights: every manifest entry loads, matches its sha256 and says how it was made."""

import pytest

from neuralzip import zoo


@pytest.mark.parametrize("name", zoo.available())
def test_manifest_entry_is_complete_and_loads(name):
    entry = zoo.manifest()[name]
    for key in ("file", "sha256", "command", "architecture", "steps", "wall_s", "curve", "validation"):
        assert key in entry, key
    assert (zoo.weights_dir() / entry["file"]).stat().st_size <= 20 * 2**20
    assert entry["curve"][-1]["val_bpsp"] < entry["curve"][0]["val_bpsp"]  # really trained
    assert zoo.load(name).sha256 == entry["sha256"]


def test_unknown_model_is_named():
    with pytest.raises(zoo.ModelNotFound, match="unknown model 'nope'.*photo"):
        zoo.load("nope")
