/*
 * test_core_text.c - UTF-8 validation, Windows-1252 conversion, BOMs, field cleaning and the
 * fold that every blind index depends on.
 *
 * The validator is attacked with every class of malformed UTF-8 (lone continuation bytes,
 * overlongs, surrogates, truncation, beyond U+10FFFF), because a lenient decoder lets two
 * byte strings that differ fold to one key. The fold tables are known-answer pairs for each
 * rule: case, accents, the extra Latin letters, apostrophes, punctuation and white space.
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

struct utf8_case {
    const char *s;
    size_t len; /* 0: strlen */
    bool valid;
};

static const struct utf8_case utf8_cases[] = {
    {"", 0, true},
    {"plain ascii", 0, true},
    {"Zo\xc3\xab", 0, true},        /* Zoë */
    {"\xe2\x82\xac", 0, true},      /* € */
    {"\xf0\x9f\x98\x80", 0, true},  /* U+1F600 */
    {"\xf4\x8f\xbf\xbf", 0, true},  /* U+10FFFF, the last code point */
    {"\xed\x9f\xbf", 0, true},      /* U+D7FF, just below the surrogates */
    {"\xee\x80\x80", 0, true},      /* U+E000, just above */
    {"a\0b", 3, true},              /* NUL is a valid code point */
    {"\x80", 0, false},             /* lone continuation */
    {"abc\xbf", 0, false},          /* trailing continuation */
    {"\xc0\xaf", 0, false},         /* overlong '/' */
    {"\xc1\xbf", 0, false},         /* overlong */
    {"\xe0\x80\xaf", 0, false},     /* overlong 3-byte */
    {"\xe0\x9f\xbf", 0, false},     /* overlong U+07FF */
    {"\xf0\x80\x80\xaf", 0, false}, /* overlong 4-byte */
    {"\xf0\x8f\xbf\xbf", 0, false}, /* overlong U+FFFF */
    {"\xed\xa0\x80", 0, false},     /* U+D800 high surrogate */
    {"\xed\xbf\xbf", 0, false},     /* U+DFFF low surrogate */
    {"\xf4\x90\x80\x80", 0, false}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, false}, /* lead byte beyond range */
    {"\xff", 0, false},             /* never valid */
    {"\xfe", 0, false},             /* never valid */
    {"\xc3", 0, false},             /* truncated 2-byte */
    {"\xe2\x82", 0, false},         /* truncated 3-byte */
    {"\xf0\x9f\x98", 0, false},     /* truncated 4-byte */
    {"\xc3\x41", 0, false},         /* lead then ASCII */
    {"Zo\xeb", 0, false},           /* Windows-1252 ë */
    {"\xe2\x82\xac", 2, false},     /* truncated by the length, not a NUL */
};

static void test_utf8_valid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        const struct utf8_case *c = &utf8_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->s);
        if (rv_utf8_valid(c->s, len) != c->valid)
            fail_msg("utf8 case %zu: expected %s", i, c->valid ? "valid" : "invalid");
    }
}

