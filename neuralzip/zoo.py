"""Registry of shipped models: ``weights/manifest.json`` names each weights file.

The weights folder is found at ``$NEURALZIP_WEIGHTS``, beside the package (a source
checkout or editable install), or under ``<prefix>/share/neuralzip/weights``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .intmodel import IntegerModel

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


@dataclass(frozen=True)
class ZooModel:
    name: str
    sha256: str
    model: IntegerModel

    @property
    def tag(self) -> bytes:
        """4-byte weights fingerprint stored in every .nz file."""
        return bytes.fromhex(self.sha256[:8])


@functools.lru_cache(maxsize=None)
def load(name: str = DEFAULT_MODEL) -> ZooModel:
    """Load a shipped model by name, checking its file against the manifest's sha256."""
    entries = manifest()
    if name not in entries:
        raise ModelNotFound(f"unknown model {name!r} (available: {', '.join(sorted(entries))})")
    path = weights_dir() / entries[name]["file"]
    if not path.is_file():
        raise ModelNotFound(f"weights file {path} of model {name!r} is missing")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != entries[name]["sha256"]:
        raise ModelNotFound(f"weights file {path} does not match its manifest sha256")
    return ZooModel(name, sha, IntegerModel.load(path))


def available() -> list[str]:
    return sorted(manifest())
