/* The arithmetic of the kernel that each instruction set runs its own way: the int16 dense
 * layers and the mixture CDF at a run of bin edges. Every path gives the same integers, by
 * the bounds written beside each; the plain C ones are the reference. No Python here, so
 * that tests/native/arith_check.c builds it alone, for this CPU or another one (aarch64
 * under qemu). */
#ifndef NEURALZIP_ARITH_H
#define NEURALZIP_ARITH_H

#include <stdint.h>
#include <string.h>

#include "isa.h"
#include "units.h"

#if ISA_X86
#include <immintrin.h>
#elif ISA_NEON
#include <arm_neon.h>
#endif

static inline int64_t round_shift(int64_t x, int bits) { return (x + ((int64_t)1 << (bits - 1))) >> bits; }
static inline int64_t clamp64(int64_t x, int64_t lo, int64_t hi) { return x < lo ? lo : (x > hi ? hi : x); }

typedef struct {
    int n_in, n_out, n_out_pad, frac;
    double *w; /* (n_in, n_out_pad) row-major, zero padded */
    double *b; /* (n_out_pad,) */
    /* int16 arithmetic (format version 5): weights in pairs of inputs, a shift per output */
    int n_pairs; /* n_in rounded up to even, halved */
    int16_t *w16; /* (n_pairs, n_out_pad, 2): w16[(i / 2 * n_out_pad + o) * 2 + i % 2] = w[i][o] */
    int32_t *b32; /* (n_out_pad,) */
    int32_t *shift; /* (n_out,) */
} Layer;

typedef struct { /* one subpixel's mixture, ready for CDF evaluation */
    int n; /* components of non-zero weight (the others add exactly nothing) */
    int64_t mean[MAX_K], inv[MAX_K], weight[MAX_K];
    int64_t weights; /* sum of weight[]: every component's "+ j" at edge j */
    double bucket_cdf[STAGE + 1]; /* C at the bucket edges 0, 16, ..., 256 (exact integers) */
} Prepared;

/* ---- int16 MLP (format version 5) ------------------------------------------------------------
 *
 * y[p][o] = b[o] + sum_i x[p][i] * w[i][o] with int16 inputs and weights and int32 sums. The
 * bound checked at load, |b[o]| + 32767 * sum_i |w[i][o]| <= 2**31 - 1 for every output (so
 * for any int16 inputs), keeps every partial sum of any order in int32: the SIMD paths
 * (pmaddwd: pairs of products added exactly, then into int32 lanes) and the scalar one give
 * the same integers. Rows come in tiles of TILE16 pixels, outputs in tiles of 16. */
#define TILE16 4

static inline int32_t pair_at(const int16_t *x) { int32_t v; memcpy(&v, x, 4); return v; }

static void dense16_scalar(const int16_t *x, int ldx, int rows, const Layer *layer, int32_t *y, int ldy) {
    for (int p = 0; p < rows; p++)
        for (int o = 0; o < layer->n_out_pad; o++) {
            int32_t acc = layer->b32[o];
            const int16_t *xp = x + (size_t)p * ldx;
            for (int j = 0; j < layer->n_pairs; j++) {
                const int16_t *w = layer->w16 + ((size_t)j * layer->n_out_pad + o) * 2;
                acc += (int32_t)xp[2 * j] * w[0] + (int32_t)xp[2 * j + 1] * w[1];
            }
            y[(size_t)p * ldy + o] = acc;
        }
}

#if ISA_X86

