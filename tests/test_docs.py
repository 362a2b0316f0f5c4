"""Figures in the README and benchmarks/README are the committed results' figures: a doc
that disagrees with its results file fails here instead of going stale."""

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README_COLUMNS = ["neuralzip-photo", None, "jpegxl-e9", "jpegxl-e7", "webp-m6", "png"]  # None: the NLL


def _totals(name: str) -> dict:
    return json.loads((RESULTS / name / "results.json").read_text())["totals"]


def _readme_row(link: str) -> list[float]:
    """Numbers of the README results row whose first cell links to ``link``."""
    text = (ROOT / "README.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| [") and f"({link})" in line)
    return [float(x) for x in re.findall(r"\*{0,2}(\d+\.\d{4})\*{0,2}", row)]


@pytest.mark.parametrize("name,model", [("kodak", "neuralzip-photo"), ("heldout", "neuralzip-photo"),
                                        ("cifar10", "neuralzip-cifar10")])
def test_readme_results_rows_match_results_json(name, model):
    totals = _totals(name)
    columns = [model if c == "neuralzip-photo" else c for c in README_COLUMNS]
    want = [round(totals[model]["nll_bpsp"] if c is None else totals[c]["bpsp"], 4) for c in columns]
    assert _readme_row(f"benchmarks/results/{name}/results.md") == want


def test_benchmarks_readme_kodak_table_matches_results_json():
    totals = _totals("kodak")
    text = (ROOT / "benchmarks" / "README.md").read_text()
    table = text[text.index("Kodak-24 (every round trip exact"):].split("\n\n")[1]
    for line in table.splitlines()[2:]:
        codec, bpsp, *_, encode_s, decode_s = [c.strip() for c in line.strip("|").split("|")]
        assert float(bpsp) == round(totals[codec]["bpsp"], 3), codec
        assert float(encode_s) == round(totals[codec]["encode_s"], 1), codec
        assert float(decode_s) == round(totals[codec]["decode_s"], 1), codec


def test_readme_speed_figures_match_speed_results():
    speed = (RESULTS / "speed" / "results.md").read_text()
    readme = (ROOT / "README.md").read_text()
    kodim01_decode = re.search(r"kodim01 decode in codec, effort \d \(default\)[^|]*\| ([\d.]+) s", speed).group(1)
    big_rss = re.search(r"compress` 4000x3000 photo, peak RSS \| (\d+) MB", speed).group(1)
    assert f"decodes in {kodim01_decode} s" in readme and f"at {big_rss} MB" in readme


def test_the_package_version_is_the_one_pyproject_declares_and_the_changelog_heads():
    import neuralzip

    declared = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert neuralzip.__version__ == declared
    assert re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.M).group(1) == declared
