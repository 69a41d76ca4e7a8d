/*
 * test_core_name.c - parsing names into title, forenames, surname and suffix, and the
 * folded keys that the surname blind indexes are built from.
 *
 * Known-answer tables for every rule: each title and post-nominal, surname-first with a
 * comma, particles, apostrophes, hyphens, Mc/Mac and accents. Pairs that must key alike are
 * checked against each other, and pairs that must not are too. Hostile input (invalid
 * UTF-8, control characters, NUL inside counted input, a 10 kB field, nothing but a title)
 * must be refused with the right code and leave no half-filled result.
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

struct parse_case {
    const char *in;
    const char *title, *forenames, *surname, *suffix;
};

static const struct parse_case parse_cases[] = {
    {"John Smith", "", "John", "Smith", ""},
    {"Mr John A Smith OBE", "Mr", "John A", "Smith", "OBE"},
    {"SMITH, John A", "", "John A", "SMITH", ""},
    {"Smith, John", "", "John", "Smith", ""},
    {"Smith John", "", "Smith", "John", ""}, /* no comma: forenames first */
    {"Dr. Jane Doe", "Dr", "Jane", "Doe", ""},
    {"Mrs Jane Doe", "Mrs", "Jane", "Doe", ""},
    {"Ms Jane Doe", "Ms", "Jane", "Doe", ""},
    {"Miss Jane Doe", "Miss", "Jane", "Doe", ""},
    {"Mx Sam Doe", "Mx", "Sam", "Doe", ""},
    {"Prof Ada Lovelace", "Prof", "Ada", "Lovelace", ""},
    {"Rev Jim Jones", "Rev", "Jim", "Jones", ""},
    {"Revd Jim Jones", "Revd", "Jim", "Jones", ""},
    {"Sir Ian Botham", "Sir", "Ian", "Botham", ""},
    {"Dame Judi Dench", "Dame", "Judi", "Dench", ""},
    {"Lord Ken Smith", "Lord", "Ken", "Smith", ""},
    {"Lady Jane Grey", "Lady", "Jane", "Grey", ""},
    {"Hon Ann Other", "Hon", "Ann", "Other", ""},
    {"Rt Hon Sir Keir Starmer KC MP", "Rt Hon Sir", "Keir", "Starmer", "KC MP"},
    {"Capt Tom Moore", "Capt", "Tom", "Moore", ""},
    {"Major Tim Peake", "Major", "Tim", "Peake", ""},
    {"Col Sanders", "Col", "", "Sanders", ""},
    {"Cllr Ann Jones", "Cllr", "Ann", "Jones", ""},
    {"MR JOHN SMITH", "MR", "JOHN", "SMITH", ""},
    {"Major", "", "", "Major", ""}, /* a title alone is a surname */
    {"Mr Major", "Mr", "", "Major", ""},
    {"Ann Jones MBE", "", "Ann", "Jones", "MBE"},
    {"Ann Jones CBE", "", "Ann", "Jones", "CBE"},
    {"Ann Jones DBE", "", "Ann", "Jones", "DBE"},
    {"Tom Jones KBE", "", "Tom", "Jones", "KBE"},
    {"Ann Jones QC", "", "Ann", "Jones", "QC"},
    {"Ann Jones MSP", "", "Ann", "Jones", "MSP"},
    {"Ann Jones MS", "", "Ann", "Jones", "MS"},
    {"Ann Jones JP DL", "", "Ann", "Jones", "JP DL"},
    {"Ann Jones PhD", "", "Ann", "Jones", "PhD"},
    {"Ann Jones Ph.D.", "", "Ann", "Jones", "Ph.D."},
    {"Ann Jones O.B.E.", "", "Ann", "Jones", "O.B.E."},
    {"John Smith Jr", "", "John", "Smith", "Jr"},
    {"John Smith Jr.", "", "John", "Smith", "Jr."},
    {"John Smith Jnr", "", "John", "Smith", "Jnr"},
    {"John Smith Snr", "", "John", "Smith", "Snr"},
    {"John Smith Sr", "", "John", "Smith", "Sr"},
    {"John Smith II", "", "John", "Smith", "II"},
    {"John Smith III", "", "John", "Smith", "III"},
    {"John Smith, OBE", "", "John", "Smith", "OBE"},
    {"SMITH, Mr John", "Mr", "John", "SMITH", ""},
    {"Dr SMITH, John", "Dr", "John", "SMITH", ""},
    {"SMITH, John, OBE", "", "John", "SMITH", "OBE"},
    {"Ludwig van Beethoven", "", "Ludwig", "van Beethoven", ""},
    {"Maria de la Cruz", "", "Maria", "de la Cruz", ""},
    {"Hans von Trapp", "", "Hans", "von Trapp", ""},
    {"Jan van der Berg", "", "Jan", "van der Berg", ""},
    {"Anna du Pont", "", "Anna", "du Pont", ""},
    {"Leonardo da Vinci", "", "Leonardo", "da Vinci", ""},
    {"John st Clair", "", "John", "st Clair", ""},
    {"John Van Dyke", "", "John Van", "Dyke", ""}, /* capitalised: not a particle */
    {"van Gogh", "", "", "van Gogh", ""},
    {"Jessica Sarah Mc Lean", "", "Jessica Sarah", "Mc Lean", ""},
    {"Jessica MAC LEAN", "", "Jessica", "MAC LEAN", ""},
    {"Mac Smith", "", "Mac", "Smith", ""},
    {"John O Smith", "", "John O", "Smith", ""}, /* O is an initial here */
    {"Sean O'Brien", "", "Sean", "O'Brien", ""},
    {"Mary Smith-Jones", "", "Mary", "Smith-Jones", ""},
    {"  John    Smith  ", "", "John", "Smith", ""},
    {"John\tSmith", "", "John", "Smith", ""},
    {"Zo\xc3\xab Bront\xc3\xab", "", "Zo\xc3\xab", "Bront\xc3\xab", ""},
    {"Smith", "", "", "Smith", ""},
    {"Jr", "", "", "Jr", ""},
    {"Mr", "", "", "Mr", ""}, /* never left with no surname */
};

