// Weight-only quantised GEMM for decode-sized batches: y[M, N] = x[M, K] @ W[N, K]^T with
// x and y bf16, W int4 or int8, 1 <= M <= 32. Two paths over the same packed weights:
//   AMX (Intel Sapphire Rapids and later): TDPBF16PS on tiles;
//   AVX-512 BF16 (e.g. AMD Zen 4, Intel Cooper Lake): VDPBF16PS, 16 channels per vector.
//
// Why: a decode step of a small model reads every weight once per step, so for a batch of
// decodes its speed is the bytes of weight read. oneDNN's bf16 GEMM reads 2 bytes per
// weight; torch's int4/int8 CPU kernels read less but dequantise again for every few rows
// and lose to bf16 from ~8 rows. Here each weight is dequantised once per call, to bf16 in
// a 1 KiB tile buffer, and then multiplied with all M rows at once.
//
// Layouts (written by worker/kernels/__init__.py; N padded to a multiple of 16). The tile
// B of TDPBF16PS holds, per row, the pairs (W[n, k], W[n, k+1]) of 16 output channels n,
// so weights are stored by [block of 16 channels, pair of k, channel]:
//   int4: uint8 [N/16, K/32 groups, 16 pairs, 16 channels]: byte = q[n, k] | q[n, k+1] << 4;
//         w = q * scale + low per channel and group of 32 along K (GGUF's Q4_1).
//         scales: bf16 [N/16, K/32, 2, 16]: scale then low of each channel.
//   int8: int8 [N/16, K/2 pairs, 16 channels, 2]; w = q * scale[n] (symmetric per channel).
//         scales: fp32 [N].
// A B-tile row is also exactly VDPBF16PS's second operand: lane n adds x[k] w[n, k] +
// x[k+1] w[n, k+1], with (x[k], x[k+1]) broadcast to every lane.
// Threads: OpenMP over blocks of 16 channels, on torch's libgomp pool (loaded first).

#include <stdlib.h>
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

// Group g of one block of 16 channels into `tile` as 16 B-rows: int4 when the block has
// scale/low pairs (slb), else int8.
static inline void dequant_group(const void *qb, const uint16_t *slb, int64_t g, uint16_t *tile,
                                 __m512i il) {
    if (slb)
        dequant_q4((const uint8_t *)qb + g * (GROUP / 2) * LANES, slb + g * 2 * LANES, tile, il);
    else
        dequant_q8((const int8_t *)qb + g * GROUP * LANES, tile, il);
}

// One block of 16 channels: C = sum over groups of A(x rows, group) x B(dequantised group).
static inline void block(const uint16_t *x, int64_t M, int64_t K, const void *qb,
                         const uint16_t *slb, const float *scale8, uint16_t *y, int64_t n_pad,
                         __m512i il) {
    uint16_t tile[GROUP / 2 * 2 * LANES] __attribute__((aligned(64)));
    float acc[MAX_ROWS * LANES] __attribute__((aligned(64)));
    const int64_t G = K / GROUP, ldx = K * 2;
    _tile_zero(C0);
    if (M > 16) _tile_zero(C1);
    for (int64_t g = 0; g < G; g++) {
        dequant_group(qb, slb, g, tile, il);
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
    for (int64_t m = 0; m < M; m++)
        store_bf16(y + m * n_pad, _mm512_mul_ps(_mm512_load_ps(acc + m * LANES), s));
}


// -- AVX-512 BF16 path ----------------------------------------------------------------------
// Rows go in chunks of at most 16 (16 accumulators + the weight vector fit the 32 zmm
// registers). The block's weights are dequantised once, during the first chunk, into a
// per-thread buffer of K/2 B-rows that later chunks read back (K * 32 bytes: 48 KiB at
// K = 1536, in L2).

static __thread uint16_t *dq_buf;
static __thread int64_t dq_cap;

static uint16_t *dequant_buffer(int64_t K) {
    const int64_t bytes = K * LANES * 2;
    if (bytes > dq_cap) {
        free(dq_buf);
        dq_buf = aligned_alloc(64, (size_t)bytes);
        dq_cap = dq_buf ? bytes : 0;
    }
    return dq_buf;
}

// acc[m] += sum over pairs p < n_pairs of (x[m, 2p], x[m, 2p+1]) broadcast . B-row p, for R
// rows. xt holds x's pairs transposed, [pair][row] (stride ld): one base pointer and constant
// offsets, so each broadcast folds into VDPBF16PS as a memory operand. With fewer than 8
// rows the dependency chains are too few to hide VDPBF16PS's latency, so even and odd pairs
// go to two sets of accumulators.
#define ROWS_KERNEL(R)                                                                        \
    static inline __attribute__((always_inline)) void rows_##R(                               \
        const int32_t *xt, int64_t ld, const uint16_t *w, int64_t n_pairs, __m512 *acc) {    \
        enum { SETS = R < 8 ? 2 : 1 };                                                        \
        __m512 a[SETS][R];                                                                    \
        _Pragma("GCC unroll 16") for (int m = 0; m < R; m++) {                                \
            a[0][m] = acc[m];                                                                 \
            if (SETS == 2) a[SETS - 1][m] = _mm512_setzero_ps();                              \
        }                                                                                     \
        for (int64_t p = 0; p < n_pairs; p += SETS) {                                         \
            _Pragma("GCC unroll 2") for (int s = 0; s < SETS; s++) {                          \
                const __m512bh wv = (__m512bh)_mm512_load_si512(w + (p + s) * 2 * LANES);     \
                const int32_t *xp = xt + (p + s) * ld;                                        \
                _Pragma("GCC unroll 16") for (int m = 0; m < R; m++) a[s][m] =                \
                    _mm512_dpbf16_ps(a[s][m], (__m512bh)_mm512_set1_epi32(xp[m]), wv);        \
            }                                                                                 \
        }                                                                                     \
        _Pragma("GCC unroll 16") for (int m = 0; m < R; m++) acc[m] =                         \
            SETS == 2 ? _mm512_add_ps(a[0][m], a[SETS - 1][m]) : a[0][m];                     \
    }

