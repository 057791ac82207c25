// The attention half of a decode step (one new token per sequence) in two calls per layer,
// bf16 in and out, fp32 arithmetic, OpenMP over sequences and KV heads.
//
// Why: in torch it is ~12 small ops per layer (rotary: flip/mul/mul/add; two index_put
// writes into the cache; slicing, mask, SDPA, reshapes), each paying Python and dispatch
// time; at batch 16 those calls, not arithmetic, were a third of the step.
//
// Rounding follows the torch ops it replaces: rotary products and their sum are rounded to
// bf16 as bf16 tensor ops do; attention accumulates q.k, softmax and p.v in fp32 and rounds
// once.
//
// Shapes: qkv bf16 [B, (H + 2 * KVH) * D] (q heads, then k heads, then v heads); cos, sin
// bf16 [B, D] (sin's first half already negated: rotate-half is then a swap of halves);
// caches bf16 [slots, KVH, max_len, D] (one layer); slots, positions int64 [B].

#include <math.h>
#include <string.h>

#include "simd.h"

static inline float bf16_to_f32(uint16_t v) {
    union { uint32_t u; float f; } c = {.u = (uint32_t)v << 16};
    return c.f;
}

static inline uint16_t f32_to_bf16(float f) {  // round to nearest even, as torch does
    union { uint32_t u; float f; } c = {.f = f};
    if ((c.u & 0x7fffffff) > 0x7f800000) return (uint16_t)((c.u >> 16) | 0x40);  // NaN
    return (uint16_t)((c.u + 0x7fff + ((c.u >> 16) & 1)) >> 16);
}

static inline float round_to_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

// x (D values) rotated: out[i] = round(round(x[i] * cos[i]) + round(x[swap(i)] * sin[i])).
static inline void rotate(const uint16_t *x, const uint16_t *cos, const uint16_t *sin,
                          int64_t D, uint16_t *out) {
    const int64_t half = D / 2;
    for (int64_t i = 0; i < D; i++) {
        const int64_t j = i < half ? i + half : i - half;
        const float a = round_to_bf16(bf16_to_f32(x[i]) * bf16_to_f32(cos[i]));
        const float b = round_to_bf16(bf16_to_f32(x[j]) * bf16_to_f32(sin[i]));
        out[i] = f32_to_bf16(a + b);
    }
}

// Rotates q and k of each row, writes k and v at (slot, head, position) of the caches and
// q to q_out [B, H, D]. Returns -1 on a position outside the cache.
int rope_write_kv(const uint16_t *qkv, int64_t B, int64_t H, int64_t KVH, int64_t D,
                  const uint16_t *cos, const uint16_t *sin, uint16_t *k_cache,
                  uint16_t *v_cache, int64_t max_len, const int64_t *slots,
                  const int64_t *positions, uint16_t *q_out) {
    for (int64_t b = 0; b < B; b++)
        if (positions[b] < 0 || positions[b] >= max_len) return -1;
    const int64_t row = (H + 2 * KVH) * D;
#pragma omp parallel for schedule(static) if (B * (H + KVH) >= 64)
    for (int64_t b = 0; b < B; b++) {
        const uint16_t *x = qkv + b * row, *c = cos + b * D, *s = sin + b * D;
        for (int64_t h = 0; h < H; h++) rotate(x + h * D, c, s, D, q_out + (b * H + h) * D);
        for (int64_t h = 0; h < KVH; h++) {
            const int64_t at = ((slots[b] * KVH + h) * max_len + positions[b]) * D;
            rotate(x + (H + h) * D, c, s, D, k_cache + at);
            memcpy(v_cache + at, x + (H + KVH + h) * D, (size_t)D * sizeof(uint16_t));
        }
    }
    return 0;
}

#define MAX_GROUP 8   // query heads per KV head
#define MAX_CHUNKS 8  // head_dim / 16

