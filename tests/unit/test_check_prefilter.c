/*
 * test_check_prefilter.c - the matcher's shortcuts give the answers of the full comparison.
 *
 * The namesake and no-postcode lists hand the matcher hundreds of listed names per donor; it
 * rules most of them out with a cheap test (rv_check_name_probe_grade) before the full one
 * (rv_check_name_could_grade), which must never rule out a name the full one would grade:
 * that would hide a registered donor. These tests compare the two over many donors (with
 * nicknames, initials, middle names, swapped and split surnames, accents) against many
 * listed names, mistyped in every way one keystroke can (a transposed first letter
 * included), and check that the cheap test does rule most out. They also check the nickname
 * sets worked out once per name (rv_check_nicknames_of) against rv_check_nickname over every
 * name of the tables. Synthetic names only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check/internal.h"

/* Every folded name of the nickname table and the given-name lists, unique. */
static char **names;
static size_t nnames;

static void add_name(const char *s, size_t n)
{
    char raw[RV_NAME_MAX], folded[RV_NAME_MAX];

    if (n == 0 || n >= sizeof(raw))
        return;
    memcpy(raw, s, n);
    raw[n] = '\0';
    if (rv_fold(raw, n, folded, sizeof(folded)) != 0 || folded[0] == '\0')
        return;
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(names[i], folded) == 0)
            return;
    names = realloc(names, (nnames + 1) * sizeof(*names));
    assert_non_null(names);
    names[nnames] = strdup(folded);
    assert_non_null(names[nnames]);
    nnames++;
}

/* Adds the first and third comma-separated fields of each line after the header. */
static void add_blob(const char *blob)
{
    const struct rv_blob *b = rv_data_find(blob);
    const char *p, *end;

    assert_non_null(b);
    p = strchr(b->data, '\n');
    end = b->data + b->len;
    while (p != NULL && ++p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end, *f = p;
        for (int field = 0; field < 3 && f < le; field++) {
            const char *c = memchr(f, ',', (size_t)(le - f));
            const char *fe = c != NULL ? c : le;
            size_t n = (size_t)(fe - f);
            while (n > 0 && (f[n - 1] == '\r' || f[n - 1] == ' '))
                n--;
            if (field != 1)
                add_name(f, n);
            if (c == NULL)
                break;
            f = c + 1;
        }
        p = nl;
    }
}

static int setup(void **state)
{
    (void)state;
    if (rv_check_tables_init() != 0)
        return -1;
    add_blob("nicknames/names.csv");
    add_blob("nicknames/uk-addendum.csv");
    add_blob("names/first_names_male.csv");
    add_blob("names/first_names_female.csv");
    return nnames > 1000 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return 0;
}

/* rv_check_nicknames_of(a) is exactly the set of b with rv_check_nickname(a, b). */
static void test_nickname_sets(void **state)
{
    size_t pairs = 0;

    (void)state;
    for (size_t i = 0; i < nnames; i++) {
        size_t n;
        const struct rv_check_nick *set = rv_check_nicknames_of(names[i], &n);
        assert_true(n == 0 || set != NULL);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(set[k].len, strlen(set[k].s));
            assert_true(rv_check_nickname(names[i], set[k].s));
        }
        for (size_t j = 0; j < nnames; j++) {
            bool in = false;
            for (size_t k = 0; k < n && !in; k++)
                in = strcmp(set[k].s, names[j]) == 0;
            assert_int_equal(in, rv_check_nickname(names[i], names[j]));
            pairs += in;
        }
    }
    assert_true(pairs > 1000); /* the table was read: bill and william, and many more */
    {
        size_t n;
        assert_null(rv_check_nicknames_of("", &n));
        assert_int_equal(n, 0);
        assert_null(rv_check_nicknames_of("zzqxj", &n));
        assert_int_equal(n, 0);
    }
}

/* Deterministic pseudo-random numbers (xorshift), so that a failure can be replayed. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static size_t below(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

/* out = a, a space and b (b may be ""), cut to cap. */
static void join(char *out, size_t cap, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la >= cap)
        la = cap - 1;
    memcpy(out, a, la);
    if (lb > 0 && la + 1 + lb < cap) {
        out[la] = ' ';
        memcpy(out + la + 1, b, lb);
        la += 1 + lb;
    }
    out[la] = '\0';
}

/* One keystroke away from w (into out): a letter transposed (the first two included),
 * substituted, left out or doubled. */
