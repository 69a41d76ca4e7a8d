/*
 * test_check_answer.c - the matcher's answers: date awareness (an entry created in March is
 * absent for a January donation; one deleted in June is absent for a July donation, and the
 * answer says so with the dates), father and son of one name at one address both shown,
 * what is revealed at each grade, masking, the JSON and CSV renderings, and the bequest
 * predicate over the five years before death.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/check.h"
#include "check/internal.h"

static rv_date D(int y, int m, int d)
{
    return rv_date_from_ymd(y, m, d);
}

static void entry(struct rv_check_candidate *c, const char *fore, const char *sur,
                  const char *line1, const char *pc, uint32_t number, rv_date from, rv_date to)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->elector.area, sizeof(c->elector.area), "E07000001");
    snprintf(c->elector.number.prefix, sizeof(c->elector.number.prefix), "AB1");
    c->elector.number.number = number;
    c->elector.attainment = RV_DATE_NONE;
    assert_int_equal(rv_name_from_parts(sur, fore, &c->elector.name), 0);
    snprintf(c->elector.address[0], RV_ADDR_LINE_MAX, "%s", line1);
    snprintf(c->elector.address[1], RV_ADDR_LINE_MAX, "Leeds");
    assert_int_equal(rv_postcode_parse(pc, strlen(pc), &c->elector.postcode), 0);
    c->from = from;
    c->to = to;
    snprintf(c->edition, sizeof(c->edition), "2025-12-01");
    c->found_by = RV_CHECK_BY_SURNAME_POSTCODE | RV_CHECK_BY_PHONETIC_POSTCODE;
}

static void query(struct rv_check_query *q, const char *name, const char *addr, rv_date date)
{
    struct rv_diag d;
    rv_diag_clear(&d);
    assert_int_equal(rv_check_query_init(name, addr, "LS1 4AB", date, q, &d), 0);
}

static void answer_for(const struct rv_check_query *q, struct rv_check_candidate *c, size_t n,
                       struct rv_check_answer *a)
{
    struct rv_check_match m[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        rv_check_score(q, &c[i], &m[i]);
    assert_int_equal(rv_check_decide(q, m, n, a), 0);
}

/* The answer as jansson dumps its tree; the text renderer must give the same bytes. */
static char *render_json(const struct rv_check_query *q, const struct rv_check_answer *a)
{
    json_t *j = NULL;
    char *s, *t = NULL;
    size_t n = 0;
    assert_int_equal(rv_check_answer_json(q, a, &j), 0);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    assert_non_null(s);
    assert_int_equal(rv_check_answer_text(q, a, &t, &n), 0);
    assert_non_null(t);
    assert_int_equal(n, strlen(t));
    assert_string_equal(t, s);
    free(t);
    return s;
}

/* Created in March: absent for a January donation, and the answer gives the dates. */
static void test_created_after(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    char reasons[2048];
    (void)state;
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 1, 15));
    entry(&c, "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2026, 3, 1), RV_DATE_FOREVER);
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    assert_int_equal(a.grade, RV_GRADE_NONE);
    assert_int_equal(a.nmatches, 1);
    assert_false(a.matches[0].in_force);
    rv_check_reasons(&q, &a.matches[0], false, reasons, sizeof(reasons));
    assert_non_null(strstr(reasons, "entered the register on 2026-03-01, after the donation was "
                                    "received on 2026-01-15"));
    /* The same entry for a donation in April is an exact match. */
    rv_check_answer_free(&a);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 4, 2));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.grade, RV_GRADE_EXACT);
    rv_check_answer_free(&a);
}

/* Deleted in June: absent for a July donation; present on the last day before. */
static void test_deleted_before(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    char reasons[2048];
    (void)state;
    entry(&c, "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), D(2026, 6, 1));
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 7, 10));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    rv_check_reasons(&q, &a.matches[0], false, reasons, sizeof(reasons));
    assert_non_null(strstr(reasons, "left the register on 2026-06-01, before the donation was "
                                    "received on 2026-07-10"));
    rv_check_answer_free(&a);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 5, 31));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    rv_check_answer_free(&a);
    /* The end date is exclusive: on 1 June the entry is gone. */
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 6, 1));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    rv_check_answer_free(&a);
}

