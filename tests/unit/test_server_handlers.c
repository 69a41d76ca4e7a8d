/*
 * test_server_handlers.c - the daemon's API driven from bytes (rv_server_handle), without
 * sockets, on a real vault: routing (404, 405 with Allow), authentication (401 with
 * WWW-Authenticate for no, bad and revoked tokens), the first-login password change (403
 * password_change_required until done), roles (403 forbidden), strict JSON (400 naming the
 * field for malformed JSON, invalid UTF-8, unknown, missing and mistyped fields, an unknown
 * field's name of 10 kB clipped; 415; 413),
 * login, check, batch, ingest, stats, audit proofs, users, metrics, and that every request
 * leaves an audit entry; last, an audit log that cannot be written makes every answer 503.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testserver.h"

#include <jansson.h>
#include <liboath/oath.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum { ADMIN = 0, CHECKER, REGISTRAR, AUDITOR };

/* Status of a request; the body's "error" code into code (may be NULL). */
static int call(struct server_fixture *f, const char *method, const char *url, const char *token,
                const char *ctype, const char *body, char *code, size_t codesz)
{
    struct rv_server_response r;
    int st;

    assert_int_equal(server_request(f, method, url, token, ctype, body, &r), 0);
    st = r.status;
    if (code != NULL) {
        json_t *j = r.body != NULL ? json_loadb(r.body, r.len, 0, NULL) : NULL;
        const char *e = j != NULL ? json_string_value(json_object_get(j, "error")) : NULL;
        snprintf(code, codesz, "%s", e != NULL ? e : "");
        json_decref(j);
    }
    rv_server_response_free(&r);
    return st;
}

/* Logs u in through the API, changing the issued password the first time. */
static void login(struct server_fixture *f, struct server_user *u)
{
    char body[512], code[8];
    json_t *j = server_login(f, u);

    snprintf(u->token, sizeof(u->token), "%s", json_string_value(json_object_get(j, "token")));
    assert_int_equal(strlen(u->token), RV_SESSION_TOKEN_LEN);
    assert_int_equal(strncmp(u->token, "rvs_", 4), 0);
    assert_non_null(json_object_get(j, "expires_at"));
    assert_int_equal(json_integer_value(json_object_get(j, "idle_timeout")), 900);
    if (json_is_true(json_object_get(j, "must_change"))) {
        char np[64];
        snprintf(np, sizeof(np), "Horse-Battery-Staple-%zu", strlen(u->role));
        /* Restricted: nothing but the password change. */
        assert_int_equal(call(f, "GET", "/v1/stats", u->token, NULL, NULL, code, sizeof(code)),
                         403);
        snprintf(body, sizeof(body), "{\"password\":\"%s\",\"new_password\":\"short\"}",
                 u->password);
        assert_int_equal(
            call(f, "POST", "/v1/session/password", u->token, "application/json", body, NULL, 0),
            422);
        snprintf(body, sizeof(body), "{\"password\":\"%s\",\"new_password\":\"%s\"}", u->password,
                 np);
        assert_int_equal(
            call(f, "POST", "/v1/session/password", u->token, "application/json", body, NULL, 0),
            204);
        snprintf(u->password, sizeof(u->password), "%s", np);
    }
    json_decref(j);
}

