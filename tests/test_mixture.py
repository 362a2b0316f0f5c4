"""The one description of the discretized logistic mixture (``core.mixture.MIXTURE``): the
training loss is it in torch, the same numbers as the loss written out by hand before;
in numpy it is what the integer tables cost (of the reference, which does not read it),
within their resolution; the compiled modules hold its layout and constants."""

import math
from dataclasses import replace

import numpy as np
import pytest

from neuralzip.core import _adapt, _kernel, kernel
from neuralzip.core.mixture import MIXTURE, NUMPY, Rows
from neuralzip.core.tables import Tables
from reference import channel_mixture, mixture_cdf

torch = pytest.importorskip("torch")


def _outputs(n=4000, k=5, seed=0):
    """Random outputs (n, 12, K) in integer units, LS bases (n, 3) q4 and targets (n, 3),
    the tails 0 and 255 and clipped log-scales among them."""
    rng = np.random.default_rng(seed)
    out = np.concatenate([
        rng.integers(-300, 300, (n, 3, k)),  # logits
        rng.integers(-200, 200, (n, 3, k)),  # mean offsets (q4)
        rng.integers(-160, 230, (n, 3, k)),  # log-scales, some beyond -128..192
        rng.integers(-400, 400, (n, 3, k)),  # couplings
    ], axis=1)
    base = rng.integers(0, 255 * 16 + 1, (n, 3))
    target = np.clip(base // 16 + rng.integers(-20, 21, (n, 3)), 0, 255)
    return out, base, target


def _old_nll_bits(out, base_q4, target):
    """The training loss as float_model.py wrote it before the description (issue 23)."""
    def floor_ste(x):
        return x + (torch.floor(x) - x).detach()

    logits = out[:, 0:3] / 16
    mean_q4 = base_q4[:, :, None] + out[:, 3:6]
    log_scale = out[:, 6:9].clamp(-128, 192) / 32
    d_r = (16 * target[:, 0] - base_q4[:, 0])[:, None]
    d_g = (16 * target[:, 1] - base_q4[:, 1])[:, None]
    alpha, beta, gamma = out[:, 9], out[:, 10], out[:, 11]
    coupled_g = floor_ste((alpha * d_r + 128) / 256)
    coupled_b = floor_ste((beta * d_r + gamma * d_g + 128) / 256)
    mean_q4 = torch.stack([mean_q4[:, 0], mean_q4[:, 1] + coupled_g, mean_q4[:, 2] + coupled_b], 1)
    value, mean = target[:, :, None], mean_q4 / 16
    inv = torch.exp(-log_scale)
    upper = torch.where(value >= 255, torch.ones_like(mean), torch.sigmoid((value + 0.5 - mean) * inv))
    lower = torch.where(value <= 0, torch.zeros_like(mean), torch.sigmoid((value - 0.5 - mean) * inv))
    logp = torch.log((upper - lower).clamp_min(1e-10))
    mixed = torch.logsumexp(logp + torch.log_softmax(logits, dim=2), dim=2)
    return -mixed / math.log(2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_training_loss_gives_the_numbers_and_gradients_of_the_old_formula(dtype):
    from neuralzip.training.float_model import nll_bits

    out, base, target = (torch.tensor(a, dtype=dtype) for a in _outputs())
    results = []
    for loss in (nll_bits, _old_nll_bits):
        leaf = out.clone().requires_grad_(True)
        bits = loss(leaf, base, target)
        bits.sum().backward()
        results.append((bits.detach(), leaf.grad))
    (new, new_grad), (old, old_grad) = results
    assert torch.equal(new, old) and torch.equal(new_grad, old_grad)
    assert torch.isfinite(new).all() and torch.isfinite(new_grad).all()


def test_numpy_and_torch_compute_the_same_float_mixture():
    from neuralzip.training.float_model import TORCH

    out, base, target = _outputs(n=1000)
    in_numpy = MIXTURE.bits(out, base, target, NUMPY)
    in_torch = MIXTURE.bits(*(torch.tensor(a, dtype=torch.float64) for a in (out, base, target)), TORCH)
    assert in_numpy.shape == (1000, 3) and np.allclose(in_numpy, in_torch.numpy(), rtol=1e-6)


def test_the_integer_tables_cost_what_the_float_mixture_costs():
    """The tables are the float mixture quantized: the same bits up to their resolution
    (the logistic at steps of 2**-10, weights of 2**-12, every value's floor of about
    2**-20 of the mass)."""
    out, base, target = _outputs(n=3000, seed=1)
    rng = np.random.default_rng(2)
    out[:, 0:3] = rng.integers(-40, 40, out[:, 0:3].shape)  # weights within e**5: 12 bits resolve them
    out[:, 6:9] = rng.integers(32, 96, out[:, 6:9].shape)  # scales of e to e**3 levels
    tables = Tables.build()
    float_bits = MIXTURE.bits(out, base, target, NUMPY)
    residuals = 16 * target - base
    for ch in range(3):
        prepared = channel_mixture(out, ch, base[:, ch], residuals).prepared(tables)
        values = target[:, ch]
        c = mixture_cdf(prepared, tables, np.stack([values, values + 1, np.full_like(values, 256)], axis=1))
        gap = -np.log2((c[:, 1] - c[:, 0]) / c[:, 2]) - float_bits[:, ch]
        likely = float_bits[:, ch] < 14  # far above the floor
        assert likely.mean() > 0.95 and np.abs(gap[likely]).max() < 0.05 and abs(gap[likely].mean()) < 1e-3, ch


def test_the_layout_is_twelve_rows_in_their_units():
    assert MIXTURE.rows == 12
    assert MIXTURE.steps == (16,) * 3 + (16,) * 3 + (32,) * 3 + (256,) * 3
    assert [b.span for b in MIXTURE.blocks] == [slice(0, 3), slice(3, 6), slice(6, 9), slice(9, 12)]
    assert list(MIXTURE.log_scale_indices) == list(range(-128, 193)) and len(MIXTURE.logit_gaps) == 257


def test_the_compiled_modules_hold_the_mixture_they_are_checked_against(monkeypatch):
    """Every mixture constant the kernel and the adaptation's mirror use is exported and
    compared at import: a layout edit on one side alone fails."""
    layout = {"OUT_ROWS", "LOGIT_ROW", "MEAN_ROW", "LOGSCALE_ROW", "COUPLING_ROW", "COUPLING_STEP", "LEVELS",
              "LOGSCALE_MIN", "LOGSCALE_MAX", "MAX_COMPONENTS", "COUPLING_PAIRS"}
    assert layout | {"HALF_BIN_Q4", "Q4", "LOGIT_RANGE", "OUT_LIMIT"} <= {*_kernel.CONSTANTS, *_kernel.LAYOUTS}
    assert set(_adapt.CONSTANTS) == layout | {"HALF_BIN", "Q4", "LOGIT_STEP", "LOGSCALE_STEP", "MIN_MASS"}
    assert all(MIXTURE.constants()[name] == value for name, value in _adapt.CONSTANTS.items())
    assert kernel._kernel_disagrees() == []
    swapped = ((1, 0), (2, 1), (2, 0))  # B's couplings read the other way round
    edited = replace(MIXTURE, couplings=Rows(8, 256), half_bin=0.25, coupling_pairs=swapped)
    monkeypatch.setattr(kernel, "MIXTURE", edited)
    assert sorted(kernel._kernel_disagrees()) == ["COUPLING_PAIRS", "COUPLING_ROW", "HALF_BIN_Q4"]
