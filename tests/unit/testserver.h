/*
 * testserver.h - the fixture the daemon's unit tests (test_server_handlers.c,
 * test_server_stop.c) share: a vault in a fresh temporary folder with human principals (their
 * issued passwords and TOTP secrets kept), a server on it in dev mode with the rate limits out
 * of the way, requests through rv_server_handle with a bearer token and a content type, and
 * the TOTP codes of the principals' logins. Each test sets its own principals, server options
 * and client address. Header-only, as testutil.h, since each test is one source file; it uses
 * cmocka's assertions, so it comes after <cmocka.h>.
 */
#ifndef RV_TESTSERVER_H
#define RV_TESTSERVER_H

#include "policy/policy.h"
#include "server/server.h"
#include "testutil.h"

#include <jansson.h>
#include <liboath/oath.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#define SERVER_FIXTURE_USERS 8

struct server_user {
    const char *name, *role;
    char password[64];
    char secret[64]; /* TOTP secret, base32 */
    char token[RV_SESSION_TOKEN_LEN + 1];
    int step; /* TOTP step offset from now for the next login: -1, 0, +1 (never reused) */
};

struct server_fixture {
    char top[256], dir[300];
    uint8_t *key;
    struct rv_vault_secret secret;
    struct rv_gate *gate;
    struct rv_server *srv;
    struct server_user users[SERVER_FIXTURE_USERS];
    const char *client; /* the address every request comes from */
    char access_log[320];
    int log_fd; /* the server's access log, or -1 */
};

/* One request from f->client, with token as a bearer token and ctype as the content type
 * when not NULL; the answer in out (free with rv_server_response_free). */
static inline int server_request(struct server_fixture *f, const char *method, const char *url,
                                 const char *token, const char *ctype, const char *body,
                                 struct rv_server_response *out)
{
    char auth[128];
    const char *h[4][2];
    size_t nh = 0;
    struct rv_server_request r = {.method = method, .url = url, .client = f->client};

    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Bearer %s", token);
        h[nh][0] = "Authorization";
        h[nh++][1] = auth;
    }
    if (ctype != NULL) {
        h[nh][0] = "content-type";
        h[nh++][1] = ctype;
    }
    r.headers = (const char *const(*)[2])h;
    r.nheaders = nh;
    r.body = body;
    r.body_len = body != NULL ? strlen(body) : 0;
    return rv_server_handle(f->srv, &r, out);
}

/* The TOTP code of u's next login (steps now-1, now, now+1 in turn, never one twice). The
 * code of step now-1 is taken no later than 5 s before the step ends (else after it), so
 * that it is still in the daemon's window when a loaded machine checks it seconds later. */
static inline void server_totp(struct server_user *u, char code[8])
{
    char *raw = NULL;
    size_t len = 0;
    assert_int_equal(oath_base32_decode(u->secret, strlen(u->secret), &raw, &len), OATH_OK);
    assert_true(u->step <= 1);
    time_t now = time(NULL);
    if (u->step == -1 && now % 30 >= 25)
        sleep((unsigned)(30 - now % 30));
    assert_int_equal(oath_totp_generate(raw, len, time(NULL) + 30 * u->step++, 30, 0, 6, code),
                     OATH_OK);
    free(raw);
}

/* Logs u in (POST /v1/session with its password and next TOTP code), which must answer 201:
 * the answer's JSON (json_decref it). */
static inline json_t *server_login(struct server_fixture *f, struct server_user *u)
{
    struct rv_server_response r;
    char body[512], code[8];
    json_t *j;

    server_totp(u, code);
    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}", u->name,
             u->password, code);
    assert_int_equal(server_request(f, "POST", "/v1/session", NULL, "application/json", body, &r),
                     0);
    assert_int_equal(r.status, 201);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(j);
    rv_server_response_free(&r);
    return j;
}

/* Makes /tmp/<prefix>-XXXXXX/vault with "tester" as its first admin, and opens its gate as
 * opener. 0, or -1 (the test's setup fails). */
static inline int server_fixture_vault(struct server_fixture *f, const char *prefix,
                                       const struct rv_actor *opener)
{
    struct rv_actor admin = {"tester", "admin", "local"};
    char *tmp;

    f->log_fd = -1;
    if (sodium_init() < 0 || oath_init() != OATH_OK)
        return -1;
    if ((tmp = rv_test_tmpdir(prefix)) == NULL)
        return -1;
    snprintf(f->top, sizeof(f->top), "%s", tmp);
    free(tmp);
    snprintf(f->dir, sizeof(f->dir), "%s/vault", f->top);
    if ((f->key = sodium_malloc(32)) == NULL)
        return -1;
    randombytes_buf(f->key, 32);
    f->secret.keyfile = f->key;
    if (rv_policy_create(f->dir, &f->secret, 100000, &admin) != 0 ||
        rv_policy_open(f->dir, &f->secret, opener, &f->gate) != 0)
        return -1;
    return 0;
}

/* Adds n human principals (names[i] = {name, role}, n <= SERVER_FIXTURE_USERS) as f->users,
 * each with its issued password and TOTP secret. 0 or -1. */
static inline int server_fixture_users(struct server_fixture *f, const char *const (*names)[2],
                                       int n)
{
    for (int i = 0; i < n; i++) {
        struct rv_principal p;
        struct rv_credentials cr;
        const char *s;

        memset(&p, 0, sizeof(p));
        snprintf(p.name, sizeof(p.name), "%s", names[i][0]);
        snprintf(p.role, sizeof(p.role), "%s", names[i][1]);
        p.kind = RV_PRINCIPAL_HUMAN;
        if (i >= SERVER_FIXTURE_USERS || rv_policy_user_add(f->gate, &p, &cr) != 0 ||
            (s = strstr(cr.totp_uri, "secret=")) == NULL)
            return -1;
        s += 7;
        f->users[i].name = names[i][0];
        f->users[i].role = names[i][1];
        f->users[i].step = -1;
        snprintf(f->users[i].password, sizeof(f->users[i].password), "%s", cr.password);
        snprintf(f->users[i].secret, sizeof(f->users[i].secret), "%.*s", (int)strcspn(s, "&"), s);
        sodium_memzero(&cr, sizeof(cr));
    }
    return 0;
}

/* A server configuration for f's vault: the defaults, dev mode, rate limits out of the way. */
static inline void server_fixture_config(struct server_fixture *f, struct rv_server_config *c)
{
    rv_server_config_defaults(c);
    snprintf(c->vault, sizeof(c->vault), "%s", f->dir);
    c->dev = true;
    c->policy.rate_principal = c->policy.rate_client = 10000;
    c->policy.burst_principal = c->policy.burst_client = 10000;
}

/* Finishes c, gives its policy to the gate and starts the server (with f->log_fd as its
 * access log). 0 or -1. */
static inline int server_fixture_start(struct server_fixture *f, struct rv_server_config *c)
{
    struct rv_diag d;

    rv_diag_clear(&d);
    if (rv_server_config_finish(c, &d) != 0 || rv_policy_configure(f->gate, &c->policy, &d) != 0)
        return -1;
    return rv_server_new(c, f->gate, f->log_fd, NULL, NULL, &f->srv) != 0 ? -1 : 0;
}

/* Stops the server, closes the gate and removes the vault's folder; frees f. */
static inline void server_fixture_free(struct server_fixture *f)
{
    rv_server_free(f->srv);
    if (f->log_fd >= 0)
        close(f->log_fd);
    (void)rv_policy_close(f->gate);
    rv_test_rmtree(f->top);
    sodium_free(f->key);
    free(f);
}

#endif
