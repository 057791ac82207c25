// Weight-only quantised GEMM for decode-sized batches: y[M, N] = x[M, K] @ W[N, K]^T with
// x and y bf16, W int4 or int8, 1 <= M <= 32, on AMX (Intel Sapphire Rapids and later).
//
// Why: a decode step of a small model reads every weight once per step, so for a batch of
// decodes its speed is the bytes of weight read. oneDNN's bf16 GEMM reads 2 bytes per
// weight; torch's int4/int8 CPU kernels read less but dequantise again for every few rows
// and lose to bf16 from ~8 rows. Here each weight is dequantised once per call, to bf16 in
// a 1 KiB tile buffer, and the AMX tile unit multiplies it with all M rows at once.
//
// Layouts (written by worker/kernels/__init__.py; N padded to a multiple of 16). The tile
// B of TDPBF16PS holds, per row, the pairs (W[n, k], W[n, k+1]) of 16 output channels n,
// so weights are stored by [block of 16 channels, pair of k, channel]:
//   int4: uint8 [N/16, K/32 groups, 16 pairs, 16 channels]: byte = q[n, k] | q[n, k+1] << 4;
//         w = q * scale + low per channel and group of 32 along K (GGUF's Q4_1).
//         scales: bf16 [N/16, K/32, 2, 16]: scale then low of each channel.
//   int8: int8 [N/16, K/2 pairs, 16 channels, 2]; w = q * scale[n] (symmetric per channel).
//         scales: fp32 [N].
// Threads: OpenMP over blocks of 16 channels, on torch's libgomp pool (loaded first).

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "simd.h"

#define LANES 16
#define GROUP 32
#define MAX_ROWS 32
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

// Tile registers (literal numbers: the intrinsics paste them into the instruction).
#define C0 0
#define C1 1
#define A0 2
#define A1 3
#define B 4

// gcc's tile intrinsics are asm statements that do not tell the compiler they read or write
// memory: without this fence it drops the stores into `tile` and reorders reads of `acc`.
#define MEMORY_FENCE() __asm__ __volatile__("" ::: "memory")

typedef struct {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

// Asks the kernel for the AMX tile state (oneDNN does the same); 0 when granted.
int qgemm_init(void) { return (int)syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); }

static void configure(int64_t M) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    const uint8_t r0 = M < 16 ? (uint8_t)M : 16, r1 = M > 16 ? (uint8_t)(M - 16) : 0;
    cfg.rows[C0] = cfg.rows[A0] = r0;
    cfg.rows[C1] = cfg.rows[A1] = r1;
    cfg.rows[B] = 16;
    cfg.colsb[C0] = cfg.colsb[A0] = cfg.colsb[B] = 64;
    cfg.colsb[C1] = cfg.colsb[A1] = r1 ? 64 : 0;
    MEMORY_FENCE();
    _tile_loadconfig(&cfg);
}

// w0 (k even) and w1 (k odd) of 16 channels -> 32 bf16 in B-row order (w0[0], w1[0], ...).
static inline void store_pairs(uint16_t *row, __m512 w0, __m512 w1, __m512i interleave) {
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(w1, w0);  // [w0 x16, w1 x16]
    _mm512_store_si512(row, _mm512_permutexvar_epi16(interleave, both));
}

static inline __m512i interleave_index(void) {
    uint16_t idx[32];
    for (int i = 0; i < 16; i++) idx[2 * i] = (uint16_t)i, idx[2 * i + 1] = (uint16_t)(16 + i);
    return _mm512_loadu_si512(idx);
}

static inline void dequant_q4(const uint8_t *q, const uint16_t *sl, uint16_t *tile, __m512i il) {
    const __m512 scale = load_bf16(sl), low = load_bf16(sl + LANES);
    const __m512i nibble = _mm512_set1_epi32(0xF);
    for (int p = 0; p < GROUP / 2; p++) {
        __m512i t = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + p * LANES)));
        __m512 w0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_and_si512(t, nibble)), scale, low);
        __m512 w1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(t, 4)), scale, low);
        store_pairs(tile + p * 2 * LANES, w0, w1, il);
    }
}

