/*
 * handlers.c - the HTTP API of the daemon, independent of sockets: routing, authentication
 * (bearer sessions, pinned client certificates), rate limits, roles, body limits, strict
 * JSON validation, and one handler per endpoint, all through the access gate.
 *
 * Every request is on the audit log before it is answered. An endpoint whose gate action
 * records itself (login, check, ingest, stats, users) is recorded by the gate; everything
 * refused before any gate action (404, 405, 401, 403, 415, 413, 400, 429) and the endpoints
 * without one (logout, /healthz, /metrics) are recorded here as RV_ACT_REQUEST with
 * "METHOD PATH" and the status; audit reads and alert lists as their own actions. When an
 * entry cannot be written the only answer is 503.
 *
 * Nothing personal goes into a log line, a metric, an audit field or an error message: JSON
 * errors give positions and field names, never values.
 */
#include "server/inner.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Whether a gate function is linked in. The daemon was written while the gate's principals,
 * limits and alerts were still being written, and referenced them weakly; every one has
 * landed and is referenced strongly now, so this is always true. */
static bool have(const void *fn)
{
    const void *volatile p = fn;
    return p != NULL;
}
#define ALERTS_LIMIT_DEFAULT 1000u /* GET /v1/alerts: alerts per answer */
#define ALERTS_LIMIT_MAX     10000u
#define HAVE(f)              have((const void *)(uintptr_t)(f))

#define BATCH_CHUNK 256

static const char *const JSON_CT = "application/json";
static const char *const PLACEHOLDER = "-";

/* ------------------------------------------------------------------------------------------
 * Routes.
 */
struct route {
    enum rv_op op;
    const char *method;
    const char *path; /* "*" matches one user name segment */
};

static const struct route routes[] = {
    {OP_LOGIN, "POST", "/v1/session"},
    {OP_LOGOUT, "DELETE", "/v1/session"},
    {OP_PASSWORD, "POST", "/v1/session/password"},
    {OP_CHECK, "POST", "/v1/checks"},
    {OP_BATCH, "POST", "/v1/checks/batch"},
    {OP_INGEST, "POST", "/v1/ingest"},
    {OP_STATS, "GET", "/v1/stats"},
    {OP_CHECKPOINT, "GET", "/v1/audit/checkpoint"},
    {OP_PROOF, "GET", "/v1/audit/proof"},
    {OP_CONSISTENCY, "GET", "/v1/audit/consistency"},
    {OP_USERS_LIST, "GET", "/v1/users"},
    {OP_USERS_ADD, "POST", "/v1/users"},
    {OP_USER_DISABLE, "POST", "/v1/users/*/disable"},
    {OP_USER_RESET, "POST", "/v1/users/*/reset"},
    {OP_USER_REINSTATE, "POST", "/v1/users/*/reinstate"},
    {OP_USER_BUDGET, "PUT", "/v1/users/*/budget"},
    {OP_ALERTS, "GET", "/v1/alerts"},
    {OP_HEALTHZ, "GET", "/healthz"},
    {OP_METRICS, "GET", "/metrics"},
};
#define NROUTES (sizeof(routes) / sizeof(routes[0]))

const char *rv_srv_op_label(enum rv_op op)
{
    static const char *const labels[OP_COUNT] = {
        [OP_NONE] = "other",
        [OP_LOGIN] = "POST /v1/session",
        [OP_LOGOUT] = "DELETE /v1/session",
        [OP_PASSWORD] = "POST /v1/session/password",
        [OP_CHECK] = "POST /v1/checks",
        [OP_BATCH] = "POST /v1/checks/batch",
        [OP_INGEST] = "POST /v1/ingest",
        [OP_STATS] = "GET /v1/stats",
        [OP_CHECKPOINT] = "GET /v1/audit/checkpoint",
        [OP_PROOF] = "GET /v1/audit/proof",
        [OP_CONSISTENCY] = "GET /v1/audit/consistency",
        [OP_USERS_LIST] = "GET /v1/users",
        [OP_USERS_ADD] = "POST /v1/users",
        [OP_USER_DISABLE] = "POST /v1/users/{name}/disable",
        [OP_USER_RESET] = "POST /v1/users/{name}/reset",
        [OP_USER_REINSTATE] = "POST /v1/users/{name}/reinstate",
        [OP_USER_BUDGET] = "PUT /v1/users/{name}/budget",
        [OP_ALERTS] = "GET /v1/alerts",
        [OP_HEALTHZ] = "GET /healthz",
        [OP_METRICS] = "GET /metrics",
    };
    return (unsigned)op < OP_COUNT ? labels[op] : "other";
}

/* Matches path against pattern; a "*" takes one segment into seg. */
static bool path_match(const char *pattern, const char *path, char *seg, size_t segsz)
{
    while (*pattern != '\0') {
        if (*pattern == '*') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= segsz)
                return false;
            memcpy(seg, path, n);
            seg[n] = '\0';
            path += n;
            pattern++;
            continue;
        }
        if (*pattern++ != *path++)
            return false;
    }
    return *path == '\0';
}

/* The op for method and path; OP_NONE with *allow set when the path exists for other
 * methods (405), with *allow NULL when it does not (404). */
static enum rv_op route(const char *method, const char *path, const char **allow, char *seg,
                        size_t segsz)
{
    static const char *const allows[] = {"POST, DELETE", "POST", "GET, POST", "GET", "PUT"};
    bool known = false;
    const char *first = NULL;

    *allow = NULL;
    for (size_t i = 0; i < NROUTES; i++) {
        if (!path_match(routes[i].path, path, seg, segsz))
            continue;
        if (strcmp(method, routes[i].method) == 0)
            return routes[i].op;
        known = true;
        if (first == NULL)
            first = routes[i].path;
    }
    if (known) {
        if (strcmp(first, "/v1/session") == 0)
            *allow = allows[0];
        else if (strcmp(first, "/v1/users") == 0)
            *allow = allows[2];
        else if (strstr(first, "/budget") != NULL)
            *allow = allows[4];
        else if (strncmp(first, "/v1/users/", 10) == 0 || strcmp(first, "/v1/checks") == 0 ||
                 strcmp(first, "/v1/checks/batch") == 0 || strcmp(first, "/v1/ingest") == 0 ||
                 strcmp(first, "/v1/session/password") == 0)
            *allow = allows[1];
        else
            *allow = allows[3];
    }
    return OP_NONE;
}

/* ------------------------------------------------------------------------------------------
 * Small helpers.
 */
int64_t rv_srv_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void iso_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Copies s for logs and audit fields: printable ASCII only, at most outsz - 1 bytes. */
static void safe_copy(char *out, size_t outsz, const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s != '\0' && n + 1 < outsz; s++)
        out[n++] = (*s > 0x20 && *s < 0x7f) ? *s : '?';
    out[n] = '\0';
}

/* The media type of a Content-Type header, lower-cased, without parameters. */
static bool media_is(const char *ct, const char *want)
{
    size_t n = strlen(want);
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, want, n) != 0)
        return false;
    ct += n;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static void set_actor(struct rv_exchange *x, const char *principal, const char *role)
{
    struct rv_actor who;

    if (principal != x->principal)
        snprintf(x->principal, sizeof(x->principal), "%s", principal);
    if (role != x->role)
        snprintf(x->role, sizeof(x->role), "%s", role);
    who.principal = x->principal;
    who.role = x->role;
    who.client = x->client;
    rv_policy_set_actor(x->view->g, &who);
}

/* ------------------------------------------------------------------------------------------
 * Views: one per request in flight, kept for reuse with their check contexts.
 */
static int view_get(struct rv_server *s, struct rv_srv_view **out)
{
    static const struct rv_actor nobody = {"-", "-", "-"};
    struct rv_srv_view *v;
    int rc;

    pthread_mutex_lock(&s->pool_lock);
    if ((v = s->free_views) != NULL)
        s->free_views = v->next;
    pthread_mutex_unlock(&s->pool_lock);
    if (v != NULL && v->gen != atomic_load(&s->view_gen)) {
        (void)rv_policy_close(v->g);
        free(v);
        pthread_mutex_lock(&s->pool_lock);
        s->nviews--;
        pthread_mutex_unlock(&s->pool_lock);
        v = NULL;
    }
    if (v == NULL) {
        if ((v = calloc(1, sizeof(*v))) == NULL)
            return RV_ENOMEM;
        v->gen = atomic_load(&s->view_gen);
        if ((rc = rv_policy_view(s->gate, &nobody, &v->g)) != 0) {
            free(v);
            return rc;
        }
        pthread_mutex_lock(&s->pool_lock);
        s->nviews++;
        pthread_mutex_unlock(&s->pool_lock);
    }
    *out = v;
    return 0;
}

static void view_put(struct rv_server *s, struct rv_srv_view *v)
{
    static const struct rv_actor nobody = {"-", "-", "-"};

    rv_policy_set_actor(v->g, &nobody);
    if (v->gen != atomic_load(&s->view_gen)) {
        (void)rv_policy_close(v->g);
        free(v);
        pthread_mutex_lock(&s->pool_lock);
        s->nviews--;
        pthread_mutex_unlock(&s->pool_lock);
        return;
    }
    pthread_mutex_lock(&s->pool_lock);
    v->next = s->free_views;
    s->free_views = v;
    pthread_mutex_unlock(&s->pool_lock);
}

/* ------------------------------------------------------------------------------------------
 * Answers.
 */
static void resp_set(struct rv_exchange *x, int status, const char *ctype, char *body, size_t len)
{
    if (x->r.body != NULL) {
        sodium_memzero(x->r.body, x->r.len);
        free(x->r.body);
    }
    x->r.status = status;
    x->r.ctype = ctype;
    x->r.body = body;
    x->r.len = len;
    x->r.stream = false;
}

/* o as compact, NUL-terminated JSON text in malloc memory, dumped straight into a buffer of
 * the right size (no intermediate string to copy and free). */
static char *json_text(const json_t *o)
{
    char *t = malloc(4096);
    size_t n;

    if (t == NULL)
        return NULL;
    n = json_dumpb(o, t, 4095, JSON_COMPACT);
    if (n == 0) {
        free(t);
        return NULL;
    }
    if (n > 4095) {
        sodium_memzero(t, 4096);
        free(t);
        if ((t = malloc(n + 1)) == NULL || json_dumpb(o, t, n, JSON_COMPACT) != n) {
            free(t);
            return NULL;
        }
    }
    t[n] = '\0';
    return t;
}

