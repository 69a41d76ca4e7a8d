/*
 * test_core_address.c - reading register address lines and free-text addresses into the
 * parts that matching compares, and the canonical first line of the blind index.
 *
 * The central property is that one address written different ways gives one first_line:
 * register lines, donors' free text with commas and abbreviations, upper or lower case.
 * Tables cover sub-buildings, house numbers with suffixes, ranges, the Scottish tenement
 * and Edinburgh forms, building names, each abbreviation, Saint versus Street, postcodes
 * left in free text, and hostile input.
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

struct addr_case {
    const char *in; /* free text for rv_address_parse */
    const char *sub, *number, *suffix, *building, *street, *locality, *first_line;
};

static const struct addr_case parse_cases[] = {
    {"10 High Street", "", "10", "", "", "high street", "", "10 high street"},
    {"10 High St", "", "10", "", "", "high street", "", "10 high street"},
    {"10 High St.", "", "10", "", "", "high street", "", "10 high street"},
    {"10A High St, Leeds", "", "10", "a", "", "high street", "leeds", "10a high street"},
    {"10 A High Street", "", "10", "a", "", "high street", "", "10a high street"},
    {"10a high street", "", "10", "a", "", "high street", "", "10a high street"},
    {"Flat 2, 10A High St.", "2", "10", "a", "", "high street", "", "flat 2 10a high street"},
    {"flat 2 10a high street", "2", "10", "a", "", "high street", "", "flat 2 10a high street"},
    {"FLAT 2, 10A HIGH STREET, LEEDS", "2", "10", "a", "", "high street", "leeds",
     "flat 2 10a high street"},
    {"Apartment 2, 10A High Street", "2", "10", "a", "", "high street", "",
     "flat 2 10a high street"},
    {"Apt 5, 1 Mill Rd", "5", "1", "", "", "mill road", "", "flat 5 1 mill road"},
    {"Unit 3, 7 Station Rd", "3", "7", "", "", "station road", "", "flat 3 7 station road"},
    {"Room 12, 1 College Rd", "12", "1", "", "", "college road", "", "flat 12 1 college road"},
    {"Suite 4, 1 Bank St", "4", "1", "", "", "bank street", "", "flat 4 1 bank street"},
    {"Flat A, 3 Park Ave", "a", "3", "", "", "park avenue", "", "flat a 3 park avenue"},
    {"10-12 High Street", "", "10-12", "", "", "high street", "", "10-12 high street"},
    {"10 - 12 High Street", "", "10-12", "", "", "high street", "", "10-12 high street"},
    /* Scottish tenements and the Edinburgh form. */
    {"Flat 2/1, 10 High Street, Glasgow", "2/1", "10", "", "", "high street", "glasgow",
     "flat 2/1 10 high street"},
    {"2/1 10 High Street", "2/1", "10", "", "", "high street", "", "flat 2/1 10 high street"},
    {"2/1, 10 High Street", "2/1", "10", "", "", "high street", "", "flat 2/1 10 high street"},
    {"0/1 5 Byres Rd, Glasgow", "0/1", "5", "", "", "byres road", "glasgow",
     "flat 0/1 5 byres road"},
    {"10/2 High St", "2", "10", "", "", "high street", "", "flat 2 10 high street"},
    {"10a/2 High St", "2", "10", "a", "", "high street", "", "flat 2 10a high street"},
    {"Flat A St Johns Court", "a", "", "", "", "saint johns court", "", "flat a saint johns court"},
    {"10/2 High St, Edinburgh", "2", "10", "", "", "high street", "edinburgh",
     "flat 2 10 high street"},
    {"2 10 High Street", "2", "10", "", "", "high street", "", "flat 2 10 high street"},
    /* Saint versus Street. */
    {"5 St Johns Road", "", "5", "", "", "saint johns road", "", "5 saint johns road"},
    {"5 St. John's Rd", "", "5", "", "", "saint johns road", "", "5 saint johns road"},
    {"5 Saint Johns Road", "", "5", "", "", "saint johns road", "", "5 saint johns road"},
    {"5 St Johns St", "", "5", "", "", "saint johns street", "", "5 saint johns street"},
    {"1 Church St, St Albans", "", "1", "", "", "church street", "saint albans", "1 church street"},
    /* Abbreviations. */
    {"1 Oak Ave", "", "1", "", "", "oak avenue", "", "1 oak avenue"},
    {"1 Kew Gdns", "", "1", "", "", "kew gardens", "", "1 kew gardens"},
    {"1 Royal Cres", "", "1", "", "", "royal crescent", "", "1 royal crescent"},
    {"1 Elm Dr", "", "1", "", "", "elm drive", "", "1 elm drive"},
    {"1 Mill Ln", "", "1", "", "", "mill lane", "", "1 mill lane"},
    {"1 Hope Pl", "", "1", "", "", "hope place", "", "1 hope place"},
    {"1 Market Sq", "", "1", "", "", "market square", "", "1 market square"},
    {"1 Oak Ct", "", "1", "", "", "oak court", "", "1 oak court"},
    {"1 Bath Terr", "", "1", "", "", "bath terrace", "", "1 bath terrace"},
    {"1 Bath Ter", "", "1", "", "", "bath terrace", "", "1 bath terrace"},
    {"1 Bath Tce", "", "1", "", "", "bath terrace", "", "1 bath terrace"},
    {"1 Ash Cl", "", "1", "", "", "ash close", "", "1 ash close"},
    {"1 Ash Gr", "", "1", "", "", "ash grove", "", "1 ash grove"},
    {"1 Hyde Pk", "", "1", "", "", "hyde park", "", "1 hyde park"},
    {"Rose Hse, 1 Mill Rd", "", "1", "", "rose house", "mill road", "", "1 mill road"},
    /* Building names. */
    {"Rose Cottage, Mill Lane, Little Snoring", "", "", "", "rose cottage", "mill lane",
     "little snoring", "rose cottage"},
    {"Rose Cottage", "", "", "", "rose cottage", "", "", "rose cottage"},
    {"Rose Cottage, Little Snoring, Fakenham", "", "", "", "rose cottage", "", "fakenham",
     "rose cottage"},
    {"Apartment 5, The Maltings, 1 Mill Road, Leeds", "5", "1", "", "the maltings", "mill road",
     "leeds", "flat 5 1 mill road"},
    {"Flat 3, Riverside House, Bridge St", "3", "", "", "riverside house", "bridge street", "",
     "flat 3 riverside house"},
    {"Ground Floor Flat 10 High St", "", "10", "", "ground floor flat", "high street", "",
     "10 high street"},
    {"Rose Cottage 12 Mill Lane, Leeds", "", "12", "", "rose cottage", "mill lane", "leeds",
     "12 mill lane"},
    {"Flat 2 Rose Court 10 High Street", "2", "10", "", "rose court", "high street", "",
     "flat 2 10 high street"},
    {"The Maltings Block 2, 1 Mill Road", "", "1", "", "the maltings block 2", "mill road", "",
     "1 mill road"},
    /* Postcodes in free text are not the locality. */
    {"10 High Street, Leeds, LS1 1AA", "", "10", "", "", "high street", "leeds", "10 high street"},
    {"10 High Street, Leeds LS1 1AA", "", "10", "", "", "high street", "leeds", "10 high street"},
    {"10 High Street, Leeds, ls11aa", "", "10", "", "", "high street", "leeds", "10 high street"},
    {"10 High Street Leeds", "", "10", "", "", "high street", "leeds", "10 high street"},
    {"10 Park Road", "", "10", "", "", "park road", "", "10 park road"},
    {"", "", "", "", "", "", "", ""},
    {" , , ", "", "", "", "", "", "", ""},
};