static int setup(void **state)
{
    static const char *const names[4][2] = {
        {"ada", "admin"}, {"cheryl", "checker"}, {"reg", "registrar"}, {"audrey", "auditor"}};
    struct server_fixture *f = calloc(1, sizeof(*f));
    struct rv_actor admin = {"tester", "admin", "local"};
    struct rv_server_config c;

    if (f == NULL || server_fixture_vault(f, "rv-server", &admin) != 0 ||
        server_fixture_users(f, names, 4) != 0)
        return -1;
    f->client = "192.0.2.7";
    server_fixture_config(f, &c);
    if (server_fixture_start(f, &c) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    server_fixture_free(*state);
    return 0;
}

static uint64_t log_size(struct server_fixture *f)
{
    return rv_audit_size(rv_policy_audit(f->gate));
}

static void test_routing_and_auth(void **state)
{
    struct server_fixture *f = *state;
    struct rv_server_response r;
    char code[64];
    uint64_t n0 = log_size(f);

    assert_int_equal(call(f, "GET", "/healthz", NULL, NULL, NULL, NULL, 0), 200);
    assert_int_equal(call(f, "GET", "/v1/nothing", NULL, NULL, NULL, code, sizeof(code)), 404);
    assert_string_equal(code, "not_found");
    assert_int_equal(server_request(f, "GET", "/v1/checks", NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    rv_server_response_free(&r);
    assert_int_equal(server_request(f, "PATCH", "/v1/session", NULL, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST, DELETE");
    rv_server_response_free(&r);
    assert_int_equal(server_request(f, "POST", "/v1/checks", NULL, "application/json", "{}", &r),
                     0);
    assert_int_equal(r.status, 401);
    assert_true(r.www_authenticate);
    rv_server_response_free(&r);
    assert_int_equal(call(f, "POST", "/v1/checks",
                          "rvs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "application/json",
                          "{}", code, sizeof(code)),
                     401);
    assert_int_equal(call(f, "GET", "/v1/stats", "not even a token", NULL, NULL, NULL, 0), 401);
    assert_int_equal(call(f, "GET", "/metrics", NULL, NULL, NULL, NULL, 0), 401);
    /* Every one of those requests is on the log. */
    assert_int_equal(log_size(f), n0 + 8);
}

static void test_login_check_logout(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[CHECKER];
    struct rv_server_response r;
    char body[512], code[64];
    json_t *j;

    /* A wrong code is a 401 like any bad credential. */
    snprintf(body, sizeof(body), "{\"user\":\"%s\",\"password\":\"%s\",\"totp\":\"000000\"}",
             u->name, u->password);
    assert_int_equal(
        call(f, "POST", "/v1/session", NULL, "application/json", body, code, sizeof(code)), 401);
    assert_string_equal(code, "bad_credentials");
    login(f, u);
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json",
                          "{\"name\":\"John Smith\",\"address\":\"10 High Street, Leeds\","
                          "\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-10\"}",
                          NULL, 0),
                     200);
    assert_int_equal(
        server_request(f, "POST", "/v1/checks", u->token, "application/json",
                       "{\"name\":\"John Smith\",\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-"
                       "10\",\"bequest\":false}",
                       &r),
        0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_non_null(json_object_get(j, "verdict"));
    json_decref(j);
    rv_server_response_free(&r);
    /* A checker may not list users. */
    assert_int_equal(call(f, "GET", "/v1/users", u->token, NULL, NULL, code, sizeof(code)), 403);
    assert_string_equal(code, "forbidden");
    assert_int_equal(call(f, "GET", "/metrics", u->token, NULL, NULL, NULL, 0), 403);
    /* Logout, then the token is dead. */
    assert_int_equal(call(f, "DELETE", "/v1/session", u->token, NULL, NULL, NULL, 0), 204);
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json", "{}", NULL, 0),
                     401);
}

static void test_json_validation(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[CHECKER];
    struct rv_server_response r;
    char code[64], big[20000];

    login(f, u);
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json", "{\"name\":", code,
                          sizeof(code)),
                     400);
    assert_string_equal(code, "bad_request");
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json",
                          "{\"name\":\"J\xff Smith\",\"date\":\"2026-01-10\"}", code, sizeof(code)),
                     400);
    assert_int_equal(server_request(f, "POST", "/v1/checks", u->token, "application/json",
                                    "{\"name\":\"J Smith\",\"date\":\"2026-01-10\",\"colour\":1}",
                                    &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "colour"));
    rv_server_response_free(&r);
    assert_int_equal(server_request(f, "POST", "/v1/checks", u->token, "application/json",
                                    "{\"name\":\"J Smith\"}", &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "'date'"));
    rv_server_response_free(&r);
    assert_int_equal(server_request(f, "POST", "/v1/checks", u->token, "application/json",
                                    "{\"name\":7,\"date\":\"2026-01-10\"}", &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "'name'"));
    rv_server_response_free(&r);
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json",
                          "{\"name\":\"J Smith\",\"date\":\"10/01/2026\"}", NULL, 0),
                     400);
    assert_int_equal(call(f, "POST", "/v1/checks", u->token, "application/json",
                          "{\"name\":\"J Smith\",\"date\":\"2026-01-10\",\"date\":\"2026-01-10\"}",
                          NULL, 0),
                     400);
    /* An unknown field's name (10 kB here) comes back clipped to 64 bytes of printable ASCII,
     * marked "...". */
    {
        char *body = malloc(10300), *at, want[80];
        json_t *j;
        const char *msg;
        assert_non_null(body);
        at = body + sprintf(body, "{\"name\":\"J Smith\",\"date\":\"2026-01-10\",\"");
        for (int i = 0; i < 10240; i++) {
            if (i == 10) {
                at += sprintf(at, "\\u0001"); /* a control byte: '?' in the message */
                want[i + 1] = '?';
            } else {
                *at++ = (char)('a' + i % 26);
                if (i < 64)
                    want[i + 1] = (char)('a' + i % 26);
            }
        }
        strcpy(at, "\":1}");
        want[0] = '\'';
        strcpy(want + 65, "...'");
        assert_int_equal(
            server_request(f, "POST", "/v1/checks", u->token, "application/json", body, &r), 0);
        free(body);
        assert_int_equal(r.status, 400);
        assert_true(r.len < 400);
        j = json_loadb(r.body, r.len, 0, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "error")), "unknown_field");
        msg = json_string_value(json_object_get(j, "message"));
        assert_non_null(msg);
        assert_non_null(strstr(msg, want));
        json_decref(j);
        rv_server_response_free(&r);
    }
    assert_int_equal(
        call(f, "POST", "/v1/checks", u->token, "text/plain", "{}", code, sizeof(code)), 415);
    memset(big, ' ', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[0] = '{';
    big[sizeof(big) - 2] = '}';
    assert_int_equal(
        call(f, "POST", "/v1/checks", u->token, "application/json", big, code, sizeof(code)), 413);
    assert_string_equal(code, "body_too_large");
    /* No personal data in any error: the name given never comes back. */
    assert_int_equal(server_request(f, "POST", "/v1/checks", u->token, "application/json",
                                    "{\"name\":\"Zebedee Quux\",\"postcode\":\"NOT A PC\",\"date\":"
                                    "\"2026-01-10\"}",
                                    &r),
                     0);
    assert_int_equal(r.status, 400);
    assert_null(strstr(r.body, "Zebedee"));
    assert_null(strstr(r.body, "NOT A PC"));
    rv_server_response_free(&r);
}