static void reply_json(struct rv_exchange *x, int status, json_t *o)
{
    char *text = o != NULL ? json_text(o) : NULL;

    json_decref(o);
    if (text == NULL) {
        static const char oom[] = "{\"error\":\"internal\",\"message\":\"out of memory\"}";
        resp_set(x, 500, JSON_CT, strdup(oom), sizeof(oom) - 1);
        return;
    }
    resp_set(x, status, JSON_CT, text, strlen(text));
}

static void reply_error(struct rv_exchange *x, int status, const char *code, const char *fmt, ...)
    RV_PRINTF(4, 5);
static void reply_error(struct rv_exchange *x, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_json(x, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

static void reply_unavailable(struct rv_exchange *x)
{
    atomic_fetch_add(&x->s->m.audit_failures, 1);
    x->r.retry_after = -1;
    x->r.www_auth = false;
    x->r.allow = NULL;
    reply_error(x, 503, "audit_unavailable",
                "the audit log cannot be written, so the vault refuses all work; an operator "
                "must check the disk and the permissions of the vault's audit folder");
}

/* Records the request as refused or answered without another gate action. */
static int record(struct rv_exchange *x, enum rv_action a, const char *outcome)
{
    int rc = rv_policy_record(x->view->g, a, x->params, outcome, NULL, 0);
    if (rc == 0)
        x->recorded = true;
    return rc;
}

/* Records a refusal ("401 no token") and answers it; 503 if it cannot be recorded. */
static int refuse(struct rv_exchange *x, int status, const char *code, const char *outcome,
                  const char *fmt, ...) RV_PRINTF(5, 6);
static int refuse(struct rv_exchange *x, int status, const char *code, const char *outcome,
                  const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (record(x, RV_ACT_REQUEST, outcome) != 0) {
        reply_unavailable(x);
        return 1;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(x, status, code, "%s", msg);
    return 1;
}

static int refuse_role(struct rv_exchange *x, enum rv_action a)
{
    if (record(x, a, "denied: role") != 0) {
        reply_unavailable(x);
        return 1;
    }
    reply_error(x, 403, "forbidden", "the role %s may not call %s", x->role,
                rv_srv_op_label(x->op));
    return 1;
}

static void not_available(struct rv_exchange *x)
{
    if (record(x, RV_ACT_REQUEST, "503 not available") != 0) {
        reply_unavailable(x);
        return;
    }
    reply_error(x, 503, "not_available", "this build of regvault cannot do that yet");
}

/* Maps an error from a gate action that recorded itself. */
static void reply_gate_error(struct rv_exchange *x, int err)
{
    switch (err) {
    case RV_EAUDIT:
        reply_unavailable(x);
        break;
    case RV_EDENIED:
        reply_error(x, 403, "forbidden", "the role %s may not call %s", x->role,
                    rv_srv_op_label(x->op));
        break;
    case RV_ESUSPENDED:
        reply_error(x, 403, "suspended",
                    "this principal is suspended or disabled; ask an admin to reinstate it");
        break;
    case RV_ENOTFOUND:
        reply_error(x, 404, "not_found", "no such principal: check the name");
        break;
    case RV_EEXIST:
        reply_error(x, 409, "exists", "a principal of that name exists: choose another name");
        break;
    case RV_EINVAL:
        reply_error(x, 400, "invalid", "a value is not acceptable (%s)", rv_strerror(err));
        break;
    default:
        reply_error(x, 500, "internal", "the request failed (%s); the server's log says more",
                    rv_strerror(err));
        rv_srv_log_msg(x->s, "%s failed: %s", rv_srv_op_label(x->op), rv_strerror(err));
        break;
    }
}

/* ------------------------------------------------------------------------------------------
 * JSON bodies: an object with known fields only, each of the right type.
 */
enum ftype { F_STR, F_BOOL, F_UINT };
/* The most bytes of an unknown field's name an error message repeats. */
#define FIELD_ECHO_MAX 64
struct field {
    const char *name;
    enum ftype type;
    bool required;
};

static json_t *parse_object(struct rv_exchange *x, const struct field *f, size_t nf)
{
    json_error_t err;
    json_t *o, *v;
    const char *key;

    if (x->len == 0) {
        refuse(x, 400, "bad_request", "400 empty body", "the body is empty: send a JSON object");
        return NULL;
    }
    if (!rv_utf8_valid(x->buf, x->len)) {
        refuse(x, 400, "bad_request", "400 invalid utf-8",
               "the body is not valid UTF-8: send JSON in UTF-8");
        return NULL;
    }
    if ((o = json_loadb(x->buf, x->len, JSON_REJECT_DUPLICATES, &err)) == NULL) {
        refuse(x, 400, "bad_request", "400 malformed json",
               "the body is not well-formed JSON (line %d, column %d): send one JSON object",
               err.line, err.column);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        refuse(x, 400, "bad_request", "400 not an object", "the body must be a JSON object");
        return NULL;
    }
    json_object_foreach(o, key, v)
    {
        size_t i;
        char name[FIELD_ECHO_MAX + 4];
        for (i = 0; i < nf && strcmp(key, f[i].name) != 0; i++)
            ;
        if (i == nf) {
            /* The name goes back clipped, printable ASCII only, marked when clipped: a
             * client's name of any length (up to the body's cap) makes a short message. */
            safe_copy(name, FIELD_ECHO_MAX + 1, key);
            if (strlen(key) > FIELD_ECHO_MAX)
                memcpy(name + FIELD_ECHO_MAX, "...", 4);
            json_decref(o);
            refuse(x, 400, "unknown_field", "400 unknown field",
                   "unknown field '%s': remove it (see docs/api.md)", name);
            return NULL;
        }
        if ((f[i].type == F_STR && !json_is_string(v)) ||
            (f[i].type == F_BOOL && !json_is_boolean(v)) ||
            (f[i].type == F_UINT && (!json_is_integer(v) || json_integer_value(v) < 0 ||
                                     json_integer_value(v) > (json_int_t)UINT32_MAX))) {
            json_decref(o);
            refuse(x, 400, "bad_field", "400 bad field", "field '%s' must be %s", f[i].name,
                   f[i].type == F_STR    ? "a string"
                   : f[i].type == F_BOOL ? "true or false"
                                         : "a whole number from 0 to 4294967295");
            return NULL;
        }
    }
    for (size_t i = 0; i < nf; i++)
        if (f[i].required && json_object_get(o, f[i].name) == NULL) {
            json_decref(o);
            refuse(x, 400, "missing_field", "400 missing field", "field '%s' is required",
                   f[i].name);
            return NULL;
        }
    return o;
}

static const char *str_field(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return v != NULL ? json_string_value(v) : NULL;
}

/* ------------------------------------------------------------------------------------------
 * Begin: route, authenticate, admit, authorise, and set up the body.
 */
static enum rv_action op_action(enum rv_op op)
{
    switch (op) {
    case OP_CHECK:
    case OP_BATCH:
        return RV_ACT_CHECK;
    case OP_INGEST:
        return RV_ACT_INGEST;
    case OP_STATS:
        return RV_ACT_STATS;
    case OP_CHECKPOINT:
    case OP_PROOF:
    case OP_CONSISTENCY:
        return RV_ACT_AUDIT_READ;
    case OP_USERS_LIST:
    case OP_USERS_ADD:
    case OP_USER_DISABLE:
    case OP_USER_RESET:
    case OP_USER_REINSTATE:
    case OP_USER_BUDGET:
        return RV_ACT_USERS;
    case OP_ALERTS:
        return RV_ACT_ALERTS;
    default:
        return RV_ACT_REQUEST;
    }
}

static bool needs_auth(enum rv_op op)
{
    return op != OP_LOGIN && op != OP_HEALTHZ && op != OP_NONE;
}

static int admit_client(struct rv_exchange *x);

static int authenticate(struct rv_exchange *x, const char *cert, const struct rv_srv_source *src)
{
    const char *h = src->header(src->ctx, "Authorization");
    struct rv_session_info info;
    int rc;

    if (h == NULL && cert != NULL) {
        struct rv_principal p;
        struct rv_srv_certauth *ca = x->certauth;
        if (ca != NULL && ca->looked_up && ca->ok) {
            set_actor(x, ca->principal, ca->role);
            x->via_cert = x->authed = true;
            return 0;
        }
        if (!HAVE(rv_policy_login_cert)) {
            not_available(x);
            return 1;
        }
        rc = rv_policy_login_cert(x->view->g, cert, x->client, &p);
        if (ca != NULL && rc != RV_EAUDIT) {
            ca->looked_up = true;
            ca->ok = rc == 0;
            snprintf(ca->principal, sizeof(ca->principal), "%s", rc == 0 ? p.name : "");
            snprintf(ca->role, sizeof(ca->role), "%s", rc == 0 ? p.role : "");
        }
        if (rc == RV_EAUDIT) {
            reply_unavailable(x);
            return 1;
        }
        if (rc != 0) {
            atomic_fetch_add(&x->s->m.logins[LOGIN_BAD], 1);
            x->r.www_auth = true;
            reply_error(x, 401, "unauthorized",
                        "this client certificate is not pinned to any enabled service principal");
            return 1;
        }
        atomic_fetch_add(&x->s->m.logins[LOGIN_CERT], 1);
        set_actor(x, p.name, p.role);
        x->via_cert = x->authed = true;
        return 0;
    }
    /* No valid credentials: the address is admitted like any unauthenticated request. */
    if (h == NULL) {
        if (admit_client(x) != 0)
            return 1;
        x->r.www_auth = true;
        return refuse(x, 401, "unauthorized", "401 no token",
                      "no credentials: log in with POST /v1/session and send the token as "
                      "'Authorization: Bearer TOKEN'");
    }
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) == 0) {
        const char *t = h + 7;
        size_t n;
        while (*t == ' ')
            t++;
        n = strlen(t);
        while (n > 0 && t[n - 1] == ' ')
            n--;
        if (rv_sessions_lookup(x->s->sessions, t, n, &info) == 0) {
            memcpy(x->token, t, RV_SESSION_TOKEN_LEN);
            x->token[RV_SESSION_TOKEN_LEN] = '\0';
            x->restricted = info.restricted;
            set_actor(x, info.principal, info.role);
            x->authed = true;
            return 0;
        }
        if (n > 0 && n < 512 && HAVE(rv_policy_honeytoken_token)) {
            char tok[512];
            memcpy(tok, t, n);
            tok[n] = '\0';
            rc = rv_policy_honeytoken_token(x->view->g, tok, x->client);
            sodium_memzero(tok, sizeof(tok));
            if (rc == RV_EAUDIT) {
                reply_unavailable(x);
                return 1;
            }
        }
    }
    /* After the decoy's check (a keyed hash), so that a decoy token from an address over its
     * rate still raises the alarm. */
    if (admit_client(x) != 0)
        return 1;
    x->r.www_auth = true;
    return refuse(x, 401, "unauthorized", "401 bad token",
                  "the token is unknown, expired or revoked: log in again with POST /v1/session");
}

static int admit(struct rv_exchange *x)
{
    int64_t retry = 0;
    int rc;

    if (!HAVE(rv_policy_admit))
        return 0;
    rc = rv_policy_admit(x->view->g, &retry);
    if (rc == 0)
        return 0;
    if (rc == RV_ELIMIT) {
        x->r.retry_after = retry > 0 ? (retry + 999) / 1000 : 1;
        return refuse(x, 429, "rate_limited", "429 rate limit",
                      "too many requests: wait %lld s (Retry-After) and slow down",
                      (long long)x->r.retry_after);
    }
    if (rc == RV_ESUSPENDED)
        return refuse(x, 403, "suspended", "403 suspended",
                      "this principal is suspended or disabled; ask an admin to reinstate it");
    if (rc == RV_EAUDIT) {
        reply_unavailable(x);
        return 1;
    }
    return refuse(x, 500, "internal", "500 admit failed", "the rate limiter failed (%s)",
                  rv_strerror(rc));
}

/* Requests with no principal yet (a login, an unknown path, /healthz) take a token from the
 * client address's bucket before any other work, so that nobody can make the daemon hash
 * passwords or write the log at will. */
static int refuse_admission(struct rv_exchange *x, int rc, int64_t retry)
{
    if (rc == RV_ELIMIT) {
        x->r.retry_after = retry > 0 ? (retry + 999) / 1000 : 1;
        return refuse(x, 429, "rate_limited", "429 client rate limit",
                      "too many requests from this address: wait %lld s (Retry-After) and slow "
                      "down",
                      (long long)x->r.retry_after);
    }
    return refuse(x, 500, "internal", "500 admit failed", "the rate limiter failed (%s)",
                  rv_strerror(rc));
}

static int admit_client(struct rv_exchange *x)
{
    int64_t retry = 0;
    int rc = rv_policy_admit_client(x->view->g, &retry);

    return rc == 0 ? 0 : refuse_admission(x, rc, retry);
}

/* Password hashing (Argon2id, 64 MiB each) runs on at most s->pwhash_max threads at once;
 * past that a login or password change is refused with 503 and Retry-After, recorded, so
 * that parallel logins cannot take the daemon's memory. True when the slot was taken. */
static bool pwhash_enter(struct rv_exchange *x)
{
    if (atomic_fetch_add(&x->s->pwhash_busy, 1) < x->s->pwhash_max)
        return true;
    atomic_fetch_sub(&x->s->pwhash_busy, 1);
    rv_srv_hash_busy(x);
    return false;
}

static void pwhash_leave(struct rv_exchange *x)
{
    atomic_fetch_sub(&x->s->pwhash_busy, 1);
}

/* Roles for the endpoints that have no gate action of their own. */
static int authorise(struct rv_exchange *x)
{
    switch (x->op) {
    case OP_LOGOUT:
        if (x->via_cert)
            return refuse(x, 400, "no_session", "400 no session",
                          "a client certificate has no session to end");
        return 0;
    case OP_PASSWORD:
        if (x->via_cert)
            return refuse(x, 403, "forbidden", "403 forbidden",
                          "a service principal has no password");
        return 0;
    case OP_METRICS:
        if (strcmp(x->role, "admin") == 0 || strcmp(x->role, "auditor") == 0)
            return 0;
        return refuse(x, 403, "forbidden", "403 forbidden",
                      "the role %s may not read the metrics (admin or auditor)", x->role);
    default:
        if (op_action(x->op) != RV_ACT_REQUEST && rv_policy_allowed(x->role, op_action(x->op)) != 0)
            return refuse_role(x, op_action(x->op));
        return 0;
    }
}

static bool parse_u64(const char *s, uint64_t *out)
{
    uint64_t n = 0;
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (n > (UINT64_MAX - 9) / 10)
            return false;
        n = n * 10 + (uint64_t)(*s - '0');
    }
    if (*s != '\0')
        return false;
    *out = n;
    return true;
}