static void check(size_t i, const struct addr_case *c, const struct rv_address_key *k)
{
    if (strcmp(k->sub_building, c->sub) != 0 || strcmp(k->number, c->number) != 0 ||
        strcmp(k->number_suffix, c->suffix) != 0 || strcmp(k->building, c->building) != 0 ||
        strcmp(k->street, c->street) != 0 || strcmp(k->locality, c->locality) != 0 ||
        strcmp(k->first_line, c->first_line) != 0)
        fail_msg("address case %zu: sub %d number %d suffix %d building %d street %d "
                 "locality %d first_line %d",
                 i, strcmp(k->sub_building, c->sub) != 0, strcmp(k->number, c->number) != 0,
                 strcmp(k->number_suffix, c->suffix) != 0, strcmp(k->building, c->building) != 0,
                 strcmp(k->street, c->street) != 0, strcmp(k->locality, c->locality) != 0,
                 strcmp(k->first_line, c->first_line) != 0);
}

static void test_parse_table(void **state)
{
    struct rv_address_key k;
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        int rc = rv_address_parse(parse_cases[i].in, strlen(parse_cases[i].in), &k);
        if (rc != 0)
            fail_msg("address case %zu: rc %d", i, rc);
        check(i, &parse_cases[i], &k);
    }
}

