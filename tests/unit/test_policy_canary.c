/*
 * test_policy_canary.c - canary electors in a small synthetic vault: a check for a canary's
 * own details finds it, answered like any other entry, and raises a high alert naming the
 * principal and client; a check of a real elector raises nothing; the vault's files hold no
 * canary name in the clear; and the set of canaries says nothing without the vault's key.
 *
 * The test learns which entries are canaries the only way anyone can: holding the vault's
 * key, it lists the record ids valid before and after `canary add` (the new ones are the
 * canaries) and decrypts them. Nothing is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testalert.h"
#include "testutil.h"
#include "testvault.h"

#include "policy/policy.h"
#include "store/store.h"
#include "synth/synth.h"

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCANARY 6

struct fixture {
    struct rv_test_vault tv;
    char area[16];
    uint64_t *before; /* record ids valid before the canaries */
    size_t nbefore;
    struct rv_version *canary; /* sodium memory */
    size_t ncanary;
    struct rv_version *real; /* one real elector */
};

struct idlist {
    uint64_t *ids;
    size_t n, cap;
};

static int collect_id(void *ctx, uint64_t id, rv_date from, rv_date to)
{
    struct idlist *l = ctx;
    (void)from;
    (void)to;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 1024;
        l->ids = realloc(l->ids, l->cap * sizeof(*l->ids));
    }
    l->ids[l->n++] = id;
    return 0;
}

static void list_ids(struct fixture *f, struct idlist *l)
{
    struct rv_vault *v = NULL;
    memset(l, 0, sizeof(*l));
    assert_int_equal(rv_vault_open(f->tv.dir, &f->tv.secret, &v), 0);
    assert_int_equal(rv_vault_scan_valid(v, rv_date_today(), collect_id, l), 0);
    rv_vault_close(v);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct rv_actor registrar = {"rita", "registrar", "local"};
    struct rv_synth_opts so = {
        .electors = 400, .areas = 1, .seed = 11, .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_synth_stats st;
    struct rv_ingest_opts io = {0};
    struct rv_ingest_result res;
    struct rv_diag d;
    struct rv_gate *g = NULL;
    struct idlist l;
    char sdir[600], file[700];

    if (f == NULL || sodium_init() < 0 || rv_test_vault_create(&f->tv, "rv-canary", 1000) != 0)
        return -1;
    snprintf(sdir, sizeof(sdir), "%s/synth", f->tv.tmp);
    mkdir(sdir, 0700);
    if (rv_synth_run(&so, sdir, &st, &d) != 0)
        return -1;
    rv_synth_area_code(0, f->area);
    snprintf(file, sizeof(file), "%s/%s/full-2025-12-01.csv", sdir, f->area);
    if (rv_policy_open(f->tv.dir, &f->tv.secret, &registrar, &g) != 0)
        return -1;
    io.area = f->area;
    io.edition = so.edition;
    if (rv_policy_ingest(g, file, &io, &res) != 0 || res.rejected)
        return -1;
    if (rv_policy_close(g) != 0)
        return -1;
    list_ids(f, &l);
    f->before = l.ids;
    f->nbefore = l.n;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    rv_test_vault_remove(&f->tv);
    free(f->before);
    if (f->canary != NULL) {
        sodium_memzero(f->canary, NCANARY * sizeof(*f->canary));
        sodium_free(f->canary);
    }
    if (f->real != NULL) {
        sodium_memzero(f->real, sizeof(*f->real));
        sodium_free(f->real);
    }
    free(f);
    return 0;
}

static bool was_before(const struct fixture *f, uint64_t id)
{
    for (size_t i = 0; i < f->nbefore; i++)
        if (f->before[i] == id)
            return true;
    return false;
}

/* Adds the canaries as an admin and finds them (ids new since setup), decrypted. */
static void add_and_find(struct fixture *f)
{
    struct rv_actor admin = {"alice", "admin", "local"};
    struct rv_gate *g = NULL;
    struct rv_vault *v = NULL;
    struct idlist l;
    unsigned added = 0;

    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &admin, &g), 0);
    assert_int_equal(rv_policy_canary_add(g, NCANARY, NULL, &added), 0);
    assert_int_equal(added, NCANARY);
    assert_int_equal(rv_policy_close(g), 0);

    list_ids(f, &l);
    assert_int_equal(l.n, f->nbefore + NCANARY);
    f->canary = sodium_allocarray(NCANARY, sizeof(*f->canary));
    f->real = sodium_malloc(sizeof(*f->real));
    assert_int_equal(rv_vault_open(f->tv.dir, &f->tv.secret, &v), 0);
    for (size_t i = 0; i < l.n; i++)
        if (!was_before(f, l.ids[i])) {
            assert_true(f->ncanary < NCANARY);
            assert_int_equal(rv_vault_fetch(v, l.ids[i], &f->canary[f->ncanary++]), 0);
        }
    assert_int_equal(f->ncanary, NCANARY);
    /* A real elector with a numbered street address, like the canaries. */
    for (size_t i = 0; i < f->nbefore; i++) {
        assert_int_equal(rv_vault_fetch(v, f->before[i], f->real), 0);
        if (f->real->e.address[0][0] >= '1' && f->real->e.address[0][0] <= '9' &&
            f->real->e.postcode.canon[0] != '\0')
            break;
    }
    rv_vault_close(v);
    free(l.ids);
}

