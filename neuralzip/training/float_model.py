"""Float (torch) twin of the integer model, for training only; the codec never imports it.

``MixtureMLP`` maps the fixed-point features of ``context`` (units 2**-8, see
``core.units.FEATURE_LAYOUT``) to the discretized logistic mixture of ``core.mixture``
(output layout and units: ``MIXTURE``). It rounds every quantity the integer model rounds
(activations to 2**-8, outputs to their integer units, with straight-through gradients),
so its NLL (``nll_bits``: ``MIXTURE.bits`` in torch) is what the exported integer model
costs, up to lookup-table resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import units
from ..core.mixture import MIXTURE, ArrayOps
from ..core.units import ACT_FRAC

ACT_MAX = units.ACT_MAX / (1 << ACT_FRAC)  # 128.0: the integer model's clamp, in float units


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


TORCH = ArrayOps(
    floor=_floor_ste,
    clip=torch.clamp,
    exp=torch.exp,
    log=torch.log,
    sigmoid=torch.sigmoid,
    where=torch.where,
    stack=torch.stack,
    logsumexp=torch.logsumexp,
    log_softmax=torch.log_softmax,
)  # the float mixture's array functions in torch; floor is straight-through


class MixtureMLP(nn.Module):
    """features (n, n_in) float, multiples of 2**-8 -> integer-valued outputs (n, MIXTURE.rows, K)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...] = (128, 128), components: int = 6):
        super().__init__()
        sizes = (n_in,) + tuple(hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], MIXTURE.rows * components)
        self.components = components
        self.register_buffer("steps", torch.tensor(MIXTURE.steps, dtype=torch.float32).repeat_interleave(components))
        with torch.no_grad():  # start as the LS predictor with a moderate scale
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
            self.out.bias.view(MIXTURE.rows, components)[MIXTURE.log_scales.span] = math.log(2.0)
            self.out.bias.view(MIXTURE.rows, components)[MIXTURE.means.span] = torch.linspace(-0.5, 0.5, components)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = float(1 << ACT_FRAC)
        for layer in self.hidden:
            x = torch.relu(layer(x)).clamp(max=ACT_MAX)
            x = _floor_ste(x * scale) / scale
        out = _round_ste(self.out(x) * self.steps)  # integer units
        return out.view(-1, MIXTURE.rows, self.components)


def nll_bits(out: torch.Tensor, base_q4: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Code length in bits per pixel and channel, (n, 3), of ``target`` (n, 3) in 0..255.

    ``out``: model output (n, MIXTURE.rows, K) in integer units; ``base_q4``: (n, 3) LS
    predictions in q4 with the actual earlier channels of the pixel (what the decoder knows).
    """
    return MIXTURE.bits(out, base_q4, target, TORCH)
