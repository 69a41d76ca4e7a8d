/*
 * test_policy_principal.c - attacks on the vault's principals (src/policy/principal.c):
 * the wrong role administering them, weak passwords, wrong, replayed and stale TOTP codes
 * (a spent step stays spent when the gate is closed and reopened), lockout and backoff per
 * user and per client address, unknown and disabled names, suspended principals, service
 * principals by certificate fingerprint, records tampered with in the store, and proof
 * that no password, TOTP secret or code ever reaches the audit log.
 *
 * Codes are computed with liboath at the current time (and +-30 s, +-60 s); when oathtool
 * is installed its codes for the same secret must be the same.
 *
 * `test_policy_principal --login DIR KEYFILE USER PASSWORD_FILE CODE` logs in once and
 * exits 0 (logged in), 10 (must change the password), 11 (refused) or 12 (other error):
 * tests/e2e/user_cli.sh uses it to check codes made by oathtool against the vault.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"
#include "testvault.h"

#include "policy/inner.h"
#include "store/store.h"

#include <liboath/oath.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fixture {
    struct rv_test_vault tv;
    struct rv_gate *g;
};

static const struct rv_actor ADMIN = {"tester", "admin", "local"};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL || sodium_init() < 0 || rv_test_vault_create(&f->tv, "rv-principal", 100000) != 0)
        return -1;
    if (rv_policy_open(f->tv.dir, &f->tv.secret, &ADMIN, &f->g) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    (void)rv_policy_close(f->g);
    rv_test_vault_remove(&f->tv);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    assert_int_equal(rv_policy_close(f->g), 0);
    f->g = NULL;
    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &ADMIN, &f->g), 0);
}

/* The TOTP code of the secret in uri at time t. */
static void code_at(const char *uri, time_t t, char out[7])
{
    const char *s = strstr(uri, "secret="), *e;
    char *raw = NULL;
    size_t rawlen = 0;

    assert_non_null(s);
    s += 7;
    e = strchr(s, '&');
    assert_non_null(e);
    assert_int_equal(oath_base32_decode(s, (size_t)(e - s), &raw, &rawlen), OATH_OK);
    assert_int_equal(rawlen, 20);
    assert_int_equal(oath_totp_generate(raw, rawlen, t, 30, 0, 6, out), OATH_OK);
    sodium_memzero(raw, rawlen);
    free(raw);
}

/* Milliseconds since the epoch by the clock the gate judges codes and locks by. A call that
 * began after one reading and returned before another was judged between the two. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_until_ms(int64_t when)
{
    int64_t left;

    while ((left = when - wall_ms()) > 0) {
        struct timespec ts = {(time_t)(left / 1000), (long)(left % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Waits until at least 15 seconds remain in the current 30 s step, so that codes computed
 * now are judged in the same step (for the checks that a code some steps away is refused). */
static void steady_step(void)
{
    while (time(NULL) % 30 >= 15)
        sleep(1);
}

static void add_human(struct fixture *f, const char *name, const char *role,
                      struct rv_credentials *cred)
{
    struct rv_principal p = {0};

    snprintf(p.name, sizeof(p.name), "%s", name);
    snprintf(p.role, sizeof(p.role), "%s", role);
    p.kind = RV_PRINCIPAL_HUMAN;
    assert_int_equal(rv_policy_user_add(f->g, &p, cred), 0);
}

static int login(struct fixture *f, const char *user, const char *pw, const char *code,
                 const char *client, int64_t *retry)
{
    struct rv_principal out;
    int64_t r = 0;
    int rc = rv_policy_login(f->g, user, pw, code, client, &out, &r);

    if (retry != NULL)
        *retry = r;
    if (rc == 0 || rc == RV_ECHANGE)
        assert_string_equal(out.name, user);
    return rc;
}

/* Adds a human and changes its issued password to newpw, so that it can log in fully. */
static void add_ready(struct fixture *f, const char *name, const char *role, const char *newpw,
                      struct rv_credentials *cred)
{
    add_human(f, name, role, cred);
    assert_int_equal(rv_policy_change_password(f->g, name, cred->password, newpw, "local"), 0);
}

/* The last entry of the log that is not an alert, as "action|params|outcome|principal". */
static void last_outcome(struct fixture *f, char *buf, size_t n)
{
    struct rv_audit_log *log = rv_policy_audit(f->g);
    struct rv_audit_record rec;

    for (uint64_t i = rv_audit_size(log); i-- > 0;) {
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        if (strcmp(rec.e.action, "alert") != 0) {
            snprintf(buf, n, "%s|%s|%s|%s", rec.e.action, rec.e.params, rec.e.outcome,
                     rec.e.principal);
            rv_audit_record_free(&rec);
            return;
        }
        rv_audit_record_free(&rec);
    }
    fail();
}

/* How many alerts of kind "lockout" the log holds. */
static unsigned lockout_alerts(struct fixture *f)
{
    struct rv_audit_log *log = rv_policy_audit(f->g);
    struct rv_audit_record rec;
    unsigned n = 0;

    for (uint64_t i = 0; i < rv_audit_size(log); i++) {
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        if (strcmp(rec.e.action, "alert") == 0 && strstr(rec.e.params, "kind=lockout") != NULL)
            n++;
        rv_audit_record_free(&rec);
    }
    return n;
}

struct names {
    char v[16][96];
    size_t n;
};

static int collect(void *ctx, const struct rv_principal *p)
{
    struct names *c = ctx;
    if (c->n < 16)
        snprintf(c->v[c->n++], sizeof(c->v[0]), "%s/%s/%d", p->name, p->role, (int)p->kind);
    return 0;
}

static const char *CERT = "3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa9988776655443322";

/* ------------------------------------------------------------------------------------------
 */

