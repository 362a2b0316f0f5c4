/* Units and layouts of neuralzip's compiled modules: the neighbourhood, the fixed-point
 * formats and the mixture's output rows. units.py and mixture.py hold the same values, and
 * kernel.py checks the kernel's against them at import. No Python here. */
#ifndef NEURALZIP_UNITS_H
#define NEURALZIP_UNITS_H

#include <stdint.h>

#define SKEW 4
#define N_NB 17
#define N_FEATURES 75   /* inputs of context 1 */
#define N_WIDE 8
#define MAX_FEATURES 114 /* inputs of context 2: 75 + 3 * (8 + 4 + 1) */
#define LS_FRAC 12
#define LS_BIAS_INPUT 64
#define Q4 16
#define ACT_FRAC 8
#define ACT_MAX (128 << ACT_FRAC)
#define ACT_MAX16 32767 /* int16 arithmetic: activations are int16 */
#define CDF_BITS 20
#define T_FRAC 10
#define T_MAX 16
#define INV_BITS 18
#define LOGSCALE_MIN (-128)
#define LOGSCALE_MAX 192
#define LOGIT_RANGE 256
#define WEIGHT_BITS 12
#define INV_MAX_BITS 26 /* inverse scales are at most 2**26 (tables hold 2**18 / s, s >= e**-4) */
#define EXACT_LIMIT 9007199254740992.0 /* 2**53 */
/* Model outputs and mixture means are clamped to +-OUT_LIMIT (q4 for means: 8192 times the
 * pixel range), far beyond where any table still changes: this bounds every product in
 * prepare() and cdf() below 2**62 whatever a crafted file's adaptation says. */
#define OUT_LIMIT ((int64_t)1 << 24)
#define STAGE 16
/* The mixture's layout (core/mixture.py): rows of K outputs per pixel, per channel c the
 * logit at LOGIT_ROW + c, mean offset MEAN_ROW + c, log-scale LOGSCALE_ROW + c; couplings
 * alpha (G from R), beta (B from R), gamma (B from G) at COUPLING_ROW + 0, 1, 2, in units
 * of 2**-COUPLING_SHIFT. Value v's bin is v +- HALF_BIN_Q4 (q4); 0 and LEVELS - 1 take the tails. */
#define OUT_ROWS 12
#define LOGIT_ROW 0
#define MEAN_ROW 3
#define LOGSCALE_ROW 6
#define COUPLING_ROW 9
#define COUPLING_SHIFT 8
#define LEVELS 256
#define HALF_BIN_Q4 (Q4 / 2)
#define MAX_K 32
#define MAX_LAYERS 8
#define W_ 0
#define N_ 6
#define NW_ 5
#define NE_ 7

static const int NB_DR[N_NB] = {0, 0, 0, -1, -1, -1, -1, -1, -1, -1, -2, -2, -2, -2, -2, -2, -2};
static const int NB_DC[N_NB] = {-1, -2, -3, -3, -2, -1, 0, 1, 2, 3, -3, -2, -1, 0, 1, 2, 3};
static const int WIDE_DR[N_WIDE] = {0, -1, -2, -2, -3, -3, -3, -3};
static const int WIDE_DC[N_WIDE] = {-4, -4, 4, 6, -2, 0, 2, 5};
static const int WIDE_RES[4] = {1, 4, 8, 13}; /* (0,-2), (-1,-2), (-1,+2), (-2,0) */
static const int LS_SIZES[3] = {18, 23, 24};
/* (channel, earlier channel) of coupling rows COUPLING_ROW + 0, 1, 2: G from R, B from R, B from G */
#define N_COUPLINGS 3
static const int COUPLING_PAIRS[N_COUPLINGS][2] = {{1, 0}, {2, 0}, {2, 1}};
static const int LS_OFFSETS[3] = {0, 18, 41};
#define LS_TOTAL 65
#define LS_MAX_SIZE 24
#define CUR_R 18 /* index of the current R in G's and B's coefficient vectors */
#define CUR_G 19 /* index of the current G in B's */

#endif
