/*
 * test_ingest_load.c - several register files in one store transaction (rv_ingest_load):
 * a refused file in the middle leaves the files before it stored and itself absent; the
 * same file twice, or a file ingested before, is `already`; two editions of one area, and
 * an edition with its alterations, in one load give the statistics that one file per
 * transaction gives; an edition older than one earlier in the load is refused.
 */
#include "ingest/ingest.h"
#include "vault/vault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "testutil.h"
#include <sodium.h>

#define HEADER                                                                                     \
    "Elector Number Prefix,Elector Number,Elector Number Suffix,Elector Markers,Elector DOB,"      \
    "Elector Name,PostCode,Address1,Address2,Address3,Address4,Address5,Address6\n"
#define ALT_HEADER                                                                                 \
    "Elector Number Prefix,Elector Number,Elector Number Suffix,Elector Markers,Elector DOB,"      \
    "Elector Name,PostCode,Address1,Address2,Address3,Address4,Address5,Address6,"                 \
    "ElectorCreatedMonth,ElectorChangedMonth,ElectorDeletedMonth\n"

/* An edition of four electors, and the next year's: one moved, one left, one new. */
static const char ED1[] = HEADER "AB1,1,,,,\"Smith, John\",LS1 4AB,10 High Street,Leeds,,,,\n"
                                 "AB1,2,,A,,\"Smith, Mary\",LS1 4AB,10 High Street,Leeds,,,,\n"
                                 "AB1,3,,,,\"Okafor, Chidi\",LS2 7DB,Flat 2,44 Park Lane,Leeds,,,\n"
                                 "AB2,1,,F,,\"Wright, Elaine\",,,,,,,\n";
static const char ED2[] = HEADER "AB1,1,,,,\"Smith, John\",LS1 4AB,10 High Street,Leeds,,,,\n"
                                 "AB1,3,,,,\"Okafor, Chidi\",LS2 7DB,Flat 9,44 Park Lane,Leeds,,,\n"
                                 "AB2,1,,F,,\"Wright, Elaine\",,,,,,,\n"
                                 "AB2,2,,,,\"Nguyen, Thi\",LS3 1EF,The Old Mill,Leeds,,,,\n";
static const char ALT[] =
    ALT_HEADER "AB1,7,,,,\"Nguyen, Thi\",LS3 1EF,The Old Mill,Leeds,,,,,01/03/2026,,\n"
               "AB1,3,,,,\"Okafor, Chidi\",LS2 7DB,Flat 3,44 Park Lane,Leeds,,,,,2026-03,\n"
               "AB2,2,,,,\"Nguyen, Thi\",LS3 1EF,The Old Mill,Leeds,,,,,,,2026-04\n";
/* Rows that cannot be used: a ragged row and a bad postcode. */
static const char BAD[] = HEADER "CD1,1,,,,\"Jones, Ann\",LS1 4AB,1 Low Road,Leeds,,,,\n"
                                 "CD1,2,,,\"Jones, Bob\"\n"
                                 "CD1,3,,,,\"Jones, Cat\",QQ99 9ZZZ,1 Low Road,Leeds,,,,\n";

/* Another file with a row that cannot be used. */
static const char BAD2[] = HEADER "CD1,4,,,,\"Jones, Dan\",LS1 4AB,1 Low Road,Leeds,,,,\n"
                                  "CD1,5,,,\"Jones, Eve\"\n";

static char dir[256];
static uint8_t keyfile[32];

static int setup(void **state)
{
    struct rv_vault_secret s = {NULL, 0, keyfile};
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/rv-test-load-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    if (rv_vault_create(dir, &s, 100000) != 0)
        return -1;
    snprintf(dir + strlen(dir), sizeof(dir) - strlen(dir), "/v2");
    if (rv_vault_create(dir, &s, 100000) != 0)
        return -1;
    dir[strlen(dir) - 3] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rv_test_rmtree(dir);
    return 0;
}

/* The vault (second: the one for one file per transaction). */
static struct rv_vault *open_vault(bool second)
{
    struct rv_vault *v = NULL;
    struct rv_vault_secret s = {NULL, 0, keyfile};
    char p[300];
    snprintf(p, sizeof(p), "%s%s", dir, second ? "/v2" : "");
    assert_int_equal(rv_vault_open(p, &s, &v), 0);
    return v;
}

