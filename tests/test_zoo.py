"""Shipped weights: every manifest entry, current or retired, loads, matches its sha256 and
says how it was made; files name the version that made them."""

import pytest

from neuralzip import zoo

VERSIONS = [(name, entry) for name in zoo.available() for entry in zoo.versions(name)]


@pytest.mark.parametrize("name,entry", VERSIONS, ids=[f"{n}-{e['sha256'][:8]}" for n, e in VERSIONS])
def test_manifest_entry_is_complete_and_loads(name, entry):
    for key in ("file", "sha256", "command", "architecture", "steps", "wall_s", "curve", "validation"):
        assert key in entry, key
    assert (zoo.weights_dir() / entry["file"]).stat().st_size <= 20 * 2**20
    assert entry["curve"][-1]["val_bpsp"] < entry["curve"][0]["val_bpsp"]  # really trained
    assert zoo.load(name, bytes.fromhex(entry["sha256"][:8])).sha256 == entry["sha256"]


def test_current_version_comes_first():
    for name in zoo.available():
        assert zoo.load(name).sha256 == zoo.versions(name)[0]["sha256"]


def test_weights_folder_stays_small():
    assert sum(p.stat().st_size for p in zoo.weights_dir().glob("*.npz")) <= 20 * 2**20


def test_unknown_model_and_unknown_weights_are_named():
    with pytest.raises(zoo.ModelNotFound, match="unknown model 'nope'.*photo"):
        zoo.load("nope")
    with pytest.raises(zoo.ModelNotFound, match="weights 00000000 of model 'photo' are not installed"):
        zoo.load("photo", bytes(4))


def test_every_registered_model_is_installed():
    """Version-4 files name models by number: each number's weights must stay installed."""
    from neuralzip.core.container import REGISTERED_MODELS

    for name, tag in REGISTERED_MODELS.values():
        assert zoo.load(name, tag).tag == tag
