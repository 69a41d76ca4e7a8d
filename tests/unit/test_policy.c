/*
 * test_policy.c - attacks on the access gate: the wrong role for every action, an audit
 * log that cannot be written (the gate must refuse and change nothing), and proof that
 * every action, refused ones included, leaves an entry that verifies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include "policy/policy.h"

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const ROLES[] = {"admin",    "registrar", "checker", "researcher", "auditor",
                                    "exporter", "",          "root",    "Checker"};

/* The single table of who may do what; everything else must be refused. */
static bool expected_allowed(const char *role, enum rv_action a)
{
    switch (a) {
    case RV_ACT_INIT:
        return strcmp(role, "admin") == 0;
    case RV_ACT_INGEST:
        return strcmp(role, "registrar") == 0;
    case RV_ACT_STATS:
        return strcmp(role, "registrar") == 0 || strcmp(role, "researcher") == 0 ||
               strcmp(role, "admin") == 0 || strcmp(role, "auditor") == 0;
    case RV_ACT_CHECK:
        return strcmp(role, "checker") == 0;
    case RV_ACT_AUDIT_READ:
    case RV_ACT_SUBJECT:
    case RV_ACT_ALERTS:
        return strcmp(role, "auditor") == 0;
    case RV_ACT_USERS:
    case RV_ACT_CANARY:
    case RV_ACT_HONEYTOKEN:
        return strcmp(role, "admin") == 0;
    case RV_ACT_LOGIN:
    case RV_ACT_REQUEST:
    case RV_ACT_ALERT: /* any known role, never an unknown one */
        return strcmp(role, "admin") == 0 || strcmp(role, "registrar") == 0 ||
               strcmp(role, "checker") == 0 || strcmp(role, "researcher") == 0 ||
               strcmp(role, "auditor") == 0;
    default:
        return false;
    }
}

static void test_role_matrix(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof(ROLES) / sizeof(ROLES[0]); r++)
        for (int a = 0; a < RV_ACT_COUNT; a++) {
            int rc = rv_policy_allowed(ROLES[r], (enum rv_action)a);
            assert_int_equal(rc == 0, expected_allowed(ROLES[r], (enum rv_action)a));
        }
    assert_int_equal(rv_policy_allowed(NULL, RV_ACT_CHECK), RV_EDENIED);
    assert_int_equal(rv_policy_allowed("checker", RV_ACT_COUNT), RV_EDENIED);
}

struct fixture {
    char dir[256];
    uint8_t *key;
    struct rv_vault_secret secret;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rv_actor admin = {"tester", "admin", "local"};

    if (f == NULL || sodium_init() < 0)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/rv-policy-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    strcat(f->dir, "/vault");
    f->key = sodium_malloc(32);
    randombytes_buf(f->key, 32);
    f->secret.keyfile = f->key;
    if (rv_policy_create(f->dir, &f->secret, 100000, &admin) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    f->dir[strlen(f->dir) - strlen("/vault")] = '\0';
    rv_test_rmtree(f->dir);
    sodium_free(f->key);
    free(f);
    return 0;
}

static uint64_t log_size(struct fixture *f)
{
    struct rv_actor auditor = {"tester", "auditor", "local"};
    struct rv_gate *g = NULL;
    uint64_t n;

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &auditor, &g), 0);
    n = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_policy_close(g), 0);
    return n;
}

static int count_stats(void *ctx, const struct rv_file_stats *st)
{
    (void)st;
    (*(int *)ctx)++;
    return 0;
}