/* Every byte 0x80..0xFF converts to valid UTF-8, and the table is the published one. */
static void test_cp1252_table(void **state)
{
    static const struct {
        unsigned char b;
        const char *utf8;
    } known[] = {
        {0x80, "\xe2\x82\xac"}, {0x82, "\xe2\x80\x9a"},
        {0x83, "\xc6\x92"},     {0x84, "\xe2\x80\x9e"},
        {0x85, "\xe2\x80\xa6"}, {0x86, "\xe2\x80\xa0"},
        {0x87, "\xe2\x80\xa1"}, {0x88, "\xcb\x86"},
        {0x89, "\xe2\x80\xb0"}, {0x8A, "\xc5\xa0"},
        {0x8B, "\xe2\x80\xb9"}, {0x8C, "\xc5\x92"},
        {0x8E, "\xc5\xbd"},     {0x91, "\xe2\x80\x98"},
        {0x92, "\xe2\x80\x99"}, {0x93, "\xe2\x80\x9c"},
        {0x94, "\xe2\x80\x9d"}, {0x95, "\xe2\x80\xa2"},
        {0x96, "\xe2\x80\x93"}, {0x97, "\xe2\x80\x94"},
        {0x98, "\xcb\x9c"},     {0x99, "\xe2\x84\xa2"},
        {0x9A, "\xc5\xa1"},     {0x9B, "\xe2\x80\xba"},
        {0x9C, "\xc5\x93"},     {0x9E, "\xc5\xbe"},
        {0x9F, "\xc5\xb8"},     {0x81, "\xef\xbf\xbd"},
        {0x8D, "\xef\xbf\xbd"}, {0x8F, "\xef\xbf\xbd"},
        {0x90, "\xef\xbf\xbd"}, {0x9D, "\xef\xbf\xbd"},
        {0xA0, "\xc2\xa0"},     {0xA3, "\xc2\xa3"},
        {0xE9, "\xc3\xa9"},     {0xEB, "\xc3\xab"},
        {0xFF, "\xc3\xbf"},     {0x41, "A"},
    };
    char out[8];
    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        char in = (char)known[i].b;
        size_t n = rv_cp1252_to_utf8(&in, 1, out);
        assert_int_equal(n, strlen(known[i].utf8));
        assert_string_equal(out, known[i].utf8);
    }
    for (int b = 0; b < 256; b++) {
        char in = (char)b;
        size_t n = rv_cp1252_to_utf8(&in, 1, out);
        assert_true(n >= 1 && n <= 3);
        assert_true(rv_utf8_valid(out, n));
    }
}

static void test_cp1252_round_trip(void **state)
{
    char in[256], utf8[3 * 256 + 1], back[3 * 256 + 1];
    (void)state;
    for (int b = 0; b < 256; b++)
        in[b] = (char)b;
    size_t n = rv_cp1252_to_utf8(in, sizeof(in), utf8);
    long m = rv_utf8_to_cp1252(utf8, n, back);
    assert_int_equal(m, 256);
    for (int b = 0; b < 256; b++) {
        bool undefined = b == 0x81 || b == 0x8D || b == 0x8F || b == 0x90 || b == 0x9D;
        assert_int_equal((unsigned char)back[b], undefined ? '?' : b);
    }
    /* A name with a 1252 apostrophe and accent: O’Brien Zoë. */
    n = rv_cp1252_to_utf8("O\x92"
                          "Brien Zo\xeb",
                          11, utf8);
    assert_string_equal(utf8, "O\xe2\x80\x99"
                              "Brien Zo\xc3\xab");
    assert_int_equal(n, strlen(utf8));
}

static void test_utf8_to_cp1252(void **state)
{
    char out[64];
    (void)state;
    assert_int_equal(rv_utf8_to_cp1252("\xe2\x82\xac"
                                       "5",
                                       4, out),
                     2);
    assert_memory_equal(out,
                        "\x80"
                        "5",
                        3);
    /* Not representable: Polish ł, a CJK character, an emoji. */
    assert_int_equal(rv_utf8_to_cp1252("\xc5\x82"
                                       "a",
                                       3, out),
                     2);
    assert_string_equal(out, "?a");
    assert_int_equal(rv_utf8_to_cp1252("\xe6\x97\xa5\xf0\x9f\x98\x80", 7, out), 2);
    assert_string_equal(out, "??");
    /* Invalid input is refused. */
    assert_int_equal(rv_utf8_to_cp1252("\xc0\xaf", 2, out), RV_EPARSE);
    assert_int_equal(rv_utf8_to_cp1252("ab\xed\xa0\x80", 5, out), RV_EPARSE);
    assert_int_equal(rv_utf8_to_cp1252("ab\xc3", 3, out), RV_EPARSE);
    assert_int_equal(rv_utf8_to_cp1252("", 0, out), 0);
    assert_string_equal(out, "");
}