static void test_parse_table(void **state)
{
    struct rv_name n;
    (void)state;
    for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
        const struct parse_case *c = &parse_cases[i];
        int rc = rv_name_parse(c->in, strlen(c->in), &n);
        if (rc != 0)
            fail_msg("parse case %zu: rc %d", i, rc);
        if (strcmp(n.title, c->title) != 0 || strcmp(n.forenames, c->forenames) != 0 ||
            strcmp(n.surname, c->surname) != 0 || strcmp(n.suffix, c->suffix) != 0)
            fail_msg("parse case %zu: fields differ (title %d forenames %d surname %d suffix %d)",
                     i, strcmp(n.title, c->title) != 0, strcmp(n.forenames, c->forenames) != 0,
                     strcmp(n.surname, c->surname) != 0, strcmp(n.suffix, c->suffix) != 0);
    }
}

struct parts_case {
    const char *surname, *forenames;
    int rc;
    const char *title, *f, *s, *suffix;
};

static const struct parts_case parts_cases[] = {
    {"Smith", "John", 0, "", "John", "Smith", ""},
    {"Smith", "Mr John", 0, "Mr", "John", "Smith", ""},
    {"Smith OBE", "John", 0, "", "John", "Smith", "OBE"},
    {"Smith", "John OBE", 0, "", "John", "Smith", "OBE"},
    {"Smith Jr", "Dr John", 0, "Dr", "John", "Smith", "Jr"},
    {"Smith", "Mr", 0, "Mr", "", "Smith", ""},
    {"Smith", "", 0, "", "", "Smith", ""},
    {"  SMITH ", " JOHN  PAUL ", 0, "", "JOHN PAUL", "SMITH", ""},
    {"van Beethoven", "Ludwig", 0, "", "Ludwig", "van Beethoven", ""},
    {"Major", "Tim", 0, "", "Tim", "Major", ""},
    {"", "John", RV_EPARSE, "", "", "", ""},
    {"   ", "John", RV_EPARSE, "", "", "", ""},
    {"Smi\xc0\xafth", "John", RV_EPARSE, "", "", "", ""},
    {"Smith", "Jo\x80hn", RV_EPARSE, "", "", "", ""},
    {"Smith", "John\xe2\x82", RV_EPARSE, "", "", "", ""},
};

static void test_from_parts(void **state)
{
    struct rv_name n;
    (void)state;
    for (size_t i = 0; i < sizeof(parts_cases) / sizeof(parts_cases[0]); i++) {
        const struct parts_case *c = &parts_cases[i];
        int rc = rv_name_from_parts(c->surname, c->forenames, &n);
        if (rc != c->rc)
            fail_msg("parts case %zu: rc %d, expected %d", i, rc, c->rc);
        assert_string_equal(n.title, c->title);
        assert_string_equal(n.forenames, c->f);
        assert_string_equal(n.surname, c->s);
        assert_string_equal(n.suffix, c->suffix);
    }
}

