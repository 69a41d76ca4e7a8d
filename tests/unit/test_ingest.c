/*
 * test_ingest.c - register files into the vault: both header layouts, TSV with a BOM,
 * Windows-1252, anonymous and overseas entries, refused rows (reported by line and rule,
 * never by value), --max-errors, idempotence, and alterations over time.
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
#include "testvault.h"
#include <sodium.h>

static char dir[256];
static uint8_t keyfile[32];

static int setup(void **state)
{
    (void)state;
    return rv_test_bare_vault_create(dir, sizeof(dir), "rv-test-ingest", keyfile, 100000);
}

static int teardown(void **state)
{
    (void)state;
    rv_test_rmtree(dir);
    return 0;
}

static struct rv_vault *open_vault(void)
{
    return rv_test_bare_vault_open(dir, keyfile);
}

static const char *fixture(const char *name)
{
    static char path[1024];
    const char *base = getenv("RV_TEST_DATA");
    snprintf(path, sizeof(path), "%s/ingest/%s", base != NULL ? base : "tests/data", name);
    return path;
}

struct errors {
    unsigned n;
    char msgs[8][256];
    unsigned long lines[8];
};

static void on_error(void *ctx, const struct rv_diag *d)
{
    struct errors *e = ctx;
    if (e->n < 8) {
        snprintf(e->msgs[e->n], sizeof(e->msgs[0]), "%s", d->msg);
        e->lines[e->n] = d->line;
    }
    e->n++;
}

static struct rv_ingest_opts opts(const char *area, rv_date ed, bool alt, struct errors *errs)
{
    struct rv_ingest_opts o;
    memset(&o, 0, sizeof(o));
    o.area = area;
    o.edition = ed;
    o.alterations = alt;
    o.on_error = on_error;
    o.ctx = errs;
    return o;
}

static void test_map_header(void **state)
{
    char *h1[] = {"\xef\xbb\xbf"
                  "ELECTOR_NUMBER prefix",
                  "Elector-Number", "Elector Surname", "elector forename", "Post Code"};
    char *h2[] = {"Elector Number", "Elector Markers"};
    char *h3[] = {"Elector Number", "Elector Name", "ElectorCreatedMonth"};
    struct rv_ingest_map m;
    struct rv_diag d;

    (void)state;
    rv_diag_clear(&d);
    assert_int_equal(rv_ingest_map_header(h1, 5, false, &m, &d), 0);
    assert_int_equal(m.col[RV_COL_PREFIX], 0);
    assert_int_equal(m.col[RV_COL_NUMBER], 1);
    assert_int_equal(m.col[RV_COL_SURNAME], 2);
    assert_int_equal(m.col[RV_COL_FORENAME], 3);
    assert_int_equal(m.col[RV_COL_POSTCODE], 4);
    assert_int_equal(m.col[RV_COL_NAME], -1);
    assert_int_equal(rv_ingest_map_header(h2, 2, false, &m, &d), RV_EPARSE);
    assert_non_null(strstr(d.msg, "Elector Name"));
    assert_int_equal(rv_ingest_map_header(h3, 3, true, &m, &d), RV_EPARSE);
    assert_non_null(strstr(d.msg, "ElectorChangedMonth"));
}

static void test_map_row_messages_hold_no_values(void **state)
{
    char *hdr[] = {"Elector Number Prefix",
                   "Elector Number",
                   "Elector Markers",
                   "Elector Name",
                   "PostCode",
                   "Address1",
                   "Opt Out"};
    char *bad_pc[] = {"AB1", "1", "", "Zebedee, Quentin", "QX9 SECRET", "1 Hidden Way", ""};
    char *bad_num[] = {"AB1", "one", "", "Zebedee, Quentin", "LS1 4AB", "1 Hidden Way", ""};
    char *bad_opt[] = {"AB1", "1", "", "Zebedee, Quentin", "LS1 4AB", "1 Hidden Way", "perhaps"};
    char *anon[] = {"AB1", "2", "N", "", "", "", ""};
    char *overseas[] = {"AB1", "3", "F", "Zebedee, Quentin", "LS1 4AB", "1 Hidden Way", ""};
    char **bad[] = {bad_pc, bad_num, bad_opt};
    struct rv_ingest_map m;
    struct rv_elector e;
    struct rv_diag d;
    enum rv_row_kind k;
    rv_date eff;

    (void)state;
    rv_diag_clear(&d);
    assert_int_equal(rv_ingest_map_header(hdr, 7, false, &m, &d), 0);
    for (size_t i = 0; i < 3; i++) {
        rv_diag_clear(&d);
        assert_int_equal(rv_ingest_map_row(&m, bad[i], 7, "LDS", &e, &k, &eff, &d), RV_EPARSE);
        assert_true(d.msg[0] != '\0');
        assert_null(strstr(d.msg, "SECRET"));
        assert_null(strstr(d.msg, "Zebedee"));
        assert_null(strstr(d.msg, "Quentin"));
        assert_null(strstr(d.msg, "Hidden"));
        assert_null(strstr(d.msg, "perhaps"));
        assert_null(strstr(d.msg, "one"));
    }
    /* Ragged. */
    assert_int_equal(rv_ingest_map_row(&m, bad_pc, 6, "LDS", &e, &k, &eff, &d), RV_EPARSE);
    /* Anonymous: nothing of it is kept. */
    assert_int_equal(rv_ingest_map_row(&m, anon, 7, "LDS", &e, &k, &eff, &d), 0);
    assert_int_equal(k, RV_ROW_ANONYMOUS);
    /* Overseas: no address, no postcode. */
    assert_int_equal(rv_ingest_map_row(&m, overseas, 7, "LDS", &e, &k, &eff, &d), 0);
    assert_int_equal(k, RV_ROW_ENTRY);
    assert_true(e.markers.known & RV_MARK_F);
    assert_int_equal(e.address[0][0], 0);
    assert_int_equal(e.postcode.canon[0], 0);
    assert_string_equal(e.name.surname, "Zebedee");
}