/* A checker may not ingest; the refusal is recorded; nothing is stored. */
static void test_wrong_role_refused_and_recorded(void **state)
{
    struct fixture *f = *state;
    struct rv_actor checker = {"mallory", "checker", "local"};
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_ingest_opts o = {.area = "AREA1", .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_ingest_result res;
    struct rv_gate *g = NULL;
    struct rv_audit_record rec;
    uint64_t before = log_size(f), after;
    int files = 0;

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &checker, &g), 0);
    assert_int_equal(rv_policy_ingest(g, rv_test_data_file("ingest/full-small.csv"), &o, &res),
                     RV_EDENIED);
    assert_int_equal(rv_policy_stats(g, count_stats, &files), RV_EDENIED);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), before, &rec), 0);
    assert_string_equal(rec.e.principal, "mallory");
    assert_string_equal(rec.e.action, "ingest");
    assert_string_equal(rec.e.outcome, "denied: role");
    rv_audit_record_free(&rec);
    assert_int_equal(rv_policy_close(g), 0);

    after = log_size(f);
    assert_int_equal(after, before + 2);

    /* Nothing was ingested: a registrar sees no files. */
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    assert_int_equal(rv_policy_stats(g, count_stats, &files), 0);
    assert_int_equal(files, 0);
    assert_int_equal(rv_policy_close(g), 0);
}

/* An ingest is recorded before and after; the log then verifies. */
static void test_ingest_recorded(void **state)
{
    struct fixture *f = *state;
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_ingest_opts o = {.area = "AREA1", .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_ingest_result res;
    struct rv_audit_report rep;
    struct rv_audit_record rec;
    struct rv_gate *g = NULL;
    uint64_t n;

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    n = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_policy_ingest(g, rv_test_data_file("ingest/full-small.csv"), &o, &res), 0);
    assert_false(res.rejected);
    assert_true(res.st.stored > 0);
    assert_int_equal(rv_audit_size(rv_policy_audit(g)), n + 2);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), n + 1, &rec), 0);
    assert_string_equal(rec.e.action, "ingest");
    assert_non_null(strstr(rec.e.outcome, "ok rows="));
    rv_audit_record_free(&rec);
    assert_int_equal(rv_audit_verify(rv_policy_audit(g), NULL, NULL, &rep), 0);
    assert_int_equal(rv_policy_close(g), 0);
}

/* When the log cannot be written, the gate refuses before acting and nothing is stored. */
static void test_fail_closed(void **state)
{
    struct fixture *f = *state;
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_ingest_opts o = {.area = "AREA2", .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_ingest_result res;
    struct rv_gate *g = NULL;
    struct rlimit old, tiny = {0, 0};
    int files = 0;

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    /* No file may grow any more: the audit append fails with EFBIG. */
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    tiny.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    assert_int_equal(rv_policy_ingest(g, rv_test_data_file("ingest/full-small.csv"), &o, &res),
                     RV_EAUDIT);
    /* Sticky: later actions are refused too. */
    assert_int_equal(rv_policy_stats(g, count_stats, &files), RV_EAUDIT);
    assert_int_equal(files, 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    (void)rv_policy_close(g);

    /* Reopened, the vault holds no trace of area AREA2. */
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    assert_int_equal(rv_policy_stats(g, count_stats, &files), 0);
    assert_int_equal(rv_policy_close(g), 0);
}

static int count_area2(void *ctx, const struct rv_file_stats *st)
{
    if (strcmp(st->area, "AREA2") == 0)
        (*(int *)ctx)++;
    return 0;
}

static void test_fail_closed_stored_nothing(void **state)
{
    struct fixture *f = *state;
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_gate *g = NULL;
    int n = 0;

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    assert_int_equal(rv_policy_stats(g, count_area2, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(rv_policy_close(g), 0);
}

/* A wrong key opens nothing and writes nothing to the log. */
static void test_wrong_key(void **state)
{
    struct fixture *f = *state;
    struct rv_actor registrar = {"rita", "registrar", "local"};
    uint8_t *bad = sodium_malloc(32);
    struct rv_vault_secret s = {0};
    struct rv_gate *g = NULL;
    uint64_t before = log_size(f);

    memcpy(bad, f->key, 32);
    bad[0] ^= 1;
    s.keyfile = bad;
    assert_int_equal(rv_policy_open(f->dir, &s, &registrar, &g), RV_EKEY);
    assert_null(g);
    assert_int_equal(log_size(f), before);
    sodium_free(bad);
}

static void make_query(const char *name, const char *pc, struct rv_check_query *q)
{
    struct rv_diag d;
    assert_int_equal(rv_check_query_init(name, NULL, pc, rv_date_from_ymd(2026, 1, 15), q, &d), 0);
}

/* A check discloses an elector: the entry names it by subject id, and only then does the
 * answer come back; an auditor's subject search finds that entry. */
static void test_check_recorded_and_found_by_subject(void **state)
{
    struct fixture *f = *state;
    struct rv_actor checker = {"carol", "checker", "10.0.0.7"};
    struct rv_actor auditor = {"ann", "auditor", "local"};
    struct rv_check_query q;
    const struct rv_check_query *qs[1] = {&q};
    struct rv_check_answer a;
    struct rv_audit_record rec;
    struct rv_gate *g = NULL;
    struct rv_diag d;
    uint8_t id[32];
    uint64_t *hits = NULL, at;
    size_t nhits = 0;

    make_query("John Smith", "LS1 4AB", &q);
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &checker, &g), 0);
    at = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_policy_check(g, "single", qs, 1, &a), 0);
    assert_int_equal(a.verdict, RV_VERDICT_PERMISSIBLE);
    assert_true(a.nmatches >= 1);
    assert_int_equal(rv_policy_subject_id(g, &a.matches[0].cand.elector, id), 0);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), at, &rec), 0);
    assert_string_equal(rec.e.action, "check");
    assert_string_equal(rec.e.client, "10.0.0.7");
    assert_int_equal(rec.e.nsubjects, a.nmatches);
    assert_memory_equal(rec.e.subjects[0], id, 32);
    /* No name or postcode in what was recorded. */
    assert_null(memmem(rec.raw, rec.raw_len, "Smith", 5));
    assert_null(memmem(rec.raw, rec.raw_len, "LS1", 3));
    rv_audit_record_free(&rec);
    rv_check_answer_free(&a);
    assert_int_equal(rv_policy_close(g), 0);

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &auditor, &g), 0);
    assert_int_equal(rv_policy_subject(g, "John Smith", "ls14ab", &hits, &nhits, &d), 0);
    assert_int_equal(nhits, 1);
    assert_int_equal(hits[0], at);
    free(hits);
    /* Someone never looked up has no accesses. */
    assert_int_equal(rv_policy_subject(g, "Mary Jones", "LS1 4AB", &hits, &nhits, &d), 0);
    assert_int_equal(nhits, 0);
    free(hits);
    assert_int_equal(rv_policy_close(g), 0);
}

