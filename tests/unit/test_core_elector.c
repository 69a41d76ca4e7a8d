/*
 * test_core_elector.c - markers, elector numbers and the elector's wire form.
 *
 * The wire form is the plaintext that vault/ seals, so it is attacked as a parser of
 * untrusted bytes: every truncation of a valid record, every single-byte corruption,
 * over-long lengths, non-minimal varints, NUL and invalid UTF-8 inside strings, unknown
 * flag bits and trailing bytes must be refused without reading out of bounds, and a valid
 * record must round-trip exactly. A golden byte string pins the format version 1 layout.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/core.h"

struct marker_case {
    const char *in;
    int rc;
    uint16_t known;
    const char *other;
    const char *formatted;
};

static const struct marker_case marker_cases[] = {
    {"", 0, 0, "", ""},
    {"F", 0, RV_MARK_F, "", "F"},
    {"N", 0, RV_MARK_N, "", "N"},
    {"L", 0, RV_MARK_L, "", "L"},
    {"M", 0, RV_MARK_M, "", "M"},
    {"G", 0, RV_MARK_G, "", "G"},
    {"B", 0, RV_MARK_B, "", "B"},
    {"A", 0, RV_MARK_A, "", "A"},
    {"P", 0, RV_MARK_P, "", "P"},
    {"E", 0, RV_MARK_E, "", "E"},
    {"K", 0, RV_MARK_K, "", "K"},
    {"FA", 0, RV_MARK_F | RV_MARK_A, "", "FA"},
    {"AF", 0, RV_MARK_F | RV_MARK_A, "", "FA"},
    {"F,A", 0, RV_MARK_F | RV_MARK_A, "", "FA"},
    {"F A", 0, RV_MARK_F | RV_MARK_A, "", "FA"},
    {" F ; A / P ", 0, RV_MARK_F | RV_MARK_A | RV_MARK_P, "", "FAP"},
    {"fa", 0, RV_MARK_F | RV_MARK_A, "", "FA"},
    {"FF", 0, RV_MARK_F, "", "F"},
    {"KEPABGMLNF", 0, 0x3FF, "", "FNLMGBAPEK"},
    {"Z", 0, 0, "Z", "Z"},
    {"ZAY", 0, RV_MARK_A, "ZY", "AZY"},
    {"ZZY", 0, 0, "ZY", "ZY"},
    {"z", 0, 0, "z", "z"},
    {"CDHIJOQRSTU", 0, 0, "CDHIJOQRSTU", "CDHIJOQRSTU"},
    {"CDHIJOQRSTUV", RV_ETOOBIG, 0, "", ""},
    {"F1", RV_EPARSE, 0, "", ""},
    {"F-A", RV_EPARSE, 0, "", ""},
    {"F.", RV_EPARSE, 0, "", ""},
    {"\xc3\x89", RV_EPARSE, 0, "", ""},
    {"\x80", RV_EPARSE, 0, "", ""},
    {"F\nA", RV_EPARSE, 0, "", ""},
};

static void test_markers(void **state)
{
    struct rv_markers m;
    char buf[32];
    (void)state;
    for (size_t i = 0; i < sizeof(marker_cases) / sizeof(marker_cases[0]); i++) {
        const struct marker_case *c = &marker_cases[i];
        int rc = rv_markers_parse(c->in, strlen(c->in), &m);
        if (rc != c->rc)
            fail_msg("marker case %zu: rc %d, expected %d", i, rc, c->rc);
        if (rc != 0)
            continue;
        assert_int_equal(m.known, c->known);
        assert_string_equal(m.other, c->other);
        assert_string_equal(rv_markers_format(&m, buf, sizeof(buf)), c->formatted);
    }
    /* NUL inside counted input is not a separator. */
    assert_int_equal(rv_markers_parse("F\0A", 3, &m), RV_EPARSE);
    /* A 10 kB field, even of valid letters, is refused. */
    char big[10240];
    memset(big, 'F', sizeof(big));
    assert_int_equal(rv_markers_parse(big, sizeof(big), &m), RV_ETOOBIG);
    assert_int_equal(m.known, 0);
    /* Format never overruns a short buffer. */
    assert_int_equal(rv_markers_parse("FNLMZ", 5, &m), 0);
    assert_string_equal(rv_markers_format(&m, buf, 3), "FN");
    assert_string_equal(rv_markers_format(&m, buf, 1), "");
}