/* SSE2 (every x86-64): 4 int32 lanes, four vectors a tile of 16 outputs. */
__attribute__((target("sse2"))) static void dense16_sse2(const int16_t *x, int ldx, int rows, const Layer *layer,
                                                         int32_t *y, int ldy) {
    const int n_out = layer->n_out_pad;
    for (int p0 = 0; p0 < rows; p0 += TILE16)
        for (int o0 = 0; o0 < n_out; o0 += 16) {
            __m128i acc[TILE16][4];
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 4; v++) acc[p][v] = _mm_loadu_si128((const __m128i *)(layer->b32 + o0 + 4 * v));
            for (int j = 0; j < layer->n_pairs; j++) {
                const int16_t *w = layer->w16 + ((size_t)j * n_out + o0) * 2;
                __m128i wv[4];
                for (int v = 0; v < 4; v++) wv[v] = _mm_loadu_si128((const __m128i *)(w + 8 * v));
                for (int p = 0; p < TILE16; p++) {
                    const __m128i xv = _mm_set1_epi32(pair_at(x + (size_t)(p0 + p) * ldx + 2 * j));
                    for (int v = 0; v < 4; v++) acc[p][v] = _mm_add_epi32(acc[p][v], _mm_madd_epi16(xv, wv[v]));
                }
            }
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 4; v++) _mm_storeu_si128((__m128i *)(y + (size_t)(p0 + p) * ldy + o0 + 4 * v), acc[p][v]);
        }
}

/* AVX2 (x86-64-v3): 8 lanes, two vectors a tile. */
__attribute__((target("avx2"))) static void dense16_avx2(const int16_t *x, int ldx, int rows, const Layer *layer,
                                                         int32_t *y, int ldy) {
    const int n_out = layer->n_out_pad;
    for (int p0 = 0; p0 < rows; p0 += TILE16)
        for (int o0 = 0; o0 < n_out; o0 += 16) {
            __m256i acc[TILE16][2];
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 2; v++) acc[p][v] = _mm256_loadu_si256((const __m256i *)(layer->b32 + o0 + 8 * v));
            for (int j = 0; j < layer->n_pairs; j++) {
                const int16_t *w = layer->w16 + ((size_t)j * n_out + o0) * 2;
                const __m256i w0 = _mm256_loadu_si256((const __m256i *)w), w1 = _mm256_loadu_si256((const __m256i *)(w + 16));
                for (int p = 0; p < TILE16; p++) {
                    const __m256i xv = _mm256_set1_epi32(pair_at(x + (size_t)(p0 + p) * ldx + 2 * j));
                    acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(xv, w0));
                    acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(xv, w1));
                }
            }
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 2; v++) _mm256_storeu_si256((__m256i *)(y + (size_t)(p0 + p) * ldy + o0 + 8 * v), acc[p][v]);
        }
}

/* AVX-512BW (x86-64-v4): 16 lanes; tiles of up to TALL16 pixels by 32 outputs (two
 * vectors, so that each broadcast input pair feeds two products), or by 16 where 16 outputs
 * are left; rows (a multiple of TILE16) in tiles of TALL16, then of 8 or 4. Tall tiles load
 * each weight vector once for many pixels. A tile takes only the input pairs that are not
 * zero in all its rows (after ReLU, about 29 % of photo-wide's 256-input pairs are zero in
 * all 12 rows of a tile): a zero pair adds exactly nothing. With AVX512-VNNI
 * (x86-64-v4-vnni), vpdpwssd adds each pair of products into the sums in one instruction:
 * the same wrapping int32 sum as pmaddwd then paddd, so the same integers. */
