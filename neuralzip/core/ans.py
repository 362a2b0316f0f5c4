"""Entropy coding of 16-symbol stages with constriction's ANS, from integer frequency tables.

This layer knows nothing of images or models: it takes int64 frequency tables (n, 16),
every entry positive, and symbols in 0..15. Tables are handed to constriction's
``Categorical(perfect=False)`` as float64 (exact for integers below 2**53), whose
quantization to its fixed-point precision is deterministic Rust code, so encoder and
decoder see identical models.

A terminated stream (format version 3 and later) starts the encoder with the ``TERMINATOR`` before
any symbol, so the decoder pulls it last. From there the coder's state never falls
below 2**32 while symbols remain: every symbol costs its information (an empty coder
would code symbol 0 for free), the payload's length bounds what it can hold, and a
decoder that runs out of bits before its image does is found out at once.

>>> import numpy as np
>>> freqs = np.tile(np.arange(1, 17, dtype=np.int64), (3, 1))
>>> enc = StageEncoder()
>>> enc.prepend(np.array([7]), freqs[2:])  # chunks go in reverse decoding order
>>> enc.prepend(np.array([15, 0]), freqs[:2])
>>> data = enc.finish()
>>> data.hex()
'eecbfae5c44c0000'
>>> dec = StageDecoder(data)
>>> dec.pull(freqs).tolist(), dec.valid_bits() >= TERMINATOR_BITS
([15, 0, 7], True)
>>> dec.pull_terminator(), dec.exhausted()
(True, True)
"""

from __future__ import annotations

import constriction
import numpy as np

from .units import STAGE

PRECISION = 24  # constriction's Categorical uses 24-bit fixed-point probabilities
_FAMILY = constriction.stream.model.Categorical(perfect=False)
# Coded first, from an empty coder, with uniform 16-symbol stages: it sets the state to
# exactly 2**32, the least from which every symbol costs its information.
TERMINATOR = np.array([0, 0, 0, 1], np.int32)
_UNIFORM = np.ones((len(TERMINATOR), STAGE))
TERMINATOR_BITS = 31  # valid bits the terminator leaves (32), less one for their rounding down


class CoderError(ValueError):
    """The compressed words cannot be decoded with the given tables."""


class StageEncoder:
    """ANS encoder of symbols that a ``StageDecoder`` pulls in order.

    ANS is a stack: ``prepend`` encodes symbols that the decoder will pull *before*
    everything encoded so far, so an encoder hands over its chunks in reverse decoding
    order and never holds more than one chunk's tables.
    """

    def __init__(self) -> None:
        """A terminated stream (version 3 and later): the ``TERMINATOR`` is coded first."""
        self._coder = constriction.stream.stack.AnsCoder()
        self._coder.encode_reverse(TERMINATOR, _FAMILY, _UNIFORM)

    def prepend(self, symbols: np.ndarray, freqs: np.ndarray) -> None:
        """Encode ``symbols`` (n,) with tables ``freqs`` (n, 16), to be pulled in this order
        ahead of what was encoded before."""
        if len(symbols):
            self._coder.encode_reverse(np.asarray(symbols, np.int32), _FAMILY, np.asarray(freqs, np.float64))

    def finish(self) -> bytes:
        return self._coder.get_compressed().astype("<u4").tobytes()


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
        """Symbols (int32 (n,)) of the next n entries, decoded with tables (n, 16)."""
        try:
            return self._coder.decode(_FAMILY, np.asarray(freqs, np.float64))
        except Exception as exc:
            raise CoderError(f"ANS decoding failed ({exc})") from None

    def valid_bits(self) -> int:
        """Bits of information the coder still holds (words left plus its state's)."""
        return self._coder.num_valid_bits()

    def pull_terminator(self) -> bool:
        """Whether the next symbols are the ``TERMINATOR`` (pulled after the last table)."""
        return bool(np.array_equal(self.pull(_UNIFORM), TERMINATOR))

    def exhausted(self) -> bool:
        """Whether every word was consumed (true after decoding an intact payload)."""
        return self._coder.is_empty()