/* A changed entry: the version in force wins over the one that ended. */
static void test_versions(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c[2];
    struct rv_check_answer a;
    (void)state;
    entry(&c[0], "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), D(2026, 2, 1));
    entry(&c[1], "John", "Smith", "12 High Street", "LS1 4AB", 1, D(2026, 2, 1), RV_DATE_FOREVER);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 3, 1));
    answer_for(&q, c, 2, &a);
    /* In force: the moved version, same postcode but another house. */
    assert_int_equal(a.grade, RV_GRADE_POSSIBLE);
    assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
    assert_true(a.matches[0].in_force);
    rv_check_answer_free(&a);
}

/* Father and son, one name, one address: both shown, permissible either way. */
static void test_father_and_son(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c[3];
    struct rv_check_answer a;
    char *js;
    (void)state;
    entry(&c[0], "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), RV_DATE_FOREVER);
    entry(&c[1], "John", "Smith", "10 High Street", "LS1 4AB", 2, D(2025, 12, 1), RV_DATE_FOREVER);
    entry(&c[2], "Mary", "Smith", "10 High Street", "LS1 4AB", 3, D(2025, 12, 1), RV_DATE_FOREVER);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 1, 15));
    answer_for(&q, c, 3, &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.grade, RV_GRADE_EXACT);
    assert_int_equal(a.nmatches, 2);
    assert_int_equal(a.runner_up, RV_GRADE_EXACT);
    assert_true(a.margin < 0.001);
    js = render_json(&q, &a);
    assert_non_null(strstr(js, "\"AB1-1\""));
    assert_non_null(strstr(js, "\"AB1-2\""));
    assert_null(strstr(js, "Mary"));
    assert_non_null(strstr(js, "\"verdict\":\"permissible\""));
    free(js);
    rv_check_answer_free(&a);
}

/* Possible matches: at most three, masked; no register name or street in the output. */
static void test_possible_masked(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c[5];
    struct rv_check_answer a;
    char *js, *row;
    (void)state;
    for (uint32_t i = 0; i < 5; i++)
        entry(&c[i], i % 2 ? "Jennifer" : "Joseph", "Oakenshaw", "14 Mill Lane", "LS1 4AB", i + 1,
              D(2025, 12, 1), RV_DATE_FOREVER);
    query(&q, "J Oakenshaw", "", D(2026, 1, 15));
    answer_for(&q, c, 5, &a);
    assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
    assert_int_equal(a.grade, RV_GRADE_POSSIBLE);
    assert_int_equal(a.nmatches, RV_CHECK_SHOW_MAX);
    js = render_json(&q, &a);
    assert_null(strstr(js, "Jennifer"));
    assert_null(strstr(js, "Joseph"));
    assert_null(strstr(js, "Mill"));
    assert_non_null(strstr(js, "O., 14, LS1 4AB"));
    assert_non_null(strstr(js, "\"verdict\":\"needs review\""));
    assert_int_equal(rv_check_answer_csv(&q, &a, &row), 0);
    assert_null(strstr(row, "Jennifer"));
    assert_null(strstr(row, "Mill"));
    assert_non_null(strstr(row, "needs review"));
    free(row);
    free(js);
    rv_check_answer_free(&a);
}

/* Exact and strong answers carry the name and address as on the register, and the reasons
 * in words. */
static void test_reveal_and_reasons(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    char *js, *row, reasons[2048];
    (void)state;
    entry(&c, "William", "Smith", "10 High Street", "LS1 4AB", 7, D(2025, 12, 1), RV_DATE_FOREVER);
    query(&q, "Bill Smith", "10 High St, Leeds", D(2026, 1, 15));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.grade, RV_GRADE_STRONG);
    rv_check_reasons(&q, &a.matches[0], true, reasons, sizeof(reasons));
    assert_non_null(strstr(reasons, "Bill <-> William: nickname table"));
    assert_non_null(strstr(reasons, "same property"));
    assert_non_null(strstr(reasons, "found by: surname+postcode, phonetic surname+postcode"));
    js = render_json(&q, &a);
    assert_non_null(strstr(js, "\"name\":\"William Smith\""));
    assert_non_null(strstr(js, "10 High Street, Leeds"));
    assert_non_null(strstr(js, "\"edition\":\"2025-12-01\""));
    assert_non_null(strstr(js, "\"area\":\"E07000001\""));
    assert_int_equal(rv_check_answer_csv(&q, &a, &row), 0);
    assert_non_null(strstr(row, "permissible,strong,E07000001,2025-12-01,AB1-7,William Smith"));
    assert_non_null(strstr(row, "\"10 High Street, Leeds\""));
    assert_non_null(strstr(rv_check_csv_header(), "verdict"));
    free(row);
    free(js);
    rv_check_answer_free(&a);
}

