/*
 * test_core_postcode.c - BS 7666 postcodes: what is repaired, what is refused, and the
 * outward parts.
 *
 * A postcode is half of most blind indexes, so the tests check both directions: every
 * harmless variant (case, blanks, missing or doubled space) must give the one canonical
 * form, and every wrong letter in every position, every O-for-0 and every stray character
 * must be refused rather than guessed into someone else's postcode.
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

struct pc_case {
    const char *in;
    const char *canon; /* NULL: refused with RV_EPARSE */
    const char *area, *district, *outward, *sector;
};

static const struct pc_case pc_cases[] = {
    /* The six outward shapes, and the special case. */
    {"M1 1AE", "M1 1AE", "M", "M1", "M1", "M1 1"},            /* A9 */
    {"B33 8TH", "B33 8TH", "B", "B33", "B33", "B33 8"},       /* A99 */
    {"CR2 6XH", "CR2 6XH", "CR", "CR2", "CR2", "CR2 6"},      /* AA9 */
    {"DN55 1PT", "DN55 1PT", "DN", "DN55", "DN55", "DN55 1"}, /* AA99 */
    {"W1A 0AX", "W1A 0AX", "W", "W1", "W1A", "W1A 0"},        /* A9A */
    {"EC1A 1BB", "EC1A 1BB", "EC", "EC1", "EC1A", "EC1A 1"},  /* AA9A */
    {"SW1A 1AA", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"GIR 0AA", "GIR 0AA", "GIR", "GIR", "GIR", "GIR 0"},
    {"LS1 4AP", "LS1 4AP", "LS", "LS1", "LS1", "LS1 4"},
    {"G12 8QQ", "G12 8QQ", "G", "G12", "G12", "G12 8"},
    {"EH1 1YZ", "EH1 1YZ", "EH", "EH1", "EH1", "EH1 1"},
    {"BT1 5GS", "BT1 5GS", "BT", "BT1", "BT1", "BT1 5"},
    {"N1C 4AG", "N1C 4AG", "N", "N1", "N1C", "N1C 4"},
    {"E1W 1AA", "E1W 1AA", "E", "E1", "E1W", "E1W 1"},
    {"WC2H 7LT", "WC2H 7LT", "WC", "WC2", "WC2H", "WC2H 7"},
    {"NW1W 9AA", "NW1W 9AA", "NW", "NW1", "NW1W", "NW1W 9"},
    /* Repairs. */
    {"sw1a 1aa", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"SW1A1AA", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"sw1a1aa", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"SW1A   1AA", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"  SW1A 1AA  ", "SW1A 1AA", "SW", "SW1", "SW1A", "SW1A 1"},
    {"\tM1 1AE\t", "M1 1AE", "M", "M1", "M1", "M1 1"},
    {"m11ae", "M1 1AE", "M", "M1", "M1", "M1 1"},
    {"Gir 0aa", "GIR 0AA", "GIR", "GIR", "GIR", "GIR 0"},
    {"GIR0AA", "GIR 0AA", "GIR", "GIR", "GIR", "GIR 0"},
    {"Ls1 4aP", "LS1 4AP", "LS", "LS1", "LS1", "LS1 4"},
    /* Refusals: empty, blanks, wrong length. */
    {"", NULL, 0, 0, 0, 0},
    {"   ", NULL, 0, 0, 0, 0},
    {"SW1A", NULL, 0, 0, 0, 0},
    {"1AA", NULL, 0, 0, 0, 0},
    {"SW1A 1A", NULL, 0, 0, 0, 0},
    {"SW1AB 1AA", NULL, 0, 0, 0, 0},
    {"SW1A 1AAA", NULL, 0, 0, 0, 0},
    {"M 1AA", NULL, 0, 0, 0, 0},
    /* Spaces in the wrong place are not repaired. */
    {"S W1A 1AA", NULL, 0, 0, 0, 0},
    {"SW1 A1AA", NULL, 0, 0, 0, 0},
    {"SW1A 1 AA", NULL, 0, 0, 0, 0},
    {"SW 1A 1AA", NULL, 0, 0, 0, 0},
    /* O typed for 0, 0 typed for O, I for 1: refused, never guessed. */
    {"SW1A OAA", NULL, 0, 0, 0, 0},
    {"W1A OAX", NULL, 0, 0, 0, 0},
    {"SWIA 1AA", NULL, 0, 0, 0, 0},
    {"0X1 1AA", NULL, 0, 0, 0, 0},
    {"GIR OAA", NULL, 0, 0, 0, 0},
    {"GIR 1AA", NULL, 0, 0, 0, 0},
    /* Letters not allowed in each position. */
    {"QA1 1AA", NULL, 0, 0, 0, 0},  /* first: Q */
    {"VA1 1AA", NULL, 0, 0, 0, 0},  /* first: V */
    {"XA1 1AA", NULL, 0, 0, 0, 0},  /* first: X */
    {"AI1 1AA", NULL, 0, 0, 0, 0},  /* second: I */
    {"AJ1 1AA", NULL, 0, 0, 0, 0},  /* second: J */
    {"AZ1 1AA", NULL, 0, 0, 0, 0},  /* second: Z */
    {"W1I 1AA", NULL, 0, 0, 0, 0},  /* third (A9A): I */
    {"W1L 1AA", NULL, 0, 0, 0, 0},  /* third (A9A): L */
    {"W1Z 1AA", NULL, 0, 0, 0, 0},  /* third (A9A): Z */
    {"EC1C 1BB", NULL, 0, 0, 0, 0}, /* fourth (AA9A): C */
    {"EC1Z 1BB", NULL, 0, 0, 0, 0}, /* fourth (AA9A): Z */
    {"EC1I 1BB", NULL, 0, 0, 0, 0}, /* fourth (AA9A): I */
    {"M1 1CA", NULL, 0, 0, 0, 0},   /* inward: C */
    {"M1 1AI", NULL, 0, 0, 0, 0},   /* inward: I */
    {"M1 1KA", NULL, 0, 0, 0, 0},   /* inward: K */
    {"M1 1AM", NULL, 0, 0, 0, 0},   /* inward: M */
    {"M1 1OA", NULL, 0, 0, 0, 0},   /* inward: O */
    {"M1 1AV", NULL, 0, 0, 0, 0},   /* inward: V */
    {"M1 AAA", NULL, 0, 0, 0, 0},   /* inward must start with a digit */
    {"M1A1 1AA", NULL, 0, 0, 0, 0}, /* A9A9 is not a shape */
    {"M123 1AA", NULL, 0, 0, 0, 0}, /* A999 */
    {"AB123 1AA", NULL, 0, 0, 0, 0},
    {"1A1 1AA", NULL, 0, 0, 0, 0},
    /* Stray characters. */
    {"SW1A-1AA", NULL, 0, 0, 0, 0},
    {"SW1A.1AA", NULL, 0, 0, 0, 0},
    {"SW1A 1AA.", NULL, 0, 0, 0, 0},
    {"SW1A\n1AA", NULL, 0, 0, 0, 0},
    {"SW1A\xc2\xa0"
     "1AA",
     NULL, 0, 0, 0, 0},                        /* NBSP is not repaired */
    {"\xef\xbc\xb3W1A 1AA", NULL, 0, 0, 0, 0}, /* fullwidth S */
    {"\x80\xbf", NULL, 0, 0, 0, 0},
    {"\xc0\xaf", NULL, 0, 0, 0, 0},
};