struct number_case {
    const char *in;
    int rc;
    const char *prefix;
    uint32_t number, suffix;
    const char *formatted;
};

static const struct number_case number_cases[] = {
    {"ABC1-12/1", 0, "ABC1", 12, 1, "ABC1-12/1"},
    {"ABC1-12/0", 0, "ABC1", 12, 0, "ABC1-12"},
    {"ABC1-12", 0, "ABC1", 12, 0, "ABC1-12"},
    {"KD-2/2-289/1", 0, "KD-2/2", 289, 1, "KD-2/2-289/1"},
    {"KD-2/2-289", 0, "KD-2/2", 289, 0, "KD-2/2-289"},
    {"  AA-1  ", 0, "AA", 1, 0, "AA-1"},
    {"AA-0001", 0, "AA", 1, 0, "AA-1"},
    {"AA-4294967295/4294967295", 0, "AA", 4294967295u, 4294967295u, "AA-4294967295/4294967295"},
    {"12/3", 0, "", 12, 3, "12/3"},
    {"12", 0, "", 12, 0, "12"},
    {"-12", 0, "", 12, 0, "12"},
    {"AB.C_1-5", 0, "AB.C_1", 5, 0, "AB.C_1-5"},
    {"", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-/1", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-12/", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-12/1/2", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-12a", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-1 2", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-4294967296", RV_EPARSE, "", 0, 0, ""},
    {"ABC1-99999999999", RV_EPARSE, "", 0, 0, ""},
    {"AB C1-12", RV_EPARSE, "", 0, 0, ""},
    {"AB\xc3\x89-12", RV_EPARSE, "", 0, 0, ""},
    {"AB\x80-12", RV_EPARSE, "", 0, 0, ""},
    {"AB\x01-12", RV_EPARSE, "", 0, 0, ""},
    {"AB-1\t2", RV_EPARSE, "", 0, 0, ""},
    {"ABCDEFGHIJKLMNOPQRSTUVWXYZ-1", RV_ETOOBIG, "", 0, 0, ""},
    {"ABC1-+12", RV_EPARSE, "", 0, 0, ""},
};

static void test_elector_number_parse(void **state)
{
    struct rv_elector_number n, again;
    char buf[64];
    (void)state;
    for (size_t i = 0; i < sizeof(number_cases) / sizeof(number_cases[0]); i++) {
        const struct number_case *c = &number_cases[i];
        int rc = rv_elector_number_parse(c->in, strlen(c->in), &n);
        if (rc != c->rc)
            fail_msg("number case %zu: rc %d, expected %d", i, rc, c->rc);
        if (rc != 0) {
            assert_string_equal(n.prefix, "");
            continue;
        }
        assert_string_equal(n.prefix, c->prefix);
        assert_int_equal(n.number, c->number);
        assert_int_equal(n.suffix, c->suffix);
        assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), c->formatted);
        /* The quoted form parses back to the same number. */
        assert_int_equal(rv_elector_number_parse(buf, strlen(buf), &again), 0);
        assert_string_equal(again.prefix, n.prefix);
        assert_int_equal(again.number, n.number);
        assert_int_equal(again.suffix, n.suffix);
    }
    assert_int_equal(rv_elector_number_parse("AB-1\0/2", 7, &n), RV_EPARSE);
    char big[10240];
    memset(big, 'A', sizeof(big));
    assert_int_equal(rv_elector_number_parse(big, sizeof(big), &n), RV_ETOOBIG);
}