static void test_bom(void **state)
{
    (void)state;
    assert_int_equal(rv_bom_len("\xef\xbb\xbf"
                                "a,b",
                                6),
                     3);
    assert_int_equal(rv_bom_len("\xef\xbb\xbf", 3), 3);
    assert_int_equal(rv_bom_len("\xef\xbb", 2), 0);
    assert_int_equal(rv_bom_len("a,b", 3), 0);
    assert_int_equal(rv_bom_len("\xff\xfe", 2), 0); /* UTF-16 BOM is not ours */
    assert_int_equal(rv_bom_len("", 0), 0);
}

struct clean_case {
    const char *in;
    size_t len; /* 0: strlen */
    size_t outsz;
    int rc;
    const char *out;
};

static const struct clean_case clean_cases[] = {
    {"  John   Smith  ", 0, 64, 0, "John Smith"},
    {"John\tSmith", 0, 64, 0, "John Smith"},
    {"John\r\nSmith", 0, 64, 0, "John Smith"},
    {"\x01\x02John\x7f", 0, 64, 0, "John"},
    {"a\0b", 3, 64, 0, "a b"}, /* NUL inside counted input */
    {"Jos\xc3\xa9\xc2\xa0"
     "Garc\xc3\xad"
     "a",
     0, 64, 0,
     "Jos\xc3\xa9 Garc\xc3\xad"
     "a"}, /* NBSP */
    {"A\xc2\x85"
     "B",
     0, 64, 0, "A B"}, /* C1 NEL */
    {"A\xe2\x80\x83"
     "B",
     0, 64, 0, "A B"}, /* em space */
    {"A\xe2\x80\x8b"
     "B",
     0, 64, 0, "AB"}, /* zero-width space */
    {"\xef\xbb\xbf"
     "Smith",
     0, 64, 0, "Smith"}, /* BOM inside a field */
    {"", 0, 64, 0, ""},
    {"     ", 0, 64, 0, ""},
    {"abc", 0, 4, 0, "abc"},
    {"abcd", 0, 4, RV_ETOOBIG, ""},
    {"ab  cd", 0, 5, RV_ETOOBIG, ""},
    {"\xc3\xa9\xc3\xa9", 0, 4, RV_ETOOBIG, ""}, /* never splits a character */
    {"ab\x80", 0, 64, RV_EPARSE, ""},
    {"\xc0\xaf", 0, 64, RV_EPARSE, ""},
    {"\xed\xa0\x80", 0, 64, RV_EPARSE, ""},
    {"\xe2\x82", 0, 64, RV_EPARSE, ""},
};

static void test_text_clean(void **state)
{
    char out[64];
    (void)state;
    for (size_t i = 0; i < sizeof(clean_cases) / sizeof(clean_cases[0]); i++) {
        const struct clean_case *c = &clean_cases[i];
        size_t len = c->len != 0 ? c->len : strlen(c->in);
        int rc = rv_text_clean(c->in, len, out, c->outsz);
        if (rc != c->rc)
            fail_msg("clean case %zu: rc %d, expected %d", i, rc, c->rc);
        if (rc == 0 && strcmp(out, c->out) != 0)
            fail_msg("clean case %zu: wrong output", i);
        if (rc != 0)
            assert_string_equal(out, ""); /* never half a result */
    }
    assert_int_equal(rv_text_clean("a", 1, out, 0), RV_ETOOBIG);
}

static void test_text_clean_10k(void **state)
{
    char *big = malloc(10240), out[256];
    (void)state;
    assert_non_null(big);
    memset(big, 'x', 10240);
    assert_int_equal(rv_text_clean(big, 10240, out, sizeof(out)), RV_ETOOBIG);
    free(big);
}

struct fold_case {
    const char *in;
    const char *out;
};