#define TALL16 12
#define PAIR_CHUNK 256 /* input pairs listed at a time */
#define DENSE16_AVX512(name, isa, MADD)                                                                           \
    /* Sums of outputs o0.. (32, or 16 where not wide) of ``tile`` rows over the input pairs      \
     * ``pairs[0..n)``, added to the bias (``first``) or to what y holds. */                      \
    __attribute__((target(isa), always_inline)) static inline void name##_tile(                                     \
        const int16_t *x, int ldx, int tile, int wide, const Layer *layer, int o0, const int32_t *pairs, int n,    \
        int first, int32_t *y, int ldy) {                                                                           \
        const int n_out = layer->n_out_pad;                                                                         \
        __m512i acc[TALL16][2];                                                                                     \
        for (int p = 0; p < tile; p++) {                                                                            \
            const int32_t *from = first ? layer->b32 + o0 : y + (size_t)p * ldy + o0;                               \
            acc[p][0] = _mm512_loadu_si512((const void *)from);                                                     \
            acc[p][1] = wide ? _mm512_loadu_si512((const void *)(from + 16)) : _mm512_setzero_si512();              \
        }                                                                                                           \
        for (int a = 0; a < n; a++) {                                                                               \
            const int j = pairs[a];                                                                                 \
            const int16_t *w = layer->w16 + ((size_t)j * n_out + o0) * 2;                                           \
            const __m512i w0 = _mm512_loadu_si512((const void *)w);                                                 \
            const __m512i w1 = wide ? _mm512_loadu_si512((const void *)(w + 32)) : _mm512_setzero_si512();          \
            for (int p = 0; p < tile; p++) {                                                                        \
                const __m512i xv = _mm512_set1_epi32(pair_at(x + (size_t)p * ldx + 2 * j));                         \
                acc[p][0] = MADD(acc[p][0], xv, w0);                                                                \
                if (wide) acc[p][1] = MADD(acc[p][1], xv, w1);                                                      \
            }                                                                                                       \
        }                                                                                                           \
        for (int p = 0; p < tile; p++) {                                                                            \
            _mm512_storeu_si512((void *)(y + (size_t)p * ldy + o0), acc[p][0]);                                    \
            if (wide) _mm512_storeu_si512((void *)(y + (size_t)p * ldy + o0 + 16), acc[p][1]);                      \
        }                                                                                                           \
    }                                                                                                               \
    __attribute__((target(isa))) static void name(const int16_t *x, int ldx, int rows, const Layer *layer, int32_t *y, \
                                                  int ldy) {                                                        \
        int32_t pairs[PAIR_CHUNK];                                                                                  \
        for (int p0 = 0; p0 < rows;) {                                                                              \
            const int left = rows - p0, tile = left >= TALL16 ? TALL16 : (left >= 8 ? 8 : TILE16);                  \
            const int16_t *xt = x + (size_t)p0 * ldx;                                                               \
            int32_t *yt = y + (size_t)p0 * ldy;                                                                     \
            for (int j0 = 0; j0 == 0 || j0 < layer->n_pairs; j0 += PAIR_CHUNK) {                                    \
                const int end = j0 + PAIR_CHUNK < layer->n_pairs ? j0 + PAIR_CHUNK : layer->n_pairs;                \
                int n = 0;                                                                                          \
                for (int j = j0; j < end; j += 16) { /* the pairs not zero in every row, in order */               \
                    const __mmask16 in = (__mmask16)(end - j >= 16 ? 0xFFFF : (1u << (end - j)) - 1);               \
                    __m512i any = _mm512_setzero_si512();                                                           \
                    for (int p = 0; p < tile; p++)                                                                  \
                        any = _mm512_or_si512(any, _mm512_maskz_loadu_epi32(in, xt + (size_t)p * ldx + 2 * j));     \
                    const __mmask16 live = _mm512_mask_test_epi32_mask(in, any, any);                               \
                    const __m512i index = _mm512_add_epi32(_mm512_set1_epi32(j),                                    \
                        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));                   \
                    _mm512_mask_compressstoreu_epi32(pairs + n, live, index);                                       \
                    n += __builtin_popcount(live);                                                                  \
                }                                                                                                   \
                for (int o0 = 0; o0 < layer->n_out_pad; o0 += 32) { /* constant shapes: sums in registers */       \
                    const int wide = o0 + 32 <= layer->n_out_pad, first = j0 == 0; /* else the last 16 outputs */     \
                    if (tile == TALL16) wide ? name##_tile(xt, ldx, TALL16, 1, layer, o0, pairs, n, first, yt, ldy) \
                                             : name##_tile(xt, ldx, TALL16, 0, layer, o0, pairs, n, first, yt, ldy);\
                    else if (tile == 8) wide ? name##_tile(xt, ldx, 8, 1, layer, o0, pairs, n, first, yt, ldy)      \
                                             : name##_tile(xt, ldx, 8, 0, layer, o0, pairs, n, first, yt, ldy);     \
                    else wide ? name##_tile(xt, ldx, TILE16, 1, layer, o0, pairs, n, first, yt, ldy)                \
                              : name##_tile(xt, ldx, TILE16, 0, layer, o0, pairs, n, first, yt, ldy);               \
                }                                                                                                   \
            }                                                                                                       \
            p0 += tile;                                                                                             \
        }                                                                                                           \
    }

