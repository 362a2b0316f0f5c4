/* neuralzip.core._kernel: the per-pixel work of the codec, compiled.
 *
 * One ImageKernel holds one image's planes (pixels, LS residuals) and one model (integer
 * MLP weights, lookup tables, LS coefficients). It computes, for any pixel, the causal
 * context, the integer model's mixture parameters and both coding stages' frequency
 * tables, in exact integer arithmetic (the MLP in float64 on integers whose every partial
 * sum stays below 2**53, checked by the Python side at load time). Results therefore do
 * not depend on the instruction set, the compiler's vectorisation or summation order, the
 * thread count or the batch split: the decoder rebuilds the encoder's tables bit for bit.
 *
 * The arithmetic mirrors, operation for operation, the numpy reference kept in
 * tests/reference.py; units are documented in units.py.
 * Coding itself (ANS) stays in Python with constriction: this module only fills tables.
 *
 * Signed right shifts are arithmetic (floor) on every compiler this builds with
 * (GCC, Clang); left shifts of signed values are written as multiplications.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "arith.h" /* units.h, and the int16 layers and CDF runs of each instruction set (isa.h) */
#include "buffers.h"

/* ---- MLP tiling ---------------------------------------------------------------------- */
#define TILE_ROWS 6  /* pixels per micro-kernel tile */
#define TILE_COLS 8  /* outputs per micro-kernel tile (two 4-double vectors) */
#define BLOCK 24     /* pixels per block: a multiple of TILE_ROWS */
#define ALIGN 64

typedef double v4d __attribute__((vector_size(32)));

static inline int pad_to(int n, int m) { return (n + m - 1) / m * m; }

typedef struct { /* per-thread scratch of one block of pixels */
    double *a, *b; /* ping-pong activations, BLOCK x width_pad (float64 arithmetic) */
    int16_t *a16, *b16; /* the same for int16 arithmetic: features and activations */
    int32_t *acc; /* BLOCK x width_pad int32 sums (int16 arithmetic) */
    int64_t *out; /* BLOCK x 12K model outputs (encoder) */
    int64_t known[BLOCK * 3]; /* LS parts without the current pixel (encoder) */
} Scratch;

/* ---- a small pool of worker threads ------------------------------------------------------
 *
 * pool_run(fn, ctx, n) calls fn(ctx, block, slot) for every block 0..n-1, on the calling
 * thread (slot 0) and the workers (slots 1..), each block exactly once. Blocks are claimed
 * one at a time from a shared counter, so the caller never waits for a worker that has
 * not started: on a busy machine it simply does every block itself. That keeps the
 * decoder's thousands of short steps fast whatever else runs on the machine. Results never
 * depend on which thread ran a block.
 *
 * pool_background(fn, ctx, n) posts blocks that idle workers run between jobs, while the
 * caller does other work (the decoder: the next step's early inputs while it pulls
 * symbols); pool_settle() runs on the caller whatever no worker has claimed, and returns
 * once every block is done. */

typedef void (*BlockFn)(void *ctx, int64_t block, int slot);
#define CLOSED 0xFFFFFFFFu
#define SPIN_ROUNDS 50000 /* about 100 us of polling before a worker sleeps */
#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

typedef struct {
    int n_workers;
    pthread_t *workers;
    pthread_mutex_t mutex;
    pthread_cond_t wake; /* workers: a job was posted */
    pthread_cond_t finished; /* the caller: the job's last block is done */
    _Atomic uint64_t claim; /* generation << 32 | next block (CLOSED between jobs) */
    _Atomic uint32_t posted; /* generation of the newest job */
    _Atomic int64_t done; /* blocks of the current job completed */
    _Atomic int stop;
    BlockFn fn;
    void *ctx;
    _Atomic int64_t n_blocks; /* read by workers that may still be leaving the previous job */
    /* the background job: claimed one block at a time from bg_claim while bg_claim < bg_n */
    BlockFn bg_fn;
    void *bg_ctx;
    _Atomic int64_t bg_claim, bg_n, bg_done;
    int64_t bg_by_caller; /* blocks of the current background job the caller ran (slot 0 only) */
} Pool;

typedef struct { Pool *pool; int slot; } WorkerArgs;

/* Claim and run blocks of job ``gen`` until none is left. */
static void pool_work(Pool *pool, uint32_t gen, int slot) {
    for (;;) {
        uint64_t c = atomic_load(&pool->claim);
        uint32_t next = (uint32_t)c;
        if ((uint32_t)(c >> 32) != gen || next == CLOSED || next >= atomic_load(&pool->n_blocks)) return;
        if (!atomic_compare_exchange_weak(&pool->claim, &c, c + 1)) continue;
        pool->fn(pool->ctx, next, slot); /* the job stays until its claimed blocks are done */
        if (atomic_fetch_add(&pool->done, 1) + 1 == atomic_load(&pool->n_blocks)) { /* the last: wake the caller */
            pthread_mutex_lock(&pool->mutex);
            pthread_cond_broadcast(&pool->finished);
            pthread_mutex_unlock(&pool->mutex);
        }
    }
}

/* Whether the background job has a block left to claim. */
static inline int background_left(Pool *pool) { return atomic_load(&pool->bg_claim) < atomic_load(&pool->bg_n); }

/* Claim and run one block of the background job; 0 when none was left. bg_n is zero while
 * a job is posted, so a claim never pairs a new counter with the last job's size. */
static int pool_background_block(Pool *pool, int slot) {
    int64_t b = atomic_load(&pool->bg_claim);
    if (b >= atomic_load(&pool->bg_n)) return 0;
    if (!atomic_compare_exchange_weak(&pool->bg_claim, &b, b + 1)) return 1; /* another thread took it: look again */
    pool->bg_fn(pool->bg_ctx, b, slot);
    if (slot == 0) pool->bg_by_caller++;
    if (atomic_fetch_add(&pool->bg_done, 1) + 1 == atomic_load(&pool->bg_n)) { /* the last: wake a settling caller */
        pthread_mutex_lock(&pool->mutex);
        pthread_cond_broadcast(&pool->finished);
        pthread_mutex_unlock(&pool->mutex);
    }
    return 1;
}

static void *pool_worker(void *arg) {
    WorkerArgs *args = arg;
    Pool *pool = args->pool;
    const int slot = args->slot;
    free(args);
    uint32_t seen = 0;
    for (;;) { /* between jobs: background blocks, else a short spin, else sleep */
        for (int i = 0; i < SPIN_ROUNDS && atomic_load(&pool->posted) == seen && !atomic_load(&pool->stop); i++) {
            if (pool_background_block(pool, slot)) i = 0;
            else if (i % 1024 == 1023) sched_yield();
            else CPU_RELAX();
        }
        pthread_mutex_lock(&pool->mutex);
        while (atomic_load(&pool->posted) == seen && !atomic_load(&pool->stop) && !background_left(pool))
            pthread_cond_wait(&pool->wake, &pool->mutex);
        pthread_mutex_unlock(&pool->mutex);
        if (atomic_load(&pool->posted) == seen && !atomic_load(&pool->stop)) continue; /* woken for the background */
        if (atomic_load(&pool->stop)) return NULL;
        seen = atomic_load(&pool->posted);
        pool_work(pool, seen, slot);
    }
}

/* Until ``*done`` reaches n (the blocks still running on workers): a short spin (they take
 * microseconds), then sleep until the last one is done, so that a worker the OS has
 * descheduled costs no CPU here. */
static void pool_wait(Pool *pool, _Atomic int64_t *done, int64_t n) {
    for (int i = 0; i < SPIN_ROUNDS && atomic_load(done) < n; i++)
        if (i % 1024 == 1023) sched_yield(); else CPU_RELAX();
    if (atomic_load(done) < n) {
        pthread_mutex_lock(&pool->mutex);
        while (atomic_load(done) < n) pthread_cond_wait(&pool->finished, &pool->mutex);
        pthread_mutex_unlock(&pool->mutex);
    }
}

static void pool_run(Pool *pool, BlockFn fn, void *ctx, int64_t n_blocks) {
    if (pool->n_workers == 0 || n_blocks < 2 || n_blocks >= CLOSED) { /* CLOSED: the claim counter's 32 bits */
        for (int64_t b = 0; b < n_blocks; b++) fn(ctx, b, 0);
        return;
    }
    const uint32_t gen = atomic_load(&pool->posted) + 1;
    pool->fn = fn;
    pool->ctx = ctx;
    atomic_store(&pool->n_blocks, n_blocks);
    atomic_store(&pool->done, 0);
    atomic_store(&pool->claim, (uint64_t)gen << 32);
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->posted, gen);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    pool_work(pool, gen, 0);
    pool_wait(pool, &pool->done, n_blocks);
    atomic_store(&pool->claim, ((uint64_t)gen << 32) | CLOSED);
}

/* Post a background job of ``n_blocks`` blocks; the last one must be settled. */
static void pool_background(Pool *pool, BlockFn fn, void *ctx, int64_t n_blocks) {
    atomic_store(&pool->bg_n, 0);
    pool->bg_fn = fn;
    pool->bg_ctx = ctx;
    atomic_store(&pool->bg_claim, 0);
    atomic_store(&pool->bg_done, 0);
    pool->bg_by_caller = 0;
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->bg_n, n_blocks);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
}

/* Run the background job's unclaimed blocks here, then wait for those still running. */
static void pool_settle(Pool *pool) {
    while (pool_background_block(pool, 0)) {}
    pool_wait(pool, &pool->bg_done, atomic_load(&pool->bg_n));
}

/* Start ``n_workers`` threads; fewer if the system refuses some (never an error). */
static void pool_start(Pool *pool, int n_workers) {
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    atomic_store(&pool->claim, CLOSED);
    atomic_store(&pool->bg_claim, 0);
    atomic_store(&pool->bg_n, 0);
    atomic_store(&pool->bg_done, 0);
    atomic_store(&pool->posted, 0);
    atomic_store(&pool->stop, 0);
    pool->workers = calloc((size_t)n_workers, sizeof(pthread_t));
    pool->n_workers = 0;
    for (int i = 0; pool->workers && i < n_workers; i++) {
        WorkerArgs *args = malloc(sizeof *args);
        if (!args) break;
        args->pool = pool;
        args->slot = i + 1;
        if (pthread_create(&pool->workers[i], NULL, pool_worker, args) != 0) { free(args); break; }
        pool->n_workers++;
    }
}

static void pool_stop(Pool *pool) {
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 0; i < pool->n_workers; i++) pthread_join(pool->workers[i], NULL);
    free(pool->workers);
    pthread_mutex_destroy(&pool->mutex);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->finished);
}

typedef struct {
    PyObject_HEAD
    int height, width, colour_channels, threads, components, n_layers, width_pad;
    int context, n_features; /* the model's context (1 or 2) and its inputs per pixel */
    int int16; /* the model's arithmetic: 0 float64 on integers (versions 1-4), 1 int16 (version 5) */
    int split; /* the decoder splits layer 0 in an early and a late part: int16, and a worker to run it */
    int worker_share; /* of the early parts' blocks, the share the worker ran (moving average, 1/256) */
    int split_paused; /* steps left in the one pass (the worker was kept off its core) */
    Pool pool;
    int pool_started, n_scratch;
    Layer layers[MAX_LAYERS];
    float *sigmoid; /* the logistic's lookup table: integers in 0..2**CDF_BITS, exact in float32 */
    int64_t *inv_scale, *weight_lut;
    int64_t coefs[LS_TOTAL];
    Py_buffer pixels_view;
    uint8_t *pixels; /* (H, W, 3), owned by Python */
    int16_t *residuals; /* (H, W, 3), q4 units */
    Scratch *scratch;
    /* decoder: the current wavefront step */
    int step_n, step_capacity;
    int *step_rows, *step_cols;
    int64_t *step_out; /* (n, 12, K) model outputs */
    int64_t *step_known; /* (n, 3) LS parts without the current pixel */
    int32_t *step_current, *step_base, *step_res; /* (n, 3) */
    int32_t *step_bucket; /* (n,) */
    Prepared *step_prep; /* (n,) of the channel being decoded */
    /* decoder, int16 models: the early part of a step's first layer (see "inputs in two parts") */
    int64_t next_t; /* the step whose early part is posted or done; -1 for none */
    int next_first, next_n; /* its first row and pixel count */
    int32_t *next_acc; /* (n, width_pad) layer 0's sums of the early inputs, then of all */
    int64_t *next_known; /* (n, 3) LS parts of the early neighbours */
    int32_t *next_activity; /* (n, 3) sums of |LS residual| of the early neighbours */
    int32_t *late_cols; /* (3, LATE_INPUTS, width_pad) layer 0's weight of each late input */
    int64_t ls_late[2][3][3]; /* LS weight of W's (0) and NE3's (1) channel c in channel ch's prediction */
    int step_phase; /* the stage whose tables the step handed out (2 ch buckets, 2 ch + 1 values); -1 no step */
    int init_called, ready; /* __init__ ran (once only), and succeeded */
    int residuals_ready; /* compute_residuals() ran: the encoder's residual plane is complete */
    _Atomic int busy; /* a method is running: a second thread is refused, never let in */
} ImageKernel;

