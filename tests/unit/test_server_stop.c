/*
 * test_server_stop.c - attacks on what the daemon must stop: a batch that goes on streaming
 * after its principal is disabled by an admin or suspended by the probing limits (it must
 * end with a clear error row, recorded, and answer no further row), sessions that outlive
 * a password change, a reset or a disable (every other session of the principal must end,
 * recorded), a batch with no checkable row that leaves no audit entry, and a path that is
 * no endpoint (it may carry a donor's name) recorded verbatim.
 *
 * The exchanges are driven step by step (rv_srv_begin, rv_srv_body, rv_srv_end and
 * rv_srv_stream from server/inner.h), so that the admin can act between two chunks of one
 * streamed batch, on a real vault with the small test register.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testserver.h"

#include "server/inner.h"

#include <jansson.h>
#include <liboath/oath.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#define NUSERS 7
enum { ADMIN = 0, BCHECK, PCHECK, ECHECK, SESS1, SESS2, SESS3 };

static int call(struct server_fixture *f, const char *method, const char *url, const char *token,
                const char *ctype, const char *body)
{
    struct rv_server_response r;
    int st;

    assert_int_equal(server_request(f, method, url, token, ctype, body, &r), 0);
    st = r.status;
    rv_server_response_free(&r);
    return st;
}

/* Logs u in; changes the issued password first when asked to. The token goes to token. */
static void login(struct server_fixture *f, struct server_user *u,
                  char token[RV_SESSION_TOKEN_LEN + 1])
{
    char body[512];
    json_t *j = server_login(f, u);

    snprintf(token, RV_SESSION_TOKEN_LEN + 1, "%s", json_string_value(json_object_get(j, "token")));
    if (json_is_true(json_object_get(j, "must_change"))) {
        char np[64];
        snprintf(np, sizeof(np), "Correct-Horse-Battery-%u", (unsigned)randombytes_uniform(100000));
        snprintf(body, sizeof(body), "{\"password\":\"%s\",\"new_password\":\"%s\"}", u->password,
                 np);
        assert_int_equal(call(f, "POST", "/v1/session/password", token, "application/json", body),
                         204);
        snprintf(u->password, sizeof(u->password), "%s", np);
    }
    json_decref(j);
}

