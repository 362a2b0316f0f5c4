"""Command line: ``neuralzip compress|decompress|train``.

Errors print one line on stderr and exit non-zero; outputs are written to a temporary file
beside the target and renamed into place, so no half-written file is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import click
import numpy as np

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with the user's input, reported as one line."""


def _fail(message: str, code: int = EXIT_ERROR) -> None:
    click.echo(f"neuralzip: error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn every expected failure into one stderr line and a non-zero exit."""
    from PIL import UnidentifiedImageError

    from .codec import DecodeError
    from .container import FormatError
    from .zoo import ModelNotFound

    try:
        yield
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except (UserError, FormatError, DecodeError, ModelNotFound) as exc:
        _fail(str(exc))
    except UnidentifiedImageError as exc:
        _fail(f"not a readable image: {exc}")
    except (OSError, ValueError) as exc:
        _fail(f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def _atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, else delete it."""
    if path.exists() and not force:
        raise UserError(f"{path} already exists (use --force to overwrite)")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise UserError(f"{path}: no such file")
    with Image.open(path) as im:
        if im.mode != "RGB":
            raise UserError(f"{path}: unsupported image mode {im.mode!r} (neuralzip codes 8-bit RGB)")
        return np.asarray(im)


@click.group()
@click.version_option(package_name="neuralzip")
def main() -> None:
    """neuralzip: learned lossless image compression."""


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output file [default: SRC with .nz]")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output file")
@click.option("-m", "--model", default="photo", show_default=True, help="shipped model to use")
def compress(src: Path, output: Path | None, force: bool, model: str) -> None:
    """Compress an 8-bit RGB image (PNG, BMP, PPM, TIFF, ...) to a .nz file."""
    with _reported_errors():
        from .codec import Codec

        image = _read_rgb(src)
        output = output or src.with_suffix(".nz")
        codec = Codec.named(model)
        data, stats = codec.encode(image)
        with _atomic_output(output, force) as tmp:
            tmp.write_bytes(data)
        click.echo(
            f"{src} -> {output}: {image.shape[1]}x{image.shape[0]}, {stats.file_bytes:,} bytes, "
            f"{stats.bpsp:.4f} bpsp (model NLL {stats.nll_bpsp:.4f} bpsp), {stats.seconds:.2f} s"
        )


@main.command()
@click.argument("src", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="output image [default: SRC with .png]")
@click.option("-f", "--force", is_flag=True, help="overwrite an existing output file")
def decompress(src: Path, output: Path | None, force: bool) -> None:
    """Decompress a .nz file to a PNG (or the format OUTPUT's suffix names)."""
    with _reported_errors():
        from PIL import Image
        from tqdm import tqdm

        from .codec import Codec

        if not src.is_file():
            raise UserError(f"{src}: no such file")
        data = src.read_bytes()
        output = output or src.with_suffix(".png")
        if output.exists() and not force:
            raise UserError(f"{output} already exists (use --force to overwrite)")
        t0 = time.perf_counter()
        codec = Codec.for_file(data)
        with tqdm(desc="decoding", unit="step", delay=1.0, leave=False, file=sys.stderr, disable=None) as bar:

            def progress(step: int, total: int) -> None:
                bar.total = total
                bar.update(step - bar.n)

            image = codec.decode(data, progress=progress)
        with _atomic_output(output, force) as tmp:
            Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(output.suffix.lower(), "PNG"))
        click.echo(
            f"{src} -> {output}: {image.shape[1]}x{image.shape[0]}, {len(data):,} bytes read, "
            f"{8 * len(data) / image.size:.4f} bpsp, {time.perf_counter() - t0:.2f} s"
        )


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="weights file to write (.npz)")
@click.option("--minutes", default=30.0, show_default=True, help="wall-time budget of the optimisation")
@click.option("--hidden", default="128,128", show_default=True, help="hidden layer widths")
@click.option("--components", default=6, show_default=True, help="mixture components per channel")
@click.option("--keep", default=0.5, show_default=True, help="fraction of each image's pixels sampled")
@click.option("--global-ls", is_flag=True, help="train with the pooled LS predictor (for small images)")
@click.option("--init", type=click.Path(exists=True), help="checkpoint (.ckpt) to start from")
@click.option("--lr", default=2e-3, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--threads", default=2, show_default=True)
def train(paths, out, minutes, hidden, components, keep, global_ls, init, lr, seed, threads) -> None:
    """Train a model on image folders or .npy arrays (validation split carved from them).

    Re-running with the same --out resumes from OUT's .ckpt checkpoint.
    """
    from .train import train_main

    report = train_main(
        list(paths), Path(out), minutes,
        hidden=tuple(int(h) for h in hidden.split(",")), components=components, keep=keep,
        per_image_ls=not global_ls, init=Path(init) if init else None, lr=lr, seed=seed,
        threads=threads, log=click.echo,
    )
    click.echo(f"wrote {out}: validation {report['val_bpsp_float']:.4f} bpsp (float model)")
