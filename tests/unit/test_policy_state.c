/*
 * test_policy_state.c - the access gate's own store (<vault>/gate): principals live there and
 * not in the vault's store; a vault whose gate records are still in the vault's store (made
 * before the gate had a store) has them moved on open; and after a move whose second half
 * (deleting the vault's copies) never happened, the copies left in the vault's store are
 * neither read nor kept, even when they are older than the gate's records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "testvault.h"

#include "policy/inner.h"
#include "store/store.h"
#include "vault/vault.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const struct rv_actor ADMIN = {"tester", "admin", "local"};
static const uint8_t TAGS[] = {0x80, 0x82, 0x83};

struct kv {
    uint8_t key[128], val[2048];
    size_t klen, vlen;
};

struct kvs {
    struct kv *a;
    size_t n, cap;
};

static int collect(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    struct kvs *s = ctx;

    assert_true(klen <= sizeof(s->a[0].key) && vlen <= sizeof(s->a[0].val));
    assert_true(s->n < s->cap);
    memcpy(s->a[s->n].key, key, klen);
    memcpy(s->a[s->n].val, val, vlen);
    s->a[s->n].klen = klen;
    s->a[s->n].vlen = vlen;
    s->n++;
    return 0;
}

/* The gate's records (0x80, 0x82, 0x83) of a store. */
static void records_of(struct rv_store *st, struct kvs *out)
{
    struct rv_txn *t = NULL;

    assert_int_equal(rv_store_begin(st, false, &t), 0);
    for (size_t i = 0; i < sizeof(TAGS); i++)
        assert_int_equal(rv_store_scan(t, &TAGS[i], 1, collect, out), 0);
    rv_store_abort(t);
}

static void put_all(struct rv_store *st, const struct kvs *in, bool del)
{
    struct rv_txn *t = NULL;

    assert_int_equal(rv_store_begin(st, true, &t), 0);
    for (size_t i = 0; i < in->n; i++)
        if (del)
            assert_int_equal(rv_store_del(t, in->a[i].key, in->a[i].klen), 0);
        else
            assert_int_equal(
                rv_store_put(t, in->a[i].key, in->a[i].klen, in->a[i].val, in->a[i].vlen), 0);
    assert_int_equal(rv_store_commit(t), 0);
}

static struct rv_store *open_gate_store(const struct rv_test_vault *tv)
{
    const struct rv_store_opts opts = {.small = true};
    struct rv_store *s = NULL;
    char dir[1024];

    snprintf(dir, sizeof(dir), "%s/gate", tv->dir);
    assert_int_equal(rv_store_open_opts(dir, &opts, &s), 0);
    return s;
}

static size_t vault_records(const struct rv_test_vault *tv)
{
    struct rv_vault *v = NULL;
    struct kvs s = {calloc(64, sizeof(struct kv)), 0, 64};
    size_t n;

    assert_int_equal(rv_vault_open(tv->dir, &tv->secret, &v), 0);
    records_of(rv_vault_store(v), &s);
    rv_vault_close(v);
    n = s.n;
    free(s.a);
    return n;
}

static void add_user(struct rv_gate *g, const char *name)
{
    struct rv_principal p = {0};
    struct rv_credentials cred;

    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.role, sizeof(p.role), "checker");
    p.kind = RV_PRINCIPAL_HUMAN;
    assert_int_equal(rv_policy_user_add(g, &p, &cred), 0);
    sodium_memzero(&cred, sizeof(cred));
}

/* A new vault: the gate's folder is 0700, its records are there, none in the vault's store. */
static void test_new_vault(void **state)
{
    struct rv_test_vault tv;
    struct rv_gate *g = NULL;
    struct rv_principal p;
    struct stat st;
    char dir[1024];

    (void)state;
    assert_int_equal(rv_test_vault_create(&tv, "rv-state", 1000), 0);
    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    add_user(g, "carol");
    assert_int_equal(rv_policy_close(g), 0);
    snprintf(dir, sizeof(dir), "%s/gate", tv.dir);
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(vault_records(&tv), 0);
    {
        struct rv_store *s = open_gate_store(&tv);
        struct kvs k = {calloc(64, sizeof(struct kv)), 0, 64};
        records_of(s, &k);
        assert_true(k.n >= 1);
        free(k.a);
        rv_store_close(s);
    }
    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    assert_int_equal(rv_policy_user_get(g, "carol", &p), 0);
    assert_int_equal(rv_policy_close(g), 0);
    rv_test_vault_remove(&tv);
}