/* The JSON of a strong answer, against a golden file (tests/data/check/strong.json). */
static void test_golden_json(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c[2];
    struct rv_check_answer a;
    json_t *j = NULL;
    char path[4096], *got, *want;
    const char *dir = getenv("RV_TEST_DATA");
    FILE *f;
    long n;
    (void)state;
    entry(&c[0], "William", "Smith", "10 High Street", "LS1 4AB", 7, D(2025, 12, 1),
          RV_DATE_FOREVER);
    entry(&c[1], "William", "Smith", "12 High Street", "LS1 4AB", 8, D(2025, 12, 1),
          RV_DATE_FOREVER);
    query(&q, "Mr Bill Smith", "10 High St, Leeds", D(2026, 1, 15));
    snprintf(q.id, sizeof(q.id), "C0001");
    answer_for(&q, c, 2, &a);
    free(render_json(&q, &a));
    assert_int_equal(rv_check_answer_json(&q, &a, &j), 0);
    got = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(6));
    json_decref(j);
    assert_non_null(got);
    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/check/strong.json", dir);
    if (getenv("RV_UPDATE_GOLDEN") != NULL) { /* regenerate after a reviewed change */
        f = fopen(path, "wb");
        assert_non_null(f);
        fprintf(f, "%s\n", got);
        fclose(f);
    }
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    want = calloc(1, (size_t)n + 1);
    assert_non_null(want);
    assert_int_equal(fread(want, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    if (n > 0 && want[n - 1] == '\n')
        want[n - 1] = '\0';
    assert_string_equal(got, want);
    free(want);
    free(got);
    rv_check_answer_free(&a);
}

/* No candidate at all: not found, with nothing to show. */
static void test_not_found(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    (void)state;
    entry(&c, "Peter", "Jones", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), RV_DATE_FOREVER);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 1, 15));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    assert_int_equal(a.nmatches, 0);
    rv_check_answer_free(&a);
    assert_int_equal(rv_check_decide(&q, NULL, 0, &a), 0);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    rv_check_answer_free(&a);
}

/* An attainer not yet of age at the date: never above possible, and no word of why. */
static void test_attainer(void **state)
{
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    char *js;
    (void)state;
    entry(&c, "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), RV_DATE_FOREVER);
    c.elector.attainment = D(2026, 5, 1);
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 1, 15));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.grade, RV_GRADE_POSSIBLE);
    js = render_json(&q, &a);
    assert_null(strstr(js, "2026-05-01"));
    assert_null(strstr(js, "attain"));
    assert_null(strstr(js, "John"));
    free(js);
    rv_check_answer_free(&a);
    /* Of age by the date: exact. */
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 6, 1));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.grade, RV_GRADE_EXACT);
    rv_check_answer_free(&a);
}

