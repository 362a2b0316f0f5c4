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
import time
from dataclasses import dataclass
from pathlib import Path

from .core.intmodel import IntegerModel

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


def publish(npz: Path, name: str, command: str, report: dict, val_paths: list[str] | None = None,
            weights: Path = Path("weights")) -> dict:
    """Copy an exported model into ``weights/`` and write its manifest entry.

    The entry records how the model was made (``command``, ``report``) and, measured here,
    real-file and NLL bpsp of the integer model on the validation images of ``val_paths``.
    """
    from .core.codec import Codec  # the codec imports this module
    from .training.data import read_rgb

    weights.mkdir(exist_ok=True)
    target = weights / f"{name}.npz"
    target.write_bytes(Path(npz).read_bytes())
    sha = hashlib.sha256(target.read_bytes()).hexdigest()
    entry = {"file": target.name, "sha256": sha, "command": command,
             **{k: v for k, v in report.items() if k not in ("val_images",)}}
    if val_paths:
        codec = Codec(ZooModel(name, sha, IntegerModel.load(target)))
        t0 = time.time()
        stats = [codec.encode(read_rgb(p))[1] for p in val_paths]
        sub = sum(s.subpixels for s in stats)
        entry["validation"] = {
            "images": len(val_paths),
            "bpsp": round(sum(8 * s.file_bytes for s in stats) / sub, 4),
            "nll_bpsp": round(sum(s.nll_bits for s in stats) / sub, 4),
            "encode_s": round(time.time() - t0, 1),
        }
    manifest_path = weights / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return entry
