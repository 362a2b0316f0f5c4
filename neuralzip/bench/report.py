"""Human-readable outputs of ``Results``: a Markdown report and two PNG plots.

Every rate is in bits per subpixel (bpsp). ``headers=False`` makes the headline rate of
the ranking and the plots count payload only, for the codecs whose container headers are
separable; the others keep their full size and are marked with ``*``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from .results import Results, Totals

PER_IMAGE_ROWS = 100  # longer per-image tables are left to results.json
MANY_IMAGES = 40  # above this the per-image plot shows sorted ratios instead of named images
REFERENCE = "png"  # codec the per-image plot divides by
PLOTS = {"tradeoff": "bpsp_vs_decode_time.png", "relative": "bpsp_relative_to_png.png"}


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _int(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def headline(totals: Totals, headers: bool) -> tuple[float | None, bool]:
    """(the rate to rank by, whether it includes headers although ``headers`` is False)."""
    if headers or totals.payload_bpsp is None:
        return totals.bpsp, not headers
    return totals.payload_bpsp, False


def _table(header: list[str], rows: list[list[str]], numbers: bool = True) -> list[str]:
    """Markdown table lines; with ``numbers`` every column but the first is right-aligned."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i and numbers else "---" for i in range(len(header))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _ranked(results: Results, headers: bool) -> list[tuple[str, Totals]]:
    totals = results.totals()

    def key(item: tuple[str, Totals]) -> float:
        return headline(item[1], headers)[0] or float("inf")

    return sorted(totals.items(), key=key)


def totals_table(results: Results, headers: bool = True) -> list[str]:
    """Markdown lines of the per-codec totals, best first by ``headline``."""
    rows = [
        [
            name,
            _num(t.bpsp, 4),
            _num(t.payload_bpsp, 4),
            _num(t.nll_bpsp, 4),
            _int(t.bytes),
            _int(t.header_bytes),
            _num(t.encode_s, 2),
            _num(t.decode_s, 2),
            _num(t.encode_mib, 1),
            _num(t.decode_mib, 1),
            f"{t.images - t.errors}/{t.images}",
        ]
        for name, t in _ranked(results, headers)
    ]
    return _table(
        [
            "codec",
            "bpsp",
            "bpsp w/o headers",
            "NLL bpsp",
            "bytes",
            "header bytes",
            "encode s",
            "decode s",
            "encode MiB",
            "decode MiB",
            "exact",
        ],
        rows,
    )


def markdown(results: Results, headers: bool = True) -> str:
    """The report: totals per codec (best first), settings, skipped codecs, failures and,
    for up to ``PER_IMAGE_ROWS`` images, a per-image bpsp table."""
    m = results.machine
    versions = ", ".join(f"{p} {v}" for p, v in m["versions"].items() if v)
    images = results.images()
    lines = [
        f"# neuralzip benchmark: {results.title}",
        "",
        f"Machine: {m['label']}; CPU {m['cpu']}, {m['cores']} cores; {m['os']}; Python {m['python']}; {versions}.",
        "",
        f"{len(images)} images. bpsp = 8 × bytes / subpixels, pooled over all images; "
        '"w/o headers" subtracts container headers where they are separable (n/a: not separable). '
        "NLL: the model's ideal code length. Times are wall-clock seconds summed over all images, "
        f"one thread per codec. Memory: largest {m['memory']}, MiB. Ranked by bpsp "
        + ("with headers." if headers else "without headers (with them where they are not separable)."),
        "",
    ]
    lines += totals_table(results, headers)
    lines += ["", "## Settings", ""]
    lines += _table(
        ["codec", "settings", "headers counted", "run"],
        [[n, f"`{c['settings']}`", c["headers"], f"{c['date']}, {c['machine']}"] for n, c in results.codecs.items()],
        numbers=False,
    )
    if results.skipped:
        lines += ["", "## Skipped codecs", ""] + [f"- {n}: {why}" for n, why in results.skipped.items()]
    failures = results.failures()
    if failures:
        lines += ["", "## FAILURES", ""] + [f"- **{r.codec}** on {r.image}: {r.error}" for r in failures]
    lines += ["", "## Per image (bpsp)", ""]
    if len(images) > PER_IMAGE_ROWS:
        lines.append(f"{len(images)} images: see `results.json`.")
    else:
        names = list(results.codecs)
        bpsp = {(r.image, r.codec): r.bpsp for r in results.records}
        lines += _table(["image", *names], [[i, *(_num(bpsp.get((i, n)), 3) for n in names)] for i in images])
    return "\n".join(lines) + "\n"


