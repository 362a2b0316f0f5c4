"""Registry of shipped models: ``weights/manifest.json`` names each weights file; the zoo
hands their weights to the codec (``codec``, ``codec_for_file``). Shipping new weights:
``training/publish.py``.

A name's entry is its current weights; its ``retired`` list keeps every earlier version
that a release shipped under that name, so the files they made still decode (a file
carries the name and the first 4 bytes of its weights' sha256, ``ZooModel.tag``). Its
``sources`` list holds weights that were never shipped but that shipped ones were made
from (the float64 models that int16 ones are quantized from, with their training history).

The weights folder is found at ``$NEURALZIP_WEIGHTS``, beside the package (a source
checkout or editable install), or under ``<prefix>/share/neuralzip/weights``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from pathlib import Path

from .core.codec import Codec, DecodeError
from .core.container import Header
from .core.effort import DEFAULT_EFFORT
from .core.effort import effort as effort_level
from .core.intmodel import IntegerModel, ZooModel

DEFAULT_MODEL = "photo"


class ModelNotFound(LookupError):
    """No shipped model of that name (or its weights file is missing)."""


def weights_dir() -> Path:
    candidates = [
        os.environ.get("NEURALZIP_WEIGHTS"),
        Path(__file__).resolve().parent.parent / "weights",
        Path(sys.prefix) / "share" / "neuralzip" / "weights",
    ]
    for c in candidates:
        if c and (Path(c) / "manifest.json").is_file():
            return Path(c)
    raise ModelNotFound("weights folder with manifest.json not found (set NEURALZIP_WEIGHTS)")


def manifest() -> dict:
    return json.loads((weights_dir() / "manifest.json").read_text())


def versions(name: str) -> list[dict]:
    """Manifest entries of every shipped version of model ``name``, the current one first."""
    entries = manifest()
    if name not in entries:
        raise ModelNotFound(f"unknown model {name!r} (available: {', '.join(sorted(entries))})")
    current = {k: v for k, v in entries[name].items() if k not in ("retired", "sources")}
    return [current, *entries[name].get("retired", [])]


def sources(name: str) -> list[dict]:
    """Manifest entries of the unshipped weights that versions of ``name`` were made from."""
    versions(name)  # an unknown name is named
    return manifest()[name].get("sources", [])


@functools.cache
def load(name: str = DEFAULT_MODEL, tag: bytes | None = None) -> ZooModel:
    """Load a shipped model by name, checking its file against the manifest's sha256: the
    current version, or with ``tag`` (4 bytes) the version whose sha256 starts with it.
    Either way one version is read once: the current one is cached under its tag."""
    if tag is None:
        return load(name, bytes.fromhex(versions(name)[0]["sha256"][:8]))
    found = [e for e in versions(name) if bytes.fromhex(e["sha256"][:8]) == tag]
    if not found:
        raise ModelNotFound(
            f"weights {tag.hex()} of model {name!r} are not installed "
            f"(installed: {', '.join(e['sha256'][:8] for e in versions(name))})"
        )
    path = weights_dir() / found[0]["file"]
    if not path.is_file():
        raise ModelNotFound(f"weights file {path} of model {name!r} is missing")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != found[0]["sha256"]:
        raise ModelNotFound(f"weights file {path} does not match its manifest sha256")
    return ZooModel(name, sha, IntegerModel.load(path))


def available() -> list[str]:
    return sorted(manifest())


def coding_model(name: str = DEFAULT_MODEL, effort: int = DEFAULT_EFFORT) -> str:
    """The shipped model that codes for ``name`` at ``effort``: the one an effort level
    names (``Effort.model_suffix``: a faster or a wider one) where it is shipped, else
    ``name``."""
    other = name + effort_level(effort).model_suffix
    return other if other in available() else name


def codec(name: str = DEFAULT_MODEL, threads: int | None = None, effort: int = DEFAULT_EFFORT) -> Codec:
    """A codec of the current weights of the model that codes for ``name`` at ``effort``
    (``coding_model``; see ``Codec``)."""
    return Codec(load(coding_model(name, effort)), threads, effort)


def codec_for_file(data: bytes) -> Codec:
    """The codec of the shipped weights that made the .nz bytes ``data``.

    Raises FormatError on a malformed header, DecodeError if those weights are not installed.
    """
    return codec_for_header(Header.unpack(data)[0])


def codec_for_header(header: Header) -> Codec:
    """The codec of the shipped weights that made the file of ``header`` (already parsed).

    Raises DecodeError if those weights are not installed.
    """
    name = header.model_name
    if name not in available():
        raise DecodeError(
            f"file was made with model {name!r}, which is not installed (available: {', '.join(available())})"
        )
    try:
        return Codec(load(name, header.model_sha))
    except ModelNotFound as exc:
        raise DecodeError(f"cannot decode: {exc}") from None
