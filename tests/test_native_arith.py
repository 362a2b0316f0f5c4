"""The kernel's arithmetic of each instruction set (``neuralzip/core/arith.h``), built alone
by ``tests/native/arith_check.c`` and checked bit for bit against its plain C reference:
the int16 dense layers at the extremes of their load-time bound, and the mixture CDF runs
of mixtures past every clamp. On this CPU's paths, and on aarch64's (NEON) under qemu
where a cross compiler and qemu-aarch64 are installed (`.ci/run` installs them where apt
can)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "native" / "arith_check.c"
# setup.py's flags: no FMA contraction, no fast math
FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math", "-fwrapv", "-Wall", "-Wno-unused-function"]
ARM_CC, QEMU = "aarch64-linux-gnu-gcc", "qemu-aarch64"


def _build_and_run(compiler: str, runner: list[str], out: Path, extra: list[str]) -> str:
    subprocess.run(
        [compiler, *FLAGS, *extra, "-I", str(ROOT / "neuralzip" / "core"), str(HARNESS), "-o", str(out), "-lm"],
        check=True, capture_output=True, text=True,
    )
    run = subprocess.run([*runner, str(out)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc")
def test_every_path_of_this_cpu_equals_the_plain_c(tmp_path):
    from neuralzip.core import _kernel

    out = _build_and_run("gcc", [], tmp_path / "arith_check", [])
    checked = [line.split(":")[0].split(" ")[0] for line in out.splitlines()]
    assert checked == list(_kernel.ISA_PATHS)  # the harness saw the paths the kernel picks from


@pytest.mark.skipif(
    shutil.which(ARM_CC) is None or shutil.which(QEMU) is None,
    reason=f"no {ARM_CC} or {QEMU} (apt: gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)",
)
def test_neon_paths_equal_the_plain_c_on_aarch64(tmp_path):
    out = _build_and_run(ARM_CC, [QEMU], tmp_path / "arith_check_arm", ["-static"])
    assert out.strip() == "aarch64 (NEON): int16 layers, late sums and CDF runs equal the plain C"