/* "YYYY-MM-DD" or "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC) to ms. */
static bool parse_iso_ms(const char *s, int64_t *out)
{
    char day[11];
    rv_date d;
    int hh = 0, mm = 0, ss = 0, n = 0;

    if (strlen(s) < 10)
        return false;
    memcpy(day, s, 10);
    day[10] = '\0';
    if (rv_date_parse_iso(day, &d) != 0)
        return false;
    s += 10;
    if (*s == 'T' || *s == ' ') {
        if (sscanf(s + 1, "%2d:%2d:%2d%n", &hh, &mm, &ss, &n) != 3 || hh > 23 || mm > 59 || ss > 60)
            return false;
        s += 1 + n;
        if (*s == '.')
            for (s++; *s >= '0' && *s <= '9'; s++)
                ;
        if (*s == 'Z')
            s++;
        else if (strcmp(s, "+00:00") == 0)
            s += 6;
    }
    if (*s != '\0')
        return false;
    *out = ((int64_t)d * 86400 + hh * 3600 + mm * 60 + ss) * 1000;
    return true;
}

/* The spool of an upload: an anonymous file in memory (memfd), never a file on disk, so that
 * a donations batch or a register edition is never in the clear under the vault. Its size
 * is bounded by the endpoint's body cap (rv_srv_body). The readers, which take a path, are
 * handed "/proc/self/fd/N": each opens its own description of it, from the start. */
static int open_spool(struct rv_exchange *x, const char *name)
{
    x->spool_fd = memfd_create(name, MFD_CLOEXEC);
    if (x->spool_fd < 0) {
        x->spool_path[0] = '\0';
        return refuse(x, 500, "internal", "500 spool", "cannot hold the upload in memory (%s)",
                      strerror(errno));
    }
    snprintf(x->spool_path, sizeof(x->spool_path), "/proc/self/fd/%d", x->spool_fd);
    return 0;
}

/* An upload that would take the uploads held in memory past upload_memory_max. */
static int upload_busy(struct rv_exchange *x)
{
    x->r.retry_after = 5;
    return refuse(x, 503, "busy", "503 uploads busy",
                  "too many uploads are held in memory at once: try again later (Retry-After)");
}

/* Content type, length and query of the op; opens the spool file. */
static int setup_body(struct rv_exchange *x, const struct rv_srv_source *src)
{
    const char *ct = src->header(src->ctx, "Content-Type");
    const char *cl = src->header(src->ctx, "Content-Length");
    const char *a;
    uint64_t n;
    bool json = false;

    switch (x->op) {
    case OP_LOGIN:
    case OP_PASSWORD:
    case OP_USERS_ADD:
    case OP_USER_BUDGET:
        json = true;
        x->cap = x->s->cfg.body_max_json;
        break;
    case OP_CHECK:
        json = true;
        x->cap = x->s->cfg.body_max_check;
        break;
    case OP_BATCH:
        x->cap = x->s->cfg.body_max_batch;
        if (!media_is(ct, "text/csv"))
            return refuse(x, 415, "unsupported_media_type", "415 content type",
                          "send the batch as text/csv");
        a = src->arg(src->ctx, "format");
        if (a == NULL || strcmp(a, "auto") == 0)
            x->layout = RV_CHECK_LAYOUT_AUTO;
        else if (strcmp(a, "ec") == 0)
            x->layout = RV_CHECK_LAYOUT_EC;
        else if (strcmp(a, "plain") == 0)
            x->layout = RV_CHECK_LAYOUT_PLAIN;
        else
            return refuse(x, 400, "bad_query", "400 bad format",
                          "format must be ec, plain or auto");
        a = src->header(src->ctx, "Accept");
        x->ndjson = a != NULL && strstr(a, "application/x-ndjson") != NULL;
        break;
    case OP_INGEST:
        x->cap = x->s->cfg.body_max_ingest;
        if (!media_is(ct, "text/csv") && !media_is(ct, "application/octet-stream") &&
            !media_is(ct, "text/tab-separated-values"))
            return refuse(x, 415, "unsupported_media_type", "415 content type",
                          "send the register file as text/csv or application/octet-stream");
        a = src->arg(src->ctx, "area");
        if (a == NULL || a[0] == '\0' || strlen(a) >= sizeof(x->area))
            return refuse(x, 400, "bad_query", "400 bad area",
                          "area=CODE is required (the register area's code)");
        safe_copy(x->area, sizeof(x->area), a);
        a = src->arg(src->ctx, "edition");
        if (a == NULL || rv_date_parse_iso(a, &x->edition) != 0)
            return refuse(x, 400, "bad_query", "400 bad edition",
                          "edition=YYYY-MM-DD is required (the edition's date)");
        a = src->arg(src->ctx, "alterations");
        if (a != NULL && strcmp(a, "1") != 0 && strcmp(a, "0") != 0 && strcmp(a, "true") != 0 &&
            strcmp(a, "false") != 0)
            return refuse(x, 400, "bad_query", "400 bad alterations", "alterations must be 1 or 0");
        x->alterations = a != NULL && (strcmp(a, "1") == 0 || strcmp(a, "true") == 0);
        a = src->arg(src->ctx, "max_errors");
        if (a != NULL && !parse_u64(a, &x->q_max_errors))
            return refuse(x, 400, "bad_query", "400 bad max_errors",
                          "max_errors must be a whole number");
        break;
    case OP_PROOF:
        if (!parse_u64(src->arg(src->ctx, "index"), &x->q_index))
            return refuse(x, 400, "bad_query", "400 bad index",
                          "index=N is required: the entry's number (from 0)");
        a = src->arg(src->ctx, "size");
        if (a != NULL && (!parse_u64(a, &x->q_size) || x->q_size == 0))
            return refuse(x, 400, "bad_query", "400 bad size",
                          "size must be a tree size (a whole number above 0)");
        x->has_size = a != NULL;
        break;
    case OP_CONSISTENCY:
        if (!parse_u64(src->arg(src->ctx, "from"), &x->q_from) || x->q_from == 0)
            return refuse(x, 400, "bad_query", "400 bad from",
                          "from=M is required: an older tree size (above 0)");
        a = src->arg(src->ctx, "to");
        if (a != NULL && !parse_u64(a, &x->q_to))
            return refuse(x, 400, "bad_query", "400 bad to", "to must be a tree size");
        x->has_to = a != NULL;
        break;
    case OP_ALERTS:
        a = src->arg(src->ctx, "since");
        x->since_ms = 0;
        if (a != NULL && !parse_iso_ms(a, &x->since_ms))
            return refuse(x, 400, "bad_query", "400 bad since",
                          "since must be a UTC time: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ");
        a = src->arg(src->ctx, "after");
        x->has_after = a != NULL;
        if (a != NULL && !parse_u64(a, &x->q_after))
            return refuse(x, 400, "bad_query", "400 bad after",
                          "after must be an alert's index (a whole number)");
        a = src->arg(src->ctx, "limit");
        x->q_limit = ALERTS_LIMIT_DEFAULT;
        if (a != NULL &&
            (!parse_u64(a, &x->q_limit) || x->q_limit == 0 || x->q_limit > ALERTS_LIMIT_MAX))
            return refuse(x, 400, "bad_query", "400 bad limit",
                          "limit must be a whole number from 1 to %u", ALERTS_LIMIT_MAX);
        break;
    default:
        x->cap = 0;
        break;
    }
    if (json && !media_is(ct, JSON_CT))
        return refuse(x, 415, "unsupported_media_type", "415 content type",
                      "send the body as application/json");
    if (cl != NULL && parse_u64(cl, &n) && n > x->cap)
        return refuse(x, 413, "body_too_large", "413 too large",
                      "the body is larger than this endpoint takes (%llu bytes)",
                      (unsigned long long)x->cap);
    if (x->op != OP_BATCH && x->op != OP_INGEST)
        return 0;
    /* Every upload in memory shares one cap (upload_memory_max). A declared length is
     * counted whole now, so that the refusal is an answer before the body is sent; a body
     * without one is counted as it arrives (rv_srv_body). */
    if (cl != NULL && parse_u64(cl, &n)) {
        x->spooled = n;
        x->declared = true;
        if (atomic_fetch_add(&x->s->upload_bytes, n) + n > x->s->cfg.upload_memory_max)
            return upload_busy(x);
    }
    return open_spool(x, x->op == OP_BATCH ? "regvault-batch" : "regvault-ingest");
}

