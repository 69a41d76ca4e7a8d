/*
 * test_check_batch.c - the donations batch reader: both layouts, header detection, and
 * hostile rows. Every data row must come back exactly once, in input order, with its id;
 * a broken row is reported with its line and the rule it broke and never stops the batch,
 * and no message quotes the personal data it refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/check.h"

struct got {
    enum rv_check_row_status status[64];
    char id[64][RV_CHECK_ID_MAX];
    char error[64][256];
    unsigned long line[64];
    long long pence[64];
    char note[64][128];
    bool has_address[64];
    size_t n;
};

static void read_all(const char *text, enum rv_check_layout layout, struct got *g,
                     enum rv_check_layout *seen)
{
    struct rv_check_batch *b = NULL;
    struct rv_check_row row;
    struct rv_diag d;
    int rc;

    memset(g, 0, sizeof(*g));
    assert_int_equal(rv_check_batch_open_mem(text, strlen(text), "donations.csv", layout, &b, &d),
                     0);
    if (seen != NULL)
        *seen = rv_check_batch_layout(b);
    while ((rc = rv_check_batch_next(b, &row, &d)) == 1) {
        assert_true(g->n < 64);
        g->status[g->n] = row.status;
        memcpy(g->id[g->n], row.q.id, sizeof(row.q.id));
        memcpy(g->error[g->n], row.error, sizeof(row.error));
        memcpy(g->note[g->n], row.q.note, sizeof(row.q.note));
        g->line[g->n] = row.q.line;
        g->pence[g->n] = row.value_pence;
        g->has_address[g->n] = row.q.has_address;
        g->n++;
    }
    assert_int_equal(rc, 0);
    rv_check_batch_close(b);
}

static void test_ec_layout(void **state)
{
    static const char text[] =
        "\xEF\xBB\xBF"
        "ECRef,RegulatedEntityName,Value,AcceptedDate,ReceivedDate,DonorName,DonorStatus,"
        "Postcode,DonationType\r\n"
        "C0001,Some Party,\"\xC2\xA3"
        "1,250.00\",20/01/2026,15/01/2026,Mr John Smith,Individual,LS1 4AB,Cash\r\n"
        "C0002,Some Party,\xC2\xA3"
        "600,20/01/2026,15/01/2026,Acme Widgets Ltd,Company,LS1 4AB,Cash\r\n"
        "C0003,Some Party,700,20/01/2026,31/02/2026,Jane Doe,Individual,LS1 4AB,Cash\r\n"
        "C0004,Some Party,700,20/01/2026,,Jane Doe,Individual,LS1 4AB,Cash\r\n"
        "C0005,Some Party,700,,,Jane Doe,Individual,LS1 4AB,Cash\r\n"
        "C0006,Some Party,700,20/01/2026,15/01/2026,Jane Doe,Individual,ZZ99 ZZZ9,Cash\r\n"
        "C0007,Some Party,700,20/01/2026,15/01/2026,,Individual,LS1 4AB,Cash\r\n"
        "C0008,Some Party,700,20/01/2026,2026-01-15,Jane Doe,individual,,Cash\r\n"
        "C0009,Some Party,700,20/01/2026,15/01/2026,Jane \"Stray\" Doe,Individual,LS1 4AB\n"
        "C0010,Some Party,700,20/01/2026,15/01/2026,Jane Doe,Trade Union,LS1 4AB,Cash\r\n"
        "\r\n"
        "C0011,Some Party,bad,20/01/2026,15/01/2026,Jane Doe\r\n"
        "C0012,Some Party,700,20/01/2026,15/01/2026,\"Unclosed quote,Individual,LS1 4AB\n";
    struct got g;
    enum rv_check_layout seen;
    (void)state;
    read_all(text, RV_CHECK_LAYOUT_AUTO, &g, &seen);
    assert_int_equal(seen, RV_CHECK_LAYOUT_EC);
    /* Every row is there once, in order; the last one's unclosed quote runs to the end of
     * the file and is reported. */
    assert_int_equal(g.n, 12);
    assert_string_equal(g.id[0], "C0001");
    assert_int_equal(g.status[0], RV_ROW_OK);
    assert_int_equal(g.pence[0], 125000);
    assert_int_equal(g.line[0], 2);
    assert_string_equal(g.id[1], "C0002");
    assert_int_equal(g.status[1], RV_ROW_OUT_OF_SCOPE);
    assert_int_equal(g.status[2], RV_ROW_INVALID); /* 31 February */
    assert_non_null(strstr(g.error[2], "donations.csv:4"));
    assert_non_null(strstr(g.error[2], "ReceivedDate"));
    assert_int_equal(g.status[3], RV_ROW_OK); /* accepted date used, with a note */
    assert_non_null(strstr(g.note[3], "AcceptedDate"));
    assert_int_equal(g.status[4], RV_ROW_INVALID); /* no date at all */
    assert_int_equal(g.status[5], RV_ROW_INVALID); /* postcode */
    assert_non_null(strstr(g.error[5], "postcode"));
    assert_null(strstr(g.error[5], "ZZ99"));
    assert_int_equal(g.status[6], RV_ROW_INVALID); /* empty name */
    assert_non_null(strstr(g.error[6], "name"));
    assert_int_equal(g.status[7], RV_ROW_OK); /* ISO date, lower-case status, no postcode */
    assert_string_equal(g.id[7], "C0008");
    for (size_t i = 0; i < g.n; i++)
        assert_null(strstr(g.error[i], "Jane"));
    /* A stray quote: refused by the CSV reader, so the id is unknown, but the row is there,
     * with its line. */
    assert_int_equal(g.line[8], 10);
    assert_true(g.status[8] == RV_ROW_INVALID || strcmp(g.id[8], "C0009") == 0);
    assert_string_equal(g.id[9], "C0010");
    assert_int_equal(g.status[9], RV_ROW_OUT_OF_SCOPE);
    assert_string_equal(g.id[10], "C0011");
    assert_int_equal(g.pence[10], -1);
    assert_int_equal(g.status[11], RV_ROW_INVALID);
    assert_int_equal(g.line[11], 14);
    assert_non_null(strstr(g.error[11], "quote"));
}

