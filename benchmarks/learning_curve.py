"""Plot and tabulate the learning curves of every trained model in weights/manifest.json
(shipped versions and the unshipped sources that int16 versions are quantized from).

The x axis is training pixels seen (steps x batch), counted along each model's lineage: a
model that started from other weights (``--init``) continues that model's curve, so a
chain of stretches reads as one curve whatever machine each stretch ran on.

    python benchmarks/learning_curve.py --out benchmarks/results/training
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuralzip import zoo  # noqa: E402

DEFAULT_BATCH = 8192  # entries older than the recorded batch size trained with the default


def _start(entry: dict, trained: dict[str, dict]) -> dict | None:
    """The trained entry that ``entry``'s first run started from (its ``--init``), if any."""
    command = entry["stretches"][0]["command"] if "stretches" in entry else entry["command"]
    init = re.search(r"--init weights/(\S+\.npz)", command)
    if init is None:
        return None
    start = trained.get(init.group(1))
    if start is None:  # started from int16 weights: their source's curve
        quantized = next((e for e in _all_entries() if e["file"] == init.group(1)), {})
        start = next((e for e in trained.values() if e["sha256"] == quantized.get("quantized_from")), None)
    return start


def _all_entries() -> list[dict]:
    return [e for name in zoo.available() for e in zoo.versions(name) + zoo.sources(name)]


def _pixels_before(entry: dict, trained: dict[str, dict]) -> float:
    start = _start(entry, trained)
    if start is None:
        return 0.0
    return _pixels_before(start, trained) + start["curve"][-1]["step"] * start.get("batch", DEFAULT_BATCH)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    trained = {e["file"]: e for e in _all_entries() if "curve" in e}
    model_of = {e["file"]: name for name in zoo.available() for e in zoo.versions(name) + zoo.sources(name)}
    lines = [
        "# Learning curves",
        "",
        "Validation bpsp of the float model (held-out images of the training folders) against training "
        "pixels seen, counted along each model's lineage (a fine-tuned model continues the curve of the "
        "weights it started from), from `weights/manifest.json`: `python benchmarks/learning_curve.py "
        "--out benchmarks/results/training`. Minutes are wall minutes of optimisation of the run that "
        "logged the point; a stretch is one run (a resumed run is a new stretch). Validation sets changed "
        "as the training folders grew: a curve that starts higher than its parent ended is scored on more images.",
        "",
    ]
    names = sorted({model_of[f] for f in trained})
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        for file, entry in trained.items():
            if model_of[file] != name:
                continue
            offset, batch = _pixels_before(entry, trained), entry.get("batch", DEFAULT_BATCH)
            label = f"{name} {entry['sha256'][:8]}"
            seen = [offset + c["step"] * batch for c in entry["curve"]]
            ax.plot(seen, [c["val_bpsp"] for c in entry["curve"]], marker=".", label=label)
            device = entry.get("device_name") or entry.get("device", "cpu")
            lines += [f"## {label} ({device}, batch {batch:,})", ""]
            for s in entry.get("stretches", []):
                lines.append(f"- stretch: `{s['command']}`: steps {s['from_step']:,} to {s['to_step']:,}, "
                             f"validation {s['val_before']:.4f} to {s['val_after']:.4f} bpsp, {s['wall_s']} s wall")
            lines += ["", "| pixels seen (lineage) | minutes | steps | validation bpsp |", "|---:|---:|---:|---:|"]
            lines += [f"| {p:.3g} | {c['minutes']:.1f} | {c['step']:,} | {c['val_bpsp']:.4f} |"
                      for p, c in zip(seen, entry["curve"])]
            lines.append("")
        lowest = min(e["curve"][-1]["val_bpsp"] for f, e in trained.items() if model_of[f] == name)
        ax.set_ylim(top=min(ax.get_ylim()[1], lowest * 1.07))  # the first minutes of a scratch run off the top
        ax.set_xscale("symlog", linthresh=1e7)
        ax.set_xlim(left=0)
        ax.set_xlabel("training pixels seen (steps x batch, along the lineage)")
        ax.set_ylabel("validation NLL (bits per subpixel)")
        ax.set_title(f"{name}: learning curves")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out / "learning_curves.png", dpi=120)
    (args.out / "learning_curves.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
