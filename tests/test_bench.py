"""``neuralzip benchmark`` end to end on two tiny images, and the suite's pieces."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from neuralzip.bench import codecs as bench_codecs
from neuralzip.bench import memory
from neuralzip.bench import suite
from neuralzip.cli import main

CODECS = ["neuralzip-photo", "png", "qoi", "jpegxl-e7"]


@pytest.fixture
def images(tmp_path, urban_crop):
    """Two tiny PNGs (one not a multiple of 8 wide) in a folder of their own."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    Image.fromarray(urban_crop[:24, :32]).save(folder / "a.png")
    Image.fromarray(urban_crop[30:46, 40:59]).save(folder / "b.png")
    return folder


def _bench(*args):
    return CliRunner().invoke(main, ["benchmark", *map(str, args)], catch_exceptions=False)


def _load(out):
    return json.loads((out / "results.json").read_text())


def test_end_to_end(images, tmp_path):
    out = tmp_path / "out"
    r = _bench(images, "--codecs", ",".join(CODECS[:2]), "--codecs", ",".join(CODECS[2:]), "--out", out)
    assert r.exit_code == 0, r.output
    results = _load(out)
    records = results["records"]
    assert sorted((rec["image"], rec["codec"]) for rec in records) == sorted(
        (f"tiny/{i}.png", c) for i in "ab" for c in CODECS)
    for rec in records:
        assert rec["exact"] is True and rec["error"] is None
        assert rec["subpixels"] == rec["width"] * rec["height"] * 3
        assert rec["bpsp"] == pytest.approx(8 * rec["bytes"] / rec["subpixels"])
        assert rec["encode_s"] > 0 and rec["decode_s"] > 0 and rec["encode_mib"] >= 0
        assert (rec["nll_bits"] is not None) == rec["codec"].startswith("neuralzip")
        assert (rec["header_bytes"] is None) == (rec["codec"] == "jpegxl-e7")
    for codec, total in results["totals"].items():
        mine = [rec for rec in records if rec["codec"] == codec]
        assert total["images"] == 2 and total["errors"] == 0
        assert total["bytes"] == sum(rec["bytes"] for rec in mine)
        assert total["subpixels"] == sum(rec["subpixels"] for rec in mine)
        assert total["bpsp"] == pytest.approx(8 * total["bytes"] / total["subpixels"])
        if total["header_bytes"] is None:
            assert total["payload_bpsp"] is None and codec == "jpegxl-e7"
        else:
            assert total["header_bytes"] == sum(rec["header_bytes"] for rec in mine)
            assert total["payload_bpsp"] == pytest.approx(8 * (total["bytes"] - total["header_bytes"]) / total["subpixels"])
        assert total["encode_s"] == pytest.approx(sum(rec["encode_s"] for rec in mine), abs=1e-5)
    nz = results["totals"]["neuralzip-photo"]
    assert 0 < nz["nll_bpsp"] < nz["payload_bpsp"] + 0.1
    assert results["machine"]["cores"] >= 1 and results["machine"]["versions"]["numpy"] == np.__version__
    report = (out / "results.md").read_text()
    assert all(c in report for c in CODECS) and "FAILURES" not in report
    for plot in ("bpsp_vs_decode_time.png", "bpsp_relative_to_png.png"):
        assert Image.open(out / plot).size[0] > 400


def test_merge_replaces_only_the_codecs_run(images, tmp_path):
    out = tmp_path / "out"
    assert _bench(images, "--codecs", "png,qoi", "--out", out).exit_code == 0
    before = {(r["image"], r["codec"]): r for r in _load(out)["records"]}
    assert _bench(images, "--codecs", "qoi,jpegls", "--limit", "1", "--out", out, "--merge").exit_code == 0
    after = _load(out)
    assert list(after["codecs"]) == ["png", "qoi", "jpegls"]
    assert sorted((r["image"], r["codec"]) for r in after["records"]) == sorted(
        [("tiny/a.png", "png"), ("tiny/b.png", "png"), ("tiny/a.png", "qoi"), ("tiny/a.png", "jpegls")])
    png = [r for r in after["records"] if r["codec"] == "png"]
    assert png == [before[(r["image"], "png")] for r in png]


class Broken(bench_codecs.PngCodec):
    """Decodes one subpixel wrong."""

    name = "broken"

    def decode(self, data):
        image = super().decode(data).copy()
        image[0, 0, 0] ^= 1
        return image


class Absent(bench_codecs.PngCodec):
    name = "absent"

    def missing(self):
        return "library not installed"


