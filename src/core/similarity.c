/*
 * similarity.c - Jaro-Winkler similarity of folded names.
 *
 * The matcher scores each candidate a blind index returns against the donor's name, so this
 * runs once per candidate and must not allocate. It follows the standard definition and the
 * jellyfish library's jaro_winkler_similarity, which the unit test uses as its oracle: match
 * window max(len)/2 - 1, half the out-of-order matches are transpositions, and when the Jaro
 * score is above 0.7 a common prefix of up to four characters raises it by 0.1 per character.
 *
 * Strings are compared by Unicode code point (decoded from UTF-8; a byte that is not part of a
 * valid sequence counts as one character of its own), so names in non-Latin scripts, which
 * folding keeps, still compare. Only the first RV_JW_MAX characters of each side are read.
 */
#include "core/core.h"

#include <string.h>

#define RV_JW_MAX 256

/* Decodes up to RV_JW_MAX code points of s into cp; returns the count. */
static size_t jw_decode(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;

    while (*p != '\0' && n < RV_JW_MAX) {
        unsigned c = *p;
        uint32_t v;
        int extra;

        if (c < 0x80) {
            cp[n++] = c;
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            extra = 1, v = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            extra = 2, v = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            extra = 3, v = c & 0x07;
        else
            extra = -1, v = 0;
        int k = 1;
        for (; extra > 0 && k <= extra; k++) {
            if ((p[k] & 0xc0) != 0x80)
                break;
            v = (v << 6) | (p[k] & 0x3f);
        }
        if (extra < 0 || k <= extra ||
            (extra == 2 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
            (extra == 3 && (v < 0x10000 || v > 0x10ffff))) {
            cp[n++] = 0x80000000u | c; /* a stray byte: its own character */
            p++;
            continue;
        }
        cp[n++] = v;
        p += extra + 1;
    }
    return n;
}

double rv_jaro_winkler(const char *a, const char *b)
{
    uint32_t s1[RV_JW_MAX], s2[RV_JW_MAX];
    bool f1[RV_JW_MAX], f2[RV_JW_MAX];
    size_t l1, l2, range, common = 0, trans = 0, k = 0, prefix = 0;
    double w;

    l1 = jw_decode(a, s1);
    l2 = jw_decode(b, s2);
    if (l1 == 0 || l2 == 0)
        return 0.0;
    range = (l1 > l2 ? l1 : l2) / 2;
    range = range > 0 ? range - 1 : 0;
    memset(f1, 0, l1);
    memset(f2, 0, l2);

    for (size_t i = 0; i < l1; i++) {
        size_t lo = i > range ? i - range : 0;
        size_t hi = i + range < l2 - 1 ? i + range : l2 - 1;
        for (size_t j = lo; j <= hi; j++) {
            if (!f2[j] && s2[j] == s1[i]) {
                f1[i] = f2[j] = true;
                common++;
                break;
            }
        }
    }
    if (common == 0)
        return 0.0;
    for (size_t i = 0; i < l1; i++) {
        if (!f1[i])
            continue;
        while (!f2[k])
            k++;
        if (s1[i] != s2[k])
            trans++;
        k++;
    }
    trans /= 2;

    w = ((double)common / (double)l1 + (double)common / (double)l2 +
         (double)(common - trans) / (double)common) /
        3;
    if (w > 0.7) {
        size_t lim = l1 < l2 ? l1 : l2;
        if (lim > 4)
            lim = 4;
        while (prefix < lim && s1[prefix] == s2[prefix])
            prefix++;
        if (prefix > 0)
            w += (double)prefix * 0.1 * (1.0 - w);
    }
    return w;
}
