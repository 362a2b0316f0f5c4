"""Shipped weights: every manifest entry, current or retired, loads, matches its sha256 and
says how it was made; files name the version that made them."""

import pytest

from neuralzip import zoo

VERSIONS = [(name, entry) for name in zoo.available() for entry in zoo.versions(name)]


def _trained(name: str, entry: dict) -> dict:
    """The entry that says how the weights were trained: the entry itself, or for weights
    quantized from others (``training/quantize.py``) the installed entry of those."""
    if "quantized_from" not in entry:
        return entry
    return next(e for e in zoo.versions(name) if e["sha256"] == entry["quantized_from"])


@pytest.mark.parametrize("name,entry", VERSIONS, ids=[f"{n}-{e['sha256'][:8]}" for n, e in VERSIONS])
def test_manifest_entry_is_complete_and_loads(name, entry):
    trained = _trained(name, entry)
    for key in ("file", "sha256", "command", "architecture", "steps", "wall_s", "validation"):
        assert key in entry, key
    assert (zoo.weights_dir() / entry["file"]).stat().st_size <= 20 * 2**20
    assert trained["curve"][-1]["val_bpsp"] < trained["curve"][0]["val_bpsp"]  # really trained
    assert trained["architecture"]["hidden"] == entry["architecture"]["hidden"]
    assert zoo.load(name, bytes.fromhex(entry["sha256"][:8])).sha256 == entry["sha256"]


@pytest.mark.parametrize("name,entry", [(n, e) for n, e in VERSIONS if "quantized_from" in e],
                         ids=lambda x: x if isinstance(x, str) else x["sha256"][:8])
def test_quantized_weights_are_reproduced_from_their_source(name, entry, tmp_path):
    from neuralzip.training.quantize import main

    source = zoo.weights_dir() / _trained(name, entry)["file"]
    main([str(source), str(tmp_path / "q.npz")])
    import hashlib

    assert hashlib.sha256((tmp_path / "q.npz").read_bytes()).hexdigest() == entry["sha256"]


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
