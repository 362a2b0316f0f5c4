"""Integer model: context features -> integer mixture parameters, bit-exact everywhere.

Weights and activations are integers; matrix products run in float64 on integer values
whose every partial sum stays below 2**53 (checked at load time), so any BLAS, thread
count, batch split or summation order gives the same result. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .context import N_FEATURES, clamp, round_shift
from .likelihood import Mixture, Tables

ACT_FRAC = 8
ACT_MAX = 128 << ACT_FRAC
# feature i's integer value times 2**FEATURE_SHIFTS[i] is its fixed-point value (2**-8);
# negative shifts round (see context.FEATURE_SCALES: 1/32 -> 3, 1/64 -> 2, 1/128 -> 1, ...)
FEATURE_SHIFTS = np.array([3] * 51 + [2] * 3 + [1] * 3 + [-4] * 3 + [1] * 12 + [8] * 3)
assert FEATURE_SHIFTS.size == N_FEATURES
_EXACT_LIMIT = float(1 << 53)


def quantize_features(features: np.ndarray) -> np.ndarray:
    """Integer features (n, 75) -> fixed point with 8 fractional bits, int64 (n, 75)."""
    out = np.left_shift(features, np.maximum(FEATURE_SHIFTS, 0))
    neg = FEATURE_SHIFTS < 0
    out[:, neg] = round_shift(features[:, neg], 4)
    assert (FEATURE_SHIFTS[neg] == -4).all()
    return out


@dataclass
class IntegerMLP:
    """Integer MLP. ``weights[i]``: float64 (in, out) integer-valued, units 2**-fracs[i];
    ``biases[i]``: float64 (out,), units 2**-(fracs[i] + 8). Output units: see model.py."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    fracs: list[int]
    components: int

    def __post_init__(self):
        fan = ACT_MAX
        for w, b in zip(self.weights, self.biases):
            bound = np.abs(w).sum(axis=0).max() * fan + np.abs(b).max()
            if bound >= _EXACT_LIMIT:
                raise ValueError("integer model could overflow exact float64 accumulation")
            for arr in (w, b):
                if not np.array_equal(arr, np.round(arr)):
                    raise ValueError("integer model weights must be integers")

    def __call__(self, features_fixed: np.ndarray) -> np.ndarray:
        """Fixed-point features (n, 75) -> integer outputs int64 (n, 12, K)."""
        h = features_fixed.astype(np.float64)
        last = len(self.weights) - 1
        for i, (w, b, f) in enumerate(zip(self.weights, self.biases, self.fracs)):
            acc = h @ w + b
            if i < last:
                h = clamp(np.floor(acc / float(1 << f)), 0.0, float(ACT_MAX))
            else:
                h = np.floor((acc + float(1 << (f + ACT_FRAC - 1))) / float(1 << (f + ACT_FRAC)))
        return h.astype(np.int64).reshape(-1, 12, self.components)


def channel_mixture(out: np.ndarray, ch: int, base_q4: np.ndarray, residuals_q4: np.ndarray) -> Mixture:
    """Mixture of channel ``ch`` for n pixels.

    ``out``: (n, 12, K) integer model outputs; ``base_q4``: (n,) LS prediction of this
    channel with the pixel's actual earlier channels; ``residuals_q4``: (n, 3) the pixel's
    LS residuals (only channels before ``ch`` are read).
    """
    mean = base_q4[:, None] + out[:, 3 + ch]
    if ch == 1:
        mean = mean + round_shift(out[:, 9] * residuals_q4[:, 0:1], 8)
    elif ch == 2:
        mean = mean + round_shift(out[:, 10] * residuals_q4[:, 0:1] + out[:, 11] * residuals_q4[:, 1:2], 8)
    return Mixture(mean_q4=mean, logscale_idx=out[:, 6 + ch], logit_q4=out[:, ch])


@dataclass
class IntegerModel:
    """A shipped model: integer MLP, lookup tables and default LS coefficients."""

    mlp: IntegerMLP
    tables: Tables
    default_coefs: np.ndarray  # int64 (LS_TOTAL,), used for small images

    @classmethod
    def load(cls, path) -> "IntegerModel":
        with np.load(path) as z:
            n_layers = int(z["n_layers"])
            mlp = IntegerMLP(
                weights=[z[f"w{i}"].astype(np.float64) for i in range(n_layers)],
                biases=[z[f"b{i}"].astype(np.float64) for i in range(n_layers)],
                fracs=[int(f) for f in z["fracs"]],
                components=int(z["components"]),
            )
            return cls(mlp, Tables.from_arrays(z), z["default_coefs"].astype(np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        out = {
            "n_layers": np.array(len(self.mlp.weights)),
            "fracs": np.array(self.mlp.fracs),
            "components": np.array(self.mlp.components),
            "default_coefs": self.default_coefs,
            **self.tables.arrays(),
        }
        for i, (w, b) in enumerate(zip(self.mlp.weights, self.mlp.biases)):
            out[f"w{i}"], out[f"b{i}"] = w.astype(np.int64), b.astype(np.int64)
        return out