/* Checks an elector's own name, first address line and postcode as a checker; returns the
 * answer's JSON (decref) and fills *verdict. */
static json_t *check_one(struct fixture *f, const struct rv_elector *e,
                         enum rv_check_verdict *verdict, char *number, size_t numsz)
{
    static struct rv_actor checker = {"carol", "checker", "10.9.8.7"};
    struct rv_policy_config c;
    struct rv_check_query *q = malloc(sizeof(*q));
    const struct rv_check_query *qs[1] = {q};
    struct rv_check_answer a;
    struct rv_diag d;
    struct rv_gate *g = NULL;
    char name[300];
    json_t *j = NULL;

    rv_name_format(&e->name, name, sizeof(name));
    assert_int_equal(rv_check_query_init(name, e->address[0], e->postcode.canon,
                                         rv_date_from_ymd(2026, 1, 15), q, &d),
                     0);
    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &checker, &g), 0);
    rv_policy_config_defaults(&c);
    c.alert_syslog = false;
    assert_int_equal(rv_policy_configure(g, &c, &d), 0);
    assert_int_equal(rv_policy_check(g, "single", qs, 1, &a), 0);
    *verdict = a.verdict;
    assert_true(a.nmatches >= 1);
    rv_elector_number_format(&a.matches[0].cand.elector.number, number, numsz);
    assert_int_equal(rv_check_answer_json(q, &a, &j), 0);
    rv_check_answer_free(&a);
    assert_int_equal(rv_policy_close(g), 0);
    sodium_memzero(q, sizeof(*q));
    sodium_memzero(name, sizeof(name));
    free(q);
    return j;
}

/* The keys of an answer's JSON object, and of its first match, in order, as one string. */
static void shape(json_t *j, char *out, size_t outsz)
{
    const char *k;
    json_t *v;
    size_t n = 0;

    out[0] = '\0';
    json_object_foreach(j, k, v)
    {
        n += (size_t)snprintf(out + n, outsz - n, "%s:%d,", k, json_typeof(v));
        if (json_is_array(v) && json_array_size(v) > 0 && json_is_object(json_array_get(v, 0))) {
            const char *k2;
            json_t *v2;
            json_object_foreach(json_array_get(v, 0), k2, v2)
            {
                if (strcmp(k2, "reasons") != 0)
                    n += (size_t)snprintf(out + n, outsz - n, "%s.%s:%d,", k, k2, json_typeof(v2));
            }
        }
    }
}

