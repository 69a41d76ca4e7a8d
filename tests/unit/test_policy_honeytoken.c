/*
 * test_policy_honeytoken.c - decoy credentials: created only by an admin, in three
 * realistic file formats with a daemon-shaped token; their user name at login and their
 * token as a bearer token each raise one high alert with the client's address, while other
 * names and tokens raise nothing; and neither the audit log nor any vault file says where
 * a decoy was planted or what it is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testalert.h"
#include "testutil.h"
#include "testvault.h"

#include "policy/inner.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABEL "finance file share"

static int setup(void **state)
{
    return rv_test_vault_setup(state, "rv-honey", 1000);
}

static struct rv_gate *open_as(struct rv_test_vault *f, const char *role)
{
    static struct rv_actor who;
    struct rv_policy_config c;
    struct rv_diag d;
    struct rv_gate *g = NULL;

    who.principal = "alice";
    who.role = role;
    who.client = "local";
    assert_int_equal(rv_policy_open(f->dir, &f->secret, &who, &g), 0);
    rv_policy_config_defaults(&c);
    c.alert_syslog = false;
    assert_int_equal(rv_policy_configure(g, &c, &d), 0);
    return g;
}

/* The value of "KEY=value" (env) or "key = value" (ini) in text, into out. */
static bool find_value(const char *text, const char *key, char *out, size_t outsz)
{
    const char *p = text;
    size_t kl = strlen(key);

    while (p != NULL && *p != '\0') {
        if (strncmp(p, key, kl) == 0) {
            const char *v = p + kl, *end = strchr(v, '\n');
            size_t n = end != NULL ? (size_t)(end - v) : strlen(v);
            snprintf(out, outsz, "%.*s", (int)n, v);
            return true;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return false;
}

static bool token_shaped(const char *t)
{
    if (strlen(t) != 47 || strncmp(t, "rvs_", 4) != 0)
        return false;
    for (const char *p = t + 4; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

static bool name_shaped(const char *n)
{
    if (n[0] < 'a' || n[0] > 'z' || strlen(n) > 63)
        return false;
    for (const char *p = n; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return false;
    return true;
}

static void free_text(char *t)
{
    if (t != NULL) {
        sodium_memzero(t, strlen(t));
        free(t);
    }
}

/* Three formats; every value well shaped; the JSON parses. */
static void test_formats(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "admin");
    char *env = NULL, *ini = NULL, *js = NULL, user[128], tok[128], pw[128], url[256];
    json_t *j, *r;

    assert_int_equal(rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV,
                                                 "https://regvault.example.org:8443", &env),
                     0);
    assert_true(env[0] == '#');
    assert_true(find_value(env, "REGVAULT_URL=", url, sizeof(url)));
    assert_string_equal(url, "https://regvault.example.org:8443");
    assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
    assert_true(name_shaped(user));
    assert_true(find_value(env, "REGVAULT_PASSWORD=", pw, sizeof(pw)));
    assert_true(strlen(pw) >= 12);
    assert_true(find_value(env, "REGVAULT_TOTP_SECRET=", tok, sizeof(tok)));
    assert_int_equal(strlen(tok), 32);
    assert_true(find_value(env, "REGVAULT_TOKEN=", tok, sizeof(tok)));
    assert_true(token_shaped(tok));
    assert_null(strstr(env, LABEL)); /* the file never says it is a decoy */

    assert_int_equal(rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_INI,
                                                 "https://regvault.example.org:8443", &ini),
                     0);
    assert_non_null(strstr(ini, "[regvault]\n"));
    assert_true(find_value(ini, "token = ", tok, sizeof(tok)));
    assert_true(token_shaped(tok));
    assert_true(find_value(ini, "user = ", user, sizeof(user)));
    assert_true(name_shaped(user));

    assert_int_equal(rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_JSON,
                                                 "https://regvault.example.org:8443", &js),
                     0);
    j = json_loads(js, 0, NULL);
    assert_non_null(j);
    r = json_object_get(j, "regvault");
    assert_true(token_shaped(json_string_value(json_object_get(r, "token"))));
    assert_true(name_shaped(json_string_value(json_object_get(r, "user"))));
    assert_non_null(json_string_value(json_object_get(r, "password")));
    assert_non_null(json_string_value(json_object_get(r, "totp_secret")));
    json_decref(j);

    /* Bad labels and URLs are refused. */
    {
        char *t = NULL;
        assert_int_equal(rv_policy_honeytoken_create(g, "", RV_HONEYTOKEN_ENV, "https://x", &t),
                         RV_EINVAL);
        assert_int_equal(rv_policy_honeytoken_create(g, "a\nb", RV_HONEYTOKEN_ENV, "https://x", &t),
                         RV_EINVAL);
        assert_int_equal(
            rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://x y", &t), RV_EINVAL);
        assert_null(t);
    }
    free_text(env);
    free_text(ini);
    free_text(js);
    assert_int_equal(rv_policy_close(g), 0);
}

/* The decoy user name and token each raise one high alert with the client; anything else
 * raises nothing. */
static void test_use_alerts(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "admin");
    char *env = NULL, user[128], tok[128], other[128];
    struct rv_test_alerts s = {0};

    assert_int_equal(
        rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://rv.example:8443", &env),
        0);
    assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
    assert_true(find_value(env, "REGVAULT_TOKEN=", tok, sizeof(tok)));
    free_text(env);
    assert_int_equal(rv_policy_close(g), 0);

    /* As the daemon would, acting for nobody in particular. */
    g = open_as(f, "checker");
    assert_int_equal(rv_honeytoken_login(g, "jsmith-not-a-decoy", "203.0.113.5"), 0);
    assert_int_equal(rv_honeytoken_login(g, "", "203.0.113.5"), 0);
    assert_int_equal(rv_policy_honeytoken_token(g, "rvs_short", "203.0.113.5"), 0);
    snprintf(other, sizeof(other), "%s", tok);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    assert_int_equal(rv_policy_honeytoken_token(g, other, "203.0.113.5"), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 0);

    /* A decoy's name cannot be taken by a real principal (which would silence it), and
     * asking whether a name is a decoy raises nothing. */
    assert_int_equal(rv_honeytoken_is_name(g, user), 1);
    assert_int_equal(rv_honeytoken_is_name(g, "jsmith-not-a-decoy"), 0);
    assert_int_equal(rv_policy_close(g), 0);
    g = open_as(f, "admin");
    {
        struct rv_principal p;
        struct rv_credentials cred;
        memset(&p, 0, sizeof(p));
        assert_true(strlen(user) < sizeof(p.name));
        memcpy(p.name, user, strlen(user) + 1);
        snprintf(p.role, sizeof(p.role), "checker");
        assert_int_equal(rv_policy_user_add(g, &p, &cred), RV_EEXIST);
    }
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 0);

    g = open_as(f, "checker");
    assert_int_equal(rv_honeytoken_login(g, user, "203.0.113.5"), 1);
    assert_int_equal(rv_policy_honeytoken_token(g, tok, "198.51.100.23"), 1);
    assert_int_equal(rv_policy_close(g), 0);

    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kind[0], "honeytoken");
    assert_int_equal(s.sev[0], RV_ALERT_HIGH);
    assert_string_equal(s.principal[0], user);
    assert_string_equal(s.client[0], "203.0.113.5");
    assert_non_null(strstr(s.detail[0], LABEL));
    assert_string_equal(s.kind[1], "honeytoken");
    assert_string_equal(s.client[1], "198.51.100.23");
    assert_string_equal(s.principal[1], user);
    assert_non_null(strstr(s.detail[1], LABEL));
    sodium_memzero(tok, sizeof(tok));
}