def plots_missing() -> str | None:
    """Why ``plots`` cannot draw here (matplotlib is absent), or None when it can."""
    try:
        importlib.import_module("matplotlib")
    except ImportError:
        return "matplotlib is not installed (pip install 'neuralzip[bench]')"
    return None


def plots(results: Results, out: Path, headers: bool = True) -> list[Path]:
    """Write the trade-off plot (bpsp against decode time per megapixel, log time axis) and,
    when PNG was measured, the per-image bpsp relative to PNG. Returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab10" if len(results.codecs) <= 10 else "tab20")
    colors = {name: palette(i) for i, name in enumerate(results.codecs)}
    ranked = [(n, t) for n, t in _ranked(results, headers) if t.bpsp is not None and t.decode_s > 0]
    written = []
    for name, draw in [("tradeoff", _tradeoff), ("relative", _relative)]:
        fig, ax = plt.subplots(figsize=(9, 5.5))
        if draw(ax, results, ranked, colors, headers):
            ax.grid(True, which="both", alpha=0.3)
            fig.tight_layout()
            written.append(out / PLOTS[name])
            fig.savefig(written[-1], dpi=120)
        plt.close(fig)
    return written


def _tradeoff(ax, results: Results, ranked: list[tuple[str, Totals]], colors: dict, headers: bool) -> bool:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for i, (name, t) in enumerate(ranked):
        rate, marked = headline(t, headers)
        x = t.decode_s / t.megapixels
        ax.scatter(x, rate, s=40, color=colors[name], label=f"{name}{'*' if marked else ''}: {rate:.3f}")
        # alternate label sides (ranked by rate: of two close codecs, the lower one's label goes
        # below its point and the higher one's above) so that each label stays by its point
        ax.annotate(name, (x, rate), textcoords="offset points", xytext=(6, -11 if i % 2 else 4), fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("decode time (seconds per megapixel, log scale)")
    ax.set_ylabel("bits per subpixel, " + ("with headers" if headers else "without container headers (* with)"))
    ax.set_title(f"{results.title}: rate against decode time (lower left is better)")
    ax.legend(fontsize=8, title="codec: bpsp", loc="best")
    return True


def _relative(ax, results: Results, ranked: list[tuple[str, Totals]], colors: dict, headers: bool) -> bool:
    """Per-image bpsp / PNG's bpsp: one point per image, images sorted by PNG bpsp; past
    ``MANY_IMAGES`` each codec's ratios are sorted on their own (a quantile curve)."""
    reference = {r.image: r.bpsp for r in results.records_of(REFERENCE) if r.bpsp}
    if not reference:
        return False
    images = sorted(reference, key=reference.__getitem__)
    many = len(images) > MANY_IMAGES
    for name, _ in ranked:
        ratios = {
            r.image: r.bpsp / reference[r.image]
            for r in results.records_of(name)
            if r.bpsp is not None and r.image in reference
        }
        if name == REFERENCE or not ratios:
            continue
        if many:
            ys = sorted(ratios.values())
            ax.plot([100 * (i + 0.5) / len(ys) for i in range(len(ys))], ys, color=colors[name], label=name)
        else:
            xs = [i for i, image in enumerate(images) if image in ratios]
            ax.plot(
                xs,
                [ratios[images[i]] for i in xs],
                color=colors[name],
                label=name,
                marker="o",
                markersize=3,
                linewidth=0.8,
            )
    ax.axhline(1.0, color="black", linewidth=1, label="PNG (= 1)")
    if many:
        ax.set_xlabel(f"percent of the {len(images)} images (each codec's ratios sorted)")
    else:
        ax.set_xticks(range(len(images)), [Path(i).stem for i in images], rotation=90, fontsize=7)
        ax.set_xlabel(f"image, sorted by PNG bpsp ({len(images)} images)")
    ax.set_ylabel("bpsp relative to PNG (both with headers)")
    ax.set_title(f"{results.title}: per-image size relative to PNG (lower is better)")
    ax.legend(fontsize=8, ncol=2, loc="best")
    return True
