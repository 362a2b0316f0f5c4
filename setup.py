"""Build of the compiled coding kernel ``neuralzip.core._kernel`` (metadata lives in pyproject.toml).

Portable flags only: the kernel's MLP is compiled for several instruction sets and picks
one at run time (GCC ``target_clones``); every result is an exact integer, so the choice
never changes a bit. Threads are POSIX threads of the kernel's own.
"""

import os
import sys
import tempfile

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_COMPILER = (
    "neuralzip needs a C compiler to build its coding kernel (neuralzip/core/_kernel.c): "
    "install one (Debian/Ubuntu: apt-get install gcc python3-dev; macOS: xcode-select --install) "
    "and run the install again"
)


class BuildKernel(build_ext):
    """build_ext that fails in one clear line where there is no working C compiler."""

    def build_extensions(self) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            probe = os.path.join(tmp, "probe.c")
            with open(probe, "w") as f:
                f.write("int main(void) { return 0; }\n")
            try:
                self.compiler.compile([probe], output_dir=tmp)
            except Exception:
                sys.exit(f"error: {NO_COMPILER}")
        super().build_extensions()


# No FMA contraction and no fast-math: a float result must not depend on which instruction
# set a function was compiled for (the adaptation's float64 choices go into the file).
FLAGS = ["-O3", "-std=c11", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno", "-fwrapv", "-pthread"]

setup(
    ext_modules=[
        Extension(
            f"neuralzip.core.{name}",
            sources=[f"neuralzip/core/{name}.c"],
            depends=[f"neuralzip/core/{h}.h" for h in ("isa", "units", "arith", "buffers")],
            extra_compile_args=FLAGS,
            extra_link_args=["-pthread"],
        )
        for name in ("_kernel", "_adapt")
    ],
    cmdclass={"build_ext": BuildKernel},
)