/* Only an admin creates decoys; the refusal is recorded. */
static void test_admin_only(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "auditor");
    char *t = NULL;
    uint64_t n = rv_audit_size(rv_policy_audit(g));
    struct rv_audit_record rec;

    assert_int_equal(rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://x", &t),
                     RV_EDENIED);
    assert_null(t);
    assert_int_equal(rv_audit_size(rv_policy_audit(g)), n + 1);
    assert_int_equal(rv_audit_get(rv_policy_audit(g), n, &rec), 0);
    assert_string_equal(rec.e.action, "honeytoken");
    assert_string_equal(rec.e.outcome, "denied: role");
    rv_audit_record_free(&rec);
    assert_int_equal(rv_policy_close(g), 0);
}

/* Before any use, no vault file (audit log included) holds the label, the user name, the
 * password or the token. */
static void test_nothing_on_disk(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "admin");
    char *env = NULL, user[128], tok[128], pw[128];

    assert_int_equal(
        rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://rv.example:8443", &env),
        0);
    assert_int_equal(rv_policy_close(g), 0);
    assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
    assert_true(find_value(env, "REGVAULT_TOKEN=", tok, sizeof(tok)));
    assert_true(find_value(env, "REGVAULT_PASSWORD=", pw, sizeof(pw)));
    free_text(env);
    assert_false(rv_test_tree_contains(f->dir, LABEL));
    assert_false(rv_test_tree_contains(f->dir, user));
    assert_false(rv_test_tree_contains(f->dir, pw));
    assert_false(rv_test_tree_contains(f->dir, tok));
    assert_false(rv_test_tree_contains(f->dir, tok + 4));
}

/* Through the real login: the decoy is refused like any bad credential (RV_EAUTH), and the
 * alert names the decoy and the client. A decoy never takes a principal's name. */