#define MADD_AVX512(acc, x, w) _mm512_add_epi32(acc, _mm512_madd_epi16(x, w))
#define MADD_VNNI(acc, x, w) _mm512_dpwssd_epi32(acc, x, w)
DENSE16_AVX512(dense16_avx512, "avx512f,avx512bw", MADD_AVX512)
DENSE16_AVX512(dense16_vnni, "avx512f,avx512bw,avx512vnni", MADD_VNNI)

typedef void (*Dense16)(const int16_t *, int, int, const Layer *, int32_t *, int);
static const Dense16 dense16_paths[ISA_COUNT] = {dense16_sse2, dense16_avx2, dense16_avx512, dense16_vnni};
#elif ISA_NEON
/* NEON (every aarch64): a tile of 16 outputs in four vectors of 4 int32 lanes. Each pair of
 * inputs loads its 16 weight pairs deinterleaved (vld2q: the first input's weights, then the
 * second's) and adds the widened products one input at a time (smlal), each sum exact in
 * int32 by the bound above. */
static void dense16_neon(const int16_t *x, int ldx, int rows, const Layer *layer, int32_t *y, int ldy) {
    const int n_out = layer->n_out_pad;
    for (int p0 = 0; p0 < rows; p0 += TILE16)
        for (int o0 = 0; o0 < n_out; o0 += 16) {
            int32x4_t acc[TILE16][4];
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 4; v++) acc[p][v] = vld1q_s32(layer->b32 + o0 + 4 * v);
            for (int j = 0; j < layer->n_pairs; j++) {
                const int16_t *w = layer->w16 + ((size_t)j * n_out + o0) * 2;
                const int16x8x2_t lo = vld2q_s16(w), hi = vld2q_s16(w + 16); /* outputs o0..7, o0+8..15 */
                for (int p = 0; p < TILE16; p++) {
                    const int16_t *xp = x + (size_t)(p0 + p) * ldx + 2 * j;
                    for (int i = 0; i < 2; i++) {
                        acc[p][0] = vmlal_n_s16(acc[p][0], vget_low_s16(lo.val[i]), xp[i]);
                        acc[p][1] = vmlal_high_n_s16(acc[p][1], lo.val[i], xp[i]);
                        acc[p][2] = vmlal_n_s16(acc[p][2], vget_low_s16(hi.val[i]), xp[i]);
                        acc[p][3] = vmlal_high_n_s16(acc[p][3], hi.val[i], xp[i]);
                    }
                }
            }
            for (int p = 0; p < TILE16; p++)
                for (int v = 0; v < 4; v++) vst1q_s32(y + (size_t)(p0 + p) * ldy + o0 + 4 * v, acc[p][v]);
        }
}

typedef void (*Dense16)(const int16_t *, int, int, const Layer *, int32_t *, int);
static const Dense16 dense16_paths[ISA_COUNT] = {dense16_neon, dense16_neon, dense16_neon, dense16_neon};
#else
typedef void (*Dense16)(const int16_t *, int, int, const Layer *, int32_t *, int);
static const Dense16 dense16_paths[ISA_COUNT] = {dense16_scalar, dense16_scalar, dense16_scalar, dense16_scalar};
#endif


/* Outputs of one pixel: round_shift(y, shift + ACT_FRAC) clamped to +-OUT_LIMIT, in int32
 * lanes: floor((y + 2**(b-1)) / 2**b) is (y >> b) plus bit b-1 of y, and for |y| < 2**31
 * a shift by 31 gives what any longer one would (b is at most 30 + ACT_FRAC). */