static void *aligned_zeros(size_t bytes) {
    size_t size = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    void *p = aligned_alloc(ALIGN, size ? size : ALIGN);
    if (p) memset(p, 0, size ? size : ALIGN);
    return p;
}

/* Hot functions are compiled for several instruction sets and one is picked at import
 * (isa.h); every result is an exact integer, so the choice never changes a bit. */
static int active_isa = ISA_BASELINE;

/* ---- causal context ------------------------------------------------------------------ */

/* Flat index of the pixel at offset (dr, dc) from (r, c), or -1 for the fill value: rows
 * above the image clamp to row 0, columns into the image; a position not decoded before
 * (r, c) falls back to the W pixel, else the N pixel, else the fill. */
static inline int64_t neighbour_index(const ImageKernel *k, int r, int c, int dr, int dc) {
    int r2 = r + dr, c2 = c + dc;
    if (r2 < 0) r2 = 0;
    if (c2 < 0) c2 = 0;
    if (c2 > k->width - 1) c2 = k->width - 1;
    if ((int64_t)SKEW * r2 + c2 < (int64_t)SKEW * r + c) return (int64_t)r2 * k->width + c2;
    if (c > 0) return (int64_t)r * k->width + c - 1;
    if (r > 0) return (int64_t)(r - 1) * k->width + c;
    return -1;
}

/* Whether every neighbour of (r, c), the wide ones included, lies in the image at its own
 * offset: all of them precede (r, c) in decoding order (SKEW * dr + dc < 0), so
 * neighbour_index() gives (r + dr) * width + c + dc there. */
static inline int inner(const ImageKernel *k, int r, int c) { return r >= 3 && c >= 4 && c + 6 < k->width; }

/* neighbour_index(), without its clamps where (r, c) is ``is_inner``. */
static inline int64_t neighbour_at(const ImageKernel *k, int r, int c, int is_inner, int dr, int dc) {
    return is_inner ? (int64_t)(r + dr) * k->width + c + dc : neighbour_index(k, r, c, dr, dc);
}

/* Pixels (fill 128) and residuals (fill 0) at the 17 neighbours of (r, c). */
static void gather(const ImageKernel *k, int r, int c, int32_t nb[N_NB][3], int32_t res[N_NB][3]) {
    const int is_inner = inner(k, r, c);
    for (int j = 0; j < N_NB; j++) {
        int64_t idx = neighbour_at(k, r, c, is_inner, NB_DR[j], NB_DC[j]);
        for (int ch = 0; ch < 3; ch++) {
            nb[j][ch] = idx < 0 ? 128 : k->pixels[idx * 3 + ch];
            if (res) res[j][ch] = idx < 0 ? 0 : k->residuals[idx * 3 + ch];
        }
    }
}

/* LS design row of channel ch (LS_SIZES[ch] values); ``current`` holds the pixel's
 * earlier channels (zeros give the part that does not use them). */
static void ls_row(int32_t nb[N_NB][3], int ch, const int32_t current[3], int64_t row[LS_MAX_SIZE]) {
    for (int j = 0; j < N_NB; j++) row[j] = nb[j][ch];
    row[N_NB] = LS_BIAS_INPUT;
    if (ch == 1) {
        row[18] = current[0];
        row[19] = nb[W_][0]; row[20] = nb[N_][0]; row[21] = nb[NW_][0]; row[22] = nb[NE_][0];
    } else if (ch == 2) {
        row[18] = current[0]; row[19] = current[1];
        row[20] = nb[W_][0]; row[21] = nb[N_][0]; row[22] = nb[W_][1]; row[23] = nb[N_][1];
    }
}

/* Parts of the three LS predictions (units 2**-12) that do not use the current pixel. */
static void ls_known(const ImageKernel *k, int32_t nb[N_NB][3], int64_t known[3]) {
    static const int32_t zeros[3] = {0, 0, 0};
    int64_t row[LS_MAX_SIZE];
    for (int ch = 0; ch < 3; ch++) {
        ls_row(nb, ch, zeros, row);
        const int64_t *coef = k->coefs + LS_OFFSETS[ch];
        int64_t s = 0;
        for (int i = 0; i < LS_SIZES[ch]; i++) s += row[i] * coef[i];
        known[ch] = s;
    }
}

/* LS prediction of channel ch in q4 units given the pixel's earlier channels. */
static inline int32_t ls_complete(const ImageKernel *k, int ch, int64_t known, const int32_t current[3]) {
    int64_t total = known;
    if (ch >= 1) total += k->coefs[LS_OFFSETS[ch] + CUR_R] * current[0];
    if (ch == 2) total += k->coefs[LS_OFFSETS[ch] + CUR_G] * current[1];
    return (int32_t)clamp64(round_shift(total, LS_FRAC - 4), 0, 255 * Q4);
}

static inline int32_t med(int32_t w, int32_t n, int32_t nw) {
    int32_t lo = w < n ? w : n, hi = w < n ? n : w;
    if (nw >= hi) return lo;
    if (nw <= lo) return hi;
    return w + n - nw;
}

/* Where each kind of model input starts (units.FEATURE_LAYOUT, then WIDE_LAYOUT). */
#define F_NB 0          /* neighbours minus MED, 17 per channel */
#define F_MED 51        /* MED - 128 */
#define F_PRIOR 54      /* prior LS prediction minus 16 MED (q4) */
#define F_COEFS 57      /* LS coefficients c_GR, c_BR, c_BG */
#define F_RES 60        /* LS residuals at W, N, NW, NE, 4 per channel */
#define F_FLAGS 72      /* first row, first column, last column */
#define F_WIDE 75       /* wide neighbours minus MED, 8 per channel */
#define F_WIDE_RES 99   /* LS residuals at WIDE_RES, 4 per channel */
#define F_ACTIVITY 111  /* sum of |LS residual| over the 17 neighbours */
static const int RES_AT[4] = {W_, N_, NW_, NE_};

/* The prior LS predictions (q4) of the three channels from their ``known`` parts: G and B
 * take the earlier channels' prior predictions for their current values. */
static void priors(const ImageKernel *k, const int64_t known[3], int64_t prior[3]) {
    for (int ch = 0; ch < 3; ch++) {
        int64_t total = known[ch];
        if (ch >= 1) total += round_shift(k->coefs[LS_OFFSETS[ch] + CUR_R] * prior[0], 4);
        if (ch == 2) total += round_shift(k->coefs[LS_OFFSETS[ch] + CUR_G] * prior[1], 4);
        prior[ch] = clamp64(round_shift(total, LS_FRAC - 4), 0, 255 * Q4);
    }
}

/* The fixed-point (2**-8) model inputs f (k->n_features of them: 75 for context 1, 114 for
 * context 2) of pixel (r, c) from its neighbours' values nb and LS residuals res (as gather()
 * gives them), and its MED m and prior LS prediction (q4) per channel; the sums of |res| per
 * channel into activity (context 2). */
static inline __attribute__((always_inline)) void fill_inputs(const ImageKernel *k, int r, int c, int32_t nb[N_NB][3],
                                                             int32_t res[N_NB][3], const int32_t m[3],
                                                             const int64_t prior[3], int32_t *f, int64_t activity[3]) {
    for (int ch = 0; ch < 3; ch++) {
        for (int j = 0; j < N_NB; j++) f[F_NB + ch * N_NB + j] = (nb[j][ch] - m[ch]) * 8;
        f[F_MED + ch] = (m[ch] - 128) * 4;
        f[F_PRIOR + ch] = (int32_t)(prior[ch] - Q4 * m[ch]) * 2;
        for (int q = 0; q < 4; q++) f[F_RES + ch * 4 + q] = res[RES_AT[q]][ch] * 2;
    }
    f[F_COEFS] = (int32_t)round_shift(k->coefs[LS_OFFSETS[1] + CUR_R], 4);
    f[F_COEFS + 1] = (int32_t)round_shift(k->coefs[LS_OFFSETS[2] + CUR_R], 4);
    f[F_COEFS + 2] = (int32_t)round_shift(k->coefs[LS_OFFSETS[2] + CUR_G], 4);
    f[F_FLAGS] = (r == 0) * 256;
    f[F_FLAGS + 1] = (c == 0) * 256;
    f[F_FLAGS + 2] = (c == k->width - 1) * 256;
    if (k->context < 2) return;
    const int is_inner = inner(k, r, c);
    for (int j = 0; j < N_WIDE; j++) {
        const int64_t idx = neighbour_at(k, r, c, is_inner, WIDE_DR[j], WIDE_DC[j]);
        for (int ch = 0; ch < 3; ch++) f[F_WIDE + ch * N_WIDE + j] = ((idx < 0 ? 128 : k->pixels[idx * 3 + ch]) - m[ch]) * 8;
    }
    for (int ch = 0; ch < 3; ch++) {
        activity[ch] = 0;
        for (int j = 0; j < N_NB; j++) activity[ch] += res[j][ch] < 0 ? -res[j][ch] : res[j][ch];
        for (int q = 0; q < 4; q++) f[F_WIDE_RES + ch * 4 + q] = res[WIDE_RES[q]][ch] * 2;
        f[F_ACTIVITY + ch] = (int32_t)round_shift(activity[ch], 2);
    }
}

/* The model inputs of pixel (r, c) (fill_inputs), and its ``known`` LS parts. */
static void features(const ImageKernel *k, int r, int c, int32_t f[MAX_FEATURES], int64_t known[3]) {
    int32_t nb[N_NB][3], res[N_NB][3], m[3];
    int64_t prior[3], activity[3];
    gather(k, r, c, nb, res);
    ls_known(k, nb, known);
    priors(k, known, prior);
    for (int ch = 0; ch < 3; ch++) m[ch] = med(nb[W_][ch], nb[N_][ch], nb[NW_][ch]);
    fill_inputs(k, r, c, nb, res, m, prior, f, activity);
}

/* ---- integer MLP ----------------------------------------------------------------------- */

/* y[p, :] = x[p, :] @ w + b for TILE_ROWS-padded rows; exact on integer values, so the
 * clones for wider vector units give the same results as the baseline. */
static inline __attribute__((always_inline)) void dense_body(const double *restrict x, int ldx, int rows, const Layer *layer,
                                                            double *restrict y, int ldy) {
    const int n_in = layer->n_in, n_out = layer->n_out_pad;
    for (int p0 = 0; p0 < rows; p0 += TILE_ROWS) {
        for (int o0 = 0; o0 < n_out; o0 += TILE_COLS) {
            v4d acc[TILE_ROWS][2];
            const v4d b0 = *(const v4d *)(layer->b + o0), b1 = *(const v4d *)(layer->b + o0 + 4);
            for (int p = 0; p < TILE_ROWS; p++) { acc[p][0] = b0; acc[p][1] = b1; }
            const double *xp = x + (size_t)p0 * ldx;
            const double *wp = layer->w + o0;
            for (int i = 0; i < n_in; i++) {
                const v4d w0 = *(const v4d *)(wp + (size_t)i * n_out);
                const v4d w1 = *(const v4d *)(wp + (size_t)i * n_out + 4);
                for (int p = 0; p < TILE_ROWS; p++) {
                    const double xi = xp[(size_t)p * ldx + i];
                    acc[p][0] += xi * w0;
                    acc[p][1] += xi * w1;
                }
            }
            for (int p = 0; p < TILE_ROWS; p++) {
                *(v4d *)(y + (size_t)(p0 + p) * ldy + o0) = acc[p][0];
                *(v4d *)(y + (size_t)(p0 + p) * ldy + o0 + 4) = acc[p][1];
            }
        }
    }
}

ISA_CLONES(void, dense, (const double *restrict x, int ldx, int rows, const Layer *layer, double *restrict y, int ldy),
           (x, ldx, rows, layer, y, ldy))