/* The old layout (gate records in the vault's store, no gate folder) is moved on open. */
static void test_move_old_layout(void **state)
{
    struct rv_test_vault tv;
    struct rv_gate *g = NULL;
    struct rv_vault *v = NULL;
    struct rv_store *s;
    struct rv_principal p;
    struct kvs k = {calloc(64, sizeof(struct kv)), 0, 64};
    char cmd[1200];

    (void)state;
    assert_int_equal(rv_test_vault_create(&tv, "rv-state", 1000), 0);
    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    add_user(g, "dave");
    add_user(g, "erin");
    assert_int_equal(rv_policy_user_set_budget(g, "erin", 7), 0);
    assert_int_equal(rv_policy_close(g), 0);
    s = open_gate_store(&tv);
    records_of(s, &k);
    rv_store_close(s);
    assert_true(k.n >= 2);
    assert_int_equal(rv_vault_open(tv.dir, &tv.secret, &v), 0);
    put_all(rv_vault_store(v), &k, false);
    rv_vault_close(v);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/gate'", tv.dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(vault_records(&tv), k.n);

    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    assert_int_equal(rv_policy_user_get(g, "dave", &p), 0);
    assert_int_equal(rv_policy_user_get(g, "erin", &p), 0);
    assert_int_equal(p.budget, 7);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(vault_records(&tv), 0);
    free(k.a);
    rv_test_vault_remove(&tv);
}

/* A move stopped between its two halves: the gate's store has the records and the marker,
 * the vault's store still has copies, here older ones (erin before an admin disabled her,
 * and a principal removed since). The gate reads its own; the copies are deleted. */
static void test_stale_copies_ignored(void **state)
{
    struct rv_test_vault tv;
    struct rv_gate *g = NULL;
    struct rv_vault *v = NULL;
    struct rv_store *s;
    struct rv_principal p;
    struct kvs before = {calloc(64, sizeof(struct kv)), 0, 64};
    struct kvs ghost = {calloc(64, sizeof(struct kv)), 0, 64};

    (void)state;
    assert_int_equal(rv_test_vault_create(&tv, "rv-state", 1000), 0);
    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    add_user(g, "erin");
    add_user(g, "ghost");
    assert_int_equal(rv_policy_close(g), 0);
    s = open_gate_store(&tv);
    records_of(s, &before);
    /* ghost leaves the gate's store (as if removed), erin is disabled after the copy. */
    for (size_t i = 0; i < before.n; i++)
        if (before.a[i].klen > 5 && memcmp(before.a[i].key + before.a[i].klen - 5, "ghost", 5) == 0)
            ghost.a[ghost.n++] = before.a[i];
    assert_int_equal(ghost.n, 1);
    put_all(s, &ghost, true);
    rv_store_close(s);
    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    assert_int_equal(rv_policy_user_disable(g, "erin"), 0);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_vault_open(tv.dir, &tv.secret, &v), 0);
    put_all(rv_vault_store(v), &before, false);
    rv_vault_close(v);
    assert_int_equal(vault_records(&tv), before.n);

    assert_int_equal(rv_policy_open(tv.dir, &tv.secret, &ADMIN, &g), 0);
    assert_int_equal(rv_policy_user_get(g, "erin", &p), 0);
    assert_true(p.disabled);
    assert_int_equal(rv_policy_user_get(g, "ghost", &p), RV_ENOTFOUND);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(vault_records(&tv), 0);
    free(before.a);
    free(ghost.a);
    rv_test_vault_remove(&tv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_vault),
        cmocka_unit_test(test_move_old_layout),
        cmocka_unit_test(test_stale_copies_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
