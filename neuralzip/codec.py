"""The codec: image <-> .nz bytes. Owns the file format; talks to the model, the integer
tables and the coder through small interfaces.

Pipeline: image -> context (``analysis``/``context``) -> integer model (``intmodel``) ->
frequency tables (``likelihood``) -> ANS (``coder``) -> container (``container``).
Encoding runs every pixel at once; decoding runs one anti-diagonal of the wavefront at a
time (``context.wavefront``), and both compute bit-identical tables.
"""

from __future__ import annotations

import os
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from . import zoo
from .alpha import decode_alpha, encode_alpha
from .analysis import analyse
from .coder import PRECISION, CoderError, StageDecoder, StageEncoder
from .container import MODES, Header
from .context import Context, complete_coefs, fit_ls, wavefront
from .intmodel import channel_mixture, quantize_features
from .likelihood import STAGE, coarse_frequencies, fine_frequencies

IMAGE_LS_MIN_PIXELS = 16384  # smaller images use the model's default LS coefficients
_CHUNK = 1 << 13  # pixels per batch of the full-image pass (small enough to stay in cache)
DEFAULT_MAX_PIXELS = 1 << 26  # 67 megapixels: the decoder's context then takes 3.2 GB
_MODE_OF_CHANNELS = {mode.channels: code for code, mode in MODES.items()}  # 1: L, 2: LA, 3: RGB, 4: RGBA


class DecodeError(ValueError):
    """The file cannot be decoded; the message says why."""


class UnsupportedImage(ValueError):
    """An image neuralzip cannot code; the message names its mode, pixel type or shape."""


@dataclass
class EncodeStats:
    """What an encode cost. ``nll_bits``: ideal -log2 P, under the integer tables, of the
    ``model_subpixels`` colour subpixels coded by the model; ``file_bytes``: real file size,
    header and alpha included; ``subpixels``: all of the image's, alpha included."""

    nll_bits: float
    file_bytes: int
    subpixels: int
    seconds: float
    model_subpixels: int

    @property
    def nll_bpsp(self) -> float:
        """Ideal bits per colour subpixel."""
        return self.nll_bits / self.model_subpixels

    @property
    def bpsp(self) -> float:
        """File bits per subpixel, alpha included."""
        return 8 * self.file_bytes / self.subpixels


