"""The ANS layer alone (no model): random and extreme frequency tables round-trip, in the
chunked order the encoder uses, and real files cost what the tables say."""

import numpy as np
import pytest

from neuralzip.core.ans import StageDecoder, StageEncoder


def _tables(rng, n: int, kind: str) -> np.ndarray:
    if kind == "random":
        return rng.integers(1, 1 << 34, (n, 16)).astype(np.int64)
    if kind == "peaked":  # one symbol takes all but the minimum of the mass
        t = np.ones((n, 16), np.int64)
        t[np.arange(n), rng.integers(0, 16, n)] = (1 << 36) - 15
        return t
    return np.full((n, 16), 1 << 20, np.int64)  # uniform


@pytest.mark.parametrize("kind", ["random", "peaked", "uniform"])
def test_round_trip_in_chunks_pushed_last_first(kind):
    rng = np.random.default_rng(len(kind))
    n = 5000
    tables = _tables(rng, n, kind)
    p = tables / tables.sum(1, keepdims=True)
    symbols = np.array([rng.choice(16, p=row) for row in p])
    if kind == "peaked":  # also the unlikely symbols, which cost ~32 bits each
        symbols[::97] = (symbols[::97] + 1) % 16
    cuts = np.sort(rng.choice(np.arange(1, n), 6, replace=False))
    chunks = list(zip([0, *cuts], [*cuts, n]))
    enc = StageEncoder()
    for a, b in reversed(chunks):
        enc.prepend(symbols[a:b], tables[a:b])
    data = enc.finish()
    dec = StageDecoder(data)
    got = np.concatenate([dec.pull(tables[a:b]) for a, b in chunks])
    assert np.array_equal(got, symbols) and dec.exhausted()
    ideal = -np.log2(p[np.arange(n), symbols]).sum()
    assert 8 * len(data) <= ideal * 1.01 + 64  # within 1 % of -log2 p (plus the final state)
