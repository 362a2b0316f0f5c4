/* neuralzip.core._adapt: code length and gradients of the per-image adaptation, compiled.
 *
 * The encoder tunes the model's last two layers to each image (adapt.py) and stores what it
 * picks in the file, so its arithmetic decides the file's bytes. Everything here is
 * therefore a fixed sequence of IEEE-754 basic operations (+ - * / and exact scalings by
 * powers of two), in an order that depends on nothing but the inputs:
 *
 *  - no BLAS and no libm transcendental: exp and log are written below from basic
 *    operations (the C library's differ between platforms and versions);
 *  - every sum runs in one fixed order: within a pixel over the layer's inputs in index
 *    order; over pixels by fixed blocks of BLOCK rows, whose partial sums are added in
 *    block order whatever thread computed them;
 *  - no contraction into FMA (the build passes -ffp-contract=off) and no -ffast-math, so
 *    the clones for wider vector units (which vectorise across outputs, never across a
 *    sum) give the very same bits as the baseline.
 *
 * So the same inputs give the same bits on any x86-64 or ARM64 CPU and any thread count.
 * The mixture mirrors the kernel's tables (prepare/cdf in _kernel.c) in float64: logistic
 * CDF differences, tails into 0 and 255, channels coupled through earlier residuals.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* the mixture's layout (core/mixture.py; checked by adapt.py against it): rows of K
 * outputs, per channel c the logit at LOGIT_ROW + c, mean offset MEAN_ROW + c, log-scale
 * LOGSCALE_ROW + c; couplings alpha, beta, gamma at COUPLING_ROW + 0, 1, 2 */
#define OUT_ROWS 12
#define LOGIT_ROW 0
#define MEAN_ROW 3
#define LOGSCALE_ROW 6
#define COUPLING_ROW 9
#define MAX_K 32
#define MAX_HIDDEN 1024
#define BLOCK 128 /* rows per block: the unit of the fixed summation order */
#define MAX_THREADS 64
/* the mixture's units and bins (core/mixture.py; checked by adapt.py against it) */
#define LOGIT_STEP 16.0
#define LOGSCALE_STEP 32.0
#define LOGSCALE_MIN (-128)
#define LOGSCALE_MAX 192
#define Q4 16.0
#define COUPLING_STEP 256.0
/* (channel, earlier channel) of coupling rows COUPLING_ROW + 0, 1, 2: G from R, B from R, B from G */
#define N_COUPLINGS 3
static const int COUPLING_PAIRS[N_COUPLINGS][2] = {{1, 0}, {2, 0}, {2, 1}};
#define LEVELS 256
#define HALF_BIN 0.5
#define MIN_MASS 1e-10

#include "buffers.h"
#include "isa.h"

static int active_isa = ISA_BASELINE; /* set at import: isa.h */

/* ---- exp and log from basic operations ---------------------------------------------------
 * Both reduce the argument exactly (by a power of two) and evaluate a fixed polynomial by
 * Horner's rule: relative error below 1e-8, ample for a gradient estimate and a code
 * length compared against the header bytes, and the same bits everywhere. */

static const double LN2_HI = 6.93147180369123816490e-01; /* ln 2, high 32 bits: n * LN2_HI is exact */
static const double LN2_LO = 1.90821492927058770002e-10;
static const double LN2 = 0.69314718055994530942;

