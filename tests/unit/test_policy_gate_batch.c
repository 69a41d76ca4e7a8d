/*
 * test_policy_gate_batch.c - a local gate answers a batch chunk on every core
 * (rv_check_run_many), a daemon's view on one thread: the answers and the audit entry must
 * be the same either way, answer by answer and in input order. The chunk mixes found,
 * not-found and repeated donors so that an answer put in the wrong slot would show.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include "policy/policy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NQ 96

struct run {
    struct rv_check_answer a[NQ];
    struct rv_audit_record rec;
};

static void check_all(struct rv_gate *g, struct rv_check_query *q, struct run *r)
{
    const struct rv_check_query *qs[NQ];
    uint64_t at;

    for (size_t i = 0; i < NQ; i++)
        qs[i] = &q[i];
    at = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_policy_check(g, "batch", qs, NQ, r->a), 0);
    assert_int_equal(rv_audit_size(rv_policy_audit(g)), at + 1);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), at, &r->rec), 0);
}

static void test_local_batch_matches_view(void **state)
{
    static const char *const names[][2] = {
        {"John Smith", "LS1 4AB"},  {"Chidi Okafor", "LS2 7DB"}, {"Nobody Atall", "LS9 9ZZ"},
        {"Mary Smith", "LS1 4AB"},  {"Jon Smyth", "LS1 4AB"},    {"Chidi Okafor", "LS1 4AB"},
        {"Peter Quill", "LS2 7DB"},
    };
    struct rv_actor op = {"tester", "checker", "local"};
    struct rv_actor admin = {"tester", "admin", "local"};
    struct rv_actor reg = {"tester", "registrar", "local"};
    struct rv_ingest_opts o = {.area = "AREA1", .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_ingest_result res;
    struct rv_vault_secret secret = {0};
    struct rv_check_query *q = calloc(NQ, sizeof(*q));
    struct run *many = calloc(1, sizeof(*many)), *one = calloc(1, sizeof(*one));
    struct rv_gate *g = NULL, *v = NULL;
    struct rv_diag d;
    char *tmp = rv_test_tmpdir("rv-gate-batch"), dir[512];
    uint8_t *key = sodium_malloc(32);
    size_t found = 0;
    (void)state;

    assert_non_null(q);
    assert_non_null(many);
    assert_non_null(one);
    assert_non_null(tmp);
    randombytes_buf(key, 32);
    secret.keyfile = key;
    snprintf(dir, sizeof(dir), "%s/vault", tmp);
    assert_int_equal(rv_policy_create(dir, &secret, 1000, &admin), 0);
    assert_int_equal(rv_policy_open(dir, &secret, &reg, &g), 0);
    assert_int_equal(rv_policy_ingest(g, rv_test_data_file("ingest/full-small.csv"), &o, &res), 0);
    rv_policy_set_actor(g, &op);
    for (size_t i = 0; i < NQ; i++) {
        size_t k = (i * 5 + i / 7) % (sizeof(names) / sizeof(names[0]));
        assert_int_equal(rv_check_query_init(names[k][0], NULL, names[k][1],
                                             rv_date_from_ymd(2026, 1, 15), &q[i], &d),
                         0);
        snprintf(q[i].id, sizeof(q[i].id), "row%zu", i);
    }

    /* The gate itself (local): the chunk spread over the cores. */
    check_all(g, q, many);
    /* A view of it (as the daemon's): one thread. */
    assert_int_equal(rv_policy_view(g, &op, &v), 0);
    check_all(v, q, one);

    for (size_t i = 0; i < NQ; i++) {
        char want[32];
        snprintf(want, sizeof(want), "row%zu", i);
        assert_string_equal(many->a[i].id, want);
        assert_string_equal(one->a[i].id, want);
        assert_int_equal(many->a[i].verdict, one->a[i].verdict);
        assert_int_equal(many->a[i].grade, one->a[i].grade);
        assert_int_equal(many->a[i].nmatches, one->a[i].nmatches);
        for (size_t j = 0; j < many->a[i].nmatches; j++)
            assert_memory_equal(&many->a[i].matches[j].cand.elector,
                                &one->a[i].matches[j].cand.elector, sizeof(struct rv_elector));
        found += many->a[i].nmatches > 0;
    }
    /* The chunk had both kinds of answer, so a shuffle would have shown. */
    assert_true(found > 0 && found < NQ);
    assert_string_equal(many->rec.e.params, one->rec.e.params);
    assert_int_equal(many->rec.e.nsubjects, one->rec.e.nsubjects);
    assert_true(many->rec.e.nsubjects > 0);
    assert_memory_equal(many->rec.e.subjects, one->rec.e.subjects, 32 * many->rec.e.nsubjects);

    for (size_t i = 0; i < NQ; i++) {
        rv_check_answer_free(&many->a[i]);
        rv_check_answer_free(&one->a[i]);
    }
    rv_audit_record_free(&many->rec);
    rv_audit_record_free(&one->rec);
    assert_int_equal(rv_policy_close(v), 0);
    assert_int_equal(rv_policy_close(g), 0);
    rv_test_rmtree(tmp);
    free(tmp);
    free(many);
    free(one);
    sodium_memzero(q, NQ * sizeof(*q));
    free(q);
    sodium_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_batch_matches_view),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