def test_mismatch_and_missing_codec_are_loud(images, tmp_path, monkeypatch):
    monkeypatch.setattr(suite, "all_codecs", lambda: [bench_codecs.PngCodec(), Broken(), Absent()])
    out = tmp_path / "out"
    r = _bench(images, "--out", out)
    assert r.exit_code != 0
    assert "skipping codec absent: library not installed" in r.output
    assert "neuralzip: error: 2 image x codec pair(s) failed" in r.output
    results = _load(out)
    assert results["skipped"] == {"absent": "library not installed"}
    broken = [rec for rec in results["records"] if rec["codec"] == "broken"]
    assert len(broken) == 2 and all(not rec["exact"] and "1 of" in rec["error"] for rec in broken)
    assert "FAILURES" in (out / "results.md").read_text()


def test_unknown_codec_is_a_one_line_error(images):
    r = _bench(images, "--codecs", "png,nonesuch")
    assert r.exit_code != 0 and "unknown codec(s) nonesuch" in r.output and "Traceback" not in r.output


def test_container_header_counts(urban_crop):
    """Header bytes are the container's own: what is left is the compressed stream."""
    by_name = {c.name: c for c in bench_codecs.all_codecs(models=[])}
    png = by_name["png"].encode(urban_crop)
    assert by_name["png"].header_bytes(png) == 8 + 25 + 12 + 12  # signature, IHDR, one IDAT's framing, IEND
    for name, low, high in [("webp-m0", 20, 40), ("jpeg2000", 40, 200), ("avif", 100, 1000), ("qoi", 22, 22)]:
        data = by_name[name].encode(urban_crop)
        assert low <= by_name[name].header_bytes(data) <= high, name


@pytest.mark.parametrize("rss", [True, False])
def test_peak_memory_sees_a_large_allocation(rss, monkeypatch):
    if not rss:
        monkeypatch.setattr(memory, "_reset_rss_peak", lambda: False)
    total, mib = memory.peak_mib(lambda: np.ones(8 << 20).sum())  # 64 MiB
    assert total == 8 << 20 and 60 < mib < 200
    assert memory.method().startswith("peak RSS" if rss else "tracemalloc")


def test_codec_patterns_and_exclusion():
    chosen, skipped = suite.select(["jpegxl-*", "png"], ["*-e9"])
    assert [c.name for c in chosen] == ["png", "jpegxl-e7"] and skipped == {}
    with pytest.raises(suite.UnknownCodec, match="nonesuch"):
        suite.select(exclude=["nonesuch"])


def test_reports_of_many_images(tmp_path):
    """Past the per-image limits the Markdown points to the JSON and the plot sorts ratios."""
    from neuralzip.bench.report import PER_IMAGE_ROWS, markdown, plots
    from neuralzip.bench.results import Results, machine_info
    from neuralzip.bench.runner import Record

    codecs = [bench_codecs.PngCodec(), bench_codecs.all_codecs(models=[])[-1]]
    results = Results.start("many", machine_info("test machine"), codecs, {})
    n = PER_IMAGE_ROWS + 1
    results.records = [Record(f"set/{i}.png", c.name, 4, 2, bytes=10 + i + k, header_bytes=2, encode_s=0.1,
                              decode_s=0.01 * (k + 1), encode_mib=1.0, decode_mib=1.0, exact=True)
                       for i in range(n) for k, c in enumerate(codecs)]
    report = markdown(results, headers=False)
    assert f"{n} images: see `results.json`" in report and "Ranked by bpsp without headers" in report
    assert [p.name for p in plots(results, tmp_path, headers=False)] == [
        "bpsp_vs_decode_time.png", "bpsp_relative_to_png.png"]
    total = results.totals()["png"]
    assert total.bytes == sum(10 + i for i in range(n)) and total.payload_bpsp == pytest.approx(
        8 * (total.bytes - 2 * n) / (24 * n))


def test_jobs_spread_pairs_over_processes(images, tmp_path):
    r = _bench(images, "--codecs", "png,qoi", "--jobs", "2", "--out", tmp_path / "par")
    assert r.exit_code == 0, r.output
    assert _bench(images, "--codecs", "png,qoi", "--out", tmp_path / "one").exit_code == 0
    sizes = [[(rec["image"], rec["codec"], rec["bytes"]) for rec in _load(tmp_path / d)["records"]] for d in ("par", "one")]
    assert sizes[0] == sizes[1] and len(sizes[0]) == 4