static void mistype(const char *w, char *out, size_t cap)
{
    size_t n = strlen(w), i = n > 1 ? below(n - 1) : 0;

    join(out, cap, w, "");
    if (n < 2)
        return;
    switch (below(4)) {
    case 0: {
        char t = out[i];
        out[i] = out[i + 1];
        out[i + 1] = t;
        break;
    }
    case 1:
        out[i] = (char)('a' + below(26));
        break;
    case 2:
        memmove(out + i, out + i + 1, n - i);
        break;
    default:
        if (n + 1 < cap) {
            memmove(out + i + 1, out + i, n - i + 1);
        }
        break;
    }
}

/* A listed forenames string related to the donor's first forename f in one of the ways the
 * matcher cares about, or (returning true) names drawn at random. */
static bool listed_forenames(const char *f, char *out, size_t cap)
{
    char w[RV_NAME_MAX], initial[2] = {f[0], '\0'};
    const char *other = names[below(nnames)], *other2 = names[below(nnames)];
    size_t n;
    const struct rv_check_nick *nick = rv_check_nicknames_of(f, &n);

    switch (below(9)) {
    case 0:
        join(out, cap, f, "");
        break;
    case 1:
        join(out, cap, f, other);
        break;
    case 2:
        join(out, cap, other, f);
        break;
    case 3:
        join(out, cap, n > 0 ? nick[below(n)].s : other, "");
        break;
    case 4:
        join(out, cap, other, n > 0 ? nick[below(n)].s : other2);
        break;
    case 5:
        mistype(f, w, sizeof(w));
        join(out, cap, w, "");
        break;
    case 6:
        mistype(f, w, sizeof(w));
        join(out, cap, w, other);
        break;
    case 7:
        join(out, cap, initial, other);
        break;
    default:
        join(out, cap, other, below(2) ? other2 : "");
        return true;
    }
    return false;
}

static void compare(const struct rv_check_query *q, const char *surname_words,
                    const char *forenames, size_t *passed, size_t *graded)
{
    struct rv_check_name_probe p;
    bool full = rv_check_name_could_grade(q, surname_words, forenames);
    bool may;

    rv_check_name_probe_init(q, &p);
    may = rv_check_name_probe_may(&p, surname_words, forenames);
    if ((full && !may) || rv_check_name_probe_grade(&p, surname_words, forenames) != full)
        fail_msg("donor forenames '%s' surname '%s' against '%s' '%s': full %d, cheap %d",
                 q->key.forenames, q->key.surname, forenames, surname_words, full, may);
    *graded += full;
    *passed += may;
}

static void test_probe_equivalence(void **state)
{
    static const char *const donors[] = {
        "John Smith",
        "Mr William Smith",
        "Bill Smith",
        "Jon Smith",
        "James Paul Smith",
        "J P Smith",
        "SMITH John Paul",
        "Leonard O Hara",
        "Ian Mc Kenzie",
        "Sian Bray Ashton",
        "Zoë Smith",
        "Jose Smith",
        "Alfie Smith",
        "Elizabeth Ann Smith",
        "Christopher Smith",
        "Smith",
        "A B C D E F G H I Smith",
        "Catherine Smith",
        "Ajmes Smith",
        "Mary-Jane Smith",
    };
    static const char *const surnames[] = {"smith",  "ohara",       "hara", "mackenzie",  "kenzie",
                                           "ashton", "bray ashton", "john", "smith jones"};
    size_t passed = 0, graded = 0, total = 0, random = 0, random_passed = 0, dummy = 0;

    (void)state;
    for (size_t d = 0; d < sizeof(donors) / sizeof(donors[0]); d++) {
        struct rv_check_query q;
        struct rv_diag diag;
        char fo[3 * RV_NAME_MAX];
        const char *first;
        memset(&diag, 0, sizeof(diag));
        assert_int_equal(rv_check_query_init(donors[d], NULL, "LS1 4AB",
                                             rv_date_from_ymd(2026, 1, 15), &q, &diag),
                         0);
        first = q.key.first[0] != '\0' ? q.key.first : "john";
        for (int i = 0; i < 6000; i++) {
            const char *sw = surnames[below(sizeof(surnames) / sizeof(surnames[0]))];
            const char *f = below(4) == 0 ? names[below(nnames)] : first;
            if (below(3) == 0 && q.swap.forenames[0] != '\0')
                f = q.swap.first;
            else if (below(3) == 0 && q.alt.forenames[0] != '\0')
                f = q.alt.first;
            if (listed_forenames(f, fo, RV_NAME_MAX)) {
                compare(&q, sw, fo, &random_passed, &dummy);
                random++;
            } else {
                compare(&q, sw, fo, &passed, &graded);
                total++;
            }
        }
        /* The donor's own forenames, and the other readings', exactly. */
        compare(&q, "smith", q.key.forenames, &passed, &graded);
        compare(&q, "smith", q.swap.forenames, &passed, &graded);
        compare(&q, "smith", q.alt.forenames, &passed, &graded);
        compare(&q, "smith", "", &passed, &graded);
    }
    /* The related names gave both answers many times, and the cheap test ruled out most of
     * the names drawn at random. */
    print_message("%zu related names: %zu graded, %zu past the cheap test; %zu at random: %zu "
                  "past it\n",
                  total, graded, passed, random, random_passed);
    assert_true(graded > total / 50 && graded < total / 2);
    assert_true(random > 10000 && random_passed < random / 5);
}

