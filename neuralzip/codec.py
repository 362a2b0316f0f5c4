"""The codec: image <-> .nz bytes. Owns the file format; talks to the model, the integer
tables and the coder through small interfaces.

Pipeline: image -> context (``analysis``/``context``) -> integer model (``intmodel``) ->
frequency tables (``likelihood``) -> ANS (``coder``) -> container (``container``).
Encoding runs every pixel at once; decoding runs one anti-diagonal of the wavefront at a
time (``context.wavefront``), and both compute bit-identical tables.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import zoo
from .analysis import analyse
from .coder import PRECISION, CoderError, StageDecoder, StageEncoder
from .container import FormatError, Header
from .context import LS_TOTAL, Context, fit_ls, wavefront
from .intmodel import channel_mixture, quantize_features
from .likelihood import STAGE, coarse_frequencies, fine_frequencies

IMAGE_LS_MIN_PIXELS = 16384  # smaller images use the model's default LS coefficients
_CHUNK = 1 << 16  # pixels per batch of the full-image model pass
DEFAULT_MAX_PIXELS = 1 << 28


class DecodeError(ValueError):
    """The file cannot be decoded; the message says why."""


@dataclass
class EncodeStats:
    """What an encode cost. ``nll_bits``: ideal -log2 P of all subpixels under the integer
    tables; ``file_bytes``: real file size, header included."""

    nll_bits: float
    file_bytes: int
    subpixels: int
    seconds: float

    @property
    def nll_bpsp(self) -> float:
        return self.nll_bits / self.subpixels

    @property
    def bpsp(self) -> float:
        return 8 * self.file_bytes / self.subpixels


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB array, got {image.dtype} {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")
    return np.ascontiguousarray(image)


def _checksum(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image).tobytes())


def decoding_order(symbols: np.ndarray, freqs: np.ndarray, height: int, width: int):
    """Yield each wavefront step's (symbols (m,), tables (m, 16)) in the order the decoder
    pulls them: channel, then stage, then pixel. Inputs as from ``frequency_tables``."""
    for rows, cols in wavefront(height, width):
        idx = rows * width + cols
        yield symbols[idx].transpose(1, 2, 0).ravel(), freqs[idx].transpose(1, 2, 0, 3).reshape(-1, STAGE)


class Codec:
    """Encoder and decoder of one shipped model."""

    def __init__(self, model: zoo.ZooModel):
        self.zoo_model = model
        self.mlp, self.tables = model.model.mlp, model.model.tables

    @classmethod
    def named(cls, name: str = zoo.DEFAULT_MODEL) -> "Codec":
        return cls(zoo.load(name))

    # -- encoding ---------------------------------------------------------------------------
    def frequency_tables(self, image: np.ndarray, coefs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every subpixel's two coding stages, full-image pass.

        Returns (symbols int64 (n, 3, 2), freqs int64 (n, 3, 2, 16), ideal bits float64
        (n, 3)) in raster pixel order; stage 0 codes ``v // 16``, stage 1 ``v % 16``.
        """
        terms = analyse(image, coefs)
        n = terms.pixels.shape[0]
        symbols = np.empty((n, 3, 2), np.int64)
        freqs = np.empty((n, 3, 2, STAGE), np.int64)
        bits = np.empty((n, 3))
        for a in range(0, n, _CHUNK):
            sl = slice(a, min(a + _CHUNK, n))
            out = self.mlp(terms.features[sl])
            for ch in range(3):
                prepared = channel_mixture(out, ch, terms.base_q4[sl, ch], terms.residuals_q4[sl]).prepared(self.tables)
                values = terms.pixels[sl, ch]
                bucket = values // STAGE
                symbols[sl, ch, 0], symbols[sl, ch, 1] = bucket, values % STAGE
                freqs[sl, ch, 0] = coarse_frequencies(prepared, self.tables)
                freqs[sl, ch, 1] = fine_frequencies(prepared, self.tables, bucket)
                own = np.take_along_axis(freqs[sl, ch, 1], (values % STAGE)[:, None], 1)[:, 0]
                bits[sl, ch] = np.log2(freqs[sl, ch, 0].sum(1)) - np.log2(own)
        return symbols, freqs, bits

    def choose_coefs(self, image: np.ndarray) -> tuple[np.ndarray, bool]:
        """(LS coefficients, whether they are the image's own and go into the file)."""
        if image.shape[0] * image.shape[1] >= IMAGE_LS_MIN_PIXELS:
            return fit_ls(image), True
        return self.zoo_model.model.default_coefs, False

    def encode(self, image: np.ndarray) -> tuple[bytes, EncodeStats]:
        """Compress a uint8 (H, W, 3) image; returns (file bytes, stats)."""
        t0 = time.perf_counter()
        image = _check_image(image)
        height, width, _ = image.shape
        with threadpool_limits(1, "blas"):  # threads fight over 2 cores more than they help
            coefs, image_ls = self.choose_coefs(image)
            symbols, freqs, bits = self.frequency_tables(image, coefs)
        encoder = StageEncoder()
        for step_symbols, step_freqs in decoding_order(symbols, freqs, height, width):
            encoder.push(step_symbols, step_freqs)
        payload = encoder.finish()
        header = Header(
            model_name=self.zoo_model.name, model_sha=self.zoo_model.tag, width=width, height=height,
            mode=0, precision=PRECISION, payload_length=len(payload), checksum=_checksum(image),
            coefs=coefs if image_ls else None,
        )
        data = header.pack() + payload
        return data, EncodeStats(float(bits.sum()), len(data), image.size, time.perf_counter() - t0)

    # -- decoding ---------------------------------------------------------------------------
    def read_header(self, data: bytes) -> tuple[Header, int]:
        """Parse and check that this codec's model made the file."""
        header, offset = Header.unpack(data, LS_TOTAL)
        if header.model_name != self.zoo_model.name:
            raise DecodeError(f"file was made with model {header.model_name!r}, not {self.zoo_model.name!r}")
        if header.model_sha != self.zoo_model.tag:
            raise DecodeError(
                f"file was made with other weights of model {header.model_name!r} "
                f"(weights {header.model_sha.hex()}, installed {self.zoo_model.tag.hex()})"
            )
        if header.precision != PRECISION:
            raise DecodeError(f"unsupported coder precision {header.precision}")
        return header, offset

    def decode(self, data: bytes, progress: Callable[[int, int], None] | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS, record: list | None = None) -> np.ndarray:
        """Decompress .nz bytes to a uint8 (H, W, 3) image, one wavefront step at a time.

        ``progress(step, total)`` is called after each step. Raises FormatError or
        DecodeError on a bad file, before allocating anything for an oversized one.
        ``record``, if given, receives every frequency table the decoder builds, in order.
        """
        header, offset = self.read_header(data)
        height, width = header.height, header.width
        if height * width > max_pixels:
            raise DecodeError(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
        coefs = header.coefs if header.coefs is not None else self.zoo_model.model.default_coefs
        ctx = Context(height, width, coefs)
        try:
            decoder = StageDecoder(data[offset:])
            steps = wavefront(height, width)
            with threadpool_limits(1, "blas"):  # one diagonal is a small matrix: threads only add latency
                for step, (rows, cols) in enumerate(steps, 1):
                    self._decode_step(ctx, decoder, rows, cols, record)
                    if progress is not None:
                        progress(step, len(steps))
        except CoderError as exc:
            raise DecodeError(f"the file is corrupted: {exc}") from None
        image = ctx.pixels.astype(np.uint8)
        if not decoder.exhausted() or _checksum(image) != header.checksum:
            raise DecodeError("decoded pixels fail the checksum: the file is corrupted")
        return image

    def _decode_step(self, ctx: Context, decoder: StageDecoder, rows: np.ndarray, cols: np.ndarray,
                     record: list | None) -> None:
        """Decode the pixels (rows, cols) of one wavefront step into ``ctx``."""
        feats, known = ctx.features(rows, cols)
        out = self.mlp(quantize_features(feats))
        current = np.zeros((rows.size, 3), np.int64)
        residuals = np.zeros((rows.size, 3), np.int64)
        for ch in range(3):
            base = ctx.ls_complete(ch, known[:, ch], current)
            prepared = channel_mixture(out, ch, base, residuals).prepared(self.tables)
            coarse = coarse_frequencies(prepared, self.tables)
            bucket = decoder.pull(coarse)
            fine = fine_frequencies(prepared, self.tables, bucket)
            current[:, ch] = STAGE * bucket + decoder.pull(fine)
            if record is not None:
                record += [coarse, fine]
            residuals[:, ch] = 16 * current[:, ch] - base
        ctx.pixels[rows, cols] = current
        ctx.residuals[rows, cols] = residuals


def peek_model(data: bytes) -> str:
    """Name of the model a .nz file was made with."""
    return Header.unpack(data, LS_TOTAL)[0].model_name


def compress(image: np.ndarray, model: str = zoo.DEFAULT_MODEL) -> bytes:
    """Compress a uint8 (H, W, 3) RGB image with a shipped model."""
    return Codec.named(model).encode(image)[0]


def decompress(data: bytes) -> np.ndarray:
    """Decompress .nz bytes made by any shipped model."""
    return Codec.named(peek_model(data)).decode(data)