/* Model outputs (rows, 12*K) int64 of the features in ``s->a`` (rows x width_pad). */
static void mlp(const ImageKernel *k, Scratch *s, int rows, int64_t *out) {
    const int padded = pad_to(rows, TILE_ROWS);
    double *x = s->a, *y = s->b;
    for (int i = rows * k->width_pad; i < padded * k->width_pad; i++) x[i] = 0.0;
    for (int l = 0; l < k->n_layers; l++) {
        const Layer *layer = &k->layers[l];
        dense_paths[active_isa](x, k->width_pad, padded, layer, y, k->width_pad);
        /* y holds exact integers below 2**53: shifting their int64 values floors exactly */
        if (l < k->n_layers - 1) {
            for (int p = 0; p < rows; p++) {
                double *yp = y + (size_t)p * k->width_pad;
                for (int o = 0; o < layer->n_out; o++) yp[o] = (double)clamp64((int64_t)yp[o] >> layer->frac, 0, ACT_MAX);
            }
            double *t = x; x = y; y = t;
        } else {
            for (int p = 0; p < rows; p++)
                for (int o = 0; o < layer->n_out; o++)
                    out[(size_t)p * layer->n_out + o] =
                        clamp64(round_shift((int64_t)y[(size_t)p * k->width_pad + o], layer->frac + ACT_FRAC), -OUT_LIMIT, OUT_LIMIT);
        }
    }
}

static int use_scalar16 = 0; /* NEURALZIP_ISA=scalar: the plain C loops of arith.h (tests) */

/* Layer 0's int32 sums (rows x width_pad, into s->acc) of the int16 inputs in s->a16's first rows. */
static void first_layer16(const ImageKernel *k, Scratch *s, int rows) {
    const int padded = pad_to(rows, TILE16);
    memset(s->a16 + (size_t)rows * k->width_pad, 0, (size_t)(padded - rows) * k->width_pad * sizeof(int16_t));
    (use_scalar16 ? dense16_scalar : dense16_paths[active_isa])(s->a16, k->width_pad, padded, &k->layers[0], s->acc,
                                                                k->width_pad);
}

/* Model outputs (rows, 12*K) int64 from layer 0's sums ``sums`` (rows x width_pad): hidden
 * units clamp(y >> shift, 0, ACT_MAX16), outputs round(y / 2**(shift + 8)). */
static void mlp16_rest(const ImageKernel *k, Scratch *s, int rows, const int32_t *sums, int64_t *out) {
    const int padded = pad_to(rows, TILE16), wp = k->width_pad;
    const Dense16 dense16 = use_scalar16 ? dense16_scalar : dense16_paths[active_isa];
    void (*const activate16)(const int32_t *, const int32_t *, int, int16_t *) = activate16_paths[active_isa];
    void (*const output16)(const int32_t *, const int32_t *, int, int64_t *) = output16_paths[active_isa];
    for (int l = 0;; l++) {
        const Layer *layer = &k->layers[l];
        if (l == k->n_layers - 1) {
            for (int p = 0; p < rows; p++) output16(sums + (size_t)p * wp, layer->shift, layer->n_out, out + (size_t)p * layer->n_out);
            return;
        }
        int16_t *x = l % 2 == 0 ? s->b16 : s->a16; /* the next layer's inputs */
        for (int p = 0; p < rows; p++) {
            int16_t *xp = x + (size_t)p * wp;
            activate16(sums + (size_t)p * wp, layer->shift, layer->n_out, xp);
            for (int o = layer->n_out; o < wp; o++) xp[o] = 0;
        }
        memset(x + (size_t)rows * wp, 0, (size_t)(padded - rows) * wp * sizeof(int16_t));
        dense16(x, wp, padded, &k->layers[l + 1], s->acc, wp);
        sums = s->acc;
    }
}

/* Model outputs (rows, 12*K) int64 of the int16 features in ``s->a16``. */
static void mlp16(const ImageKernel *k, Scratch *s, int rows, int64_t *out) {
    first_layer16(k, s, rows);
    mlp16_rest(k, s, rows, s->acc, out);
}

/* ---- mixture and frequency tables -------------------------------------------------------- */

/* Mixture of channel ch from the model outputs ``out`` (12*K) of one pixel, its LS base
 * (q4) and the pixel's residuals of earlier channels (q4). */
static void prepare(const ImageKernel *k, const int64_t *out, int ch, int64_t base, const int32_t res[3], Prepared *p) {
    const int K = k->components;
    const int64_t *logit = out + (LOGIT_ROW + ch) * K, *offset = out + (MEAN_ROW + ch) * K;
    const int64_t *logscale = out + (LOGSCALE_ROW + ch) * K, *coupling = out + COUPLING_ROW * K;
    int64_t top = logit[0];
    for (int i = 1; i < K; i++) top = logit[i] > top ? logit[i] : top;
    p->n = 0;
    p->weights = 0;
    for (int i = 0; i < K; i++) {
        int64_t d = top - logit[i];
        const int64_t weight = k->weight_lut[d < LOGIT_RANGE ? d : LOGIT_RANGE];
        if (weight == 0) continue;
        int64_t mean = base + offset[i], coupled = 0;
        for (int r = 0; r < N_COUPLINGS; r++)
            if (COUPLING_PAIRS[r][0] == ch) coupled += coupling[r * K + i] * res[COUPLING_PAIRS[r][1]];
        mean += round_shift(coupled, COUPLING_SHIFT); /* 0 where no row couples ch (channel 0) */
        p->mean[p->n] = clamp64(mean, -OUT_LIMIT, OUT_LIMIT);
        p->inv[p->n] = k->inv_scale[clamp64(logscale[i], LOGSCALE_MIN, LOGSCALE_MAX) - LOGSCALE_MIN];
        p->weight[p->n++] = weight;
        p->weights += weight;
    }
}

static inline void run_cdf(const ImageKernel *k, const Prepared *p, int j0, int step, double *out) {
    (use_scalar16 ? run_cdf_scalar : run_cdf_paths[active_isa])(k->sigmoid, p, j0, step, out);
}

/* Stage 1: frequencies of the 16 buckets (values 16b..16b+15); keeps the bucket edges'
 * CDF for stage 2. */
static void bucket_table(const ImageKernel *k, Prepared *p, double *table) {
    double *c = p->bucket_cdf;
    run_cdf(k, p, STAGE, STAGE, c + 1); /* C(16), ..., C(240), and scratch at c[STAGE] */
    c[0] = (double)p->weights * k->sigmoid[0]; /* the tails: every component at its table's ends */
    c[STAGE] = (double)p->weights * ((double)k->sigmoid[TOP] + LEVELS);
    for (int s = 0; s < STAGE; s++) table[s] = c[s + 1] - c[s];
}

/* Stage 2: frequencies of the 16 values of ``bucket``, after bucket_table. */
static void value_table(const ImageKernel *k, const Prepared *p, int bucket, double *table) {
    double c[STAGE + 1];
    run_cdf(k, p, STAGE * bucket + 1, 1, c + 1);
    c[0] = p->bucket_cdf[bucket];
    c[STAGE] = p->bucket_cdf[bucket + 1];
    for (int s = 0; s < STAGE; s++) table[s] = c[s + 1] - c[s];
}

/* ---- object lifetime ----------------------------------------------------------------------- */