static void test_plain_layout(void **state)
{
    static const char text[] = "id,name,address,postcode,date\n"
                               "1,John Smith,\"10 High Street, Leeds\",LS1 4AB,2026-01-15\n"
                               "2,Jane Doe,,LS1 4AB,15/01/2026\n"
                               "3,Bill Smith,10 High St,ls14ab,15/1/2026\n"
                               "4,Jane Doe,,LS1 4AB,yesterday\n";
    struct got g;
    enum rv_check_layout seen;
    (void)state;
    read_all(text, RV_CHECK_LAYOUT_AUTO, &g, &seen);
    assert_int_equal(seen, RV_CHECK_LAYOUT_PLAIN);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.status[0], RV_ROW_OK);
    assert_true(g.has_address[0]);
    assert_int_equal(g.status[1], RV_ROW_OK);
    assert_false(g.has_address[1]);
    assert_int_equal(g.status[2], RV_ROW_OK);
    assert_int_equal(g.status[3], RV_ROW_INVALID);
    assert_non_null(strstr(g.error[3], ":5: date"));
    for (size_t i = 0; i < 4; i++) {
        char want[4];
        snprintf(want, sizeof(want), "%zu", i + 1);
        assert_string_equal(g.id[i], want);
    }
}

/* Header names are matched without case, spaces, underscores or hyphens; TSV works. */
static void test_header_variants(void **state)
{
    static const char tsv[] = "Id\tName\tAddress\tPost_Code\tDATE\n"
                              "a\tJohn Smith\t\tLS1 4AB\t2026-01-15\n";
    static const char ec[] = "ec_ref,donor name,DONOR-STATUS,post code,received date\n"
                             "x,John Smith,Individual,LS1 4AB,15/01/2026\n";
    struct got g;
    enum rv_check_layout seen;
    (void)state;
    read_all(tsv, RV_CHECK_LAYOUT_AUTO, &g, &seen);
    assert_int_equal(seen, RV_CHECK_LAYOUT_PLAIN);
    assert_int_equal(g.n, 1);
    assert_int_equal(g.status[0], RV_ROW_OK);
    read_all(ec, RV_CHECK_LAYOUT_EC, &g, &seen);
    assert_int_equal(seen, RV_CHECK_LAYOUT_EC);
    assert_int_equal(g.status[0], RV_ROW_OK);
    assert_string_equal(g.id[0], "x");
}