/* Writes a file under the test folder; returns its path (a static buffer per slot). */
static const char *put_file(int slot, const char *name, const char *body)
{
    static char paths[8][300];
    FILE *f;
    snprintf(paths[slot], sizeof(paths[slot]), "%s/%s", dir, name);
    f = fopen(paths[slot], "w");
    assert_non_null(f);
    assert_int_equal(fwrite(body, 1, strlen(body), f), strlen(body));
    assert_int_equal(fclose(f), 0);
    return paths[slot];
}

static struct rv_ingest_file file(const char *path, const char *area, rv_date ed, bool alt)
{
    struct rv_ingest_file f;
    memset(&f, 0, sizeof(f));
    f.path = path;
    f.o.area = area;
    f.o.edition = ed;
    f.o.alterations = alt;
    f.o.single_thread = true;
    return f;
}

static bool in_force(struct rv_vault *v, const char *area, const char *number)
{
    struct rv_elector_number num;
    uint64_t id;
    assert_int_equal(rv_elector_number_parse(number, strlen(number), &num), 0);
    return rv_vault_current(v, area, &num, &id) == 0;
}

struct count_ctx {
    unsigned files;
    struct rv_file_stats st[8];
};

static int count_one(void *ctx, const struct rv_file_stats *st)
{
    struct count_ctx *c = ctx;
    if (c->files < 8)
        c->st[c->files] = *st;
    c->files++;
    return 0;
}

static unsigned files_stored(struct rv_vault *v)
{
    struct count_ctx c = {0};
    assert_int_equal(rv_vault_stats(v, count_one, &c), 0);
    return c.files;
}

/* A refused file in the middle of a load: the file before it is stored (and readable:
 * its data key is the one stored, not one of the abandoned attempt), the refused file is
 * absent, the one after it not tried. */
static void test_refused_file_in_a_load(void **state)
{
    struct rv_vault *v = open_vault(false);
    rv_date d = rv_date_from_ymd(2025, 12, 1);
    struct rv_ingest_file f[3] = {
        file(put_file(0, "a.csv", ED1), "AREAA", d, false),
        file(put_file(1, "bad.csv", BAD), "AREAB", d, false),
        file(put_file(2, "c.csv", ED2), "AREAC", d, false),
    };
    struct rv_elector_number num;
    struct rv_version ver;
    uint64_t id;
    size_t done = 9;

    (void)state;
    assert_int_equal(rv_ingest_load(v, f, 3, &done), 0);
    assert_int_equal(done, 2);
    assert_int_equal(f[0].rc, 0);
    assert_false(f[0].res.rejected);
    assert_false(f[0].res.already);
    assert_int_equal(f[0].res.st.stored, 4);
    assert_int_equal(f[1].rc, 0);
    assert_true(f[1].res.rejected);
    assert_int_equal(f[1].res.st.invalid, 1);
    assert_int_equal(f[1].res.first_error.line, 3);

    /* Opened again, so that no key cached by the first attempt can hide a wrong one. */
    rv_vault_close(v);
    v = open_vault(false);
    assert_int_equal(files_stored(v), 1);
    assert_true(in_force(v, "AREAA", "AB1-1"));
    assert_false(in_force(v, "AREAB", "CD1-1"));
    assert_false(in_force(v, "AREAC", "AB1-1"));
    assert_int_equal(rv_elector_number_parse("AB1-3", 5, &num), 0);
    assert_int_equal(rv_vault_current(v, "AREAA", &num, &id), 0);
    assert_int_equal(rv_vault_fetch(v, id, &ver), 0);
    assert_string_equal(ver.e.address[0], "Flat 2");
    sodium_memzero(&ver, sizeof(ver));
    rv_vault_close(v);

    /* With room for the bad rows, all three go in; the first is already there. */
    v = open_vault(false);
    for (int i = 0; i < 3; i++)
        f[i].o.max_errors = 2;
    assert_int_equal(rv_ingest_load(v, f, 3, &done), 0);
    assert_int_equal(done, 3);
    assert_true(f[0].res.already);
    assert_false(f[1].res.rejected);
    assert_int_equal(f[1].res.st.stored, 1);
    assert_int_equal(f[2].res.st.stored, 4);
    assert_int_equal(files_stored(v), 3);
    assert_true(in_force(v, "AREAB", "CD1-1"));
    assert_true(in_force(v, "AREAC", "AB2-2"));
    rv_vault_close(v);
}