struct key_case {
    const char *in; /* parsed with rv_name_parse */
    const char *forenames, *first;
    char initial;
    const char *surname, *tokens;
    unsigned ntokens;
};

static const struct key_case key_cases[] = {
    {"John Smith", "john", "john", 'j', "smith", "smith", 1},
    {"Mr John Paul SMITH", "john paul", "john", 'j', "smith", "smith", 1},
    {"Sean O'Brien", "sean", "sean", 's', "obrien", "obrien", 1},
    {"Sean O\xe2\x80\x99"
     "Brien",
     "sean", "sean", 's', "obrien", "obrien", 1},
    {"Sean O\xe2\x80\x98"
     "Brien",
     "sean", "sean", 's', "obrien", "obrien", 1},
    {"Sean O`Brien", "sean", "sean", 's', "obrien", "obrien", 1},
    {"Sean OBrien", "sean", "sean", 's', "obrien", "obrien", 1},
    {"Sean O Brien", "sean o", "sean", 's', "brien", "brien", 1},
    {"Mary Smith-Jones", "mary", "mary", 'm', "smithjones", "smith jones", 2},
    {"SMITH-JONES, Mary", "mary", "mary", 'm', "smithjones", "smith jones", 2},
    {"Ian McDonald", "ian", "ian", 'i', "macdonald", "macdonald", 1},
    {"Ian MacDonald", "ian", "ian", 'i', "macdonald", "macdonald", 1},
    {"Ian MCDONALD", "ian", "ian", 'i', "macdonald", "macdonald", 1},
    {"Ian Mc Donald", "ian", "ian", 'i', "macdonald", "mac donald", 2},
    {"MC DONALD, Ian", "ian", "ian", 'i', "macdonald", "mac donald", 2},
    {"Ann Mackay", "ann", "ann", 'a', "mackay", "mackay", 1},
    {"Ann McKay-Smith", "ann", "ann", 'a', "mackaysmith", "mackay smith", 2},
    {"Ludwig van Beethoven", "ludwig", "ludwig", 'l', "vanbeethoven", "van beethoven", 2},
    {"Jos\xc3\xa9 Mu\xc3\xb1oz", "jose", "jose", 'j', "munoz", "munoz", 1},
    {"Lech Wa\xc5\x82\xc4\x99sa", "lech", "lech", 'l', "walesa", "walesa", 1},
    {"S\xc3\xb8ren Kierkeg\xc3\xa5rd", "soren", "soren", 's', "kierkegard", "kierkegard", 1},
    {"Hans Gro\xc3\x9f", "hans", "hans", 'h', "gross", "gross", 1},
    {"\xc3\x86lfr\xc3\xad\xc3\xb0 \xc3\x9e\xc3\xb3rsd\xc3\xb3ttir", "aelfrid", "aelfrid", 'a',
     "thorsdottir", "thorsdottir", 1},
    {"Zo\xc3\xab Bront\xc3\xab", "zoe", "zoe", 'z', "bronte", "bronte", 1},
    {"\xc4\x90or\xc4\x91"
     "e Petrovi\xc4\x87",
     "dorde", "dorde", 'd', "petrovic", "petrovic", 1},
    {"Fran\xc3\xa7ois C\xc5\x93ur", "francois", "francois", 'f', "coeur", "coeur", 1},
    {"Smith", "", "", 0, "smith", "smith", 1},
    {"Jean-Paul Sartre", "jean paul", "jean", 'j', "sartre", "sartre", 1},
    {"\xce\x9d\xce\xb9\xce\xba\xce\xbf\xcf\x82 \xce\xa0\xce\xb1\xcf\x80\xce\xb1\xcf\x82",
     "\xce\xbd\xce\xb9\xce\xba\xce\xbf\xcf\x83", "\xce\xbd\xce\xb9\xce\xba\xce\xbf\xcf\x83", 0,
     "\xcf\x80\xce\xb1\xcf\x80\xce\xb1\xcf\x83", "\xcf\x80\xce\xb1\xcf\x80\xce\xb1\xcf\x83", 1},
};

static void test_key_table(void **state)
{
    struct rv_name n;
    struct rv_name_key k;
    (void)state;
    for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
        const struct key_case *c = &key_cases[i];
        if (rv_name_parse(c->in, strlen(c->in), &n) != 0)
            fail_msg("key case %zu: parse failed", i);
        int rc = rv_name_key(&n, &k);
        if (rc != 0)
            fail_msg("key case %zu: rc %d", i, rc);
        if (strcmp(k.forenames, c->forenames) != 0 || strcmp(k.first, c->first) != 0 ||
            k.initial != c->initial || strcmp(k.surname, c->surname) != 0 ||
            strcmp(k.surname_tokens, c->tokens) != 0 || k.nsurname_tokens != c->ntokens)
            fail_msg("key case %zu: keys differ", i);
    }
}

