"""Integer discretized logistic mixture: model outputs -> integer frequency tables.

The mixture of ``mixture.MIXTURE``, quantized: a subpixel value v in 0..255 has, per
component k, the mass of a logistic with mean m_k and scale s_k over the bin
[v - 0.5, v + 0.5], with bins 0 and 255 taking the tails. Everything here is integer
arithmetic through lookup tables (``Tables``), so the same (model outputs, decoded pixels)
give the same table on every machine.

Integer units:

* means ``mean_q4``: 1/16 pixel level;
* log-scales ``logscale_idx``: ``LOGSCALE_MIN..LOGSCALE_MAX``, log s = idx / 32;
* mixture logits ``logit_q4``: 1/16 nat;
* the mixture CDF at bin edge j (between values j-1 and j), ``C(j)``, is an int64 with
  ``C(0) = 0``; ``C(j+1) - C(j) = sum_k w_k * (mass_k(j) + 1)``, so every value keeps
  at least about 2**-20 of the probability (a subpixel never costs more than ~20 bits).

Values are coded in two stages of 16 symbols (bucket ``v // 16``, then ``v % 16``), both
read off the same C, so each subpixel needs 34 CDF points instead of 257 and the ideal
cost of the two stages adds up exactly to ``-log2(freq(v) / C(256))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, getcontext

import numpy as np

from .mixture import MIXTURE, LogisticMixture
from .units import CDF_BITS, INV_BITS, STAGE, T_FRAC, T_MAX, WEIGHT_BITS

# The least a coded subpixel can cost, in bits. Each of the 256 values holds at least
# 1 / (2**CDF_BITS + 256) of C(256), so the likeliest bucket of a stage-1 table leaves at
# least 240 such shares to the other 15 buckets. 0.9 of that bound leaves room for
# constriction's 24-bit requantization and ANS rounding (under 0.5 % together).
MIN_SUBPIXEL_BITS = 0.9 * -math.log2(1 - (STAGE * STAGE - STAGE) / ((1 << CDF_BITS) + STAGE * STAGE))


@dataclass(frozen=True)
class Tables:
    """Integer lookup tables; part of a model's weights file."""

    sigmoid: np.ndarray  # int64 (2*T_MAX*2**T_FRAC + 1,): round(2**20 * sigmoid(t))
    inv_scale: np.ndarray  # int64 (len(MIXTURE.log_scale_indices),): round(2**18 / s)
    weight: np.ndarray  # int64 (len(MIXTURE.logit_gaps),): round(2**12 * exp(-d / 16))

    @classmethod
    def build(cls, mixture: LogisticMixture = MIXTURE) -> Tables:
        """The tables of ``mixture``, in exact decimal arithmetic (no platform float dependence):
        its logistic at t = -T_MAX..T_MAX by 2**-T_FRAC, the inverse scale of each log-scale
        index, the weight of each logit gap relative to the top logit."""
        getcontext().prec = 40
        one = Decimal(1)

        def rnd(x: Decimal) -> int:
            return int(x.to_integral_value())  # round half even, exact

        steps = 2 * T_MAX * (1 << T_FRAC)
        sig = [
            rnd((1 << CDF_BITS) / (one + (Decimal(T_MAX * (1 << T_FRAC) - i) / (1 << T_FRAC)).exp()))
            for i in range(steps + 1)
        ]
        inv = [rnd((1 << INV_BITS) * mixture.log_scales.value(Decimal(-j)).exp()) for j in mixture.log_scale_indices]
        wts = [rnd((1 << WEIGHT_BITS) * mixture.logits.value(Decimal(-d)).exp()) for d in mixture.logit_gaps]
        return cls(np.array(sig, np.int64), np.array(inv, np.int64), np.array(wts, np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        return {"lut_sigmoid": self.sigmoid, "lut_inv_scale": self.inv_scale, "lut_weight": self.weight}

    @classmethod
    def from_arrays(cls, arrays: dict) -> Tables:
        return cls(
            np.asarray(arrays["lut_sigmoid"], np.int64),
            np.asarray(arrays["lut_inv_scale"], np.int64),
            np.asarray(arrays["lut_weight"], np.int64),
        )