/* A file that cannot be read stops the load before anything is written; the files before
 * it are stored. */
static void test_unreadable_file_in_a_load(void **state)
{
    struct rv_vault *v = open_vault(false);
    rv_date d = rv_date_from_ymd(2025, 12, 1);
    struct rv_ingest_file f[3] = {
        file(put_file(0, "a.csv", ED1), "AREAA", d, false),
        file("/nonexistent/full.csv", "AREAB", d, false),
        file(put_file(2, "c.csv", ED2), "AREAC", d, false),
    };
    size_t done = 9;

    (void)state;
    assert_int_equal(rv_ingest_load(v, f, 3, &done), RV_ENOTFOUND);
    assert_int_equal(done, 2);
    assert_int_equal(f[0].rc, 0);
    assert_int_equal(f[0].res.st.stored, 4);
    assert_int_equal(f[1].rc, RV_ENOTFOUND);
    assert_int_equal(files_stored(v), 1);
    assert_false(in_force(v, "AREAC", "AB1-1"));
    rv_vault_close(v);
}

static void count_error(void *ctx, const struct rv_diag *d)
{
    (void)d;
    ++*(unsigned *)ctx;
}

/* The refused rows of a file are reported once, although a refused file after it makes
 * the load read it again. */
static void test_refused_rows_reported_once(void **state)
{
    struct rv_vault *v = open_vault(false);
    rv_date d = rv_date_from_ymd(2025, 12, 1);
    struct rv_ingest_file f[2] = {
        file(put_file(0, "bad.csv", BAD), "AREAB", d, false),
        file(put_file(1, "bad2.csv", BAD2), "AREAC", d, false),
    };
    unsigned n0 = 0, n1 = 0;
    size_t done = 0;

    (void)state;
    f[0].o.max_errors = 2;
    f[0].o.on_error = count_error;
    f[0].o.ctx = &n0;
    f[1].o.on_error = count_error;
    f[1].o.ctx = &n1;
    assert_int_equal(rv_ingest_load(v, f, 2, &done), 0);
    assert_int_equal(done, 2);
    assert_false(f[0].res.rejected);
    assert_int_equal(f[0].res.st.invalid, 2);
    assert_true(f[1].res.rejected);
    assert_int_equal(n0, 2);
    assert_int_equal(n1, 1);
    assert_int_equal(files_stored(v), 1);
    assert_true(in_force(v, "AREAB", "CD1-1"));
    assert_false(in_force(v, "AREAC", "CD1-1"));
    rv_vault_close(v);
}

/* The same file twice in one load, and a copy of it under another name: stored once. */
static void test_same_file_twice(void **state)
{
    struct rv_vault *v = open_vault(false);
    rv_date d = rv_date_from_ymd(2025, 12, 1);
    const char *a = put_file(0, "a.csv", ED1);
    struct rv_ingest_file f[3] = {
        file(a, "AREAA", d, false),
        file(a, "AREAA", d, false),
        file(put_file(1, "copy-of-a.csv", ED1), "AREAA", d, false),
    };
    size_t done = 0;

    (void)state;
    assert_int_equal(rv_ingest_load(v, f, 3, &done), 0);
    assert_int_equal(done, 3);
    assert_false(f[0].res.already);
    assert_int_equal(f[0].res.st.stored, 4);
    for (int i = 1; i < 3; i++) {
        assert_int_equal(f[i].rc, 0);
        assert_true(f[i].res.already);
        assert_int_equal(f[i].res.st.seq, f[0].res.st.seq);
        assert_int_equal(f[i].res.st.stored, 4);
    }
    assert_int_equal(files_stored(v), 1);
    rv_vault_close(v);
}

