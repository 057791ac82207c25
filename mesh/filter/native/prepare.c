/* prepared.prepare in one pass over the code points (mesh/filter/prepared.py): whitespace
   to one space, percent escapes and long hex or base64 runs to 0, leetspeak
   digits folded to letters, repeated spaces and 0s dropped, runs of one character cut to
   max_run. Step for step what the numpy version does, so the output is identical; the
   character tables come from Python (one definition). */

#include <stdint.h>
#include <string.h>

enum { WS = 1, HEX = 2, B64 = 4 };               /* bits of the kind table (prepared._KIND) */
enum { SEP = 0, LETTER = 1, LEET = 2, DIGIT = 3 }; /* leet_fold.CHAR_CLASS */

static void mask_runs(int64_t *cps, int64_t n, const uint8_t *member, int64_t min_len,
                      int64_t need_digits) {
    int64_t i = 0;
    while (i < n) {
        if (!member[i]) {
            i++;
            continue;
        }
        int64_t start = i, digits = 0;
        while (i < n && member[i]) {
            digits += cps[i] < 97;
            i++;
        }
        if (i - start >= min_len && digits >= need_digits)
            memset(cps + start, 0, sizeof(int64_t) * (size_t)(i - start));
    }
}

/* in: n code points (" " + folded + " "); out: room for n; scratch: n bytes.
   Returns the prepared length. */
int64_t prepare_cps(const uint32_t *in, int64_t n, const uint8_t *kind_table, int64_t kinds,
                    const int8_t *class_table, int64_t classes, const int64_t *leet_map,
                    int64_t leet_len, int64_t min_hex_run, int64_t min_b64_run, int64_t max_run,
                    int64_t *out, uint8_t *scratch) {
    int has_digit = 0, has_pct = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        uint8_t k = kind_table[c < (uint32_t)(kinds - 1) ? c : (uint32_t)(kinds - 1)];
        out[i] = (k & WS) ? 32 : (int64_t)c;
        has_digit |= c >= '0' && c <= '9';
        has_pct |= c == '%';
    }
#define KIND(i) kind_table[in[i] < (uint32_t)(kinds - 1) ? in[i] : (uint32_t)(kinds - 1)]
    if (has_pct) /* "%" + two hex digits: hex-ness of the input, as numpy's ``hexd`` */
        for (int64_t i = 0; i + 2 < n; i++)
            if (out[i] == '%' && (KIND(i + 1) & HEX) && (KIND(i + 2) & HEX))
                out[i] = out[i + 1] = out[i + 2] = 0;
    if (has_digit) {
        for (int64_t i = 0; i < n; i++) scratch[i] = (KIND(i) & HEX) != 0;
        mask_runs(out, n, scratch, min_hex_run, 0);
    }
    if (n > min_b64_run) {
        for (int64_t i = 0; i < n; i++) scratch[i] = (KIND(i) & B64) && out[i] != 0;
        mask_runs(out, n, scratch, min_b64_run, 2);
    }
#undef KIND
    /* leetspeak: a LEET digit in a token (a run of non-separators) with a letter and no
       other digit */
    for (int64_t i = 0; i < n;) {
        int64_t c = out[i];
        if (class_table[c < classes - 1 ? c : classes - 1] == SEP) {
            i++;
            continue;
        }
        int64_t start = i;
        int letter = 0, leet = 0, digit = 0;
        for (; i < n; i++) {
            int64_t d = out[i];
            int8_t cls = class_table[d < classes - 1 ? d : classes - 1];
            if (cls == SEP) break;
            letter |= cls == LETTER;
            leet |= cls == LEET;
            digit |= cls == DIGIT;
        }
        if (letter && leet && !digit)
            for (int64_t j = start; j < i; j++) {
                int64_t d = out[j];
                if (class_table[d < classes - 1 ? d : classes - 1] == LEET && d < leet_len)
                    out[j] = leet_map[d];
            }
    }
    /* repeated spaces and 0s: the first of a run kept (m <= i: out[i] is read before
       anything is written there) */
    int64_t m = 0, prev = -1;
    for (int64_t i = 0; i < n; i++) {
        int64_t c = out[i];
        int repeat = c == prev && (c == 32 || c == 0);
        prev = c;
        if (!repeat) out[m++] = c;
    }
    /* one character more than max_run times in a row: cut to max_run */
    int64_t k = 0, run = 0;
    prev = -1;
    for (int64_t i = 0; i < m; i++) {
        int64_t c = out[i];
        run = c == prev ? run + 1 : 1;
        prev = c;
        if (run <= max_run) out[k++] = c;
    }
    return k;
}