struct lines_case {
    const char *lines[RV_ADDR_LINES];
    const char *sub, *number, *suffix, *building, *street, *locality, *first_line;
};

static const struct lines_case lines_cases[] = {
    {{"Flat 2", "10A High Street", "Leeds"},
     "2",
     "10",
     "a",
     "",
     "high street",
     "leeds",
     "flat 2 10a high street"},
    {{"Flat 2, 10A High Street", "Leeds"},
     "2",
     "10",
     "a",
     "",
     "high street",
     "leeds",
     "flat 2 10a high street"},
    {{"10 High Street", "Leeds", "West Yorkshire"},
     "",
     "10",
     "",
     "",
     "high street",
     "west yorkshire",
     "10 high street"},
    {{"2/1", "10 High Street", "Glasgow"},
     "2/1",
     "10",
     "",
     "",
     "high street",
     "glasgow",
     "flat 2/1 10 high street"},
    {{"Flat 2/1", "10 High Street", "Glasgow"},
     "2/1",
     "10",
     "",
     "",
     "high street",
     "glasgow",
     "flat 2/1 10 high street"},
    {{"10/2 High Street", "Edinburgh"},
     "2",
     "10",
     "",
     "",
     "high street",
     "edinburgh",
     "flat 2 10 high street"},
    {{"10", "High Street", "Leeds"}, "", "10", "", "", "high street", "leeds", "10 high street"},
    {{"Ground Floor Flat", "10 High Street"},
     "",
     "10",
     "",
     "ground floor flat",
     "high street",
     "",
     "10 high street"},
    {{"Meadow View", "Kerr Road", "Shethwfort"},
     "",
     "",
     "",
     "meadow view",
     "kerr road",
     "shethwfort",
     "meadow view"},
    {{"Flat 3", "Riverside Court", "Bridge Street", "Leeds"},
     "3",
     "",
     "",
     "riverside court",
     "bridge street",
     "leeds",
     "flat 3 riverside court"},
    {{"Rose Cottage", "Mill Lane", "Palmers Green", "London"},
     "",
     "",
     "",
     "rose cottage",
     "mill lane",
     "london",
     "rose cottage"},
    {{"Hartley View", "Shethwfort"}, "", "", "", "", "hartley view", "shethwfort", "hartley view"},
    {{"Rose Cottage", "Mill Lane", "Little Snoring", "Fakenham"},
     "",
     "",
     "",
     "rose cottage",
     "mill lane",
     "fakenham",
     "rose cottage"},
    {{"Apartment 5", "The Maltings", "1 Mill Road", "Leeds"},
     "5",
     "1",
     "",
     "the maltings",
     "mill road",
     "leeds",
     "flat 5 1 mill road"},
    {{"", NULL, "10 High Street", "", "Leeds", ""},
     "",
     "10",
     "",
     "",
     "high street",
     "leeds",
     "10 high street"},
    {{"10 High Street", "Leeds", "LS1 1AA"},
     "",
     "10",
     "",
     "",
     "high street",
     "leeds",
     "10 high street"},
    {{"10 High St Leeds"}, "", "10", "", "", "high street leeds", "", "10 high street leeds"},
    {{"1 St Marys Rd"}, "", "1", "", "", "saint marys road", "", "1 saint marys road"},
    {{NULL}, "", "", "", "", "", "", ""},
};

static void test_lines_table(void **state)
{
    struct rv_address_key k;
    (void)state;
    for (size_t i = 0; i < sizeof(lines_cases) / sizeof(lines_cases[0]); i++) {
        const struct lines_case *c = &lines_cases[i];
        int rc = rv_address_key(c->lines, RV_ADDR_LINES, &k);
        if (rc != 0)
            fail_msg("lines case %zu: rc %d", i, rc);
        struct addr_case as = {"",          c->sub,    c->number,   c->suffix,
                               c->building, c->street, c->locality, c->first_line};
        check(100 + i, &as, &k);
    }
}

