"""Integer model: context features -> integer mixture parameters, bit-exact everywhere.

Weights and activations are integers, in one of two arithmetics (a weights file names
its own):

* ``float64`` (format versions 1-4): the kernel runs the products in float64 on integer
  values whose every partial sum stays below 2**53; a shift ``frac`` per layer;
* ``int16`` (format version 5): int16 inputs, activations and weights, int32 sums, a
  shift per output; ``|b| + 32767 * sum |w| < 2**31`` for every output, so no sum of
  any int16 inputs leaves int32 (SIMD ``pmaddwd`` runs it; see ``training/quantize.py``).

Both bounds are checked here at load time (and again by the kernel), so any instruction
set, thread count, batch split or summation order gives the same result. Features are
fixed point with 8 fractional bits; hidden activations are ``clamp(floor(acc / 2**frac),
0, act_max)``, outputs ``round(acc / 2**(frac + 8))`` in the units of
``mixture.MIXTURE.steps``. No torch here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .tables import Tables
from .units import ACT_FRAC, ACT_MAX, ACT_MAX16, CONTEXTS, DEFAULT_CONTEXT, INT16_MAX, n_features

_EXACT_LIMIT = float(1 << 53)
_INT32_LIMIT = float((1 << 31) - 1)
GAIN_LIMIT = 255  # output gains scale weights by (256 + gain) / 256
ARITHMETICS = ("float64", "int16")
MAX_SHIFT16 = 30


@dataclass
class IntegerMLP:
    """Integer MLP. ``weights[i]``: float64 (in, out) integer-valued, units 2**-fracs[i];
    ``biases[i]``: float64 (out,), units 2**-(fracs[i] + 8). Output units: ``mixture.MIXTURE.steps``.
    ``fracs[i]``: an int per layer (``float64`` arithmetic) or int64 (out,) per output (``int16``)."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]
    fracs: list
    components: int
    arithmetic: str = "float64"

    def __post_init__(self):
        if self.arithmetic not in ARITHMETICS:
            raise ValueError(f"unknown arithmetic {self.arithmetic!r} (known: {', '.join(ARITHMETICS)})")
        int16 = self.arithmetic == "int16"
        for w, b, frac in zip(self.weights, self.biases, self.fracs):
            for arr in (w, b):
                if not np.array_equal(arr, np.round(arr)):
                    raise ValueError("integer model weights must be integers")
            if int16:  # any int16 inputs: every partial sum stays in int32
                bound = np.abs(w).sum(axis=0) * INT16_MAX + np.abs(b)
                frac = np.asarray(frac)
                if np.abs(w).max() > INT16_MAX or bound.max() > _INT32_LIMIT:
                    raise ValueError("int16 model could overflow its int32 sums")
                if frac.shape != b.shape or frac.min() < 0 or frac.max() > MAX_SHIFT16:
                    raise ValueError(f"int16 model: a shift in 0..{MAX_SHIFT16} per output")
            elif np.abs(w).sum(axis=0).max() * ACT_MAX + np.abs(b).max() >= _EXACT_LIMIT:
                raise ValueError("integer model could overflow exact float64 accumulation")

    @property
    def act_max(self) -> int:
        """The largest hidden activation (units 2**-8)."""
        return ACT_MAX16 if self.arithmetic == "int16" else ACT_MAX


