"""Units and layouts of the bit-exact core, in one place.

Every module of the core, the float training twin (``training/float_model.py``) and the
numpy reference of the tests read these; the compiled kernel (``_kernel.c``) has its own
copy, which ``kernel.py`` checks against this one at import. The model outputs' layout is
``mixture.py``'s. A change here changes the bitstream: bump the format version (FORMAT.md).
"""

from __future__ import annotations

import numpy as np

# -- wavefront: pixel (r, c) decodes at step SKEW * r + c -------------------------------------
SKEW = 4

# -- causal neighbourhood: 3 to the left, rows -1 and -2 at columns -3..+3 --------------------
NEIGHBOURS = np.array(
    [(0, -1), (0, -2), (0, -3)] + [(-1, dc) for dc in range(-3, 4)] + [(-2, dc) for dc in range(-3, 4)],
    dtype=np.int64,
)
W_, N_, NW_, NE_ = 0, 6, 5, 7  # indices into NEIGHBOURS
Q4 = 16  # predictions and residuals are in units of 1/16 pixel level

# -- per-image least-squares predictor --------------------------------------------------------
LS_FRAC = 12  # LS coefficients are integers in units of 2**-12
LS_BIAS_INPUT = 64  # constant input that carries the LS bias term
# LS inputs beyond a channel's own 17 neighbours and the bias:
# (channel, neighbour index or -1 for the current pixel)
LS_CROSS_INPUTS: tuple[tuple[tuple[int, int], ...], ...] = (
    (),
    ((0, -1), (0, W_), (0, N_), (0, NW_), (0, NE_)),
    ((0, -1), (1, -1), (0, W_), (0, N_), (1, W_), (1, N_)),
)
LS_SIZES = tuple(len(NEIGHBOURS) + 1 + len(x) for x in LS_CROSS_INPUTS)  # (18, 23, 24)
LS_TOTAL = sum(LS_SIZES)
CUR_R = len(NEIGHBOURS) + 1  # within G's and B's coefficients: weight of the current R
CUR_G = len(NEIGHBOURS) + 2  # within B's: weight of the current G

# -- model inputs: (what, count, shift); feature value * 2**shift is its fixed point (2**-8),
# a negative shift rounds. A model names its context (the weights file's ``context``, 1
# when absent); each context's inputs start with the previous one's, so a model can grow
# into the next with zero weights on the new inputs ------------------------------------------
FEATURE_LAYOUT = (
    ("neighbours minus MED, 17 per channel", 51, 3),
    ("MED - 128 per channel", 3, 2),
    ("prior LS prediction minus 16 * MED (q4) per channel", 3, 1),
    ("LS coefficients c_GR, c_BR, c_BG (2**-12)", 3, -4),
    ("LS residuals (q4) at W, N, NW, NE per channel", 12, 1),
    ("flags: first row, first column, last column", 3, 8),
)
# context 2 adds a wider window: the skew lets row -2 reach column +7 and row -3 +11
WIDE_NEIGHBOURS = np.array([(0, -4), (-1, -4), (-2, 4), (-2, 6), (-3, -2), (-3, 0), (-3, 2), (-3, 5)], dtype=np.int64)
WIDE_RESIDUALS = (1, 4, 8, 13)  # NEIGHBOURS indices (0,-2), (-1,-2), (-1,+2), (-2,0)
WIDE_LAYOUT = (
    ("wide neighbours minus MED, 8 per channel", 24, 3),
    ("LS residuals (q4) at (0,-2), (-1,-2), (-1,+2), (-2,0) per channel", 12, 1),
    ("activity: sum of |LS residual| (q4) over the 17 neighbours per channel", 3, -2),
)
CONTEXTS = {1: FEATURE_LAYOUT, 2: FEATURE_LAYOUT + WIDE_LAYOUT}
DEFAULT_CONTEXT = 1  # of a weights file that names none


def n_features(context: int) -> int:
    """Model inputs per pixel of a context: 75 (context 1), 114 (context 2)."""
    return sum(count for _, count, _ in CONTEXTS[context])


def feature_shifts(context: int) -> np.ndarray:
    """int64 (n_features(context),): the shift of each input (see FEATURE_LAYOUT)."""
    layout = CONTEXTS[context]
    return np.repeat([shift for _, _, shift in layout], [count for _, count, _ in layout])


N_FEATURES = n_features(1)  # 75
MAX_FEATURES = n_features(max(CONTEXTS))  # 114

# -- integer MLP ------------------------------------------------------------------------------------
ACT_FRAC = 8  # features and activations are fixed point with 8 fractional bits
ACT_MAX = 128 << ACT_FRAC  # hidden activations are clamped to [0, 128] (float64 arithmetic)
INT16_MAX = (1 << 15) - 1  # int16 arithmetic: inputs, activations and weights in -32767..32767
ACT_MAX16 = INT16_MAX  # ... and hidden activations are clamped to [0, 32767 / 256]

# -- mixture units and tables (which output rows take which unit: mixture.py) ----------------------
CDF_BITS = 20  # component CDFs are integers in [0, 2**20]
T_FRAC = 10  # LUT resolution of (x - mean) / scale: 2**-10
T_MAX = 16  # LUT covers (x - mean) / scale in [-16, 16]
INV_BITS = 18  # inverse scales are integers 2**18 / s
LOGSCALE_STEP = 32  # log s = idx / 32
LOGSCALE_MIN, LOGSCALE_MAX = -4 * LOGSCALE_STEP, 6 * LOGSCALE_STEP
LOGIT_STEP = 16  # mixture logits in units of 1/16
LOGIT_RANGE = 16 * LOGIT_STEP  # logits more than 16 below the largest get weight 0
WEIGHT_BITS = 12  # the largest component weight is 2**12
COUPLING_STEP = 256  # channel couplings in units of 2**-8 (q4 of mean per q4 of residual)
OUT_LIMIT = 1 << 24  # model outputs and mixture means (q4) are clamped to +-2**24
STAGE = 16  # symbols per coding stage; 16 * 16 = 256 values
