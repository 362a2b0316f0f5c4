"""Types of the compiled adaptation gradients (``_adapt.c``)."""

import numpy as np

CONSTANTS: dict[str, float]
ISA: str

def head_bits(
    before: np.ndarray,
    weights: np.ndarray,
    weights_t: np.ndarray,
    bias: np.ndarray,
    base: np.ndarray,
    pixels: np.ndarray,
    rows: np.ndarray,
    hidden_offsets: np.ndarray,
    output_offsets: np.ndarray,
    gains: np.ndarray,
    components: int,
    channels: int,
    act_max: int,
    threads: int,
    grad: np.ndarray | None,
) -> float: ...
def exp(x: float, /) -> float: ...
def log(x: float, /) -> float: ...