/* Only a checker may check, and a registrar's attempt is recorded as refused. */
static void test_check_wrong_role(void **state)
{
    struct fixture *f = *state;
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_check_query q;
    const struct rv_check_query *qs[1] = {&q};
    struct rv_check_answer a;
    struct rv_gate *g = NULL;
    struct rv_audit_record rec;
    uint64_t at;

    make_query("John Smith", "LS1 4AB", &q);
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &registrar, &g), 0);
    at = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_policy_check(g, "single", qs, 1, &a), RV_EDENIED);
    assert_int_equal(a.nmatches, 0);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), at, &rec), 0);
    assert_string_equal(rec.e.outcome, "denied: role");
    assert_int_equal(rec.e.nsubjects, 0);
    rv_audit_record_free(&rec);
    assert_int_equal(rv_policy_close(g), 0);
}

/* No durable entry, no answer. */
static void test_check_fail_closed(void **state)
{
    struct fixture *f = *state;
    struct rv_actor checker = {"carol", "checker", "local"};
    struct rv_check_query q;
    const struct rv_check_query *qs[1] = {&q};
    struct rv_check_answer a;
    struct rv_gate *g = NULL;
    struct rlimit old, tiny = {0, 0};

    make_query("John Smith", "LS1 4AB", &q);
    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &checker, &g), 0);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    tiny.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    assert_int_equal(rv_policy_check(g, "single", qs, 1, &a), RV_EAUDIT);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(a.nmatches, 0);
    assert_null(a.matches);
    (void)rv_policy_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_matrix),
        cmocka_unit_test(test_wrong_role_refused_and_recorded),
        cmocka_unit_test(test_ingest_recorded),
        cmocka_unit_test(test_fail_closed),
        cmocka_unit_test(test_fail_closed_stored_nothing),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_check_recorded_and_found_by_subject),
        cmocka_unit_test(test_check_wrong_role),
        cmocka_unit_test(test_check_fail_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