static void test_add_list_get(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    struct rv_principal p = {0}, got;
    struct names n = {0};
    static const char *const bad_names[] = {"", "Alice", "1bob", "a b", "_x", "al/ice", "é", "-x"};

    add_human(f, "carol", "checker", &cred);
    assert_true(strlen(cred.password) >= 20);
    assert_int_equal(strncmp(cred.totp_uri, "otpauth://totp/regvault:carol?secret=", 37), 0);
    assert_int_equal(strcspn(cred.totp_uri + 37, "&"), 32);
    assert_string_equal(cred.totp_uri + 37 + 32,
                        "&issuer=regvault&algorithm=SHA1&digits=6&period=30");
    add_human(f, "alice", "admin", &cred);
    add_human(f, "bob.r", "registrar", &cred);
    add_human(f, "rita-r", "researcher", &cred);
    add_human(f, "audrey_a", "auditor", &cred);
    sodium_memzero(&cred, sizeof(cred));

    /* A taken name, bad names and roles, a human with a fingerprint. */
    snprintf(p.name, sizeof(p.name), "carol");
    snprintf(p.role, sizeof(p.role), "checker");
    assert_int_equal(rv_policy_user_add(f->g, &p, &cred), RV_EEXIST);
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        snprintf(p.name, sizeof(p.name), "%s", bad_names[i]);
        assert_int_equal(rv_policy_user_add(f->g, &p, &cred), RV_EINVAL);
    }
    snprintf(p.name, sizeof(p.name), "dave");
    snprintf(p.role, sizeof(p.role), "exporter");
    assert_int_equal(rv_policy_user_add(f->g, &p, &cred), RV_EINVAL);
    snprintf(p.role, sizeof(p.role), "checker");
    snprintf(p.cert_sha256, sizeof(p.cert_sha256), "%s", CERT);
    assert_int_equal(rv_policy_user_add(f->g, &p, &cred), RV_EINVAL);
    assert_int_equal(rv_policy_user_add(f->g, &p, NULL), RV_EINVAL);

    /* Services: a fingerprint of 64 hex digits (either case), no credentials. */
    p.kind = RV_PRINCIPAL_SERVICE;
    snprintf(p.name, sizeof(p.name), "batchbot");
    snprintf(p.cert_sha256, sizeof(p.cert_sha256), "%.63s", CERT);
    assert_int_equal(rv_policy_user_add(f->g, &p, NULL), RV_EINVAL);
    snprintf(p.cert_sha256, sizeof(p.cert_sha256), "%.63sg", CERT);
    assert_int_equal(rv_policy_user_add(f->g, &p, NULL), RV_EINVAL);
    snprintf(p.cert_sha256, sizeof(p.cert_sha256),
             "3F2A9C0D1E4B5A6978877665544332211000FFEEDDCCBBAA9988776655443322");
    p.budget = 5000;
    assert_int_equal(rv_policy_user_add(f->g, &p, NULL), 0);

    assert_int_equal(rv_policy_user_list(f->g, collect, &n), 0);
    assert_int_equal(n.n, 6);
    assert_string_equal(n.v[0], "alice/admin/0");
    assert_string_equal(n.v[1], "audrey_a/auditor/0");
    assert_string_equal(n.v[2], "batchbot/checker/1");
    assert_string_equal(n.v[3], "bob.r/registrar/0");
    assert_string_equal(n.v[4], "carol/checker/0");
    assert_string_equal(n.v[5], "rita-r/researcher/0");

    assert_int_equal(rv_policy_user_get(f->g, "batchbot", &got), 0);
    assert_string_equal(got.cert_sha256, CERT);
    assert_int_equal(got.budget, 5000);
    assert_false(got.must_change);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_true(got.must_change);
    assert_false(got.disabled);
    assert_true(got.created > 0);
    assert_int_equal(rv_policy_user_get(f->g, "nobody", &got), RV_ENOTFOUND);

    /* The principals outlive the gate. */
    reopen(f);
    n.n = 0;
    assert_int_equal(rv_policy_user_list(f->g, collect, &n), 0);
    assert_int_equal(n.n, 6);
}

static void test_admin_ops(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials c1, c2;
    struct rv_principal got;
    char out[512];

    add_human(f, "carol", "checker", &c1);
    assert_int_equal(rv_policy_user_disable(f->g, "carol"), 0);
    last_outcome(f, out, sizeof(out));
    assert_string_equal(out, "users|op=disable user=carol|ok|tester");
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_true(got.disabled);
    assert_int_equal(rv_policy_user_reinstate(f->g, "carol"), 0);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_false(got.disabled);
    assert_int_equal(rv_policy_user_set_budget(f->g, "carol", 42), 0);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_int_equal(got.budget, 42);

    assert_int_equal(rv_policy_user_reset(f->g, "carol", &c2), 0);
    assert_string_not_equal(c1.password, c2.password);
    assert_string_not_equal(c1.totp_uri, c2.totp_uri);
    assert_true(strlen(c2.password) >= 20);

    assert_int_equal(rv_policy_user_disable(f->g, "nobody"), RV_ENOTFOUND);
    last_outcome(f, out, sizeof(out));
    assert_string_equal(out, "users|op=disable user=nobody|error: not found|tester");
    assert_int_equal(rv_policy_user_reset(f->g, "Bad Name", &c2), RV_EINVAL);
    assert_int_equal(rv_policy_user_set_budget(f->g, "nobody", 1), RV_ENOTFOUND);
    sodium_memzero(&c1, sizeof(c1));
    sodium_memzero(&c2, sizeof(c2));
}

/* Only an admin may administer principals; every refusal is recorded. */
static void no_group_fn(void *ctx, int rc)
{
    (void)ctx;
    (void)rc;
}

/* A change to a principal is on the log before it is made, even on a thread whose single
 * appends join an audit group (a daemon's pool thread in a check that suspends its
 * principal): the "ok" entry is durable when the call returns, though the group's own
 * entries still wait for the group to be committed. */
static void test_change_durable_inside_group(void **state)
{
    struct fixture *f = *state;
    struct rv_audit_log *log = rv_policy_audit(f->g);
    struct rv_audit_group *grp = NULL, *old;
    struct rv_audit_record rec;
    struct rv_credentials c1;
    uint64_t before;
    int rc = -1;

    add_human(f, "dora", "checker", &c1);
    assert_int_equal(rv_audit_group_new(no_group_fn, NULL, &grp), 0);
    before = rv_audit_size(log);
    old = rv_audit_group_enter(grp);
    assert_int_equal(rv_policy_user_disable(f->g, "dora"), 0);
    (void)rv_audit_group_enter(old);
    assert_true(rv_audit_size(log) > before);
    assert_int_equal(rv_audit_get(log, rv_audit_size(log) - 1, &rec), 0);
    assert_string_equal(rec.e.outcome, "ok");
    assert_non_null(strstr(rec.e.params, "op=disable user=dora"));
    rv_audit_record_free(&rec);
    rv_audit_group_commit(grp);
    while (!rv_audit_group_settled(grp))
        rv_audit_group_commit(grp);
    assert_int_equal(rv_audit_group_close(grp, &rc), 0);
    assert_int_equal(rc, 0);
}

