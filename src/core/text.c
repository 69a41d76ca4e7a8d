/*
 * text.c - UTF-8 validation, Windows-1252 conversion, byte-order marks and field cleaning.
 *
 * Register exports come from electoral management software that writes UTF-8, UTF-8 with a
 * byte-order mark, or Windows-1252, and fields arrive with stray control characters and
 * runs of blanks. Everything above core/ works on clean UTF-8, so these are the only places
 * that look at raw bytes. The validator is strict (RFC 3629): overlong forms, UTF-16
 * surrogates and code points above U+10FFFF are refused, because a lenient decoder lets two
 * different byte strings fold to the same key.
 */
#include "core/core.h"

#include <string.h>

/* Decodes one code point from s (avail > 0 bytes). Returns its length in bytes, or 0 if
 * the sequence is invalid, truncated, overlong, a surrogate or beyond U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    uint32_t v;
    size_t n;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07u;
    } else {
        return 0; /* continuation byte, 0xC0/0xC1 overlong lead, or 0xF5.. */
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if ((n == 3 && v < 0x800) || (n == 4 && (v < 0x10000 || v > 0x10FFFF)) ||
        (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool rv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}

/* Windows-1252 0x80..0x9F. Zero marks the five undefined bytes. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

size_t rv_cp1252_to_utf8(const char *in, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        uint32_t cp;
        if (c < 0x80) {
            out[o++] = (char)c;
            continue;
        }
        if (c < 0xA0) {
            cp = cp1252_high[c - 0x80];
            if (cp == 0)
                cp = 0xFFFD;
        } else {
            cp = c;
        }
        o += utf8_encode(cp, out + o);
    }
    out[o] = '\0';
    return o;
}

long rv_utf8_to_cp1252(const char *in, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t i = 0, o = 0;

    while (i < len) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0)
            return RV_EPARSE;
        i += n;
        if (cp < 0x80 || (cp >= 0xA0 && cp <= 0xFF)) {
            out[o++] = (char)cp;
            continue;
        }
        char b = '?';
        for (unsigned k = 0; k < 32; k++) {
            if (cp1252_high[k] != 0 && cp1252_high[k] == cp) {
                b = (char)(0x80 + k);
                break;
            }
        }
        out[o++] = b;
    }
    out[o] = '\0';
    return (long)o;
}

size_t rv_bom_len(const char *buf, size_t len)
{
    if (len >= 3 && (unsigned char)buf[0] == 0xEF && (unsigned char)buf[1] == 0xBB &&
        (unsigned char)buf[2] == 0xBF)
        return 3;
    return 0;
}

/* White space beyond ASCII that registers contain: no-break and typographic spaces. */
static bool is_unicode_space(uint32_t cp)
{
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Invisible characters that only ever get in the way: zero-width space, word joiner and a
 * byte-order mark in mid-text. */
static bool is_invisible(uint32_t cp)
{
    return cp == 0x200B || cp == 0x2060 || cp == 0xFEFF;
}

int rv_text_clean(const char *s, size_t len, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    bool pending_space = false;

    if (outsz == 0)
        return RV_ETOOBIG;
    while (i < len) {
        uint32_t cp;
        size_t n;
        if (p[i] < 0x80) {
            cp = p[i];
            n = 1;
        } else if ((n = utf8_decode(p + i, len - i, &cp)) == 0) {
            out[0] = '\0';
            return RV_EPARSE;
        }
        if (cp <= 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || is_unicode_space(cp)) {
            pending_space = o > 0;
        } else if (!is_invisible(cp)) {
            if (pending_space) {
                if (o + 1 >= outsz)
                    goto toobig;
                out[o++] = ' ';
                pending_space = false;
            }
            if (o + n >= outsz)
                goto toobig;
            memcpy(out + o, p + i, n);
            o += n;
        }
        i += n;
    }
    out[o] = '\0';
    return 0;
toobig:
    out[0] = '\0';
    return RV_ETOOBIG;
}