static inline void dequant_q8(const int8_t *q, uint16_t *tile, __m512i il) {
    for (int p = 0; p < GROUP / 2; p++) {  // |q| <= 127: exact in bf16; scaled at the end
        __m512i v = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(q + p * 2 * LANES)));
        __m512 w0 = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 16));
        __m512 w1 = _mm512_cvtepi32_ps(_mm512_srai_epi32(v, 16));
        store_pairs(tile + p * 2 * LANES, w0, w1, il);
    }
}

// One block of 16 channels: C = sum over groups of A(x rows, group) x B(dequantised group).
static inline void block(const uint16_t *x, int64_t M, int64_t K, const void *qb,
                         const uint16_t *slb, const float *scale8, uint16_t *y, int64_t n_pad,
                         int is_q4, __m512i il) {
    uint16_t tile[GROUP / 2 * 2 * LANES] __attribute__((aligned(64)));
    float acc[MAX_ROWS * LANES] __attribute__((aligned(64)));
    const int64_t G = K / GROUP, ldx = K * 2;
    _tile_zero(C0);
    if (M > 16) _tile_zero(C1);
    for (int64_t g = 0; g < G; g++) {
        if (is_q4)
            dequant_q4((const uint8_t *)qb + g * (GROUP / 2) * LANES, slb + g * 2 * LANES, tile, il);
        else
            dequant_q8((const int8_t *)qb + g * GROUP * LANES, tile, il);
        MEMORY_FENCE();
        _tile_loadd(B, tile, 64);
        _tile_loadd(A0, x + g * GROUP, ldx);
        _tile_dpbf16ps(C0, A0, B);
        if (M > 16) {
            _tile_loadd(A1, x + 16 * K + g * GROUP, ldx);
            _tile_dpbf16ps(C1, A1, B);
        }
    }
    _tile_stored(C0, acc, 64);
    if (M > 16) _tile_stored(C1, acc + 16 * LANES, 64);
    MEMORY_FENCE();
    const __m512 s = scale8 ? _mm512_loadu_ps(scale8) : _mm512_set1_ps(1.0f);
    for (int64_t m = 0; m < M; m++) {
        __m512 v = _mm512_mul_ps(_mm512_load_ps(acc + m * LANES), s);
        _mm256_storeu_si256((__m256i *)(y + m * n_pad), (__m256i)_mm512_cvtneps_pbh(v));
    }
}

static int run(const uint16_t *x, int64_t M, int64_t K, const void *q, const void *scales,
               int64_t n_pad, uint16_t *y, int is_q4) {
    if (M <= 0 || M > MAX_ROWS || K % GROUP || n_pad % LANES) return -1;
    const int64_t blocks = n_pad / LANES, G = K / GROUP;
#pragma omp parallel
    {
        const __m512i il = interleave_index();
        configure(M);
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (is_q4)
                block(x, M, K, (const uint8_t *)q + b * G * (GROUP / 2) * LANES,
                      (const uint16_t *)scales + b * G * 2 * LANES, 0, y + b * LANES, n_pad, 1, il);
            else
                block(x, M, K, (const int8_t *)q + b * K * LANES, 0,
                      (const float *)scales + b * LANES, y + b * LANES, n_pad, 0, il);
        }
        _tile_release();  // leave the tile state as we found it (oneDNN configures its own)
    }
    return 0;
}

int qgemm_q4(const uint16_t *x, int64_t M, int64_t K, const uint8_t *q, const uint16_t *sl,
             int64_t n_pad, uint16_t *y) {
    return run(x, M, K, q, sl, n_pad, y, 1);
}

int qgemm_q8(const uint16_t *x, int64_t M, int64_t K, const int8_t *q, const float *s,
             int64_t n_pad, uint16_t *y) {
    return run(x, M, K, q, s, n_pad, y, 0);
}
