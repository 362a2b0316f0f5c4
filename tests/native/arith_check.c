/* Checks every instruction-set path of arith.h that this CPU runs against the plain C
 * reference, bit for bit: the int16 dense layers at the extremes their load-time bound
 * allows, the decoder's late layer-0 sums at every extreme of int32, and the mixture CDF
 * runs of mixtures pushed past every clamp. Built alone (no Python) by
 * tests/test_native_arith.py, for this CPU and for aarch64 under qemu.
 * Prints one line per path and exits 1 at the first difference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "arith.h"

static uint64_t state = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void) { /* xorshift64* */
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return state * 2685821657736338717u;
}
static int64_t uniform(int64_t lo, int64_t hi) { return lo + (int64_t)(next_random() % (uint64_t)(hi - lo + 1)); }
/* Mostly uniform in [lo, hi], sometimes one of its ends. */
static int64_t edgy(int64_t lo, int64_t hi) {
    const uint64_t r = next_random() % 8;
    return r == 0 ? lo : (r == 1 ? hi : uniform(lo, hi));
}

#define ROWS 28 /* the most rows a check takes: tiles of every height the paths have */

/* One random layer of n_in inputs and n_out_pad outputs within the bound
 * |b| + 32767 * sum |w| <= 2**31 - 1, and random inputs (``sparse``: half the input pairs
 * zero in every row, a quarter in all rows but one); every path's sums of ``rows`` rows (a
 * multiple of TILE16) against the scalar ones. */
static int check_dense16(const char *name, Dense16 path, int n_in, int n_out_pad, int rows, int sparse) {
    Layer layer = {0};
    layer.n_in = n_in;
    layer.n_out = layer.n_out_pad = n_out_pad;
    layer.n_pairs = (n_in + 1) / 2;
    const int ldx = 2 * layer.n_pairs;
    int16_t *w16 = calloc((size_t)layer.n_pairs * n_out_pad * 2, sizeof(int16_t)), *x = calloc((size_t)ROWS * ldx, sizeof(int16_t));
    int32_t *b32 = calloc(n_out_pad, sizeof(int32_t));
    int32_t *want = calloc((size_t)ROWS * n_out_pad, sizeof(int32_t)), *got = calloc((size_t)ROWS * n_out_pad, sizeof(int32_t));
    const int64_t budget = 2147483647;
    const int16_t w_max = (int16_t)(budget / 2 / 32767 / n_in < 32767 ? budget / 2 / 32767 / n_in : 32767);
    for (int o = 0; o < n_out_pad; o++) {
        for (int i = 0; i < n_in; i++) w16[((size_t)(i / 2) * n_out_pad + o) * 2 + i % 2] = (int16_t)edgy(-w_max, w_max);
        b32[o] = (int32_t)edgy(-budget / 2, budget / 2);
    }
    for (int p = 0; p < ROWS; p++)
        for (int i = 0; i < n_in; i++) x[(size_t)p * ldx + i] = (int16_t)edgy(-32767, 32767);
    if (sparse) /* ReLU outputs: pairs that are 0 in every row, or in all rows but one */
        for (int j = 0; j < layer.n_pairs; j++) {
            const uint64_t kind = next_random() % 4;
            const int keep = kind == 1 ? (int)uniform(0, rows - 1) : -1;
            for (int p = 0; kind < 2 && p < ROWS; p++)
                if (p != keep) x[(size_t)p * ldx + 2 * j] = x[(size_t)p * ldx + 2 * j + 1] = 0;
        }
    layer.w16 = w16;
    layer.b32 = b32;
    dense16_scalar(x, ldx, rows, &layer, want, n_out_pad);
    path(x, ldx, rows, &layer, got, n_out_pad);
    int bad = -1;
    for (int i = 0; i < ROWS * n_out_pad && bad < 0; i++) /* rows past ``rows`` stay 0 */
        if (want[i] != got[i]) bad = i;
    if (bad >= 0)
        printf("%s: dense16 %d -> %d of %d rows differs at row %d output %d: %d, plain C %d\n", name, n_in, n_out_pad,
               rows, bad / n_out_pad, bad % n_out_pad, got[bad], want[bad]);
    free(w16); free(x); free(b32); free(want); free(got);
    return bad < 0;
}

/* A mixture of n components, means anywhere in +-OUT_LIMIT or near the edges, inverse
 * scales 1..2**INV_MAX_BITS, weights 0..2**WEIGHT_BITS; both stages' runs against the
 * scalar ones. */