static void test_canary_check_alerts(void **state)
{
    struct fixture *f = *state;
    enum rv_check_verdict vc, vr;
    char numc[64], numr[64], want[64], shc[4096], shr[4096];
    struct rv_test_alerts s = {0};
    json_t *jc, *jr;

    add_and_find(f);

    /* Nothing before. */
    assert_int_equal(rv_policy_alerts_read(f->tv.dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 0);

    /* A real elector: permissible, no alert. */
    jr = check_one(f, &f->real->e, &vr, numr, sizeof(numr));
    assert_int_equal(vr, RV_VERDICT_PERMISSIBLE);
    assert_int_equal(rv_policy_alerts_read(f->tv.dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 0);

    /* A canary: found, answered in the same shape, with the canary's own number. */
    jc = check_one(f, &f->canary[0].e, &vc, numc, sizeof(numc));
    assert_int_equal(vc, RV_VERDICT_PERMISSIBLE);
    rv_elector_number_format(&f->canary[0].e.number, want, sizeof(want));
    assert_string_equal(numc, want);
    shape(jc, shc, sizeof(shc));
    shape(jr, shr, sizeof(shr));
    assert_string_equal(shc, shr);
    assert_string_equal(json_string_value(json_object_get(jc, "verdict")),
                        json_string_value(json_object_get(jr, "verdict")));
    json_decref(jc);
    json_decref(jr);

    /* One high alert, naming the principal and client, with no personal data. */
    assert_int_equal(rv_policy_alerts_read(f->tv.dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.kind[0], "canary");
    assert_int_equal(s.sev[0], RV_ALERT_HIGH);
    assert_string_equal(s.principal[0], "carol");
    assert_string_equal(s.client[0], "10.9.8.7");
    assert_null(strstr(s.detail[0], f->canary[0].e.name.surname));
    assert_null(strstr(s.detail[0], f->canary[0].e.postcode.canon));

    /* Every canary is found, and each fires. */
    for (size_t i = 1; i < f->ncanary; i++) {
        jc = check_one(f, &f->canary[i].e, &vc, numc, sizeof(numc));
        json_decref(jc);
        assert_int_equal(vc, RV_VERDICT_PERMISSIBLE);
    }
    memset(&s, 0, sizeof(s));
    assert_int_equal(rv_policy_alerts_read(f->tv.dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, (int)f->ncanary);
}

/* Canaries look like the area's entries: same area, a district prefix in use, an address in
 * a postcode of the area, valid from the edition. */
static void test_canary_looks_real(void **state)
{
    struct fixture *f = *state;
    struct rv_vault *v = NULL;

    add_and_find(f);
    assert_int_equal(rv_vault_open(f->tv.dir, &f->tv.secret, &v), 0);
    for (size_t i = 0; i < f->ncanary; i++) {
        const struct rv_version *c = &f->canary[i];
        bool prefix = false, postcode = false;
        assert_string_equal(c->e.area, f->area);
        assert_int_equal(c->from, rv_date_from_ymd(2025, 12, 1));
        assert_int_equal(c->to, RV_DATE_FOREVER);
        assert_true(c->e.name.surname[0] != '\0' && c->e.name.forenames[0] != '\0');
        assert_true(c->e.address[0][0] >= '1' && c->e.address[0][0] <= '9');
        for (size_t j = 0; j < f->nbefore && !(prefix && postcode); j++) {
            struct rv_version r;
            assert_int_equal(rv_vault_fetch(v, f->before[j], &r), 0);
            prefix |= strcmp(r.e.number.prefix, c->e.number.prefix) == 0;
            postcode |= strcmp(r.e.postcode.canon, c->e.postcode.canon) == 0;
            /* No real elector holds the canary's elector number. */
            assert_false(strcmp(r.e.number.prefix, c->e.number.prefix) == 0 &&
                         r.e.number.number == c->e.number.number &&
                         r.e.number.suffix == c->e.number.suffix);
            sodium_memzero(&r, sizeof(r));
        }
        assert_true(prefix);
        assert_true(postcode);
    }
    rv_vault_close(v);
}

/* No canary's name, address line or postcode in any vault file, even after a check that
 * fired an alert. */
static void test_no_plaintext(void **state)
{
    struct fixture *f = *state;
    enum rv_check_verdict vc;
    char num[64], name[300];
    json_t *j;

    add_and_find(f);
    j = check_one(f, &f->canary[0].e, &vc, num, sizeof(num));
    json_decref(j);
    for (size_t i = 0; i < f->ncanary; i++) {
        const struct rv_elector *e = &f->canary[i].e;
        rv_name_format(&e->name, name, sizeof(name));
        assert_false(rv_test_tree_contains(f->tv.dir, name));
        assert_false(rv_test_tree_contains(f->tv.dir, e->address[0]));
        assert_false(rv_test_tree_contains(f->tv.dir, e->postcode.canon));
        if (strlen(e->name.surname) >= 6)
            assert_false(rv_test_tree_contains(f->tv.dir, e->name.surname));
    }
    sodium_memzero(name, sizeof(name));
}

struct setkeys {
    uint8_t keys[64][32];
    size_t n;
};

static int collect_key(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct setkeys *s = ctx;
    (void)val;
    (void)vlen;
    assert_int_equal(klen, 33);
    if (s->n < 64)
        memcpy(s->keys[s->n++], key + 1, 32);
    return 0;
}

/* The same keyed id as canary.c, with a key of the caller's choosing. */
static void keyed_id(const uint8_t *key, const struct rv_elector *e, uint8_t out[32])
{
    struct rv_name_key nk;
    char num[64];
    uint8_t in[1024];
    size_t pos = 0;

    assert_int_equal(rv_name_key(&e->name, &nk), 0);
    rv_elector_number_format(&e->number, num, sizeof(num));
    const char *parts[] = {"regvault canary v1", e->area,  num,
                           nk.surname,           nk.first, e->postcode.canon};
    for (size_t i = 0; i < 6; i++) {
        memcpy(in + pos, parts[i], strlen(parts[i]) + 1);
        pos += strlen(parts[i]) + 1;
    }
    crypto_generichash(out, 32, in, pos, key, 32);
    sodium_memzero(in, sizeof(in));
}

static bool in_set(const struct setkeys *s, const uint8_t id[32])
{
    for (size_t i = 0; i < s->n; i++)
        if (memcmp(s->keys[i], id, 32) == 0)
            return true;
    return false;
}

/* The set on disk is one opaque keyed hash per canary: no record id, no number; only the
 * vault's canary subkey maps an entry to it, and a guessed key maps nothing. */
static void test_set_needs_key(void **state)
{
    struct fixture *f = *state;
    struct rv_vault *v = NULL;
    struct rv_txn *t = NULL;
    struct setkeys s = {0};
    const uint8_t prefix = 0x81;
    uint8_t *sub = sodium_malloc(32), guess[32], id[32];

    add_and_find(f);
    assert_int_equal(rv_vault_open(f->tv.dir, &f->tv.secret, &v), 0);
    assert_int_equal(rv_store_begin(rv_vault_store(v), false, &t), 0);
    assert_int_equal(rv_store_scan(t, &prefix, 1, collect_key, &s), 0);
    rv_store_abort(t);
    assert_int_equal(s.n, NCANARY);
    assert_int_equal(rv_vault_subkey(v, RV_SUBKEY_CANARY, sub), 0);
    randombytes_buf(guess, sizeof(guess));
    for (size_t i = 0; i < f->ncanary; i++) {
        uint64_t rid = f->canary[i].id;
        keyed_id(sub, &f->canary[i].e, id);
        assert_true(in_set(&s, id));
        keyed_id(guess, &f->canary[i].e, id);
        assert_false(in_set(&s, id));
        for (size_t k = 0; k < s.n; k++) {
            assert_null(memmem(s.keys[k], 32, &rid, sizeof(rid)));
        }
    }
    /* A real elector is not in the set. */
    keyed_id(sub, &f->real->e, id);
    assert_false(in_set(&s, id));
    sodium_free(sub);
    rv_vault_close(v);
}

/* Views check on several threads at once: each canary shown raises its alert, once per
 * check, and real electors raise none. */
struct worker {
    struct rv_gate *view;
    const struct rv_elector *e;
    int rc;
};

static void *check_thread(void *arg)
{
    struct worker *w = arg;
    struct rv_check_query *q = malloc(sizeof(*q));
    const struct rv_check_query *qs[1] = {q};
    struct rv_check_answer a;
    struct rv_diag d;
    char name[300];

    rv_name_format(&w->e->name, name, sizeof(name));
    w->rc = rv_check_query_init(name, w->e->address[0], w->e->postcode.canon,
                                rv_date_from_ymd(2026, 1, 15), q, &d);
    for (int i = 0; i < 3 && w->rc == 0; i++) {
        w->rc = rv_policy_check(w->view, "single", qs, 1, &a);
        if (w->rc == 0)
            rv_check_answer_free(&a);
    }
    sodium_memzero(q, sizeof(*q));
    free(q);
    return NULL;
}

static void test_threads(void **state)
{
    struct fixture *f = *state;
    struct rv_actor root = {"svc", "checker", "local"};
    struct rv_actor who[4] = {{"u0", "checker", "10.0.0.1"},
                              {"u1", "checker", "10.0.0.2"},
                              {"u2", "checker", "10.0.0.3"},
                              {"u3", "checker", "10.0.0.4"}};
    struct rv_policy_config c;
    struct rv_diag d;
    struct rv_gate *g = NULL;
    struct worker w[4];
    pthread_t t[4];
    struct rv_test_alerts s = {0};

    add_and_find(f);
    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &root, &g), 0);
    rv_policy_config_defaults(&c);
    c.alert_syslog = false;
    assert_int_equal(rv_policy_configure(g, &c, &d), 0);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rv_policy_view(g, &who[i], &w[i].view), 0);
        w[i].e = i < 3 ? &f->canary[i].e : &f->real->e;
        assert_int_equal(pthread_create(&t[i], NULL, check_thread, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(rv_policy_close(w[i].view), 0);
    }
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->tv.dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 9); /* 3 canaries x 3 checks */
    for (int i = 0; i < s.n; i++) {
        assert_string_equal(s.kind[i], "canary");
        assert_string_not_equal(s.client[i], "10.0.0.4");
    }
}

/* Only an admin may add canaries; the refusal is recorded and nothing is added. */
static void test_admin_only(void **state)
{
    struct fixture *f = *state;
    struct rv_actor checker = {"carol", "checker", "local"};
    struct rv_gate *g = NULL;
    struct idlist l;
    unsigned added = 7;

    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &checker, &g), 0);
    assert_int_equal(rv_policy_canary_add(g, 3, NULL, &added), RV_EDENIED);
    assert_int_equal(added, 0);
    assert_int_equal(rv_policy_close(g), 0);
    list_ids(f, &l);
    assert_int_equal(l.n, f->nbefore);
    free(l.ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_canary_check_alerts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_canary_looks_real, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_plaintext, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_needs_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
