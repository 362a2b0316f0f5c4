"""Ship trained weights: copy them into ``weights/`` and write their manifest entry, with
real-file bpsp measured on their validation images (``neuralzip publish``)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..core.codec import Codec
from ..core.intmodel import IntegerModel, ZooModel
from ..images import read_rgb
from ..jobs import UserError


def write_derived(
    model: IntegerModel, source: Path, made: str, out: Path, started: float, val_images: list[str], **how: object
) -> dict:
    """Write ``model``, ``made`` ("quantized", "pruned") from the weights file ``source``
    without training, to ``out`` (.npz), and beside it (``out`` with .json) the report
    ``neuralzip publish`` records: ``<made>_from``, the sha256 of ``source``; ``how`` it was
    made; the model's size and shape, the seconds since ``started`` (``time.perf_counter``)
    and the validation images to measure it on. Returns the report."""
    arrays: dict[str, Any] = model.arrays()  # Any: numpy's stub takes ** for allow_pickle too
    np.savez(out, **arrays)
    report = {
        "arithmetic": model.mlp.arithmetic,
        f"{made}_from": hashlib.sha256(source.read_bytes()).hexdigest(),
        **how,
        "parameters": int(sum(w.size + b.size for w, b in zip(model.mlp.weights, model.mlp.biases))),
        "architecture": {
            "context": model.context,
            "features": int(model.mlp.weights[0].shape[0]),
            "hidden": [int(w.shape[1]) for w in model.mlp.weights[:-1]],
            "components": model.mlp.components,
            "ls_coefs": len(model.default_coefs),
        },
        "steps": 0,  # no training: the source's steps and curve are in its own manifest entry
        "wall_s": round(time.perf_counter() - started, 2),
        "val_images": val_images,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def publish(
    npz: Path,
    name: str,
    command: str,
    report: dict,
    val_paths: list[str] | None = None,
    weights: Path = Path("weights"),
    source: bool = False,
) -> dict:
    """Copy an exported model into ``weights/`` as ``<name>-<sha256[:8]>.npz`` and write its
    manifest entry; an earlier version of ``name`` moves to the entry's ``retired`` list,
    its file kept, so the files it made still decode. With ``source``, the model is not
    shipped: its entry joins the ``sources`` list of what shipped versions are made from.

    The entry records how the model was made (``command``, ``report``) and, measured here,
    real-file and NLL bpsp of the integer model on the validation images of ``val_paths``.
    """
    weights.mkdir(exist_ok=True)
    data = Path(npz).read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    target = weights / f"{name}-{sha[:8]}.npz"
    target.write_bytes(data)
    entry = {
        "file": target.name,
        "sha256": sha,
        "command": command,
        **{k: v for k, v in report.items() if k not in ("val_images",)},
    }
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
    earlier = manifest.get(name)
    if source:
        if earlier is None:
            raise ValueError(f"no shipped model {name!r} to record a source of")
        earlier["sources"] = [*(e for e in earlier.get("sources", []) if e["sha256"] != sha), entry]
    else:
        if earlier is not None:  # the same weights again keep their retired list
            again = earlier["sha256"] == sha
            entry["retired"] = [
                *([] if again else [{k: v for k, v in earlier.items() if k not in ("retired", "sources")}]),
                *earlier.get("retired", []),
            ]
            if "sources" in earlier:
                entry["sources"] = earlier["sources"]
        manifest[name] = entry
    manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
    return entry


def publish_trained(npz: Path, name: str, command: str, weights: Path, source: bool) -> dict:
    """``publish`` with the training report that ``neuralzip train`` wrote beside ``npz``
    (``npz`` with .json), measured on its validation images unless ``source``
    (``neuralzip publish``); UserError where there is no report."""
    report_path = npz.with_suffix(".json")
    if not report_path.is_file():
        raise UserError(f"{report_path}: no training report (neuralzip train writes it beside the model)")
    report = json.loads(report_path.read_text())
    return publish(npz, name, command, report, None if source else report.get("val_images"), weights, source)