static const struct fold_case fold_cases[] = {
    {"SMITH", "smith"},
    {"  John   SMITH ", "john smith"},
    {"O'Brien", "obrien"},
    {"O\xe2\x80\x99"
     "Brien",
     "obrien"}, /* ’ */
    {"O\xe2\x80\x98"
     "Brien",
     "obrien"}, /* ‘ */
    {"O`Brien", "obrien"},
    {"O\xc2\xb4"
     "Brien",
     "obrien"}, /* ´ standing alone */
    {"O\xca\xbc"
     "Brien",
     "obrien"}, /* ʼ modifier apostrophe */
    {"Smith-Jones", "smith jones"},
    {"Smith\xe2\x80\x93"
     "Jones",
     "smith jones"}, /* en dash */
    {"St. John's Rd.", "st johns rd"},
    {"Jos\xc3\xa9", "jose"},   /* é precomposed */
    {"Jose\xcc\x81", "jose"},  /* é decomposed */
    {"JOS\xc3\x89", "jose"},   /* É */
    {"Mu\xc3\xb1oz", "munoz"}, /* ñ */
    {"Zo\xc3\xab", "zoe"},     /* ë */
    {"ZO\xc3\x8b", "zoe"},     /* Ë */
    {"Bront\xc3\xab", "bronte"},
    {"\xc5\x81ukasz", "lukasz"},        /* Ł */
    {"Wa\xc5\x82\xc4\x99sa", "walesa"}, /* ł ę */
    {"S\xc3\xb8ren", "soren"},          /* ø */
    {"S\xc3\x98REN", "soren"},          /* Ø */
    {"Stra\xc3\x9f"
     "e",
     "strasse"}, /* ß */
    {"STRA\xe1\xba\x9e"
     "E",
     "strasse"},                      /* ẞ */
    {"\xc3\x86thelred", "aethelred"}, /* Æ */
    {"\xc3\xa6sir", "aesir"},         /* æ */
    {"\xc3\x9e\xc3\xb3rr", "thorr"},  /* Þ ó */
    {"\xc3\xbe\xc3\xb3r", "thor"},    /* þ */
    {"\xc4\x90or\xc4\x91"
     "e",
     "dorde"},                          /* Đ đ */
    {"\xc3\x90\xc3\xb3ra", "dora"},     /* Ð */
    {"\xc5\x92uvre", "oeuvre"},         /* Œ */
    {"c\xc5\x93ur", "coeur"},           /* œ */
    {"\xc4\xb0stanbul", "istanbul"},    /* İ: the dot is a mark, stripped */
    {"Y\xc4\xb1lmaz", "yilmaz"},        /* dotless ı */
    {"Fran\xc3\xa7ois", "francois"},    /* ç */
    {"\xc3\x85sa", "asa"},              /* Å */
    {"\xef\xbc\xa1\xef\xbc\xa2", "ab"}, /* fullwidth Ａ Ｂ (NFKC) */
    {"\xef\xac\x81"
     "sh",
     "fish"}, /* ﬁ ligature */
    {"\xce\x9a\xce\xbf\xcf\x83\xcf\x84\xce\xb1\xcf\x82",
     "\xce\xba\xce\xbf\xcf\x83\xcf\x84\xce\xb1\xcf\x83"},
    /* Greek is kept, folded (final sigma to sigma) */
    {"Smith & Sons", "smith sons"},
    {"a.b,c;d", "a b c d"},
    {"10A", "10a"},
    {"", ""},
    {"   ", ""},
    {"'''", ""},
    {"Soft\xc2\xad"
     "hyphen",
     "softhyphen"}, /* default-ignorable removed */
    {"Tab\tand\nnewline", "tab and newline"},
    {"Nul\x01"
     "ctl",
     "nul ctl"},
};

static void test_fold_table(void **state)
{
    char out[128];
    (void)state;
    for (size_t i = 0; i < sizeof(fold_cases) / sizeof(fold_cases[0]); i++) {
        const struct fold_case *c = &fold_cases[i];
        int rc = rv_fold(c->in, strlen(c->in), out, sizeof(out));
        if (rc != 0)
            fail_msg("fold case %zu: rc %d", i, rc);
        if (strcmp(out, c->out) != 0)
            fail_msg("fold case %zu: got a different form (len %zu, expected %zu)", i, strlen(out),
                     strlen(c->out));
    }
}

