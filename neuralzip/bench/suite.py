"""The whole benchmark: choose codecs, run them over images, merge, write the outputs.

``neuralzip benchmark`` is a thin layer over ``select`` and ``benchmark``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .codecs import BenchCodec, all_codecs
from .report import markdown, plots
from .results import Results, machine_info
from .runner import Image, Record, run

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"


class UnknownCodec(LookupError):
    """A codec name that is not in the suite; the message lists the known ones."""


def select(names: list[str] | None = None) -> tuple[list[BenchCodec], dict[str, str]]:
    """(codecs that can run, {name: why not} for those that cannot), from the suite's
    codecs in suite order, all of them when ``names`` is None or empty."""
    suite = all_codecs()
    known = {c.name for c in suite}
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise UnknownCodec(f"unknown codec(s) {', '.join(unknown)} (known: {', '.join(c.name for c in suite)})")
    chosen = [c for c in suite if not names or c.name in names]
    missing = {c.name: c.missing() for c in chosen}
    return [c for c in chosen if missing[c.name] is None], {n: why for n, why in missing.items() if why}


def benchmark(images: list[Image], codecs: list[BenchCodec], out: Path, *, title: str,
              skipped: dict[str, str] | None = None, jobs: int = 1, merge: bool = False,
              headers: bool = True, machine: str | None = None,
              progress: Callable[[Record], None] | None = None) -> tuple[Results, list[Path]]:
    """Measure ``codecs`` on ``images`` and write ``out``/results.json, results.md and the
    plots. With ``merge``, an existing results.json keeps the records of every codec not
    run now. Returns (the results written, the files written)."""
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
    return results, [out / RESULTS_JSON, out / RESULTS_MD, *plots(results, out, headers)]