/* Spellings that must key alike, and spellings that must not. */
static void test_key_pairs(void **state)
{
    static const struct {
        const char *a, *b;
        bool same;
    } pairs[] = {
        {"Sean O'Brien", "SEAN OBRIEN", true},
        {"Sean O\xe2\x80\x99"
         "Brien",
         "Sean O'Brien", true},
        {"Ian McDonald", "Ian Macdonald", true},
        {"Ian MCDONALD", "Ian MacDonald", true},
        {"Zo\xc3\xab Bront\xc3\xab", "ZOE BRONTE", true},
        {"Zoe\xcc\x88 Bronte\xcc\x88", "Zo\xc3\xab Bront\xc3\xab", true},
        {"Mr John Smith", "SMITH, John", true},
        {"Dr John Smith OBE", "John Smith", true},
        {"Mary Smith-Jones", "Mary Smith Jones", false}, /* "Smith" is a forename there */
        {"SMITH-JONES, Mary", "Smith Jones, Mary", true},
        {"Jos\xc3\xa9 Garc\xc3\xad"
         "a",
         "Jose Garcia", true},
        {"John Smith", "John Smyth", false},
        {"John Smith", "Jane Smith", false},
        {"Ian McDonald", "Ian Donald", false},
        {"Jessica Mc Lean", "Jessica McLean", true},
        {"Jessica Mac Lean", "JESSICA MCLEAN", true},
    };
    struct rv_name n;
    struct rv_name_key ka, kb;
    (void)state;
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        assert_int_equal(rv_name_parse(pairs[i].a, strlen(pairs[i].a), &n), 0);
        assert_int_equal(rv_name_key(&n, &ka), 0);
        assert_int_equal(rv_name_parse(pairs[i].b, strlen(pairs[i].b), &n), 0);
        assert_int_equal(rv_name_key(&n, &kb), 0);
        bool same = strcmp(ka.surname, kb.surname) == 0 && strcmp(ka.forenames, kb.forenames) == 0;
        if (same != pairs[i].same)
            fail_msg("pair %zu: expected %s", i, pairs[i].same ? "same key" : "different keys");
    }
}

static void test_hostile(void **state)
{
    struct rv_name n;
    struct rv_name_key k;
    char *big;
    (void)state;
    static const char *const bad[] = {
        "",
        "   ",
        "\x80",
        "John \xbf Smith",
        "John \xc0\xaf Smith",
        "John \xe0\x80\xaf Smith",
        "John \xed\xa0\x80 Smith",
        "John \xf4\x90\x80\x80 Smith",
        "John Smit\xc3",
        "John Smith\xe2\x82",
        ",",
        ", John",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = rv_name_parse(bad[i], strlen(bad[i]), &n);
        if (rc != RV_EPARSE)
            fail_msg("bad name %zu: rc %d", i, rc);
        assert_string_equal(n.surname, "");
    }
    /* Control characters are blanks, NUL inside counted input is a blank. */
    assert_int_equal(rv_name_parse("John\x01Smith", 10, &n), 0);
    assert_string_equal(n.surname, "Smith");
    assert_int_equal(rv_name_parse("John\0Smith", 10, &n), 0);
    assert_string_equal(n.forenames, "John");
    assert_string_equal(n.surname, "Smith");
    /* A 10 kB field, a surname that does not fit, too many words. */
    big = malloc(10241);
    assert_non_null(big);
    memset(big, 'a', 10240);
    big[10240] = '\0';
    assert_int_equal(rv_name_parse(big, 10240, &n), RV_ETOOBIG);
    assert_string_equal(n.surname, "");
    assert_int_equal(rv_name_from_parts(big, "John", &n), RV_ETOOBIG);
    assert_int_equal(rv_name_from_parts("Smith", big, &n), RV_ETOOBIG);
    memset(big, 'a', 200);
    big[200] = '\0';
    assert_int_equal(rv_name_parse(big, 200, &n), RV_ETOOBIG);
    for (size_t i = 0; i < 200; i += 2)
        memcpy(big + i, "a ", 2);
    assert_int_equal(rv_name_parse(big, 200, &n), RV_ETOOBIG);
    free(big);
    /* Keys of a struct filled past its end are refused, not read out of bounds. */
    memset(&n, 'x', sizeof(n));
    assert_int_equal(rv_name_key(&n, &k), RV_ETOOBIG);
    memset(&n, 0, sizeof(n));
    assert_int_equal(rv_name_key(&n, &k), RV_EPARSE); /* no surname */
    strcpy(n.surname, "'");
    assert_int_equal(rv_name_key(&n, &k), RV_EPARSE); /* folds to nothing */
    /* Mc/Mac growth cannot overflow the key. */
    memset(&n, 0, sizeof(n));
    for (size_t i = 0; i + 3 < sizeof(n.surname) - 1; i += 3)
        memcpy(n.surname + i, "mc ", 3);
    assert_int_equal(rv_name_key(&n, &k), RV_ETOOBIG);
}

