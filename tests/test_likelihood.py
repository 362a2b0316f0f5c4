"""Integer lookup tables and frequency tables (of the numpy reference, which the kernel
matches value for value: test_exactness)."""

import numpy as np

from neuralzip import zoo
from neuralzip.core.tables import Tables
from neuralzip.core.units import CDF_BITS
from reference import Mixture, coarse_frequencies, fine_frequencies, mixture_cdf


def _mixture(n=500, k=4, seed=0):
    rng = np.random.default_rng(seed)
    return Mixture(
        mean_q4=rng.integers(-200, 4300, (n, k)),
        logscale_idx=rng.integers(-200, 250, (n, k)),
        logit_q4=rng.integers(-400, 400, (n, k)),
    )


def test_shipped_tables_equal_exact_decimal_tables():
    built = Tables.build()
    for name in zoo.available():
        shipped = zoo.load(name).model.tables
        for a, b in zip(built.arrays().values(), shipped.arrays().values()):
            assert np.array_equal(a, b)


def test_sigmoid_table_is_monotone_and_spans_0_to_one():
    sig = Tables.build().sigmoid
    assert sig[0] == 0 and sig[-1] == 1 << CDF_BITS and np.all(np.diff(sig) >= 0)


def test_two_stages_factorise_the_value_probability():
    tables = Tables.build()
    prep = _mixture().prepared(tables)
    coarse = coarse_frequencies(prep, tables)
    assert (coarse > 0).all()
    values = np.random.default_rng(1).integers(0, 256, coarse.shape[0])
    fine = fine_frequencies(prep, tables, values // 16)
    assert (fine > 0).all()
    # bucket frequency equals the sum of its values' frequencies: bits add up exactly
    assert np.array_equal(np.take_along_axis(coarse, (values // 16)[:, None], 1)[:, 0], fine.sum(1))
    total = coarse.sum(1)
    own = np.take_along_axis(fine, (values % 16)[:, None], 1)[:, 0]
    edges = np.stack([values, values + 1, np.full_like(values, 256)], axis=1)
    c = mixture_cdf(prep, tables, edges)  # the value's own bin and the total, straight from C
    assert np.allclose(-np.log2(own / total), -np.log2((c[:, 1] - c[:, 0]) / c[:, 2]))


def test_every_value_costs_at_most_about_20_bits():
    tables = Tables.build()
    prep = _mixture(n=50).prepared(tables)
    c = mixture_cdf(prep, tables, np.tile(np.arange(257), (50, 1)))
    freq = np.diff(c, axis=1)
    assert (freq > 0).all() and (-np.log2(freq / c[:, -1:])).max() < 20.5
