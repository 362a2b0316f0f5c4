"""Drop the hidden units of an integer model that no training pixel activates.

A hidden unit whose activation is 0 on a pixel adds nothing to the next layer's sums for
that pixel, so a model without it computes the very same integers there. Widening a model
(``train.widen``) can leave many such units behind: of ``photo-wide`` 11446381's second
hidden layer, 127 of 256 units were 0 on every training pixel sampled. The encoder's
per-image adaptation does not wake them either: the bias offset of a unit that is 0 on
every pixel of the sample gets no gradient. Dropping them takes their share of the
decoder's work and nothing else; the pruned model is still a new model
(its outputs may differ on a pixel that would have woken a dropped unit), so it ships with
its own weights hash and registered number like any other.

``python -m neuralzip.training.prune IN.npz OUT.npz PATHS...`` measures every hidden unit's
activity on a sample of the training images' pixels (the images ``train.split`` does not hold
out), writes the model without the units no sampled pixel activates, and beside it a report
(OUT.json) that ``neuralzip publish`` records.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..core.intmodel import IntegerModel

SAMPLE_KEEP = 0.02  # fraction of each training image's pixels whose activity is measured
SAMPLE_SEED = 0
CHUNK = 1 << 16  # pixels per matrix product


@dataclass
class Activity:
    """How many of ``pixels`` sampled pixels activate each hidden unit: one int64 array per
    hidden layer, (units,)."""

    counts: list[np.ndarray]
    pixels: int

    def dead(self) -> list[np.ndarray]:
        """Per hidden layer, the indices of the units no sampled pixel activates."""
        return [np.flatnonzero(c == 0) for c in self.counts]


def hidden_activations(model: IntegerModel, features: np.ndarray) -> list[np.ndarray]:
    """Activations int64 (n, units) of every hidden layer of an int16 model for fixed-point
    features int16 (n, n_features): the kernel's integers (float64 products are exact here,
    since every sum of an int16 model lies in int32)."""
    mlp = model.mlp
    if mlp.arithmetic != "int16":
        raise ValueError("pruning takes int16 models")
    h = features.astype(np.float64)
    out = []
    for w, b, shift in zip(mlp.weights[:-1], mlp.biases[:-1], mlp.fracs[:-1]):
        acc = (h @ w + b).astype(np.int64)
        h = np.clip(acc >> np.asarray(shift, np.int64), 0, mlp.act_max)
        out.append(h)
        h = h.astype(np.float64)
    return out


def activity(model: IntegerModel, features: np.ndarray) -> Activity:
    """Activity of ``model``'s hidden units on fixed-point features int16 (n, n_features)."""
    counts = [np.zeros(len(b), np.int64) for b in model.mlp.biases[:-1]]
    for start in range(0, len(features), CHUNK):
        for count, h in zip(counts, hidden_activations(model, features[start : start + CHUNK])):
            count += (h > 0).sum(axis=0)
    return Activity(counts, len(features))


def without_units(model: IntegerModel, dropped: list[np.ndarray]) -> IntegerModel:
    """``model`` without the hidden units ``dropped`` (indices, one array per hidden layer):
    their columns of the layer's weights, biases and shifts and their rows of the next
    layer's weights go."""
    mlp = model.mlp
    if len(dropped) != len(mlp.weights) - 1:
        raise ValueError(f"units to drop for {len(dropped)} hidden layers, the model has {len(mlp.weights) - 1}")
    weights, biases = list(mlp.weights), list(mlp.biases)
    shifts = [np.asarray(s) for s in mlp.fracs]
    for layer, units in enumerate(dropped):
        keep = np.setdiff1d(np.arange(len(biases[layer])), units)
        if not len(keep):
            raise ValueError(f"hidden layer {layer} would keep no unit")
        weights[layer] = np.ascontiguousarray(weights[layer][:, keep])  # C order, as every weights file
        biases[layer], shifts[layer] = biases[layer][keep], shifts[layer][keep]
        weights[layer + 1] = weights[layer + 1][keep, :]
    return replace(model, mlp=replace(mlp, weights=weights, biases=biases, fracs=shifts))


def main(argv: list[str] | None = None) -> None:
    """``python -m neuralzip.training.prune IN.npz OUT.npz PATHS...``: write IN without the
    hidden units that no sampled training pixel of PATHS activates, beside a report
    (OUT.json) that ``neuralzip publish`` records, with the validation images to measure it on."""
    import argparse
    import time
    from pathlib import Path

    from ..images import list_images, load_images
    from .publish import write_derived
    from .train import build_pixels, split

    parser = argparse.ArgumentParser(prog="python -m neuralzip.training.prune", description=main.__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("paths", nargs="+", help="the training paths the source was trained on")
    parser.add_argument("--keep", type=float, default=SAMPLE_KEEP, help="fraction of each image's pixels sampled")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = IntegerModel.load(args.source)
    names = [n for p in args.paths for n in list_images(p)]
    train_names, val_names = split(names)
    images = load_images(train_names)[1]
    sample = build_pixels(images, None, args.keep, SAMPLE_SEED, args.jobs, model.context)
    measured = activity(model, sample.features)
    dropped = measured.dead()
    pruned = without_units(model, dropped)
    write_derived(
        pruned,
        args.source,
        "pruned",
        args.out,
        started,
        val_names,
        pruning="training/prune.py: hidden units that no sampled training pixel activates dropped "
        f"({measured.pixels:,} pixels: {args.keep:g} of each of the {len(images)} training images, per-image LS, "
        f"seed {SAMPLE_SEED})",
        units_dropped=[d.tolist() for d in dropped],  # per hidden layer, indices into the source's units
    )
    print(f"wrote {args.out}: dropped {[len(d) for d in dropped]} hidden units ({measured.pixels:,} sampled pixels)")


if __name__ == "__main__":
    main()
