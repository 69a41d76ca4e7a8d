/*
 * test_check_run.c - the matcher against a real (small) vault: the searches that need the
 * vault's format 2 lists (a part of a double-barrelled surname, a mistyped surname found
 * among the postcode's, a namesake elsewhere in the donor's district when the postcode holds
 * nobody of the surname, a donor who moved to another district of the area), answers that
 * show a version no longer in force only when nothing in force matches, a context that
 * notices files ingested after it opened, and rv_check_run_many on several threads giving
 * the answers of rv_check_run one by one. Synthetic names only.
 */
#include "check/check.h"
#include "vault/vault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testutil.h"
#include <sodium.h>

static char *dir;
static uint8_t keyfile[32];

static rv_date D(int y, int m, int d)
{
    return rv_date_from_ymd(y, m, d);
}

static struct rv_vault *open_vault(void)
{
    struct rv_vault *v = NULL;
    struct rv_vault_secret s = {NULL, 0, keyfile};
    assert_int_equal(rv_vault_open(dir, &s, &v), 0);
    return v;
}

static void mk(struct rv_elector *e, unsigned number, const char *name, const char *postcode,
               const char *addr1)
{
    char num[16];
    memset(e, 0, sizeof(*e));
    snprintf(e->area, sizeof(e->area), "LDS");
    snprintf(num, sizeof(num), "%u", number);
    assert_int_equal(rv_elector_number_from_parts("AB1", num, "", &e->number), 0);
    e->attainment = RV_DATE_NONE;
    assert_int_equal(rv_name_parse(name, strlen(name), &e->name), 0);
    assert_int_equal(rv_postcode_parse(postcode, strlen(postcode), &e->postcode), 0);
    snprintf(e->address[0], sizeof(e->address[0]), "%s", addr1);
    snprintf(e->address[1], sizeof(e->address[1]), "Leeds");
}

/* Applies entries as one file: an edition, or alterations taking effect on `from`. */
static void apply(struct rv_vault *v, enum rv_file_kind kind, rv_date date, rv_date from,
                  const struct rv_elector *es, const bool *del, size_t n, uint8_t tag)
{
    struct rv_vault_batch *b = NULL;
    struct rv_prepared *p = malloc(sizeof(*p));
    uint8_t hash[32];
    enum rv_apply a;

    assert_non_null(p);
    memset(hash, tag, sizeof(hash));
    assert_int_equal(rv_vault_batch_begin(v, "LDS", kind, date, hash, &b), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rv_vault_prepare(v, &es[i], NULL, 0, p), 0);
        if (kind == RV_FILE_EDITION)
            assert_int_equal(rv_vault_batch_edition_row(b, p, &a), 0);
        else
            assert_int_equal(rv_vault_batch_alteration_row(b, p, del != NULL && del[i], from, &a),
                             0);
    }
    rv_vault_batch_count(b, n, 0, 0);
    assert_int_equal(rv_vault_batch_commit(b, NULL), 0);
    sodium_memzero(p, sizeof(*p));
    free(p);
}

static int setup(void **state)
{
    struct rv_vault_secret s = {NULL, 0, keyfile};
    struct rv_elector es[13];
    struct rv_vault *v;

    (void)state;
    if ((dir = rv_test_tmpdir("rv-test-check-run")) == NULL)
        return -1;
    if (rv_vault_create(dir, &s, 100000) != 0)
        return -1;
    v = open_vault();
    mk(&es[0], 1, "Smith-Jones, Mary", "LS1 4AB", "10 High Street");
    mk(&es[1], 2, "Smith-Jones, Peter", "LS1 4AB", "10 High Street");
    mk(&es[2], 3, "Clarke, Alan", "LS1 4AB", "12 High Street");
    mk(&es[3], 4, "Okafor, Chidi", "LS6 2QT", "5 Mill Road");
    mk(&es[4], 5, "Patel, Ravi", "LS2 7DB", "3 Park Lane");
    mk(&es[5], 6, "Wright, Elaine", "LS2 7DB", "4 Park Lane");
    mk(&es[6], 7, "Brown, Susan", "LS2 7DB", "6 Park Lane");
    /* Two overseas electors (no postcode, no address). */
    mk(&es[7], 9, "Zzyzx, Hannah", "LS1 4AB", "");
    mk(&es[8], 10, "Zzyzx, Peter", "LS1 4AB", "");
    /* Namesakes at a postcode and abroad: a common surname and a rare one. */
    mk(&es[9], 11, "Smith, John", "LS2 7DB", "7 Park Lane");
    mk(&es[10], 12, "Smith, John", "LS1 4AB", "");
    mk(&es[11], 13, "Qwertz, Olga", "LS2 7DB", "8 Park Lane");
    mk(&es[12], 14, "Qwertz, Olga", "LS1 4AB", "");
    for (int i = 7; i < 13; i++) {
        if (i == 9 || i == 11)
            continue;
        memset(&es[i].postcode, 0, sizeof(es[i].postcode));
        es[i].address[0][0] = '\0';
        es[i].address[1][0] = '\0';
        assert_int_equal(rv_markers_parse("F", 1, &es[i].markers), 0);
    }
    apply(v, RV_FILE_EDITION, D(2025, 12, 1), D(2025, 12, 1), es, NULL, 13, 1);
    /* Susan Brown leaves the register on 1 March 2026. */
    {
        bool del = true;
        apply(v, RV_FILE_ALTERATIONS, D(2025, 12, 1), D(2026, 3, 1), &es[6], &del, 1, 2);
    }
    rv_vault_close(v);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rv_test_rmtree(dir);
    free(dir);
    return 0;
}

