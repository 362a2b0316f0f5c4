"""The ANS layer alone (no model): random and extreme frequency tables round-trip, in the
chunked order the encoder uses, and real files cost what the tables say."""

import constriction
import numpy as np
import pytest

from neuralzip.core.ans import TERMINATOR_BITS, StageDecoder, StageEncoder
from neuralzip.core.tables import MIN_SUBPIXEL_BITS
from neuralzip.core.units import CDF_BITS, STAGE, WEIGHT_BITS


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
    assert np.array_equal(got, symbols) and not dec.exhausted()
    assert dec.pull_terminator() and dec.exhausted()
    ideal = -np.log2(p[np.arange(n), symbols]).sum()
    assert 8 * len(data) <= ideal * 1.01 + 64  # within 1 % of -log2 p (plus the final state)


def test_the_likeliest_bucket_still_costs_the_bound_the_decoder_checks():
    """The most skewed stage-1 table the integer model can make (every other value at its
    floor of one share in 2**CDF_BITS + 256): each symbol still adds MIN_SUBPIXEL_BITS, and
    a decoder holds at least the bound for what is left before every symbol."""
    weight, n = 1 << WEIGHT_BITS, 200_000
    table = np.full(STAGE, STAGE * weight, np.int64)
    table[0] = weight * ((1 << CDF_BITS) + STAGE * STAGE) - (STAGE * STAGE - STAGE) * weight
    tables = np.tile(table, (1000, 1))
    enc = StageEncoder()
    for _ in range(n // 1000):
        enc.prepend(np.zeros(1000, np.int32), tables)
    data = enc.finish()
    assert 8 * len(data) >= TERMINATOR_BITS + n * MIN_SUBPIXEL_BITS
    dec = StageDecoder(data)
    for left in range(n, 0, -1000):
        assert dec.valid_bits() >= TERMINATOR_BITS + left * MIN_SUBPIXEL_BITS
        assert not dec.pull(tables).any()
    assert dec.pull_terminator() and dec.exhausted()


def test_an_unterminated_stream_codes_leading_zeros_for_free():
    """Versions 1 and 2: without the terminator an empty coder codes symbol 0 at no cost,
    which is why their payloads have no lower bound (their decoder stops where it empties)."""
    tables = np.tile(np.arange(1, 17, dtype=np.int64), (500, 1))
    coder = constriction.stream.stack.AnsCoder()  # how versions 1 and 2 started: empty
    coder.encode_reverse(np.zeros(500, np.int32), constriction.stream.model.Categorical(perfect=False),
                         tables.astype(np.float64))
    assert coder.get_compressed().size == 0
    assert StageDecoder(b"").exhausted() and not StageDecoder(b"").pull(tables).any()