def split_mode(image: np.ndarray) -> tuple[np.ndarray, int]:
    """(pixels uint8 (H, W, C), mode code) of a uint8 array: (H, W) or (H, W, 1) is L,
    (H, W, 2) LA, (H, W, 3) RGB, (H, W, 4) RGBA. Raises UnsupportedImage otherwise."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise UnsupportedImage(f"unsupported pixel type {image.dtype} (neuralzip codes 8-bit images)")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in _MODE_OF_CHANNELS:
        raise UnsupportedImage(f"unsupported image shape {image.shape}: expected (H, W) or (H, W, C), C = 1..4")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise UnsupportedImage("image is empty")
    return np.ascontiguousarray(image), _MODE_OF_CHANNELS[image.shape[2]]


def _checksum(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image).tobytes())


def decoding_order(symbols: np.ndarray, freqs: np.ndarray, height: int, width: int):
    """Yield each wavefront step's (symbols (m,), tables (m, 16)) in the order the decoder
    pulls them: coded channel, then stage, then pixel. Inputs as from ``frequency_tables``."""
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
    def frequency_tables(self, image: np.ndarray, coefs: np.ndarray,
                         colour_channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The two coding stages of every subpixel of the first ``colour_channels`` channels
        of a uint8 (H, W, 3) image (a grey one as three copies), full-image pass.

        Returns (symbols int64 (n, C, 2), freqs int64 (n, C, 2, 16), ideal bits float64
        (n, C)) in raster pixel order, C = ``colour_channels``; stage 0 codes ``v // 16``,
        stage 1 ``v % 16``.
        """
        terms = analyse(image, coefs)
        n = terms.pixels.shape[0]
        symbols = np.empty((n, colour_channels, 2), np.int64)
        freqs = np.empty((n, colour_channels, 2, STAGE), np.int64)
        bits = np.empty((n, colour_channels))

        def chunk(a: int) -> None:  # fills rows a.. of the outputs; chunks are independent
            sl = slice(a, min(a + _CHUNK, n))
            out = self.mlp(terms.features[sl])
            for ch in range(colour_channels):
                prepared = channel_mixture(out, ch, terms.base_q4[sl, ch], terms.residuals_q4[sl]).prepared(self.tables)
                values = terms.pixels[sl, ch]
                bucket = values // STAGE
                symbols[sl, ch, 0], symbols[sl, ch, 1] = bucket, values % STAGE
                freqs[sl, ch, 0] = coarse_frequencies(prepared, self.tables)
                freqs[sl, ch, 1] = fine_frequencies(prepared, self.tables, bucket)
                own = np.take_along_axis(freqs[sl, ch, 1], (values % STAGE)[:, None], 1)[:, 0]
                bits[sl, ch] = np.log2(freqs[sl, ch, 0].sum(1)) - np.log2(own)

        # numpy releases the GIL in its array loops: one thread per core, one BLAS thread each
        with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(chunk, range(0, n, _CHUNK)))
        return symbols, freqs, bits

    def choose_coefs(self, image: np.ndarray, colour_channels: int) -> tuple[np.ndarray, bool]:
        """(all LS_TOTAL coefficients, whether they are the image's own and go into the file)
        of a uint8 (H, W, 3) image with ``colour_channels`` coded channels."""
        own = image.shape[0] * image.shape[1] >= IMAGE_LS_MIN_PIXELS
        coefs = fit_ls(image) if own else self.zoo_model.model.default_coefs
        return complete_coefs(coefs, colour_channels), own

    def encode(self, image: np.ndarray, progress: Callable[[int, int], None] | None = None,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, EncodeStats]:
        """Compress a uint8 image of a shape ``split_mode`` accepts; returns (file bytes, stats).

        Colour goes through the model (a grey image as one channel); alpha goes to the
        alpha block. ``progress(done, total)`` is called as encoding advances. Raises
        UnsupportedImage for an image of more than ``max_pixels`` pixels.
        """
        t0 = time.perf_counter()
        pixels, code = split_mode(image)
        mode = MODES[code]
        height, width, _ = pixels.shape
        if height * width > max_pixels:
            raise UnsupportedImage(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
        colour = pixels[:, :, : mode.colour_channels]
        rgb = colour if mode.colour_channels == 3 else np.repeat(colour, 3, axis=2)
        with threadpool_limits(1, "blas"):  # threads fight over 2 cores more than they help
            coefs, image_ls = self.choose_coefs(rgb, mode.colour_channels)
            symbols, freqs, bits = self.frequency_tables(rgb, coefs, mode.colour_channels)
        encoder = StageEncoder()
        for step_symbols, step_freqs in decoding_order(symbols, freqs, height, width):
            encoder.push(step_symbols, step_freqs)
        payload = encoder.finish()
        if progress is not None:
            progress(1, 1)
        header = Header(
            model_name=self.zoo_model.name, model_sha=self.zoo_model.tag, width=width, height=height,
            mode=code, precision=PRECISION, payload_length=len(payload), checksum=_checksum(pixels),
            coefs=coefs[: mode.ls_coefs] if image_ls else None,
            alpha=encode_alpha(pixels[:, :, -1]) if mode.alpha else None,
        )
        data = header.pack() + payload
        return data, EncodeStats(float(bits.sum()), len(data), pixels.size, time.perf_counter() - t0, bits.size)

    # -- decoding ---------------------------------------------------------------------------
    @classmethod
    def for_file(cls, data: bytes) -> "Codec":
        """Codec of the shipped model that made the .nz bytes ``data``.

        Raises FormatError on a malformed header, DecodeError if that model is not installed.
        """
        name = Header.unpack(data)[0].model_name
        if name not in zoo.available():
            raise DecodeError(f"file was made with model {name!r}, which is not installed "
                              f"(available: {', '.join(zoo.available())})")
        return cls.named(name)

    def read_header(self, data: bytes) -> tuple[Header, int]:
        """Parse and check that this codec's model made the file."""
        header, offset = Header.unpack(data)
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
        """Decompress .nz bytes to uint8 pixels, one wavefront step at a time: (H, W) for
        L, (H, W, 2) for LA, (H, W, 3) for RGB, (H, W, 4) for RGBA.

        ``progress(step, total)`` is called after each step. Raises FormatError or
        DecodeError on a bad file, before allocating anything for one over ``max_pixels``.
        ``record``, if given, receives every frequency table the decoder builds, in order.
        """
        header, offset = self.read_header(data)
        mode, height, width = header.image_mode, header.height, header.width
        if height * width > max_pixels:
            raise DecodeError(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")
        alpha = decode_alpha(header.alpha, height, width) if mode.alpha else None
        coefs = header.coefs if header.coefs is not None else self.zoo_model.model.default_coefs
        ctx = Context(height, width, complete_coefs(coefs, mode.colour_channels))
        try:
            decoder = StageDecoder(data[offset:])
            steps = wavefront(height, width)
            with threadpool_limits(1, "blas"):  # one diagonal is a small matrix: threads only add latency
                for step, (rows, cols) in enumerate(steps, 1):
                    self._decode_step(ctx, decoder, rows, cols, mode.colour_channels, record)
                    if progress is not None:
                        progress(step, len(steps))
        except CoderError as exc:
            raise DecodeError(f"the file is corrupted: {exc}") from None
        image = ctx.pixels[:, :, : mode.colour_channels].astype(np.uint8)
        if alpha is not None:
            image = np.dstack([image, alpha])
        if not decoder.exhausted() or _checksum(image) != header.checksum:
            raise DecodeError("decoded pixels fail the checksum: the file is corrupted")
        return image[:, :, 0] if mode.channels == 1 else image

    def _decode_step(self, ctx: Context, decoder: StageDecoder, rows: np.ndarray, cols: np.ndarray,
                     colour_channels: int, record: list | None) -> None:
        """Decode the pixels (rows, cols) of one wavefront step into ``ctx``: the first
        ``colour_channels`` channels from the payload, the others as copies of channel 0."""
        feats, known = ctx.features(rows, cols)
        out = self.mlp(quantize_features(feats))
        current = np.zeros((rows.size, 3), np.int64)
        residuals = np.zeros((rows.size, 3), np.int64)
        for ch in range(3):
            base = ctx.ls_complete(ch, known[:, ch], current)
            if ch < colour_channels:
                prepared = channel_mixture(out, ch, base, residuals).prepared(self.tables)
                coarse = coarse_frequencies(prepared, self.tables)
                bucket = decoder.pull(coarse)
                fine = fine_frequencies(prepared, self.tables, bucket)
                current[:, ch] = STAGE * bucket + decoder.pull(fine)
                if record is not None:
                    record += [coarse, fine]
            else:
                current[:, ch] = current[:, 0]
            residuals[:, ch] = 16 * current[:, ch] - base
        ctx.pixels[rows, cols] = current
        ctx.residuals[rows, cols] = residuals