/* What the audit log and the access log may say of the path. A path that is no endpoint
 * can carry anything (a donor's name and postcode typed into the address bar), so it is
 * recorded only as its length and a keyed hash (the key is the daemon's, made at start, so
 * repeats can be told apart within a run and nothing can be read back); a user name segment
 * that no principal could have is recorded as the route's pattern. */
static void path_label(struct rv_exchange *x, const char *allow)
{
    if (x->op == OP_NONE && allow == NULL) {
        uint8_t h[6];
        char hex[13];
        size_t n = strlen(x->path);
        crypto_generichash(h, sizeof(h), (const uint8_t *)x->path, n, x->s->path_key,
                           sizeof(x->s->path_key));
        sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
        snprintf(x->path, sizeof(x->path), "(unknown-path:len=%zu,id=%s)", n, hex);
    } else if (x->target[0] != '\0' && !rv_principal_name_valid(x->target)) {
        const char *label = x->op != OP_NONE ? rv_srv_op_label(x->op) : NULL;
        const char *sp = label != NULL ? strchr(label, ' ') : NULL;
        snprintf(x->path, sizeof(x->path), "%s", sp != NULL ? sp + 1 : "/v1/users/{name}/...");
        snprintf(x->target, sizeof(x->target), "?");
    }
}

void rv_srv_init(struct rv_exchange *x, struct rv_server *s)
{
    memset(x, 0, sizeof(*x));
    x->s = s;
    x->spool_fd = -1;
    x->r.retry_after = -1;
    x->t0_us = rv_srv_now_us();
    strcpy(x->principal, PLACEHOLDER);
    strcpy(x->role, PLACEHOLDER);
}

int rv_srv_begin(struct rv_exchange *x, const char *method, const char *path, const char *client,
                 const char *cert_sha256, const struct rv_srv_source *src)
{
    const char *allow = NULL;
    int rc;

    safe_copy(x->method, sizeof(x->method), method);
    safe_copy(x->path, sizeof(x->path), path);
    safe_copy(x->client, sizeof(x->client), client != NULL ? client : "-");
    x->op = route(method, path, &allow, x->target, sizeof(x->target));
    path_label(x, allow);
    snprintf(x->params, sizeof(x->params), "%s %s", x->method, x->path);
    if ((rc = view_get(x->s, &x->view)) != 0) {
        x->view = NULL;
        reply_error(x, 503, "busy", "the server cannot take this request now: try again");
        return 1;
    }
    set_actor(x, PLACEHOLDER, PLACEHOLDER);
    /* A login is admitted once its body is in (do_login), so that a decoy credential sent
     * from an address over its rate still raises its alarm. */
    if (!needs_auth(x->op) && x->op != OP_LOGIN && admit_client(x) != 0)
        return 1;
    if (x->op == OP_NONE) {
        if (allow != NULL) {
            x->r.allow = allow;
            return refuse(x, 405, "method_not_allowed", "405 method", "%s does not take %s: use %s",
                          x->path, x->method, allow);
        }
        return refuse(x, 404, "not_found", "404 no route",
                      "no such endpoint: see docs/api.md for the API");
    }
    if (needs_auth(x->op)) {
        if (authenticate(x, cert_sha256, src) != 0)
            return 1;
        if (x->restricted && x->op != OP_PASSWORD && x->op != OP_LOGOUT)
            return refuse(x, 403, "password_change_required", "403 password change required",
                          "change your password first with POST /v1/session/password");
        if (admit(x) != 0 || authorise(x) != 0)
            return 1;
    }
    return setup_body(x, src);
}