/* The typo search's surname test skips Jaro-Winkler where a count of letters shows it
 * cannot reach the bar: its answers must be those of the test that always works it out
 * (the probe without the letters counted), over surnames related to the donor's in every
 * way (mistyped, sounding alike, a part of it, joined to another) and surnames at random. */
static void test_surname_close_equivalence(void **state)
{
    static const char *const donors[] = {
        "John Smith",       "Mary Thompson",  "Leonard O Hara", "Ian Mc Kenzie",
        "Sian Bray Ashton", "Zoë Hall",       "Ann Smyth",      "Peter Schmidt",
        "SMITH John Paul",  "Jo Smith-Jones", "Ed Ng",          "Li Wu",
        "Kate Clarke",      "Rhys Ap Rhys",   "Joe Bloggs",     "Chloé Åberg",
    };
    static const char *const related[] = {
        "smith",  "smyth",       "smithe", "schmidt",     "thompson", "thomson",   "tompson",
        "hall",   "hill",        "hale",   "ohara",       "hara",     "mackenzie", "kenzie",
        "ashton", "bray ashton", "bray",   "smith jones", "jones",    "ng",        "wu",
        "clarke", "clark",       "clafke", "rhys",        "ap rhys",  "bloggs",    "blogs",
        "aberg",  "åberg",       "zoe",    "smïth",
    };
    size_t close = 0, far = 0;

    (void)state;
    for (size_t d = 0; d < sizeof(donors) / sizeof(donors[0]); d++) {
        struct rv_check_query q;
        struct rv_diag diag;
        struct rv_check_sn_probe fast, slow;
        memset(&diag, 0, sizeof(diag));
        assert_int_equal(rv_check_query_init(donors[d], NULL, "LS1 4AB",
                                             rv_date_from_ymd(2026, 1, 15), &q, &diag),
                         0);
        rv_check_sn_probe_init(&q, &fast);
        slow = fast;
        slow.key_counted = slow.alt_counted = false;
        for (int i = 0; i < 4000; i++) {
            char w[RV_NAME_MAX], m[RV_NAME_MAX];
            switch (below(4)) {
            case 0:
                join(w, sizeof(w), related[below(sizeof(related) / sizeof(related[0]))], "");
                break;
            case 1:
                mistype(below(2) ? q.key.surname
                                 : related[below(sizeof(related) / sizeof(related[0]))],
                        w, sizeof(w));
                break;
            case 2:
                mistype(q.key.surname, m, sizeof(m));
                mistype(m, w, sizeof(w));
                break;
            default:
                join(w, sizeof(w), names[below(nnames)], below(4) == 0 ? names[below(nnames)] : "");
                break;
            }
            bool a = rv_check_surname_close(&q, &fast, w, strlen(w));
            bool b = rv_check_surname_close(&q, &slow, w, strlen(w));
            if (a != b)
                fail_msg("donor surname '%s' against '%s': %d with the letters counted, %d "
                         "without",
                         q.key.surname, w, a, b);
            close += a;
            far += !a;
        }
    }
    print_message("%zu surnames close, %zu not\n", close, far);
    assert_true(close > 1000 && far > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nickname_sets),
        cmocka_unit_test(test_probe_equivalence),
        cmocka_unit_test(test_surname_close_equivalence),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