static void test_files_and_layouts(void **state)
{
    struct rv_vault *v = open_vault();
    struct errors errs = {0};
    struct rv_ingest_opts o;
    struct rv_ingest_result r;
    struct rv_version ver;
    struct rv_elector_number num;
    uint64_t id;

    (void)state;
    o = opts("LDS", rv_date_from_ymd(2025, 12, 1), false, &errs);
    assert_int_equal(rv_ingest_file(v, fixture("full-small.csv"), &o, &r), 0);
    assert_false(r.rejected);
    assert_false(r.already);
    assert_int_equal(r.st.rows, 6);
    assert_int_equal(r.st.stored, 5);
    assert_int_equal(r.st.anonymous, 1);
    assert_int_equal(r.st.markers[0], 1); /* one overseas */
    assert_int_equal(errs.n, 0);
    /* The same file again changes nothing and says so. */
    assert_int_equal(rv_ingest_file(v, fixture("full-small.csv"), &o, &r), 0);
    assert_true(r.already);
    assert_int_equal(r.st.stored, 5);

    /* TSV, BOM, surname and forename columns, a postcode needing repair, unknown marker. */
    o = opts("TSV", rv_date_from_ymd(2025, 12, 1), false, &errs);
    o.single_thread = true;
    assert_int_equal(rv_ingest_file(v, fixture("full-small.tsv"), &o, &r), 0);
    assert_int_equal(r.st.stored, 3);
    assert_int_equal(r.st.optout, 1);
    assert_int_equal(r.st.attainers, 1);
    assert_int_equal(r.st.markers[10], 1); /* unknown marker kept */
    assert_int_equal(rv_elector_number_parse("AB1-1", 5, &num), 0);
    assert_int_equal(rv_vault_current(v, "TSV", &num, &id), 0);
    assert_int_equal(rv_vault_fetch(v, id, &ver), 0);
    assert_string_equal(ver.e.postcode.canon, "LS1 4AB");
    assert_string_equal(ver.e.name.forenames, "John");
    assert_int_equal(ver.e.uprn, 72001);
    assert_true(ver.e.open_register_optout);

    /* Windows-1252, detected. */
    o = opts("CP", rv_date_from_ymd(2025, 12, 1), false, &errs);
    assert_int_equal(rv_ingest_file(v, fixture("full-cp1252.csv"), &o, &r), 0);
    assert_int_equal(r.st.stored, 2);
    assert_int_equal(rv_elector_number_parse("AB1-2", 5, &num), 0);
    assert_int_equal(rv_vault_current(v, "CP", &num, &id), 0);
    assert_int_equal(rv_vault_fetch(v, id, &ver), 0);
    assert_string_equal(ver.e.name.surname, "M\xc3\xbcller");
    sodium_memzero(&ver, sizeof(ver));
    assert_int_equal(errs.n, 0);
    rv_vault_close(v);
}

static void test_bad_rows_and_max_errors(void **state)
{
    struct rv_vault *v = open_vault();
    struct errors errs = {0};
    struct rv_ingest_opts o = opts("LDS", rv_date_from_ymd(2025, 12, 1), false, &errs);
    struct rv_ingest_result r;
    struct rv_elector_number num;
    uint64_t id;

    (void)state;
    assert_int_equal(rv_ingest_file(v, fixture("full-bad.csv"), &o, &r), 0);
    assert_true(r.rejected);
    assert_int_equal(r.first_error.line, 3);
    assert_non_null(strstr(r.first_error.file, "full-bad.csv"));
    /* Nothing of the file was stored. */
    assert_int_equal(rv_elector_number_parse("AB1-1", 5, &num), 0);
    assert_int_equal(rv_vault_current(v, "LDS", &num, &id), RV_ENOTFOUND);

    /* With room for the four bad rows, the rest goes in. */
    memset(&errs, 0, sizeof(errs));
    o.max_errors = 4;
    assert_int_equal(rv_ingest_file(v, fixture("full-bad.csv"), &o, &r), 0);
    assert_false(r.rejected);
    assert_int_equal(r.st.invalid, 4);
    assert_int_equal(r.st.stored, 2);
    assert_int_equal(r.st.anonymous, 1);
    assert_int_equal(errs.n, 4);
    assert_int_equal(errs.lines[0], 3); /* ragged */
    assert_int_equal(errs.lines[1], 4); /* bad postcode */
    assert_int_equal(errs.lines[2], 5); /* stray quote */
    assert_int_equal(errs.lines[3], 8); /* duplicate elector number */
    for (unsigned i = 0; i < 4; i++) {
        assert_null(strstr(errs.msgs[i], "Secretname"));
        assert_null(strstr(errs.msgs[i], "QQ99"));
        assert_null(strstr(errs.msgs[i], "Smith"));
    }
    assert_int_equal(rv_vault_current(v, "LDS", &num, &id), 0);
    rv_vault_close(v);
}

