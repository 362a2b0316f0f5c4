"""Float (torch) twin of the integer model, for training only; the codec never imports it.

``MixtureMLP`` maps the fixed-point features of ``context`` (units 2**-8, see
``core.units.FEATURE_LAYOUT``) to per-channel discretized logistic mixtures. It rounds
every quantity the integer model rounds (activations to 2**-8, outputs to their integer
units, with straight-through gradients), so its NLL is what the exported integer model
costs, up to lookup-table resolution.

Output layout, ``(12, K)`` per pixel: rows 0-2 mixture logits of R, G, B; 3-5 mean offsets;
6-8 log-scales; 9-11 channel coupling alpha (G from R's residual), beta (B from R's),
gamma (B from G's).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..core import units
from ..core.units import ACT_FRAC, LOGIT_STEP, LOGSCALE_MAX, LOGSCALE_MIN, LOGSCALE_STEP, OUTPUT_STEPS

ACT_MAX = units.ACT_MAX / (1 << ACT_FRAC)  # 128.0: the integer model's clamp, in float units


def _round_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.round(x) - x).detach()


def _floor_ste(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.floor(x) - x).detach()


class MixtureMLP(nn.Module):
    """features (n, n_in) float, multiples of 2**-8 -> integer-valued outputs (n, 12, K)."""

    def __init__(self, n_in: int, hidden: tuple[int, ...] = (128, 128), components: int = 6):
        super().__init__()
        sizes = (n_in,) + tuple(hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], 12 * components)
        self.components = components
        self.register_buffer("steps", torch.tensor(OUTPUT_STEPS, dtype=torch.float32).repeat_interleave(components))
        with torch.no_grad():  # start as the LS predictor with a moderate scale
            self.out.weight.mul_(0.01)
            self.out.bias.zero_()
            self.out.bias.view(12, components)[6:9] = math.log(2.0)
            self.out.bias.view(12, components)[3:6] = torch.linspace(-0.5, 0.5, components)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = float(1 << ACT_FRAC)
        for layer in self.hidden:
            x = torch.relu(layer(x)).clamp(max=ACT_MAX)
            x = _floor_ste(x * scale) / scale
        out = _round_ste(self.out(x) * self.steps)  # integer units
        return out.view(-1, 12, self.components)


def _discretized_log_prob(value: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """log P(value) per component; value (n, 1) in 0..255, mean/log_scale (n, K) in levels."""
    inv = torch.exp(-log_scale)
    upper = torch.where(value >= 255, torch.ones_like(mean), torch.sigmoid((value + 0.5 - mean) * inv))
    lower = torch.where(value <= 0, torch.zeros_like(mean), torch.sigmoid((value - 0.5 - mean) * inv))
    return torch.log((upper - lower).clamp_min(1e-10))


def nll_bits(out: torch.Tensor, base_q4: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Code length in bits per pixel and channel, (n, 3), of ``target`` (n, 3) in 0..255.

    ``out``: model output (n, 12, K) in integer units; ``base_q4``: (n, 3) LS predictions
    in q4 with the actual earlier channels of the pixel (what the decoder knows).
    """
    logits = out[:, 0:3] / LOGIT_STEP
    mean_q4 = base_q4[:, :, None] + out[:, 3:6]
    log_scale = out[:, 6:9].clamp(LOGSCALE_MIN, LOGSCALE_MAX) / LOGSCALE_STEP
    d_r = (16 * target[:, 0] - base_q4[:, 0])[:, None]
    d_g = (16 * target[:, 1] - base_q4[:, 1])[:, None]
    alpha, beta, gamma = out[:, 9], out[:, 10], out[:, 11]
    coupled_g = _floor_ste((alpha * d_r + 128) / 256)
    coupled_b = _floor_ste((beta * d_r + gamma * d_g + 128) / 256)
    mean_q4 = torch.stack([mean_q4[:, 0], mean_q4[:, 1] + coupled_g, mean_q4[:, 2] + coupled_b], 1)
    logp = _discretized_log_prob(target[:, :, None], mean_q4 / 16, log_scale)
    mixed = torch.logsumexp(logp + torch.log_softmax(logits, dim=2), dim=2)
    return -mixed / math.log(2)