static inline __attribute__((always_inline)) void output16_body(const int32_t *restrict y, const int32_t *restrict shift,
                                                                int n, int64_t *restrict out) {
    for (int o = 0; o < n; o++) {
        const int32_t bits = shift[o] + ACT_FRAC, whole = bits < 31 ? bits : 31, half = bits - 1 < 31 ? bits - 1 : 31;
        const int32_t v = (y[o] >> whole) + ((y[o] >> half) & 1);
        out[o] = v < -(int32_t)OUT_LIMIT ? -OUT_LIMIT : (v > (int32_t)OUT_LIMIT ? OUT_LIMIT : v);
    }
}
ISA_CLONES(void, output16, (const int32_t *restrict y, const int32_t *restrict shift, int n, int64_t *restrict out),
           (y, shift, n, out))

/* Hidden units of one pixel: clamp(y >> shift, 0, ACT_MAX16) as int16, in int32 lanes
 * (the vector paths shift each lane by its own count). */
static inline __attribute__((always_inline)) void activate16_body(const int32_t *restrict y, const int32_t *restrict shift,
                                                                  int n, int16_t *restrict out) {
    for (int o = 0; o < n; o++) {
        const int32_t v = y[o] >> shift[o];
        out[o] = (int16_t)(v < 0 ? 0 : (v > ACT_MAX16 ? ACT_MAX16 : v));
    }
}
ISA_CLONES(void, activate16, (const int32_t *restrict y, const int32_t *restrict shift, int n, int16_t *restrict out),
           (y, shift, n, out))

/* sums[o] += sum_i v[i] * cols[i * ld + o] for o < n (a multiple of 16), in wrapping (uint32)
 * arithmetic: the decoder's late inputs of layer 0 (_kernel.c). 16 sums stay in vectors of
 * the path's own width over all the inputs (GCC's vector extension: a vector wider than the
 * path's registers goes through the stack, which cost AVX2 46 % of a decode's cycles); integer
 * lanes make every grouping exact. */
typedef void (*AddColumns)(uint32_t *restrict, const int32_t *restrict, int, const int32_t *restrict, int, int);
#define ADD_COLUMNS(name, attributes, Vec, K) /* K vectors Vec of 16 / K lanes */                               \
    attributes static void name(uint32_t *restrict sums, const int32_t *restrict cols, int ld,                     \
                                const int32_t *restrict v, int n_inputs, int n) {                                  \
        for (int o = 0; o < n; o += 16) {                                                                          \
            Vec acc[K], col;                                                                                       \
            for (int k = 0; k < K; k++) memcpy(&acc[k], sums + o + k * (16 / K), sizeof col);                      \
            for (int i = 0; i < n_inputs; i++)                                                                     \
                for (int k = 0; k < K; k++) {                                                                      \
                    memcpy(&col, cols + (size_t)i * ld + o + k * (16 / K), sizeof col);                            \
                    acc[k] += (uint32_t)v[i] * col;                                                                \
                }                                                                                                  \
            for (int k = 0; k < K; k++) memcpy(sums + o + k * (16 / K), &acc[k], sizeof col);                      \
        }                                                                                                          \
    }
typedef uint32_t U32x4 __attribute__((vector_size(16)));
#if ISA_X86
typedef uint32_t U32x8 __attribute__((vector_size(32)));
typedef uint32_t U32x16 __attribute__((vector_size(64)));
ADD_COLUMNS(add_columns_sse2, __attribute__((target("sse2"))), U32x4, 4)
ADD_COLUMNS(add_columns_avx2, __attribute__((target("avx2"))), U32x8, 2)
ADD_COLUMNS(add_columns_avx512, __attribute__((target("avx512f"))), U32x16, 1)
static const AddColumns add_columns_paths[ISA_COUNT] = {add_columns_sse2, add_columns_avx2, add_columns_avx512,
                                                        add_columns_avx512};
