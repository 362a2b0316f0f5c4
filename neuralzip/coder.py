"""Entropy coding of 16-symbol stages with constriction's ANS, from integer frequency tables.

This layer knows nothing of images or models: it takes int64 frequency tables (n, 16),
every entry positive, and symbols in 0..15. Tables are handed to constriction's
``Categorical(perfect=False)`` as float64 (exact for integers below 2**53), whose
quantization to its fixed-point precision is deterministic Rust code, so encoder and
decoder see identical models.

>>> import numpy as np
>>> freqs = np.tile(np.arange(1, 17, dtype=np.int64), (3, 1))
>>> enc = StageEncoder()
>>> enc.push(np.array([15, 0, 7]), freqs)
>>> data = enc.finish()
>>> data.hex()
'fee1e1ee'
>>> StageDecoder(data).pull(freqs).tolist()
[15, 0, 7]
"""

from __future__ import annotations

import constriction
import numpy as np

PRECISION = 24  # constriction's Categorical uses 24-bit fixed-point probabilities
_FAMILY = constriction.stream.model.Categorical(perfect=False)


class CoderError(ValueError):
    """The compressed words cannot be decoded with the given tables."""


class StageEncoder:
    """Collects (symbols, tables) in decoding order; ``finish`` returns the ANS words."""

    def __init__(self) -> None:
        self._symbols: list[np.ndarray] = []
        self._tables: list[np.ndarray] = []

    def push(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        self._symbols.append(np.asarray(symbols, np.int32))
        self._tables.append(np.asarray(freqs, np.float64))

    def finish(self) -> bytes:
        coder = constriction.stream.stack.AnsCoder()
        if self._symbols:
            coder.encode_reverse(np.concatenate(self._symbols), _FAMILY, np.concatenate(self._tables))
        return coder.get_compressed().astype("<u4").tobytes()


class StageDecoder:
    """Decodes symbols pushed by a ``StageEncoder``, in the same order, with equal tables."""

    def __init__(self, data: bytes) -> None:
        if len(data) % 4:
            raise CoderError("payload length is not a multiple of 4 bytes")
        words = np.frombuffer(data, "<u4").astype(np.uint32)
        try:
            self._coder = constriction.stream.stack.AnsCoder(words)
        except Exception as exc:  # constriction rejects e.g. a zero last word
            raise CoderError(f"invalid ANS payload ({exc})") from None

    def pull(self, freqs: np.ndarray) -> np.ndarray:
        """Symbols (int64 (n,)) of the next n entries, decoded with tables (n, 16)."""
        try:
            return self._coder.decode(_FAMILY, np.asarray(freqs, np.float64)).astype(np.int64)
        except Exception as exc:
            raise CoderError(f"ANS decoding failed ({exc})") from None

    def exhausted(self) -> bool:
        """Whether every word was consumed (true after decoding an intact payload)."""
        return self._coder.is_empty()