@dataclass
class IntegerModel:
    """A shipped model: integer MLP, lookup tables, default LS coefficients and the context
    its inputs come from (``units.CONTEXTS``)."""

    mlp: IntegerMLP
    tables: Tables
    default_coefs: np.ndarray  # int64 (LS_TOTAL,), used for small images
    context: int = DEFAULT_CONTEXT

    def __post_init__(self):
        if self.context not in CONTEXTS:
            raise ValueError(f"unknown context {self.context} (known: {', '.join(map(str, CONTEXTS))})")
        if self.mlp.weights[0].shape[0] != n_features(self.context):
            raise ValueError(
                f"context {self.context} has {n_features(self.context)} inputs, "
                f"the model's first layer {self.mlp.weights[0].shape[0]}"
            )

    @classmethod
    def load(cls, path) -> IntegerModel:
        with np.load(path) as z:
            n_layers = int(z["n_layers"])
            arithmetic = str(z["arithmetic"]) if "arithmetic" in z else "float64"
            mlp = IntegerMLP(
                weights=[z[f"w{i}"].astype(np.float64) for i in range(n_layers)],
                biases=[z[f"b{i}"].astype(np.float64) for i in range(n_layers)],
                fracs=(
                    [z[f"s{i}"].astype(np.int64) for i in range(n_layers)]
                    if arithmetic == "int16"
                    else [int(f) for f in z["fracs"]]
                ),
                components=int(z["components"]),
                arithmetic=arithmetic,
            )
            context = int(z["context"]) if "context" in z else DEFAULT_CONTEXT
            return cls(mlp, Tables.from_arrays(z), z["default_coefs"].astype(np.int64), context)

    def with_bias_offsets(self, offsets: Sequence[np.ndarray | None]) -> IntegerModel:
        """This model with per-layer offsets (int, one per unit, or None) on its units'
        results: a hidden unit's activation grows by ``offset`` in units of 2**-8, an
        output by ``offset`` in its own units (``mixture.MIXTURE.steps``). Each is added to
        the layer's bias times 2**frac (hidden) or 2**(frac + 8) (output), which the
        layer's floor or rounding shift carries over exactly. Raises ValueError for
        offsets that do not fit the layers or could take sums out of exact float64."""
        mlp = self.mlp
        if len(offsets) != len(mlp.biases):
            raise ValueError(f"bias offsets for {len(offsets)} layers, the model has {len(mlp.biases)}")
        biases = []
        for layer, (bias, frac, offset) in enumerate(zip(mlp.biases, mlp.fracs, offsets)):
            if offset is not None:
                offset = np.asarray(offset, np.int64)
                if offset.shape != bias.shape:
                    raise ValueError(f"{len(offset)} bias offsets for layer {layer} of {len(bias)} units")
                shift = np.asarray(frac) + (ACT_FRAC if layer == len(mlp.biases) - 1 else 0)
                bias = bias + offset.astype(np.float64) * 2.0**shift
            biases.append(bias)
        return replace(self, mlp=replace(mlp, biases=biases))

    def with_output_gains(self, gains: np.ndarray) -> IntegerModel:
        """This model with each output's weights scaled by (256 + gain) / 256: int (12·K,)
        ``gains`` in -255..255; every weight becomes floor((w · (256 + gain) + 128) / 256),
        in integers, so every machine gets the same model. Raises ValueError for gains that
        do not fit the outputs or could take sums out of exact float64."""
        mlp = self.mlp
        gains = np.asarray(gains, np.int64)
        if gains.shape != mlp.biases[-1].shape or np.abs(gains).max(initial=0) > GAIN_LIMIT:
            raise ValueError(f"output gains: {len(mlp.biases[-1])} values in -{GAIN_LIMIT}..{GAIN_LIMIT}")
        scaled = np.floor_divide(mlp.weights[-1].astype(np.int64) * (256 + gains) + 128, 256)
        return replace(self, mlp=replace(mlp, weights=[*mlp.weights[:-1], scaled.astype(np.float64)]))

    def arrays(self) -> dict[str, np.ndarray]:
        int16 = self.mlp.arithmetic == "int16"
        out = {
            "n_layers": np.array(len(self.mlp.weights)),
            **({"arithmetic": np.array("int16")} if int16 else {"fracs": np.array(self.mlp.fracs)}),
            "components": np.array(self.mlp.components),
            "default_coefs": self.default_coefs,
            "context": np.array(self.context),
            **self.tables.arrays(),
        }
        for i, (w, b, frac) in enumerate(zip(self.mlp.weights, self.mlp.biases, self.mlp.fracs)):
            out[f"w{i}"], out[f"b{i}"] = w.astype(np.int16 if int16 else np.int64), b.astype(np.int64)
            if int16:
                out[f"s{i}"] = np.asarray(frac, np.int8)
        return out


@dataclass(frozen=True)
class ZooModel:
    """A shipped model: its name, the sha256 of its weights file and the model. Files name
    it by ``name`` and ``tag`` (``neuralzip.zoo`` finds and checks the weights)."""

    name: str
    sha256: str
    model: IntegerModel

    @property
    def tag(self) -> bytes:
        """4-byte weights fingerprint stored in every .nz file."""
        return bytes.fromhex(self.sha256[:8])