static void kernel_dealloc(ImageKernel *k) {
    if (k->pool_started) {
        pool_settle(&k->pool);
        pool_stop(&k->pool);
    }
    free(k->next_acc); free(k->next_known); free(k->next_activity); free(k->late_cols);
    for (int l = 0; l < k->n_layers; l++) {
        free(k->layers[l].w); free(k->layers[l].b);
        free(k->layers[l].w16); free(k->layers[l].b32); free(k->layers[l].shift);
    }
    free(k->sigmoid); free(k->inv_scale); free(k->weight_lut);
    free(k->residuals);
    if (k->scratch)
        for (int t = 0; t < k->n_scratch; t++) {
            free(k->scratch[t].a); free(k->scratch[t].b); free(k->scratch[t].out);
            free(k->scratch[t].a16); free(k->scratch[t].b16); free(k->scratch[t].acc);
        }
    free(k->scratch);
    free(k->step_rows); free(k->step_cols); free(k->step_out); free(k->step_known);
    free(k->step_current); free(k->step_base); free(k->step_res); free(k->step_bucket); free(k->step_prep);
    if (k->pixels_view.obj) PyBuffer_Release(&k->pixels_view);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static int64_t *copy_int64(PyObject *obj, Py_ssize_t count, const char *what) {
    Py_buffer v;
    if (get_buffer(obj, &v, 'q', count, 0, what) < 0) return NULL;
    int64_t *out = aligned_zeros((size_t)count * 8);
    if (out) memcpy(out, v.buf, (size_t)count * 8);
    else PyErr_NoMemory();
    PyBuffer_Release(&v);
    return out;
}

/* The int16 MLP (format version 5): weights int16 (n_in, n_out), biases int32 (n_out,),
 * ``shifts`` a list of int32 (n_out,) per layer; the bound above checked for every output. */
static int init_model16(ImageKernel *k, PyObject *weights, PyObject *biases, PyObject *shifts) {
    int n_in = k->n_features, widest = pad_to(k->n_features, 2);
    const int n_layers = (int)PyList_GET_SIZE(weights);
    for (int l = 0; l < n_layers; l++) {
        Layer *layer = &k->layers[l];
        Py_buffer wv, bv, sv;
        if (get_buffer(PyList_GET_ITEM(weights, l), &wv, 'h', -1, 0, "weights") < 0) return -1;
        if (wv.ndim != 2 || wv.shape[0] != n_in) {
            PyBuffer_Release(&wv);
            PyErr_Format(PyExc_ValueError, "layer %d: weights must be int16 (%d, n_out)", l, n_in);
            return -1;
        }
        const int n_out = (int)wv.shape[1];
        if (get_buffer(PyList_GET_ITEM(biases, l), &bv, 'i', n_out, 0, "biases") < 0) { PyBuffer_Release(&wv); return -1; }
        if (get_buffer(PyList_GET_ITEM(shifts, l), &sv, 'i', n_out, 0, "shifts") < 0) {
            PyBuffer_Release(&wv); PyBuffer_Release(&bv);
            return -1;
        }
        layer->n_in = n_in;
        layer->n_out = n_out;
        layer->n_out_pad = pad_to(n_out, 16);
        layer->n_pairs = (n_in + 1) / 2;
        layer->w16 = aligned_zeros((size_t)layer->n_pairs * layer->n_out_pad * 2 * sizeof(int16_t));
        layer->b32 = aligned_zeros((size_t)layer->n_out_pad * sizeof(int32_t));
        layer->shift = aligned_zeros((size_t)n_out * sizeof(int32_t));
        k->n_layers = l + 1; /* so that dealloc frees what is allocated */
        int bad = !layer->w16 || !layer->b32 || !layer->shift;
        if (!bad) {
            const int16_t *w = wv.buf;
            for (int i = 0; i < n_in; i++)
                for (int o = 0; o < n_out; o++) layer->w16[((size_t)(i / 2) * layer->n_out_pad + o) * 2 + i % 2] = w[(size_t)i * n_out + o];
            memcpy(layer->b32, bv.buf, (size_t)n_out * sizeof(int32_t));
            memcpy(layer->shift, sv.buf, (size_t)n_out * sizeof(int32_t));
        }
        PyBuffer_Release(&wv); PyBuffer_Release(&bv); PyBuffer_Release(&sv);
        if (bad) { PyErr_NoMemory(); return -1; }
        for (int o = 0; o < n_out; o++) {
            int64_t bound = layer->b32[o] < 0 ? -(int64_t)layer->b32[o] : layer->b32[o];
            for (int i = 0; i < n_in; i++) {
                const int16_t w = layer->w16[((size_t)(i / 2) * layer->n_out_pad + o) * 2 + i % 2];
                if (w == INT16_MIN) { PyErr_SetString(PyExc_ValueError, "int16 weights must be in -32767..32767"); return -1; }
                bound += (int64_t)(w < 0 ? -w : w) * 32767;
            }
            if (bound > INT32_MAX) { PyErr_SetString(PyExc_ValueError, "int16 model could overflow its int32 sums"); return -1; }
            if (layer->shift[o] < 0 || layer->shift[o] > 30) { PyErr_SetString(PyExc_ValueError, "shifts must be in 0..30"); return -1; }
        }
        n_in = n_out;
        if (layer->n_out_pad > widest) widest = layer->n_out_pad;
    }
    k->width_pad = widest;
    return 0;
}

/* The integer MLP (weights float64 (n_in, n_out), biases, fracs) and lookup tables. */
static int init_model(ImageKernel *k, PyObject *weights, PyObject *biases, PyObject *fracs, int components,
                      PyObject *sigmoid, PyObject *inv_scale, PyObject *weight) {
    if (!PyList_Check(weights) || !PyList_Check(biases) || !PyList_Check(fracs) ||
        PyList_GET_SIZE(weights) != PyList_GET_SIZE(biases) || PyList_GET_SIZE(weights) != PyList_GET_SIZE(fracs) ||
        PyList_GET_SIZE(weights) < 1 || PyList_GET_SIZE(weights) > MAX_LAYERS) {
        PyErr_SetString(PyExc_ValueError, "weights, biases and fracs must be lists of equal length 1..8");
        return -1;
    }
    if (components < 1 || components > MAX_K) {
        PyErr_SetString(PyExc_ValueError, "bad number of mixture components");
        return -1;
    }
    k->components = components;
    const int n_layers = (int)PyList_GET_SIZE(weights);
    int n_in = k->n_features, widest = pad_to(k->n_features, 4);
    if (k->int16) {
        if (init_model16(k, weights, biases, fracs) < 0) return -1;
        n_in = k->layers[n_layers - 1].n_out;
        widest = k->width_pad;
    }
    for (int l = 0; l < n_layers && !k->int16; l++) { /* float64: (n_in, n_out) weights padded to TILE_COLS outputs */
        Layer *layer = &k->layers[l];
        Py_buffer wv, bv;
        if (get_buffer(PyList_GET_ITEM(weights, l), &wv, 'd', -1, 0, "weights") < 0) return -1;
        if (wv.ndim != 2 || wv.shape[0] != n_in) {
            PyBuffer_Release(&wv);
            PyErr_Format(PyExc_ValueError, "layer %d: weights must be float64 (%d, n_out)", l, n_in);
            return -1;
        }
        const int n_out = (int)wv.shape[1];
        if (get_buffer(PyList_GET_ITEM(biases, l), &bv, 'd', n_out, 0, "biases") < 0) { PyBuffer_Release(&wv); return -1; }
        layer->n_in = n_in;
        layer->n_out = n_out;
        layer->n_out_pad = pad_to(n_out, TILE_COLS);
        layer->frac = (int)PyLong_AsLong(PyList_GET_ITEM(fracs, l));
        layer->w = aligned_zeros((size_t)n_in * layer->n_out_pad * 8);
        layer->b = aligned_zeros((size_t)layer->n_out_pad * 8);
        k->n_layers = l + 1; /* so that dealloc frees what is allocated */
        if (!layer->w || !layer->b) { PyBuffer_Release(&wv); PyBuffer_Release(&bv); PyErr_NoMemory(); return -1; }
        for (int i = 0; i < n_in; i++) memcpy(layer->w + (size_t)i * layer->n_out_pad, (double *)wv.buf + (size_t)i * n_out, (size_t)n_out * 8);
        memcpy(layer->b, bv.buf, (size_t)n_out * 8);
        PyBuffer_Release(&wv);
        PyBuffer_Release(&bv);
        if (PyErr_Occurred()) return -1;
        if (layer->frac < 0 || layer->frac > 40) { PyErr_SetString(PyExc_ValueError, "bad layer frac"); return -1; }
        n_in = n_out;
        if (layer->n_out_pad > widest) widest = layer->n_out_pad;
    }
    /* every partial sum of every layer is an integer below 2**53 (so float64 is exact and the
     * casts to int64 are defined): sum |w| * (largest input) + |b|, inputs below ACT_MAX */
    for (int l = 0; l < n_layers && !k->int16; l++) {
        const Layer *layer = &k->layers[l];
        for (int o = 0; o < layer->n_out; o++) {
            double bound = fabs(layer->b[o]);
            for (int i = 0; i < layer->n_in; i++) {
                const double w = layer->w[(size_t)i * layer->n_out_pad + o];
                if (w != floor(w)) { PyErr_SetString(PyExc_ValueError, "integer model weights must be integers"); return -1; }
                bound += fabs(w) * ACT_MAX;
            }
            if (!(bound < EXACT_LIMIT) || layer->b[o] != floor(layer->b[o])) {
                PyErr_SetString(PyExc_ValueError, "integer model could overflow exact float64 accumulation");
                return -1;
            }
        }
    }
    if (n_in != OUT_ROWS * components) {
        PyErr_Format(PyExc_ValueError, "last layer has %d outputs, expected 12 * %d", n_in, components);
        return -1;
    }
    k->width_pad = widest;
    int64_t *sig = copy_int64(sigmoid, TOP + 1, "sigmoid table");
    if (!sig) return -1;
    /* the tables' contract (tables.py): a monotone CDF in 0..2**CDF_BITS, weights in
     * 0..2**WEIGHT_BITS with the top one positive, inverse scales in 1..2**INV_MAX_BITS */
    for (int t = 0; t <= TOP; t++)
        if (sig[t] < 0 || sig[t] > (1 << CDF_BITS) || (t && sig[t] < sig[t - 1])) {
            free(sig);
            PyErr_SetString(PyExc_ValueError, "sigmoid table: not a monotone CDF in 0..2**20");
            return -1;
        }
    k->sigmoid = malloc((TOP + 1) * sizeof(float));
    if (k->sigmoid)
        for (int t = 0; t <= TOP; t++) k->sigmoid[t] = (float)sig[t];
    free(sig);
    if (!k->sigmoid) { PyErr_NoMemory(); return -1; }
    if (!(k->inv_scale = copy_int64(inv_scale, LOGSCALE_MAX - LOGSCALE_MIN + 1, "inverse scale table")) ||
        !(k->weight_lut = copy_int64(weight, LOGIT_RANGE + 1, "weight table")))
        return -1;
    for (int i = 0; i <= LOGSCALE_MAX - LOGSCALE_MIN; i++)
        if (k->inv_scale[i] < 1 || k->inv_scale[i] > ((int64_t)1 << INV_MAX_BITS)) {
            PyErr_SetString(PyExc_ValueError, "inverse scale table: values must be in 1..2**26");
            return -1;
        }
    for (int i = 0; i <= LOGIT_RANGE; i++)
        if (k->weight_lut[i] < 0 || k->weight_lut[i] > (1 << WEIGHT_BITS) || (i == 0 && k->weight_lut[0] < 1)) {
            PyErr_SetString(PyExc_ValueError, "weight table: values must be in 0..2**12, the first positive");
            return -1;
        }
    return 0;
}

static int init_late(ImageKernel *k); /* the decoder's late weights (below, with their use) */

static int kernel_init(ImageKernel *k, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"weights", "biases", "fracs", "components", "sigmoid", "inv_scale", "weight",
                             "coefs", "pixels", "colour_channels", "threads", "context", "int16", NULL};
    PyObject *weights, *biases, *fracs, *sigmoid, *inv_scale, *weight, *coefs, *pixels;
    int components, colour_channels, threads, context = 1, int16 = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOiOOOOOii|ip", kwlist, &weights, &biases, &fracs, &components,
                                     &sigmoid, &inv_scale, &weight, &coefs, &pixels, &colour_channels, &threads,
                                     &context, &int16))
        return -1;
    if (k->init_called) { PyErr_SetString(PyExc_RuntimeError, "ImageKernel.__init__ runs once: make a new kernel"); return -1; }
    k->init_called = 1;
    k->step_phase = -1;
    if (colour_channels < 1 || colour_channels > 3 || threads < 1 || context < 1 || context > 2) {
        PyErr_SetString(PyExc_ValueError, "bad colour_channels, threads or context");
        return -1;
    }
    k->context = context;
    k->int16 = int16;
    k->n_features = context == 1 ? N_FEATURES : MAX_FEATURES;
    k->colour_channels = colour_channels;
    k->threads = threads;
    if (weights == Py_None) { /* context only (LS fit, residuals, no model) */
        k->components = 1;
        k->width_pad = pad_to(k->n_features, 4);
    } else if (init_model(k, weights, biases, fracs, components, sigmoid, inv_scale, weight) < 0) {
        return -1;
    }
    int64_t *c = copy_int64(coefs, LS_TOTAL, "LS coefficients");
    if (!c) return -1;
    memcpy(k->coefs, c, sizeof k->coefs);
    free(c);
    for (int i = 0; i < LS_TOTAL; i++)
        if (k->coefs[i] < -32768 || k->coefs[i] > 32767) { /* residual planes are int16 */
            PyErr_SetString(PyExc_ValueError, "LS coefficients must be in -32768..32767");
            return -1;
        }
    /* pixels: writable uint8 (H, W, 3) */
    if (PyObject_GetBuffer(pixels, &k->pixels_view, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_STRIDES | PyBUF_FORMAT) < 0) return -1;
    if (k->pixels_view.itemsize != 1 || !k->pixels_view.format || strcmp(k->pixels_view.format, "B") != 0 || k->pixels_view.ndim != 3 || k->pixels_view.shape[2] != 3 ||
        k->pixels_view.shape[0] < 1 || k->pixels_view.shape[1] < 1 ||
        k->pixels_view.shape[0] > INT32_MAX / SKEW / 2 || k->pixels_view.shape[1] > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "pixels must be a writable C-contiguous uint8 (H, W, 3) array");
        return -1;
    }
    k->height = (int)k->pixels_view.shape[0];
    k->width = (int)k->pixels_view.shape[1];
    k->pixels = k->pixels_view.buf;
    const size_t n_pixels = (size_t)k->height * k->width;
    k->residuals = calloc(n_pixels * 3, sizeof(int16_t));
    pool_start(&k->pool, k->threads - 1);
    k->pool_started = 1;
    k->threads = k->pool.n_workers + 1; /* one scratch per pool slot */
    k->scratch = calloc((size_t)k->threads, sizeof(Scratch));
    if (!k->residuals || !k->scratch) { PyErr_NoMemory(); return -1; }
    for (int t = 0; t < k->threads; t++) {
        k->scratch[t].a = aligned_zeros((size_t)pad_to(BLOCK, TILE_ROWS) * k->width_pad * 8);
        k->scratch[t].b = aligned_zeros((size_t)pad_to(BLOCK, TILE_ROWS) * k->width_pad * 8);
        k->scratch[t].out = malloc((size_t)BLOCK * OUT_ROWS * k->components * sizeof(int64_t));
        const size_t rows16 = (size_t)pad_to(BLOCK, TILE16) * k->width_pad;
        k->scratch[t].a16 = aligned_zeros(rows16 * sizeof(int16_t));
        k->scratch[t].b16 = aligned_zeros(rows16 * sizeof(int16_t));
        k->scratch[t].acc = aligned_zeros(rows16 * sizeof(int32_t));
        k->n_scratch = t + 1;
        if (!k->scratch[t].a || !k->scratch[t].b || !k->scratch[t].out || !k->scratch[t].a16 || !k->scratch[t].b16 ||
            !k->scratch[t].acc) {
            PyErr_NoMemory();
            return -1;
        }
    }
    /* a wavefront step holds at most one pixel per row and ceil(W / SKEW) in all */
    int cap = (k->width + SKEW - 1) / SKEW;
    k->step_capacity = cap < k->height ? cap : k->height;
    const size_t n = (size_t)k->step_capacity;
    k->step_rows = malloc(n * sizeof(int));
    k->step_cols = malloc(n * sizeof(int));
    k->step_out = calloc(n * OUT_ROWS * k->components, sizeof(int64_t));
    k->step_known = calloc(n * 3, sizeof(int64_t));
    k->step_current = calloc(n * 3, sizeof(int32_t));
    k->step_base = calloc(n * 3, sizeof(int32_t));
    k->step_res = calloc(n * 3, sizeof(int32_t));
    k->step_bucket = calloc(n, sizeof(int32_t));
    k->step_prep = calloc(n, sizeof(Prepared));
    k->next_t = -1;
    k->split = k->int16 && k->n_layers && k->pool.n_workers > 0;
    k->worker_share = 256;
    if (k->split) {
        k->next_acc = aligned_zeros(n * k->width_pad * sizeof(int32_t));
        k->next_known = calloc(n * 3, sizeof(int64_t));
        k->next_activity = calloc(n * 3, sizeof(int32_t));
        if (!k->next_acc || !k->next_known || !k->next_activity || init_late(k) < 0) {
            if (!PyErr_Occurred()) PyErr_NoMemory();
            return -1;
        }
    }
    if (!k->step_rows || !k->step_cols || !k->step_out || !k->step_known || !k->step_current || !k->step_base ||
        !k->step_res || !k->step_bucket || !k->step_prep) {
        PyErr_NoMemory();
        return -1;
    }
    k->ready = 1;
    return 0;
}