// Softmax in place over n scores; returns their sum (the normaliser).
static float softmax_unnormalised(float *s, int64_t n) {
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) m = s[i] > m ? s[i] : m;
    __m512 sum = _mm512_setzero_ps();
    const __m512 mv = _mm512_set1_ps(m);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_loadu_ps(s + i), mv));
        _mm512_storeu_ps(s + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < n) {
        const __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 e = exp_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), mv));
        _mm512_mask_storeu_ps(s + i, k, e);
        sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(k, e));
    }
    return _mm512_reduce_add_ps(sum);
}

// out [B, H * D] = softmax(q . K^T * scale) . V over cache positions 0..lengths[b]-1 of
// slots[b]; query head h reads KV head h / (H / KVH), and the H / KVH heads sharing a KV head
// share each read of its K and V rows. Needs D % 16 == 0, D <= 128, H / KVH <= 8; scratch:
// at least B * KVH * (H / KVH) * max_len floats. Returns -1 when a limit is not met.
int decode_attention(const uint16_t *q, int64_t B, int64_t H, int64_t KVH, int64_t D,
                     const uint16_t *k_cache, const uint16_t *v_cache, int64_t max_len,
                     const int64_t *slots, const int64_t *lengths, float scale, float *scratch,
                     uint16_t *out) {
    if (D % 16 || D > 16 * MAX_CHUNKS || H % KVH || H / KVH > MAX_GROUP) return -1;
    for (int64_t b = 0; b < B; b++)
        if (lengths[b] < 1 || lengths[b] > max_len) return -1;
    const int64_t G = H / KVH, chunks = D / 16;
#pragma omp parallel for collapse(2) schedule(dynamic, 1)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t kv = 0; kv < KVH; kv++) {
            const int64_t L = lengths[b], base = (slots[b] * KVH + kv) * max_len * D;
            const uint16_t *K = k_cache + base, *V = v_cache + base;
            float *scores = scratch + (b * KVH + kv) * G * max_len;  // [G, L]
            __m512 qv[MAX_GROUP][MAX_CHUNKS], acc[MAX_GROUP][MAX_CHUNKS];
            for (int64_t g = 0; g < G; g++)
                for (int64_t c = 0; c < chunks; c++) {
                    qv[g][c] = _mm512_mul_ps(load_bf16(q + (b * H + kv * G + g) * D + c * 16),
                                             _mm512_set1_ps(scale));
                    acc[g][c] = _mm512_setzero_ps();
                }
            for (int64_t l = 0; l < L; l++) {
                __m512 kf[MAX_CHUNKS];
                for (int64_t c = 0; c < chunks; c++) kf[c] = load_bf16(K + l * D + c * 16);
                for (int64_t g = 0; g < G; g++) {
                    __m512 dot = _mm512_mul_ps(qv[g][0], kf[0]);
                    for (int64_t c = 1; c < chunks; c++) dot = _mm512_fmadd_ps(qv[g][c], kf[c], dot);
                    scores[g * L + l] = _mm512_reduce_add_ps(dot);
                }
            }
            float denom[MAX_GROUP];
            for (int64_t g = 0; g < G; g++) denom[g] = softmax_unnormalised(scores + g * L, L);
            for (int64_t l = 0; l < L; l++) {
                __m512 vf[MAX_CHUNKS];
                for (int64_t c = 0; c < chunks; c++) vf[c] = load_bf16(V + l * D + c * 16);
                for (int64_t g = 0; g < G; g++) {
                    const __m512 p = _mm512_set1_ps(scores[g * L + l]);
                    for (int64_t c = 0; c < chunks; c++) acc[g][c] = _mm512_fmadd_ps(p, vf[c], acc[g][c]);
                }
            }
            for (int64_t g = 0; g < G; g++) {
                const __m512 inv = _mm512_set1_ps(1.0f / denom[g]);
                uint16_t *o = out + (b * H + kv * G + g) * D;
                for (int64_t c = 0; c < chunks; c++)
                    store_bf16(o + c * 16, _mm512_mul_ps(acc[g][c], inv));
            }
        }
    }
    return 0;
}
