/*
 * elector.c - the elector entry: markers, elector numbers, and the record's wire form.
 *
 * An entry on the register is identified by its elector number (polling-district prefix,
 * number, suffix: "ABC1-12/1") and qualified by marker letters. Marker letters that this
 * code does not know are data, not errors: they are kept verbatim so a new marker in a
 * register export is never silently lost.
 *
 * rv_elector_encode writes the plaintext that vault/ seals. The format is a version byte
 * (RV_ELECTOR_WIRE_V1) followed by the fields in a fixed order: strings as a one-byte length
 * and the bytes (no NUL), integers as unsigned LEB128 varints in their shortest form, the
 * attainment date zigzag-encoded, then one flags byte. Decoding is strict so that exactly
 * one byte string maps to each record: every length is checked against its field, varints
 * must be minimal, strings may not hold NUL or invalid UTF-8, unknown flag bits and
 * trailing bytes are refused.
 */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

#define RV_ELECTOR_WIRE_V1     1u
#define RV_ELECTOR_FLAG_OPTOUT 0x01u

/* ------------------------------------------------------------------------------------------
 * Markers.
 */

static const char rv_marker_letters[] = "FNLMGBAPEK"; /* bit i is letter i */
#define RV_MARKERS_IN_MAX 64                          /* longest markers field looked at */

int rv_markers_parse(const char *s, size_t len, struct rv_markers *out)
{
    size_t nother = 0;

    memset(out, 0, sizeof(*out));
    if (len > RV_MARKERS_IN_MAX)
        return RV_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ' || c == ',' || c == ';' || c == '/' || c == '\t' || c == '|')
            continue;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return RV_EPARSE;
        char up = (c >= 'a' && c <= 'z') ? (char)(c - ('a' - 'A')) : c;
        const char *k = strchr(rv_marker_letters, up);
        if (k != NULL) {
            out->known |= (uint16_t)(1u << (k - rv_marker_letters));
            continue;
        }
        if (memchr(out->other, c, nother) != NULL)
            continue;
        if (nother == sizeof(out->other) - 1) {
            memset(out, 0, sizeof(*out));
            return RV_ETOOBIG;
        }
        out->other[nother++] = c;
    }
    return 0;
}

const char *rv_markers_format(const struct rv_markers *m, char *buf, size_t bufsz)
{
    size_t o = 0;

    if (bufsz == 0)
        return buf;
    for (unsigned i = 0; rv_marker_letters[i] != '\0'; i++)
        if ((m->known & (1u << i)) && o + 1 < bufsz)
            buf[o++] = rv_marker_letters[i];
    for (size_t i = 0; i < sizeof(m->other) && m->other[i] != '\0'; i++)
        if (o + 1 < bufsz)
            buf[o++] = m->other[i];
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------------------------
 * Elector numbers.
 */

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

/* A decimal number of at most 10 digits that fits in 32 bits. Empty is refused. */
static int parse_u32(const char *s, size_t len, uint32_t *out)
{
    uint64_t v = 0;

    if (len == 0 || len > 10)
        return RV_EPARSE;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RV_EPARSE;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return RV_EPARSE;
    *out = (uint32_t)v;
    return 0;
}

/* Polling-district prefixes: letters, digits and the separators seen in real registers. */
static int set_prefix(const char *s, size_t len, struct rv_elector_number *out)
{
    if (len >= sizeof(out->prefix))
        return RV_ETOOBIG;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '/' || c == '.' || c == '_'))
            return RV_EPARSE;
    }
    memcpy(out->prefix, s, len);
    out->prefix[len] = '\0';
    return 0;
}

int rv_elector_number_from_parts(const char *prefix, const char *number, const char *suffix,
                                 struct rv_elector_number *out)
{
    size_t plen = strlen(prefix), nlen = strlen(number), slen = strlen(suffix);
    int rc;