static void test_elector_number_parts(void **state)
{
    struct rv_elector_number n;
    char buf[64];
    (void)state;
    assert_int_equal(rv_elector_number_from_parts("ABC1", "12", "1", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), "ABC1-12/1");
    assert_int_equal(rv_elector_number_from_parts("ABC1", "12", "", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), "ABC1-12");
    assert_int_equal(rv_elector_number_from_parts("ABC1", "12", "0", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), "ABC1-12");
    assert_int_equal(rv_elector_number_from_parts(" KD-2/2 ", " 289 ", " 1 ", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), "KD-2/2-289/1");
    assert_int_equal(rv_elector_number_from_parts("", "7", "", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, sizeof(buf)), "7");
    assert_int_equal(rv_elector_number_from_parts("ABC1", "", "", &n), RV_EPARSE);
    assert_int_equal(rv_elector_number_from_parts("ABC1", "x", "", &n), RV_EPARSE);
    assert_int_equal(rv_elector_number_from_parts("ABC1", "12", "a", &n), RV_EPARSE);
    assert_int_equal(rv_elector_number_from_parts("ABC1", "-12", "", &n), RV_EPARSE);
    assert_int_equal(rv_elector_number_from_parts("A B", "12", "", &n), RV_EPARSE);
    assert_int_equal(rv_elector_number_from_parts("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "1", "", &n),
                     RV_ETOOBIG);
    assert_string_equal(n.prefix, "");
    /* Format truncates safely. */
    assert_int_equal(rv_elector_number_from_parts("ABC1", "12", "1", &n), 0);
    assert_string_equal(rv_elector_number_format(&n, buf, 5), "ABC1");
}

static void sample(struct rv_elector *e)
{
    memset(e, 0, sizeof(*e));
    strcpy(e->area, "E07000223");
    assert_int_equal(rv_elector_number_parse("KD-2/2-289/1", 12, &e->number), 0);
    assert_int_equal(rv_markers_parse("AQ", 2, &e->markers), 0);
    e->attainment = rv_date_from_ymd(2027, 3, 4);
    strcpy(e->name.title, "Dr");
    strcpy(e->name.forenames, "Zo\xc3\xab Anne");
    strcpy(e->name.surname, "O'Brien-Smith");
    strcpy(e->name.suffix, "OBE");
    strcpy(e->address[0], "Flat 2/1");
    strcpy(e->address[2], "10 High Street");
    assert_int_equal(rv_postcode_parse("g12 8qq", 7, &e->postcode), 0);
    e->uprn = 100023336956ull;
    e->open_register_optout = true;
}

static void assert_elector_equal(const struct rv_elector *a, const struct rv_elector *b)
{
    assert_string_equal(a->area, b->area);
    assert_string_equal(a->number.prefix, b->number.prefix);
    assert_int_equal(a->number.number, b->number.number);
    assert_int_equal(a->number.suffix, b->number.suffix);
    assert_int_equal(a->markers.known, b->markers.known);
    assert_string_equal(a->markers.other, b->markers.other);
    assert_int_equal(a->attainment, b->attainment);
    assert_string_equal(a->name.title, b->name.title);
    assert_string_equal(a->name.forenames, b->name.forenames);
    assert_string_equal(a->name.surname, b->name.surname);
    assert_string_equal(a->name.suffix, b->name.suffix);
    for (int i = 0; i < RV_ADDR_LINES; i++)
        assert_string_equal(a->address[i], b->address[i]);
    assert_string_equal(a->postcode.canon, b->postcode.canon);
    assert_int_equal(a->postcode.out_len, b->postcode.out_len);
    assert_int_equal(a->uprn, b->uprn);
    assert_int_equal(a->open_register_optout, b->open_register_optout);
}

static void test_encode_round_trip(void **state)
{
    struct rv_elector e, d;
    uint8_t buf[RV_ELECTOR_WIRE_MAX];
    long n;
    (void)state;
    sample(&e);
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(rv_elector_decode(buf, (size_t)n, &d), 0);
    assert_elector_equal(&e, &d);
    assert_memory_equal(&e, &d, sizeof(e)); /* zero-padded structs compare whole */

    /* Edge values: no attainment, overseas (no address, no postcode), maximum numbers. */
    memset(&e, 0, sizeof(e));
    e.attainment = RV_DATE_NONE;
    e.number.number = UINT32_MAX;
    e.number.suffix = UINT32_MAX;
    e.markers.known = RV_MARK_F;
    e.uprn = UINT64_MAX;
    strcpy(e.name.surname, "X");
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(rv_elector_decode(buf, (size_t)n, &d), 0);
    assert_memory_equal(&e, &d, sizeof(e));
    e.attainment = -1;
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_int_equal(rv_elector_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.attainment, -1);
    e.attainment = RV_DATE_FOREVER;
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_int_equal(rv_elector_decode(buf, (size_t)n, &d), 0);
    assert_int_equal(d.attainment, RV_DATE_FOREVER);
}

/* Every field at its longest still fits RV_ELECTOR_WIRE_MAX. */
static void test_encode_max(void **state)
{
    struct rv_elector e, d;
    uint8_t buf[RV_ELECTOR_WIRE_MAX];
    long n;
    (void)state;
    memset(&e, 'x', sizeof(e));
    e.area[sizeof(e.area) - 1] = '\0';
    e.number.prefix[sizeof(e.number.prefix) - 1] = '\0';
    e.number.number = UINT32_MAX;
    e.number.suffix = UINT32_MAX;
    e.markers.known = 0x3FF;
    e.markers.other[sizeof(e.markers.other) - 1] = '\0';
    e.attainment = INT32_MIN + 1;
    e.name.title[sizeof(e.name.title) - 1] = '\0';
    e.name.forenames[sizeof(e.name.forenames) - 1] = '\0';
    e.name.surname[sizeof(e.name.surname) - 1] = '\0';
    e.name.suffix[sizeof(e.name.suffix) - 1] = '\0';
    for (int i = 0; i < RV_ADDR_LINES; i++)
        e.address[i][RV_ADDR_LINE_MAX - 1] = '\0';
    assert_int_equal(rv_postcode_parse("EC1A 1BB", 8, &e.postcode), 0);
    e.uprn = UINT64_MAX;
    e.open_register_optout = false;
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_true(n > 0 && n <= RV_ELECTOR_WIRE_MAX);
    assert_int_equal(rv_elector_decode(buf, (size_t)n, &d), 0);
    assert_elector_equal(&e, &d);
    /* One byte short of room: refused, not truncated. */
    assert_int_equal(rv_elector_encode(&e, buf, (size_t)n - 1), RV_ETOOBIG);
    assert_int_equal(rv_elector_encode(&e, buf, 0), RV_ETOOBIG);
    /* What decode would refuse, encode refuses too: invalid UTF-8, a postcode whose
     * outward length disagrees with it. */
    struct rv_elector f;
    sample(&f);
    strcpy(f.name.surname, "Sm\xc0\xafith");
    assert_int_equal(rv_elector_encode(&f, buf, sizeof(buf)), RV_EINVAL);
    sample(&f);
    f.postcode.out_len = 4;
    assert_int_equal(rv_elector_encode(&f, buf, sizeof(buf)), RV_EINVAL);
    sample(&f);
    memset(&f.postcode, 0, sizeof(f.postcode));
    f.postcode.out_len = 3;
    assert_int_equal(rv_elector_encode(&f, buf, sizeof(buf)), RV_EINVAL);
    /* An unterminated field is refused rather than read past. */
    e.area[sizeof(e.area) - 1] = 'x';
    assert_int_equal(rv_elector_encode(&e, buf, sizeof(buf)), RV_EINVAL);
}

/* Format version 1, pinned byte for byte. */
static void test_encode_golden(void **state)
{
    struct rv_elector e, d;
    uint8_t buf[RV_ELECTOR_WIRE_MAX];
    /* clang-format off */
    static const uint8_t expect[] = {
        0x01,                               /* version */
        0x03, 'L', 'D', 'S',                /* area */
        0x02, 'A', 'B',                     /* prefix */
        0x8C, 0x01,                         /* number 140 */
        0x02,                               /* suffix 2 */
        0x41,                               /* markers F|A */
        0x00,                               /* no unknown markers */
        0xFF, 0xFF, 0xFF, 0xFF, 0x0F,       /* attainment RV_DATE_NONE, zigzag */
        0x00,                               /* title */
        0x04, 'J', 'o', 'h', 'n',           /* forenames */
        0x05, 'S', 'm', 'i', 't', 'h',      /* surname */
        0x00,                               /* suffix */
        0x01,                               /* one address line */
        0x05, '1', ' ', 'L', 'a', 'n',      /* address[0] */
        0x07, 'L', 'S', '1', ' ', '4', 'A', 'P', 0x03, /* postcode, out_len */
        0x00,                               /* uprn 0 */
        0x01,                               /* flags: opted out */
    };
    /* clang-format on */
    (void)state;
    memset(&e, 0, sizeof(e));
    strcpy(e.area, "LDS");
    strcpy(e.number.prefix, "AB");
    e.number.number = 140;
    e.number.suffix = 2;
    e.markers.known = RV_MARK_F | RV_MARK_A;
    e.attainment = RV_DATE_NONE;
    strcpy(e.name.forenames, "John");
    strcpy(e.name.surname, "Smith");
    strcpy(e.address[0], "1 Lan");
    assert_int_equal(rv_postcode_parse("LS1 4AP", 7, &e.postcode), 0);
    e.open_register_optout = true;
    long n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_int_equal(n, sizeof(expect));
    assert_memory_equal(buf, expect, sizeof(expect));
    assert_int_equal(rv_elector_decode(expect, sizeof(expect), &d), 0);
    assert_memory_equal(&e, &d, sizeof(e));
}

static void test_decode_attacks(void **state)
{
    struct rv_elector e, d;
    uint8_t buf[RV_ELECTOR_WIRE_MAX + 16], bad[RV_ELECTOR_WIRE_MAX + 16];
    long n;
    int accepted = 0;
    (void)state;
    sample(&e);
    n = rv_elector_encode(&e, buf, sizeof(buf));
    assert_true(n > 0);

    /* Every truncation is refused. */
    for (long k = 0; k < n; k++)
        if (rv_elector_decode(buf, (size_t)k, &d) != RV_ECORRUPT)
            fail_msg("truncation to %ld bytes accepted", k);
    /* Trailing bytes are refused. */
    memcpy(bad, buf, (size_t)n);
    bad[n] = 0;
    assert_int_equal(rv_elector_decode(bad, (size_t)n + 1, &d), RV_ECORRUPT);
    /* Unknown version. */
    memcpy(bad, buf, (size_t)n);
    bad[0] = 2;
    assert_int_equal(rv_elector_decode(bad, (size_t)n, &d), RV_EVERSION);
    bad[0] = 0;
    assert_int_equal(rv_elector_decode(bad, (size_t)n, &d), RV_EVERSION);
    /* Unknown flag bits. */
    memcpy(bad, buf, (size_t)n);
    bad[n - 1] = 0x03;
    assert_int_equal(rv_elector_decode(bad, (size_t)n, &d), RV_ECORRUPT);
    /* Every single-byte change is either refused or decodes to something that re-encodes
     * to exactly those bytes (the encoding is canonical). */
    for (long k = 0; k < n; k++) {
        for (int x = 1; x < 256; x <<= 1) {
            memcpy(bad, buf, (size_t)n);
            bad[k] ^= (uint8_t)x;
            if (rv_elector_decode(bad, (size_t)n, &d) == 0) {
                uint8_t re[RV_ELECTOR_WIRE_MAX];
                long m = rv_elector_encode(&d, re, sizeof(re));
                assert_int_equal(m, n);
                assert_memory_equal(re, bad, (size_t)n);
                accepted++;
            }
        }
    }
    assert_true(accepted > 0); /* flipping letters of a name is still a valid record */
    /* An over-long area length (16 >= sizeof area). */
    static const uint8_t long_area[] = {0x01, 0x10, 'A', 'A', 'A', 'A', 'A', 'A', 'A',
                                        'A',  'A',  'A', 'A', 'A', 'A', 'A', 'A', 'A'};
    assert_int_equal(rv_elector_decode(long_area, sizeof(long_area), &d), RV_ECORRUPT);
    /* Length running past the end. */
    static const uint8_t past_end[] = {0x01, 0xFF, 'A'};
    assert_int_equal(rv_elector_decode(past_end, sizeof(past_end), &d), RV_ECORRUPT);
    assert_int_equal(rv_elector_decode(buf, 0, &d), RV_ECORRUPT);
}

/* Builds a record from parts so single fields can be made hostile. */
static size_t build(uint8_t *b, const char *area, const uint8_t *num, size_t numlen,
                    const char *line0, uint8_t nlines, uint8_t flags)
{
    size_t o = 0;
    b[o++] = 1;
    b[o++] = (uint8_t)strlen(area);
    memcpy(b + o, area, strlen(area));
    o += strlen(area);
    b[o++] = 0; /* prefix */
    memcpy(b + o, num, numlen);
    o += numlen;
    b[o++] = 0; /* suffix */
    b[o++] = 0; /* markers */
    b[o++] = 0; /* other */
    b[o++] = 1; /* attainment NONE would be 5 bytes; -1 zigzags to 1 */
    b[o++] = 0; /* title */
    b[o++] = 0; /* forenames */
    b[o++] = 1;
    b[o++] = 'X'; /* surname */
    b[o++] = 0;   /* suffix */
    b[o++] = nlines;
    for (uint8_t i = 0; i < nlines; i++) {
        const char *l = i == nlines - 1 ? line0 : "";
        b[o++] = (uint8_t)strlen(l);
        memcpy(b + o, l, strlen(l));
        o += strlen(l);
    }
    b[o++] = 0; /* postcode */
    b[o++] = 0; /* out_len */
    b[o++] = 0; /* uprn */
    b[o++] = flags;
    return o;
}

static void test_decode_fields(void **state)
{
    uint8_t b[512];
    struct rv_elector d;
    size_t n;
    (void)state;
    n = build(b, "LDS", (const uint8_t *)"\x05", 1, "1 Lane", 1, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), 0);
    assert_int_equal(d.number.number, 5);
    assert_int_equal(d.attainment, -1);
    /* Non-minimal varint: 5 as 0x85 0x00. */
    n = build(b, "LDS", (const uint8_t *)"\x85\x00", 2, "1 Lane", 1, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    /* Number beyond 32 bits. */
    n = build(b, "LDS", (const uint8_t *)"\x80\x80\x80\x80\x10", 5, "1 Lane", 1, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    /* Endless varint. */
    n = build(b, "LDS", (const uint8_t *)"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11,
              "1 Lane", 1, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    /* NUL inside a string. */
    n = build(b, "L\0S", (const uint8_t *)"\x05", 1, "1 Lane", 1, 0);
    b[2] = 'L';
    b[1] = 3;
    b[3] = '\0';
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    /* Invalid UTF-8 inside a string. */
    n = build(b, "L\xc0\xaf", (const uint8_t *)"\x05", 1, "1 Lane", 1, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    /* Too many address lines; a trailing empty line (not canonical). */
    n = build(b, "LDS", (const uint8_t *)"\x05", 1, "1 Lane", 7, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    n = build(b, "LDS", (const uint8_t *)"\x05", 1, "", 2, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    n = build(b, "LDS", (const uint8_t *)"\x05", 1, "x", 6, 0);
    assert_int_equal(rv_elector_decode(b, n, &d), 0);
    assert_string_equal(d.address[5], "x");
    assert_string_equal(d.address[0], "");
    /* Unknown flag bit. */
    n = build(b, "LDS", (const uint8_t *)"\x05", 1, "1 Lane", 1, 0x80);
    assert_int_equal(rv_elector_decode(b, n, &d), RV_ECORRUPT);
    assert_string_equal(d.area, ""); /* nothing half-decoded is left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_markers),
        cmocka_unit_test(test_elector_number_parse),
        cmocka_unit_test(test_elector_number_parts),
        cmocka_unit_test(test_encode_round_trip),
        cmocka_unit_test(test_encode_max),
        cmocka_unit_test(test_encode_golden),
        cmocka_unit_test(test_decode_attacks),
        cmocka_unit_test(test_decode_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
