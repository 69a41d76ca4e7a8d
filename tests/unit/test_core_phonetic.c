/*
 * test_core_phonetic.c - Double Metaphone, NYSIIS and Jaro-Winkler against reference tables.
 *
 * The phonetic-surname blind index is only useful if a code computed at ingest equals the
 * code computed years later at a donation check, so each function is pinned to a public
 * implementation: tests/data/phonetic/dmetaphone.tsv comes from PostgreSQL's fuzzystrmatch,
 * nysiis.tsv and jaro_winkler.tsv from the jellyfish library (see the README there). Every
 * row must agree. The rest of the file attacks the edges: non-letters, case, empty and
 * enormous inputs, and the bounds of the similarity score.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* Opens a table under $RV_TEST_DATA/phonetic through the CSV reader (tab-separated). */
static struct rv_csv *open_table(const char *name)
{
    const char *dir = getenv("RV_TEST_DATA");
    char path[4096];
    struct rv_csv *r = NULL;
    struct rv_diag d;

    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/phonetic/%s", dir, name);
    assert_int_equal(
        rv_csv_open(path, &(struct rv_csv_opts){.delim = '\t', .enc = RV_ENC_UTF8}, &r, &d), 0);
    return r;
}

/* Next data row with at least `want` fields (comment lines start with '#'); 0 at the end. */
static int next_row(struct rv_csv *r, char ***f, size_t want)
{
    size_t n;
    int rc;

    while ((rc = rv_csv_next(r, f, &n, NULL)) == 1) {
        if ((*f)[0][0] == '#')
            continue;
        assert_true(n >= want);
        return 1;
    }
    assert_int_equal(rc, 0);
    return 0;
}

static void upper(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] != '\0' && i + 1 < cap; i++)
        out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 'a' + 'A' : s[i]);
    out[i] = '\0';
}

static void test_dmetaphone_reference(void **state)
{
    struct rv_csv *r = open_table("dmetaphone.tsv");
    char **f;
    unsigned rows = 0, bad = 0;

    (void)state;
    while (next_row(r, &f, 3)) {
        char p[RV_PHONETIC_MAX], a[RV_PHONETIC_MAX], p2[RV_PHONETIC_MAX], a2[RV_PHONETIC_MAX];
        char up[256];
        const char *want_alt = strcmp(f[1], f[2]) == 0 ? "" : f[2];

        rv_double_metaphone(f[0], p, a);
        upper(f[0], up, sizeof(up));
        rv_double_metaphone(up, p2, a2);
        rows++;
        if (strcmp(p, f[1]) != 0 || strcmp(a, want_alt) != 0 || strcmp(p, p2) != 0 ||
            strcmp(a, a2) != 0) {
            if (bad++ < 20)
                print_error("dmetaphone line %lu: got %s/%s, want %s/%s\n", rv_csv_line(r), p, a,
                            f[1], want_alt);
        }
    }
    rv_csv_close(r);
    assert_true(rows >= 300);
    assert_int_equal(bad, 0);
}

static void test_nysiis_reference(void **state)
{
    struct rv_csv *r = open_table("nysiis.tsv");
    char **f;
    unsigned rows = 0, bad = 0;

    (void)state;
    while (next_row(r, &f, 3)) {
        char code[RV_PHONETIC_MAX], code2[RV_PHONETIC_MAX], up[256];

        rv_nysiis(f[0], code);
        upper(f[0], up, sizeof(up));
        rv_nysiis(up, code2);
        rows++;
        assert_true(strncmp(f[2], f[1], strlen(f[1])) == 0 && strlen(f[1]) <= 6);
        if (strcmp(code, f[1]) != 0 || strcmp(code, code2) != 0) {
            if (bad++ < 20)
                print_error("nysiis line %lu: got %s, want %s (untruncated %s)\n", rv_csv_line(r),
                            code, f[1], f[2]);
        }
    }
    rv_csv_close(r);
    assert_true(rows >= 300);
    assert_int_equal(bad, 0);
}

static void test_jaro_winkler_reference(void **state)
{
    struct rv_csv *r = open_table("jaro_winkler.tsv");
    char **f;
    unsigned rows = 0, bad = 0;

    (void)state;
    while (next_row(r, &f, 3)) {
        double want = strtod(f[2], NULL), got = rv_jaro_winkler(f[0], f[1]);
        rows++;
        if (fabs(got - want) > 1e-12) {
            if (bad++ < 20)
                print_error("jaro_winkler line %lu: got %.17g, want %.17g\n", rv_csv_line(r), got,
                            want);
        }
    }
    rv_csv_close(r);
    assert_true(rows >= 300);
    assert_int_equal(bad, 0);
}

