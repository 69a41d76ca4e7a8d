/*
 * fuzz_phonetic.c - libFuzzer target for Double Metaphone, NYSIIS and Jaro-Winkler.
 *
 * Names reach these functions from register files and donation batches after folding, but a
 * folding bug or a hostile upload must not turn into a crash or an out-of-bounds read. The
 * input is split at its first NUL (or its middle) into two strings; each is coded and the two
 * compared. Checked: codes are short, NUL-terminated and drawn from their alphabets; the
 * similarity is in [0, 1] and 1 for a non-empty string against itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_code(const char *code, size_t max, const char *alphabet)
{
    size_t n = strnlen(code, RV_PHONETIC_MAX);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if (strchr(alphabet, code[i]) == NULL)
            abort();
}

static void one(const char *s)
{
    char p[RV_PHONETIC_MAX], a[RV_PHONETIC_MAX], n[RV_PHONETIC_MAX];

    rv_double_metaphone(s, p, a);
    check_code(p, 4, "0AFHJKLMNPRSTX");
    check_code(a, 4, "0AFHJKLMNPRSTX");
    if (a[0] != '\0' && strcmp(a, p) == 0)
        abort(); /* an alternate equal to the primary is reported as "" */
    rv_nysiis(s, n);
    check_code(n, 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    double w = rv_jaro_winkler(s, s);
    if (s[0] != '\0' && w != 1.0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 2);
    const char *a, *b;
    size_t cut;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    cut = strnlen(buf, size);
    if (cut == size) { /* no NUL: split in the middle */
        cut = size / 2;
        memmove(buf + cut + 1, buf + cut, size - cut);
        buf[cut] = '\0';
    }
    a = buf;
    b = buf + cut + 1;
    one(a);
    one(b);
    double w = rv_jaro_winkler(a, b);
    if (!(w >= 0.0 && w <= 1.0))
        abort();
    free(buf);
    return 0;
}