static void test_role_enforced(void **state)
{
    struct fixture *f = *state;
    static const char *const roles[] = {"checker", "registrar", "researcher", "auditor", "root"};
    struct rv_credentials cred;
    struct rv_principal p = {.name = "eve", .role = "admin", .kind = RV_PRINCIPAL_HUMAN}, got;
    struct names n = {0};
    char out[512];

    add_human(f, "carol", "checker", &cred);
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        struct rv_actor who = {"mallory", roles[i], "198.51.100.7"};
        struct rv_gate *v = NULL;
        assert_int_equal(rv_policy_view(f->g, &who, &v), 0);
        assert_int_equal(rv_policy_user_add(v, &p, &cred), RV_EDENIED);
        last_outcome(f, out, sizeof(out));
        assert_string_equal(out, "users|op=add user=eve role=admin kind=human budget=0|denied: "
                                 "role|mallory");
        assert_int_equal(rv_policy_user_list(v, collect, &n), RV_EDENIED);
        assert_int_equal(rv_policy_user_disable(v, "carol"), RV_EDENIED);
        assert_int_equal(rv_policy_user_reset(v, "carol", &cred), RV_EDENIED);
        assert_int_equal(rv_policy_user_reinstate(v, "carol"), RV_EDENIED);
        assert_int_equal(rv_policy_user_set_budget(v, "carol", 1), RV_EDENIED);
        assert_int_equal(rv_policy_close(v), 0);
    }
    assert_int_equal(n.n, 0);
    assert_int_equal(rv_policy_user_get(f->g, "eve", &got), RV_ENOTFOUND);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_false(got.disabled);
    sodium_memzero(&cred, sizeof(cred));
}

static void test_password_strength(void **state)
{
    struct fixture *f = *state;
    static const char *const weak[] = {
        "short1!",        "elevenchars",      "Password1234",
        "QWERTY123456",   "zzzzzzzzzzzzzzzz", "my-carol-password",
        "xxCAROLxx12345", "administrator",    "",
    };
    struct rv_credentials cred;
    struct rv_principal got;

    add_human(f, "carol", "checker", &cred);
    for (size_t i = 0; i < sizeof(weak) / sizeof(weak[0]); i++)
        assert_int_equal(rv_policy_change_password(f->g, "carol", cred.password, weak[i], "local"),
                         RV_EWEAK);
    /* The issued password itself may not be kept. */
    assert_int_equal(
        rv_policy_change_password(f->g, "carol", cred.password, cred.password, "local"), RV_EWEAK);
    /* A wrong old password is a failed login, whatever the new one. */
    assert_int_equal(rv_policy_change_password(f->g, "carol", "not-the-password-at-all",
                                               "correct horse battery staple", "local"),
                     RV_EAUTH);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_true(got.must_change);
    /* Twelve characters, counted as characters (not bytes). */
    assert_int_equal(
        rv_policy_change_password(f->g, "carol", cred.password, "ééééééééééé1", "local"), 0);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_false(got.must_change);
    assert_int_equal(rv_policy_change_password(f->g, "carol", "ééééééééééé1",
                                               "correct horse battery staple", "local"),
                     0);
    assert_int_equal(
        rv_policy_change_password(f->g, "carol", cred.password, "another good passphrase", "local"),
        RV_EAUTH);
    sodium_memzero(&cred, sizeof(cred));
}

/* Codes two steps away refused and one step away accepted, for a fresh user (dave, then
 * daveN): false, with nothing checked, when the 30 s step turned between computing the codes
 * and the gate judging the last of them (a loaded machine), since they were computed for the
 * step the attempt began in. */