static void test_bad_headers(void **state)
{
    struct rv_check_batch *b = NULL;
    struct rv_diag d;
    static const char none[] = "foo,bar\n1,2\n";
    static const char plain[] = "id,name,address,postcode,date\n";
    (void)state;
    assert_int_equal(
        rv_check_batch_open_mem(none, strlen(none), "x.csv", RV_CHECK_LAYOUT_AUTO, &b, &d),
        RV_EPARSE);
    assert_null(b);
    assert_non_null(strstr(d.msg, "layout"));
    assert_int_equal(rv_check_batch_open_mem("", 0, "x.csv", RV_CHECK_LAYOUT_AUTO, &b, &d),
                     RV_EPARSE);
    /* Forcing the EC layout onto a plain file is refused, saying what is missing. */
    assert_int_equal(
        rv_check_batch_open_mem(plain, strlen(plain), "x.csv", RV_CHECK_LAYOUT_EC, &b, &d),
        RV_EPARSE);
    assert_non_null(strstr(d.msg, "DonorName"));
}

/* 10 kB names, control characters, invalid UTF-8 and a 20 kB field: each row reported,
 * none fatal, ids and order kept. */
static void test_hostile_rows(void **state)
{
    size_t cap = 64 * 1024, len = 0;
    char *text = malloc(cap);
    struct got g;
    (void)state;
    assert_non_null(text);
#define ADD(...) len += (size_t)snprintf(text + len, cap - len, __VA_ARGS__)
    ADD("id,name,address,postcode,date\n");
    ADD("r1,");
    for (int i = 0; i < 10000; i++)
        ADD("%c", 'a' + i % 26);
    ADD(",,LS1 4AB,2026-01-15\n");
    ADD("r2,John\x01\x02\x1b Smith,\"10\x7f High St\",LS1 4AB,2026-01-15\n");
    ADD("r3,John \xc3\x28 Smith,,LS1 4AB,2026-01-15\n");
    ADD("r4,John Smith,");
    for (int i = 0; i < 20000; i++)
        ADD("x");
    ADD(",LS1 4AB,2026-01-15\n");
    ADD("r5,Jöhn Smïth,,LS1 4AB,2026-01-15\n");
    ADD("r6\xff\xfe,John Smith,,LS1 4AB,2026-01-15\n");
#undef ADD
    read_all(text, RV_CHECK_LAYOUT_PLAIN, &g, NULL);
    assert_true(g.n >= 5);
    assert_string_equal(g.id[0], "r1");
    assert_int_equal(g.status[0], RV_ROW_INVALID);
    assert_null(strstr(g.error[0], "abcdef"));
    assert_string_equal(g.id[1], "r2");
    assert_int_equal(g.status[1], RV_ROW_OK);
    /* r3: the reader may read the bad bytes as Windows-1252; either way no crash. */
    assert_string_equal(g.id[2], "r3");
    assert_int_equal(g.status[3], RV_ROW_INVALID); /* the 20 kB field */
    assert_non_null(strstr(g.error[3], "too long"));
    assert_string_equal(g.id[4], "r5");
    assert_int_equal(g.status[4], RV_ROW_OK);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ec_layout),       cmocka_unit_test(test_plain_layout),
        cmocka_unit_test(test_header_variants), cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_hostile_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