int rv_srv_body(struct rv_exchange *x, const char *data, size_t len)
{
    if (len > x->cap || x->got > x->cap - len)
        return refuse(x, 413, "body_too_large", "413 too large",
                      "the body is larger than this endpoint takes (%llu bytes)",
                      (unsigned long long)x->cap);
    if (len == 0)
        return 0;
    x->got += len;
    if (x->spool_fd >= 0) {
        if (!x->declared) {
            x->spooled += len;
            if (atomic_fetch_add(&x->s->upload_bytes, len) + len > x->s->cfg.upload_memory_max)
                return upload_busy(x);
        }
        while (len > 0) {
            ssize_t w = write(x->spool_fd, data, len);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return refuse(x, 500, "internal", "500 spool",
                              "cannot hold the upload in memory (%s)", strerror(errno));
            data += w;
            len -= (size_t)w;
        }
        return 0;
    }
    if (x->buf == NULL) {
        x->buf = x->inbuf;
        x->bufcap = sizeof(x->inbuf);
    }
    if (x->len + len > x->bufcap) {
        size_t cap = x->bufcap * 2;
        char *nb;
        while (cap < x->len + len)
            cap *= 2;
        if ((nb = malloc(cap)) == NULL)
            return refuse(x, 500, "internal", "500 memory", "out of memory");
        memcpy(nb, x->buf, x->len);
        sodium_memzero(x->buf, x->bufcap);
        if (x->buf != x->inbuf)
            free(x->buf);
        x->buf = nb;
        x->bufcap = cap;
    }
    memcpy(x->buf + x->len, data, len);
    x->len += len;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Endpoints.
 */

/* A login refused before its password is checked (its address over its rate, or no room to
 * hash it): a decoy's user name and password are still the intruder's, and raise the alarm.
 * Nothing is recorded for a body that is not a login. Nonzero when the answer is set (503
 * audit_unavailable). */
static int refused_login_decoy(struct rv_exchange *x)
{
    json_t *b = x->len > 0 ? json_loadb(x->buf, x->len, JSON_REJECT_DUPLICATES, NULL) : NULL;
    const char *u = b != NULL ? str_field(b, "user") : NULL;
    const char *pw = b != NULL ? str_field(b, "password") : NULL;
    int rc = 0;

    if (u != NULL && pw != NULL &&
        rv_policy_honeytoken_login(x->view->g, u, pw, x->client) == RV_EAUDIT) {
        reply_unavailable(x);
        rc = 1;
    }
    json_decref(b);
    return rc;
}

bool rv_srv_hashes(const struct rv_exchange *x)
{
    if (x->r.status != 0)
        return false;
    switch (x->op) {
    case OP_LOGIN:
    case OP_PASSWORD:
    case OP_USERS_ADD:
    case OP_USER_RESET:
        return true;
    default:
        return false;
    }
}

int rv_srv_hash_admit(struct rv_exchange *x)
{
    int64_t retry = 0;
    int rc;

    if (x->op != OP_LOGIN || x->admitted)
        return 0;
    if (!HAVE(rv_policy_login)) {
        not_available(x);
        return 1;
    }
    /* Refused for its address's rate, before any other work but the decoy's check. */
    if ((rc = rv_policy_admit_client(x->view->g, &retry)) != 0) {
        if (refused_login_decoy(x) == 0)
            refuse_admission(x, rc, retry);
        return 1;
    }
    x->admitted = true;
    return 0;
}

void rv_srv_hash_busy(struct rv_exchange *x)
{
    if (x->op == OP_LOGIN && refused_login_decoy(x) != 0)
        return;
    x->r.retry_after = 1;
    refuse(x, 503, "busy", "503 password hashing busy",
           "the server is checking too many passwords at once: try again in a second "
           "(Retry-After)");
}

static void do_login(struct rv_exchange *x)
{
    static const struct field f[] = {
        {"user", F_STR, true}, {"password", F_STR, true}, {"totp", F_STR, true}};
    struct rv_principal p;
    struct rv_session_info info;
    char token[RV_SESSION_TOKEN_LEN + 1], when[32];
    int64_t retry = 0;
    json_t *o;
    int rc;

    if (!x->admitted && rv_srv_hash_admit(x) != 0)
        return;
    if ((o = parse_object(x, f, 3)) == NULL)
        return;
    if (!pwhash_enter(x)) {
        json_decref(o);
        return;
    }
    memset(&p, 0, sizeof(p));
    rc = rv_policy_login(x->view->g, str_field(o, "user"), str_field(o, "password"),
                         str_field(o, "totp"), x->client, &p, &retry);
    pwhash_leave(x);
    json_decref(o);
    x->recorded = true;
    switch (rc) {
    case 0:
    case RV_ECHANGE:
        set_actor(x, p.name, p.role);
        if (rv_sessions_create(x->s->sessions, p.name, p.role, rc == RV_ECHANGE, token, &info) !=
            0) {
            reply_error(x, 503, "busy", "too many sessions are open: try again later");
            break;
        }
        atomic_fetch_add(&x->s->m.logins[rc == 0 ? LOGIN_OK : LOGIN_CHANGE], 1);
        iso_time(info.created_ms + (int64_t)x->s->cfg.session_max * 1000, when);
        reply_json(x, 201,
                   json_pack("{s:s, s:s, s:I, s:b}", "token", token, "expires_at", when,
                             "idle_timeout", (json_int_t)x->s->cfg.session_idle, "must_change",
                             rc == RV_ECHANGE));
        sodium_memzero(token, sizeof(token));
        break;
    case RV_EAUTH:
        atomic_fetch_add(&x->s->m.logins[LOGIN_BAD], 1);
        reply_error(x, 401, "bad_credentials",
                    "wrong user name, password or code: check them and try again");
        break;
    case RV_ELOCKED:
        atomic_fetch_add(&x->s->m.logins[LOGIN_LOCKED], 1);
        x->r.retry_after = retry > 0 ? retry : 1;
        reply_error(x, 429, "locked",
                    "too many failed logins: wait %lld s (Retry-After) before trying again",
                    (long long)x->r.retry_after);
        break;
    case RV_ESUSPENDED:
        atomic_fetch_add(&x->s->m.logins[LOGIN_SUSPENDED], 1);
        reply_gate_error(x, rc);
        break;
    default:
        atomic_fetch_add(&x->s->m.logins[LOGIN_ERROR], 1);
        reply_gate_error(x, rc);
        break;
    }
    sodium_memzero(&p, sizeof(p));
}

static void do_logout(struct rv_exchange *x)
{
    if (rv_sessions_revoke(x->s->sessions, x->token, strlen(x->token)) != 0)
        x->token[0] = '\0';
    if (record(x, RV_ACT_REQUEST, "204 logout") != 0) {
        reply_unavailable(x);
        return;
    }
    resp_set(x, 204, NULL, NULL, 0);
}

/* Records that n sessions of principal were ended (why: "reset", ...); 503 when the entry
 * cannot be written. Nonzero when the answer is set. */
static int end_sessions(struct rv_exchange *x, enum rv_action a, const char *principal,
                        const char *why, size_t n)
{
    char params[128], outcome[96];

    snprintf(params, sizeof(params), "op=sessions user=%s", principal);
    snprintf(outcome, sizeof(outcome), "ended %zu %ssessions: %s", n,
             a == RV_ACT_LOGIN ? "other " : "", why);
    if (rv_policy_record(x->view->g, a, params, outcome, NULL, 0) != 0) {
        reply_unavailable(x);
        return 1;
    }
    return 0;
}

static void do_password(struct rv_exchange *x)
{
    static const struct field f[] = {{"password", F_STR, true}, {"new_password", F_STR, true}};
    json_t *o;
    int rc;

    if (!HAVE(rv_policy_change_password)) {
        not_available(x);
        return;
    }
    if ((o = parse_object(x, f, 2)) == NULL)
        return;
    if (!pwhash_enter(x)) {
        json_decref(o);
        return;
    }
    rc = rv_policy_change_password(x->view->g, x->principal, str_field(o, "password"),
                                   str_field(o, "new_password"), x->client);
    pwhash_leave(x);
    json_decref(o);
    x->recorded = true;
    switch (rc) {
    case 0:
        if (rv_sessions_unrestrict(x->s->sessions, x->token, strlen(x->token)) != 0)
            x->token[0] = '\0';
        /* Whoever else holds a session of this principal (the old password's thief) is
         * logged out; this session goes on. */
        if (end_sessions(x, RV_ACT_LOGIN, x->principal, "password changed",
                         rv_sessions_revoke_others(x->s->sessions, x->principal, x->token,
                                                   strlen(x->token))) != 0)
            break;
        resp_set(x, 204, NULL, NULL, 0);
        break;
    case RV_EAUTH:
        reply_error(x, 403, "bad_credentials", "the current password is wrong");
        break;
    case RV_EWEAK:
        reply_error(x, 422, "weak_password",
                    "the new password is too weak: use at least 12 characters, not a common "
                    "password, and not containing your user name");
        break;
    case RV_ELOCKED:
        x->r.retry_after = 60;
        reply_error(x, 429, "locked", "too many failed attempts: wait and try again");
        break;
    default:
        reply_gate_error(x, rc);
        break;
    }
}

/* 429 budget_exhausted, with the figures. */
static void reply_budget(struct rv_exchange *x)
{
    uint32_t used = 0, limit = 0;

    if (HAVE(rv_policy_budget) && rv_policy_budget(x->view->g, &used, &limit) != 0)
        used = limit = 0;
    x->r.retry_after = -1;
    reply_error(x, 429, "budget_exhausted",
                "this check would take you past your daily budget: used %u of %u electors "
                "today; ask an admin to raise your budget (regvault user budget) or try "
                "tomorrow",
                used, limit);
}

static void do_check(struct rv_exchange *x)
{
    static const struct field f[] = {{"name", F_STR, true},
                                     {"address", F_STR, false},
                                     {"postcode", F_STR, false},
                                     {"date", F_STR, true},
                                     {"bequest", F_BOOL, false}};
    struct rv_check_query *q = NULL;
    struct rv_check_answer a;
    const struct rv_check_query *qs[1];
    struct rv_diag d;
    const char *addr, *pc;
    json_t *o;
    rv_date date;
    bool bequest;
    int rc;

    memset(&a, 0, sizeof(a));
    if ((o = parse_object(x, f, 5)) == NULL)
        return;
    if (rv_date_parse_iso(str_field(o, "date"), &date) != 0) {
        refuse(x, 400, "bad_field", "400 bad date", "field 'date' must be a date as YYYY-MM-DD");
        goto out;
    }
    bequest = json_is_true(json_object_get(o, "bequest"));
    if ((q = malloc(sizeof(*q))) == NULL) {
        refuse(x, 500, "internal", "500 memory", "out of memory");
        goto out;
    }
    addr = str_field(o, "address");
    pc = str_field(o, "postcode");
    rv_diag_clear(&d);
    if (rv_check_query_init(str_field(o, "name"), addr, pc != NULL ? pc : "", date, q, &d) != 0) {
        refuse(x, 400, "bad_field", "400 bad query", "%s", d.msg);
        goto out;
    }
    if (bequest)
        rv_check_query_set_bequest(q);
    qs[0] = q;
    rc = rv_policy_check(x->view->g, bequest ? "bequest" : "single", qs, 1, &a);
    x->recorded = true;
    if (rc == RV_ELIMIT) {
        reply_budget(x);
        goto out;
    }
    if (rc != 0) {
        reply_gate_error(x, rc);
        goto out;
    }
    if ((unsigned)a.verdict < 4)
        atomic_fetch_add(&x->s->m.verdicts[a.verdict], 1);
    {
        char *text = NULL;
        size_t len = 0;
        if (rv_check_answer_text(q, &a, &text, &len) != 0) {
            reply_error(x, 500, "internal", "out of memory");
            goto out;
        }
        resp_set(x, 200, JSON_CT, text, len); /* wiped and freed with the response */
    }
out:
    json_decref(o);
    rv_check_answer_free(&a);
    if (q != NULL) {
        sodium_memzero(q, sizeof(*q));
        free(q);
    }
}

/* ---- batch ---------------------------------------------------------------------------- */
struct rv_srv_batch {
    struct rv_check_batch *b;
    struct rv_check_row *rows;
    struct rv_check_answer *answers;
    char *out; /* rendered, not yet sent */
    size_t len, pos, cap;
    bool eof, header_done;
    bool failed; /* the audit log failed: the stream ends in error (the connection is cut) */
    unsigned long nrows; /* rows read */
    unsigned long sent;  /* rows answered */
};

static int out_append(struct rv_srv_batch *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 65536;
        char *nb;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((nb = malloc(cap)) == NULL)
            return RV_ENOMEM;
        if (b->out != NULL) {
            memcpy(nb, b->out, b->len);
            sodium_memzero(b->out, b->cap);
            free(b->out);
        }
        b->out = nb;
        b->cap = cap;
    }
    memcpy(b->out + b->len, s, n);
    b->len += n;
    return 0;
}

static int emit(struct rv_exchange *x, const struct rv_check_query *q,
                const struct rv_check_answer *a)
{
    struct rv_srv_batch *b = x->batch;
    char *text = NULL;
    int rc;

    size_t len = 0;

    if (x->ndjson) {
        if ((rc = rv_check_answer_text(q, a, &text, &len)) != 0)
            return rc;
    } else if ((rc = rv_check_answer_csv(q, a, &text)) != 0) {
        return rc;
    } else {
        len = strlen(text);
    }
    rc = out_append(b, text, len);
    if (rc == 0)
        rc = out_append(b, "\n", 1);
    sodium_memzero(text, len);
    free(text);
    if ((unsigned)a->verdict < 4)
        atomic_fetch_add(&x->s->m.verdicts[a->verdict], 1);
    return rc;
}

/* Reads and checks the next chunk of rows into b->out. 0, or the gate's error. */
static int batch_chunk(struct rv_exchange *x)
{
    struct rv_srv_batch *b = x->batch;
    const struct rv_check_query *qs[BATCH_CHUNK];
    struct rv_check_answer a;
    struct rv_diag d;
    size_t n = 0, nq = 0, k = 0;
    int rc = 0;

    rv_diag_clear(&d);
    while (n < BATCH_CHUNK && (rc = rv_check_batch_next(b->b, &b->rows[n], &d)) == 1)
        n++;
    if (rc < 0)
        return rc;
    if (rc == 0)
        b->eof = true;
    b->nrows += n;
    for (size_t i = 0; i < n; i++)
        if (b->rows[i].status == RV_ROW_OK)
            qs[nq++] = &b->rows[i].q;
    memset(b->answers, 0, BATCH_CHUNK * sizeof(*b->answers));
    /* Every chunk is one gate call, recorded, even one with no checkable row (all out of
     * scope or unreadable, or an empty batch): a batch never goes unrecorded, and a
     * suspended principal is refused there too. The end of a batch is not a chunk. */
    if ((nq > 0 || n > 0 || b->nrows == 0) &&
        (rc = rv_policy_check(x->view->g, "batch", qs, nq, b->answers)) != 0)
        goto out;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (b->rows[i].status == RV_ROW_OK) {
            rc = emit(x, &b->rows[i].q, &b->answers[k++]);
            continue;
        }
        rv_check_answer_unmatched(b->rows[i].q.id, b->rows[i].q.line,
                                  b->rows[i].status == RV_ROW_OUT_OF_SCOPE ? RV_VERDICT_OUT_OF_SCOPE
                                                                           : RV_VERDICT_REVIEW,
                                  b->rows[i].error[0] != '\0' ? b->rows[i].error : NULL, &a);
        rc = emit(x, NULL, &a);
        rv_check_answer_free(&a);
    }
    for (size_t i = 0; i < nq; i++)
        rv_check_answer_free(&b->answers[i]);
    if (rc == 0)
        b->sent += n;