static double det_exp(double x) {
    if (x < -745.0) return 0.0;
    if (x > 709.0) x = 709.0;
    const double n = floor(x * (1.0 / LN2) + 0.5); /* |n| <= 1075: n * LN2_HI exact */
    const double r = (x - n * LN2_HI) - n * LN2_LO; /* |r| <= 0.347 */
    double p = 1.0 / 362880.0; /* Taylor to r**9 / 9!: remainder below 2e-11 */
    static const double inv_fact[9] = {1.0 / 40320.0, 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0,
                                       1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 9; i++) p = p * r + inv_fact[i];
    /* p * 2**n, exactly: 2**n is built from its bits (in two factors below 2**-1022) */
    int e = (int)n;
    if (e < -1000) { p *= 0x1p-600; e += 600; }
    const uint64_t bits = (uint64_t)(e + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static double det_log(double x) { /* x > 0 */
    int e;
    double m = frexp(x, &e); /* x = m * 2**e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) { m *= 2.0; e -= 1; }
    const double f = m - 1.0, s = f / (2.0 + f), s2 = s * s; /* |s| <= 0.172 */
    double p = 1.0 / 13.0; /* log(1 + f) = 2 atanh(s) = 2 (s + s**3 / 3 + ... + s**13 / 13): below 1e-12 */
    for (int i = 11; i >= 1; i -= 2) p = p * s2 + 1.0 / i;
    return e * LN2_HI + (e * LN2_LO + 2.0 * s * p);
}

static inline double det_sigmoid(double t) {
    if (t >= 0) return 1.0 / (1.0 + det_exp(-t));
    const double e = det_exp(t);
    return e / (1.0 + e);
}

/* log(sum(exp(x[i]))) of n values, and exp(x[i] - top) into ex. */
static double det_logsumexp(const double *x, int n, double *ex) {
    if (n < 1) return -INFINITY;
    double top = x[0], total = 0.0;
    for (int i = 1; i < n; i++) top = x[i] > top ? x[i] : top;
    for (int i = 0; i < n; i++) { ex[i] = det_exp(x[i] - top); total += ex[i]; }
    return top + det_log(total);
}

/* ---- the head: last hidden layer's clamp, output layer, mixture ------------------------ */

typedef struct {
    int n_hidden, n_out, components, channels, act_max;
    const float *before; /* (n, n_hidden) last hidden pre-activations, 2**-8 units, no bias offsets */
    const float *w, *wt; /* output weights (n_hidden, n_out) and transposed, outputs' units per 2**-8 */
    const double *bias; /* (n_out,) outputs' units */
    const int32_t *base, *pixels; /* (n, 3): LS prediction with earlier channels (q4), pixel values */
    const int64_t *rows; /* rows of the sample to use */
    int64_t n_rows;
    const double *hidden_offsets, *output_offsets, *gains; /* the variables */
    int want_grad;
    double *block_sums; /* per block: bits, then gradients (n_hidden + 2 n_out) */
} Head;

static inline int64_t n_blocks(const Head *h) { return (h->n_rows + BLOCK - 1) / BLOCK; }
static inline int sums_size(const Head *h) { return 1 + h->n_hidden + 2 * h->n_out; }

/* Bits of one pixel's coded channels from its outputs ``out`` (12, K); d bits / d out into
 * ``grad`` (12, K) if not NULL. */
static double mixture(const Head *h, const double *out, int32_t const *base, int32_t const *pixel, double *grad) {
    const int K = h->components;
    const double residual[2] = {Q4 * pixel[0] - base[0], Q4 * pixel[1] - base[1]}; /* of R and G (q4) */
    const double *coupling = out + COUPLING_ROW * K;
    double *d_coupling = grad ? grad + COUPLING_ROW * K : NULL;
    double bits = 0.0;
    if (grad) memset(grad, 0, sizeof(double) * OUT_ROWS * K);
    for (int ch = 0; ch < h->channels; ch++) {
        double logits[MAX_K], ex[MAX_K], joint[MAX_K], d_logscale[MAX_K], d_mean[MAX_K];
        for (int k = 0; k < K; k++) logits[k] = out[(LOGIT_ROW + ch) * K + k] / LOGIT_STEP;
        const double log_norm = det_logsumexp(logits, K, ex);
        const double value = pixel[ch];
        for (int k = 0; k < K; k++) {
            double coupled = 0.0; /* ch's coupling rows in row order, rounded: 0 for channel 0 */
            for (int r = 0; r < N_COUPLINGS; r++)
                if (COUPLING_PAIRS[r][0] == ch) coupled += coupling[r * K + k] * residual[COUPLING_PAIRS[r][1]];
            coupled = floor((coupled + COUPLING_STEP / 2) / COUPLING_STEP);
            const double mean = (base[ch] + out[(MEAN_ROW + ch) * K + k] + coupled) / Q4;
            const double raw = out[(LOGSCALE_ROW + ch) * K + k];
            const double log_scale = (raw < LOGSCALE_MIN ? LOGSCALE_MIN : raw > LOGSCALE_MAX ? LOGSCALE_MAX : raw) / LOGSCALE_STEP;
            const double inv = det_exp(-log_scale);
            const double upper_t = (value + HALF_BIN - mean) * inv, lower_t = (value - HALF_BIN - mean) * inv;
            const double upper = value >= LEVELS - 1 ? 1.0 : det_sigmoid(upper_t);
            const double lower = value <= 0 ? 0.0 : det_sigmoid(lower_t);
            const double diff = upper - lower, mass = diff > MIN_MASS ? diff : MIN_MASS;
            joint[k] = det_log(mass) + (logits[k] - log_norm);
            if (!grad) continue;
            const double dens_u = value >= LEVELS - 1 ? 0.0 : upper * (1.0 - upper);
            const double dens_l = value <= 0 ? 0.0 : lower * (1.0 - lower);
            const int live = diff > MIN_MASS, in_range = raw >= LOGSCALE_MIN && raw <= LOGSCALE_MAX;
            d_mean[k] = live ? (dens_l - dens_u) * inv / mass : 0.0; /* d log mass / d mean */
            d_logscale[k] = live && in_range ? (-upper_t * dens_u + lower_t * dens_l) / mass : 0.0;
        }
        double shifted[MAX_K]; /* exp(joint - its top) */
        const double total = det_logsumexp(joint, K, shifted);
        bits -= total / LN2;
        if (!grad) continue;
        double norm = 0.0, mass_sum = 0.0; /* prior weights: exp(logit - top) normalised; posteriors likewise */
        for (int k = 0; k < K; k++) { norm += ex[k]; mass_sum += shifted[k]; }
        for (int k = 0; k < K; k++) {
            const double post = shifted[k] / mass_sum, weight = ex[k] / norm;
            const double scale = -post / LN2; /* d bits / d log mass_k */
            grad[(LOGIT_ROW + ch) * K + k] = -(post - weight) / LN2 / LOGIT_STEP;
            grad[(MEAN_ROW + ch) * K + k] = scale * d_mean[k] / Q4;
            grad[(LOGSCALE_ROW + ch) * K + k] = scale * d_logscale[k] / LOGSCALE_STEP;
            for (int r = 0; r < N_COUPLINGS; r++)
                if (COUPLING_PAIRS[r][0] == ch)
                    d_coupling[r * K + k] += scale * d_mean[k] / Q4 * residual[COUPLING_PAIRS[r][1]] / COUPLING_STEP;
        }
    }
    return bits;
}

/* Bits and gradient sums of one block of rows into its slot of block_sums. */
static inline __attribute__((always_inline)) void head_block_body(const Head *h, int64_t block) {
    const int H = h->n_hidden, O = h->n_out;
    double *sums = h->block_sums + block * sums_size(h);
    memset(sums, 0, sizeof(double) * sums_size(h));
    double *g_hidden = sums + 1, *g_out = g_hidden + H, *g_gain = g_out + O;
    float hidden[MAX_HIDDEN], weighted[OUT_ROWS * MAX_K], scaled[OUT_ROWS * MAX_K], d_hidden[MAX_HIDDEN];
    double pre[MAX_HIDDEN], out[OUT_ROWS * MAX_K], d_out[OUT_ROWS * MAX_K];
    const int64_t end = (block + 1) * BLOCK < h->n_rows ? (block + 1) * BLOCK : h->n_rows;
    for (int64_t i = block * BLOCK; i < end; i++) {
        const int64_t row = h->rows[i];
        const float *before = h->before + row * H;
        for (int u = 0; u < H; u++) {
            pre[u] = (double)before[u] + h->hidden_offsets[u];
            hidden[u] = (float)(pre[u] < 0 ? 0.0 : pre[u] > h->act_max ? (double)h->act_max : pre[u]);
        }
        for (int o = 0; o < O; o++) weighted[o] = 0.0f;
        for (int u = 0; u < H; u++) { /* over inputs in order; vectorised across outputs only */
            const float x = hidden[u];
            if (x == 0.0f) continue; /* adds exactly nothing */
            const float *w = h->w + (size_t)u * O;
            for (int o = 0; o < O; o++) weighted[o] += x * w[o];
        }
        for (int o = 0; o < O; o++)
            out[o] = nearbyint((double)weighted[o] * (1.0 + h->gains[o] / 256.0) + h->bias[o]) + h->output_offsets[o];
        sums[0] += mixture(h, out, h->base + row * 3, h->pixels + row * 3, h->want_grad ? d_out : NULL);
        if (!h->want_grad) continue;
        for (int o = 0; o < O; o++) {
            g_out[o] += d_out[o];
            g_gain[o] += d_out[o] * weighted[o] / 256.0;
            scaled[o] = (float)(d_out[o] * (1.0 + h->gains[o] / 256.0));
        }
        for (int u = 0; u < H; u++) d_hidden[u] = 0.0f;
        for (int o = 0; o < O; o++) { /* over outputs in order; vectorised across hidden units */
            const float s = scaled[o];
            const float *wt = h->wt + (size_t)o * H;
            for (int u = 0; u < H; u++) d_hidden[u] += s * wt[u];
        }
        for (int u = 0; u < H; u++)
            if (pre[u] > 0 && pre[u] < h->act_max) g_hidden[u] += d_hidden[u];
    }
}

ISA_CLONES(void, head_block, (const Head *h, int64_t block), (h, block))

typedef struct { const Head *h; int thread, threads; } Worker;

static void *head_worker(void *arg) {
    const Worker *w = arg;
    for (int64_t b = w->thread; b < n_blocks(w->h); b += w->threads) head_block_paths[active_isa](w->h, b);
    return NULL;
}

/* ---- Python entry point ----------------------------------------------------------------------- */

static PyObject *head_bits(PyObject *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"before", "weights", "weights_t", "bias", "base", "pixels", "rows", "hidden_offsets",
                             "output_offsets", "gains", "components", "channels", "act_max", "threads", "grad", NULL};
    PyObject *before_o, *w_o, *wt_o, *bias_o, *base_o, *pixels_o, *rows_o, *hidden_o, *output_o, *gains_o, *grad_o;
    int components, channels, act_max, threads;
    (void)self;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOOiiiiO", kwlist, &before_o, &w_o, &wt_o, &bias_o, &base_o,
                                     &pixels_o, &rows_o, &hidden_o, &output_o, &gains_o, &components, &channels,
                                     &act_max, &threads, &grad_o))
        return NULL;
    if (components < 1 || components > MAX_K || channels < 1 || channels > 3 || threads < 1 || act_max < 1) {
        PyErr_SetString(PyExc_ValueError, "bad components, channels or threads");
        return NULL;
    }
    enum { BIAS, HIDDEN, W, WT, OUTPUT, GAINS, BEFORE, BASE, PIXELS, ROWS, GRAD, N_VIEWS };
    Py_buffer v[N_VIEWS];
    memset(v, 0, sizeof v); /* a view never acquired releases as nothing */
    int got = 0;
    PyObject *result = NULL;
    const int O = OUT_ROWS * components;
    /* the hidden width and the sample size come from the buffers, checked against each other */
    if (get_buffer(bias_o, &v[got++], 'd', O, 0, "bias") < 0 || get_buffer(hidden_o, &v[got++], 'd', -1, 0, "hidden offsets") < 0) goto fail;
    const Py_ssize_t H = v[HIDDEN].len / 8;
    if (H < 1 || H > MAX_HIDDEN) { PyErr_SetString(PyExc_ValueError, "bad hidden layer width"); goto fail; }
    if (get_buffer(w_o, &v[got++], 'f', H * O, 0, "weights") < 0 || get_buffer(wt_o, &v[got++], 'f', H * O, 0, "transposed weights") < 0 ||
        get_buffer(output_o, &v[got++], 'd', O, 0, "output offsets") < 0 || get_buffer(gains_o, &v[got++], 'd', O, 0, "gains") < 0 ||
        get_buffer(before_o, &v[got++], 'f', -1, 0, "pre-activations") < 0)
        goto fail;
    const Py_ssize_t n = v[BEFORE].len / 4 / H;
    if (n * H * 4 != v[BEFORE].len) { PyErr_SetString(PyExc_ValueError, "pre-activations: not (n, hidden)"); goto fail; }
    if (get_buffer(base_o, &v[got++], 'i', n * 3, 0, "base") < 0 || get_buffer(pixels_o, &v[got++], 'i', n * 3, 0, "pixels") < 0 ||
        get_buffer(rows_o, &v[got++], 'q', -1, 0, "rows") < 0)
        goto fail;
    const int64_t *rows = v[ROWS].buf, n_rows = v[ROWS].len / 8;
    for (int64_t i = 0; i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= n) { PyErr_SetString(PyExc_IndexError, "row out of the sample"); goto fail; }
    const int32_t *pixels = v[PIXELS].buf;
    for (Py_ssize_t i = 0; i < n * 3; i++)
        if (pixels[i] < 0 || pixels[i] > LEVELS - 1) { PyErr_SetString(PyExc_ValueError, "pixel values must be 0..255"); goto fail; }
    const int want_grad = grad_o != Py_None;
    if (want_grad && get_buffer(grad_o, &v[got++], 'd', H + 2 * O, 1, "gradient") < 0) goto fail;
    Head h = {(int)H, O, components, channels, act_max, v[BEFORE].buf, v[W].buf, v[WT].buf, v[BIAS].buf, v[BASE].buf, pixels,
              rows, n_rows, v[HIDDEN].buf, v[OUTPUT].buf, v[GAINS].buf, want_grad, NULL};
    const int64_t blocks = n_blocks(&h);
    const int size = sums_size(&h);
    h.block_sums = malloc(sizeof(double) * (size_t)(blocks > 0 ? blocks : 1) * size);
    if (!h.block_sums) { PyErr_NoMemory(); goto fail; }
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (threads > blocks) threads = blocks > 0 ? (int)blocks : 1;
    Py_BEGIN_ALLOW_THREADS
    pthread_t ids[MAX_THREADS];
    Worker workers[MAX_THREADS];
    int started = 0;
    for (int t = 0; t < threads; t++) workers[t] = (Worker){&h, t, threads};
    for (int t = 1; t < threads; t++) { /* a thread the system refuses: its blocks run here */
        if (pthread_create(&ids[t], NULL, head_worker, &workers[t]) != 0) break;
        started = t;
    }
    for (int t = started + 1; t < threads; t++) head_worker(&workers[t]);
    head_worker(&workers[0]);
    for (int t = 1; t <= started; t++) pthread_join(ids[t], NULL);
    Py_END_ALLOW_THREADS
    double bits = 0.0, *grad = want_grad ? v[GRAD].buf : NULL;
    if (grad) memset(grad, 0, sizeof(double) * (size - 1));
    for (int64_t b = 0; b < blocks; b++) { /* in block order: the same sums for any thread count */
        const double *sums = h.block_sums + b * size;
        bits += sums[0];
        if (grad)
            for (int i = 1; i < size; i++) grad[i - 1] += sums[i];
    }
    free(h.block_sums);
    result = PyFloat_FromDouble(bits);