static void test_format(void **state)
{
    struct rv_name n;
    char buf[64];
    (void)state;
    assert_int_equal(rv_name_parse("Dr John Smith OBE", 17, &n), 0);
    assert_string_equal(rv_name_format(&n, buf, sizeof(buf)), "John Smith");
    assert_int_equal(rv_name_parse("Smith", 5, &n), 0);
    assert_string_equal(rv_name_format(&n, buf, sizeof(buf)), "Smith");
    assert_int_equal(rv_name_parse("John Smith", 10, &n), 0);
    assert_string_equal(rv_name_format(&n, buf, 6), "John ");
}

/* Every title and post-nominal is recognised, whatever its case and with dots. */
static void test_every_title_and_suffix(void **state)
{
    static const char *const titles[] = {
        "viscountess", "viscount", "very",       "sir",       "sgt",       "rt",     "right",
        "reverend",    "revd",     "rev",        "rabbi",     "professor", "prof",   "pastor",
        "mx",          "ms",       "mrs",        "mr",        "miss",      "master", "major",
        "maj",         "lt",       "lord",       "lieut",     "lady",      "imam",   "honourable",
        "hon",         "general",  "gen",        "fr",        "dr",        "doctor", "dame",
        "cpl",         "countess", "councillor", "commander", "colonel",   "col",    "cllr",
        "cdr",         "captain",  "capt",       "brig",      "baroness",  "baron"};
    static const char *const suffixes[] = {
        "vc",  "sr",   "snr", "rn",   "qc",   "phd",  "om",  "obe", "mvo",   "msp",
        "ms",  "mp",   "mla", "mep",  "mbe",  "mbbs", "lvo", "llb", "kcvo",  "kcmg",
        "kcb", "kc",   "kbe", "jr",   "jp",   "jnr",  "iv",  "iii", "ii",    "gc",
        "gbe", "frse", "frs", "frcs", "frcp", "fca",  "esq", "dso", "dphil", "dl",
        "dbe", "cvo",  "cmg", "ch",   "cbe",  "cb",   "bt",  "bem", "bart"};
    struct rv_name n;
    char in[96], want[32];
    (void)state;
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++) {
        snprintf(in, sizeof(in), "%s John Smith", titles[i]);
        assert_int_equal(rv_name_parse(in, strlen(in), &n), 0);
        if (strcmp(n.title, titles[i]) != 0 || strcmp(n.surname, "Smith") != 0)
            fail_msg("title %zu not recognised", i);
        snprintf(in, sizeof(in), "%c%s. John Smith", titles[i][0] - 32, titles[i] + 1);
        snprintf(want, sizeof(want), "%c%s", titles[i][0] - 32, titles[i] + 1);
        assert_int_equal(rv_name_parse(in, strlen(in), &n), 0);
        if (strcmp(n.title, want) != 0)
            fail_msg("title %zu with a capital and a dot not recognised", i);
    }
    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(in, sizeof(in), "John Smith %s", suffixes[i]);
        assert_int_equal(rv_name_parse(in, strlen(in), &n), 0);
        if (strcmp(n.suffix, suffixes[i]) != 0 || strcmp(n.surname, "Smith") != 0)
            fail_msg("post-nominal %zu not recognised", i);
        for (size_t k = 0; suffixes[i][k] != '\0'; k++)
            want[k] = (char)(suffixes[i][k] - 32);
        want[strlen(suffixes[i])] = '\0';
        snprintf(in, sizeof(in), "SMITH, John, %s", want);
        assert_int_equal(rv_name_parse(in, strlen(in), &n), 0);
        if (strcmp(n.suffix, want) != 0 || strcmp(n.surname, "SMITH") != 0)
            fail_msg("upper-case post-nominal %zu not recognised", i);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_from_parts),
        cmocka_unit_test(test_key_table),
        cmocka_unit_test(test_key_pairs),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_every_title_and_suffix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