out:
    sodium_memzero(b->rows, n * sizeof(*b->rows));
    return rc;
}

static void batch_free(struct rv_srv_batch *b)
{
    if (b == NULL)
        return;
    rv_check_batch_close(b->b);
    if (b->rows != NULL) {
        sodium_memzero(b->rows, BATCH_CHUNK * sizeof(*b->rows));
        free(b->rows);
    }
    free(b->answers);
    if (b->out != NULL) {
        sodium_memzero(b->out, b->cap);
        free(b->out);
    }
    free(b);
}

static void do_batch(struct rv_exchange *x)
{
    struct rv_srv_batch *b;
    struct rv_diag d;
    int rc;

    if ((b = x->batch = calloc(1, sizeof(*b))) == NULL ||
        (b->rows = calloc(BATCH_CHUNK, sizeof(*b->rows))) == NULL ||
        (b->answers = calloc(BATCH_CHUNK, sizeof(*b->answers))) == NULL) {
        refuse(x, 500, "internal", "500 memory", "out of memory");
        return;
    }
    rv_diag_clear(&d);
    rc = rv_check_batch_open(x->spool_path, (enum rv_check_layout)x->layout, &b->b, &d);
    if (rc != 0) {
        refuse(x, 400, "bad_batch", "400 bad batch",
               "the file is not a donations batch: %s (see docs/formats.md)", d.msg);
        return;
    }
    if (!x->ndjson &&
        (rc = out_append(b, rv_check_csv_header(), strlen(rv_check_csv_header()))) == 0)
        rc = out_append(b, "\n", 1);
    if (rc == 0)
        rc = batch_chunk(x);
    x->recorded = true;
    if (rc == RV_ELIMIT) {
        reply_budget(x);
        return;
    }
    if (rc != 0) {
        if (rc == RV_EAUDIT || rc == RV_EDENIED || rc == RV_ESUSPENDED)
            reply_gate_error(x, rc);
        else
            refuse(x, 400, "bad_batch", "400 bad batch", "the batch could not be read (%s)",
                   rv_strerror(rc));
        return;
    }
    resp_set(x, 200, x->ndjson ? "application/x-ndjson" : "text/csv; charset=utf-8", NULL, 0);
    x->r.stream = true;
}

bool rv_srv_stream_pending(const struct rv_exchange *x)
{
    const struct rv_srv_batch *b = x->batch;

    return b != NULL && b->pos == b->len && !b->eof && !b->failed;
}

void rv_srv_stream_fill(struct rv_exchange *x)
{
    struct rv_srv_batch *b = x->batch;
    int rc;

    if (b == NULL || b->pos != b->len || b->eof || b->failed)
        return;
    sodium_memzero(b->out, b->len);
    b->pos = b->len = 0;
    rc = batch_chunk(x);
    if (rc == RV_EAUDIT) {
        b->failed = true;
    } else if (rc != 0) {
        char line[512], why[200];
        const char *code = rc == RV_ELIMIT       ? "budget_exhausted"
                           : rc == RV_ESUSPENDED ? "suspended"
                                                 : "batch_stopped";
        uint32_t used = 0, limit = 0;
        if (rc == RV_ELIMIT && HAVE(rv_policy_budget) &&
            rv_policy_budget(x->view->g, &used, &limit) != 0)
            used = limit = 0;
        if (rc == RV_ESUSPENDED)
            snprintf(why, sizeof(why),
                     "this principal is suspended or disabled, so no further row is "
                     "checked; ask an admin to reinstate it");
        else
            snprintf(why, sizeof(why), "%s (used %u of %u electors today)", rv_strerror(rc), used,
                     limit);
        if (x->ndjson)
            snprintf(line, sizeof(line),
                     "{\"error\":\"%s\",\"message\":\"the batch stopped after %lu rows: "
                     "%s\"}\n",
                     code, b->sent, why);
        else
            snprintf(line, sizeof(line), "error,%s,the batch stopped after %lu rows: %s\n", code,
                     b->sent, why);
        b->eof = true;
        if (out_append(b, line, strlen(line)) != 0)
            b->failed = true;
    }
}

ssize_t rv_srv_stream(struct rv_exchange *x, char *buf, size_t max)
{
    struct rv_srv_batch *b = x->batch;
    size_t n;

    if (b == NULL)
        return 0;
    while (b->pos == b->len) {
        if (b->failed)
            return -1;
        if (b->eof) {
            sodium_memzero(b->out, b->len);
            b->pos = b->len = 0;
            return 0;
        }
        rv_srv_stream_fill(x);
    }
    n = b->len - b->pos < max ? b->len - b->pos : max;
    memcpy(buf, b->out + b->pos, n);
    b->pos += n;
    return (ssize_t)n;
}

/* ---- ingest --------------------------------------------------------------------------- */
static void do_ingest(struct rv_exchange *x)
{
    struct rv_ingest_opts o;
    struct rv_ingest_result res;
    char msg[300];
    int rc;

    memset(&o, 0, sizeof(o));
    memset(&res, 0, sizeof(res));
    o.area = x->area;
    o.edition = x->edition;
    o.alterations = x->alterations;
    o.max_errors = x->q_max_errors;
    rc = rv_policy_ingest(x->view->g, x->spool_path, &o, &res);
    x->recorded = true;
    if (rc == RV_EPARSE || rc == RV_EINVAL || (rc == 0 && res.rejected)) {
        rv_diag_format(&res.first_error, msg, sizeof(msg));
        reply_error(x, 422, "rejected", "the file was rejected, nothing was stored: %s",
                    rc == RV_EINVAL && res.first_error.msg[0] == '\0'
                        ? "the area code is invalid or the edition is older than the area's "
                          "latest"
                        : msg);
        return;
    }
    if (rc != 0) {
        reply_gate_error(x, rc);
        return;
    }
    if (!res.already)
        atomic_fetch_add(&x->s->view_gen, 1);
    reply_json(x, 200,
               json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "rows", (json_int_t)res.st.rows,
                         "stored", (json_int_t)res.st.stored, "unchanged",
                         (json_int_t)res.st.unchanged, "closed", (json_int_t)res.st.closed,
                         "anonymous", (json_int_t)res.st.anonymous, "invalid",
                         (json_int_t)res.st.invalid, "already", res.already));
}

/* ---- stats ---------------------------------------------------------------------------- */
static int stats_one(void *arg, const struct rv_file_stats *s)
{
    static const char *const marks[RV_STAT_MARKERS] = {"F", "N", "L", "M", "G",    "B",
                                                       "A", "P", "E", "K", "other"};
    json_t *arr = arg, *m = json_object(), *o;
    char d[11], f[11], l[11];

    for (int i = 0; i < RV_STAT_MARKERS; i++)
        if (i != 1)
            json_object_set_new(m, marks[i], json_integer((json_int_t)s->markers[i]));
    o = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, "
        "s:I, s:I}",
        "area", s->area, "kind", s->kind == RV_FILE_ALTERATIONS ? "alterations" : "edition",
        "edition", rv_date_format(s->date, d), "effective_from", rv_date_format(s->eff_first, f),
        "effective_to", rv_date_format(s->eff_last, l), "seq", (int)s->seq, "rows",
        (json_int_t)s->rows, "stored", (json_int_t)s->stored, "unchanged", (json_int_t)s->unchanged,
        "ended", (json_int_t)s->closed, "anonymous", (json_int_t)s->anonymous, "invalid",
        (json_int_t)s->invalid, "on_register", (json_int_t)s->on_register, "markers", m,
        "attainers", (json_int_t)s->attainers, "opted_out", (json_int_t)s->optout);
    if (o == NULL)
        return RV_ENOMEM;
    return json_array_append_new(arr, o) == 0 ? 0 : RV_ENOMEM;
}

static void do_stats(struct rv_exchange *x)
{
    json_t *arr = json_array();
    int rc;

    if (arr == NULL) {
        reply_error(x, 500, "internal", "out of memory");
        return;
    }
    rc = rv_policy_stats(x->view->g, stats_one, arr);
    x->recorded = true;
    if (rc != 0) {
        json_decref(arr);
        reply_gate_error(x, rc);
        return;
    }
    reply_json(x, 200, json_pack("{s:o}", "files", arr));
}

/* ---- audit ---------------------------------------------------------------------------- */
/* The latest signed checkpoint (signing one first if the log has grown) and its size. */
static int latest_checkpoint(struct rv_exchange *x, char *note, size_t notesz, uint64_t *size)
{
    struct rv_audit_log *log = rv_policy_audit(x->view->g);
    struct rv_audit_checkpoint cp;
    int rc;

    if ((rc = rv_audit_checkpoint(log)) != 0)
        return rc;
    if ((rc = rv_audit_latest_note(log, note, notesz)) != 0)
        return rc;
    if ((rc = rv_audit_checkpoint_open(note, strlen(note), rv_audit_vkey(log), &cp)) != 0)
        return rc;
    *size = cp.size;
    return 0;
}

static json_t *hashes_json(const uint8_t (*h)[32], size_t n)
{
    json_t *arr = json_array();
    char b64[64];

    for (size_t i = 0; arr != NULL && i < n; i++) {
        sodium_bin2base64(b64, sizeof(b64), h[i], 32, sodium_base64_VARIANT_ORIGINAL);
        json_array_append_new(arr, json_string(b64));
    }
    return arr;
}

