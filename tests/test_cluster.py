"""Bulk conversion on Dask (``--cluster``) and neuralzip in a Dask bag, on LocalClusters of
two worker processes with tiny images."""

import functools
import io
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import neuralzip
from neuralzip import cluster
from neuralzip.batch import plan
from neuralzip.cli import main
from neuralzip.tasks import compress_task

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this file


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=50) as local, distributed.Client(local) as c:
        yield c


def _photos(folder: Path, image: np.ndarray, n: int, size: int = 24) -> dict[str, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    pixels = {}
    for i in range(n):
        crop = image[i * 3 : i * 3 + size, i * 5 : i * 5 + size + 8]
        Image.fromarray(crop).save(folder / f"p{i:02d}.png")
        pixels[f"p{i:02d}"] = crop
    return pixels


def test_cli_round_trip_on_a_local_cluster_with_failures(tmp_path, urban_crop):
    pixels = _photos(tmp_path / "src" / "sub", urban_crop, 6)
    (tmp_path / "src" / "bad.png").write_bytes(b"not a png")
    (tmp_path / "nz").mkdir()
    (tmp_path / "nz" / "bad.nz").write_bytes(b"")  # exists: refused without --force
    r = _run("compress", "-r", tmp_path / "src", "--out-dir", tmp_path / "nz", "--cluster", "local", "-j", "2")
    assert r.exit_code == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("neuralzip: error: ") and "bad.png" in errors[0]
    assert "already exists" in errors[0]
    assert r.stdout.count(" -> ") == 6 + 1  # a line per file and the summary
    assert r.stdout.strip().splitlines()[-1].startswith("6 files, ") and "bpsp" in r.stdout and "1 failed" in r.stdout

    r = _run("decompress", "-r", tmp_path / "nz" / "sub", "--out-dir", tmp_path / "back", "--cluster", "local")
    assert r.exit_code == 0, r.output
    for name, crop in pixels.items():
        assert np.array_equal(np.asarray(Image.open(tmp_path / "back" / f"{name}.png")), crop)
    assert not list(tmp_path.rglob("*.part"))


def test_cluster_refuses_stdio_and_says_what_to_install(tmp_path, urban_crop, monkeypatch):
    Image.fromarray(urban_crop[:8, :8]).save(tmp_path / "a.png")
    r = _run("compress", tmp_path / "a.png", "-o", "-", "--cluster", "local")
    assert r.exit_code == 1 and "--cluster takes files" in r.stderr
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    r = _run("compress", tmp_path / "a.png", "--cluster", "local")
    assert r.exit_code == 1
    assert r.stderr.strip() == f"neuralzip: error: {cluster.INSTALL_HINT}" and "neuralzip[cluster]" in r.stderr
    assert not (tmp_path / "a.nz").exists()


def test_small_files_share_tasks(tmp_path, urban_crop):
    _photos(tmp_path / "src", urban_crop, 20, size=8)
    jobs, _ = plan([str(tmp_path / "src")], {".png"}, ".nz", None, None, False)
    parts = cluster.tasks(jobs, workers=1)
    assert [job for part in parts for job in part] == jobs
    assert [len(part) for part in parts] == [2] * 10  # at least 16 tasks per worker, or 1 file each
    (tmp_path / "src" / "p05.png").write_bytes(bytes(cluster.SMALL_FILE))  # not small: a task of its own
    parts = cluster.tasks(jobs, workers=1)
    assert [job for part in parts for job in part] == jobs
    assert [len(part) for part in parts] == [2, 2, 1, 1] + [2] * 7


def _slow_once(marker: Path, job, **kwargs):
    """Compress, but the first task on p03 signals that it runs (its pid in ``marker``) and
    hangs until it is killed."""
    if job.source.stem == "p03" and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(60)
    return compress_task(job, **kwargs)


def test_a_worker_killed_mid_task_is_retried_and_leaves_no_partial_file(tmp_path, urban_crop, client, capsys):
    pixels = _photos(tmp_path / "src", urban_crop, 8)
    marker = tmp_path / "running"
    jobs, errors = plan([str(tmp_path / "src")], {".png"}, ".nz", None, tmp_path / "nz", False)
    task = functools.partial(_slow_once, marker, model="photo", max_pixels=2**26, quiet=True)
    address = client.scheduler.address
    failed = []
    runner = threading.Thread(target=lambda: failed.append(cluster.run(address, jobs, errors, task, 2, False, True)))
    runner.start()
    deadline = time.time() + 30
    while not marker.exists() or not marker.read_text():
        assert time.time() < deadline, "the slow task never started"
        time.sleep(0.02)
    assert not (tmp_path / "nz" / "p03.nz").exists()
    os.kill(int(marker.read_text()), signal.SIGKILL)  # a worker dies mid-task
    runner.join(60)
    err = capsys.readouterr().err
    assert not runner.is_alive() and failed == [0], err
    assert err == ""
    assert sorted(p.name for p in (tmp_path / "nz").iterdir()) == [f"{n}.nz" for n in sorted(pixels)]
    for name, crop in pixels.items():
        assert np.array_equal(neuralzip.decompress((tmp_path / "nz" / f"{name}.nz").read_bytes()), crop)


def test_docs_dask_bag_recipe(client, urban_crop):
    """The Dask bag lines of docs/api.md, "At scale": bytes in, bytes out."""
    import dask.bag as db

    crops = [urban_crop[i : i + 16, i : i + 20] for i in range(5)]
    pngs = []
    for crop in crops:
        out = io.BytesIO()
        Image.fromarray(crop).save(out, "PNG")
        pngs.append(out.getvalue())

    def to_nz(png: bytes) -> bytes:
        return neuralzip.compress(Image.open(io.BytesIO(png)))

    def to_png(nz: bytes) -> bytes:
        out = io.BytesIO()
        Image.fromarray(neuralzip.decompress(nz)).save(out, "PNG")
        return out.getvalue()

    client.register_plugin(cluster.worker_plugin())  # one kernel thread per file on each worker
    bag = db.from_sequence(pngs, npartitions=2)
    nz = bag.map(to_nz).compute()
    assert all(data[:2] == b"NZ" for data in nz)
    back = db.from_sequence(nz, npartitions=2).map(to_png).compute()
    for png, crop in zip(back, crops):
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), crop)
    assert set(client.run(lambda: os.environ.get("NEURALZIP_THREADS")).values()) == {"1"}
