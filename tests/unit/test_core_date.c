/*
 * test_core_date.c - civil dates as day counts: conversions, leap years, and the ISO and
 * dd/mm/yyyy parsers that read register and donation files.
 *
 * Permissibility is judged at the date a donation was received, so an off-by-one day or a
 * 29 February accepted in a common year would change an answer. The parsers are attacked
 * with impossible dates, wrong separators, short and long fields and trailing bytes.
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

static void test_known_days(void **state)
{
    static const struct {
        int y, m, d;
        rv_date day;
    } known[] = {
        {1970, 1, 1, 0},      {1970, 1, 2, 1},      {1969, 12, 31, -1},   {2000, 1, 1, 10957},
        {2000, 2, 29, 11016}, {2000, 3, 1, 11017},  {1900, 3, 1, -25508}, {1900, 2, 28, -25509},
        {2021, 12, 1, 18962}, {2024, 2, 29, 19782}, {2038, 1, 19, 24855}, {1800, 1, 1, -62091},
    };
    int y, m, d;
    (void)state;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (rv_date_from_ymd(known[i].y, known[i].m, known[i].d) != known[i].day)
            fail_msg("known day %zu", i);
        rv_date_to_ymd(known[i].day, &y, &m, &d);
        assert_int_equal(y, known[i].y);
        assert_int_equal(m, known[i].m);
        assert_int_equal(d, known[i].d);
    }
}

/* Every day from 1800 to 2200 converts back to itself, and consecutive days are
 * consecutive dates. */
static void test_round_trip(void **state)
{
    rv_date first = rv_date_from_ymd(1800, 1, 1), last = rv_date_from_ymd(2200, 12, 31);
    int py = 1799, pm = 12, pd = 31;
    (void)state;
    for (rv_date day = first; day <= last; day++) {
        int y, m, d;
        rv_date_to_ymd(day, &y, &m, &d);
        assert_int_equal(rv_date_from_ymd(y, m, d), day);
        bool next_day = y == py && m == pm && d == pd + 1;
        bool next_month = y == py && m == pm + 1 && d == 1;
        bool next_year = y == py + 1 && m == 1 && d == 1 && pm == 12 && pd == 31;
        assert_true(next_day || next_month || next_year);
        py = y;
        pm = m;
        pd = d;
    }
}

static void test_leap_years(void **state)
{
    static const struct {
        int y;
        bool leap;
    } years[] = {
        {2000, true},  {1900, false}, {2100, false}, {2400, true},  {2024, true},
        {2023, false}, {2020, true},  {1996, true},  {1800, false}, {2016, true},
    };
    char buf[16];
    rv_date d;
    (void)state;
    for (size_t i = 0; i < sizeof(years) / sizeof(years[0]); i++) {
        snprintf(buf, sizeof(buf), "%04d-02-29", years[i].y);
        int rc = rv_date_parse_iso(buf, &d);
        if ((rc == 0) != years[i].leap)
            fail_msg("iso leap year %d", years[i].y);
        snprintf(buf, sizeof(buf), "29/02/%04d", years[i].y);
        rc = rv_date_parse_dmy(buf, &d);
        if ((rc == 0) != years[i].leap)
            fail_msg("dmy leap year %d", years[i].y);
        /* Year length: 1 March minus 1 January is 59 or 60 days. */
        assert_int_equal(rv_date_from_ymd(years[i].y, 3, 1) - rv_date_from_ymd(years[i].y, 1, 1),
                         years[i].leap ? 60 : 59);
    }
}

struct parse_case {
    const char *in;
    int rc;
    int y, m, d;
};

static const struct parse_case iso_cases[] = {
    {"2021-12-01", 0, 2021, 12, 1},      {"1970-01-01", 0, 1970, 1, 1},
    {"2020-02-29", 0, 2020, 2, 29},      {"9999-12-31", 0, 9999, 12, 31},
    {"1800-01-01", 0, 1800, 1, 1},       {"1799-12-31", RV_EPARSE, 0, 0, 0},
    {"2021-02-29", RV_EPARSE, 0, 0, 0},  {"2021-04-31", RV_EPARSE, 0, 0, 0},
    {"2021-13-01", RV_EPARSE, 0, 0, 0},  {"2021-00-10", RV_EPARSE, 0, 0, 0},
    {"2021-01-00", RV_EPARSE, 0, 0, 0},  {"2021-01-32", RV_EPARSE, 0, 0, 0},
    {"2021-1-01", RV_EPARSE, 0, 0, 0},   {"2021-01-1", RV_EPARSE, 0, 0, 0},
    {"21-01-01", RV_EPARSE, 0, 0, 0},    {"2021/01/01", RV_EPARSE, 0, 0, 0},
    {"2021-01-01x", RV_EPARSE, 0, 0, 0}, {"2021-01-01 ", RV_EPARSE, 0, 0, 0},
    {" 2021-01-01", RV_EPARSE, 0, 0, 0}, {"20210101", RV_EPARSE, 0, 0, 0},
    {"01/12/2021", RV_EPARSE, 0, 0, 0},  {"", RV_EPARSE, 0, 0, 0},
    {"-", RV_EPARSE, 0, 0, 0},           {"2021-\xc3\xa9-01", RV_EPARSE, 0, 0, 0},
};

