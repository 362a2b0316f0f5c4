"""Plot and tabulate the learning curve of each shipped model version (current and retired)
from weights/manifest.json.

    python benchmarks/learning_curve.py --out benchmarks/results/training
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from neuralzip import zoo  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Learning curves", "",
             "Validation bpsp of the float model (held-out images of the training folders) against "
             "wall minutes of optimisation, from `weights/manifest.json`. A fine-tuned version's curve "
             "starts at its starting weights' score on its own validation images.", ""]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    versions = [(f"{name} {entry['sha256'][:8]}", entry) for name in zoo.available() for entry in zoo.versions(name)]
    for label, entry in versions:
        curve = entry["curve"]
        ax.plot([c["minutes"] for c in curve], [c["val_bpsp"] for c in curve], marker="o", label=label)
        lines += [f"## {label}", "", "| minutes | steps | validation bpsp |", "|---:|---:|---:|"]
        lines += [f"| {c['minutes']:.1f} | {c['step']:,} | {c['val_bpsp']:.4f} |" for c in curve]
        lines.append("")
    ax.set_xlabel("training time (minutes, wall clock)")
    ax.set_ylabel("validation NLL (bits per subpixel)")
    ax.set_title("neuralzip learning curves")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "learning_curves.png", dpi=120)
    (args.out / "learning_curves.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