static void query(const char *name, const char *postcode, rv_date date, struct rv_check_query *q)
{
    struct rv_diag d;
    memset(&d, 0, sizeof(d));
    assert_int_equal(rv_check_query_init(name, NULL, postcode, date, q, &d), 0);
}

static void check(struct rv_check_ctx *c, const char *name, const char *postcode, rv_date date,
                  struct rv_check_answer *a)
{
    struct rv_check_query q;
    query(name, postcode, date, &q);
    assert_int_equal(rv_check_run(c, &q, a), 0);
    sodium_memzero(&q, sizeof(q));
}

static void test_searches(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_check_ctx *c = NULL;
    struct rv_check_answer a;

    (void)state;
    assert_int_equal(rv_check_ctx_open(v, &c), 0);
    /* One part of a double-barrelled surname, no street address. */
    check(c, "Mary Smith", "LS1 4AB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.nmatches, 1);
    assert_int_equal(a.matches[0].sn, RV_SN_HYPHEN);
    rv_check_answer_free(&a);
    /* A mistyped surname (Clafke for Clarke): among the surnames at the postcode. */
    check(c, "Alan Clafke", "LS1 4AB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_true(a.matches[0].cand.found_by & RV_CHECK_BY_VARIANT);
    rv_check_answer_free(&a);
    /* Moved within the area: found in another district the vault holds, for review. */
    check(c, "Chidi Okafor", "LS9 1AA", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
    assert_true(a.matches[0].cand.found_by & RV_CHECK_BY_NEARBY);
    rv_check_answer_free(&a);
    /* Nobody of the surname at the donor's postcode, a namesake elsewhere in the district:
     * found through the district's namesake list (opened once the index shows one). */
    check(c, "Ravi Patel", "LS2 9ZZ", D(2026, 1, 15), &a);
    assert_true(a.nmatches >= 1);
    assert_true(a.matches[0].cand.found_by & RV_CHECK_BY_INITIAL_OUTWARD);
    assert_string_equal(a.matches[0].cand.elector.postcode.canon, "LS2 7DB");
    rv_check_answer_free(&a);
    /* Left the register before the donation: shown, not in force, when nothing in force
     * matches; not shown when something in force does. */
    check(c, "Susan Brown", "LS2 7DB", D(2026, 4, 1), &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    assert_int_equal(a.nmatches, 1);
    assert_false(a.matches[0].in_force);
    rv_check_answer_free(&a);
    check(c, "Susan Brown", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_true(a.matches[0].in_force);
    rv_check_answer_free(&a);
    /* Overseas: a full name and a rare surname are strong; the namesake whose forename
     * differs is left out without being decrypted, and never shown. */
    check(c, "Hannah Zzyzx", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.nmatches, 1);
    assert_int_equal(a.matches[0].addr, RV_ADDR_OVERSEAS);
    assert_true(a.matches[0].cand.found_by & RV_CHECK_BY_SURNAME);
    rv_check_answer_free(&a);
    /* Nobody. */
    check(c, "Zebedee Quux", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    assert_int_equal(a.nmatches, 0);
    rv_check_answer_free(&a);

    /* A file ingested after the context opened is seen at the next check. */
    {
        struct rv_elector e;
        mk(&e, 8, "Quux, Zebedee", "LS2 7DB", "8 Park Lane");
        apply(v, RV_FILE_ALTERATIONS, D(2025, 12, 1), D(2026, 1, 1), &e, NULL, 1, 3);
        sodium_memzero(&e, sizeof(e));
    }
    check(c, "Zebedee Quux", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_string_equal(a.matches[0].cand.edition, "2025-12-01 + alterations to 2026-01-01");
    rv_check_answer_free(&a);
    rv_check_ctx_close(c);
    rv_vault_close(v);
}

/* The edition an answer rests on: alterations that took effect on the edition day itself
 * are the register as it stood that day, not alterations to it; later ones are named by the
 * last date up to the donation's on which one took effect. */
static void test_edition_label(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_check_ctx *c = NULL;
    struct rv_check_answer a;
    struct rv_elector e;

    (void)state;
    mk(&e, 20, "Edday, Ruth", "LS2 7DB", "9 Park Lane");
    apply(v, RV_FILE_ALTERATIONS, D(2025, 12, 1), D(2025, 12, 1), &e, NULL, 1, 4);
    mk(&e, 21, "Fenn, Otto", "LS2 7DB", "11 Park Lane");
    apply(v, RV_FILE_ALTERATIONS, D(2025, 12, 1), D(2026, 2, 1), &e, NULL, 1, 5);
    sodium_memzero(&e, sizeof(e));
    assert_int_equal(rv_check_ctx_open(v, &c), 0);
    check(c, "Ruth Edday", "LS2 7DB", D(2025, 12, 1), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_string_equal(a.matches[0].cand.edition, "2025-12-01");
    rv_check_answer_free(&a);
    check(c, "Ruth Edday", "LS2 7DB", D(2026, 1, 15), &a);
    assert_string_equal(a.matches[0].cand.edition, "2025-12-01");
    rv_check_answer_free(&a);
    check(c, "Ruth Edday", "LS2 7DB", D(2026, 2, 10), &a);
    assert_string_equal(a.matches[0].cand.edition, "2025-12-01 + alterations to 2026-02-01");
    rv_check_answer_free(&a);
    /* Before Otto Fenn entered the register: shown with the edition of the day he did. */
    check(c, "Otto Fenn", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
    assert_false(a.matches[0].in_force);
    assert_string_equal(a.matches[0].cand.edition, "2025-12-01 + alterations to 2026-02-01");
    rv_check_answer_free(&a);
    rv_check_ctx_close(c);
    rv_vault_close(v);
}

/* Entries abroad are looked for only when they could change what the answer shows: a
 * common surname found strong at the postcode settles it (abroad it would be possible at
 * best), a rare one does not (a full name abroad is strong too, and both are shown), and
 * neither does a donor not found at the postcode. */
static void test_abroad(void **state)
{
    struct rv_vault *v = open_vault();
    struct rv_check_ctx *c = NULL;
    struct rv_check_answer a;

    (void)state;
    assert_int_equal(rv_check_ctx_open(v, &c), 0);
    check(c, "John Smith", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.grade, RV_GRADE_STRONG);
    assert_int_equal(a.nmatches, 1);
    assert_int_equal(a.matches[0].addr, RV_ADDR_POSTCODE);
    assert_int_equal(a.runner_up, RV_GRADE_NONE); /* the namesake abroad was not looked for */
    rv_check_answer_free(&a);
    check(c, "John Smith", "LS6 2QT", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
    assert_int_equal(a.nmatches, 1);
    assert_int_equal(a.matches[0].addr, RV_ADDR_OVERSEAS);
    assert_true(a.matches[0].cand.found_by & RV_CHECK_BY_SURNAME);
    rv_check_answer_free(&a);
    check(c, "Olga Qwertz", "LS2 7DB", D(2026, 1, 15), &a);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(a.nmatches, 2); /* a tie at strong: both shown */
    assert_int_equal(a.matches[0].grade, RV_GRADE_STRONG);
    assert_int_equal(a.matches[1].grade, RV_GRADE_STRONG);
    assert_true(a.matches[0].addr == RV_ADDR_OVERSEAS || a.matches[1].addr == RV_ADDR_OVERSEAS);
    rv_check_answer_free(&a);
    /* Many checks in one unchanged vault: the reader comes to know which surnames have no
     * list of entries abroad, and still finds those that have one. */
    for (int round = 0; round < 100; round++) {
        check(c, "John Smith", "LS6 2QT", D(2026, 1, 15), &a);
        assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
        assert_int_equal(a.nmatches, 1);
        assert_int_equal(a.matches[0].addr, RV_ADDR_OVERSEAS);
        rv_check_answer_free(&a);
        check(c, "Olga Qwertz", "LS2 7DB", D(2026, 1, 15), &a);
        assert_int_equal(a.nmatches, 2);
        rv_check_answer_free(&a);
        check(c, "Zebedee Quux", "LS6 2QT", D(2026, 1, 15), &a);
        assert_int_equal(a.verdict, RV_VERDICT_NOT_FOUND);
        rv_check_answer_free(&a);
    }
    rv_check_ctx_close(c);
    rv_vault_close(v);
}

/* The same answers on 1 thread and on 3, in order, over many queries. */
static void test_run_many(void **state)
{
    static const char *const names[] = {"Mary Smith",   "Alan Clafke",       "Chidi Okafor",
                                        "Susan Brown",  "Ravi Patel",        "Elaine Wright",
                                        "Zebedee Quux", "Peter Smith-Jones", "P Smith Jones"};
    static const char *const pcs[] = {"LS1 4AB", "LS1 4AB", "LS9 1AA", "LS2 7DB", "LS2 7DB",
                                      "LS2 7DB", "LS2 7DB", "LS1 4AB", "LS1 4AB"};
    enum { N = 300 };
    struct rv_vault *v = open_vault();
    struct rv_check_ctx *c = NULL;
    struct rv_check_query *qs = calloc(N, sizeof(*qs));
    const struct rv_check_query **qp = calloc(N, sizeof(*qp));
    struct rv_check_answer *one = calloc(N, sizeof(*one)), *many = calloc(N, sizeof(*many));

    (void)state;
    assert_non_null(qs);
    assert_non_null(qp);
    assert_non_null(one);
    assert_non_null(many);
    for (size_t i = 0; i < N; i++) {
        size_t k = i % (sizeof(names) / sizeof(names[0]));
        query(names[k], pcs[k], D(2026, 1, 1) + (rv_date)(i % 120), &qs[i]);
        qp[i] = &qs[i];
    }
    assert_int_equal(rv_check_ctx_open(v, &c), 0);
    assert_int_equal(rv_check_run_many(c, qp, N, one), 0); /* one thread: the default */
    assert_int_equal(rv_check_ctx_set_threads(c, 0), RV_EINVAL);
    assert_int_equal(rv_check_ctx_set_threads(c, 3), 0);
    for (int round = 0; round < 2; round++) {
        assert_int_equal(rv_check_run_many(c, qp, N, many), 0);
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(many[i].verdict, one[i].verdict);
            assert_int_equal(many[i].grade, one[i].grade);
            assert_int_equal(many[i].nmatches, one[i].nmatches);
            for (size_t j = 0; j < one[i].nmatches; j++) {
                assert_int_equal(many[i].matches[j].cand.elector.number.number,
                                 one[i].matches[j].cand.elector.number.number);
                assert_int_equal(many[i].matches[j].cand.from, one[i].matches[j].cand.from);
            }
            rv_check_answer_free(&many[i]);
        }
        /* Chunk by chunk, as a batch hands them over: the same threads wake for each chunk,
         * all of them for 20 checks, one of the two helpers for 8 (two checks each at
         * least), none for 7. */
        for (size_t at = 0, k = 0; at < N; k++) {
            size_t len = k % 3 == 0 ? 20 : k % 3 == 1 ? 8 : 7;
            if (len > N - at)
                len = N - at;
            assert_int_equal(rv_check_run_many(c, qp + at, len, many + at), 0);
            at += len;
        }
        for (size_t i = 0; i < N; i++) {
            assert_int_equal(many[i].verdict, one[i].verdict);
            assert_int_equal(many[i].grade, one[i].grade);
            assert_int_equal(many[i].nmatches, one[i].nmatches);
            rv_check_answer_free(&many[i]);
        }
        /* Fewer threads, then more again: helpers closed and reopened. */
        assert_int_equal(rv_check_ctx_set_threads(c, round == 0 ? 2 : 4), 0);
    }
    assert_int_equal(rv_check_ctx_set_threads(c, 1), 0);
    assert_int_equal(rv_check_run_many(c, qp, 0, many), 0);
    for (size_t i = 0; i < N; i++)
        rv_check_answer_free(&one[i]);
    sodium_memzero(qs, N * sizeof(*qs));
    free(qs);
    free(qp);
    free(one);
    free(many);
    rv_check_ctx_close(c);
    rv_vault_close(v);
}

/* More contexts than the store has reader slots, and more than the vault lets keep their
 * store transaction between checks (each would hold a reader slot while idle): those past the
 * limit give theirs up and begin afresh at their next check, with the same answers. */
static void test_many_contexts(void **state)
{
    enum { N = 300 }; /* past the store's 256 reader slots, were every one kept */
    struct rv_vault *v = open_vault();
    struct rv_check_ctx *c[N];
    struct rv_check_answer a;

    (void)state;
    for (int i = 0; i < N; i++)
        assert_int_equal(rv_check_ctx_open(v, &c[i]), 0);
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < N; i++) {
            check(c[i], "John Smith", "LS6 2QT", D(2026, 1, 15), &a);
            assert_int_equal(a.verdict, RV_VERDICT_REVIEW);
            assert_int_equal(a.nmatches, 1);
            assert_int_equal(a.matches[0].addr, RV_ADDR_OVERSEAS);
            rv_check_answer_free(&a);
        }
    for (int i = 0; i < N; i++)
        rv_check_ctx_close(c[i]);
    rv_vault_close(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_searches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edition_label, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abroad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_run_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_contexts, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    randombytes_buf(keyfile, sizeof(keyfile));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
