"""The discretized logistic mixture, described once: model outputs -> P(subpixel value).

``MIXTURE`` states the parametrisation; two sides derive from it: the float training loss
(``training/float_model.py``: ``MIXTURE.bits`` with torch) and the integer lookup tables
(``tables.Tables.build``: the same mixture quantized). The compiled kernel (``_kernel.c``)
and the adaptation's float64 mirror (``_adapt.c``) keep their own code; every mixture
constant they use is compared with ``MIXTURE.constants()`` at import (``kernel.py``,
``adapt.py``). The numpy reference of the tests stays independent on purpose.

Per pixel a model outputs ``(MIXTURE.rows, K)`` integers (row ``r``, component ``k`` at
``r * K + k`` of the flat output); for channel c (0, 1, 2: R, G, B) and component k:

* weight: softmax over k of the logit ``out[c, k] / LOGIT_STEP`` (nats); the tables drop
  a component more than ``LOGIT_RANGE`` units below the largest;
* mean: ``(base_q4[c] + out[3 + c, k] + coupled_c) / Q4`` levels, ``base_q4`` the LS
  prediction (q4) with the pixel's actual earlier channels and ``coupled_c`` the shift of
  ``couplings`` (rows 9-11: alpha G from R, beta B from R, gamma B from G, units
  1/COUPLING_STEP) by the earlier channels' residuals ``d`` (q4):
  ``floor((sum alpha * d + COUPLING_STEP / 2) / COUPLING_STEP)``;
* scale: ``exp(clip(out[6 + c, k], LOGSCALE_MIN, LOGSCALE_MAX) / LOGSCALE_STEP)`` levels;
* a value v in 0..255 has the logistic's mass over [v - 0.5, v + 0.5]; 0 and 255 take the
  tails.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import Any

import numpy as np

from .units import COUPLING_STEP, LOGIT_RANGE, LOGIT_STEP, LOGSCALE_MAX, LOGSCALE_MIN, LOGSCALE_STEP, Q4


@dataclass(frozen=True)
class Rows:
    """``count`` output rows from ``start``; an output ``v`` there means ``v / step``."""

    start: int
    step: int
    count: int = 3

    @property
    def span(self) -> slice:
        """The rows, as a slice of an output's row axis."""
        return slice(self.start, self.start + self.count)

    def of(self, out: Any) -> Any:
        """Rows of outputs ``out`` (n, rows, K), numpy or torch: (n, count, K), integer units."""
        return out[:, self.span]

    def value(self, raw: Any) -> Any:
        """``raw / step``: integer units -> natural ones (ints, Decimals, numpy or torch arrays)."""
        return raw / self.step


@dataclass(frozen=True)
class ArrayOps:
    """The array functions the float mixture needs, of one array library (``NUMPY``;
    training passes torch's). ``clip(x, lo, hi)``, either bound None; ``stack``,
    ``logsumexp`` and ``log_softmax`` take the axis second."""

    floor: Callable[[Any], Any]
    clip: Callable[[Any, Any, Any], Any]
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    sigmoid: Callable[[Any], Any]
    where: Callable[[Any, Any, Any], Any]
    stack: Callable[[list[Any], int], Any]
    logsumexp: Callable[[Any, int], Any]
    log_softmax: Callable[[Any, int], Any]


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))


NUMPY = ArrayOps(
    floor=np.floor,
    clip=np.clip,
    exp=np.exp,
    log=np.log,
    sigmoid=lambda x: np.exp(-np.logaddexp(0.0, -x)),
    where=np.where,
    stack=np.stack,
    logsumexp=_logsumexp,
    log_softmax=lambda x, axis: x - np.expand_dims(_logsumexp(x, axis), axis),
)


