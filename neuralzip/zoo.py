"""Registry of shipped models: ``weights/manifest.json`` names each weights file.

A name's entry is its current weights; its ``retired`` list keeps every earlier version
that a release shipped under that name, so the files they made still decode (a file
carries the name and the first 4 bytes of its weights' sha256, ``ZooModel.tag``).

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


def versions(name: str) -> list[dict]:
    """Manifest entries of every shipped version of model ``name``, the current one first."""
    entries = manifest()
    if name not in entries:
        raise ModelNotFound(f"unknown model {name!r} (available: {', '.join(sorted(entries))})")
    current = {k: v for k, v in entries[name].items() if k != "retired"}
    return [current, *entries[name].get("retired", [])]


@functools.lru_cache(maxsize=None)
def load(name: str = DEFAULT_MODEL, tag: bytes | None = None) -> ZooModel:
    """Load a shipped model by name, checking its file against the manifest's sha256: the
    current version, or with ``tag`` (4 bytes) the version whose sha256 starts with it.
    Either way one version is read once: the current one is cached under its tag."""
    if tag is None:
        return load(name, bytes.fromhex(versions(name)[0]["sha256"][:8]))
    found = [e for e in versions(name) if bytes.fromhex(e["sha256"][:8]) == tag]
    if not found:
        raise ModelNotFound(f"weights {tag.hex()} of model {name!r} are not installed "
                            f"(installed: {', '.join(e['sha256'][:8] for e in versions(name))})")
    path = weights_dir() / found[0]["file"]
    if not path.is_file():
        raise ModelNotFound(f"weights file {path} of model {name!r} is missing")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    if sha != found[0]["sha256"]:
        raise ModelNotFound(f"weights file {path} does not match its manifest sha256")
    return ZooModel(name, sha, IntegerModel.load(path))


def available() -> list[str]:
    return sorted(manifest())


def publish(npz: Path, name: str, command: str, report: dict, val_paths: list[str] | None = None,
            weights: Path = Path("weights")) -> dict:
    """Copy an exported model into ``weights/`` as ``<name>-<sha256[:8]>.npz`` and write its
    manifest entry; an earlier version of ``name`` moves to the entry's ``retired`` list,
    its file kept, so the files it made still decode.

    The entry records how the model was made (``command``, ``report``) and, measured here,
    real-file and NLL bpsp of the integer model on the validation images of ``val_paths``.
    """
    from .core.codec import Codec  # the codec imports this module
    from .training.data import read_rgb

    weights.mkdir(exist_ok=True)
    data = Path(npz).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    target = weights / f"{name}-{sha[:8]}.npz"
    target.write_bytes(data)
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
    if name in manifest:  # the same weights again keep their retired list
        earlier = manifest[name]
        again = earlier["sha256"] == sha
        entry["retired"] = [*([] if again else [{k: v for k, v in earlier.items() if k != "retired"}]),
                            *earlier.get("retired", [])]
    manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return entry