/* A file ingested before, and a new one, in one load. */
static void test_before_and_new(void **state)
{
    struct rv_vault *v = open_vault(false);
    rv_date d = rv_date_from_ymd(2025, 12, 1);
    struct rv_ingest_file f[2] = {
        file(put_file(0, "a.csv", ED1), "AREAA", d, false),
        file(put_file(1, "c.csv", ED2), "AREAC", d, false),
    };
    size_t done = 0;

    (void)state;
    assert_int_equal(rv_ingest_load(v, f, 1, &done), 0);
    assert_int_equal(done, 1);
    assert_int_equal(files_stored(v), 1);
    assert_int_equal(rv_ingest_load(v, f, 2, &done), 0);
    assert_int_equal(done, 2);
    assert_true(f[0].res.already);
    assert_false(f[1].res.already);
    assert_int_equal(f[1].res.st.stored, 4);
    assert_int_equal(files_stored(v), 2);
    assert_true(in_force(v, "AREAC", "AB2-2"));
    rv_vault_close(v);
}

static void assert_same_stats(const struct rv_file_stats *a, const struct rv_file_stats *b)
{
    assert_string_equal(a->area, b->area);
    assert_int_equal(a->kind, b->kind);
    assert_int_equal(a->date, b->date);
    assert_int_equal(a->eff_first, b->eff_first);
    assert_int_equal(a->eff_last, b->eff_last);
    assert_int_equal(a->rows, b->rows);
    assert_int_equal(a->stored, b->stored);
    assert_int_equal(a->unchanged, b->unchanged);
    assert_int_equal(a->closed, b->closed);
    assert_int_equal(a->on_register, b->on_register);
    assert_memory_equal(a->markers, b->markers, sizeof(a->markers));
}

/* Two editions of one area and the alterations to the second, in one load: each file sees
 * the one before (what is in force, the area's latest edition, the counters), so the
 * statistics are those of one transaction per file. An edition older than one earlier in
 * the load is refused, and the files before it are kept. */
static void test_editions_and_alterations_in_one_load(void **state)
{
    struct rv_vault *v = open_vault(false), *v2 = open_vault(true);
    rv_date d1 = rv_date_from_ymd(2024, 12, 1), d2 = rv_date_from_ymd(2025, 12, 1);
    struct rv_ingest_file f[4] = {
        file(put_file(0, "ed1.csv", ED1), "AREAA", d1, false),
        file(put_file(1, "ed2.csv", ED2), "AREAA", d2, false),
        file(put_file(2, "alt.csv", ALT), "AREAA", d2, true),
        file(put_file(3, "old.csv", BAD), "AREAA", d1, false),
    };
    struct count_ctx one = {0}, each = {0};
    size_t done = 0;

    (void)state;
    assert_int_equal(rv_ingest_load(v, f, 4, &done), RV_EINVAL);
    assert_int_equal(done, 4);
    assert_int_equal(f[3].rc, RV_EINVAL);
    assert_int_equal(f[1].res.st.stored, 2);    /* AB1-3 moved, AB2-2 new */
    assert_int_equal(f[1].res.st.unchanged, 2); /* AB1-1, AB2-1 */
    assert_int_equal(f[1].res.st.closed, 2);    /* AB1-2 left, AB1-3's old version */
    assert_int_equal(f[1].res.st.on_register, 4);
    assert_int_equal(f[2].res.st.stored, 2);
    assert_int_equal(f[2].res.st.closed, 2);
    assert_int_equal(f[2].rc, 0);
    assert_true(in_force(v, "AREAA", "AB1-7"));
    assert_false(in_force(v, "AREAA", "AB1-2"));
    assert_false(in_force(v, "AREAA", "AB2-2"));
    assert_false(in_force(v, "AREAA", "CD1-1"));

    /* The same files one per transaction, in the second vault. */
    for (int i = 0; i < 3; i++) {
        struct rv_ingest_file g = f[i];
        assert_int_equal(rv_ingest_load(v2, &g, 1, &done), 0);
        assert_int_equal(g.rc, 0);
        assert_false(g.res.already);
    }
    assert_int_equal(rv_vault_stats(v, count_one, &one), 0);
    assert_int_equal(rv_vault_stats(v2, count_one, &each), 0);
    assert_int_equal(one.files, 3);
    assert_int_equal(each.files, 3);
    for (unsigned i = 0; i < 3; i++) {
        assert_same_stats(&one.st[i], &each.st[i]);
        assert_int_equal(one.st[i].seq, each.st[i].seq);
    }
    rv_vault_close(v2);
    rv_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refused_file_in_a_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_file_in_a_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_rows_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_file_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_before_and_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_editions_and_alterations_in_one_load, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(keyfile, sizeof(keyfile));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