/* The ASCII fast path and the Unicode path must agree: an ASCII string with one accented
 * letter appended folds to the ASCII fold plus "e". */
static void test_fold_paths_agree(void **state)
{
    char ascii[256], a[128], b[128];
    (void)state;
    for (int c = 1; c < 128; c++) {
        snprintf(ascii, sizeof(ascii), "x%cy", c);
        assert_int_equal(rv_fold(ascii, strlen(ascii), a, sizeof(a)), 0);
        snprintf(ascii, sizeof(ascii), "x%cy\xc3\xa9", c);
        assert_int_equal(rv_fold(ascii, strlen(ascii), b, sizeof(b)), 0);
        size_t n = strlen(a);
        if (strncmp(a, b, n) != 0 || strcmp(b + n, "e") != 0)
            fail_msg("fold paths differ for byte %d", c);
    }
}

static void test_fold_hostile(void **state)
{
    char out[128];
    char *big;
    (void)state;
    assert_int_equal(rv_fold("\x80", 1, out, sizeof(out)), RV_EPARSE);
    assert_string_equal(out, "");
    assert_int_equal(rv_fold("ab\xc0\xaf", 4, out, sizeof(out)), RV_EPARSE);
    assert_int_equal(rv_fold("\xed\xa0\x80", 3, out, sizeof(out)), RV_EPARSE);
    assert_int_equal(rv_fold("\xf4\x90\x80\x80", 4, out, sizeof(out)), RV_EPARSE);
    assert_int_equal(rv_fold("Zo\xc3", 3, out, sizeof(out)), RV_EPARSE);
    assert_int_equal(rv_fold("Zo\xeb", 3, out, sizeof(out)), RV_EPARSE);
    /* NUL inside counted input is a separator, not an end. */
    assert_int_equal(rv_fold("ab\0cd", 5, out, sizeof(out)), 0);
    assert_string_equal(out, "ab cd");
    assert_int_equal(rv_fold("\xc3\xa9\0\xc3\xa9", 5, out, sizeof(out)), 0);
    assert_string_equal(out, "e e");
    /* Output exactly fits, then one byte short. */
    assert_int_equal(rv_fold("ABC", 3, out, 4), 0);
    assert_int_equal(rv_fold("ABCD", 4, out, 4), RV_ETOOBIG);
    assert_string_equal(out, "");
    assert_int_equal(rv_fold("\xc3\x86\xc3\x86", 4, out, 4), RV_ETOOBIG); /* "aeae" */
    assert_int_equal(rv_fold("x", 1, out, 0), RV_ETOOBIG);
    /* 10 kB fields. */
    big = malloc(10240);
    assert_non_null(big);
    memset(big, 'a', 10240);
    assert_int_equal(rv_fold(big, 10240, out, sizeof(out)), RV_ETOOBIG);
    for (size_t i = 0; i + 1 < 10240; i += 2)
        memcpy(big + i, "\xc3\xa9", 2);
    assert_int_equal(rv_fold(big, 10240, out, sizeof(out)), RV_ETOOBIG);
    /* Combining marks alone vanish rather than crash. */
    for (size_t i = 0; i + 1 < 10240; i += 2)
        memcpy(big + i, "\xcc\x81", 2);
    assert_int_equal(rv_fold(big, 10240, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_cp1252_table),
        cmocka_unit_test(test_cp1252_round_trip),
        cmocka_unit_test(test_utf8_to_cp1252),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_text_clean),
        cmocka_unit_test(test_text_clean_10k),
        cmocka_unit_test(test_fold_table),
        cmocka_unit_test(test_fold_paths_agree),
        cmocka_unit_test(test_fold_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