// One chunk of R rows of one block: dequantise group by group into `buf` (first chunk) or
// read the groups a previous chunk left there, then scale and store.
#define CHUNK(R)                                                                              \
    ROWS_KERNEL(R)                                                                            \
    static void chunk_##R(const int32_t *xt, int64_t ld, int64_t K, const void *qb,            \
                          const uint16_t *slb, const float *scale8, uint16_t *buf,            \
                          int dequant, __m512i il, uint16_t *y, int64_t n_pad) {              \
        __m512 acc[R];                                                                        \
        _Pragma("GCC unroll 16") for (int m = 0; m < R; m++) acc[m] = _mm512_setzero_ps();    \
        const int64_t G = K / GROUP;                                                          \
        for (int64_t g = 0; g < G; g++) {                                                     \
            uint16_t *tile = buf + g * (GROUP / 2) * 2 * LANES;                               \
            if (dequant) dequant_group(qb, slb, g, tile, il);                                 \
            rows_##R(xt + g * (GROUP / 2) * ld, ld, tile, GROUP / 2, acc);                    \
        }                                                                                     \
        const __m512 s = scale8 ? _mm512_loadu_ps(scale8) : _mm512_set1_ps(1.0f);             \
        _Pragma("GCC unroll 16") for (int m = 0; m < R; m++) store_bf16(                      \
            y + m * n_pad, _mm512_mul_ps(acc[m], s));                                         \
    }

CHUNK(1) CHUNK(2) CHUNK(3) CHUNK(4) CHUNK(5) CHUNK(6) CHUNK(7) CHUNK(8)
CHUNK(9) CHUNK(10) CHUNK(11) CHUNK(12) CHUNK(13) CHUNK(14) CHUNK(15) CHUNK(16)

typedef void (*chunk_fn)(const int32_t *, int64_t, int64_t, const void *, const uint16_t *,
                         const float *, uint16_t *, int, __m512i, uint16_t *, int64_t);
static const chunk_fn CHUNKS[17] = {0,         chunk_1,  chunk_2,  chunk_3,  chunk_4,  chunk_5,
                                    chunk_6,   chunk_7,  chunk_8,  chunk_9,  chunk_10, chunk_11,
                                    chunk_12,  chunk_13, chunk_14, chunk_15, chunk_16};

static void block_avx512(const int32_t *xt, int64_t M, int64_t K, const void *qb,
                         const uint16_t *slb, const float *scale8, uint16_t *y, int64_t n_pad,
                         uint16_t *buf, __m512i il) {
    for (int64_t r0 = 0; r0 < M; r0 += 16) {
        const int64_t R = M - r0 < 16 ? M - r0 : 16;
        CHUNKS[R](xt + r0, M, K, qb, slb, scale8, buf, r0 == 0, il, y + r0 * n_pad, n_pad);
    }
}

static int run(const uint16_t *x, int64_t M, int64_t K, const void *q, const void *scales,
               int64_t n_pad, uint16_t *y, int is_q4, int amx) {
    if (M <= 0 || M > MAX_ROWS || K % GROUP || n_pad % LANES) return -1;
    const int64_t blocks = n_pad / LANES, G = K / GROUP;
    int32_t *xt = 0;  // AVX-512: x's pairs as [K/2][M]
    if (!amx) {
        if (!(xt = malloc((size_t)(M * K * 2)))) return -2;
        for (int64_t m = 0; m < M; m++)
            for (int64_t p = 0; p < K / 2; p++) memcpy(xt + p * M + m, x + m * K + 2 * p, 4);
    }
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        const __m512i il = interleave_index();
        uint16_t *buf = amx ? 0 : dequant_buffer(K);
        if (amx) configure(M);
        failed = !amx && !buf;
#pragma omp for schedule(static)
        for (int64_t b = 0; b < blocks; b++) {
            if (failed) continue;  // no buffer on this thread: the call fails as a whole
            const void *qb = is_q4 ? (const void *)((const uint8_t *)q + b * G * (GROUP / 2) * LANES)
                                   : (const void *)((const int8_t *)q + b * K * LANES);
            const uint16_t *slb = is_q4 ? (const uint16_t *)scales + b * G * 2 * LANES : 0;
            const float *scale8 = is_q4 ? 0 : (const float *)scales + b * LANES;
            if (amx)
                block(x, M, K, qb, slb, scale8, y + b * LANES, n_pad, il);
            else
                block_avx512(xt, M, K, qb, slb, scale8, y + b * LANES, n_pad, buf, il);
        }
        if (amx) _tile_release();  // leave the tile state as we found it (oneDNN configures its own)
    }
    free(xt);
    return failed ? -2 : 0;
}

// amx: 1 for the AMX path (after qgemm_init() returned 0), 0 for AVX-512 BF16.
int qgemm_q4(const uint16_t *x, int64_t M, int64_t K, const uint8_t *q, const uint16_t *sl,
             int64_t n_pad, uint16_t *y, int amx) {
    return run(x, M, K, q, sl, n_pad, y, 1, amx);
}

int qgemm_q8(const uint16_t *x, int64_t M, int64_t K, const int8_t *q, const float *s,
             int64_t n_pad, uint16_t *y, int amx) {
    return run(x, M, K, q, s, n_pad, y, 0, amx);
}