static bool far_codes_attempt(struct fixture *f, int attempt)
{
    struct rv_credentials cred;
    char name[32], far[7], prev[7], code[7], out_s[512], want[256];
    const char *pw = "a long and decent passphrase";
    int64_t t0, t1;
    time_t now;
    int rc[5];

    snprintf(name, sizeof(name), attempt == 0 ? "dave" : "dave%d", attempt);
    add_ready(f, name, "checker", pw, &cred);
    steady_step();
    t0 = wall_ms();
    now = (time_t)(t0 / 1000);
    code_at(cred.totp_uri, now + 60, far);
    rc[0] = login(f, name, pw, far, "192.0.2.2", NULL);
    last_outcome(f, out_s, sizeof(out_s));
    code_at(cred.totp_uri, now - 60, far);
    rc[1] = login(f, name, pw, far, "192.0.2.2", NULL);
    rc[2] = login(f, name, pw, "12345", "192.0.2.2", NULL);
    rc[3] = login(f, name, pw, "12345a", "192.0.2.2", NULL);
    code_at(cred.totp_uri, now - 30, prev);
    rc[4] = login(f, name, pw, prev, "192.0.2.2", NULL);
    t1 = wall_ms();
    if (t0 / 30000 != t1 / 30000) {
        sodium_memzero(&cred, sizeof(cred));
        return false;
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(rc[i], RV_EAUTH);
    snprintf(want, sizeof(want), "login|op=login user=%s|denied: bad totp|%s", name, name);
    assert_string_equal(out_s, want);
    assert_int_equal(rc[4], 0);
    code_at(cred.totp_uri, now, code);
    assert_int_equal(login(f, name, pw, code, "192.0.2.2", NULL), 0);
    assert_int_equal(login(f, name, pw, prev, "192.0.2.2", NULL), RV_EAUTH);
    sodium_memzero(&cred, sizeof(cred));
    return true;
}

/* Issued password -> RV_ECHANGE after password and TOTP; change; log in; replays refused,
 * also after the gate is closed and reopened; codes two steps off refused. */
static void test_login_flow(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    struct rv_principal out;
    char code[7], next[7], prev[7], out_s[512];
    const char *pw = "a long and decent passphrase";
    int64_t retry;
    time_t now;

    add_human(f, "carol", "checker", &cred);
    steady_step();
    now = (time_t)(wall_ms() / 1000);
    code_at(cred.totp_uri, now, code);
    code_at(cred.totp_uri, now + 30, next);
    code_at(cred.totp_uri, now - 30, prev);
    assert_int_equal(rv_policy_login(f->g, "carol", cred.password, code, "192.0.2.1", &out, &retry),
                     RV_ECHANGE);
    assert_true(out.must_change);
    assert_string_equal(out.role, "checker");
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|ok: password must be changed|carol");
    /* The same code again: spent. */
    assert_int_equal(login(f, "carol", cred.password, code, "192.0.2.1", NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: replayed totp|carol");
    /* An older step than the last used: refused; as a replay while it is within a step of
     * the gate's clock (unless a loaded machine has taken the clock into the next step). */
    assert_int_equal(login(f, "carol", cred.password, prev, "192.0.2.1", NULL), RV_EAUTH);
    if (wall_ms() / 30000 == now / 30) {
        last_outcome(f, out_s, sizeof(out_s));
        assert_string_equal(out_s, "login|op=login user=carol|denied: replayed totp|carol");
    }

    assert_int_equal(rv_policy_change_password(f->g, "carol", cred.password, pw, "192.0.2.1"), 0);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=password user=carol|ok: password changed|carol");
    assert_int_equal(login(f, "carol", cred.password, next, "192.0.2.1", NULL), RV_EAUTH);
    assert_int_equal(login(f, "carol", pw, next, "192.0.2.1", NULL), 0);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|ok|carol");

    /* Spent for good: the gate closed and reopened still refuses it. */
    reopen(f);
    assert_int_equal(login(f, "carol", pw, next, "192.0.2.1", NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: replayed totp|carol");

    sodium_memzero(&cred, sizeof(cred));

    /* A fresh user: codes two steps away are refused, one step away accepted. */
    for (int attempt = 0; !far_codes_attempt(f, attempt);)
        if (++attempt == 4)
            fail_msg("the 30 s step turned during four attempts in a row");
}

/* Wrong password, wrong code, unknown and disabled names: the same answer. */
static void test_failures_alike(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    char code[7], bad[8], out_s[512];
    const char *pw = "a long and decent passphrase";

    add_ready(f, "carol", "checker", pw, &cred);
    code_at(cred.totp_uri, time(NULL), code);
    snprintf(bad, sizeof(bad), "%06d", (atoi(code) + 1) % 1000000);
    bad[6] = '\0';
    assert_int_equal(login(f, "carol", "a wrong passphrase here", code, "192.0.2.3", NULL),
                     RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: bad password|carol");
    assert_int_equal(login(f, "carol", pw, bad, "192.0.2.3", NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: bad totp|carol");
    /* A wrong code does not spend the step: the right one still works. */
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.3", NULL), 0);

    assert_int_equal(login(f, "nosuchuser", pw, code, "192.0.2.3", NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_non_null(strstr(out_s, "login|op=login user=unknown:"));
    assert_non_null(strstr(out_s, "|denied: unknown user|-"));
    assert_null(strstr(out_s, "nosuchuser"));
    assert_int_equal(login(f, "Not A Name!", pw, code, "192.0.2.3", NULL), RV_EAUTH);

    assert_int_equal(rv_policy_user_disable(f->g, "carol"), 0);
    code_at(cred.totp_uri, time(NULL) + 30, code);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.3", NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: disabled|carol");
    assert_int_equal(rv_policy_user_reinstate(f->g, "carol"), 0);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.3", NULL), 0);
    sodium_memzero(&cred, sizeof(cred));
}

/* A lock and the failed login that earned it: the call began at `begun` and returned at
 * `ended` (wall_ms), and the lock runs for secs seconds from a moment between the two. */
struct lock_seen {
    int64_t begun, ended;
    unsigned secs;
};

/* One failed login of user (a wrong password; NULL: a name never used before, so that only
 * the client's count grows) from client, which must answer RV_EAUTH with an outcome ending
 * in "; WHAT SECSs" (what: "locked" or "client locked"): the lock earned. */
static void earn_lock(struct fixture *f, const char *user, const char *client, const char *what,
                      unsigned secs, struct lock_seen *lk)
{
    static unsigned sprays;
    char out_s[512], want[64], spray[32];

    snprintf(spray, sizeof(spray), "spray%u", sprays++);
    lk->begun = wall_ms();
    assert_int_equal(
        login(f, user != NULL ? user : spray, "wrong wrong wrong", "000000", client, NULL),
        RV_EAUTH);
    lk->ended = wall_ms();
    lk->secs = secs;
    last_outcome(f, out_s, sizeof(out_s));
    snprintf(want, sizeof(want), "; %s %us|", what, secs);
    if (strstr(out_s, want) == NULL)
        fail_msg("a failure after the lock: outcome without \"%s\"", want);
}

/* Waits until lk has certainly ended. */
static void outlast(const struct lock_seen *lk)
{
    sleep_until_ms(lk->ended + (int64_t)lk->secs * 1000 + 100);
}

/* Leaves user locked with at least half of its lock to run, so that a check made at once
 * falls inside it. A lock runs from the start of the call that earned it, and on a loaded
 * machine that call's Argon2id hash alone can outlast a lock of a second or two: then the
 * lock is waited out and one more failure (from client) earns the next, twice as long. */
static void lock_with_room(struct fixture *f, const char *user, const char *client,
                           const char *what, struct lock_seen *lk)
{
    while (wall_ms() - lk->begun > (int64_t)lk->secs * 500) {
        assert_true(lk->secs < 128);
        outlast(lk);
        earn_lock(f, user, client, what, lk->secs * 2, lk);
    }
}

/* The right credentials of user, from client, while lk holds: refused as locked ("refused:
 * WHAT Ns", what: "locked" or "client locked"), with a retry of 1..lk->secs seconds. Returns
 * false, having logged in or been refused otherwise, only when the call returned after lk
 * could have ended (the machine stalled it); any other answer fails the test. */
static bool refused_while_locked(struct fixture *f, const char *user, const char *pw,
                                 const char *code, const char *client, const char *what,
                                 const struct lock_seen *lk)
{
    char out_s[512], want[256];
    int64_t retry = 0, done;
    int rc = login(f, user, pw, code, client, &retry);

    done = wall_ms();
    if (rc != RV_ELOCKED) {
        if (done - lk->begun < (int64_t)lk->secs * 1000)
            fail_msg("the right credentials got %d, %lld ms into a %us lock", rc,
                     (long long)(done - lk->begun), lk->secs);
        return false;
    }
    if (retry < 1 || retry > (int64_t)lk->secs)
        fail_msg("retry %lld s during a %us lock", (long long)retry, lk->secs);
    last_outcome(f, out_s, sizeof(out_s));
    snprintf(want, sizeof(want), "login|op=login user=%s|refused: %s %llds|%s", user, what,
             (long long)retry, user);
    assert_string_equal(out_s, want);
    return true;
}

/* One attempt at test_lockout_user with a fresh user and fresh addresses (10.ATTEMPT.x.y); false
 * when a stalled call made a check inconclusive. */
static bool lockout_user_try(struct fixture *f, int attempt)
{
    struct rv_credentials cred;
    struct lock_seen lk;
    char name[32], code[7], out_s[512], want[256], client[32], esc[32];
    const char *pw = "a long and decent passphrase";
    unsigned alerts = lockout_alerts(f);
    bool ok = false;

    snprintf(name, sizeof(name), attempt == 0 ? "carol" : "carol%d", attempt);
    snprintf(esc, sizeof(esc), "10.%d.4.1", attempt);
    add_ready(f, name, "checker", pw, &cred);
    for (int i = 1; i <= 4; i++) {
        snprintf(client, sizeof(client), "10.%d.0.%d", attempt, i); /* not the client's lock */
        assert_int_equal(login(f, name, "wrong wrong wrong", "000000", client, NULL), RV_EAUTH);
    }
    snprintf(client, sizeof(client), "10.%d.0.5", attempt);
    earn_lock(f, name, client, "locked", 1, &lk);
    last_outcome(f, out_s, sizeof(out_s));
    snprintf(want, sizeof(want), "login|op=login user=%s|denied: bad password; locked 1s|%s", name,
             name);
    assert_string_equal(out_s, want);
    assert_int_equal(lockout_alerts(f), alerts + 1);
    code_at(cred.totp_uri, time(NULL), code);

    /* The lock holds against the right credentials... */
    lock_with_room(f, name, esc, "locked", &lk);
    snprintf(client, sizeof(client), "10.%d.1.1", attempt);
    if (!refused_while_locked(f, name, pw, code, client, "locked", &lk))
        goto out;
    /* ...and, once it has ended, one more failure locks twice as long, also across a
     * reopened gate. */
    outlast(&lk);
    snprintf(client, sizeof(client), "10.%d.1.2", attempt);
    earn_lock(f, name, client, "locked", lk.secs * 2, &lk);
    reopen(f);
    lock_with_room(f, name, esc, "locked", &lk);
    snprintf(client, sizeof(client), "10.%d.1.3", attempt);
    if (!refused_while_locked(f, name, pw, code, client, "locked", &lk))
        goto out;
    outlast(&lk);
    snprintf(client, sizeof(client), "10.%d.1.4", attempt);
    earn_lock(f, name, client, "locked", lk.secs * 2, &lk);
    lock_with_room(f, name, esc, "locked", &lk);
    snprintf(client, sizeof(client), "10.%d.1.5", attempt);
    if (!refused_while_locked(f, name, pw, code, client, "locked", &lk))
        goto out;
    /* Once it has ended, the right credentials log in... */
    outlast(&lk);
    code_at(cred.totp_uri, time(NULL), code);
    snprintf(client, sizeof(client), "10.%d.1.6", attempt);
    assert_int_equal(login(f, name, pw, code, client, NULL), 0);
    /* ...and the count starts again: four failures lock nothing. */
    snprintf(client, sizeof(client), "10.%d.2.1", attempt);
    for (int i = 0; i < 4; i++)
        assert_int_equal(login(f, name, "wrong wrong wrong", "000000", client, NULL), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    snprintf(want, sizeof(want), "login|op=login user=%s|denied: bad password|%s", name, name);
    assert_string_equal(out_s, want);
    ok = true;
out:
    sodium_memzero(&cred, sizeof(cred));
    return ok;
}

/* Five consecutive failures lock the user for 1 s, the next (once that has ended) for 2 s,
 * then 4 s; the lock holds against the right credentials and across a reopened gate; success
 * resets the count. An unknown name locks the same way. The locks are checked by the clock
 * (see lock_with_room), so that a loaded machine neither fails the test nor skips a check. */
static void test_lockout_user(void **state)
{
    struct fixture *f = *state;
    struct lock_seen lk;
    char client[32];
    int64_t retry = 0;
    int attempt = 0, rc;

    while (!lockout_user_try(f, attempt))
        if (++attempt == 4)
            fail_msg("four tries in a row stalled past a lock");

    /* An unknown name locks the same way (without telling that it is unknown). Each attempt
     * inside the lock is refused as locked; one that comes after it (a stalled machine)
     * fails again and earns the next lock, twice as long. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(login(f, "ghost", "whatever it is", "000000", "10.9.3.1", NULL), RV_EAUTH);
    lk.begun = wall_ms();
    assert_int_equal(login(f, "ghost", "whatever it is", "000000", "10.9.3.1", NULL), RV_EAUTH);
    lk.ended = wall_ms();
    lk.secs = 1;
    for (int i = 2;; i++) {
        int64_t begun = wall_ms(), done;
        snprintf(client, sizeof(client), "10.9.3.%d", i);
        rc = login(f, "ghost", "whatever it is", "000000", client, &retry);
        done = wall_ms();
        if (rc == RV_ELOCKED) {
            assert_true(retry >= 1 && retry <= (int64_t)lk.secs);
            break;
        }
        assert_int_equal(rc, RV_EAUTH);
        if (done - lk.begun < (int64_t)lk.secs * 1000)
            fail_msg("an unknown name was not locked %lld ms into its %us lock",
                     (long long)(done - lk.begun), lk.secs);
        assert_true(lk.secs < 128);
        lk = (struct lock_seen){begun, done, lk.secs * 2};
    }
}

/* One attempt at test_lockout_client, from 203.0.113.(9 + 2 ATTEMPT) (locked) and the address after
 * it, for a fresh user; false when a stalled call made a check inconclusive. */
static bool lockout_client_try(struct fixture *f, int attempt)
{
    struct rv_credentials cred;
    struct lock_seen lk;
    char code[7], name[32], user[32], out_s[512], addr[32], other[32];
    const char *pw = "a long and decent passphrase";
    unsigned alerts = lockout_alerts(f);
    bool ok = false;

    snprintf(user, sizeof(user), attempt == 0 ? "carol" : "carol%d", attempt);
    snprintf(addr, sizeof(addr), "203.0.113.%d", 9 + 2 * attempt);
    snprintf(other, sizeof(other), "203.0.113.%d", 10 + 2 * attempt);
    add_ready(f, user, "checker", pw, &cred);
    for (int i = 0; i < 19; i++) {
        snprintf(name, sizeof(name), "guess%d", i);
        assert_int_equal(login(f, name, "password-spray-1", "123456", addr, NULL), RV_EAUTH);
    }
    lk.begun = wall_ms();
    assert_int_equal(login(f, "guess19", "password-spray-1", "123456", addr, NULL), RV_EAUTH);
    lk.ended = wall_ms();
    lk.secs = 1;
    last_outcome(f, out_s, sizeof(out_s));
    assert_non_null(strstr(out_s, "|denied: unknown user; client locked 1s|"));
    assert_int_equal(lockout_alerts(f), alerts + 1);
    code_at(cred.totp_uri, time(NULL), code);
    lock_with_room(f, NULL, addr, "client locked", &lk);
    if (!refused_while_locked(f, user, pw, code, addr, "client locked", &lk))
        goto out;
    /* Another address is not locked. */
    assert_int_equal(login(f, user, pw, code, other, NULL), 0);
    /* Once the lock has ended, one more failure from the address locks it twice as long. */
    outlast(&lk);
    earn_lock(f, NULL, addr, "client locked", lk.secs * 2, &lk);
    lock_with_room(f, NULL, addr, "client locked", &lk);
    if (!refused_while_locked(f, user, pw, code, addr, "client locked", &lk))
        goto out;
    ok = true;
out:
    sodium_memzero(&cred, sizeof(cred));
    return ok;
}

/* Twenty failures from one address, across any names, lock the address, for twice as long
 * each time after that; other addresses are not locked. */
static void test_lockout_client(void **state)
{
    struct fixture *f = *state;
    int attempt = 0;

    while (!lockout_client_try(f, attempt))
        if (++attempt == 4)
            fail_msg("four tries in a row stalled past a lock");
}

static void test_suspended(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    struct rv_principal got;
    char code[7], out_s[512];
    const char *pw = "a long and decent passphrase";

    add_ready(f, "carol", "checker", pw, &cred);
    assert_int_equal(rv_principal_suspend(f->g, "carol", "probing.sweep"), 0);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "users|op=suspend user=carol why=probing.sweep|ok|tester");
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), 0);
    assert_true(got.suspended);
    code_at(cred.totp_uri, time(NULL), code);
    /* Wrong credentials are still a failure; right ones are told of the suspension. */
    assert_int_equal(login(f, "carol", "wrong wrong wrong", code, "192.0.2.9", NULL), RV_EAUTH);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.9", NULL), RV_ESUSPENDED);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=login user=carol|denied: suspended|carol");
    /* Nor may it change its password. */
    assert_int_equal(
        rv_policy_change_password(f->g, "carol", pw, "a different passphrase", "192.0.2.9"),
        RV_ESUSPENDED);
    assert_int_equal(rv_policy_user_reinstate(f->g, "carol"), 0);
    code_at(cred.totp_uri, time(NULL) + 30, code);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.9", NULL), 0);
    sodium_memzero(&cred, sizeof(cred));
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the calling thread, in seconds: the Argon2id hash of a login runs there, and
 * unlike the wall clock it does not grow with other work on the machine. */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool within_three(double a, double b)
{
    return a > b / 3 && a < b * 3;
}

/* An unknown name takes about as long to refuse as a wrong password (both hash with Argon2id
 * and write the store): the least CPU time of each kind within a factor of three (the hash,
 * whatever else runs on the machine), and so the total wall time of their tries (the hash
 * and the store's sync; a loaded machine's delays of a second or more fall on both kinds
 * alike, where the least of each would depend on which kind a quiet moment fell to). The
 * tries go on, three at least and twelve at most, until both hold; a refusal that skips the
 * work stays far below the other in CPU time however many tries are made. */
static void test_timing_alike(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    char name[32], unknown_name[32], client[32];
    double cpu_known = 1e9, cpu_unknown = 1e9, wall_known = 0, wall_unknown = 0;
    int i;

    /* Four failures each (the fifth would lock): three users and three unknown names. */
    for (int u = 0; u < 3; u++) {
        snprintf(name, sizeof(name), "carol%d", u);
        add_ready(f, name, "checker", "a long and decent passphrase", &cred);
    }
    assert_int_equal(login(f, "nobody", "wrong wrong wrong", "000000", "192.0.2.70", NULL),
                     RV_EAUTH);
    for (i = 0; i < 12 && (i < 3 || !within_three(cpu_unknown, cpu_known) ||
                           !within_three(wall_unknown, wall_known));
         i++) {
        double t0, t1, t2, c0, c1, c2;
        snprintf(name, sizeof(name), "carol%d", i / 4);
        snprintf(unknown_name, sizeof(unknown_name), "nobody%d", i / 4);
        snprintf(client, sizeof(client), "192.0.2.%d", 71 + i / 4);
        t0 = seconds();
        c0 = thread_cpu_seconds();
        assert_int_equal(login(f, name, "wrong wrong wrong", "000000", client, NULL), RV_EAUTH);
        t1 = seconds();
        c1 = thread_cpu_seconds();
        assert_int_equal(login(f, unknown_name, "wrong wrong wrong", "000000", client, NULL),
                         RV_EAUTH);
        t2 = seconds();
        c2 = thread_cpu_seconds();
        cpu_known = c1 - c0 < cpu_known ? c1 - c0 : cpu_known;
        cpu_unknown = c2 - c1 < cpu_unknown ? c2 - c1 : cpu_unknown;
        wall_known += t1 - t0;
        wall_unknown += t2 - t1;
    }
    if (!within_three(cpu_unknown, cpu_known))
        fail_msg("least CPU time: %.1f ms for a wrong password, %.1f ms for an unknown name",
                 cpu_known * 1e3, cpu_unknown * 1e3);
    if (!within_three(wall_unknown, wall_known))
        fail_msg("%d tries: %.0f ms for wrong passwords, %.0f ms for unknown names", i,
                 wall_known * 1e3, wall_unknown * 1e3);
    sodium_memzero(&cred, sizeof(cred));
}

struct racer {
    struct fixture *f;
    const char *code;
    char client[32];
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct rv_actor who = {"-", "-", r->client};
    struct rv_gate *v = NULL;
    struct rv_principal out;
    int64_t retry;

    r->rc = rv_policy_view(r->f->g, &who, &v);
    if (r->rc == 0)
        r->rc = rv_policy_login(v, "carol", "a long and decent passphrase", r->code, r->client,
                                &out, &retry);
    (void)rv_policy_close(v);
    return NULL;
}

/* The same code sent on four threads at once (views of one gate): exactly one gets in. */
static void test_concurrent_replay(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    struct racer r[4];
    pthread_t t[4];
    char code[7];
    int ok = 0, refused = 0;

    add_ready(f, "carol", "checker", "a long and decent passphrase", &cred);
    code_at(cred.totp_uri, time(NULL), code);
    for (int i = 0; i < 4; i++) {
        r[i].f = f;
        r[i].code = code;
        snprintf(r[i].client, sizeof(r[i].client), "192.0.2.%d", 60 + i);
        assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        ok += r[i].rc == 0;
        refused += r[i].rc == RV_EAUTH;
    }
    assert_int_equal(ok, 1);
    assert_int_equal(refused, 3);
    sodium_memzero(&cred, sizeof(cred));
}

static void test_service_cert(void **state)
{
    struct fixture *f = *state;
    struct rv_principal p = {.name = "batchbot", .role = "checker", .kind = RV_PRINCIPAL_SERVICE};
    struct rv_principal other = {
        .name = "otherbot", .role = "researcher", .kind = RV_PRINCIPAL_SERVICE};
    struct rv_credentials cred;
    struct rv_principal out;
    char upper[65], out_s[512];
    int64_t retry;

    snprintf(p.cert_sha256, sizeof(p.cert_sha256), "%s", CERT);
    snprintf(other.cert_sha256, sizeof(other.cert_sha256), "%s",
             "0000000000000000000000000000000000000000000000000000000000000001");
    add_human(f, "carol", "checker", &cred);
    assert_int_equal(rv_policy_user_add(f->g, &p, NULL), 0);
    assert_int_equal(rv_policy_user_add(f->g, &other, NULL), 0);
    assert_int_equal(rv_policy_login_cert(f->g, CERT, "192.0.2.20", &out), 0);
    assert_string_equal(out.name, "batchbot");
    assert_string_equal(out.role, "checker");
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=cert user=batchbot cert=3f2a9c0d1e4b5a69|ok|batchbot");
    for (int i = 0; i < 64; i++)
        upper[i] = (char)(CERT[i] >= 'a' ? CERT[i] - 32 : CERT[i]);
    upper[64] = '\0';
    assert_int_equal(rv_policy_login_cert(f->g, upper, "192.0.2.20", &out), 0);
    assert_string_equal(out.name, "batchbot");

    assert_int_equal(rv_policy_login_cert(f->g,
                                          "3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa998877"
                                          "6655443323",
                                          "192.0.2.20", &out),
                     RV_EAUTH);
    assert_string_equal(out.name, "");
    assert_int_equal(rv_policy_login_cert(f->g, "", "192.0.2.20", &out), RV_EAUTH);
    assert_int_equal(rv_policy_login_cert(f->g, "not hex", "192.0.2.20", &out), RV_EAUTH);
    /* A service has no password to log in with. */
    assert_int_equal(login(f, "batchbot", "", "000000", "192.0.2.20", NULL), RV_EAUTH);
    assert_int_equal(rv_policy_user_reset(f->g, "batchbot", &cred), RV_EINVAL);

    assert_int_equal(rv_policy_user_disable(f->g, "batchbot"), 0);
    assert_int_equal(rv_policy_login_cert(f->g, CERT, "192.0.2.20", &out), RV_EAUTH);
    last_outcome(f, out_s, sizeof(out_s));
    assert_string_equal(out_s, "login|op=cert cert=3f2a9c0d1e4b5a69|denied: disabled|-");
    assert_int_equal(rv_policy_user_reinstate(f->g, "batchbot"), 0);
    assert_int_equal(rv_principal_suspend(f->g, "batchbot", "probing"), 0);
    assert_int_equal(rv_policy_login_cert(f->g, CERT, "192.0.2.20", &out), RV_ESUSPENDED);
    (void)retry;
    sodium_memzero(&cred, sizeof(cred));
}

static bool contains(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
    if (m == 0)
        return false;
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return true;
    return false;
}

/* Every entry of the log, read back: no password, TOTP secret or code in any of them. */
static void test_no_secrets_in_log(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials c1, c2;
    char code[7], code2[7], b32[33], *raw = NULL;
    const char *pw = "my new passphrase 42", *typo = "my new passphrase 24",
               *misplaced = "secretpasswordinnamefield";
    const char *s, *needles[8];
    size_t rawlen = 0;
    struct rv_audit_log *log;
    uint64_t n;

    add_human(f, "carol", "checker", &c1);
    code_at(c1.totp_uri, time(NULL), code);
    assert_int_equal(login(f, "carol", c1.password, code, "192.0.2.30", NULL), RV_ECHANGE);
    assert_int_equal(rv_policy_change_password(f->g, "carol", c1.password, "weakpw", "local"),
                     RV_EWEAK);
    assert_int_equal(rv_policy_change_password(f->g, "carol", c1.password, pw, "192.0.2.30"), 0);
    code_at(c1.totp_uri, time(NULL) + 30, code2);
    assert_int_equal(login(f, "carol", typo, code2, "192.0.2.30", NULL), RV_EAUTH);
    assert_int_equal(login(f, "carol", pw, code2, "192.0.2.30", NULL), 0);
    assert_int_equal(login(f, "carol", pw, code2, "192.0.2.30", NULL), RV_EAUTH);
    assert_int_equal(login(f, misplaced, pw, code2, "192.0.2.30", NULL), RV_EAUTH);
    assert_int_equal(rv_policy_user_reset(f->g, "carol", &c2), 0);

    s = strstr(c1.totp_uri, "secret=") + 7;
    snprintf(b32, sizeof(b32), "%.32s", s);
    assert_int_equal(oath_base32_decode(b32, 32, &raw, &rawlen), OATH_OK);
    needles[0] = c1.password;
    needles[1] = c2.password;
    needles[2] = pw;
    needles[3] = typo;
    needles[4] = misplaced;
    needles[5] = b32;
    needles[6] = code;
    needles[7] = code2;

    log = rv_policy_audit(f->g);
    n = rv_audit_size(log);
    assert_true(n >= 10);
    for (uint64_t i = 0; i < n; i++) {
        struct rv_audit_record rec;
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        for (size_t k = 0; k < 8; k++)
            assert_false(contains(rec.raw, rec.raw_len, needles[k], strlen(needles[k])));
        assert_false(contains(rec.raw, rec.raw_len, raw, rawlen));
        assert_false(contains(rec.raw, rec.raw_len, strstr(c2.totp_uri, "secret=") + 7, 32));
        rv_audit_record_free(&rec);
    }
    sodium_memzero(raw, rawlen);
    free(raw);
    sodium_memzero(&c1, sizeof(c1));
    sodium_memzero(&c2, sizeof(c2));
}

/* Store access behind the gate's back, as someone with the files but not the key: the
 * gate's own store, <vault>/gate. */
static void store_value(struct fixture *f, const char *name, uint8_t *buf, size_t *len, bool put)
{
    static const uint8_t prefix[] = {0x80, 'p', 'r', 'i', 'n', 'c', 'i', 'p', 'a', 'l', 0x00};
    const struct rv_store_opts opts = {.small = true};
    struct rv_store *s = NULL;
    struct rv_txn *t = NULL;
    char dir[1024];
    uint8_t key[128];
    size_t klen = sizeof(prefix) + strlen(name);
    const void *val;
    size_t vlen;

    memcpy(key, prefix, sizeof(prefix));
    memcpy(key + sizeof(prefix), name, strlen(name));
    assert_int_equal(rv_policy_close(f->g), 0);
    f->g = NULL;
    snprintf(dir, sizeof(dir), "%s/gate", f->tv.dir);
    assert_int_equal(rv_store_open_opts(dir, &opts, &s), 0);
    assert_int_equal(rv_store_begin(s, put, &t), 0);
    if (put) {
        assert_int_equal(rv_store_put(t, key, klen, buf, *len), 0);
        assert_int_equal(rv_store_commit(t), 0);
    } else {
        assert_int_equal(rv_store_get(t, key, klen, &val, &vlen), 0);
        assert_true(vlen <= 1024);
        memcpy(buf, val, vlen);
        *len = vlen;
        rv_store_abort(t);
    }
    rv_store_close(s);
    assert_int_equal(rv_policy_open(f->tv.dir, &f->tv.secret, &ADMIN, &f->g), 0);
}

static void test_tampered_record(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    struct rv_principal got;
    struct names n = {0};
    uint8_t orig[1024], bad[1024], bob[1024];
    size_t len = 0, blen = 0, tlen;
    char code[7];
    const char *pw = "a long and decent passphrase";

    add_ready(f, "carol", "checker", pw, &cred);
    {
        struct rv_credentials c2;
        add_human(f, "bob", "admin", &c2);
        sodium_memzero(&c2, sizeof(c2));
    }
    store_value(f, "carol", orig, &len, false);
    store_value(f, "bob", bob, &blen, false);

    /* Every byte flipped in turn (a sample), a truncation, another record's value. */
    for (size_t i = 0; i < len; i += 7) {
        memcpy(bad, orig, len);
        bad[i] ^= 0x20;
        tlen = len;
        store_value(f, "carol", bad, &tlen, true);
        assert_int_equal(rv_policy_user_get(f->g, "carol", &got), RV_ECORRUPT);
    }
    tlen = len - 1;
    store_value(f, "carol", orig, &tlen, true);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), RV_ECORRUPT);
    store_value(f, "carol", bob, &blen, true);
    assert_int_equal(rv_policy_user_get(f->g, "carol", &got), RV_ECORRUPT);
    code_at(cred.totp_uri, time(NULL), code);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.40", NULL), RV_ECORRUPT);
    assert_int_equal(
        rv_policy_change_password(f->g, "carol", pw, "another good one 123", "192.0.2.40"),
        RV_ECORRUPT);
    assert_int_equal(rv_policy_user_list(f->g, collect, &n), RV_ECORRUPT);
    assert_int_equal(rv_policy_user_disable(f->g, "carol"), RV_ECORRUPT);
    assert_int_equal(rv_policy_login_cert(f->g, CERT, "192.0.2.40", &got), RV_ECORRUPT);

    /* Put back, it works again. */
    store_value(f, "carol", orig, &len, true);
    assert_int_equal(login(f, "carol", pw, code, "192.0.2.40", NULL), 0);
    sodium_memzero(&cred, sizeof(cred));
}

/* oathtool (the reference implementation most phones agree with) makes the same codes from
 * the enrolment URI's secret, and the vault accepts them. */
static void test_oathtool_interop(void **state)
{
    struct fixture *f = *state;
    struct rv_credentials cred;
    char cmd[256], got[16] = {0}, want[7], b32[33];
    const char *pw = "a long and decent passphrase";
    FILE *p;

    if (access("/usr/bin/oathtool", X_OK) != 0)
        skip();
    add_ready(f, "carol", "checker", pw, &cred);
    snprintf(b32, sizeof(b32), "%.32s", strstr(cred.totp_uri, "secret=") + 7);
    code_at(cred.totp_uri, 1700000000, want);
    snprintf(cmd, sizeof(cmd), "/usr/bin/oathtool --totp -b -N @1700000000 %s", b32);
    assert_non_null(p = popen(cmd, "r"));
    assert_non_null(fgets(got, sizeof(got), p));
    assert_int_equal(pclose(p), 0);
    got[strcspn(got, "\n")] = '\0';
    assert_string_equal(got, want);

    snprintf(cmd, sizeof(cmd), "/usr/bin/oathtool --totp -b %s", b32);
    assert_non_null(p = popen(cmd, "r"));
    assert_non_null(fgets(got, sizeof(got), p));
    assert_int_equal(pclose(p), 0);
    got[strcspn(got, "\n")] = '\0';
    assert_int_equal(login(f, "carol", pw, got, "192.0.2.50", NULL), 0);
    sodium_memzero(&cred, sizeof(cred));
    sodium_memzero(cmd, sizeof(cmd));
}

/* Reads a seed of the fuzz corpus (the record format's golden files). */
static size_t corpus_file(const char *name, uint8_t *buf, size_t cap)
{
    const char *src = getenv("RV_SOURCE_DIR");
    char path[1024];
    FILE *fp;
    size_t n;

    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/fuzz_principal_record/%s",
             src != NULL ? src : ".", name);
    assert_non_null(fp = fopen(path, "rb"));
    n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* The record decoder accepts the golden records, refuses what it would not write, and no
 * change of one byte makes it accept something it would write differently. */
static void test_record_decoder(void **state)
{
    static const char *const good[] = {"human-new.bin", "human-locked.bin", "service.bin"};
    static const char *const bad[] = {"human-bad-role.bin", "service-bad-hash.bin"};
    uint8_t buf[512];
    size_t n;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        n = corpus_file(good[i], buf, sizeof(buf));
        assert_int_equal(rv_principal_record_roundtrip(buf, n), 0);
        for (size_t j = 0; j < n; j++)
            for (unsigned bit = 0; bit < 8; bit++) {
                int rc;
                buf[j] ^= (uint8_t)(1u << bit);
                rc = rv_principal_record_roundtrip(buf, n);
                assert_true(rc == 0 || rc == RV_ECORRUPT);
                buf[j] ^= (uint8_t)(1u << bit);
            }
        assert_int_equal(rv_principal_record_roundtrip(buf, n - 1), RV_ECORRUPT);
    }
    for (size_t i = 0; i < 2; i++) {
        n = corpus_file(bad[i], buf, sizeof(buf));
        assert_int_equal(rv_principal_record_roundtrip(buf, n), RV_ECORRUPT);
    }
    memset(buf, 0, sizeof(buf));
    assert_int_equal(rv_principal_record_roundtrip(buf, 0), RV_ECORRUPT);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(rv_principal_record_roundtrip(buf, sizeof(buf)), RV_ECORRUPT);
    memset(buf, 0, sizeof(buf));
    assert_int_equal(rv_principal_record_roundtrip(buf, 40), RV_ECORRUPT);
}

/* --login mode for tests/e2e/user_cli.sh. */
static int login_mode(int argc, char **argv)
{
    struct rv_vault_secret sec = {0};
    struct rv_gate *g = NULL;
    struct rv_principal out;
    uint8_t *key = sodium_init() >= 0 ? sodium_malloc(32) : NULL;
    char pw[256] = {0};
    int64_t retry = 0;
    FILE *fp;
    int rc;

    if (argc != 7 || key == NULL || rv_vault_read_keyfile(argv[3], key) != 0 ||
        (fp = fopen(argv[5], "r")) == NULL)
        return 12;
    if (fgets(pw, sizeof(pw), fp) == NULL)
        pw[0] = '\0';
    fclose(fp);
    pw[strcspn(pw, "\n")] = '\0';
    sec.keyfile = key;
    if (rv_policy_open(argv[2], &sec, &ADMIN, &g) != 0)
        return 12;
    rc = rv_policy_login(g, argv[4], pw, argv[6], "e2e", &out, &retry);
    sodium_memzero(pw, sizeof(pw));
    (void)rv_policy_close(g);
    sodium_free(key);
    return rc == 0 ? 0 : rc == RV_ECHANGE ? 10 : rc == RV_EAUTH ? 11 : 12;
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_list_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_ops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_role_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_strength, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lockout_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suspended, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_replay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timing_alike, setup, teardown),
        cmocka_unit_test_setup_teardown(test_service_cert, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_secrets_in_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tampered_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_oathtool_interop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_durable_inside_group, setup, teardown),
        cmocka_unit_test(test_record_decoder),
    };

    (void)oath_init();
    if (argc > 1 && strcmp(argv[1], "--login") == 0)
        return login_mode(argc, argv);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