fail:
    for (int i = 0; i < N_VIEWS; i++) PyBuffer_Release(&v[i]);
    return result;
}

static PyObject *py_det_exp(PyObject *self, PyObject *arg) {
    (void)self;
    const double x = PyFloat_AsDouble(arg);
    return x == -1.0 && PyErr_Occurred() ? NULL : PyFloat_FromDouble(det_exp(x));
}

static PyObject *py_det_log(PyObject *self, PyObject *arg) {
    (void)self;
    const double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred()) return NULL;
    if (!(x > 0) || isinf(x)) { PyErr_SetString(PyExc_ValueError, "log of a value that is not positive and finite"); return NULL; }
    return PyFloat_FromDouble(det_log(x));
}

static PyMethodDef methods[] = {
    {"head_bits", (PyCFunction)(void (*)(void))head_bits, METH_VARARGS | METH_KEYWORDS,
     "head_bits(before, weights, weights_t, bias, base, pixels, rows, hidden_offsets, output_offsets, gains,\n"
     "          components, channels, act_max, threads, grad) -> bits of the sample rows; d bits / d variables into grad\n"
     "(float64: hidden offsets, output offsets, gains) unless it is None. The same bits on every machine."},
    {"exp", py_det_exp, METH_O, "exp(x) from basic IEEE operations: the same bits on every machine."},
    {"log", py_det_log, METH_O, "log(x), x > 0, from basic IEEE operations: the same bits on every machine."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_adapt", "Deterministic gradients of the per-image adaptation.", -1, methods};

PyMODINIT_FUNC PyInit__adapt(void) {
    active_isa = isa_pick();
    if (active_isa < 0) {
        PyErr_Format(PyExc_ImportError, "NEURALZIP_ISA=%s: not an instruction-set path this CPU runs", getenv("NEURALZIP_ISA"));
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddStringConstant(m, "ISA", ISA_NAMES[active_isa]) < 0) { Py_DECREF(m); return NULL; }
    PyObject *constants = Py_BuildValue(
        "{s:d,s:d,s:i,s:i,s:d,s:d,s:i,s:d,s:d,s:i,s:i,s:i,s:i,s:i,s:i,s:[[ii][ii][ii]]}", "LOGIT_STEP", LOGIT_STEP, "LOGSCALE_STEP",
        LOGSCALE_STEP, "LOGSCALE_MIN", LOGSCALE_MIN, "LOGSCALE_MAX", LOGSCALE_MAX, "Q4", Q4, "COUPLING_STEP",
        COUPLING_STEP, "LEVELS", LEVELS, "HALF_BIN", HALF_BIN, "MIN_MASS", MIN_MASS, "OUT_ROWS", OUT_ROWS, "LOGIT_ROW",
        LOGIT_ROW, "MEAN_ROW", MEAN_ROW, "LOGSCALE_ROW", LOGSCALE_ROW, "COUPLING_ROW", COUPLING_ROW, "MAX_COMPONENTS",
        MAX_K, "COUPLING_PAIRS", COUPLING_PAIRS[0][0], COUPLING_PAIRS[0][1], COUPLING_PAIRS[1][0], COUPLING_PAIRS[1][1],
        COUPLING_PAIRS[2][0], COUPLING_PAIRS[2][1]);
    if (!constants || PyModule_AddObject(m, "CONSTANTS", constants) < 0) { Py_XDECREF(constants); Py_DECREF(m); return NULL; }
    return m;
}
