/* The learned layer's window logits in one pass (see mesh/filter/ngram_kernel.py).

   The same arithmetic as learned.ngram_matrix / Model.contributions / Model.window_logits,
   in the same order, so the logits are bit for bit numpy's: rolling polynomial hashes of
   the code points modulo 2^64, one per n-gram order; bucket = ((h + salt * order) * mix)
   >> (64 - bits); a position's contribution is the float32 sum of its whole n-grams'
   weights, order by order; window logit = (sum of contributions) / (n-gram count + prior)
   + bias, from float64 prefix sums. numpy spent most of this layer's time on the overhead
   of its ~40 calls per text (~60 with the preparation), not on the arithmetic. */

#include <stdint.h>
#include <stdlib.h>

#define MAX_ORDER 16

int ngram_window_logits(const int64_t *cps, int64_t n, const float *weights, int64_t bits,
                        const int64_t *orders, int64_t n_orders, uint64_t prime, uint64_t mix,
                        uint64_t salt, const int64_t *starts, const int64_t *ends,
                        int64_t n_windows, double prior, double bias, double *logits) {
    if (n < 0 || n_orders < 1 || n_orders > MAX_ORDER || bits < 1 || bits > 63) return -1;
    int64_t max_order = 0;
    for (int64_t k = 0; k < n_orders; k++) {
        if (orders[k] < 1 || orders[k] > MAX_ORDER) return -1;
        if (orders[k] > max_order) max_order = orders[k];
    }
    double *sums = malloc(sizeof(double) * 2 * (size_t)(n + 1));
    if (sums == NULL) return -2;
    double *counts = sums + n + 1;
    const unsigned shift = (unsigned)(64 - bits);
    const uint64_t mask = (((uint64_t)1) << bits) - 1;
    sums[0] = 0.0;
    counts[0] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t by_order[MAX_ORDER + 1];
        uint64_t h = 0;
        for (int64_t o = 1; o <= max_order && i + o <= n; o++) {
            h = h * prime + (uint64_t)cps[i + o - 1];
            by_order[o] = h;
        }
        float contribution = 0.0f;
        float count = 0.0f;
        for (int64_t k = 0; k < n_orders; k++) {
            const int64_t o = orders[k];
            if (i + o > n) continue; /* numpy adds a zeroed weight: x + 0.0f == x */
            const uint64_t bucket = (((by_order[o] + salt * (uint64_t)o) * mix) >> shift) & mask;
            contribution += weights[bucket];
            count += 1.0f;
        }
        sums[i + 1] = sums[i] + (double)contribution;
        counts[i + 1] = counts[i] + (double)count;
    }
    for (int64_t j = 0; j < n_windows; j++) {
        const int64_t a = starts[j], b = ends[j];
        if (a < 0 || b > n || a > b) {
            free(sums);
            return -1;
        }
        logits[j] = (sums[b] - sums[a]) / (counts[b] - counts[a] + prior) + bias;
    }
    free(sums);
    return 0;
}
