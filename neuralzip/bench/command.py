"""``neuralzip benchmark``: the codecs chosen (``suite.select``), what a minimal install
lacks said up front, one line a cause, the benchmark run (``suite.benchmark``) under a
progress bar, and its totals printed."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from ..jobs import UserError
from . import suite
from .report import plots_missing, totals_table
from .runner import Record, collect

Echo = Callable[..., object]  # click.echo: (message, err=False)


def codec_names(values: tuple[str, ...]) -> list[str]:
    """Codec names (or patterns) of ``--codecs`` values, each comma-separated or repeated."""
    return [n.strip() for v in values for n in v.split(",") if n.strip()]


def benchmark_command(
    paths: tuple[Path, ...],
    codecs: tuple[str, ...],
    exclude: tuple[str, ...],
    limit: int | None,
    jobs: int,
    out: Path,
    merge: bool,
    headers: bool,
    title: str | None,
    machine: str | None,
    list_only: bool,
    echo: Echo,
) -> None:
    """What ``neuralzip benchmark`` does with its options (``list_only``: ``--list``),
    printing with ``echo``; UserError for what the user can fix, and for failed pairs."""
    try:
        chosen, skipped = suite.select(codec_names(codecs), codec_names(exclude))
    except suite.UnknownCodec as exc:
        raise UserError(str(exc)) from None
    if list_only:
        for c in chosen:
            echo(f"{c.name:12} {c.settings}")
        for name, why in skipped.items():
            echo(f"{name:12} unavailable: {why}")
        return
    # what a minimal install lacks is said up front, one line per cause, before any coding
    by_cause: dict[str, list[str]] = {}
    for name, why in skipped.items():
        by_cause.setdefault(why, []).append(name)
    for why, names in by_cause.items():
        echo(f"note: skipping codec{'s' * (len(names) > 1)} {', '.join(names)}: {why}", err=True)
    if not chosen:
        raise UserError("no codec left to run")
    no_plots = plots_missing()
    if no_plots:
        echo(f"note: drawing no plots (results.json and results.md only): {no_plots}", err=True)
    paths = paths or suite.default_paths()
    images = collect(list(paths), limit)
    if not images:
        raise UserError(f"no images under {', '.join(map(str, paths))}")
    with tqdm(total=len(images) * len(chosen), unit="pair", file=sys.stderr, disable=None) as bar:

        def progress(record: Record) -> None:
            bar.set_postfix_str(f"{record.codec} {record.image}", refresh=False)
            bar.update()
            if record.error:
                bar.write(f"neuralzip: ERROR: {record.codec} on {record.image}: {record.error}", file=sys.stderr)

        results, written = suite.benchmark(
            images,
            chosen,
            out,
            title=title or ", ".join(p.resolve().name for p in paths),
            skipped=skipped,
            jobs=jobs,
            merge=merge,
            headers=headers,
            machine=machine,
            plot=no_plots is None,
            progress=progress,
        )
    echo("\n".join(totals_table(results, headers)))
    echo("wrote " + ", ".join(map(str, written)))
    failures = results.failures()
    if failures:
        raise UserError(f"{len(failures)} image x codec pair(s) failed; see the FAILURES in {out / 'results.md'}")