/* Bequests: registered at any time in the five years before death. */
static void test_bequest(void **state)
{
    rv_date from, to;
    struct rv_check_query q;
    struct rv_check_candidate c;
    struct rv_check_answer a;
    char reasons[2048];
    (void)state;
    rv_check_bequest_window(D(2026, 3, 10), &from, &to);
    assert_int_equal(from, D(2021, 3, 10));
    assert_int_equal(to, D(2026, 3, 11));
    rv_check_bequest_window(D(2024, 2, 29), &from, &to);
    assert_int_equal(from, D(2019, 2, 28));
    /* Left the register a day inside the window. */
    assert_true(rv_check_bequest_registered(D(2015, 1, 1), D(2021, 3, 11), D(2026, 3, 10)));
    /* Left the day the window opens: the version ended before it. */
    assert_false(rv_check_bequest_registered(D(2015, 1, 1), D(2021, 3, 10), D(2026, 3, 10)));
    /* Registered on the day of death. */
    assert_true(rv_check_bequest_registered(D(2026, 3, 10), RV_DATE_FOREVER, D(2026, 3, 10)));
    assert_false(rv_check_bequest_registered(D(2026, 3, 11), RV_DATE_FOREVER, D(2026, 3, 10)));
    assert_false(rv_check_bequest_registered(D(2015, 1, 1), D(2020, 1, 1), RV_DATE_NONE));

    entry(&c, "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2018, 12, 1), D(2023, 6, 1));
    query(&q, "John Smith", "10 High Street, Leeds", D(2026, 3, 10));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND); /* as a donation: gone by then */
    rv_check_answer_free(&a);
    rv_check_query_set_bequest(&q);
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    rv_check_reasons(&q, &a.matches[0], true, reasons, sizeof(reasons));
    assert_non_null(strstr(reasons, "five years before the death on 2026-03-10"));
    rv_check_answer_free(&a);
    /* Left more than five years before. */
    entry(&c, "John", "Smith", "10 High Street", "LS1 4AB", 1, D(2015, 12, 1), D(2020, 6, 1));
    answer_for(&q, &c, 1, &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    rv_check_reasons(&q, &a.matches[0], false, reasons, sizeof(reasons));
    assert_non_null(strstr(reasons, "more than five years before the death"));
    rv_check_answer_free(&a);
}

/* Queries refuse what cannot be compared, naming the field, never quoting the value. */
static void test_query_refusals(void **state)
{
    struct rv_check_query q;
    struct rv_diag d;
    char big[12000];
    (void)state;
    rv_diag_clear(&d);
    assert_int_equal(rv_check_query_init("", NULL, "LS1 4AB", D(2026, 1, 1), &q, &d), RV_EPARSE);
    assert_non_null(strstr(d.msg, "name"));
    assert_int_equal(rv_check_query_init("   ", NULL, "LS1 4AB", D(2026, 1, 1), &q, &d), RV_EPARSE);
    assert_int_equal(rv_check_query_init("John Smith", NULL, "NOTAPC", D(2026, 1, 1), &q, &d),
                     RV_EPARSE);
    assert_non_null(strstr(d.msg, "postcode"));
    assert_null(strstr(d.msg, "NOTAPC"));
    assert_int_equal(rv_check_query_init("John Smith", NULL, "LS1 4AB", RV_DATE_NONE, &q, &d),
                     RV_EPARSE);
    assert_int_equal(
        rv_check_query_init("John \xff\xfe Smith", NULL, "LS1 4AB", D(2026, 1, 1), &q, &d),
        RV_EPARSE);
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(rv_check_query_init(big, NULL, "LS1 4AB", D(2026, 1, 1), &q, &d), RV_ETOOBIG);
    assert_null(strstr(d.msg, "aaaa"));
    /* An unreadable address is noted, not fatal. */
    assert_int_equal(
        rv_check_query_init("John Smith", "\x01\x02\xff", "LS1 4AB", D(2026, 1, 1), &q, &d), 0);
    assert_false(q.has_address);
    assert_true(q.note[0] != '\0');
    /* Control characters in a name are cleaned, not fatal. */
    assert_int_equal(
        rv_check_query_init("John\x07 \x1b[31mSmith", NULL, "LS1 4AB", D(2026, 1, 1), &q, &d), 0);
}

static void test_mask(void **state)
{
    struct rv_check_candidate c;
    char buf[128];
    (void)state;
    entry(&c, "John Paul", "Smith", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1),
          RV_DATE_FOREVER);
    assert_string_equal(rv_check_mask(&c.elector, buf, sizeof(buf)), "J. P. S., 10, LS1 4AB");
    entry(&c, "Élodie", "Ørsted", "10 High Street", "LS1 4AB", 1, D(2025, 12, 1), RV_DATE_FOREVER);
    assert_string_equal(rv_check_mask(&c.elector, buf, sizeof(buf)), "É. Ø., 10, LS1 4AB");
    assert_string_equal(rv_check_mask(&c.elector, buf, 4), "É.");
}

/* The text renderer against jansson on awkward strings: quotes, backslashes, every control
 * character, DEL, multi-byte UTF-8, long reasons, margins of every size; and a field that is
 * not UTF-8 comes out as "" in both, never as the bytes. */