/* The same address written many ways gives one first line. */
static void test_first_line_agrees(void **state)
{
    static const char *const same[] = {
        "Flat 2, 10A High St.",
        "flat 2 10a high street",
        "FLAT 2 10A HIGH STREET",
        "Flat 2, 10 A, High Street",
        "Apartment 2, 10a High Street, Leeds, LS1 1AA",
        "Flat 2,10A High St",
        "  Flat   2 ,  10A   High   Street  ",
        "Flat 2, 10A High St., Leeds",
        "Apt. 2, 10a High St",
    };
    const char *lines[] = {"Flat 2", "10A High Street"};
    struct rv_address_key ref, k;
    (void)state;
    assert_int_equal(rv_address_key(lines, 2, &ref), 0);
    assert_string_equal(ref.first_line, "flat 2 10a high street");
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        assert_int_equal(rv_address_parse(same[i], strlen(same[i]), &k), 0);
        if (strcmp(k.first_line, ref.first_line) != 0)
            fail_msg("spelling %zu gives a different first line", i);
    }
    /* And different addresses must not collide. */
    static const char *const differ[] = {
        "Flat 3, 10A High Street", "Flat 2, 10B High Street", "Flat 2, 10A Low Street",
        "10A High Street",         "Flat 2, 12 High Street",
    };
    for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
        assert_int_equal(rv_address_parse(differ[i], strlen(differ[i]), &k), 0);
        if (strcmp(k.first_line, ref.first_line) == 0)
            fail_msg("different address %zu collides", i);
    }
}

static void test_hostile(void **state)
{
    struct rv_address_key k;
    char *big;
    (void)state;
    static const char *const bad[] = {
        "\x80",
        "10 High \xbf Street",
        "10 \xc0\xaf High Street",
        "10 High \xed\xa0\x80",
        "10 High Street\xe2\x82",
        "10 High \xf4\x90\x80\x80",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rv_address_parse(bad[i], strlen(bad[i]), &k);
        if (rc != RV_EPARSE)
            fail_msg("bad address %zu: rc %d", i, rc);
        assert_string_equal(k.first_line, "");
        const char *lines[] = {"Flat 1", bad[i]};
        assert_int_equal(rv_address_key(lines, 2, &k), RV_EPARSE);
        assert_string_equal(k.sub_building, "");
    }
    /* Control characters and NUL inside counted input are blanks. */
    assert_int_equal(rv_address_parse("10\x01High\x7fStreet", 14, &k), 0);
    assert_string_equal(k.first_line, "10 high street");
    assert_int_equal(rv_address_parse("10 High\0Street", 14, &k), 0);
    assert_string_equal(k.first_line, "10 high street");
    /* 10 kB fields. */
    big = malloc(10241);
    assert_non_null(big);
    memset(big, 'a', 10240);
    big[10240] = '\0';
    assert_int_equal(rv_address_parse(big, 10240, &k), RV_ETOOBIG);
    assert_string_equal(k.first_line, "");
    const char *lines[] = {"1 Mill Road", big};
    assert_int_equal(rv_address_key(lines, 2, &k), RV_ETOOBIG);
    /* A street name longer than its field; a house number longer than its field. */
    memset(big, 'a', 300);
    big[300] = '\0';
    big[0] = '1';
    big[1] = ' ';
    assert_int_equal(rv_address_parse(big, 300, &k), RV_ETOOBIG);
    assert_int_equal(rv_address_parse("123456-123456 High St", 21, &k), 0);
    assert_string_equal(k.number, "123456-123456");
    /* Too many segments, too many words. */
    for (size_t i = 0; i < 600; i += 2)
        memcpy(big + i, "a,", 2);
    assert_int_equal(rv_address_parse(big, 600, &k), RV_ETOOBIG);
    for (size_t i = 0; i < 600; i += 2)
        memcpy(big + i, "a ", 2);
    assert_int_equal(rv_address_parse(big, 600, &k), RV_ETOOBIG);
    free(big);
    /* Too many lines. */
    const char *many[20];
    for (size_t i = 0; i < 20; i++)
        many[i] = "x";
    assert_int_equal(rv_address_key(many, 20, &k), RV_ETOOBIG);
    assert_int_equal(rv_address_key(NULL, 0, &k), 0);
    assert_string_equal(k.first_line, "");
    /* Punctuation only. */
    assert_int_equal(rv_address_parse("- / . ,", 7, &k), 0);
    assert_string_equal(k.first_line, "");
}