#else /* NEON's registers, and SSE2's where GCC's x86 paths are not built, hold 4 lanes */
ADD_COLUMNS(add_columns_vec4, , U32x4, 4)
static const AddColumns add_columns_paths[ISA_COUNT] = {add_columns_vec4, add_columns_vec4, add_columns_vec4,
                                                        add_columns_vec4};
#endif

/* The mixture CDF C(j) at bin edge j in 0..LEVELS (between values j-1 and j) is
 *   C(j) = sum_i w_i * (sigmoid[t_i(j)] + j),
 *   t_i(j) = clamp(floor((x_j - mean_i) * inv_i / 2**(INV_BITS + 4 - T_FRAC)) + T_MAX * 2**T_FRAC, 0, TOP),
 * with x_j = Q4 * j - HALF_BIN_Q4 at the interior edges 1..LEVELS-1. The tails take every
 * component's end of the table: C(0) = sum_i w_i * sigmoid[0] and
 * C(LEVELS) = sum_i w_i * (sigmoid[TOP] + LEVELS), as the edges at -+2**30 gave in versions 1
 * to 5 (|mean| <= 2**24 and inv >= 1 put them past either end).
 *
 * Every path computes these integers exactly in float64: |x_j - mean| < 2**25 and
 * inv <= 2**INV_MAX_BITS, so the product is below 2**51; the shift is a multiplication by a
 * power of two and floor(); each term w * sigmoid is below 2**32 and a sum of MAX_K of
 * them below 2**37. No rounding happens anywhere, so the sums equal the int64 ones bit for
 * bit whatever the order or the vector width. */
#define TOP (2 * T_MAX << T_FRAC)
#define RUN (STAGE - 1) /* interior edges a stage evaluates: 16, 32, ..., 240 or 16b + 1..16b + 15 */

/* The sigmoid table's index of component i at interior edge j (the t_i(j) above). */
static inline int64_t edge_index(const Prepared *p, int i, int j) {
    const int64_t t = ((Q4 * (int64_t)j - HALF_BIN_Q4 - p->mean[i]) * p->inv[i]) >> (INV_BITS + 4 - T_FRAC);
    return clamp64(t + (T_MAX << T_FRAC), 0, TOP);
}

/* Whether component i adds one constant over the run's edges: its index at the first edge is
 * already the top, or at the last the bottom (indices never fall as j grows). Most
 * components of a value table, far from its bucket, are; they cost no lookup per edge. */
static inline int run_is_flat(const Prepared *p, int i, int j0, int step, int64_t *first) {
    *first = edge_index(p, i, j0);
    return *first == TOP || edge_index(p, i, j0 + step * (RUN - 1)) == 0;
}

/* C at the RUN interior edges j0, j0 + step, ..., into out[0..RUN-1] (out[RUN] is scratch,
 * written by the vector paths). Plain C: the reference the vector paths must equal. */
static void run_cdf_scalar(const float *sigmoid, const Prepared *p, int j0, int step, double *out) {
    int64_t sum[RUN], first;
    for (int s = 0; s < RUN; s++) sum[s] = p->weights * (j0 + step * s);
    for (int i = 0; i < p->n; i++) {
        if (run_is_flat(p, i, j0, step, &first)) {
            for (int s = 0; s < RUN; s++) sum[s] += p->weight[i] * (int64_t)sigmoid[first];
            continue;
        }
        for (int s = 0; s < RUN; s++) sum[s] += p->weight[i] * (int64_t)sigmoid[edge_index(p, i, j0 + step * s)];
    }
    for (int s = 0; s < RUN; s++) out[s] = (double)sum[s];
}

typedef void (*RunCdf)(const float *, const Prepared *, int, int, double *);

#if ISA_X86
/* AVX2 (x86-64-v3): the 16 edges (RUN and one of scratch) in four vectors of 4; each
 * component's lookups for two vectors in one gather of 8 from the float32 table, widened to
 * float64. */