/* ---- one caller at a time ------------------------------------------------------------------------
 * Methods release the GIL while the pool runs; a second Python thread calling into the same
 * kernel then is refused (RuntimeError) instead of sharing its pool and scratch memory. */

static int enter_step(ImageKernel *k) {
    if (!k->ready) { PyErr_SetString(PyExc_RuntimeError, "ImageKernel is not initialised"); return -1; }
    if (atomic_exchange(&k->busy, 1)) {
        PyErr_SetString(PyExc_RuntimeError, "ImageKernel is in use by another thread (one kernel serves one thread at a time)");
        return -1;
    }
    return 0;
}

/* enter_step(), and the background job (the next step's early part) done: every method but
 * advance, which touches only the current step, enters so. */
static int enter(ImageKernel *k) {
    if (enter_step(k) < 0) return -1;
    Py_BEGIN_ALLOW_THREADS
    pool_settle(&k->pool);
    Py_END_ALLOW_THREADS
    return 0;
}

static inline void leave(ImageKernel *k) { atomic_store(&k->busy, 0); }

/* ---- wavefront ------------------------------------------------------------------------------ */

static inline int64_t num_steps(const ImageKernel *k) { return k->width + (int64_t)SKEW * (k->height - 1); }

/* First row and pixel count of wavefront step t (pixels r = first.. with c = t - SKEW*r). */
static inline int step_span(const ImageKernel *k, int64_t t, int *first) {
    int64_t lo = t - k->width + 1 <= 0 ? 0 : (t - k->width + SKEW) / SKEW;
    int64_t hi = t / SKEW < k->height - 1 ? t / SKEW : k->height - 1;
    *first = (int)lo;
    return hi >= lo ? (int)(hi - lo + 1) : 0;
}

/* ---- encoder-side passes over the whole image ----------------------------------------------- */

#define PASS_BLOCK 4096 /* pixels per block of a whole-image pass */

typedef struct { ImageKernel *k; int16_t *features, *bases; double *sums; } PassJob;

static inline int64_t pass_blocks(const ImageKernel *k) { return ((int64_t)k->height * k->width + PASS_BLOCK - 1) / PASS_BLOCK; }

static void residuals_block(void *ctx, int64_t block, int slot) {
    const ImageKernel *k = ((PassJob *)ctx)->k;
    const int64_t end = (int64_t)k->height * k->width;
    (void)slot;
    for (int64_t p = block * PASS_BLOCK; p < end && p < (block + 1) * PASS_BLOCK; p++) {
        const int r = (int)(p / k->width), c = (int)(p % k->width);
        int32_t nb[N_NB][3], cur[3];
        int64_t known[3];
        gather(k, r, c, nb, NULL);
        ls_known(k, nb, known);
        for (int ch = 0; ch < 3; ch++) cur[ch] = k->pixels[p * 3 + ch];
        for (int ch = 0; ch < 3; ch++) k->residuals[p * 3 + ch] = (int16_t)(Q4 * cur[ch] - ls_complete(k, ch, known[ch], cur));
    }
}

static PyObject *kernel_compute_residuals(ImageKernel *k, PyObject *Py_UNUSED(noargs)) {
    if (enter(k) < 0) return NULL;
    PassJob job = {k, NULL, NULL, NULL};
    Py_BEGIN_ALLOW_THREADS
    pool_run(&k->pool, residuals_block, &job, pass_blocks(k));
    Py_END_ALLOW_THREADS
    k->residuals_ready = 1;
    k->next_t = -1; /* the planes changed under any early part */
    leave(k);
    Py_RETURN_NONE;
}

#define NORMAL_TOTAL (18 * 19 + 23 * 24 + 24 * 25) /* per channel: gram (n x n), then rhs (n) */

static inline __attribute__((always_inline)) void normal_block_body(void *ctx, int64_t block, int slot) {
    const PassJob *job = ctx;
    const ImageKernel *k = job->k;
    const int64_t end = (int64_t)k->height * k->width;
    double *acc = job->sums + (size_t)slot * NORMAL_TOTAL;
    for (int64_t p = block * PASS_BLOCK; p < end && p < (block + 1) * PASS_BLOCK; p++) {
        int32_t nb[N_NB][3], cur[3];
        int64_t row[LS_MAX_SIZE];
        double a[LS_MAX_SIZE];
        gather(k, (int)(p / k->width), (int)(p % k->width), nb, NULL);
        for (int ch = 0; ch < 3; ch++) cur[ch] = k->pixels[p * 3 + ch];
        double *g = acc;
        for (int ch = 0; ch < 3; ch++) {
            const int m = LS_SIZES[ch];
            ls_row(nb, ch, cur, row);
            for (int i = 0; i < m; i++) a[i] = (double)row[i];
            for (int i = 0; i < m; i++) /* upper triangle; mirrored once summed */
                for (int j = i; j < m; j++) g[i * m + j] += a[i] * a[j];
            for (int i = 0; i < m; i++) g[m * m + i] += a[i] * cur[ch];
            g += m * m + m;
        }
    }
}

ISA_CLONES(void, normal_block, (void *ctx, int64_t block, int slot), (ctx, block, slot))

static void normal_block(void *ctx, int64_t block, int slot) { normal_block_paths[active_isa](ctx, block, slot); }

static PyObject *kernel_ls_normal_equations(ImageKernel *k, PyObject *arg) {
    /* out: float64, for channel 0, 1, 2: gram (n x n) then rhs (n), n = LS_SIZES[ch] */
    Py_buffer out;
    if (enter(k) < 0) return NULL;
    if (get_buffer(arg, &out, 'd', NORMAL_TOTAL, 1, "normal equations") < 0) { leave(k); return NULL; }
    double *sums = calloc((size_t)k->threads * NORMAL_TOTAL, sizeof(double));
    if (!sums) { PyBuffer_Release(&out); leave(k); return PyErr_NoMemory(); }
    PassJob job = {k, NULL, NULL, sums};
    Py_BEGIN_ALLOW_THREADS
    pool_run(&k->pool, normal_block, &job, pass_blocks(k));
    Py_END_ALLOW_THREADS
    leave(k);
    /* every term is an integer and every sum stays below 2**53: exact in any order */
    double *dst = out.buf;
    for (int i = 0; i < NORMAL_TOTAL; i++) {
        double total = 0.0;
        for (int t = 0; t < k->threads; t++) total += sums[(size_t)t * NORMAL_TOTAL + i];
        dst[i] = total;
    }
    for (int ch = 0, at = 0; ch < 3; at += LS_SIZES[ch] * (LS_SIZES[ch] + 1), ch++) /* the gram is symmetric */
        for (int i = 0; i < LS_SIZES[ch]; i++)
            for (int j = 0; j < i; j++) dst[at + i * LS_SIZES[ch] + j] = dst[at + j * LS_SIZES[ch] + i];
    free(sums);
    PyBuffer_Release(&out);
    Py_RETURN_NONE;
}

static void terms_block(void *ctx, int64_t block, int slot) {
    const PassJob *job = ctx;
    const ImageKernel *k = job->k;
    const int64_t end = (int64_t)k->height * k->width;
    (void)slot;
    for (int64_t p = block * PASS_BLOCK; p < end && p < (block + 1) * PASS_BLOCK; p++) {
        int32_t f[MAX_FEATURES], cur[3];
        int64_t known[3];
        features(k, (int)(p / k->width), (int)(p % k->width), f, known);
        for (int i = 0; i < k->n_features; i++) job->features[p * k->n_features + i] = (int16_t)f[i];
        for (int ch = 0; ch < 3; ch++) cur[ch] = k->pixels[p * 3 + ch];
        for (int ch = 0; ch < 3; ch++) job->bases[p * 3 + ch] = (int16_t)ls_complete(k, ch, known[ch], cur);
    }
}

static PyObject *kernel_terms(ImageKernel *k, PyObject *args) {
    /* features int16 (H*W, n_features) fixed point 2**-8 and LS bases int16 (H*W, 3) q4, raster order */
    PyObject *fo, *bo;
    if (!PyArg_ParseTuple(args, "OO", &fo, &bo) || enter(k) < 0) return NULL;
    const int64_t n = (int64_t)k->height * k->width;
    Py_buffer fv, bv;
    if (!k->residuals_ready) { PyErr_SetString(PyExc_RuntimeError, "terms() needs compute_residuals() first"); leave(k); return NULL; }
    if (get_buffer(fo, &fv, 'h', n * k->n_features, 1, "features") < 0) { leave(k); return NULL; }
    if (get_buffer(bo, &bv, 'h', n * 3, 1, "bases") < 0) { PyBuffer_Release(&fv); leave(k); return NULL; }
    PassJob job = {k, fv.buf, bv.buf, NULL};
    Py_BEGIN_ALLOW_THREADS
    pool_run(&k->pool, terms_block, &job, pass_blocks(k));
    Py_END_ALLOW_THREADS
    leave(k);
    PyBuffer_Release(&fv);
    PyBuffer_Release(&bv);
    Py_RETURN_NONE;
}

/* One pixel's fixed-point features into row p of the scratch's inputs. */
static void set_inputs(const ImageKernel *k, Scratch *s, int p, const int32_t *f) {
    if (k->int16) { /* every feature lies in -32767..32767 (units.py) */
        int16_t *x = s->a16 + (size_t)p * k->width_pad;
        for (int i = 0; i < k->n_features; i++) x[i] = (int16_t)f[i];
        for (int i = k->n_features; i < k->width_pad; i++) x[i] = 0;
    } else {
        double *x = s->a + (size_t)p * k->width_pad;
        for (int i = 0; i < k->n_features; i++) x[i] = f[i];
        for (int i = k->n_features; i < k->width_pad; i++) x[i] = 0.0;
    }
}

static void run_mlp(const ImageKernel *k, Scratch *s, int rows, int64_t *out) {
    if (k->int16) mlp16(k, s, rows, out);
    else mlp(k, s, rows, out);
}

static PyObject *model_outputs_impl(ImageKernel *k, PyObject *args) {
    /* model_outputs(features int32 (n, n_features), out int64 (n, 12K)): the MLP alone, on
     * any inputs of its range (tests compare every instruction-set path with the reference) */
    PyObject *fo, *oo;
    if (!PyArg_ParseTuple(args, "OO", &fo, &oo)) return NULL;
    if (!k->n_layers) { PyErr_SetString(PyExc_ValueError, "this kernel has no model"); return NULL; }
    Py_buffer fv, ov;
    if (get_buffer(fo, &fv, 'i', -1, 0, "features") < 0) return NULL;
    const Py_ssize_t n = fv.len / 4 / k->n_features;
    const int limit = k->int16 ? 32767 : ACT_MAX;
    const int32_t *f = fv.buf;
    for (Py_ssize_t i = 0; i < fv.len / 4; i++)
        if (f[i] < -limit || f[i] > limit) { PyBuffer_Release(&fv); PyErr_SetString(PyExc_ValueError, "feature out of range"); return NULL; }
    if (n * k->n_features * 4 != fv.len || get_buffer(oo, &ov, 'q', n * OUT_ROWS * k->components, 1, "outputs") < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "features: not (n, n_features)");
        PyBuffer_Release(&fv);
        return NULL;
    }
    for (Py_ssize_t a = 0; a < n; a += BLOCK) {
        const int rows = (int)(n - a < BLOCK ? n - a : BLOCK);
        for (int p = 0; p < rows; p++) set_inputs(k, &k->scratch[0], p, f + (a + p) * k->n_features);
        run_mlp(k, &k->scratch[0], rows, (int64_t *)ov.buf + a * OUT_ROWS * k->components);
    }
    PyBuffer_Release(&fv);
    PyBuffer_Release(&ov);
    Py_RETURN_NONE;
}

/* Features of a block of pixels into the scratch's input rows, then the MLP. */
static void block_outputs(const ImageKernel *k, Scratch *s, const int *rows, const int *cols, int n,
                          int64_t *out, int64_t *known) {
    int32_t f[MAX_FEATURES];
    for (int p = 0; p < n; p++) {
        features(k, rows[p], cols[p], f, known + 3 * p);
        set_inputs(k, s, p, f);
    }
    run_mlp(k, s, n, out);
}

typedef struct {
    ImageKernel *k;
    const int *rows, *cols; /* pixels in decoding order */
    const int64_t *row0; /* first table row of each pixel's step */
    const int *step_n, *index; /* pixels in each pixel's step, and its place there */
    int64_t n_px;
    int32_t *symbols;
    double *tables;
    double *block_bits;
} EncodeJob;

