/*
 * fold.c - the one normal form that every comparison and blind index uses.
 *
 * Two spellings of the same name or street must give the same bytes, or a blind index will
 * not find the record: "ZOË O’BRIEN" and "Zoe O'Brien" must both become "zoe obrien".
 * Non-ASCII text goes through utf8proc (NFKC, case fold, marks stripped, default-ignorable
 * characters removed); a small table then folds the Latin letters that have no
 * decomposition (ł ø đ ð æ þ œ ı ħ ŧ ŋ), apostrophes are dropped, every other character that
 * is not a letter or a digit becomes a space, and white space is collapsed. Plain ASCII,
 * which is nearly all of a register, takes a fast path with no allocation that gives exactly
 * the bytes the slow path would.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Longest input accepted; anything longer is not a name or an address line. */
#define RV_FOLD_IN_MAX 65536

/* Apostrophe look-alikes, mapped to U+0027 before decomposition so that an acute accent
 * standing alone (U+00B4, which NFKC turns into space + combining mark) is dropped too. */
static utf8proc_int32_t fold_premap(utf8proc_int32_t cp, void *data)
{
    (void)data;
    switch (cp) {
    case 0x60:   /* grave accent used as an apostrophe */
    case 0xB4:   /* acute accent */
    case 0x2018: /* left single quotation mark */
    case 0x2019: /* right single quotation mark */
    case 0x201B: /* single high-reversed-9 quotation mark */
    case 0x2032: /* prime */
    case 0x02B9: /* modifier letter prime */
    case 0x02BB: /* modifier letter turned comma (Hawaiian okina) */
    case 0x02BC: /* modifier letter apostrophe */
    case 0xFF07: /* fullwidth apostrophe */
        return 0x27;
    case 0x013F: /* Ŀ: NFKC would give "l·" */
    case 0x0140: /* ŀ */
        return 'l';
    default:
        return cp;
    }
}

/* Letters with no canonical decomposition, after case folding. NULL when not in the table. */
static const char *fold_extra(utf8proc_int32_t cp)
{
    switch (cp) {
    case 0x00DF: /* ß (case folding already gives "ss"; kept for safety) */
    case 0x1E9E: /* ẞ */
        return "ss";
    case 0x00E6: /* æ */
        return "ae";
    case 0x00F0: /* ð */
    case 0x0111: /* đ */
        return "d";
    case 0x00F8: /* ø */
        return "o";
    case 0x00FE: /* þ */
        return "th";
    case 0x0127: /* ħ */
        return "h";
    case 0x0131: /* dotless ı */
        return "i";
    case 0x0138: /* ĸ */
        return "k";
    case 0x0142: /* ł */
        return "l";
    case 0x014B: /* ŋ */
        return "n";
    case 0x0153: /* œ */
        return "oe";
    case 0x0167: /* ŧ */
        return "t";
    default:
        return NULL;
    }
}

static bool is_apostrophe_ascii(unsigned char c)
{
    return c == '\'' || c == '`';
}

/* The ASCII path: same output as the Unicode path for ASCII input. */
static int fold_ascii(const unsigned char *p, size_t len, char *out, size_t outsz)
{
    size_t o = 0;
    bool pending_space = false;

    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + ('a' - 'A'));
        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
            if (pending_space) {
                if (o + 1 >= outsz)
                    return RV_ETOOBIG;
                out[o++] = ' ';
                pending_space = false;
            }
            if (o + 1 >= outsz)
                return RV_ETOOBIG;
            out[o++] = (char)c;
        } else if (!is_apostrophe_ascii(c)) {
            pending_space = o > 0;
        }
    }
    out[o] = '\0';
    return 0;
}

static bool is_letter_or_digit(utf8proc_int32_t cp)
{
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return true;
    default:
        return false;
    }
}

static int fold_unicode(const char *s, size_t len, char *out, size_t outsz)
{
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n;
    size_t o = 0;
    bool pending_space = false;
    int rc = 0;

    n = utf8proc_map_custom((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                            UTF8PROC_COMPOSE | UTF8PROC_COMPAT | UTF8PROC_CASEFOLD |
                                UTF8PROC_STRIPMARK | UTF8PROC_IGNORE,
                            fold_premap, NULL);
    if (n < 0) {
        rc = n == UTF8PROC_ERROR_NOMEM ? RV_ENOMEM : RV_EPARSE;
        goto out;
    }
    for (utf8proc_ssize_t i = 0; i < n;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(dst + i, n - i, &cp);
        if (k <= 0) {
            rc = RV_EPARSE;
            goto out;
        }
        const char *rep = fold_extra(cp);
        if (rep != NULL || is_letter_or_digit(cp)) {
            size_t need;
            if (pending_space) {
                if (o + 1 >= outsz) {
                    rc = RV_ETOOBIG;
                    goto out;
                }
                out[o++] = ' ';
                pending_space = false;
            }
            need = rep != NULL ? strlen(rep) : (size_t)k;
            if (o + need >= outsz) {
                rc = RV_ETOOBIG;
                goto out;
            }
            memcpy(out + o, rep != NULL ? (const void *)rep : (const void *)(dst + i), need);
            o += need;
        } else if (cp != 0x27) {
            pending_space = o > 0;
        }
        i += k;
    }
    out[o] = '\0';
out:
    free(dst);
    if (rc != 0)
        out[0] = '\0';
    return rc;
}

int rv_fold(const char *s, size_t len, char *out, size_t outsz)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;
    int rc;

    if (outsz == 0)
        return RV_ETOOBIG;
    out[0] = '\0';
    if (len > RV_FOLD_IN_MAX)
        return RV_ETOOBIG;
    for (i = 0; i < len && p[i] < 0x80; i++)
        ;
    if (i == len) {
        rc = fold_ascii(p, len, out, outsz);
    } else {
        if (!rv_utf8_valid(s, len))
            return RV_EPARSE;
        rc = fold_unicode(s, len, out, outsz);
    }
    if (rc != 0)
        out[0] = '\0';
    return rc;
}