__attribute__((target("avx2"))) static void run_cdf_avx2(const float *sigmoid, const Prepared *p, int j0, int step,
                                                         double *out) {
    __m256d x[4], acc[4];
    int64_t first;
    for (int v = 0; v < 4; v++) {
        const int j = j0 + step * 4 * v;
        const __m256d js = _mm256_setr_pd(j, j + step, j + 2 * step, j + 3 * step);
        x[v] = _mm256_sub_pd(_mm256_mul_pd(js, _mm256_set1_pd(Q4)), _mm256_set1_pd(HALF_BIN_Q4));
        acc[v] = _mm256_mul_pd(js, _mm256_set1_pd((double)p->weights));
    }
    const __m256d centre = _mm256_set1_pd(T_MAX << T_FRAC), zero = _mm256_setzero_pd(), top = _mm256_set1_pd(TOP);
    for (int i = 0; i < p->n; i++) {
        const __m256d w = _mm256_set1_pd((double)p->weight[i]);
        if (run_is_flat(p, i, j0, step, &first)) {
            const __m256d c = _mm256_mul_pd(w, _mm256_set1_pd(sigmoid[first]));
            for (int v = 0; v < 4; v++) acc[v] = _mm256_add_pd(acc[v], c);
            continue;
        }
        const __m256d mean = _mm256_set1_pd((double)p->mean[i]);
        const __m256d scale = _mm256_set1_pd((double)p->inv[i] * (1.0 / (1 << (INV_BITS + 4 - T_FRAC))));
        __m128i idx[4];
        for (int v = 0; v < 4; v++) {
            const __m256d t = _mm256_add_pd(_mm256_floor_pd(_mm256_mul_pd(_mm256_sub_pd(x[v], mean), scale)), centre);
            idx[v] = _mm256_cvttpd_epi32(_mm256_min_pd(_mm256_max_pd(t, zero), top));
        }
        for (int h = 0; h < 2; h++) {
            const __m256 g = _mm256_i32gather_ps(sigmoid, _mm256_setr_m128i(idx[2 * h], idx[2 * h + 1]), 4);
            acc[2 * h] = _mm256_add_pd(acc[2 * h], _mm256_mul_pd(w, _mm256_cvtps_pd(_mm256_castps256_ps128(g))));
            acc[2 * h + 1] = _mm256_add_pd(acc[2 * h + 1], _mm256_mul_pd(w, _mm256_cvtps_pd(_mm256_extractf128_ps(g, 1))));
        }
    }
    for (int v = 0; v < 4; v++) _mm256_storeu_pd(out + 4 * v, acc[v]);
}

/* AVX-512F (x86-64-v4): the same in two vectors of 8, the lookups of each in a gather of
 * 8 (two of them measured faster than one of 16), widened to float64. */
__attribute__((target("avx512f"))) static void run_cdf_avx512(const float *sigmoid, const Prepared *p, int j0, int step,
                                                              double *out) {
    __m512d x[2], acc[2];
    int64_t first;
    for (int v = 0; v < 2; v++) {
        const __m512d js = _mm512_add_pd(_mm512_set1_pd(j0 + step * 8 * v),
                                          _mm512_mul_pd(_mm512_setr_pd(0, 1, 2, 3, 4, 5, 6, 7), _mm512_set1_pd(step)));
        x[v] = _mm512_sub_pd(_mm512_mul_pd(js, _mm512_set1_pd(Q4)), _mm512_set1_pd(HALF_BIN_Q4));
        acc[v] = _mm512_mul_pd(js, _mm512_set1_pd((double)p->weights));
    }
    const __m512d centre = _mm512_set1_pd(T_MAX << T_FRAC), zero = _mm512_setzero_pd(), top = _mm512_set1_pd(TOP);
    for (int i = 0; i < p->n; i++) {
        const __m512d w = _mm512_set1_pd((double)p->weight[i]);
        if (run_is_flat(p, i, j0, step, &first)) {
            const __m512d c = _mm512_mul_pd(w, _mm512_set1_pd(sigmoid[first]));
            for (int v = 0; v < 2; v++) acc[v] = _mm512_add_pd(acc[v], c);
            continue;
        }
        const __m512d mean = _mm512_set1_pd((double)p->mean[i]);
        const __m512d scale = _mm512_set1_pd((double)p->inv[i] * (1.0 / (1 << (INV_BITS + 4 - T_FRAC))));
        __m256i idx[2];
        for (int v = 0; v < 2; v++) {
            const __m512d d = _mm512_mul_pd(_mm512_sub_pd(x[v], mean), scale);
            __m512d t = _mm512_add_pd(_mm512_roundscale_pd(d, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC), centre);
            idx[v] = _mm512_cvttpd_epi32(_mm512_min_pd(_mm512_max_pd(t, zero), top));
        }
        for (int v = 0; v < 2; v++)
            acc[v] = _mm512_add_pd(acc[v], _mm512_mul_pd(w, _mm512_cvtps_pd(_mm256_i32gather_ps(sigmoid, idx[v], 4))));
    }
    for (int v = 0; v < 2; v++) _mm512_storeu_pd(out + 8 * v, acc[v]);
}