static void test_login(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "admin");
    struct rv_principal p, out;
    struct rv_credentials cred;
    char *env = NULL, user[128], pw[128];
    int64_t retry = 0;
    struct rv_test_alerts s = {0};

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "svc-finance-sync");
    snprintf(p.role, sizeof(p.role), "checker");
    p.kind = RV_PRINCIPAL_HUMAN;
    assert_int_equal(rv_policy_user_add(g, &p, &cred), 0);
    sodium_memzero(&cred, sizeof(cred));
    for (int i = 0; i < 20; i++) {
        assert_int_equal(rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV,
                                                     "https://rv.example:8443", &env),
                         0);
        assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
        assert_string_not_equal(user, "svc-finance-sync");
        free_text(env);
    }
    assert_int_equal(
        rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://rv.example:8443", &env),
        0);
    assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
    assert_true(find_value(env, "REGVAULT_PASSWORD=", pw, sizeof(pw)));
    free_text(env);
    assert_int_equal(rv_policy_login(g, user, pw, "123456", "192.0.2.44", &out, &retry), RV_EAUTH);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_true(s.n >= 1);
    assert_string_equal(s.kind[0], "honeytoken");
    assert_string_equal(s.principal[0], user);
    assert_string_equal(s.client[0], "192.0.2.44");
    sodium_memzero(pw, sizeof(pw));
}

static int count_honey(void *ctx, uint64_t index, const struct rv_alert *a)
{
    struct rv_test_alerts *s = ctx;
    (void)index;
    if (strcmp(a->kind, "honeytoken") == 0) {
        if (s->n < 8) {
            snprintf(s->principal[s->n], 64, "%s", a->principal);
            snprintf(s->client[s->n], 64, "%s", a->client);
        }
        s->n++;
    }
    return 0;
}

/* The decoy's password is a decoy too: given with a real principal's name or an unknown
 * one, it raises the alarm (and is refused as any bad password). And the decoy raises it
 * from an address that is locked out for failed logins, answered as any locked login. */
static void test_login_password_and_locked(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_as(f, "admin");
    struct rv_principal p, out;
    struct rv_credentials cred;
    char *env = NULL, user[128], pw[128];
    int64_t retry = 0;
    struct rv_test_alerts s = {0};
    int rc = 0;

    memset(&p, 0, sizeof(p));
    snprintf(p.name, sizeof(p.name), "real-checker");
    snprintf(p.role, sizeof(p.role), "checker");
    p.kind = RV_PRINCIPAL_HUMAN;
    assert_int_equal(rv_policy_user_add(g, &p, &cred), 0);
    sodium_memzero(&cred, sizeof(cred));
    assert_int_equal(
        rv_policy_honeytoken_create(g, LABEL, RV_HONEYTOKEN_ENV, "https://rv.example:8443", &env),
        0);
    assert_true(find_value(env, "REGVAULT_USER=", user, sizeof(user)));
    assert_true(find_value(env, "REGVAULT_PASSWORD=", pw, sizeof(pw)));
    free_text(env);

    /* The password with a real name, then with an unknown one. */
    assert_int_equal(rv_policy_login(g, "real-checker", pw, "123456", "192.0.2.61", &out, &retry),
                     RV_EAUTH);
    assert_int_equal(rv_policy_login(g, "nosuchname", pw, "123456", "192.0.2.62", &out, &retry),
                     RV_EAUTH);
    /* A wrong password is no alarm. */
    assert_int_equal(
        rv_policy_login(g, "real-checker", "not-the-decoy-1", "123456", "192.0.2.63", &out, &retry),
        RV_EAUTH);
    /* Lock out the address 192.0.2.70 (failures across names, a new one each time, so that
     * only the address's lock can refuse), then use the decoy from it. */
    for (int i = 0; i < 40 && rc != RV_ELOCKED; i++) {
        char name[32];
        snprintf(name, sizeof(name), "nobody%d", i);
        rc = rv_policy_login(g, name, "wrong-password-x", "123456", "192.0.2.70", &out, &retry);
    }
    assert_int_equal(rc, RV_ELOCKED);
    assert_int_equal(rv_policy_login(g, user, pw, "123456", "192.0.2.70", &out, &retry),
                     RV_ELOCKED);
    assert_int_equal(rv_policy_login(g, user, "x", "123456", "192.0.2.70", &out, &retry),
                     RV_ELOCKED);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, count_honey, &s), 0);
    assert_int_equal(s.n, 4);
    assert_string_equal(s.client[0], "192.0.2.61");
    assert_string_equal(s.client[1], "192.0.2.62");
    assert_string_equal(s.client[2], "192.0.2.70");
    assert_string_equal(s.client[3], "192.0.2.70");
    for (int i = 0; i < 4; i++)
        assert_string_equal(s.principal[i], user);
    sodium_memzero(pw, sizeof(pw));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_formats, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_use_alerts, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_admin_only, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_nothing_on_disk, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_login, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_login_password_and_locked, setup,
                                        rv_test_vault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
