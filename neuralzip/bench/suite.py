"""The whole benchmark: choose codecs, run them over images, merge, write the outputs.

``neuralzip benchmark`` is a thin layer over ``select`` and ``benchmark``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from pathlib import Path

from .codecs import BenchCodec, all_codecs
from .report import markdown, plots
from .results import Results, machine_info
from .runner import ImageRef, Record, run

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


def default_paths() -> tuple[Path, ...]:
    """The repository's sample images (a source checkout or editable install has them)."""
    samples = Path(__file__).resolve().parents[2] / "samples"
    if not samples.is_dir():
        raise FileNotFoundError(f"no image paths given and no samples folder at {samples}")
    return (samples,)


class UnknownCodec(LookupError):
    """A codec name that is not in the suite; the message lists the known ones."""


def _matching(suite: list[BenchCodec], patterns: list[str]) -> set[str]:
    """Names matching any shell-style pattern; raises UnknownCodec for a pattern matching none."""
    names = [c.name for c in suite]
    unknown = [p for p in patterns if not fnmatch.filter(names, p)]
    if unknown:
        raise UnknownCodec(f"unknown codec(s) {', '.join(unknown)} (known: {', '.join(names)})")
    return {n for p in patterns for n in fnmatch.filter(names, p)}


def select(names: list[str] | None = None, exclude: list[str] | None = None) -> tuple[list[BenchCodec], dict[str, str]]:
    """(codecs that can run, {name: why not} for those that cannot), in suite order: those
    matching ``names`` (shell-style patterns; all when None or empty) and not ``exclude``."""
    suite = all_codecs()
    chosen = _matching(suite, names) if names else {c.name for c in suite}
    chosen -= _matching(suite, exclude or [])
    missing = {c.name: c.missing() for c in suite if c.name in chosen}
    runnable = [c for c in suite if c.name in chosen and missing[c.name] is None]
    return runnable, {n: why for n, why in missing.items() if why}


def benchmark(
    images: list[ImageRef],
    codecs: list[BenchCodec],
    out: Path,
    *,
    title: str,
    skipped: dict[str, str] | None = None,
    jobs: int = 1,
    merge: bool = False,
    headers: bool = True,
    machine: str | None = None,
    plot: bool = True,
    progress: Callable[[Record], None] | None = None,
) -> tuple[Results, list[Path]]:
    """Measure ``codecs`` on ``images`` and write ``out``/results.json, results.md and (with
    ``plot``; see ``report.plots_missing``) the plots, in that order: a failure to plot
    loses no measurement. With ``merge``, an existing results.json keeps the records of
    every codec not run now. Returns (the results written, the files written)."""
    results = Results.start(title, machine_info(machine), codecs, skipped or {})
    for record in run(codecs, images, jobs):
        results.records.append(record)
        if progress is not None:
            progress(record)
    out.mkdir(parents=True, exist_ok=True)
    if merge and (out / RESULTS_JSON).exists():
        results = results.merged_into(Results.load(out / RESULTS_JSON))
    results.save(out / RESULTS_JSON)
    (out / RESULTS_MD).write_text(markdown(results, headers))
    written = [out / RESULTS_JSON, out / RESULTS_MD]
    return results, written + (plots(results, out, headers) if plot else [])