static void test_text_escapes(void **state)
{
    static const double margins[] = {0.0,   1.0,     -2.5, 1e-7, 123456789.125,
                                     1e300, -1e-300, 0.1,  3.0,  2.220446049250313e-16};
    struct rv_check_query q;
    struct rv_check_candidate c[3];
    struct rv_check_answer a;
    char *s, *t = NULL;
    size_t n;
    (void)state;
    entry(&c[0], "William", "Smith", "10 High Street", "LS1 4AB", 7, D(2025, 12, 1),
          RV_DATE_FOREVER);
    entry(&c[1], "William", "Smith", "12 High Street", "LS1 4AB", 8, D(2025, 12, 1),
          RV_DATE_FOREVER);
    entry(&c[2], "Zoë", "Smith-Ó Briain", "Flat 2, 3 Rue \"Été\"", "LS1 4AB", 9, D(2025, 12, 1),
          RV_DATE_FOREVER);
    query(&q, "Mr Bill Smith", "10 High St, Leeds", D(2026, 1, 15));
    for (int ch = 1; ch < RV_CHECK_ID_MAX - 1; ch++) /* every control character and more */
        q.id[ch - 1] = (char)ch;
    q.id[RV_CHECK_ID_MAX - 2] = 0x7F;
    q.id[RV_CHECK_ID_MAX - 1] = '\0';
    snprintf(q.note, sizeof(q.note),
             "note \"quoted\" \\ back\tslash \xE2\x82\xAC \xF0\x9F\x98\x80");
    answer_for(&q, c, 3, &a);
    for (size_t i = 0; i < sizeof(margins) / sizeof(margins[0]); i++) {
        a.margin = margins[i];
        a.runner_up = RV_GRADE_POSSIBLE;
        free(render_json(&q, &a));
    }
    /* Lines in a match's reasons longer than the 511 bytes a reason keeps. */
    memset(q.name.forenames, 'x', sizeof(q.name.forenames) - 1);
    q.name.forenames[sizeof(q.name.forenames) - 1] = '\0';
    free(render_json(&q, &a));
    /* Not UTF-8 (a lone continuation byte, an overlong slash, a surrogate): "" in both. */
    {
        static const char *const bad[] = {"ab\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF5\x80\x80\x80"};
        for (size_t i = 0; i < 4; i++) {
            snprintf(a.note, sizeof(a.note), "%s", bad[i]);
            s = render_json(&q, &a);
            assert_non_null(strstr(s, "\"note\":\"\""));
            free(s);
        }
    }
    /* No query (an unmatched row of a batch): no reasons. */
    rv_check_answer_free(&a);
    rv_check_answer_unmatched("R\"1", 42, RV_VERDICT_OUT_OF_SCOPE, "company \\ donor", &a);
    s = render_json(NULL, &a);
    assert_string_equal(s,
                        "{\"id\":\"R\\\"1\",\"line\":42,\"verdict\":\"out of scope\","
                        "\"grade\":\"no match\",\"error\":\"company \\\\ donor\",\"matches\":[]}");
    free(s);
    assert_int_equal(rv_check_answer_text(NULL, &a, &t, &n), 0);
    assert_int_equal(n, strlen(t));
    free(t);
    rv_check_answer_free(&a);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(rv_check_verdict_name(RV_VERDICT_PERMISSIBLE), "permissible");
    assert_string_equal(rv_check_verdict_name(RV_VERDICT_REVIEW), "needs review");
    assert_string_equal(rv_check_verdict_name(RV_VERDICT_NOT_FOUND), "not found");
    assert_string_equal(rv_check_verdict_name(RV_VERDICT_OUT_OF_SCOPE), "out of scope");
    assert_string_equal(rv_check_grade_name(RV_GRADE_NONE), "no match");
    for (int i = 0; i < RV_FN_NLEVELS; i++)
        assert_string_not_equal(rv_check_fn_level_name((enum rv_check_fn_level)i), "?");
    for (int i = 0; i < RV_SN_NLEVELS; i++)
        assert_string_not_equal(rv_check_sn_level_name((enum rv_check_sn_level)i), "?");
    for (int i = 0; i < RV_ADDR_NLEVELS; i++)
        assert_string_not_equal(rv_check_addr_level_name((enum rv_check_addr_level)i), "?");
}

/* The answers' dates are written without the formatting library: the same text as
 * rv_date_format, for every day from before year 0 to after year 9999. */
static void test_date_text(void **state)
{
    char a[11], b[11];

    (void)state;
    assert_string_equal(rv_check_date_text(RV_DATE_NONE, a), rv_date_format(RV_DATE_NONE, b));
    assert_string_equal(rv_check_date_text(RV_DATE_FOREVER, a), rv_date_format(RV_DATE_FOREVER, b));
    for (rv_date d = -800000; d < 3000000; d += 97)
        assert_string_equal(rv_check_date_text(d, a), rv_date_format(d, b));
    for (rv_date d = D(2025, 12, 25); d < D(2026, 3, 3); d++)
        assert_string_equal(rv_check_date_text(d, a), rv_date_format(d, b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_created_after),
        cmocka_unit_test(test_deleted_before),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_father_and_son),
        cmocka_unit_test(test_possible_masked),
        cmocka_unit_test(test_reveal_and_reasons),
        cmocka_unit_test(test_not_found),
        cmocka_unit_test(test_attainer),
        cmocka_unit_test(test_bequest),
        cmocka_unit_test(test_query_refusals),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden_json),
        cmocka_unit_test(test_text_escapes),
        cmocka_unit_test(test_date_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