/* Both stages' symbols and tables of every coded channel of BLOCK pixels. */
static void encode_block(void *ctx, int64_t block, int slot) {
    const EncodeJob *job = ctx;
    const ImageKernel *k = job->k;
    Scratch *s = &k->scratch[slot];
    const int cc = k->colour_channels, K = k->components;
    const int64_t a = block * BLOCK;
    const int n = (int)(job->n_px - a < BLOCK ? job->n_px - a : BLOCK);
    block_outputs(k, s, job->rows + a, job->cols + a, n, s->out, s->known);
    double bits = 0.0;
    for (int q = 0; q < n; q++) {
        const int64_t px = (int64_t)job->rows[a + q] * k->width + job->cols[a + q];
        int32_t cur[3], res[3];
        for (int ch = 0; ch < 3; ch++) { cur[ch] = k->pixels[px * 3 + ch]; res[ch] = k->residuals[px * 3 + ch]; }
        for (int ch = 0; ch < cc; ch++) {
            Prepared prep;
            prepare(k, s->out + (size_t)q * OUT_ROWS * K, ch, ls_complete(k, ch, s->known[3 * q + ch], cur), res, &prep);
            const int v = cur[ch], bucket = v / STAGE;
            const int64_t r_coarse = job->row0[a + q] + (int64_t)(2 * ch) * job->step_n[a + q] + job->index[a + q];
            const int64_t r_fine = r_coarse + job->step_n[a + q];
            double *coarse = job->tables + r_coarse * STAGE, *fine = job->tables + r_fine * STAGE;
            bucket_table(k, &prep, coarse);
            value_table(k, &prep, bucket, fine);
            job->symbols[r_coarse] = bucket;
            job->symbols[r_fine] = v % STAGE;
            double total = 0.0;
            for (int i = 0; i < STAGE; i++) total += coarse[i];
            bits += log2(total) - log2(fine[v % STAGE]);
        }
    }
    job->block_bits[block] = bits;
}

static PyObject *encode_steps_impl(ImageKernel *k, PyObject *args) {
    /* Symbols (int32) and tables (float64, 16 per row) of wavefront steps t0..t1-1 in the
     * decoder's order: step, coded channel, stage (bucket v // 16, then v % 16), pixel.
     * Returns (rows written, ideal bits). Needs compute_residuals() first. */
    long long t0, t1;
    PyObject *so, *to;
    if (!PyArg_ParseTuple(args, "LLOO", &t0, &t1, &so, &to)) return NULL;
    if (!k->n_layers) { PyErr_SetString(PyExc_ValueError, "this kernel has no model"); return NULL; }
    if (!k->residuals_ready) { PyErr_SetString(PyExc_RuntimeError, "encode_steps() needs compute_residuals() first"); return NULL; }
    if (t0 < 0 || t1 < t0 || t1 > num_steps(k)) { PyErr_SetString(PyExc_ValueError, "step range out of the image"); return NULL; }
    int64_t n_px = 0;
    for (int64_t t = t0; t < t1; t++) { int first; n_px += step_span(k, t, &first); }
    const int cc = k->colour_channels;
    const int64_t n_rows = n_px * cc * 2;
    Py_buffer sv, tv;
    if (get_buffer(so, &sv, 'i', -1, 1, "symbols") < 0) return NULL;
    if (get_buffer(to, &tv, 'd', -1, 1, "tables") < 0) { PyBuffer_Release(&sv); return NULL; }
    if (sv.len < n_rows * 4 || tv.len < n_rows * STAGE * 8) {
        PyBuffer_Release(&sv); PyBuffer_Release(&tv);
        PyErr_SetString(PyExc_ValueError, "symbols or tables buffer too small for the step range");
        return NULL;
    }
    /* per pixel: position, and where its step's rows start and how many pixels it has */
    int *rows = malloc((size_t)n_px * sizeof(int)), *cols = malloc((size_t)n_px * sizeof(int));
    int64_t *row0 = malloc((size_t)n_px * sizeof(int64_t));
    int *step_n = malloc((size_t)n_px * sizeof(int)), *index = malloc((size_t)n_px * sizeof(int));
    const int64_t n_blocks = (n_px + BLOCK - 1) / BLOCK;
    double *block_bits = calloc((size_t)n_blocks + 1, sizeof(double));
    if (!rows || !cols || !row0 || !step_n || !index || !block_bits) {
        free(rows); free(cols); free(row0); free(step_n); free(index); free(block_bits);
        PyBuffer_Release(&sv); PyBuffer_Release(&tv);
        return PyErr_NoMemory();
    }
    int64_t p = 0;
    for (int64_t t = t0; t < t1; t++) {
        int first, n = step_span(k, t, &first);
        for (int i = 0; i < n; i++, p++) {
            rows[p] = first + i;
            cols[p] = (int)(t - (int64_t)SKEW * (first + i));
            row0[p] = (p - i) * cc * 2;
            step_n[p] = n;
            index[p] = i;
        }
    }
    EncodeJob job = {k, rows, cols, row0, step_n, index, n_px, sv.buf, tv.buf, block_bits};
    Py_BEGIN_ALLOW_THREADS
    pool_run(&k->pool, encode_block, &job, n_blocks);
    Py_END_ALLOW_THREADS
    double bits = 0.0;
    for (int64_t b = 0; b < n_blocks; b++) bits += block_bits[b];
    free(rows); free(cols); free(row0); free(step_n); free(index); free(block_bits);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&tv);
    return Py_BuildValue("Ld", (long long)n_rows, bits);
}

/* ---- decoder: one wavefront step at a time -------------------------------------------------
 * A step's pixels are decoded in 2 stages per coded channel ch: stage 2 ch, the bucket v / 16,
 * and stage 2 ch + 1, the value inside it, v % 16. begin_step hands out the tables of stage 0;
 * each advance takes the symbols the last tables decoded and hands out the next stage's,
 * until the last stage completes the step. */

#define TABLE_BLOCK 32 /* the fewest pixels worth a block of a decoder stage */

/* ---- decoder, int16 models: inputs in two parts ---------------------------------------------
 * Of an inner pixel's neighbours, only W (0, -1) and NE3 (-1, +3) are decoded in the step just
 * before its own (SKEW * dr + dc = -1); through them MED, the prior LS prediction and the
 * residual activity are late too. Layer 0 is linear in its inputs, so its sums split into an
 * early part, of the inputs with those neighbours and MED left out (the neighbours enter as
 * 8 * value, the MED's share of every input comes later), and a late part: per channel, six
 * late inputs times weight columns fixed at load (LATE_INPUTS). A worker computes step t + 1's
 * early part while the caller pulls step t's symbols (begin_step posts it). The int32 sums
 * wrap (uint32), and the whole sum lies in int32 (the load-time bound), so the parts add up to
 * the very integers of the one-pass sum that the encoder computes. Other pixels (near the
 * edges) take all their inputs late. With one thread there is nothing to overlap, and the
 * decoder keeps the one pass (k->split is 0). */
#define NE3_ 9 /* NEIGHBOURS index of (-1, +3) */
#define EARLY_BLOCK 8 /* pixels per block of the early part: a worker between stages soon comes back */
enum { LATE_W, LATE_NE3, LATE_PRIOR, LATE_RES_W, LATE_ACTIVITY, LATE_MED, LATE_INPUTS };

/* Layer 0's weight of input i for output o. */
static inline int32_t first_weight(const ImageKernel *k, int i, int o) {
    return k->layers[0].w16[((size_t)(i / 2) * k->layers[0].n_out_pad + o) * 2 + i % 2];
}

/* The late weight columns and LS weights of a kernel's int16 model and LS coefficients. */
static int init_late(ImageKernel *k) {
    const int wp = k->width_pad, n_out = k->layers[0].n_out;
    k->late_cols = aligned_zeros((size_t)3 * LATE_INPUTS * wp * sizeof(int32_t));
    if (!k->late_cols) { PyErr_NoMemory(); return -1; }
    for (int ch = 0; ch < 3; ch++)
        for (int o = 0; o < n_out; o++) {
            int32_t *col = k->late_cols + (size_t)ch * LATE_INPUTS * wp + o;
            int64_t med_weight = 4 * (int64_t)first_weight(k, F_MED + ch, o) - 32 * (int64_t)first_weight(k, F_PRIOR + ch, o);
            for (int j = 0; j < N_NB; j++) med_weight -= 8 * (int64_t)first_weight(k, F_NB + ch * N_NB + j, o);
            col[LATE_W * wp] = 8 * first_weight(k, F_NB + ch * N_NB + W_, o);
            col[LATE_NE3 * wp] = 8 * first_weight(k, F_NB + ch * N_NB + NE3_, o);
            col[LATE_PRIOR * wp] = 2 * first_weight(k, F_PRIOR + ch, o);
            col[LATE_RES_W * wp] = 2 * first_weight(k, F_RES + ch * 4, o);
            if (k->context >= 2) {
                col[LATE_ACTIVITY * wp] = first_weight(k, F_ACTIVITY + ch, o);
                for (int j = 0; j < N_WIDE; j++) med_weight -= 8 * (int64_t)first_weight(k, F_WIDE + ch * N_WIDE + j, o);
            }
            col[LATE_MED * wp] = (int32_t)med_weight; /* |med_weight| <= 8 * 27 * 32767 */
        }
    /* ls_known() is linear in the neighbours but for its bias: probe it with one unit value */
    int32_t nb[N_NB][3] = {{0}};
    int64_t zero[3], unit[3];
    ls_known(k, nb, zero);
    for (int which = 0; which < 2; which++)
        for (int c = 0; c < 3; c++) {
            int32_t *v = &nb[which == 0 ? W_ : NE3_][c];
            *v = 1;
            ls_known(k, nb, unit);
            *v = 0;
            for (int ch = 0; ch < 3; ch++) k->ls_late[which][c][ch] = unit[ch] - zero[ch];
        }
    return 0;
}

/* The early inputs of inner pixel (r, c) into f: fill_inputs() with
 * W and NE3 (not read: the caller may be writing them), MED and the prior at 0; the LS parts
 * of its early neighbours into known, and their residual activity. */
static void early_inputs(const ImageKernel *k, int r, int c, int32_t f[MAX_FEATURES], int64_t known[3], int32_t activity[3]) {
    int32_t nb[N_NB][3], res[N_NB][3];
    const int64_t px = (int64_t)r * k->width + c;
    for (int j = 0; j < N_NB; j++) {
        const int64_t idx = px + (int64_t)NB_DR[j] * k->width + NB_DC[j];
        const int late = j == W_ || j == NE3_;
        for (int ch = 0; ch < 3; ch++) {
            nb[j][ch] = late ? 0 : k->pixels[idx * 3 + ch];
            res[j][ch] = late ? 0 : k->residuals[idx * 3 + ch];
        }
    }
    ls_known(k, nb, known);
    static const int32_t no_med[3] = {0, 0, 0}; /* the neighbours enter as 8 * value, MED - 128 as -128 * 4 */
    static const int64_t no_prior[3] = {0, 0, 0};
    int64_t sums[3];
    fill_inputs(k, r, c, nb, res, no_med, no_prior, f, sums);
    if (k->context >= 2)
        for (int ch = 0; ch < 3; ch++) { /* rounded at the step, with W's and NE3's */
            activity[ch] = (int32_t)sums[ch];
            f[F_ACTIVITY + ch] = 0;
        }
}

/* Adds the late inputs of inner pixel (r, c) to its layer 0 sums ``acc`` (width_pad), and
 * completes its known LS parts. */
static void add_late(const ImageKernel *k, int r, int c, int32_t *acc, int64_t known[3], const int32_t activity[3]) {
    const int64_t px = (int64_t)r * k->width + c, up = px - k->width;
    const uint8_t *w = k->pixels + (px - 1) * 3, *n = k->pixels + up * 3, *nw = n - 3, *ne3 = n + 9;
    const int16_t *res_w = k->residuals + (px - 1) * 3, *res_ne3 = k->residuals + (up + 3) * 3;
    for (int ch = 0; ch < 3; ch++)
        for (int c2 = 0; c2 < 3; c2++) known[ch] += k->ls_late[0][c2][ch] * w[c2] + k->ls_late[1][c2][ch] * ne3[c2];
    int64_t prior[3];
    priors(k, known, prior);
    int32_t v[3][LATE_INPUTS];
    for (int ch = 0; ch < 3; ch++) {
        const int32_t rw = res_w[ch], rn = res_ne3[ch];
        const int64_t act = activity[ch] + (rw < 0 ? -rw : rw) + (rn < 0 ? -rn : rn);
        v[ch][LATE_W] = w[ch];
        v[ch][LATE_NE3] = ne3[ch];
        v[ch][LATE_PRIOR] = (int32_t)prior[ch];
        v[ch][LATE_RES_W] = rw;
        v[ch][LATE_ACTIVITY] = (int32_t)round_shift(act, 2);
        v[ch][LATE_MED] = med(w[ch], n[ch], nw[ch]);
    }
    add_columns_paths[active_isa]((uint32_t *)acc, k->late_cols, k->width_pad, &v[0][0], 3 * LATE_INPUTS, k->layers[0].n_out_pad);
}