static void do_audit(struct rv_exchange *x)
{
    struct rv_audit_log *log = rv_policy_audit(x->view->g);
    struct rv_audit_proof *p = NULL;
    char note[RV_AUDIT_NOTE_MAX], outcome[96], b64[64];
    uint64_t size = 0, n, sz = 0, to = 0;
    const char *bad = NULL;
    int rc;

    /* The latest checkpoint first (signing one if the log has grown), so that the request
     * can be judged, and recorded with its outcome, before it is answered. */
    if ((rc = latest_checkpoint(x, note, sizeof(note), &size)) != 0) {
        if (rc == RV_EAUDIT || record(x, RV_ACT_AUDIT_READ, "error: checkpoint") != 0)
            reply_unavailable(x);
        else
            reply_gate_error(x, rc);
        return;
    }
    n = rv_audit_size(log);
    if (x->op == OP_PROOF) {
        sz = x->has_size ? x->q_size : size;
        if (x->q_index >= sz || sz > n)
            bad = "400 bad index";
        snprintf(outcome, sizeof(outcome), "ok proof index=%llu size=%llu",
                 (unsigned long long)x->q_index, (unsigned long long)sz);
    } else if (x->op == OP_CONSISTENCY) {
        to = x->has_to ? x->q_to : size;
        if (x->q_from > to || to > n)
            bad = "400 bad range";
        snprintf(outcome, sizeof(outcome), "ok consistency from=%llu to=%llu",
                 (unsigned long long)x->q_from, (unsigned long long)to);
    } else {
        snprintf(outcome, sizeof(outcome), "ok checkpoint size=%llu", (unsigned long long)size);
    }
    if (record(x, RV_ACT_AUDIT_READ, bad != NULL ? bad : outcome) != 0) {
        reply_unavailable(x);
        return;
    }
    if (bad != NULL) {
        reply_error(x, 400, "bad_query",
                    x->op == OP_PROOF
                        ? "index must be below size, and size at most the log's size (%llu)"
                        : "from must be at most to, and to at most the log's size (%llu)",
                    (unsigned long long)n);
        return;
    }
    if (x->op == OP_CHECKPOINT) {
        resp_set(x, 200, "text/plain; charset=utf-8", strdup(note), strlen(note));
        if (x->r.body == NULL)
            reply_error(x, 500, "internal", "out of memory");
        return;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
        reply_error(x, 500, "internal", "out of memory");
        return;
    }
    if (x->op == OP_PROOF) {
        if ((rc = rv_audit_prove_inclusion(log, x->q_index, sz, p)) != 0) {
            reply_gate_error(x, rc);
            goto out;
        }
        sodium_bin2base64(b64, sizeof(b64), p->leaf, 32, sodium_base64_VARIANT_ORIGINAL);
        reply_json(x, 200,
                   json_pack("{s:I, s:I, s:s, s:o, s:s}", "index", (json_int_t)x->q_index, "size",
                             (json_int_t)sz, "leaf_hash", b64, "hashes",
                             hashes_json((const uint8_t(*)[32])p->hashes, p->nhashes), "checkpoint",
                             note));
    } else {
        if ((rc = rv_audit_prove_consistency(log, x->q_from, to, p)) != 0) {
            reply_gate_error(x, rc);
            goto out;
        }
        reply_json(x, 200,
                   json_pack("{s:I, s:I, s:o, s:s}", "from", (json_int_t)x->q_from, "to",
                             (json_int_t)to, "hashes",
                             hashes_json((const uint8_t(*)[32])p->hashes, p->nhashes), "checkpoint",
                             note));
    }
out:
    free(p);
}

/* ---- users ---------------------------------------------------------------------------- */
static int user_one(void *arg, const struct rv_principal *p)
{
    json_t *arr = arg;
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:I}", "name", p->name, "role", p->role,
                          "kind", p->kind == RV_PRINCIPAL_SERVICE ? "service" : "human", "disabled",
                          p->disabled, "suspended", p->suspended, "must_change", p->must_change,
                          "budget", (json_int_t)p->budget);
    return o != NULL && json_array_append_new(arr, o) == 0 ? 0 : RV_ENOMEM;
}

static void reply_credentials(struct rv_exchange *x, int status, const char *name, const char *role,
                              struct rv_credentials *c)
{
    json_t *o = role != NULL ? json_pack("{s:s, s:s, s:s, s:s}", "name", name, "role", role,
                                         "password", c->password, "totp_uri", c->totp_uri)
                             : json_pack("{s:s, s:s, s:s}", "name", name, "password", c->password,
                                         "totp_uri", c->totp_uri);
    sodium_memzero(c, sizeof(*c));
    reply_json(x, status, o);
}

static void do_users(struct rv_exchange *x)
{
    static const struct field add[] = {{"name", F_STR, true},
                                       {"role", F_STR, true},
                                       {"kind", F_STR, true},
                                       {"cert_sha256", F_STR, false},
                                       {"budget", F_UINT, false}};
    static const struct field budget[] = {{"budget", F_UINT, true}};
    struct rv_credentials cred;
    struct rv_principal p;
    json_t *o = NULL, *arr;
    const char *s;
    int rc;

    memset(&cred, 0, sizeof(cred));
    if (!HAVE(rv_policy_user_add) || !HAVE(rv_policy_user_list) || !HAVE(rv_policy_user_disable) ||
        !HAVE(rv_policy_user_reset) || !HAVE(rv_policy_user_reinstate) ||
        !HAVE(rv_policy_user_set_budget)) {
        not_available(x);
        return;
    }
    switch (x->op) {
    case OP_USERS_LIST:
        if ((arr = json_array()) == NULL) {
            reply_error(x, 500, "internal", "out of memory");
            return;
        }
        rc = rv_policy_user_list(x->view->g, user_one, arr);
        x->recorded = true;
        if (rc != 0) {
            json_decref(arr);
            reply_gate_error(x, rc);
            return;
        }
        reply_json(x, 200, arr);
        return;
    case OP_USERS_ADD:
        if ((o = parse_object(x, add, 5)) == NULL)
            return;
        memset(&p, 0, sizeof(p));
        s = str_field(o, "kind");
        if (strcmp(s, "human") != 0 && strcmp(s, "service") != 0) {
            json_decref(o);
            refuse(x, 400, "bad_field", "400 bad kind", "field 'kind' must be human or service");
            return;
        }
        p.kind = strcmp(s, "service") == 0 ? RV_PRINCIPAL_SERVICE : RV_PRINCIPAL_HUMAN;
        if (strlen(str_field(o, "name")) >= sizeof(p.name) ||
            strlen(str_field(o, "role")) >= sizeof(p.role) ||
            ((s = str_field(o, "cert_sha256")) != NULL && strlen(s) >= sizeof(p.cert_sha256))) {
            json_decref(o);
            refuse(x, 400, "bad_field", "400 too long",
                   "name is at most 63 characters, role 15, cert_sha256 64 hex digits");
            return;
        }
        strcpy(p.name, str_field(o, "name"));
        strcpy(p.role, str_field(o, "role"));
        if (s != NULL)
            strcpy(p.cert_sha256, s);
        if (json_object_get(o, "budget") != NULL)
            p.budget = (uint32_t)json_integer_value(json_object_get(o, "budget"));
        if (p.kind == RV_PRINCIPAL_SERVICE && p.cert_sha256[0] == '\0') {
            json_decref(o);
            refuse(x, 400, "missing_field", "400 missing field",
                   "field 'cert_sha256' is required for a service principal");
            return;
        }
        json_decref(o);
        rc = rv_policy_user_add(x->view->g, &p, p.kind == RV_PRINCIPAL_HUMAN ? &cred : NULL);
        x->recorded = true;
        if (rc != 0) {
            reply_gate_error(x, rc);
            return;
        }
        if (p.kind == RV_PRINCIPAL_HUMAN)
            reply_credentials(x, 201, p.name, p.role, &cred);
        else
            reply_json(x, 201, json_pack("{s:s, s:s}", "name", p.name, "role", p.role));
        return;
    case OP_USER_RESET:
        rc = rv_policy_user_reset(x->view->g, x->target, &cred);
        x->recorded = true;
        if (rc != 0) {
            reply_gate_error(x, rc);
            return;
        }
        if (end_sessions(x, RV_ACT_USERS, x->target, "reset",
                         rv_sessions_revoke_principal(x->s->sessions, x->target)) != 0) {
            sodium_memzero(&cred, sizeof(cred));
            return;
        }
        reply_credentials(x, 200, x->target, NULL, &cred);
        return;
    case OP_USER_DISABLE:
    case OP_USER_REINSTATE:
        rc = x->op == OP_USER_DISABLE ? rv_policy_user_disable(x->view->g, x->target)
                                      : rv_policy_user_reinstate(x->view->g, x->target);
        x->recorded = true;
        if (rc != 0) {
            reply_gate_error(x, rc);
            return;
        }
        if (x->op == OP_USER_DISABLE &&
            end_sessions(x, RV_ACT_USERS, x->target, "disabled",
                         rv_sessions_revoke_principal(x->s->sessions, x->target)) != 0)
            return;
        resp_set(x, 204, NULL, NULL, 0);
        return;
    case OP_USER_BUDGET:
        if ((o = parse_object(x, budget, 1)) == NULL)
            return;
        rc = rv_policy_user_set_budget(x->view->g, x->target,
                                       (uint32_t)json_integer_value(json_object_get(o, "budget")));
        json_decref(o);
        x->recorded = true;
        if (rc != 0) {
            reply_gate_error(x, rc);
            return;
        }
        resp_set(x, 204, NULL, NULL, 0);
        return;
    default:
        return;
    }
}

/* ---- alerts, health, metrics ---------------------------------------------------------- */
/* GET /v1/alerts answers at most limit alerts (oldest first); a client that gets that many
 * asks again with after= the last one's index. */
struct alert_page {
    json_t *arr;
    uint64_t n, limit;
};

static int alert_one(void *arg, uint64_t index, const struct rv_alert *a)
{
    static const char *const sev[] = {"low", "medium", "high"};
    struct alert_page *pg = arg;
    json_t *arr = pg->arr, *o;
    char when[32];

    if (pg->n == pg->limit)
        return 1; /* a full page: stop reading */
    pg->n++;
    iso_time(a->time_ms, when);
    o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s}", "index", (json_int_t)index, "time", when,
                  "severity", (unsigned)a->severity < 3 ? sev[a->severity] : "unknown", "kind",
                  a->kind != NULL ? a->kind : "", "principal",
                  a->principal != NULL ? a->principal : "", "client",
                  a->client != NULL ? a->client : "", "detail", a->detail != NULL ? a->detail : "");
    return o != NULL && json_array_append_new(arr, o) == 0 ? 0 : RV_ENOMEM;
}

static void do_alerts(struct rv_exchange *x)
{
    struct alert_page pg;
    uint64_t from = 0;
    json_t *arr;
    int rc;

    if (!HAVE(rv_policy_alerts_read_from)) {
        not_available(x);
        return;
    }
    if (record(x, RV_ACT_ALERTS, "ok") != 0) {
        reply_unavailable(x);
        return;
    }
    if ((arr = json_array()) == NULL) {
        reply_error(x, 500, "internal", "out of memory");
        return;
    }
    pg.arr = arr;
    pg.limit = x->q_limit;
    pg.n = 0;
    /* Only the alerts after the last one the client has seen are read at all. */
    if (x->has_after)
        from = x->q_after < UINT64_MAX ? x->q_after + 1 : UINT64_MAX;
    rc = rv_policy_alerts_read_from(rv_policy_dir(x->view->g), x->since_ms, from, alert_one, &pg);
    if (rc > 0)
        rc = 0; /* stopped at a full page */
    if (rc != 0) {
        json_decref(arr);
        reply_gate_error(x, rc);
        return;
    }
    reply_json(x, 200, arr);
}

