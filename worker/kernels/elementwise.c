// RMSNorm and SiLU(gate) * up over bf16 rows, one pass each, OpenMP over rows when large.
//
// Why: in torch each is 3-4 ops (RMSNorm: to fp32, normalise, to bf16, times the weight;
// SwiGLU: chunk, silu, mul): per decode step that is ~200 op calls, and in a prefill each
// op is another trip through memory for tensors larger than the caches.
//
// Rounding follows the torch ops replaced (the Hugging Face Llama recipe): RMSNorm
// normalises in fp32, rounds to bf16, then multiplies by the bf16 weight and rounds;
// SiLU is computed in fp32 and rounded, then multiplied by `up` and rounded.

#include <math.h>

#include "simd.h"

#define PARALLEL_FROM 32768  // elements: below, one thread (no fork/join for a decode row)

// out [R, D] = round(round(x / rms(x)) * weight); D a multiple of 16.
int rms_norm(const uint16_t *x, int64_t R, int64_t D, const uint16_t *weight, float eps,
             uint16_t *out) {
    if (D % 16) return -1;
#pragma omp parallel for schedule(static) if (R * D >= PARALLEL_FROM)
    for (int64_t r = 0; r < R; r++) {
        const uint16_t *xr = x + r * D;
        __m512 ss = _mm512_setzero_ps();
        for (int64_t i = 0; i < D; i += 16) {
            const __m512 v = load_bf16(xr + i);
            ss = _mm512_fmadd_ps(v, v, ss);
        }
        const __m512 inv = _mm512_set1_ps(1.0f / sqrtf(_mm512_reduce_add_ps(ss) / (float)D + eps));
        for (int64_t i = 0; i < D; i += 16) {
            const __m512 h = round_bf16(_mm512_mul_ps(load_bf16(xr + i), inv));
            store_bf16(out + r * D + i, _mm512_mul_ps(h, load_bf16(weight + i)));
        }
    }
    return 0;
}

// gate_up [R, 2I] (gate then up per row) -> out [R, I] = round(round(silu(gate)) * up).
int silu_mul(const uint16_t *gate_up, int64_t R, int64_t I, uint16_t *out) {
    if (I % 16) return -1;
#pragma omp parallel for schedule(static) if (R * I >= PARALLEL_FROM)
    for (int64_t r = 0; r < R; r++) {
        const uint16_t *g = gate_up + r * 2 * I, *u = g + I;
        for (int64_t i = 0; i < I; i += 16) {
            const __m512 gv = load_bf16(g + i);
            const __m512 s = _mm512_div_ps(
                gv, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), gv))));
            store_bf16(out + r * I + i, _mm512_mul_ps(round_bf16(s), load_bf16(u + i)));
        }
    }
    return 0;
}