/* The early part of step k->next_t's layer 0 sums, for its pixels of ``block`` (EARLY_BLOCK each). */
static void early_block(void *ctx, int64_t block, int slot) {
    ImageKernel *k = ctx;
    Scratch *s = &k->scratch[slot];
    const int a = (int)block * EARLY_BLOCK, m = k->next_n - a < EARLY_BLOCK ? k->next_n - a : EARLY_BLOCK;
    const int wp = k->width_pad;
    int32_t f[MAX_FEATURES];
    for (int p = 0; p < m; p++) {
        const int i = a + p, r = k->next_first + i, c = (int)(k->next_t - (int64_t)SKEW * r);
        if (inner(k, r, c)) {
            early_inputs(k, r, c, f, k->next_known + 3 * i, k->next_activity + 3 * i);
            set_inputs(k, s, p, f);
        } else {
            memset(s->a16 + (size_t)p * wp, 0, (size_t)wp * sizeof(int16_t)); /* all late */
        }
    }
    first_layer16(k, s, m);
    memcpy(k->next_acc + (size_t)a * wp, s->acc, (size_t)m * wp * sizeof(int32_t));
}

/* A worker that other processes keep off its core leaves the early blocks to the caller, and
 * then the two parts cost more than the one pass (about 5 % more work): when the worker's
 * share of them falls below worker_share_floor / 256, the decoder takes the one pass for
 * split_pause steps, then tries again. Both give the same integers; only the time differs. */
static int worker_share_floor = 128, split_pause = 256; /* set_split_policy() (tests) */

/* After settling step k->next_t's early part: fold the worker's share of it into the average. */
static void note_worker_share(ImageKernel *k) {
    const int64_t n = atomic_load(&k->pool.bg_n);
    const int share = n ? (int)(256 * (n - k->pool.bg_by_caller) / n) : 256;
    k->worker_share += (share - k->worker_share) / 16;
}

/* Points the early part at step t (the caller posts or runs its blocks); returns their count. */
static int64_t aim_early(ImageKernel *k, int64_t t) {
    k->next_t = t;
    k->next_n = step_span(k, t, &k->next_first);
    return (k->next_n + EARLY_BLOCK - 1) / EARLY_BLOCK;
}


/* Bucket tables of channel ch for the step's pixels [i0, i1); they fix each pixel's mixture. */
static void bucket_rows(ImageKernel *k, int ch, int i0, int i1, double *tables) {
    const int K = k->components;
    for (int i = i0; i < i1; i++) {
        const int32_t base = ls_complete(k, ch, k->step_known[3 * i + ch], k->step_current + 3 * i);
        k->step_base[3 * i + ch] = base;
        prepare(k, k->step_out + (size_t)i * OUT_ROWS * K, ch, base, k->step_res + 3 * i, &k->step_prep[i]);
        bucket_table(k, &k->step_prep[i], tables + (size_t)i * STAGE);
    }
}

/* Values STAGE * bucket + symbol of channel ch for the step's pixels [i0, i1). After the last
 * coded channel the pixels are complete: uncoded channels copy channel 0, and pixels and
 * residuals go into the image's planes. */
static void commit_rows(ImageKernel *k, int ch, const int32_t *symbols, int i0, int i1) {
    for (int i = i0; i < i1; i++) {
        int32_t *cur = k->step_current + 3 * i, *res = k->step_res + 3 * i;
        cur[ch] = STAGE * k->step_bucket[i] + symbols[i];
        res[ch] = Q4 * cur[ch] - k->step_base[3 * i + ch];
        if (ch < k->colour_channels - 1) continue;
        for (int c2 = k->colour_channels; c2 < 3; c2++) {
            cur[c2] = cur[0];
            res[c2] = Q4 * cur[c2] - ls_complete(k, c2, k->step_known[3 * i + c2], cur);
        }
        const int64_t px = (int64_t)k->step_rows[i] * k->width + k->step_cols[i];
        for (int c2 = 0; c2 < 3; c2++) {
            k->pixels[px * 3 + c2] = (uint8_t)cur[c2];
            k->residuals[px * 3 + c2] = (int16_t)res[c2];
        }
    }
}

/* ``stage`` decoded into ``symbols``: the job of taking them and computing the next stage's
 * tables (none after the last). */
typedef struct { ImageKernel *k; int stage; const int32_t *symbols; double *tables; } StageJob;

/* Pixels a block of a decoder job covers: the step split in one share per thread, of at
 * least ``least`` pixels. Every block claimed costs atomics on a line both threads write,
 * and equal shares leave no last block to wait for at the end of a step's few hundred
 * pixels (smaller blocks measured slower). */
static inline int job_share(const ImageKernel *k, int least) {
    const int threads = k->pool.n_workers + 1, share = (k->step_n + threads - 1) / threads;
    return share > least ? share : least;
}

static inline int64_t job_blocks(const ImageKernel *k, int least) {
    const int rows = job_share(k, least);
    return (k->step_n + rows - 1) / rows;
}

/* The step's pixels [*i0, *i1) of block ``block`` of a job of ``job_share(k, least)``-pixel blocks. */
static inline void job_rows(const ImageKernel *k, int64_t block, int least, int *i0, int *i1) {
    const int rows = job_share(k, least);
    *i0 = (int)block * rows;
    *i1 = *i0 + rows < k->step_n ? *i0 + rows : k->step_n;
}

/* Model outputs, known LS parts and channel 0's bucket tables of the step's pixels in
 * ``block``, BLOCK pixels at a time (the scratch's rows). */
static void step_block(void *ctx, int64_t block, int slot) {
    const StageJob *job = ctx;
    ImageKernel *k = job->k;
    int i0, i1;
    job_rows(k, block, BLOCK, &i0, &i1);
    for (int a = i0; a < i1; a += BLOCK) {
        const int m = i1 - a < BLOCK ? i1 - a : BLOCK;
        block_outputs(k, &k->scratch[slot], k->step_rows + a, k->step_cols + a, m,
                      k->step_out + (size_t)a * OUT_ROWS * k->components, k->step_known + 3 * a);
    }
    bucket_rows(k, 0, i0, i1, job->tables);
}

/* As step_block, for an int16 model whose early part of the step is in k->next_*: inner
 * pixels add their late inputs, the others take all inputs now (in s->a16's first rows). */
static void late_block(void *ctx, int64_t block, int slot) {
    const StageJob *job = ctx;
    ImageKernel *k = job->k;
    Scratch *s = &k->scratch[slot];
    const int wp = k->width_pad;
    int32_t f[MAX_FEATURES];
    int i0, i1;
    job_rows(k, block, BLOCK, &i0, &i1);
    for (int a = i0; a < i1; a += BLOCK) {
        const int m = i1 - a < BLOCK ? i1 - a : BLOCK;
        int edge[BLOCK], n_edge = 0;
        for (int i = a; i < a + m; i++) {
            const int r = k->step_rows[i], c = k->step_cols[i];
            int64_t *known = k->step_known + 3 * i;
            if (inner(k, r, c)) {
                memcpy(known, k->next_known + 3 * i, 3 * sizeof(int64_t));
                add_late(k, r, c, k->next_acc + (size_t)i * wp, known, k->next_activity + 3 * i);
                continue;
            }
            features(k, r, c, f, known);
            set_inputs(k, s, n_edge, f);
            edge[n_edge++] = i;
        }
        if (n_edge) {
            first_layer16(k, s, n_edge);
            for (int e = 0; e < n_edge; e++) memcpy(k->next_acc + (size_t)edge[e] * wp, s->acc + (size_t)e * wp, (size_t)wp * sizeof(int32_t));
        }
        mlp16_rest(k, s, m, k->next_acc + (size_t)a * wp, k->step_out + (size_t)a * OUT_ROWS * k->components);
    }
    bucket_rows(k, 0, i0, i1, job->tables);
}

/* The job for the step's pixels in ``block``. */
static void advance_block(void *ctx, int64_t block, int slot) {
    const StageJob *job = ctx;
    ImageKernel *k = job->k;
    int i0, i1;
    job_rows(k, block, TABLE_BLOCK, &i0, &i1);
    const int ch = job->stage / 2;
    (void)slot;
    if (job->stage % 2 == 0) { /* buckets: the tables of the values inside them */
        for (int i = i0; i < i1; i++) {
            k->step_bucket[i] = job->symbols[i];
            value_table(k, &k->step_prep[i], job->symbols[i], job->tables + (size_t)i * STAGE);
        }
    } else { /* values: the next channel's bucket tables */
        commit_rows(k, ch, job->symbols, i0, i1);
        if (ch + 1 < k->colour_channels) bucket_rows(k, ch + 1, i0, i1, job->tables);
    }
}

static int step_table_buffer(ImageKernel *k, PyObject *obj, Py_buffer *view) {
    if (get_buffer(obj, view, 'd', -1, 1, "tables") < 0) return -1;
    if (view->len < (Py_ssize_t)k->step_n * STAGE * 8) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "tables buffer too small for the step");
        return -1;
    }
    return 0;
}

static PyObject *begin_step_impl(ImageKernel *k, PyObject *args) {
    /* Model outputs of every pixel of step t and the tables of its stage 0 (float64 (n, 16),
     * into the first n rows of tables); returns the step's pixel count n. */
    long long t;
    PyObject *to;
    Py_buffer tv;
    if (!PyArg_ParseTuple(args, "LO", &t, &to)) return NULL;
    if (!k->n_layers) { PyErr_SetString(PyExc_ValueError, "this kernel has no model"); return NULL; }
    if (t < 0 || t >= num_steps(k)) { PyErr_SetString(PyExc_ValueError, "step out of the image"); return NULL; }
    int first;
    const int n = step_span(k, t, &first);
    k->step_phase = -1;
    k->step_n = n;
    if (step_table_buffer(k, to, &tv) < 0) return NULL;
    for (int i = 0; i < n; i++) { k->step_rows[i] = first + i; k->step_cols[i] = (int)(t - (int64_t)SKEW * (first + i)); }
    memset(k->step_current, 0, (size_t)n * 3 * sizeof(int32_t));
    memset(k->step_res, 0, (size_t)n * 3 * sizeof(int32_t));
    StageJob job = {k, 0, NULL, tv.buf};
    Py_BEGIN_ALLOW_THREADS
    if (k->split && !k->split_paused) { /* the early part of step t is done (enter settled it) or runs now */
        if (k->next_t == t) note_worker_share(k);
        else pool_run(&k->pool, early_block, k, aim_early(k, t));
        pool_run(&k->pool, late_block, &job, job_blocks(k, BLOCK));
        k->next_t = -1;
        if (k->worker_share < worker_share_floor) {
            k->split_paused = split_pause;
            k->worker_share = 256;
        } else if (t + 1 < num_steps(k)) {
            pool_background(&k->pool, early_block, k, aim_early(k, t + 1));
        }
    } else {
        k->split_paused -= k->split_paused > 0;
        pool_run(&k->pool, step_block, &job, job_blocks(k, BLOCK));
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&tv);
    k->step_phase = 0;
    return PyLong_FromLong(n);
}

static int symbols_buffer(ImageKernel *k, PyObject *obj, Py_buffer *view) {
    if (get_buffer(obj, view, 'i', k->step_n, 0, "symbols") < 0) return -1;
    const int32_t *s = view->buf;
    for (int i = 0; i < k->step_n; i++)
        if (s[i] < 0 || s[i] >= STAGE) {
            PyBuffer_Release(view);
            PyErr_SetString(PyExc_ValueError, "symbol out of range");
            return -1;
        }
    return 0;
}