static void do_metrics(struct rv_exchange *x)
{
    char *text = NULL;
    size_t len = 0;

    if (record(x, RV_ACT_REQUEST, "200 metrics") != 0) {
        reply_unavailable(x);
        return;
    }
    if (rv_srv_metrics_render(x->s, &text, &len) != 0) {
        reply_error(x, 500, "internal", "out of memory");
        return;
    }
    resp_set(x, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

void rv_srv_end(struct rv_exchange *x)
{
    if (x->r.status != 0)
        return;
    switch (x->op) {
    case OP_LOGIN:
        do_login(x);
        break;
    case OP_LOGOUT:
        do_logout(x);
        break;
    case OP_PASSWORD:
        do_password(x);
        break;
    case OP_CHECK:
        do_check(x);
        break;
    case OP_BATCH:
        do_batch(x);
        break;
    case OP_INGEST:
        do_ingest(x);
        break;
    case OP_STATS:
        do_stats(x);
        break;
    case OP_CHECKPOINT:
    case OP_PROOF:
    case OP_CONSISTENCY:
        do_audit(x);
        break;
    case OP_USERS_LIST:
    case OP_USERS_ADD:
    case OP_USER_DISABLE:
    case OP_USER_RESET:
    case OP_USER_REINSTATE:
    case OP_USER_BUDGET:
        do_users(x);
        break;
    case OP_ALERTS:
        do_alerts(x);
        break;
    case OP_HEALTHZ:
        if (record(x, RV_ACT_REQUEST, "200 healthz") != 0)
            reply_unavailable(x);
        else
            reply_json(x, 200, json_pack("{s:s}", "status", "ok"));
        break;
    case OP_METRICS:
        do_metrics(x);
        break;
    default:
        reply_error(x, 500, "internal", "no handler");
        break;
    }
    if (x->r.status == 0)
        reply_error(x, 500, "internal", "no answer");
}

bool rv_srv_defers(const struct rv_exchange *x)
{
    if (x->r.status != 0)
        return true; /* answered (refused) already: rv_srv_end does nothing */
    switch (x->op) {
    case OP_NONE:
    case OP_CHECK:
    case OP_STATS:
    case OP_HEALTHZ:
    case OP_METRICS:
        return true;
    default:
        return false;
    }
}

void rv_srv_release_view(struct rv_exchange *x)
{
    if (x->view != NULL && !x->r.stream) {
        view_put(x->s, x->view);
        x->view = NULL;
    }
}

void rv_srv_audit_failed(struct rv_exchange *x)
{
    /* A certificate login whose entry did not become durable is not remembered for the
     * connection's next requests: they log in (and record it) again. */
    if (x->certauth != NULL)
        x->certauth->looked_up = false;
    batch_free(x->batch);
    x->batch = NULL;
    reply_unavailable(x);
}

void rv_srv_finish(struct rv_exchange *x)
{
    int64_t us = rv_srv_now_us() - x->t0_us;

    if (x->r.status != 0) {
        rv_srv_metrics_count(x->s, x->op, x->r.status, us);
        rv_srv_log_request(x->s, x, us);
    }
    batch_free(x->batch);
    x->batch = NULL;
    if (x->spool_fd >= 0) {
        /* The upload's pages go back to the kernel now, even if a child forked for an alert
         * hook still holds the descriptor until it executes. */
        (void)ftruncate(x->spool_fd, 0);
        close(x->spool_fd);
    }
    atomic_fetch_sub(&x->s->upload_bytes, x->spooled);
    x->spooled = 0;
    x->spool_fd = -1;
    x->spool_path[0] = '\0';
    if (x->view != NULL)
        view_put(x->s, x->view);
    x->view = NULL;
    if (x->buf != NULL) {
        sodium_memzero(x->buf, x->bufcap);
        if (x->buf != x->inbuf)
            free(x->buf);
    }
    x->buf = NULL;
    if (x->r.body != NULL) {
        sodium_memzero(x->r.body, x->r.len);
        free(x->r.body);
    }
    x->r.body = NULL;
    sodium_memzero(x->token, sizeof(x->token));
    x->cut = false;
}

/* ------------------------------------------------------------------------------------------
 * The server without sockets, and requests from bytes.
 */
int rv_server_new(const struct rv_server_config *c, struct rv_gate *gate, int log_fd,
                  rv_server_clock_fn clock, void *clock_ctx, struct rv_server **out)
{
    struct rv_server *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    if (s == NULL)
        return RV_ENOMEM;
    s->cfg = *c;
    s->cfg.policy.alert_file = s->cfg.alert_file[0] != '\0' ? s->cfg.alert_file : NULL;
    s->cfg.policy.alert_command = s->cfg.alert_command[0] != '\0' ? s->cfg.alert_command : NULL;
    s->gate = gate;
    s->log_fd = log_fd;
    s->clock = clock;
    s->clock_ctx = clock_ctx;
    {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        s->pwhash_max = ncpu < 1 ? 1 : ncpu > 64 ? 64 : (int)ncpu;
    }
    randombytes_buf(s->path_key, sizeof(s->path_key));
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_mutex_init(&s->log_lock, NULL);
    pthread_mutex_init(&s->conn_lock, NULL);
    if ((s->logbuf = malloc(65536)) == NULL) {
        rv_server_free(s);
        return RV_ENOMEM;
    }
    if ((rc = rv_sessions_new(c->session_idle, c->session_max, 10000, clock, clock_ctx,
                              &s->sessions)) != 0) {
        rv_server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void rv_server_free(struct rv_server *s)
{
    struct rv_srv_view *v, *next;

    if (s == NULL)
        return;
    rv_srv_log_flush(s);
    for (v = s->free_views; v != NULL; v = next) {
        next = v->next;
        (void)rv_policy_close(v->g);
        free(v);
    }
    rv_sessions_free(s->sessions);
    free(s->logbuf);
    if (s->key_pem != NULL) {
        sodium_memzero(s->key_pem, strlen(s->key_pem));
        free(s->key_pem);
    }
    free(s->cert_pem);
    free(s->ca_pem);
    pthread_mutex_destroy(&s->pool_lock);
    pthread_mutex_destroy(&s->log_lock);
    pthread_mutex_destroy(&s->conn_lock);
    free(s);
}

struct rv_sessions *rv_server_sessions(struct rv_server *s)
{
    return s->sessions;
}

/* Requests from bytes: headers from the array, the query parsed and percent-decoded. */
#define MAXARGS 16
struct bytes_src {
    const struct rv_server_request *r;
    char *args[MAXARGS][2];
    size_t nargs;
};

static const char *bytes_header(void *ctx, const char *name)
{
    struct bytes_src *b = ctx;
    for (size_t i = 0; i < b->r->nheaders; i++)
        if (strcasecmp(b->r->headers[i][0], name) == 0)
            return b->r->headers[i][1];
    return NULL;
}

static const char *bytes_arg(void *ctx, const char *name)
{
    struct bytes_src *b = ctx;
    for (size_t i = 0; i < b->nargs; i++)
        if (strcmp(b->args[i][0], name) == 0)
            return b->args[i][1];
    return NULL;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes %XX (and + as space when plus) in place. */
static void unescape(char *s, bool plus)
{
    char *w = s;
    for (; *s != '\0'; s++) {
        if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *w++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *w++ = plus && *s == '+' ? ' ' : *s;
        }
    }
    *w = '\0';
}

void rv_server_response_free(struct rv_server_response *r)
{
    if (r->body != NULL) {
        sodium_memzero(r->body, r->len);
        free(r->body);
    }
    memset(r, 0, sizeof(*r));
}

int rv_server_handle(struct rv_server *s, const struct rv_server_request *r,
                     struct rv_server_response *out)
{
    struct rv_exchange *x = malloc(sizeof(*x));
    struct bytes_src b = {.r = r};
    struct rv_srv_source src = {bytes_header, bytes_arg, &b};
    char *url = strdup(r->url != NULL ? r->url : "/"), *q;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    out->retry_after = -1;
    if (x == NULL || url == NULL) {
        free(x);
        free(url);
        return RV_ENOMEM;
    }
    rv_srv_init(x, s);
    if ((q = strchr(url, '?')) != NULL) {
        *q++ = '\0';
        while (q != NULL && *q != '\0' && b.nargs < MAXARGS) {
            char *amp = strchr(q, '&'), *eq;
            if (amp != NULL)
                *amp = '\0';
            if ((eq = strchr(q, '=')) != NULL)
                *eq++ = '\0';
            unescape(q, true);
            if (eq != NULL)
                unescape(eq, true);
            b.args[b.nargs][0] = q;
            b.args[b.nargs][1] = eq != NULL ? eq : (char *)"";
            b.nargs++;
            q = amp != NULL ? amp + 1 : NULL;
        }
    }
    unescape(url, false);
    if (rv_srv_begin(x, r->method != NULL ? r->method : "GET", url, r->client, r->cert_sha256,
                     &src) == 0 &&
        rv_srv_body(x, r->body != NULL ? r->body : "", r->body != NULL ? r->body_len : 0) == 0)
        rv_srv_end(x);
    out->status = x->r.status;
    snprintf(out->content_type, sizeof(out->content_type), "%s",
             x->r.ctype != NULL ? x->r.ctype : "");
    snprintf(out->allow, sizeof(out->allow), "%s", x->r.allow != NULL ? x->r.allow : "");
    out->retry_after = x->r.retry_after;
    out->www_authenticate = x->r.www_auth;
    if (x->r.stream) {
        char buf[4096];
        ssize_t n;
        size_t cap = 0;
        while ((n = rv_srv_stream(x, buf, sizeof(buf))) > 0) {
            if (out->len + (size_t)n + 1 > cap) {
                char *nb;
                cap = (out->len + (size_t)n + 1) * 2;
                if ((nb = malloc(cap)) == NULL) {
                    rc = RV_ENOMEM;
                    break;
                }
                if (out->body != NULL) {
                    memcpy(nb, out->body, out->len);
                    sodium_memzero(out->body, out->len);
                    free(out->body);
                }
                out->body = nb;
            }
            memcpy(out->body + out->len, buf, (size_t)n);
            out->len += (size_t)n;
        }
        sodium_memzero(buf, sizeof(buf));
        if (n < 0)
            rc = RV_EAUDIT;
    } else if (x->r.body != NULL) {
        out->body = x->r.body;
        out->len = x->r.len;
        x->r.body = NULL;
    }
    rv_srv_finish(x);
    free(x);
    free(url);
    return rc;
}