static int setup(void **state)
{
    static const char *const names[NUSERS][2] = {
        {"ada", "admin"},     {"bcheck", "checker"}, {"pcheck", "checker"},  {"echeck", "checker"},
        {"sess1", "checker"}, {"sess2", "checker"},  {"sess3", "researcher"}};
    struct server_fixture *f = calloc(1, sizeof(*f));
    struct rv_actor admin = {"tester", "admin", "local"};
    struct rv_actor reg = {"tester", "registrar", "local"};
    struct rv_ingest_opts o = {.area = "AREA1", .edition = rv_date_from_ymd(2025, 12, 1)};
    struct rv_ingest_result res;
    struct rv_server_config c;

    if (f == NULL || server_fixture_vault(f, "rv-srvstop", &reg) != 0 ||
        rv_policy_ingest(f->gate, rv_test_data_file("ingest/full-small.csv"), &o, &res) != 0)
        return -1;
    rv_policy_set_actor(f->gate, &admin);
    if (server_fixture_users(f, names, NUSERS) != 0)
        return -1;
    f->client = "192.0.2.44";
    server_fixture_config(f, &c);
    /* Only the no-match rule may fire: a batch of one donor is one sector, in one order. */
    c.policy.probe_sector_max = 100000;
    c.policy.probe_sweep_run = 100000;
    snprintf(f->access_log, sizeof(f->access_log), "%s/access.log", f->top);
    if ((f->log_fd = open(f->access_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0 ||
        server_fixture_start(f, &c) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    server_fixture_free(*state);
    return 0;
}

/* ---- a streamed batch, driven step by step ------------------------------------------- */
struct hsrc {
    const char *auth, *ctype;
};

static const char *h_header(void *ctx, const char *name)
{
    struct hsrc *h = ctx;
    if (strcasecmp(name, "Authorization") == 0)
        return h->auth;
    if (strcasecmp(name, "Content-Type") == 0)
        return h->ctype;
    return NULL;
}

static const char *h_arg(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "format") == 0 ? "plain" : NULL;
}

/* nfound rows of a donor on the register, then nmiss of donors nobody is. */
static char *batch_text(unsigned nfound, unsigned nmiss)
{
    size_t cap = 64 + (size_t)(nfound + nmiss) * 80, len = 0;
    char *t = malloc(cap);

    assert_non_null(t);
    len += (size_t)snprintf(t + len, cap - len, "id,name,address,postcode,date\n");
    for (unsigned i = 0; i < nfound; i++)
        len += (size_t)snprintf(t + len, cap - len, "f%u,John Smith,,LS1 4AB,2026-01-10\n", i);
    for (unsigned i = 0; i < nmiss; i++)
        len += (size_t)snprintf(t + len, cap - len, "m%u,Qen Z%c%cvq,,LS%u %u%cA,2026-01-10\n", i,
                                'a' + (char)(i % 26), 'a' + (char)(i / 26 % 26), 1 + i % 9, i % 10,
                                "ABDEFGHJLNPQRSTUWXY"[i % 19]);
    return t;
}

struct stream {
    struct rv_exchange x;
    struct hsrc h;
    char auth[128];
    char *out;
    size_t len;
};

/* Begins a batch as token and checks its first chunk (rv_srv_end); the status is in s->x.r. */
static void batch_begin(struct server_fixture *f, struct stream *s, const char *token,
                        const char *body)
{
    struct rv_srv_source src = {h_header, h_arg, &s->h};

    memset(s, 0, sizeof(*s));
    snprintf(s->auth, sizeof(s->auth), "Bearer %s", token);
    s->h.auth = s->auth;
    s->h.ctype = "text/csv";
    rv_srv_init(&s->x, f->srv);
    assert_int_equal(rv_srv_begin(&s->x, "POST", "/v1/checks/batch", "192.0.2.44", NULL, &src), 0);
    assert_int_equal(rv_srv_body(&s->x, body, strlen(body)), 0);
    rv_srv_end(&s->x);
}

/* Reads the stream until at least lines lines are in (0: to its end). Returns how many. */
static size_t batch_read(struct stream *s, size_t lines)
{
    char buf[4096];
    ssize_t n;
    size_t nl = 0;

    for (size_t i = 0; i < s->len; i++)
        nl += s->out[i] == '\n';
    while ((lines == 0 || nl < lines) && (n = rv_srv_stream(&s->x, buf, sizeof(buf))) > 0) {
        s->out = realloc(s->out, s->len + (size_t)n + 1);
        assert_non_null(s->out);
        memcpy(s->out + s->len, buf, (size_t)n);
        for (ssize_t i = 0; i < n; i++)
            nl += buf[i] == '\n';
        s->len += (size_t)n;
        s->out[s->len] = '\0';
    }
    return nl;
}

static void batch_end(struct stream *s)
{
    rv_srv_finish(&s->x);
    free(s->out);
}

/* The last line of text (without its newline). */
static const char *last_line(const char *t, size_t len, char *out, size_t outsz)
{
    size_t end = len, start;
    while (end > 0 && t[end - 1] == '\n')
        end--;
    start = end;
    while (start > 0 && t[start - 1] != '\n')
        start--;
    snprintf(out, outsz, "%.*s", (int)(end - start), t + start);
    return out;
}

/* Counts the entries from index from on whose action is action and outcome begins with
 * outcome, for principal. */
static unsigned entries(struct server_fixture *f, uint64_t from, const char *action,
                        const char *principal, const char *outcome)
{
    struct rv_audit_log *log = rv_policy_audit(f->gate);
    unsigned n = 0;

    for (uint64_t i = from; i < rv_audit_size(log); i++) {
        struct rv_audit_record rec;
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        if (strcmp(rec.e.action, action) == 0 && strcmp(rec.e.principal, principal) == 0 &&
            strncmp(rec.e.outcome, outcome, strlen(outcome)) == 0)
            n++;
        rv_audit_record_free(&rec);
    }
    return n;
}

/* An admin disables a checker while its batch streams: the next chunk is not checked, the
 * stream ends with an error row naming the suspension, and the refusal is recorded. */
static void test_batch_stops_when_disabled(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[BCHECK];
    char token[RV_SESSION_TOKEN_LEN + 1], line[512];
    struct stream *s = calloc(1, sizeof(*s));
    char *body = batch_text(700, 0);
    uint64_t at;
    size_t nl;

    login(f, u, token);
    at = rv_audit_size(rv_policy_audit(f->gate));
    batch_begin(f, s, token, body);
    assert_int_equal(s->x.r.status, 200);
    assert_true(s->x.r.stream);
    /* The first chunk (256 rows) is answered; then the admin disables the checker. */
    nl = batch_read(s, 100);
    assert_true(nl >= 100);
    assert_int_equal(rv_policy_user_disable(f->gate, u->name), 0);
    nl = batch_read(s, 0);
    /* header + 256 rows + the error row, and nothing after it */
    assert_int_equal(nl, 1 + 256 + 1);
    last_line(s->out, s->len, line, sizeof(line));
    assert_int_equal(strncmp(line, "error,suspended,", 16), 0);
    assert_non_null(strstr(line, "after 256 rows"));
    assert_int_equal(entries(f, at, "check", u->name, "ok"), 1);
    assert_int_equal(entries(f, at, "check", u->name, "denied: suspended"), 1);
    batch_end(s);
    free(s);
    free(body);
}

/* A batch that probes (donors nobody is) is suspended by the limits in its second chunk:
 * that chunk's answers are withheld, the stream ends with the error row, and nothing else
 * is checked. */
static void test_batch_stops_when_suspended(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[PCHECK];
    char token[RV_SESSION_TOKEN_LEN + 1], line[512];
    struct stream *s = calloc(1, sizeof(*s));
    char *body = batch_text(256, 1000);
    struct rv_principal p;
    uint64_t at;
    size_t nl;

    login(f, u, token);
    at = rv_audit_size(rv_policy_audit(f->gate));
    batch_begin(f, s, token, body);
    assert_int_equal(s->x.r.status, 200);
    nl = batch_read(s, 0);
    last_line(s->out, s->len, line, sizeof(line));
    assert_int_equal(strncmp(line, "error,suspended,", 16), 0);
    /* Only the first chunk was answered: the second suspended the principal. */
    assert_int_equal(nl, 1 + 256 + 1);
    assert_int_equal(entries(f, at, "check", u->name, "withheld: suspended"), 1);
    assert_int_equal(entries(f, at, "check", u->name, "ok"), 2);
    assert_int_equal(entries(f, at, "check", u->name, "denied"), 0);
    assert_int_equal(rv_policy_user_get(f->gate, u->name, &p), 0);
    assert_true(p.suspended);
    batch_end(s);
    free(s);
    free(body);
    /* And the next request is refused before any work. */
    assert_int_equal(
        call(f, "POST", "/v1/checks", token, "application/json",
             "{\"name\":\"John Smith\",\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-10\"}"),
        403);
}

/* A password change ends the principal's other sessions (a thief's) and keeps the one
 * that changed it; recorded. */
static void test_password_change_ends_other_sessions(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[SESS1];
    char a[RV_SESSION_TOKEN_LEN + 1], b[RV_SESSION_TOKEN_LEN + 1], body[256];
    const char *check =
        "{\"name\":\"John Smith\",\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-10\"}";
    uint64_t at;

    login(f, u, a); /* changes the issued password */
    login(f, u, b); /* the second session: the thief's */
    assert_int_equal(call(f, "POST", "/v1/checks", b, "application/json", check), 200);
    at = rv_audit_size(rv_policy_audit(f->gate));
    snprintf(body, sizeof(body), "{\"password\":\"%s\",\"new_password\":\"Another-Long-Pass-%u\"}",
             u->password, (unsigned)randombytes_uniform(100000));
    assert_int_equal(call(f, "POST", "/v1/session/password", a, "application/json", body), 204);
    assert_int_equal(call(f, "POST", "/v1/checks", b, "application/json", check), 401);
    assert_int_equal(call(f, "POST", "/v1/checks", a, "application/json", check), 200);
    assert_int_equal(entries(f, at, "login", u->name, "ended 1 other sessions"), 1);
}

/* An admin's reset and disable end every session of the principal; recorded. */
static void test_reset_and_disable_end_sessions(void **state)
{
    struct server_fixture *f = *state;
    char adm[RV_SESSION_TOKEN_LEN + 1], t2[RV_SESSION_TOKEN_LEN + 1], t3[RV_SESSION_TOKEN_LEN + 1];
    const char *check =
        "{\"name\":\"John Smith\",\"postcode\":\"LS1 4AB\",\"date\":\"2026-01-10\"}";
    uint64_t at;

    login(f, &f->users[ADMIN], adm);
    login(f, &f->users[SESS2], t2);
    login(f, &f->users[SESS3], t3);
    assert_int_equal(call(f, "POST", "/v1/checks", t2, "application/json", check), 200);
    assert_int_equal(call(f, "GET", "/v1/stats", t3, NULL, NULL), 200);
    at = rv_audit_size(rv_policy_audit(f->gate));
    assert_int_equal(call(f, "POST", "/v1/users/sess2/reset", adm, NULL, NULL), 200);
    assert_int_equal(call(f, "POST", "/v1/checks", t2, "application/json", check), 401);
    assert_int_equal(call(f, "POST", "/v1/users/sess3/disable", adm, NULL, NULL), 204);
    assert_int_equal(call(f, "GET", "/v1/stats", t3, NULL, NULL), 401);
    assert_int_equal(entries(f, at, "users", "ada", "ended 1 sessions: reset"), 1);
    assert_int_equal(entries(f, at, "users", "ada", "ended 1 sessions: disabled"), 1);
}

/* Whether any audit entry from index from on, or the access log, holds needle. */
static bool recorded_anywhere(struct server_fixture *f, uint64_t from, const char *needle)
{
    struct rv_audit_log *log = rv_policy_audit(f->gate);
    char buf[65536];
    ssize_t n;
    int fd;
    bool hit = false;

    for (uint64_t i = from; i < rv_audit_size(log) && !hit; i++) {
        struct rv_audit_record rec;
        assert_int_equal(rv_audit_get(log, i, &rec), 0);
        hit = memmem(rec.raw, rec.raw_len, needle, strlen(needle)) != NULL;
        rv_audit_record_free(&rec);
    }
    rv_srv_log_flush(f->srv);
    assert_true((fd = open(f->access_log, O_RDONLY | O_CLOEXEC)) >= 0);
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    return hit || strstr(buf, needle) != NULL;
}

/* A path that is no endpoint is recorded (audit log and access log) only as its length and
 * a keyed hash: someone who types a donor into the address bar leaves no name on a log. A
 * user name segment no principal could have is recorded as the route's pattern. */
static void test_unknown_path_not_recorded(void **state)
{
    struct server_fixture *f = *state;
    char adm[RV_SESSION_TOKEN_LEN + 1];
    uint64_t at = rv_audit_size(rv_policy_audit(f->gate));

    assert_int_equal(call(f, "GET", "/v1/donors/Jane%20Doe%20SW1A%201AA", NULL, NULL, NULL), 404);
    assert_int_equal(call(f, "DELETE", "/v1/checks/Jane-Doe-SW1A1AA", NULL, NULL, NULL), 404);
    assert_int_equal(call(f, "GET", "/v1/users/Jane%20Doe/disable", NULL, NULL, NULL), 405);
    login(f, &f->users[ADMIN], adm);
    assert_int_equal(call(f, "POST", "/v1/users/Jane%20Doe%20SW1A/disable", adm, NULL, NULL), 400);
    assert_false(recorded_anywhere(f, at, "Jane"));
    assert_false(recorded_anywhere(f, at, "SW1A"));
    /* The refusals are on the log all the same. */
    assert_int_equal(entries(f, at, "request", "-", "404"), 2);
    assert_int_equal(entries(f, at, "request", "-", "405"), 1);
    assert_true(recorded_anywhere(f, at, "unknown-path:len=28,id="));
}

/* A batch with no row that can be checked (every row unreadable, or none at all) is still
 * on the audit log as a check by its principal. */
static void test_batch_without_checkable_rows_recorded(void **state)
{
    struct server_fixture *f = *state;
    struct server_user *u = &f->users[ECHECK];
    char token[RV_SESSION_TOKEN_LEN + 1];
    struct stream *s = calloc(1, sizeof(*s));
    uint64_t at;

    login(f, u, token);
    at = rv_audit_size(rv_policy_audit(f->gate));
    batch_begin(
        f, s, token,
        "id,name,address,postcode,date\nx1,,,LS1 4AB,2026-01-10\nx2,John Smith,,,not-a-date\n");
    assert_int_equal(s->x.r.status, 200);
    assert_int_equal(batch_read(s, 0), 3);
    batch_end(s);
    assert_int_equal(entries(f, at, "check", u->name, "ok"), 1);
    at = rv_audit_size(rv_policy_audit(f->gate));
    batch_begin(f, s, token, "id,name,address,postcode,date\n");
    assert_int_equal(s->x.r.status, 200);
    assert_int_equal(batch_read(s, 0), 1);
    batch_end(s);
    assert_int_equal(entries(f, at, "check", u->name, "ok"), 1);
    free(s);
}

/* The pool lets the audit entries of an exchange's end be made durable after the gate has
 * returned only where the answer is the request's whole effect: a request that changes a
 * principal, a session, a budget or the register, or reads the log, must keep the gate's
 * order (entry durable, then the change). A refusal made before the end defers too. */
static void test_only_answer_only_requests_defer(void **state)
{
    static const struct {
        enum rv_op op;
        bool defers;
    } want[] = {
        {OP_NONE, true},          {OP_CHECK, true},       {OP_STATS, true},
        {OP_HEALTHZ, true},       {OP_METRICS, true},     {OP_LOGIN, false},
        {OP_LOGOUT, false},       {OP_PASSWORD, false},   {OP_BATCH, false},
        {OP_INGEST, false},       {OP_CHECKPOINT, false}, {OP_PROOF, false},
        {OP_CONSISTENCY, false},  {OP_USERS_LIST, false}, {OP_USERS_ADD, false},
        {OP_USER_DISABLE, false}, {OP_USER_RESET, false}, {OP_USER_REINSTATE, false},
        {OP_USER_BUDGET, false},  {OP_ALERTS, false},
    };
    struct rv_exchange *x = calloc(1, sizeof(*x));
    (void)state;

    assert_non_null(x);
    assert_int_equal(sizeof(want) / sizeof(want[0]), OP_COUNT);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        x->op = want[i].op;
        x->r.status = 0;
        assert_int_equal(rv_srv_defers(x), want[i].defers);
        x->r.status = 401; /* refused already: rv_srv_end does nothing */
        assert_true(rv_srv_defers(x));
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_stops_when_disabled),
        cmocka_unit_test(test_batch_stops_when_suspended),
        cmocka_unit_test(test_password_change_ends_other_sessions),
        cmocka_unit_test(test_reset_and_disable_end_sessions),
        cmocka_unit_test(test_unknown_path_not_recorded),
        cmocka_unit_test(test_batch_without_checkable_rows_recorded),
        cmocka_unit_test(test_only_answer_only_requests_defer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