static void test_registrar_auditor_admin(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *reg = &f->users[REGISTRAR], *aud = &f->users[AUDITOR],
                       *adm = &f->users[ADMIN], *chk = &f->users[CHECKER];
    struct rv_server_response r;
    char *csv = NULL, url[128];
    size_t len = 0;
    json_t *j;

    login(f, reg);
    assert_int_equal(rv_server_read_file(rv_test_data_file("ingest/full-small.csv"), &csv, &len),
                     0);
    assert_int_equal(
        call(f, "POST", "/v1/ingest?edition=2025-12-01", reg->token, "text/csv", csv, NULL, 0),
        400);
    assert_int_equal(call(f, "POST", "/v1/ingest?area=AREA1&edition=2025-12-01", reg->token,
                          "application/json", csv, NULL, 0),
                     415);
    assert_int_equal(server_request(f, "POST", "/v1/ingest?area=AREA1&edition=2025-12-01",
                                    reg->token, "text/csv", csv, &r),
                     0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_true(json_integer_value(json_object_get(j, "stored")) > 0);
    json_decref(j);
    rv_server_response_free(&r);
    free(csv);
    assert_int_equal(call(f, "GET", "/v1/stats", reg->token, NULL, NULL, NULL, 0), 200);
    assert_int_equal(call(f, "POST", "/v1/checks", reg->token, "application/json", "{}", NULL, 0),
                     403);

    /* Views made before the ingest are not reused: the new entries are found. */
    login(f, chk);
    assert_int_equal(
        server_request(f, "POST", "/v1/checks", chk->token, "application/json",
                       "{\"name\":\"John Smith\",\"address\":\"10 High Street, Leeds\","
                       "\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-10\"}",
                       &r),
        0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(j, "verdict")), "permissible");
    json_decref(j);
    rv_server_response_free(&r);

    /* A batch, as CSV and as JSON lines. */
    assert_int_equal(
        server_request(f, "POST", "/v1/checks/batch?format=plain", chk->token, "text/csv",
                       "id,name,address,postcode,date\n1,John Smith,10 High Street,LS1 "
                       "4AB,2026-01-10\n2,Nobody Atall,,LS1 4AB,2026-01-10\n3,broken\n",
                       &r),
        0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.content_type, "text/csv"));
    {
        size_t lines = 0;
        for (size_t i = 0; i < r.len; i++)
            lines += r.body[i] == '\n';
        assert_int_equal(lines, 4);
    }
    rv_server_response_free(&r);
    assert_int_equal(
        call(f, "POST", "/v1/checks/batch?format=xml", chk->token, "text/csv", "id\n", NULL, 0),
        400);
    assert_int_equal(call(f, "POST", "/v1/checks/batch", chk->token, "text/csv",
                          "nothing,we,know\n1,2,3\n", NULL, 0),
                     400);

    /* Audit reads. */
    login(f, aud);
    assert_int_equal(server_request(f, "GET", "/v1/audit/checkpoint", aud->token, NULL, NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "regvault/"));
    rv_server_response_free(&r);
    assert_int_equal(
        server_request(f, "GET", "/v1/audit/proof?index=3", aud->token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "index")), 3);
    assert_true(json_is_array(json_object_get(j, "hashes")));
    json_decref(j);
    rv_server_response_free(&r);
    assert_int_equal(call(f, "GET", "/v1/audit/proof", aud->token, NULL, NULL, NULL, 0), 400);
    snprintf(url, sizeof(url), "/v1/audit/consistency?from=2");
    assert_int_equal(call(f, "GET", url, aud->token, NULL, NULL, NULL, 0), 200);
    assert_int_equal(
        call(f, "GET", "/v1/alerts?since=2020-01-01T00:00:00Z", aud->token, NULL, NULL, NULL, 0),
        200);
    assert_int_equal(call(f, "GET", "/v1/alerts?since=yesterday", aud->token, NULL, NULL, NULL, 0),
                     400);
    assert_int_equal(server_request(f, "GET", "/metrics", aud->token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "regvault_http_requests_total{method=\"POST\","
                                   "endpoint=\"/v1/checks\",status=\"200\"}"));
    assert_non_null(strstr(r.body, "regvault_audit_log_entries"));
    assert_null(strstr(r.body, "rvs_"));
    assert_null(strstr(r.body, "Smith"));
    rv_server_response_free(&r);

    /* Admin: users. */
    login(f, adm);
    assert_int_equal(server_request(f, "GET", "/v1/users", adm->token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_int_equal(json_array_size(j), 4);
    json_decref(j);
    rv_server_response_free(&r);
    assert_int_equal(
        server_request(f, "POST", "/v1/users", adm->token, "application/json",
                       "{\"name\":\"newbie\",\"role\":\"researcher\",\"kind\":\"human\"}", &r),
        0);
    assert_int_equal(r.status, 201);
    assert_non_null(strstr(r.body, "otpauth://"));
    rv_server_response_free(&r);
    assert_int_equal(call(f, "POST", "/v1/users", adm->token, "application/json",
                          "{\"name\":\"newbie\",\"role\":\"researcher\",\"kind\":\"human\"}", NULL,
                          0),
                     409);
    assert_int_equal(call(f, "PUT", "/v1/users/newbie/budget", adm->token, "application/json",
                          "{\"budget\":50}", NULL, 0),
                     204);
    assert_int_equal(call(f, "POST", "/v1/users/nobody/disable", adm->token, NULL, NULL, NULL, 0),
                     404);
    /* Disabling a user ends their sessions. */
    assert_int_equal(call(f, "POST", "/v1/users/cheryl/disable", adm->token, NULL, NULL, NULL, 0),
                     204);
    assert_int_equal(call(f, "POST", "/v1/checks", chk->token, "application/json", "{}", NULL, 0),
                     401);
}

/* GET /v1/alerts answers at most limit alerts, oldest first; after= the last one's index
 * gives the next page, so paging through returns every alert once, in order. */
static uint64_t alerts_page(struct server_fixture *f, const char *url, uint64_t *idx, size_t cap,
                            size_t *n)
{
    struct rv_server_response r;
    json_t *j;

    assert_int_equal(server_request(f, "GET", url, f->users[AUDITOR].token, NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    j = json_loadb(r.body, r.len, 0, NULL);
    assert_true(json_is_array(j));
    for (size_t i = 0; i < json_array_size(j); i++) {
        assert_true(*n < cap);
        idx[(*n)++] = (uint64_t)json_integer_value(json_object_get(json_array_get(j, i), "index"));
    }
    rv_server_response_free(&r);
    {
        uint64_t got = json_array_size(j);
        json_decref(j);
        return got;
    }
}

static void test_alerts_pages(void **state)
{
    struct server_fixture *f = *state;
    uint64_t all[64], paged[64];
    size_t nall = 0, npaged = 0;
    char url[128];
    uint64_t got;

    for (int i = 0; i < 5; i++) {
        struct rv_alert a = {0,        RV_ALERT_LOW, "anomaly.volume",
                             "tester", "127.0.0.1",  "a test alert"};
        assert_int_equal(rv_policy_alert(f->gate, &a), 0);
    }
    login(f, &f->users[AUDITOR]);
    (void)alerts_page(f, "/v1/alerts", all, 64, &nall);
    assert_true(nall >= 5);
    /* Pages of 2, each after the last index seen. */
    got = alerts_page(f, "/v1/alerts?limit=2", paged, 64, &npaged);
    assert_int_equal(got, 2);
    while (got == 2) {
        snprintf(url, sizeof(url), "/v1/alerts?limit=2&after=%llu",
                 (unsigned long long)paged[npaged - 1]);
        got = alerts_page(f, url, paged, 64, &npaged);
    }
    assert_int_equal(npaged, nall);
    for (size_t i = 0; i < nall; i++) {
        assert_int_equal(paged[i], all[i]);
        if (i > 0)
            assert_true(all[i] > all[i - 1]);
    }
    snprintf(url, sizeof(url), "/v1/alerts?after=%llu", (unsigned long long)all[nall - 1]);
    npaged = 0;
    assert_int_equal(alerts_page(f, url, paged, 64, &npaged), 0);
    assert_int_equal(
        call(f, "GET", "/v1/alerts?limit=0", f->users[AUDITOR].token, NULL, NULL, NULL, 0), 400);
    assert_int_equal(
        call(f, "GET", "/v1/alerts?limit=10001", f->users[AUDITOR].token, NULL, NULL, NULL, 0),
        400);
    assert_int_equal(
        call(f, "GET", "/v1/alerts?after=last", f->users[AUDITOR].token, NULL, NULL, NULL, 0), 400);
}

/* Last: the log cannot be written, and every answer is 503 and nothing else. */
static void test_audit_unwritable(void **state)
{
    struct server_fixture *f = *state;
    struct rlimit old, tiny = {0, 0};
    char code[64];

    signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    tiny.rlim_max = old.rlim_max;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &tiny), 0);
    assert_int_equal(call(f, "GET", "/healthz", NULL, NULL, NULL, code, sizeof(code)), 503);
    assert_string_equal(code, "audit_unavailable");
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    /* Sticky until reopened. */
    assert_int_equal(call(f, "GET", "/v1/nope", NULL, NULL, NULL, code, sizeof(code)), 503);
    assert_int_equal(call(f, "POST", "/v1/checks", f->users[AUDITOR].token, "application/json",
                          "{}", code, sizeof(code)),
                     503);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routing_and_auth), cmocka_unit_test(test_login_check_logout),
        cmocka_unit_test(test_json_validation),  cmocka_unit_test(test_registrar_auditor_admin),
        cmocka_unit_test(test_alerts_pages),     cmocka_unit_test(test_audit_unwritable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