static const struct parse_case dmy_cases[] = {
    {"01/12/2021", 0, 2021, 12, 1},
    {"1/12/2021", 0, 2021, 12, 1},
    {"1/2/2021", 0, 2021, 2, 1},
    {"31/12/1999", 0, 1999, 12, 31},
    {"29/02/2020", 0, 2020, 2, 29},
    {"29/02/2021", RV_EPARSE, 0, 0, 0},
    {"31/04/2021", RV_EPARSE, 0, 0, 0},
    {"32/01/2021", RV_EPARSE, 0, 0, 0},
    {"00/01/2021", RV_EPARSE, 0, 0, 0},
    {"01/13/2021", RV_EPARSE, 0, 0, 0},
    {"01/00/2021", RV_EPARSE, 0, 0, 0},
    {"1/2/21", RV_EPARSE, 0, 0, 0},
    {"001/02/2021", RV_EPARSE, 0, 0, 0},
    {"01/02/20211", RV_EPARSE, 0, 0, 0},
    {"01/02/2021 ", RV_EPARSE, 0, 0, 0},
    {"01-02-2021", RV_EPARSE, 0, 0, 0},
    {"01.02.2021", RV_EPARSE, 0, 0, 0},
    {"2021-02-01", RV_EPARSE, 0, 0, 0},
    {"/02/2021", RV_EPARSE, 0, 0, 0},
    {"01//2021", RV_EPARSE, 0, 0, 0},
    {"", RV_EPARSE, 0, 0, 0},
    {"01/02/1799", RV_EPARSE, 0, 0, 0},
};

static void run_cases(const struct parse_case *cases, size_t n, bool iso)
{
    for (size_t i = 0; i < n; i++) {
        rv_date d = 12345;
        int rc = iso ? rv_date_parse_iso(cases[i].in, &d) : rv_date_parse_dmy(cases[i].in, &d);
        if (rc != cases[i].rc)
            fail_msg("%s case %zu: rc %d, expected %d", iso ? "iso" : "dmy", i, rc, cases[i].rc);
        if (rc == 0 && d != rv_date_from_ymd(cases[i].y, cases[i].m, cases[i].d))
            fail_msg("%s case %zu: wrong day", iso ? "iso" : "dmy", i);
    }
}

static void test_parse_iso(void **state)
{
    (void)state;
    run_cases(iso_cases, sizeof(iso_cases) / sizeof(iso_cases[0]), true);
}

static void test_parse_dmy(void **state)
{
    (void)state;
    run_cases(dmy_cases, sizeof(dmy_cases) / sizeof(dmy_cases[0]), false);
}

static void test_format(void **state)
{
    char buf[11];
    rv_date d;
    (void)state;
    assert_string_equal(rv_date_format(0, buf), "1970-01-01");
    assert_string_equal(rv_date_format(rv_date_from_ymd(2021, 12, 1), buf), "2021-12-01");
    assert_string_equal(rv_date_format(RV_DATE_NONE, buf), "-");
    assert_string_equal(rv_date_format(RV_DATE_FOREVER, buf), "open");
    /* Format and parse are inverse over the supported range. */
    for (rv_date day = rv_date_from_ymd(1800, 1, 1); day < rv_date_from_ymd(2100, 1, 1);
         day += 97) {
        rv_date_format(day, buf);
        assert_int_equal(rv_date_parse_iso(buf, &d), 0);
        assert_int_equal(d, day);
    }
    /* Today is after the first revised register this code will see. */
    assert_true(rv_date_today() > rv_date_from_ymd(2014, 1, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_days), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_leap_years), cmocka_unit_test(test_parse_iso),
        cmocka_unit_test(test_parse_dmy),  cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
