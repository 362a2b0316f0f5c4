/* Instruction-set paths of neuralzip's compiled modules, picked at run time.
 *
 * A hot function is written once, as an always-inline body, and stamped out by
 * ISA_CLONES for each path this compiler can target: on x86-64 the baseline (SSE2),
 * x86-64-v3 (AVX2, FMA, BMI2), x86-64-v4 (AVX-512 F/BW/CD/DQ/VL) and x86-64-v4-vnni (v4
 * with AVX512-VNNI, which only the int16 layers use: other hot functions run their v4 clone
 * there); elsewhere only the baseline ("aarch64": NEON, which every aarch64 CPU has, where
 * arith.h has NEON code).
 * Nothing depends on the build machine's CPU (no -march=native). At import the module
 * picks the widest path this CPU runs, or the one named by $NEURALZIP_ISA ("scalar",
 * "x86-64", "x86-64-v3", "x86-64-v4", "x86-64-v4-vnni", "aarch64"; tests and benchmarks
 * force each in turn).
 *
 * Every path gives the same bits: integer arithmetic, and float arithmetic without
 * contraction into FMA (the build passes -ffp-contract=off) whose sums run in one
 * fixed order; vectors only ever span independent outputs.
 */
#ifndef NEURALZIP_ISA_H
#define NEURALZIP_ISA_H

#include <stdlib.h>
#include <string.h>

enum { ISA_BASELINE, ISA_V3, ISA_V4, ISA_V4_VNNI, ISA_COUNT };
#if defined(__aarch64__) && defined(__ARM_NEON)
#define ISA_NEON 1 /* NEON is part of every aarch64 CPU: the baseline path uses it */
static const char *const ISA_NAMES[ISA_COUNT] = {"aarch64", "", "", ""};
#else
#define ISA_NEON 0
static const char *const ISA_NAMES[ISA_COUNT] = {"x86-64", "x86-64-v3", "x86-64-v4", "x86-64-v4-vnni"};
#endif

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define ISA_X86 1
#define ISA_CLONES(ret, name, params, args)                                                          \
    static ret name##_baseline params { return name##_body args; }                                   \
    __attribute__((target("arch=x86-64-v3"))) static ret name##_v3 params { return name##_body args; } \
    __attribute__((target("arch=x86-64-v4"))) static ret name##_v4 params { return name##_body args; } \
    static ret(*const name##_paths[ISA_COUNT]) params = {name##_baseline, name##_v3, name##_v4, name##_v4};
#else
#define ISA_X86 0
#define ISA_CLONES(ret, name, params, args)                       \
    static ret name##_baseline params { return name##_body args; } \
    static ret(*const name##_paths[ISA_COUNT]) params = {name##_baseline, name##_baseline, name##_baseline, name##_baseline};
#endif

/* Whether this CPU runs path ``isa``. */
static int isa_supported(int isa) {
    if (isa == ISA_BASELINE) return 1;
#if ISA_X86
    __builtin_cpu_init();
    if (isa == ISA_V3) return __builtin_cpu_supports("x86-64-v3") > 0;
    if (isa == ISA_V4) return __builtin_cpu_supports("x86-64-v4") > 0;
    if (isa == ISA_V4_VNNI) return __builtin_cpu_supports("x86-64-v4") > 0 && __builtin_cpu_supports("avx512vnni") > 0;
#endif
    return 0;
}

/* The path to use: $NEURALZIP_ISA if set (-1 if it names an unknown path or one this CPU
 * lacks; "scalar" is the baseline, with plain C loops where a module has them), else the
 * widest this CPU runs. */
static int isa_pick(void) {
    const char *forced = getenv("NEURALZIP_ISA");
    if (forced && strcmp(forced, "scalar") == 0) return ISA_BASELINE;
    if (forced && *forced) {
        for (int i = 0; i < ISA_COUNT; i++)
            if (strcmp(forced, ISA_NAMES[i]) == 0) return isa_supported(i) ? i : -1;
        return -1;
    }
    for (int i = ISA_COUNT - 1; i > 0; i--)
        if (isa_supported(i)) return i;
    return ISA_BASELINE;
}

#endif