static void test_postcode_table(void **state)
{
    struct rv_postcode pc;
    char buf[9];
    (void)state;
    for (size_t i = 0; i < sizeof(pc_cases) / sizeof(pc_cases[0]); i++) {
        const struct pc_case *c = &pc_cases[i];
        int rc = rv_postcode_parse(c->in, strlen(c->in), &pc);
        if (c->canon == NULL) {
            if (rc != RV_EPARSE)
                fail_msg("postcode case %zu: expected refusal, rc %d", i, rc);
            assert_string_equal(pc.canon, "");
            continue;
        }
        if (rc != 0)
            fail_msg("postcode case %zu: rc %d", i, rc);
        assert_string_equal(pc.canon, c->canon);
        assert_int_equal(pc.out_len, strlen(c->outward));
        assert_string_equal(rv_postcode_area(&pc, buf), c->area);
        assert_string_equal(rv_postcode_district(&pc, buf), c->district);
        assert_string_equal(rv_postcode_outward(&pc, buf), c->outward);
        assert_string_equal(rv_postcode_sector(&pc, buf), c->sector);
        /* The canonical form parses to itself. */
        struct rv_postcode again;
        assert_int_equal(rv_postcode_parse(pc.canon, strlen(pc.canon), &again), 0);
        assert_string_equal(again.canon, pc.canon);
    }
}

/* Every outward first letter: exactly the 23 the rule allows are accepted. */
static void test_postcode_first_letters(void **state)
{
    struct rv_postcode pc;
    char in[16];
    int accepted = 0;
    (void)state;
    for (char c = 'A'; c <= 'Z'; c++) {
        snprintf(in, sizeof(in), "%c1 1AA", c);
        if (rv_postcode_parse(in, strlen(in), &pc) == 0)
            accepted++;
        else
            assert_true(c == 'Q' || c == 'V' || c == 'X');
    }
    assert_int_equal(accepted, 23);
    /* Inward letters: 20 allowed (not C I K M O V). */
    accepted = 0;
    for (char c = 'A'; c <= 'Z'; c++) {
        snprintf(in, sizeof(in), "M1 1A%c", c);
        if (rv_postcode_parse(in, strlen(in), &pc) == 0)
            accepted++;
    }
    assert_int_equal(accepted, 20);
}

static void test_postcode_hostile(void **state)
{
    struct rv_postcode pc;
    char *big = malloc(10240);
    (void)state;
    assert_non_null(big);
    memset(big, ' ', 10240);
    memcpy(big + 5000, "SW1A 1AA", 8);
    assert_int_equal(rv_postcode_parse(big, 10240, &pc), RV_ETOOBIG);
    free(big);
    /* NUL inside the counted input is not a terminator. */
    assert_int_equal(rv_postcode_parse("SW1A 1AA\0X", 10, &pc), RV_EPARSE);
    assert_int_equal(rv_postcode_parse("SW1A\0001AA", 8, &pc), RV_EPARSE);
    /* The length is honoured: a valid prefix of the buffer. */
    assert_int_equal(rv_postcode_parse("SW1A 1AAXYZ", 8, &pc), 0);
    assert_string_equal(pc.canon, "SW1A 1AA");
    /* Accessors of a zeroed or damaged struct give "" and stay in bounds. */
    char buf[9];
    memset(&pc, 0, sizeof(pc));
    assert_string_equal(rv_postcode_area(&pc, buf), "");
    assert_string_equal(rv_postcode_district(&pc, buf), "");
    assert_string_equal(rv_postcode_outward(&pc, buf), "");
    assert_string_equal(rv_postcode_sector(&pc, buf), "");
    pc.out_len = 200;
    assert_string_equal(rv_postcode_sector(&pc, buf), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_postcode_table),
        cmocka_unit_test(test_postcode_first_letters),
        cmocka_unit_test(test_postcode_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