static void test_alterations_over_time(void **state)
{
    struct rv_vault *v = open_vault();
    struct errors errs = {0};
    struct rv_ingest_opts o = opts("TSV", rv_date_from_ymd(2025, 12, 1), false, &errs);
    struct rv_ingest_result r;
    struct rv_elector_number created, changed;
    struct rv_version ver;
    uint64_t id;
    rv_date from, to;

    (void)state;
    assert_int_equal(rv_ingest_file(v, fixture("full-small.tsv"), &o, &r), 0);
    o.alterations = true;
    assert_int_equal(rv_ingest_file(v, fixture("alterations-2026-03.csv"), &o, &r), 0);
    assert_int_equal(errs.n, 0);
    assert_int_equal(r.st.stored, 2);
    assert_int_equal(r.st.closed, 1);
    assert_int_equal(rv_elector_number_parse("AB1-7", 5, &created), 0);
    assert_int_equal(rv_vault_current(v, "TSV", &created, &id), 0);
    assert_int_equal(rv_vault_span(v, id, &from, &to), 0);
    assert_false(rv_version_valid_at(from, to, rv_date_from_ymd(2026, 2, 1)));
    assert_true(rv_version_valid_at(from, to, rv_date_from_ymd(2026, 4, 1)));
    assert_int_equal(rv_elector_number_parse("AB1-3", 5, &changed), 0);
    assert_int_equal(rv_vault_current(v, "TSV", &changed, &id), 0);
    assert_int_equal(rv_vault_fetch(v, id, &ver), 0);
    assert_string_equal(ver.e.address[0], "Flat 3");
    assert_int_equal(ver.from, rv_date_from_ymd(2026, 3, 1));

    /* June: deleted (the simple Change / Effective Date layout). */
    assert_int_equal(rv_ingest_file(v, fixture("alterations-2026-06.csv"), &o, &r), 0);
    assert_int_equal(errs.n, 0);
    assert_int_equal(r.st.closed, 1);
    assert_int_equal(rv_vault_current(v, "TSV", &created, &id), RV_ENOTFOUND);
    {
        /* Its version ends on 1 June. */
        struct rv_index_query q = {"nguyen", 't', "LS3 1EF", NULL};
        uint64_t ids[8];
        size_t n;
        bool seen = false;
        assert_int_equal(rv_vault_lookup(v, RV_IDX_SURNAME_POSTCODE, &q, ids, 8, &n), 0);
        for (size_t i = 0; i < n && i < 8; i++) {
            assert_int_equal(rv_vault_fetch(v, ids[i], &ver), 0);
            if (ver.e.number.number == 7) {
                seen = true;
                assert_true(rv_version_valid_at(ver.from, ver.to, rv_date_from_ymd(2026, 5, 31)));
                assert_false(rv_version_valid_at(ver.from, ver.to, rv_date_from_ymd(2026, 7, 1)));
            }
        }
        assert_true(seen);
    }
    sodium_memzero(&ver, sizeof(ver));
    rv_vault_close(v);
}

static void test_unreadable_files(void **state)
{
    struct rv_vault *v = open_vault();
    struct errors errs = {0};
    struct rv_ingest_opts o = opts("LDS", rv_date_from_ymd(2025, 12, 1), false, &errs);
    struct rv_ingest_result r;
    char path[300];
    FILE *f;

    (void)state;
    assert_int_equal(rv_ingest_file(v, "/nonexistent/full.csv", &o, &r), RV_ENOTFOUND);
    snprintf(path, sizeof(path), "%s/empty.csv", dir);
    f = fopen(path, "w");
    fclose(f);
    assert_int_equal(rv_ingest_file(v, path, &o, &r), RV_EPARSE);
    assert_true(r.first_error.msg[0] != '\0');
    f = fopen(path, "w");
    fputs("Name,Address\nA,B\n", f);
    fclose(f);
    assert_int_equal(rv_ingest_file(v, path, &o, &r), RV_EPARSE);
    assert_non_null(strstr(r.first_error.msg, "Elector Number"));
    o.area = "bad area!";
    assert_int_equal(rv_ingest_file(v, fixture("full-small.csv"), &o, &r), RV_EINVAL);
    rv_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_header),
        cmocka_unit_test(test_map_row_messages_hold_no_values),
        cmocka_unit_test_setup_teardown(test_files_and_layouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_rows_and_max_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alterations_over_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unreadable_files, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(keyfile, sizeof(keyfile));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
