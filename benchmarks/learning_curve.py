"""Plot and tabulate each shipped model's learning curve from weights/manifest.json.

    python benchmarks/learning_curve.py --out benchmarks/results/training
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Learning curves", "",
             "Validation bpsp of the float model (held-out images of the training folders) against "
             "wall minutes of optimisation, from `weights/manifest.json`.", ""]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, entry in sorted(manifest.items()):
        curve = entry["curve"]
        ax.plot([c["minutes"] for c in curve], [c["val_bpsp"] for c in curve], marker="o", label=name)
        lines += [f"## {name}", "", "| minutes | steps | validation bpsp |", "|---:|---:|---:|"]
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