static const RunCdf run_cdf_paths[ISA_COUNT] = {run_cdf_scalar, run_cdf_avx2, run_cdf_avx512, run_cdf_avx512};
#elif ISA_NEON
/* NEON (every aarch64): the 16 edges in eight vectors of 2 float64 lanes; the lookups are
 * loads of single lanes (aarch64 has no gather). */
static void run_cdf_neon(const float *sigmoid, const Prepared *p, int j0, int step, double *out) {
    float64x2_t x[8], acc[8];
    int64_t first;
    for (int v = 0; v < 8; v++) {
        const double j = j0 + step * 2 * v, js_[2] = {j, j + step};
        const float64x2_t js = vld1q_f64(js_);
        x[v] = vsubq_f64(vmulq_f64(js, vdupq_n_f64(Q4)), vdupq_n_f64(HALF_BIN_Q4));
        acc[v] = vmulq_f64(js, vdupq_n_f64((double)p->weights));
    }
    const float64x2_t centre = vdupq_n_f64(T_MAX << T_FRAC), zero = vdupq_n_f64(0), top = vdupq_n_f64(TOP);
    for (int i = 0; i < p->n; i++) {
        const float64x2_t w = vdupq_n_f64((double)p->weight[i]);
        if (run_is_flat(p, i, j0, step, &first)) {
            const float64x2_t c = vmulq_f64(w, vdupq_n_f64(sigmoid[first]));
            for (int v = 0; v < 8; v++) acc[v] = vaddq_f64(acc[v], c);
            continue;
        }
        const float64x2_t mean = vdupq_n_f64((double)p->mean[i]);
        const float64x2_t scale = vdupq_n_f64((double)p->inv[i] * (1.0 / (1 << (INV_BITS + 4 - T_FRAC))));
        for (int v = 0; v < 8; v++) {
            const float64x2_t t = vaddq_f64(vrndmq_f64(vmulq_f64(vsubq_f64(x[v], mean), scale)), centre);
            const int64x2_t idx = vcvtq_s64_f64(vminq_f64(vmaxq_f64(t, zero), top));
            const double looked[2] = {sigmoid[vgetq_lane_s64(idx, 0)], sigmoid[vgetq_lane_s64(idx, 1)]};
            acc[v] = vaddq_f64(acc[v], vmulq_f64(w, vld1q_f64(looked)));
        }
    }
    for (int v = 0; v < 8; v++) vst1q_f64(out + 2 * v, acc[v]);
}

static const RunCdf run_cdf_paths[ISA_COUNT] = {run_cdf_neon, run_cdf_neon, run_cdf_neon, run_cdf_neon};
#else
static const RunCdf run_cdf_paths[ISA_COUNT] = {run_cdf_scalar, run_cdf_scalar, run_cdf_scalar, run_cdf_scalar};
#endif

#endif
