"""The compiled coding kernel (``neuralzip/core/_kernel.c``) and how the codec builds one.

An ``ImageKernel`` holds one image's planes (uint8 pixels, int16 LS residuals) and one
integer model; it computes causal contexts, the model's mixture parameters and both coding
stages' frequency tables, bit-exact on any machine, instruction set and thread count. The
numpy reference it is tested against lives in ``tests/reference.py``.
"""

from __future__ import annotations

import os

import numpy as np

from . import units
from .intmodel import IntegerModel
from .mixture import MIXTURE

try:
    from . import _kernel
except ImportError as exc:  # a source tree whose extension was never built
    raise ImportError(
        "neuralzip's compiled kernel (neuralzip.core._kernel) is not built: run `pip install -e .` "
        f"in the source tree, with a C compiler installed ({exc})"
    ) from None

ImageKernel = _kernel.ImageKernel


def _kernel_disagrees() -> list[str]:
    """Names of the constants and layouts (neighbour offsets, LS design sizes, the mixture's
    rows and bins) that the compiled kernel holds otherwise than ``units`` or, for a name
    units lacks, ``MIXTURE.constants()``: a stale build or an edit on one side."""
    found = {**_kernel.CONSTANTS, **_kernel.LAYOUTS}
    mixture = MIXTURE.constants()
    ours = {name: np.asarray(getattr(units, name, mixture.get(name))).tolist() for name in found}
    return [name for name, value in found.items() if np.asarray(value).tolist() != ours[name]]


_DISAGREEING = _kernel_disagrees()
if _DISAGREEING:
    raise ImportError(
        f"neuralzip.core._kernel disagrees with units.py on {', '.join(_DISAGREEING)}: "
        "rebuild it with `pip install -e .` (or change both)"
    )


THREADS_ENV = "NEURALZIP_THREADS"


def default_threads() -> int:
    """Threads a kernel uses unless told otherwise: ``$NEURALZIP_THREADS`` if set, else the
    CPUs this process may run on (batch workers set it to 1: the processes share the cores)."""
    if os.environ.get(THREADS_ENV, "").isdigit() and int(os.environ[THREADS_ENV]) > 0:
        return int(os.environ[THREADS_ENV])
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def image_kernel(
    pixels: np.ndarray,
    coefs: np.ndarray,
    colour_channels: int,
    model: IntegerModel | None = None,
    threads: int | None = None,
    context: int = units.DEFAULT_CONTEXT,
) -> ImageKernel:
    """Kernel over ``pixels``, a writable C-contiguous uint8 (H, W, 3) array that it reads
    (encoder) or fills (decoder) in place; ``coefs``: all LS_TOTAL LS coefficients (int64,
    2**-12 units). Without ``model`` it only computes contexts (of ``context``; a model
    brings its own), residuals and LS sums."""
    return ImageKernel(**kernel_arguments(pixels, coefs, colour_channels, model, threads, context))


def kernel_arguments(
    pixels: np.ndarray,
    coefs: np.ndarray,
    colour_channels: int,
    model: IntegerModel | None = None,
    threads: int | None = None,
    context: int = units.DEFAULT_CONTEXT,
) -> dict:
    """The keyword arguments of ``ImageKernel`` for ``image_kernel``'s: the model's arrays
    in the types of its arithmetic (float64; or int16 weights, int32 biases and shifts)."""
    mlp, tables = (model.mlp, model.tables) if model is not None else (None, None)
    int16 = mlp is not None and mlp.arithmetic == "int16"
    types = (np.int16, np.int32) if int16 else (np.float64, np.float64)
    return dict(
        weights=None if mlp is None else [np.ascontiguousarray(w, types[0]) for w in mlp.weights],
        biases=None if mlp is None else [np.ascontiguousarray(b, types[1]) for b in mlp.biases],
        fracs=None
        if mlp is None
        else ([np.ascontiguousarray(f, np.int32) for f in mlp.fracs] if int16 else [int(f) for f in mlp.fracs]),
        components=1 if mlp is None else mlp.components,
        sigmoid=None if tables is None else tables.sigmoid,
        inv_scale=None if tables is None else tables.inv_scale,
        weight=None if tables is None else tables.weight,
        coefs=np.ascontiguousarray(coefs, np.int64),
        pixels=pixels,
        colour_channels=colour_channels,
        threads=threads or default_threads(),
        context=context if model is None else model.context,
        int16=int16,
    )


def step_sizes(kernel: ImageKernel) -> np.ndarray:
    """Pixels of every wavefront step, int64 (num_steps,)."""
    sizes = np.empty(kernel.num_steps(), np.int32)
    kernel.step_sizes(sizes)
    return sizes.astype(np.int64)