@dataclass(frozen=True)
class LogisticMixture:
    """The discretized logistic mixture of a model's outputs (module docstring)."""

    logits: Rows = Rows(0, LOGIT_STEP)  # mixture logits of R, G, B, nats
    means: Rows = Rows(3, Q4)  # mean offsets from the LS prediction, levels
    log_scales: Rows = Rows(6, LOGSCALE_STEP)  # log of the scale in levels, before the clip
    couplings: Rows = Rows(9, COUPLING_STEP)  # q4 of mean per q4 of an earlier residual
    coupling_pairs: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1))  # (channel, earlier one) a coupling row
    log_scale_min: int = LOGSCALE_MIN  # log-scale outputs are clipped to this range
    log_scale_max: int = LOGSCALE_MAX
    logit_range: int = LOGIT_RANGE  # the tables drop components this far below the top logit
    levels: int = 256  # values 0..levels - 1
    half_bin: float = 0.5  # a value's bin: value +- half_bin; 0 and levels - 1 take the tails
    min_mass: float = 1e-10  # the float mixture's floor on a component's mass
    max_components: int = 32  # K the compiled modules hold at the most

    @property
    def blocks(self) -> tuple[Rows, Rows, Rows, Rows]:
        return (self.logits, self.means, self.log_scales, self.couplings)

    @property
    def rows(self) -> int:
        """Output rows per component (12)."""
        return sum(block.count for block in self.blocks)

    @property
    def steps(self) -> tuple[int, ...]:
        """Integer units per natural unit of each output row, ``(rows,)``."""
        return tuple(step for block in self.blocks for step in (block.step,) * block.count)

    @property
    def log_scale_indices(self) -> range:
        """Every log-scale output after the clip, in units 1/LOGSCALE_STEP."""
        return range(self.log_scale_min, self.log_scale_max + 1)

    @property
    def logit_gaps(self) -> range:
        """Every distance below the top logit (1/LOGIT_STEP) whose component the tables keep."""
        return range(self.logit_range + 1)

    def constants(self) -> dict[str, int | float | list[list[int]]]:
        """These numbers under the names the compiled modules give theirs (their import checks)."""
        return {
            "OUT_ROWS": self.rows,
            "LOGIT_ROW": self.logits.start,
            "MEAN_ROW": self.means.start,
            "LOGSCALE_ROW": self.log_scales.start,
            "COUPLING_ROW": self.couplings.start,
            "LOGIT_STEP": self.logits.step,
            "Q4": self.means.step,
            "LOGSCALE_STEP": self.log_scales.step,
            "COUPLING_STEP": self.couplings.step,
            "LOGSCALE_MIN": self.log_scale_min,
            "LOGSCALE_MAX": self.log_scale_max,
            "LOGIT_RANGE": self.logit_range,
            "LEVELS": self.levels,
            "HALF_BIN": self.half_bin,
            "HALF_BIN_Q4": round(self.half_bin * self.means.step),
            "MIN_MASS": self.min_mass,
            "MAX_COMPONENTS": self.max_components,
            "COUPLING_PAIRS": [list(pair) for pair in self.coupling_pairs],
        }

    def log_scale(self, out: Any, ops: ArrayOps) -> Any:
        """Natural log-scales (n, 3, K) of outputs ``out`` (n, rows, K), clipped."""
        return self.log_scales.value(ops.clip(self.log_scales.of(out), self.log_scale_min, self.log_scale_max))

    def means_q4(self, out: Any, base_q4: Any, target: Any, ops: ArrayOps) -> Any:
        """Component means in q4, (n, 3, K): ``base_q4`` (n, 3) LS predictions plus the mean
        offsets, each channel shifted by its couplings times the earlier channels' residuals
        of ``target`` (n, 3) (``ops.floor`` rounds the shift)."""
        residuals = self.means.step * target - base_q4
        means = base_q4[:, :, None] + self.means.of(out)
        couplings, half = self.couplings.of(out), self.couplings.step // 2
        channels = []
        for channel in range(self.means.count):
            terms = [
                couplings[:, row] * residuals[:, earlier][:, None]
                for row, (coupled, earlier) in enumerate(self.coupling_pairs)
                if coupled == channel
            ]
            mean = means[:, channel]
            if terms:  # floor((alpha * d + 128) / 256), the kernel's round_shift by 8 bits
                mean = mean + ops.floor((reduce(operator.add, terms) + half) / self.couplings.step)
            channels.append(mean)
        return ops.stack(channels, 1)

    def log_mass(self, value: Any, mean: Any, log_scale: Any, ops: ArrayOps) -> Any:
        """log P(value) of each component, floored at ``min_mass``: ``value`` (n, 3, 1) in
        0..levels-1; ``mean`` (levels) and ``log_scale`` (natural) (n, 3, K)."""
        inv = ops.exp(-log_scale)
        upper = ops.where(value >= self.levels - 1, 1.0, ops.sigmoid((value + self.half_bin - mean) * inv))
        lower = ops.where(value <= 0, 0.0, ops.sigmoid((value - self.half_bin - mean) * inv))
        return ops.log(ops.clip(upper - lower, self.min_mass, None))

    def bits(self, out: Any, base_q4: Any, target: Any, ops: ArrayOps) -> Any:
        """Code length in bits, (n, 3), of ``target`` (n, 3) in 0..levels-1 under the float
        mixture of ``out`` (n, rows, K) in integer units, ``base_q4`` (n, 3) as in ``means_q4``."""
        mean = self.means.value(self.means_q4(out, base_q4, target, ops))
        log_mass = self.log_mass(target[:, :, None], mean, self.log_scale(out, ops), ops)
        log_weight = ops.log_softmax(self.logits.value(self.logits.of(out)), 2)
        return -ops.logsumexp(log_mass + log_weight, 2) / math.log(2)


MIXTURE = LogisticMixture()
