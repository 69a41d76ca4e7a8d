/*
 * postcode.c - UK postcodes (BS 7666): validation, canonical form and the outward parts.
 *
 * A postcode is half of almost every blind index, so two spellings of one postcode must give
 * the same bytes and a mistyped one must not quietly become somebody else's. Only harmless
 * differences are repaired: letter case, surrounding blanks, a missing space or several
 * spaces between the outward and inward codes. Everything else (O typed for 0, a letter not
 * allowed in its position, a space in the wrong place) is refused, never guessed.
 *
 * The rules are those of the regular expression
 *   ^(GIR 0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]{1,2}|[0-9][A-HJKPSTUW]|
 *     [A-HK-Y][0-9][ABEHMNPRV-Y]) [0-9][ABD-HJLNP-UW-Z]{2})$
 * checked by hand, position by position.
 */
#include "core/core.h"

#include <string.h>

/* Longest raw field looked at; a postcode column holding more is not a postcode. */
#define RV_POSTCODE_IN_MAX 64

static bool in_set(char c, const char *set)
{
    return c != '\0' && strchr(set, c) != NULL;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Letters allowed in each position, from the expression above. */
#define PC_FIRST  "ABCDEFGHIJKLMNOPRSTUWYZ" /* [A-PR-UWYZ] */
#define PC_SECOND "ABCDEFGHKLMNOPQRSTUVWXY" /* [A-HK-Y] */
#define PC_THIRD  "ABCDEFGHJKPSTUW"         /* [A-HJKPSTUW] (A9A) */
#define PC_FOURTH "ABEHMNPRVWXY"            /* [ABEHMNPRV-Y] (AA9A) */
#define PC_INWARD "ABDEFGHJLNPQRSTUWXYZ"    /* [ABD-HJLNP-UW-Z] */

static bool outward_valid(const char *o, size_t n)
{
    if (n == 3 && memcmp(o, "GIR", 3) == 0)
        return true;
    if (n < 2 || n > 4 || !in_set(o[0], PC_FIRST))
        return false;
    switch (n) {
    case 2: /* A9 */
        return is_digit(o[1]);
    case 3: /* A99, AA9, A9A */
        if (is_digit(o[1]))
            return is_digit(o[2]) || in_set(o[2], PC_THIRD);
        return in_set(o[1], PC_SECOND) && is_digit(o[2]);
    default: /* AA99, AA9A */
        return in_set(o[1], PC_SECOND) && is_digit(o[2]) &&
               (is_digit(o[3]) || in_set(o[3], PC_FOURTH));
    }
}

int rv_postcode_parse(const char *s, size_t len, struct rv_postcode *out)
{
    char pc[8]; /* outward and inward, spaces removed */
    size_t b = 0, e = len, n = 0, space_at = 0;
    bool seen_space = false;

    memset(out, 0, sizeof(*out));
    if (len > RV_POSTCODE_IN_MAX)
        return RV_ETOOBIG;
    while (b < e && (s[b] == ' ' || s[b] == '\t'))
        b++;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    for (size_t i = b; i < e; i++) {
        char c = s[i];
        if (c == ' ') {
            if (!seen_space)
                space_at = n;
            else if (space_at != n)
                return RV_EPARSE; /* a second, separate gap */
            seen_space = true;
            continue;
        }
        if (c >= 'a' && c <= 'z')
            c = (char)(c - ('a' - 'A'));
        if (!is_digit(c) && !(c >= 'A' && c <= 'Z'))
            return RV_EPARSE;
        if (n == sizeof(pc) - 1)
            return RV_EPARSE;
        pc[n++] = c;
    }
    pc[n] = '\0';
    if (n < 5)
        return RV_EPARSE;
    if (seen_space && space_at != n - 3)
        return RV_EPARSE; /* the only gap allowed is before the inward code */
    if (!outward_valid(pc, n - 3))
        return RV_EPARSE;
    if (memcmp(pc, "GIR", 3) == 0 && n == 6) {
        if (memcmp(pc + 3, "0AA", 3) != 0)
            return RV_EPARSE;
    } else if (!is_digit(pc[n - 3]) || !in_set(pc[n - 2], PC_INWARD) ||
               !in_set(pc[n - 1], PC_INWARD)) {
        return RV_EPARSE;
    }
    memcpy(out->canon, pc, n - 3);
    out->canon[n - 3] = ' ';
    memcpy(out->canon + n - 2, pc + n - 3, 3);
    out->canon[n + 1] = '\0';
    out->out_len = (uint8_t)(n - 3);
    return 0;
}

/* A malformed struct (out_len out of range) gives "" rather than reading past canon. */
static size_t safe_out_len(const struct rv_postcode *p)
{
    return p->out_len >= 2 && p->out_len <= 4 ? p->out_len : 0;
}

const char *rv_postcode_area(const struct rv_postcode *p, char *buf)
{
    size_t k = 0, n = safe_out_len(p);
    if (n == 3 && memcmp(p->canon, "GIR", 3) == 0)
        k = 3;
    else
        while (k < n && k < 2 && p->canon[k] >= 'A' && p->canon[k] <= 'Z')
            k++;
    memcpy(buf, p->canon, k);
    buf[k] = '\0';
    return buf;
}

const char *rv_postcode_district(const struct rv_postcode *p, char *buf)
{
    size_t n = safe_out_len(p);
    /* A9A and AA9A: the final letter subdivides the district (SW1A is in district SW1). */
    if (n >= 3 && !is_digit(p->canon[n - 1]) && is_digit(p->canon[n - 2]))
        n--;
    memcpy(buf, p->canon, n);
    buf[n] = '\0';
    return buf;
}

const char *rv_postcode_outward(const struct rv_postcode *p, char *buf)
{
    size_t n = safe_out_len(p);
    memcpy(buf, p->canon, n);
    buf[n] = '\0';
    return buf;
}

const char *rv_postcode_sector(const struct rv_postcode *p, char *buf)
{
    size_t n = safe_out_len(p);
    if (n == 0) {
        buf[0] = '\0';
        return buf;
    }
    memcpy(buf, p->canon, n + 2);
    buf[n + 2] = '\0';
    return buf;
}
