"""Shipped weights: every manifest entry, current or retired, loads, matches its sha256 and
says how it was made; files name the version that made them."""

import pytest

from neuralzip import zoo

VERSIONS = [(name, entry) for name in zoo.available() for entry in zoo.versions(name)]


def _trained(name: str, entry: dict) -> dict:
    """The entry that says how the weights were trained: the entry itself, or for weights
    made from others (quantized by ``training/quantize.py``, pruned by ``training/prune.py``)
    that of the installed weights they were made from."""
    made_from = entry.get("quantized_from") or entry.get("pruned_from")
    if made_from is None:
        return entry
    return _trained(name, next(e for e in zoo.versions(name) + zoo.sources(name) if e["sha256"] == made_from))


@pytest.mark.parametrize("name,entry", VERSIONS, ids=[f"{n}-{e['sha256'][:8]}" for n, e in VERSIONS])
def test_manifest_entry_is_complete_and_loads(name, entry):
    trained = _trained(name, entry)
    for key in ("file", "sha256", "command", "architecture", "steps", "wall_s", "validation"):
        assert key in entry, key
    assert (zoo.weights_dir() / entry["file"]).stat().st_size <= 20 * 2**20
    assert trained["curve"][-1]["val_bpsp"] < trained["curve"][0]["val_bpsp"]  # really trained
    dropped = entry.get("units_dropped", [[] for _ in entry["architecture"]["hidden"]])  # pruned weights
    assert trained["architecture"]["hidden"] == [w + len(d) for w, d in zip(entry["architecture"]["hidden"], dropped)]
    assert zoo.load(name, bytes.fromhex(entry["sha256"][:8])).sha256 == entry["sha256"]


@pytest.mark.parametrize("name,entry", [(n, e) for n, e in VERSIONS if "quantized_from" in e],
                         ids=lambda x: x if isinstance(x, str) else x["sha256"][:8])
def test_quantized_weights_are_reproduced_from_their_source(name, entry, tmp_path):
    from neuralzip.training.quantize import main

    source = zoo.weights_dir() / _trained(name, entry)["file"]
    main([str(source), str(tmp_path / "q.npz")])
    import hashlib

    assert hashlib.sha256((tmp_path / "q.npz").read_bytes()).hexdigest() == entry["sha256"]


TRAINED = [(name, e) for name in zoo.available() for e in zoo.versions(name) + zoo.sources(name) if "stretches" in e]


@pytest.mark.parametrize("name,entry", TRAINED, ids=[f"{n}-{e['sha256'][:8]}" for n, e in TRAINED])
def test_training_stretches_chain_from_committed_weights_to_these(name, entry):
    """Anyone can redo the training: the stretches, run in order, continue one another from
    weights in the repository, and the last one ends where the entry's weights were written."""
    import hashlib
    import re

    stretches = entry["stretches"]
    assert stretches[0]["from_step"] == 0 and stretches[0]["val_before"] == entry["curve"][0]["val_bpsp"]
    for before, after in zip(stretches, stretches[1:]):
        assert after["from_step"] == before["to_step"] and after["val_before"] == before["val_after"]
        assert after["command"].split("--out")[1] == before["command"].split("--out")[1]  # it resumes that run
    assert stretches[-1]["to_step"] == entry["steps"] == entry["curve"][-1]["step"]
    assert stretches[-1]["val_after"] == entry["curve"][-1]["val_bpsp"]
    known = {e["file"]: e["sha256"] for n in zoo.available() for e in zoo.versions(n) + zoo.sources(n)}
    init = re.search(r"--init weights/(\S+)", stretches[0]["command"])
    if init:  # the start is a committed, registered file
        assert known[init.group(1)] == hashlib.sha256((zoo.weights_dir() / init.group(1)).read_bytes()).hexdigest()
    assert hashlib.sha256((zoo.weights_dir() / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]


def test_every_source_is_what_a_shipped_version_was_made_from():
    for name in zoo.available():
        made_from = {e.get("quantized_from") for e in zoo.versions(name)}
        assert all(source["sha256"] in made_from for source in zoo.sources(name))


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
    from neuralzip.core.versions import REGISTERED_MODELS

    for name, tag in REGISTERED_MODELS.values():
        assert zoo.load(name, tag).tag == tag
