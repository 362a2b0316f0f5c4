"""The codec: image <-> .nz bytes. Owns the file format; talks to the model, the integer
tables and the coder through small interfaces.

Pipeline: image -> context (``context``, LS fit in ``ls``) -> integer model
(``intmodel``) -> frequency tables (``tables``) -> ANS (``ans``) -> container
(``container``); the compiled ``kernel`` computes the per-pixel stages. Decoding runs one
anti-diagonal of the wavefront at a time; encoding computes the same tables chunk by chunk
of steps, last chunk first (ANS is a stack), so its memory stays bounded.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import packed
from .adapt import choose_adaptation
from .adaptation_block import Adaptation
from .alpha import decode_alpha, encode_alpha
from .ans import PRECISION, TERMINATOR_BITS, CoderError, StageDecoder, StageEncoder
from .container import MODES, Header
from .context import complete_coefs
from .effort import DEFAULT_EFFORT
from .effort import effort as effort_level
from .intmodel import IntegerModel, ZooModel
from .kernel import image_kernel, step_sizes
from .ls import fit_ls
from .metadata import Metadata
from .tables import MIN_SUBPIXEL_BITS
from .units import STAGE

IMAGE_LS_MIN_PIXELS = 16384  # smaller images use the model's default LS coefficients
ENCODE_CHUNK_PIXELS = 1 << 15  # pixels whose tables the encoder holds at once (~25 MB for RGB)
DEFAULT_MAX_PIXELS = 1 << 26  # 67 megapixels: about 0.5 GB of planes for either direction
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


def check_pixels(width: int, height: int, max_pixels: int, error: type[Exception]) -> None:
    """Raise ``error`` for an image of more than ``max_pixels`` pixels, in the one wording
    every front end uses."""
    if width * height > max_pixels:
        raise error(f"image of {width}x{height} pixels exceeds the limit of {max_pixels} pixels")


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


def adapted(model: IntegerModel, adaptation: Adaptation) -> IntegerModel:
    """``model`` with a file's per-image adaptation applied (ValueError if it does not fit)."""
    model = model.with_bias_offsets(adaptation.bias_offsets)
    return model if adaptation.output_gains is None else model.with_output_gains(adaptation.output_gains)


def _least_payload_bits(subpixels: int) -> float:
    """The fewest bits a terminated payload (version 3 and later) can hold ``subpixels`` coded
    subpixels in, terminator included."""
    return TERMINATOR_BITS + MIN_SUBPIXEL_BITS * subpixels


def _checksum(image: np.ndarray) -> int:
    return zlib.crc32(np.ascontiguousarray(image).tobytes())


def _in_mode_shape(header: Header, image: np.ndarray) -> np.ndarray:
    """A decoded (H, W, C) image as ``decode`` returns it: (H, W) for L."""
    return image[:, :, 0] if header.image_mode.channels == 1 else image