    memset(out, 0, sizeof(*out));
    trim(&prefix, &plen);
    trim(&number, &nlen);
    trim(&suffix, &slen);
    if ((rc = set_prefix(prefix, plen, out)) != 0)
        goto out;
    if ((rc = parse_u32(number, nlen, &out->number)) != 0)
        goto out;
    if (slen > 0 && (rc = parse_u32(suffix, slen, &out->suffix)) != 0)
        goto out;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rv_elector_number_parse(const char *s, size_t len, struct rv_elector_number *out)
{
    const char *num, *slash;
    size_t nlen;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    if (len > 64)
        return RV_ETOOBIG;
    trim(&s, &len);
    /* The number follows the last '-': "KD-2/2-289/1" has prefix "KD-2/2". No '-' at all
     * means an empty prefix ("12/1"). */
    const char *dash = NULL;
    for (size_t i = len; i > 0; i--) {
        if (s[i - 1] == '-') {
            dash = s + i - 1;
            break;
        }
    }
    if (dash != NULL) {
        if ((rc = set_prefix(s, (size_t)(dash - s), out)) != 0)
            goto out;
        num = dash + 1;
    } else {
        num = s;
    }
    nlen = len - (size_t)(num - s);
    slash = memchr(num, '/', nlen);
    if (slash != NULL) {
        size_t before = (size_t)(slash - num);
        if ((rc = parse_u32(num, before, &out->number)) != 0)
            goto out;
        rc = parse_u32(slash + 1, nlen - before - 1, &out->suffix);
    } else {
        rc = parse_u32(num, nlen, &out->number);
    }
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

const char *rv_elector_number_format(const struct rv_elector_number *n, char *buf, size_t bufsz)
{
    int plen = (int)strnlen(n->prefix, sizeof(n->prefix));

    if (bufsz == 0)
        return buf;
    if (plen == 0 && n->suffix == 0)
        snprintf(buf, bufsz, "%lu", (unsigned long)n->number);
    else if (plen == 0)
        snprintf(buf, bufsz, "%lu/%lu", (unsigned long)n->number, (unsigned long)n->suffix);
    else if (n->suffix == 0)
        snprintf(buf, bufsz, "%.*s-%lu", plen, n->prefix, (unsigned long)n->number);
    else
        snprintf(buf, bufsz, "%.*s-%lu/%lu", plen, n->prefix, (unsigned long)n->number,
                 (unsigned long)n->suffix);
    return buf;
}

/* ------------------------------------------------------------------------------------------
 * Wire form.
 */

struct wbuf {
    uint8_t *p;
    size_t cap, len;
    bool over;
};

static void put_byte(struct wbuf *w, uint8_t b)
{
    if (w->len >= w->cap) {
        w->over = true;
        return;
    }
    w->p[w->len++] = b;
}

static void put_varint(struct wbuf *w, uint64_t v)
{
    while (v >= 0x80) {
        put_byte(w, (uint8_t)(v | 0x80));
        v >>= 7;
    }
    put_byte(w, (uint8_t)v);
}

/* A string field of a fixed-size array; false if it is not NUL-terminated within it. */
static bool put_str(struct wbuf *w, const char *s, size_t field)
{
    size_t n = strnlen(s, field);
    if (n == field || n > 255 || !rv_utf8_valid(s, n))
        return false;
    put_byte(w, (uint8_t)n);
    if (w->len + n > w->cap) {
        w->over = true;
        return true;
    }
    memcpy(w->p + w->len, s, n);
    w->len += n;
    return true;
}

/* The canonical postcode and its outward length agree (or both are absent). */
static bool postcode_ok(const struct rv_postcode *p)
{
    size_t n = strnlen(p->canon, sizeof(p->canon));
    if (n == 0)
        return p->out_len == 0;
    return p->out_len >= 2 && p->out_len <= 4 && n == p->out_len + 4u &&
           p->canon[p->out_len] == ' ';
}

long rv_elector_encode(const struct rv_elector *e, uint8_t *buf, size_t cap)
{
    struct wbuf w = {buf, cap, 0, false};
    size_t nlines = 0;
    uint32_t att;
    bool ok = true;

    for (size_t i = 0; i < RV_ADDR_LINES; i++)
        if (e->address[i][0] != '\0')
            nlines = i + 1;
    att = (uint32_t)e->attainment;
    att = (att << 1) ^ (uint32_t)(e->attainment < 0 ? UINT32_MAX : 0); /* zigzag */

    put_byte(&w, RV_ELECTOR_WIRE_V1);
    ok &= put_str(&w, e->area, sizeof(e->area));
    ok &= put_str(&w, e->number.prefix, sizeof(e->number.prefix));
    put_varint(&w, e->number.number);
    put_varint(&w, e->number.suffix);
    put_varint(&w, e->markers.known);
    ok &= put_str(&w, e->markers.other, sizeof(e->markers.other));
    put_varint(&w, att);
    ok &= put_str(&w, e->name.title, sizeof(e->name.title));
    ok &= put_str(&w, e->name.forenames, sizeof(e->name.forenames));
    ok &= put_str(&w, e->name.surname, sizeof(e->name.surname));
    ok &= put_str(&w, e->name.suffix, sizeof(e->name.suffix));
    put_byte(&w, (uint8_t)nlines);
    for (size_t i = 0; i < nlines; i++)
        ok &= put_str(&w, e->address[i], sizeof(e->address[i]));
    ok &= put_str(&w, e->postcode.canon, sizeof(e->postcode.canon));
    put_byte(&w, e->postcode.out_len);
    put_varint(&w, e->uprn);
    put_byte(&w, e->open_register_optout ? RV_ELECTOR_FLAG_OPTOUT : 0);
    if (!ok || !postcode_ok(&e->postcode))
        return RV_EINVAL;
    if (w.over)
        return RV_ETOOBIG;
    return (long)w.len;
}

struct rbuf {
    const uint8_t *p;
    size_t len, pos;
};

static int get_byte(struct rbuf *r, uint8_t *b)
{
    if (r->pos >= r->len)
        return RV_ECORRUPT;
    *b = r->p[r->pos++];
    return 0;
}

/* Minimal LEB128 of at most max. */
static int get_varint(struct rbuf *r, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;

    for (;;) {
        if (get_byte(r, &b) != 0)
            return RV_ECORRUPT;
        if (shift == 63 && b > 1)
            return RV_ECORRUPT;
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
        if (shift > 63)
            return RV_ECORRUPT;
    }
    if (b == 0 && shift > 0)
        return RV_ECORRUPT; /* not the shortest form */
    if (v > max)
        return RV_ECORRUPT;
    *out = v;
    return 0;
}

static int get_str(struct rbuf *r, char *dst, size_t field)
{
    uint8_t n;

    if (get_byte(r, &n) != 0 || (size_t)n >= field || r->len - r->pos < n)
        return RV_ECORRUPT;
    if (memchr(r->p + r->pos, '\0', n) != NULL || !rv_utf8_valid((const char *)r->p + r->pos, n))
        return RV_ECORRUPT;
    memcpy(dst, r->p + r->pos, n);
    dst[n] = '\0';
    r->pos += n;
    return 0;
}

int rv_elector_decode(const uint8_t *buf, size_t len, struct rv_elector *out)
{
    struct rbuf r = {buf, len, 0};
    uint64_t v;
    uint8_t b, nlines;
    int rc = RV_ECORRUPT;

    memset(out, 0, sizeof(*out));
    if (get_byte(&r, &b) != 0)
        goto out;
    if (b != RV_ELECTOR_WIRE_V1) {
        rc = RV_EVERSION;
        goto out;
    }
    if (get_str(&r, out->area, sizeof(out->area)) != 0 ||
        get_str(&r, out->number.prefix, sizeof(out->number.prefix)) != 0)
        goto out;
    if (get_varint(&r, UINT32_MAX, &v) != 0)
        goto out;
    out->number.number = (uint32_t)v;
    if (get_varint(&r, UINT32_MAX, &v) != 0)
        goto out;
    out->number.suffix = (uint32_t)v;
    if (get_varint(&r, (1u << (sizeof(rv_marker_letters) - 1)) - 1, &v) != 0)
        goto out;
    out->markers.known = (uint16_t)v;
    if (get_str(&r, out->markers.other, sizeof(out->markers.other)) != 0)
        goto out;
    if (get_varint(&r, UINT32_MAX, &v) != 0)
        goto out;
    /* un-zigzag */
    out->attainment = (rv_date)((uint32_t)(v >> 1) ^ (uint32_t)(0u - (uint32_t)(v & 1)));
    if (get_str(&r, out->name.title, sizeof(out->name.title)) != 0 ||
        get_str(&r, out->name.forenames, sizeof(out->name.forenames)) != 0 ||
        get_str(&r, out->name.surname, sizeof(out->name.surname)) != 0 ||
        get_str(&r, out->name.suffix, sizeof(out->name.suffix)) != 0)
        goto out;
    if (get_byte(&r, &nlines) != 0 || nlines > RV_ADDR_LINES)
        goto out;
    for (size_t i = 0; i < nlines; i++)
        if (get_str(&r, out->address[i], sizeof(out->address[i])) != 0)
            goto out;
    if (nlines > 0 && out->address[nlines - 1][0] == '\0')
        goto out; /* the encoder never writes a trailing empty line */
    if (get_str(&r, out->postcode.canon, sizeof(out->postcode.canon)) != 0 ||
        get_byte(&r, &out->postcode.out_len) != 0)
        goto out;
    if (!postcode_ok(&out->postcode))
        goto out;
    if (get_varint(&r, UINT64_MAX, &v) != 0)
        goto out;
    out->uprn = v;
    if (get_byte(&r, &b) != 0 || (b & ~RV_ELECTOR_FLAG_OPTOUT) != 0)
        goto out;
    out->open_register_optout = (b & RV_ELECTOR_FLAG_OPTOUT) != 0;
    if (r.pos != r.len)
        goto out;
    rc = 0;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