/* Codes depend on the letters only: punctuation, spaces, digits and non-ASCII are skipped. */
static void test_letters_only(void **state)
{
    static const char *const same[][2] = {
        {"o'brien", "obrien"},
        {"smith-jones", "smithjones"},
        {"mac donald", "macdonald"},
        {" thompson ", "thompson"},
        {"th0mps0n", "thmpsn"},
        {"j\xc3\xb3zef", "jzef"},
        {"\xff\xfe"
         "kn"
         "\x80ight",
         "knight"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        char p1[RV_PHONETIC_MAX], a1[RV_PHONETIC_MAX], p2[RV_PHONETIC_MAX], a2[RV_PHONETIC_MAX];
        char n1[RV_PHONETIC_MAX], n2[RV_PHONETIC_MAX];
        rv_double_metaphone(same[i][0], p1, a1);
        rv_double_metaphone(same[i][1], p2, a2);
        assert_string_equal(p1, p2);
        assert_string_equal(a1, a2);
        rv_nysiis(same[i][0], n1);
        rv_nysiis(same[i][1], n2);
        assert_string_equal(n1, n2);
    }
}

/* Known answers worth stating in the test itself, so a broken table cannot hide them. */
static void test_classics(void **state)
{
    char p[RV_PHONETIC_MAX], a[RV_PHONETIC_MAX], n[RV_PHONETIC_MAX];

    (void)state;
    rv_double_metaphone("smith", p, a);
    assert_string_equal(p, "SM0");
    assert_string_equal(a, "XMT");
    rv_double_metaphone("schmidt", p, a);
    assert_string_equal(p, "XMT");
    assert_string_equal(a, "SMT");
    rv_double_metaphone("thompson", p, a);
    assert_string_equal(p, "TMPS");
    assert_string_equal(a, ""); /* no distinct alternate */
    rv_double_metaphone("", p, a);
    assert_string_equal(p, "");
    assert_string_equal(a, "");
    rv_nysiis("christopher", n);
    assert_string_equal(n, "CRASTA"); /* CRASTAFAR, cut to six */
    rv_nysiis("macdonald", n);
    assert_string_equal(n, "MCDANA");
    rv_nysiis("", n);
    assert_string_equal(n, "");
    rv_nysiis("'-", n);
    assert_string_equal(n, "");
}

/* Very long and degenerate inputs stay within the output buffers. */
static void test_long_inputs(void **state)
{
    static const char *const fills[] = {"a", "sch", "w", "ck", "xz", "ghh", "evh"};
    char *s = malloc(5001);

    (void)state;
    assert_non_null(s);
    for (size_t k = 0; k < sizeof(fills) / sizeof(fills[0]); k++) {
        size_t fl = strlen(fills[k]);
        char p[RV_PHONETIC_MAX], a[RV_PHONETIC_MAX], n[RV_PHONETIC_MAX];
        for (size_t i = 0; i < 5000; i++)
            s[i] = fills[k][i % fl];
        s[5000] = '\0';
        memset(p, 0x55, sizeof(p));
        memset(a, 0x55, sizeof(a));
        memset(n, 0x55, sizeof(n));
        rv_double_metaphone(s, p, a);
        rv_nysiis(s, n);
        assert_true(strlen(p) <= 4 && strlen(a) <= 4 && strlen(n) <= 6);
        double w = rv_jaro_winkler(s, s);
        assert_true(w == 1.0);
    }
    free(s);
}

static void test_jaro_winkler_bounds(void **state)
{
    (void)state;
    assert_true(rv_jaro_winkler("", "") == 0.0);
    assert_true(rv_jaro_winkler("a", "") == 0.0);
    assert_true(rv_jaro_winkler("abc", "xyz") == 0.0);
    assert_true(rv_jaro_winkler("smith", "smith") == 1.0);
    assert_true(rv_jaro_winkler("\xce\xb1\xce\xb2", "\xce\xb1\xce\xb2") == 1.0);
    /* Two Greek names differing in one letter are not identical... */
    assert_true(rv_jaro_winkler("\xce\xb1\xce\xb2\xce\xb3", "\xce\xb1\xce\xb2\xce\xb4") < 1.0);
    /* ...and bytes are not compared one by one: these share a lead byte only. */
    assert_true(rv_jaro_winkler("\xce\xb1", "\xce\xb2") == 0.0);
    /* Invalid UTF-8 is compared byte by byte, never read past its end. */
    assert_true(rv_jaro_winkler("\xce", "\xce") == 1.0);
    assert_true(rv_jaro_winkler("\xf4\x90\x80\x80", "x") == 0.0);
    /* The prefix bonus needs a Jaro score above 0.7 and counts at most four characters. */
    double j = rv_jaro_winkler("abcdefgh", "abcdefgi");
    assert_true(j > 0.9 && j < 1.0);
    assert_true(fabs(rv_jaro_winkler("martha", "marhta") - 0.961111111111111) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dmetaphone_reference),
        cmocka_unit_test(test_nysiis_reference),
        cmocka_unit_test(test_jaro_winkler_reference),
        cmocka_unit_test(test_letters_only),
        cmocka_unit_test(test_classics),
        cmocka_unit_test(test_long_inputs),
        cmocka_unit_test(test_jaro_winkler_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