static int check_cdf(const char *name, RunCdf path, const float *sigmoid, int n) {
    Prepared p = {0};
    for (int i = 0; i < n; i++) {
        const uint64_t kind = next_random() % 3;
        p.mean[p.n] = kind == 0 ? edgy(-OUT_LIMIT, OUT_LIMIT) : uniform(-64, LEVELS * Q4 + 64);
        p.inv[p.n] = kind == 2 ? ((int64_t)1 << uniform(0, INV_MAX_BITS)) : edgy(1, (int64_t)1 << INV_MAX_BITS);
        p.weight[p.n] = edgy(0, (int64_t)1 << WEIGHT_BITS);
        p.weights += p.weight[p.n++];
    }
    for (int bucket = -1; bucket < STAGE; bucket++) { /* -1: the bucket edges */
        const int j0 = bucket < 0 ? STAGE : STAGE * bucket + 1, step = bucket < 0 ? STAGE : 1;
        double want[STAGE], got[STAGE];
        run_cdf_scalar(sigmoid, &p, j0, step, want);
        path(sigmoid, &p, j0, step, got);
        for (int s = 0; s < RUN; s++)
            if (want[s] != got[s]) {
                printf("%s: CDF of %d components at edge %d differs: %.17g, plain C %.17g\n", name, n, j0 + step * s,
                       got[s], want[s]);
                return 0;
            }
    }
    return 1;
}

/* Late layer-0 sums (add_columns): n_inputs columns of n sums in wrapping uint32, at every
 * extreme of int32, against a plain loop. */
static int check_add_columns(const char *name, AddColumns path, int n_inputs, int n) {
    enum { LD = 144 };
    int32_t cols[24 * LD], v[24];
    uint32_t want[LD], got[LD];
    for (int i = 0; i < n_inputs; i++) {
        v[i] = (int32_t)edgy(INT32_MIN, INT32_MAX);
        for (int o = 0; o < LD; o++) cols[i * LD + o] = (int32_t)edgy(INT32_MIN, INT32_MAX);
    }
    for (int o = 0; o < LD; o++) want[o] = got[o] = (uint32_t)edgy(0, UINT32_MAX);
    for (int o = 0; o < n; o++)
        for (int i = 0; i < n_inputs; i++) want[o] += (uint32_t)v[i] * (uint32_t)cols[i * LD + o];
    path(got, cols, LD, v, n_inputs, n);
    for (int o = 0; o < LD; o++)
        if (want[o] != got[o]) {
            printf("%s: add_columns %d x %d differs at %d: %u, plain C %u\n", name, n_inputs, n, o, got[o], want[o]);
            return 0;
        }
    return 1;
}

int main(void) {
    static float sigmoid[TOP + 1]; /* a logistic table like tables.py's: integers below 2**CDF_BITS */
    for (int t = 0; t <= TOP; t++)
        sigmoid[t] = (float)floor((double)(1 << CDF_BITS) / (1.0 + exp(-(t - (T_MAX << T_FRAC)) / (double)(1 << T_FRAC))));
    static const int widths[][2] = {{1, 16}, {2, 16}, {75, 64}, {114, 48}, {64, 128}, {128, 32}, {256, 80}, {600, 32}};
    int checked = 0;
    for (int isa = 0; isa < ISA_COUNT; isa++) {
        if (!isa_supported(isa)) continue;
        const char *name = ISA_NAMES[isa];
        for (int rep = 0; rep < 50; rep++)
            for (size_t s = 0; s < sizeof widths / sizeof widths[0]; s++)
                if (!check_dense16(name, dense16_paths[isa], widths[s][0], widths[s][1], TILE16 * (1 + rep % (ROWS / TILE16)),
                                   rep % 2))
                    return 1;
        for (int rep = 0; rep < 2000; rep++)
            if (!check_cdf(name, run_cdf_paths[isa], sigmoid, (int)uniform(1, 8))) return 1;
        for (int rep = 0; rep < 200; rep++)
            if (!check_add_columns(name, add_columns_paths[isa], (int)uniform(1, 24), 16 * (int)uniform(1, 9))) return 1;
        printf("%s%s: int16 layers, late sums and CDF runs equal the plain C\n", name, ISA_NEON ? " (NEON)" : "");
        checked++;
    }
    return checked ? 0 : 1;
}
