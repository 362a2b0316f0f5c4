"""Command line: ``neuralzip compress|decompress|train|benchmark``.

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

        from .codec import Codec, peek_model

        if not src.is_file():
            raise UserError(f"{src}: no such file")
        data = src.read_bytes()
        output = output or src.with_suffix(".png")
        if output.exists() and not force:
            raise UserError(f"{output} already exists (use --force to overwrite)")
        t0 = time.perf_counter()
        codec = Codec.named(peek_model(data))
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


def _codec_names(values: tuple[str, ...]) -> list[str]:
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--codecs", "codecs", multiple=True, metavar="NAMES",
              help="codecs to run, comma-separated or repeated; shell patterns such as 'neuralzip-*' "
                   "work [default: all; see --list]")
@click.option("--exclude", multiple=True, metavar="NAMES", help="codecs not to run (same form as --codecs)")
@click.option("--limit", type=click.IntRange(min=1), help="only the first N images of each path")
@click.option("--jobs", default=1, show_default=True, type=click.IntRange(min=1),
              help="processes to spread the image x codec pairs over (timings then share the CPU)")
@click.option("--out", default=Path("benchmark-results"), show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="folder for results.json, results.md and plots")
@click.option("--merge", is_flag=True, help="update OUT/results.json: replace the codecs run now, keep the others")
@click.option("--headers/--no-headers", default=True, show_default=True,
              help="rank and plot by bpsp with container headers, or without them where separable "
                   "(results.json and the table always hold both)")
@click.option("--title", help="name of the image set in reports [default: the PATHS' names]")
@click.option("--machine", help="description of this machine in the results [default: cores and CPU model]")
@click.option("--list", "list_only", is_flag=True, help="list the codecs, their settings and availability, and exit")
def benchmark(paths: tuple[Path, ...], codecs: tuple[str, ...], exclude: tuple[str, ...], limit: int | None,
              jobs: int, out: Path, merge: bool, headers: bool, title: str | None, machine: str | None,
              list_only: bool) -> None:
    """Measure lossless codecs (neuralzip, PNG, WebP, JPEG-XL, ...) on images: bits per
    subpixel, encode/decode time and memory, every round trip checked pixel-exact.

    PATHS are folders of images, .npy arrays (N x H x W x 3) or image files [default: the
    repository's samples/]. Writes OUT/results.json, OUT/results.md and PNG plots.
    """
    with _reported_errors():
        from tqdm import tqdm

        from .bench.report import totals_table
        from .bench.runner import collect
        from .bench.suite import UnknownCodec, default_paths, select
        from .bench.suite import benchmark as run_benchmark

        try:
            chosen, skipped = select(_codec_names(codecs), _codec_names(exclude))
        except UnknownCodec as exc:
            raise UserError(str(exc)) from None
        if list_only:
            for c in chosen:
                click.echo(f"{c.name:12} {c.settings}")
            for name, why in skipped.items():
                click.echo(f"{name:12} unavailable: {why}")
            return
        for name, why in skipped.items():
            click.echo(f"note: skipping codec {name}: {why}", err=True)
        if not chosen:
            raise UserError("no codec left to run")
        paths = paths or default_paths()
        images = collect(list(paths), limit)
        if not images:
            raise UserError(f"no images under {', '.join(map(str, paths))}")
        with tqdm(total=len(images) * len(chosen), unit="pair", file=sys.stderr, disable=None) as bar:

            def progress(record) -> None:
                bar.set_postfix_str(f"{record.codec} {record.image}", refresh=False)
                bar.update()
                if record.error:
                    bar.write(f"neuralzip: ERROR: {record.codec} on {record.image}: {record.error}", file=sys.stderr)

            results, written = run_benchmark(
                images, chosen, out, title=title or ", ".join(p.resolve().name for p in paths), skipped=skipped,
                jobs=jobs, merge=merge, headers=headers, machine=machine, progress=progress,
            )
        click.echo("\n".join(totals_table(results, headers)))
        click.echo("wrote " + ", ".join(map(str, written)))
        failures = results.failures()
        if failures:
            raise UserError(f"{len(failures)} image x codec pair(s) failed; see the FAILURES in {out / 'results.md'}")