static PyObject *advance_impl(ImageKernel *k, PyObject *args) {
    /* The symbols (int32 (n,)) that the step's current tables decoded; writes the next
     * stage's tables into tables, or after the last stage puts the step into the planes. */
    PyObject *so, *to;
    Py_buffer sv, tv;
    if (!PyArg_ParseTuple(args, "OO", &so, &to)) return NULL;
    if (k->step_phase < 0) {
        PyErr_SetString(PyExc_RuntimeError, "advance out of order: begin_step first, then one advance per stage");
        return NULL;
    }
    if (symbols_buffer(k, so, &sv) < 0) return NULL;
    if (step_table_buffer(k, to, &tv) < 0) { PyBuffer_Release(&sv); return NULL; }
    const int stage = k->step_phase;
    StageJob job = {k, stage, sv.buf, tv.buf};
    Py_BEGIN_ALLOW_THREADS
    pool_run(&k->pool, advance_block, &job, job_blocks(k, TABLE_BLOCK));
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&sv);
    PyBuffer_Release(&tv);
    k->step_phase = stage + 1 < 2 * k->colour_channels ? stage + 1 : -1;
    Py_RETURN_NONE;
}

static PyObject *kernel_num_steps(ImageKernel *k, PyObject *Py_UNUSED(noargs)) {
    if (!k->ready) { PyErr_SetString(PyExc_RuntimeError, "ImageKernel is not initialised"); return NULL; }
    return PyLong_FromLongLong(num_steps(k));
}

static PyObject *kernel_max_step_size(ImageKernel *k, PyObject *Py_UNUSED(noargs)) {
    if (!k->ready) { PyErr_SetString(PyExc_RuntimeError, "ImageKernel is not initialised"); return NULL; }
    return PyLong_FromLong(k->step_capacity);
}

static PyObject *step_sizes_impl(ImageKernel *k, PyObject *arg) {
    /* Pixel counts of every wavefront step into an int32 buffer of num_steps() items. */
    Py_buffer v;
    if (get_buffer(arg, &v, 'i', num_steps(k), 1, "step sizes") < 0) return NULL;
    int32_t *out = v.buf;
    for (int64_t t = 0; t < num_steps(k); t++) { int first; out[t] = step_span(k, t, &first); }
    PyBuffer_Release(&v);
    Py_RETURN_NONE;
}

/* The methods that run with the kernel held by one thread (see enter). */
#define GUARDED(name, entry)                                           \
    static PyObject *kernel_##name(ImageKernel *k, PyObject *args) {   \
        if (entry(k) < 0) return NULL;                                 \
        PyObject *result = name##_impl(k, args);                       \
        leave(k);                                                      \
        return result;                                                 \
    }
GUARDED(encode_steps, enter)
GUARDED(begin_step, enter)
GUARDED(advance, enter_step) /* the next step's early part runs on */
GUARDED(step_sizes, enter)
GUARDED(model_outputs, enter)

static PyMethodDef kernel_methods[] = {
    {"compute_residuals", (PyCFunction)kernel_compute_residuals, METH_NOARGS,
     "Fill the LS residual plane from the full pixel plane (encoder, training)."},
    {"ls_normal_equations", (PyCFunction)kernel_ls_normal_equations, METH_O,
     "Write per channel (A^T A, A^T y) of the LS design over all pixels into a float64 buffer."},
    {"terms", (PyCFunction)kernel_terms, METH_VARARGS,
     "terms(features, bases): int16 model features (n, 75) and LS bases (n, 3) of all pixels, raster order."},
    {"encode_steps", (PyCFunction)kernel_encode_steps, METH_VARARGS,
     "encode_steps(t0, t1, symbols, tables) -> (rows, ideal bits), in decoding order."},
    {"begin_step", (PyCFunction)kernel_begin_step, METH_VARARGS,
     "begin_step(t, tables) -> n: the step's pixel count; its first stage's tables into tables[:n]."},
    {"advance", (PyCFunction)kernel_advance, METH_VARARGS,
     "advance(symbols, tables): the symbols the step's tables decoded; the next stage's tables into tables."},
    {"num_steps", (PyCFunction)kernel_num_steps, METH_NOARGS, "Wavefront steps: W + 4 (H - 1)."},
    {"model_outputs", (PyCFunction)kernel_model_outputs, METH_VARARGS,
     "model_outputs(features, out): int64 (n, 12K) model outputs of int32 (n, n_features) fixed-point inputs."},
    {"step_sizes", (PyCFunction)kernel_step_sizes, METH_O, "Pixels of every step into an int32 buffer."},
    {"max_step_size", (PyCFunction)kernel_max_step_size, METH_NOARGS, "An upper bound on the pixels of any step (buffer size)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ImageKernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "neuralzip.core._kernel.ImageKernel",
    .tp_basicsize = sizeof(ImageKernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One image's planes and one integer model: contexts, model outputs and frequency tables.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)kernel_init,
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_methods = kernel_methods,
};

static int add_int(PyObject *list, long v) {
    PyObject *o = PyLong_FromLong(v);
    const int ok = o && PyList_Append(list, o) == 0;
    Py_XDECREF(o);
    return ok;
}

static int add_pair(PyObject *list, long a, long b) {
    PyObject *o = Py_BuildValue("[ll]", a, b);
    const int ok = o && PyList_Append(list, o) == 0;
    Py_XDECREF(o);
    return ok;
}

static PyObject *set_isa(PyObject *self, PyObject *arg) {
    /* set_isa(name): use instruction-set path ``name`` ("scalar", or one of ISA_PATHS) from
     * now on; for tests and benchmarks, between runs (not while a kernel computes). */
    (void)self;
    const char *name = PyUnicode_AsUTF8(arg);
    if (!name) return NULL;
    for (int i = 0; i < ISA_COUNT; i++)
        if (strcmp(name, ISA_NAMES[i]) == 0 && isa_supported(i)) { active_isa = i; use_scalar16 = 0; Py_RETURN_NONE; }
    if (strcmp(name, "scalar") == 0) { active_isa = ISA_BASELINE; use_scalar16 = 1; Py_RETURN_NONE; }
    PyErr_Format(PyExc_ValueError, "%s: not an instruction-set path this CPU runs", name);
    return NULL;
}

static PyObject *set_split_policy(PyObject *self, PyObject *args) {
    /* set_split_policy(floor, pause): the decoder's back-off from the two-part first layer
     * (default 128, 256); for tests (floor 257 pauses after every two-part step), between runs. */
    (void)self;
    int floor, pause;
    if (!PyArg_ParseTuple(args, "ii", &floor, &pause)) return NULL;
    if (floor < 0 || floor > 257 || pause < 0) { PyErr_SetString(PyExc_ValueError, "floor in 0..257, pause >= 0"); return NULL; }
    worker_share_floor = floor;
    split_pause = pause;
    Py_RETURN_NONE;
}

static PyObject *get_isa(PyObject *self, PyObject *Py_UNUSED(noargs)) {
    (void)self;
    return PyUnicode_FromString(use_scalar16 ? "scalar" : ISA_NAMES[active_isa]);
}

static PyMethodDef module_methods[] = {
    {"set_isa", set_isa, METH_O, "set_isa(name): force an instruction-set path (tests, benchmarks)."},
    {"set_split_policy", set_split_policy, METH_VARARGS,
     "set_split_policy(floor, pause): when the decoder leaves the two-part first layer, and for how many steps (tests)."},
    {"isa", get_isa, METH_NOARGS, "The instruction-set path in use."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {PyModuleDef_HEAD_INIT, "_kernel", "Compiled coding kernel of neuralzip.", -1,
                                           module_methods};

PyMODINIT_FUNC PyInit__kernel(void) {
    const char *forced = getenv("NEURALZIP_ISA");
    use_scalar16 = forced && strcmp(forced, "scalar") == 0; /* plain C everywhere: the reference path */
    active_isa = use_scalar16 ? ISA_BASELINE : isa_pick();
    if (active_isa < 0) {
        PyErr_Format(PyExc_ImportError, "NEURALZIP_ISA=%s: not an instruction-set path this CPU runs", forced);
        return NULL;
    }
    if (PyType_Ready(&ImageKernelType) < 0) return NULL;
    PyObject *m = PyModule_Create(&kernel_module);
    if (!m) return NULL;
    PyObject *paths = PyTuple_New(0);
    for (int i = 0; paths && i < ISA_COUNT; i++)
        if (isa_supported(i)) {
            PyObject *name = PyUnicode_FromString(ISA_NAMES[i]);
            if (!name || _PyTuple_Resize(&paths, PyTuple_GET_SIZE(paths) + 1) < 0) { Py_XDECREF(name); Py_XDECREF(paths); paths = NULL; break; }
            PyTuple_SET_ITEM(paths, PyTuple_GET_SIZE(paths) - 1, name);
        }
    if (!paths || PyModule_AddObject(m, "ISA_PATHS", paths) < 0 ||
        PyModule_AddStringConstant(m, "ISA", ISA_NAMES[active_isa]) < 0) { Py_XDECREF(paths); Py_DECREF(m); return NULL; }
    /* ISA: the path picked at import (or forced by $NEURALZIP_ISA); isa() the one in use */
    Py_INCREF(&ImageKernelType);
    if (PyModule_AddObject(m, "ImageKernel", (PyObject *)&ImageKernelType) < 0) {
        Py_DECREF(&ImageKernelType);
        Py_DECREF(m);
        return NULL;
    }
    PyObject *constants = Py_BuildValue(
        "{s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,"
        "s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "SKEW", SKEW, "N_FEATURES", N_FEATURES,
        "MAX_FEATURES", MAX_FEATURES,
        "LS_FRAC", LS_FRAC, "LS_BIAS_INPUT", LS_BIAS_INPUT, "LS_TOTAL", LS_TOTAL, "Q4", Q4, "ACT_FRAC", ACT_FRAC,
        "CDF_BITS", CDF_BITS, "T_FRAC", T_FRAC, "T_MAX", T_MAX, "INV_BITS", INV_BITS, "LOGSCALE_MIN", LOGSCALE_MIN,
        "LOGSCALE_MAX", LOGSCALE_MAX, "STAGE", STAGE, "ACT_MAX", ACT_MAX, "ACT_MAX16", ACT_MAX16,
        "OUT_ROWS", OUT_ROWS, "LOGIT_ROW", LOGIT_ROW, "MEAN_ROW", MEAN_ROW, "LOGSCALE_ROW", LOGSCALE_ROW,
        "COUPLING_ROW", COUPLING_ROW, "COUPLING_STEP", 1 << COUPLING_SHIFT, "LEVELS", LEVELS, "HALF_BIN_Q4", HALF_BIN_Q4,
        "OUT_LIMIT", (int)OUT_LIMIT, "MAX_COMPONENTS", MAX_K);
    if (!constants || PyModule_AddObject(m, "CONSTANTS", constants) < 0) { Py_XDECREF(constants); Py_DECREF(m); return NULL; }
    /* the layouts: neighbour offsets and LS design sizes, checked by kernel.py against units.py */
    PyObject *nb = PyList_New(0), *wide = PyList_New(0), *wide_res = PyList_New(0), *ls = PyList_New(0);
    PyObject *pairs = PyList_New(0);
    int ok = nb && wide && wide_res && ls && pairs;
    for (int j = 0; ok && j < N_NB; j++) ok = add_pair(nb, NB_DR[j], NB_DC[j]);
    for (int j = 0; ok && j < N_WIDE; j++) ok = add_pair(wide, WIDE_DR[j], WIDE_DC[j]);
    for (int j = 0; ok && j < 4; j++) ok = add_int(wide_res, WIDE_RES[j]);
    for (int j = 0; ok && j < 3; j++) ok = add_int(ls, LS_SIZES[j]);
    for (int j = 0; ok && j < N_COUPLINGS; j++) ok = add_pair(pairs, COUPLING_PAIRS[j][0], COUPLING_PAIRS[j][1]);
    PyObject *layouts = ok ? Py_BuildValue("{s:O,s:O,s:O,s:O,s:O,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i}", "NEIGHBOURS", nb,
                                           "WIDE_NEIGHBOURS", wide, "WIDE_RESIDUALS", wide_res, "LS_SIZES", ls,
                                           "COUPLING_PAIRS", pairs,
                                           "CUR_R", CUR_R, "CUR_G", CUR_G, "W_", W_, "N_", N_, "NW_", NW_, "NE_", NE_,
                                           "LOGIT_RANGE", LOGIT_RANGE, "WEIGHT_BITS", WEIGHT_BITS)
                          : NULL;
    Py_XDECREF(nb); Py_XDECREF(wide); Py_XDECREF(wide_res); Py_XDECREF(ls); Py_XDECREF(pairs);
    if (!layouts || PyModule_AddObject(m, "LAYOUTS", layouts) < 0) { Py_XDECREF(layouts); Py_DECREF(m); return NULL; }
    return m;
}