def _step_chunks(sizes: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive ranges [t0, t1) of wavefront steps (pixel counts ``sizes``) holding
    at most ``budget`` pixels each, or one step where a step alone holds more."""
    ends = np.cumsum(sizes)
    bounds = [0]
    while bounds[-1] < len(sizes):
        held_before = int(ends[bounds[-1] - 1]) if bounds[-1] else 0
        bounds.append(max(int(np.searchsorted(ends, held_before + budget, side="right")), bounds[-1] + 1))
    return list(zip(bounds[:-1], bounds[1:]))


class Codec:
    """Encoder and decoder of one shipped model."""

    def __init__(self, model: ZooModel, threads: int | None = None, effort: int = DEFAULT_EFFORT):
        """``threads``: CPU threads of the compiled kernel (default: all this process may
        use); any count gives the same bytes and pixels. ``effort``: the encoder's work
        (``effort.EFFORTS``: how long it tunes the model's last layers to each image,
        ``adapt.choose_adaptation``, and whether it tries LZMA2); ValueError outside 1..5."""
        self.zoo_model = model
        self.threads = threads
        self.effort = effort_level(effort)

    # -- encoding ---------------------------------------------------------------------------
    def choose_coefs(self, image: np.ndarray, colour_channels: int) -> tuple[np.ndarray, bool]:
        """(all LS_TOTAL coefficients, whether they are the image's own and go into the file)
        of a uint8 (H, W, 3) image with ``colour_channels`` coded channels."""
        own = image.shape[0] * image.shape[1] >= IMAGE_LS_MIN_PIXELS
        default = self.zoo_model.model.default_coefs
        coefs = fit_ls(image, prior=default) if own else default
        return complete_coefs(coefs, colour_channels), own

    def encode(
        self,
        image: np.ndarray,
        progress: Callable[[int, int], None] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        metadata: Metadata | None = None,
    ) -> tuple[bytes, EncodeStats]:
        """Compress a uint8 image of a shape ``split_mode`` accepts; returns (file bytes, stats).

        Colour goes through the model (a grey image as one channel), or is packed with
        LZMA2 where that is smaller (graphics), or stored raw where both would be larger
        (noise); alpha goes to the alpha block,
        ``metadata`` to the metadata block. ``progress(done, total)`` is called as encoding
        advances. Raises UnsupportedImage for an image of more than ``max_pixels`` pixels.
        """
        t0 = time.perf_counter()
        shape = np.shape(image)
        if len(shape) >= 2:  # before split_mode copies anything
            check_pixels(shape[1], shape[0], max_pixels, UnsupportedImage)
        pixels, code = split_mode(image)
        mode = MODES[code]
        height, width, _ = pixels.shape
        colour = pixels[:, :, : mode.colour_channels]
        rgb = np.array(colour if mode.colour_channels == 3 else np.repeat(colour, 3, axis=2), order="C")
        coefs, image_ls = self.choose_coefs(rgb, mode.colour_channels)
        model = self.zoo_model.model
        search = self.effort.search
        adaptation = None if search is None else choose_adaptation(model, rgb, coefs, mode.colour_channels, search)
        if adaptation is not None:
            model = adapted(model, adaptation)
        payload, nll_bits = self._encode_pixels(rgb, coefs, mode.colour_channels, model, progress)
        raw = np.ascontiguousarray(colour).tobytes()
        checksum, alpha = _checksum(pixels), encode_alpha(pixels[:, :, -1]) if mode.alpha else None
        files = []
        for kind, body in self._payloads(payload, raw, self.effort.packed_trial):
            header = Header(
                model_name=self.zoo_model.name,
                model_sha=self.zoo_model.tag,
                width=width,
                height=height,
                mode=code,
                precision=PRECISION,
                payload_length=len(body),
                checksum=checksum,
                coefs=coefs[: mode.ls_coefs] if image_ls and kind == "ans" else None,
                adaptation=adaptation if kind == "ans" else None,
                alpha=alpha,
                metadata=metadata or None,
                stored=kind == "stored",
                packed=kind == "packed",
            )
            files.append(header.pack() + body)
        data = min(files, key=len)  # the first of the shortest
        model_subpixels = height * width * mode.colour_channels
        return data, EncodeStats(nll_bits, len(data), pixels.size, time.perf_counter() - t0, model_subpixels)

    @staticmethod
    def _payloads(model_payload: bytes, raw: bytes, packed_trial: bool = True) -> list[tuple[str, bytes]]:
        """(kind, bytes) of the payloads the file may carry, in order of preference: the
        model's ANS words, the raw pixels (so no image costs more than 8 bits a subpixel
        plus the header) and, where a fast screen says it may win (graphics, screenshots),
        the pixels packed with LZMA2. The shortest whole file is written (only the ANS
        payload carries LS coefficients and the adaptation)."""
        out = [("ans", model_payload), ("stored", raw)]
        if packed_trial and packed.worth_trying(raw, len(model_payload)):
            body = packed.pack(raw)
            if len(body) < len(raw):  # the header refuses a packed payload that is not smaller
                out.append(("packed", body))
        return out

    def _encode_pixels(
        self,
        rgb: np.ndarray,
        coefs: np.ndarray,
        colour_channels: int,
        model: IntegerModel,
        progress: Callable[[int, int], None] | None,
    ) -> tuple[bytes, float]:
        """ANS payload and ideal bits, under ``model``, of the first ``colour_channels``
        channels of a uint8 (H, W, 3) image (a grey one as three copies), chunks of
        wavefront steps taken last first so that the decoder pulls them in order."""
        kernel = image_kernel(rgb, coefs, colour_channels, model, self.threads)
        kernel.compute_residuals()
        sizes = step_sizes(kernel)
        chunks = _step_chunks(sizes, ENCODE_CHUNK_PIXELS)
        rows = 2 * colour_channels * max(int(sizes[a:b].sum()) for a, b in chunks)
        symbols, tables = np.empty(rows, np.int32), np.empty((rows, STAGE))
        encoder, bits, done = StageEncoder(), 0.0, 0
        for t0, t1 in reversed(chunks):
            n, chunk_bits = kernel.encode_steps(t0, t1, symbols, tables)
            encoder.prepend(symbols[:n], tables[:n])
            bits += chunk_bits
            done += n // (2 * colour_channels)
            if progress is not None:
                progress(done, int(sizes.sum()))
        return encoder.finish(), bits

    # -- decoding ---------------------------------------------------------------------------
    def read_header(self, data: bytes, parsed: tuple[Header, int] | None = None) -> tuple[Header, int]:
        """Parse (unless ``parsed``, ``Header.unpack(data)`` done already) and check that
        this codec's model made the file."""
        header, offset = Header.unpack(data) if parsed is None else parsed
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

    def decode(
        self,
        data: bytes,
        progress: Callable[[int, int], None] | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        record: list | None = None,
        parsed: tuple[Header, int] | None = None,
    ) -> np.ndarray:
        """Decompress .nz bytes to uint8 pixels, one wavefront step at a time: (H, W) for
        L, (H, W, 2) for LA, (H, W, 3) for RGB, (H, W, 4) for RGBA.

        ``progress(step, total)`` is called after each step. Raises FormatError or
        DecodeError on a bad file, before allocating anything for one over ``max_pixels``.
        ``record``, if given, receives every frequency table the decoder builds, in order.
        ``parsed``: ``Header.unpack(data)``, where the caller has it (the header is then
        not parsed again).
        """
        header, offset = self.read_header(data, parsed)
        mode, height, width = header.image_mode, header.height, header.width
        check_pixels(width, height, max_pixels, DecodeError)
        alpha = decode_alpha(header.alpha, height, width) if header.alpha is not None else None
        if header.stored or header.packed:
            raw = packed.unpack(data[offset:], header.raw_length) if header.packed else data[offset:]
            colour = np.frombuffer(raw, np.uint8).reshape(height, width, mode.colour_channels)
            return self._checked(header, colour, alpha)
        payload, least_bits = data[offset:], _least_payload_bits(height * width * mode.colour_channels)
        if header.terminated and 8 * len(payload) < least_bits:
            raise DecodeError(
                f"the file is corrupted: a payload of {len(payload)} bytes cannot hold a "
                f"{width}x{height} image (at least {least_bits / 8:.0f} bytes)"
            )
        try:
            decoder = StageDecoder(payload)
        except CoderError as exc:
            raise DecodeError(f"the file is corrupted: {exc}") from None
        if not header.terminated and decoder.exhausted() and record is None:
            return self._decode_zeros(header, alpha)
        model = self.zoo_model.model
        coefs = header.coefs if header.coefs is not None else model.default_coefs
        if header.adaptation is not None:
            try:
                model = adapted(model, header.adaptation)
            except ValueError as exc:
                raise DecodeError(f"the file is corrupted: {exc}") from None
        planes = np.zeros((height, width, 3), np.uint8)
        kernel = image_kernel(
            planes, complete_coefs(coefs, mode.colour_channels), mode.colour_channels, model, self.threads
        )
        try:
            self._decode_steps(
                kernel, decoder, mode.colour_channels, height * width, header.terminated, progress, record
            )
            intact = decoder.pull_terminator() if header.terminated else True
        except CoderError as exc:
            raise DecodeError(f"the file is corrupted: {exc}") from None
        if not (intact and decoder.exhausted()):
            raise DecodeError("decoded pixels fail the checksum: the file is corrupted")
        return self._checked(header, planes[:, :, : mode.colour_channels], alpha)

    @staticmethod
    def _checked(header: Header, colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        """The decoded image of uint8 colour (H, W, C) and alpha (H, W) planes, in its
        mode's shape, once its checksum matches the header's."""
        image = colour if alpha is None else np.dstack([colour, alpha])
        if _checksum(image) != header.checksum:
            raise DecodeError("decoded pixels fail the checksum: the file is corrupted")
        return _in_mode_shape(header, image)

    @staticmethod
    def _decode_zeros(header: Header, alpha: np.ndarray | None) -> np.ndarray:
        """The image of an empty payload: an empty ANS coder decodes symbol 0 for every
        table, so every coded subpixel is 0 (an all-black image codes to no words at all,
        whatever its size). The checksum is checked on rows of zeros before the image is
        allocated, so a tiny file that claims a huge size is refused at once."""
        mode, height, width = header.image_mode, header.height, header.width
        pixels, chunk = height * width, 1 << 18
        zeros = np.zeros((min(chunk, pixels), mode.colour_channels), np.uint8)
        flat_alpha = None if alpha is None else alpha.reshape(-1)
        crc = 0
        for start in range(0, pixels, chunk):
            block = zeros[: min(chunk, pixels - start)]
            if flat_alpha is not None:
                block = np.hstack([block, flat_alpha[start : start + len(block), None]])
            crc = zlib.crc32(block.tobytes(), crc)
        if crc != header.checksum:
            raise DecodeError("decoded pixels fail the checksum: the file is corrupted")
        image = np.zeros((height, width, mode.colour_channels), np.uint8)
        return _in_mode_shape(header, image if alpha is None else np.dstack([image, alpha]))

    @staticmethod
    def _decode_steps(
        kernel,
        decoder: StageDecoder,
        colour_channels: int,
        pixels: int,
        terminated: bool,
        progress: Callable[[int, int], None] | None,
        record: list | None,
    ) -> None:
        """Decode every wavefront step into the kernel's ``pixels``-pixel plane: per step and coded
        channel, the bucket stage then the value stage, each from the payload.

        A ``terminated`` payload (version 3 and later) must hold, before each step, the least bits
        that the subpixels still to come and the terminator cost; one that holds fewer
        was made for a smaller image or cut short, and raises CoderError at once. An
        unterminated one (versions 1 and 2) stops as soon as the coder is empty (every
        word consumed, state 0): from there it decodes symbol 0, value 0, for every table,
        so the rest of the planes keeps its zeros (an image whose last pixels in decoding
        order are black gets there before its last step)."""
        total, pixels_to_come = kernel.num_steps(), pixels
        tables = np.empty((kernel.max_step_size(), STAGE))
        begin_step, advance, pull = kernel.begin_step, kernel.advance, decoder.pull  # thousands of steps
        stages = range(2 * colour_channels)
        for step in range(total):
            if terminated and decoder.valid_bits() < _least_payload_bits(colour_channels * pixels_to_come):
                raise CoderError(f"the payload runs out at step {step} of {total}")
            if not terminated and record is None and decoder.exhausted():
                if progress is not None:
                    progress(total, total)
                return
            view = tables[: begin_step(step, tables)]
            pixels_to_come -= len(view)
            for _ in stages:
                if record is not None:
                    record.append(view.copy())
                advance(pull(view), view)
            if progress is not None:
                progress(step + 1, total)