/* Every abbreviation expands, every sub-building keyword is recognised, and every
 * thoroughfare word ends a street when there is no house number. */
static void test_every_word(void **state)
{
    static const char *const abbrevs[][2] = {
        {"yd", "yard"},        {"wy", "way"},          {"wlk", "walk"},
        {"wk", "walk"},        {"vw", "view"},         {"upr", "upper"},
        {"terr", "terrace"},   {"ter", "terrace"},     {"tce", "terrace"},
        {"sth", "south"},      {"sq", "square"},       {"rdg", "ridge"},
        {"rd", "road"},        {"pl", "place"},        {"pk", "park"},
        {"pde", "parade"},     {"nth", "north"},       {"mws", "mews"},
        {"mt", "mount"},       {"mkt", "market"},      {"lwr", "lower"},
        {"ln", "lane"},        {"hts", "heights"},     {"hse", "house"},
        {"gv", "grove"},       {"gt", "great"},        {"gro", "grove"},
        {"grn", "green"},      {"gr", "grove"},        {"gn", "green"},
        {"gdns", "gardens"},   {"gdn", "garden"},      {"fm", "farm"},
        {"est", "estate"},     {"ctr", "centre"},      {"ctg", "cottage"},
        {"ct", "court"},       {"crt", "court"},       {"cresc", "crescent"},
        {"cres", "crescent"},  {"cotts", "cottages"},  {"cnr", "corner"},
        {"clo", "close"},      {"cl", "close"},        {"bvd", "boulevard"},
        {"blvd", "boulevard"}, {"bldgs", "buildings"}, {"bldg", "building"},
        {"avn", "avenue"},     {"ave", "avenue"},      {"av", "avenue"},
        {"apts", "apartments"}};
    static const char *const keywords[] = {"apartment", "apt",  "flat",   "flt",   "maisonette",
                                           "rm",        "room", "studio", "suite", "unit"};
    static const char *const thoroughfares[] = {
        "avenue",  "boulevard", "causeway", "close",   "crescent", "crossway", "drive",
        "gardens", "grove",     "lane",     "mews",    "parade",   "place",    "road",
        "row",     "square",    "street",   "terrace", "vennel",   "walk",     "way",
        "wynd",    "brae",      "circus",   "court",   "gate",     "green",    "hill",
        "loan",    "park",      "quay",     "rise",    "vale",     "view",     "yard"};
    struct rv_address_key k;
    char in[96], want[96];
    (void)state;
    for (size_t i = 0; i < sizeof(abbrevs) / sizeof(abbrevs[0]); i++) {
        snprintf(in, sizeof(in), "1 Rose %s.", abbrevs[i][0]);
        snprintf(want, sizeof(want), "rose %s", abbrevs[i][1]);
        assert_int_equal(rv_address_parse(in, strlen(in), &k), 0);
        if (strcmp(k.street, want) != 0)
            fail_msg("abbreviation %zu not expanded", i);
    }
    for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
        snprintf(in, sizeof(in), "%s 7, 1 Rose Lane", keywords[i]);
        assert_int_equal(rv_address_parse(in, strlen(in), &k), 0);
        if (strcmp(k.sub_building, "7") != 0 || strcmp(k.first_line, "flat 7 1 rose lane") != 0)
            fail_msg("sub-building keyword %zu not recognised", i);
    }
    for (size_t i = 0; i < sizeof(thoroughfares) / sizeof(thoroughfares[0]); i++) {
        snprintf(in, sizeof(in), "Ivy House, Rose %s, Leeds", thoroughfares[i]);
        snprintf(want, sizeof(want), "rose %s", thoroughfares[i]);
        assert_int_equal(rv_address_parse(in, strlen(in), &k), 0);
        if (strcmp(k.street, want) != 0 || strcmp(k.building, "ivy house") != 0)
            fail_msg("thoroughfare %zu not recognised", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),       cmocka_unit_test(test_lines_table),
        cmocka_unit_test(test_first_line_agrees), cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_every_word),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
