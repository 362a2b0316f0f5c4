"""An integer model of ``float64`` arithmetic -> the same model in ``int16`` arithmetic.

Each output of each layer gets its own shift: the largest at which its int16 weights keep
``|b| + 32767 * sum |w|`` within a budget below 2**31 (so the int32 sums of any int16
inputs cannot overflow, with room left for the per-image adaptation: the last hidden
layer's bias offsets, and output gains of up to (256 + 255) / 256, which double the output
layer's weights at most). Weights and biases are the float64 model's, scaled by a power of
two and rounded half to even: numpy's float64 scaling by powers of two is exact, so the
result is the same on every machine.

Measured on 14 training photos (256x256 crops, two per folder), the int16 model of photo
265c3c51 costs 0.011 % more bits than the float64 one (``benchmarks/results/model_versions.md``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.intmodel import MAX_SHIFT16, IntegerModel
from ..core.units import INT16_MAX

HIDDEN_BUDGET = float(1 << 30)  # |b| + 32767 sum |w| of a hidden layer's output ...
OUTPUT_BUDGET = float(1 << 29)  # ... and of an output: gains may double its weights
OUTPUT_WEIGHT_MAX = INT16_MAX // 2  # likewise


def _layer(w: np.ndarray, b: np.ndarray, frac: int, budget: float, weight_max: int):
    """(int16-valued weights, biases, shifts) of one float64 layer in units 2**-frac."""
    weights, biases, shifts = np.zeros_like(w), np.zeros_like(b), np.zeros(len(b), np.int64)
    for o in range(w.shape[1]):
        for shift in range(MAX_SHIFT16, -1, -1):
            scale = 2.0 ** (shift - frac)
            q, qb = np.round(w[:, o] * scale), np.round(b[o] * scale)
            if np.abs(q).max() <= weight_max and np.abs(q).sum() * INT16_MAX + abs(qb) <= budget:
                break
        else:
            raise ValueError(f"output {o} does not fit int16 arithmetic at any shift")
        weights[:, o], biases[o], shifts[o] = q, qb, shift
    return weights, biases, shifts


def to_int16(model: IntegerModel) -> IntegerModel:
    """``model`` (float64 arithmetic) in int16 arithmetic, the closest within its bounds."""
    mlp = model.mlp
    if mlp.arithmetic != "float64":
        raise ValueError(f"the model is already in {mlp.arithmetic} arithmetic")
    last = len(mlp.weights) - 1
    layers = [
        _layer(w, b, frac, OUTPUT_BUDGET if i == last else HIDDEN_BUDGET, OUTPUT_WEIGHT_MAX if i == last else INT16_MAX)
        for i, (w, b, frac) in enumerate(zip(mlp.weights, mlp.biases, mlp.fracs))
    ]
    weights, biases, shifts = (list(part) for part in zip(*layers))
    return replace(model, mlp=replace(mlp, weights=weights, biases=biases, fracs=shifts, arithmetic="int16"))


def main(argv: list[str] | None = None) -> None:
    """``python -m neuralzip.training.quantize IN.npz OUT.npz [TRAINING PATHS...]``: write the
    int16 model of IN beside a report (OUT.json) that ``neuralzip publish`` records, with
    the validation images of the training paths (``train.split``) to measure it on."""
    import argparse
    import time
    from pathlib import Path

    from ..images import list_images
    from .publish import write_derived
    from .train import split

    parser = argparse.ArgumentParser(prog="python -m neuralzip.training.quantize", description=main.__doc__)
    parser.add_argument("source", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("paths", nargs="*", help="the training paths the source was trained on")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = to_int16(IntegerModel.load(args.source))
    names = [n for p in args.paths for n in list_images(p)]
    val_images = split(names)[1] if names else []
    write_derived(
        model,
        args.source,
        "quantized",
        args.out,
        started,
        val_images,
        quantization="training/quantize.py: per-output power-of-two scales, int16 weights, "
        f"|b| + 32767 sum |w| <= 2**30 (hidden), 2**29 (output; weights <= {OUTPUT_WEIGHT_MAX})",
    )
    print(f"wrote {args.out} ({len(val_images)} validation images)")


if __name__ == "__main__":
    main()
