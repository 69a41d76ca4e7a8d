/*
 * metrics.c - what the daemon counts and what it logs about each request.
 *
 * Metrics are lock-free counters (Prometheus text format 0.0.4 on /metrics): requests by
 * endpoint and status, latency histograms by endpoint, checks by verdict, logins by
 * outcome, sessions held, and the audit log's size. The access log has one line per
 * request: time, client address, method, path, status, microseconds and principal, never
 * a name, address, postcode, password, token or body. Lines collect in a buffer that is
 * written out when full and about once a second (rv_server_tick), so that logging costs a
 * request no system call.
 */
#include "server/inner.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int statuses[RV_SRV_NSTATUS - 1] = {200, 201, 204, 400, 401, 403, 404, 405,
                                                 409, 413, 415, 422, 429, 500, 503, 0};

const double rv_srv_buckets[RV_SRV_NBUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                0.1,    0.25,  0.5,    1,     2.5,  5,     10};

int rv_srv_status_slot(int status)
{
    for (int i = 0; i < RV_SRV_NSTATUS - 1; i++)
        if (statuses[i] == status)
            return i;
    return RV_SRV_NSTATUS - 1;
}

int rv_srv_status_of_slot(int slot)
{
    return slot >= 0 && slot < RV_SRV_NSTATUS - 1 ? statuses[slot] : 0;
}

void rv_srv_metrics_count(struct rv_server *s, enum rv_op op, int status, int64_t us)
{
    int b = 0;
    double sec = (double)us / 1e6;

    if ((unsigned)op >= OP_COUNT)
        op = OP_NONE;
    atomic_fetch_add_explicit(&s->m.requests[op][rv_srv_status_slot(status)], 1,
                              memory_order_relaxed);
    while (b < RV_SRV_NBUCKETS && sec > rv_srv_buckets[b])
        b++;
    atomic_fetch_add_explicit(&s->m.latency[op][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->m.latency_sum_us[op], (uint64_t)(us > 0 ? us : 0),
                              memory_order_relaxed);
}

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) RV_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        if (b->oom)
            return;
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *nb = realloc(b->p, b->cap * 2);
        if (nb == NULL) {
            b->oom = true;
            return;
        }
        b->p = nb;
        b->cap *= 2;
    }
}

/* Splits "METHOD /path" for labels. */
static void labels(enum rv_op op, char *method, size_t msz, const char **path)
{
    const char *l = rv_srv_op_label(op), *sp = strchr(l, ' ');
    if (sp == NULL) {
        snprintf(method, msz, "other");
        *path = "other";
        return;
    }
    snprintf(method, msz, "%.*s", (int)(sp - l), l);
    *path = sp + 1;
}

int rv_srv_metrics_render(struct rv_server *s, char **out, size_t *len)
{
    static const char *const verdicts[4] = {"permissible", "needs_review", "not_found",
                                            "out_of_scope"};
    static const char *const logins[LOGIN_NOUTCOMES] = {
        "ok", "must_change", "bad", "locked", "suspended", "error", "certificate"};
    struct sbuf b = {malloc(16384), 0, 16384, false};
    char method[16];
    const char *path;

    *out = NULL;
    if (b.p == NULL)
        return RV_ENOMEM;
    sb_printf(&b, "# HELP regvault_http_requests_total HTTP requests answered, by endpoint and "
                  "status.\n# TYPE regvault_http_requests_total counter\n");
    for (int op = 0; op < OP_COUNT; op++)
        for (int st = 0; st < RV_SRV_NSTATUS; st++) {
            uint64_t n = atomic_load_explicit(&s->m.requests[op][st], memory_order_relaxed);
            int code = rv_srv_status_of_slot(st);
            if (n == 0)
                continue;
            labels((enum rv_op)op, method, sizeof(method), &path);
            if (code != 0)
                sb_printf(&b,
                          "regvault_http_requests_total{method=\"%s\",endpoint=\"%s\","
                          "status=\"%d\"} %llu\n",
                          method, path, code, (unsigned long long)n);
            else
                sb_printf(&b,
                          "regvault_http_requests_total{method=\"%s\",endpoint=\"%s\","
                          "status=\"other\"} %llu\n",
                          method, path, (unsigned long long)n);
        }
    sb_printf(&b, "# HELP regvault_http_request_duration_seconds Time from the request's "
                  "headers to its answer, by endpoint.\n# TYPE "
                  "regvault_http_request_duration_seconds histogram\n");
    for (int op = 0; op < OP_COUNT; op++) {
        uint64_t cum = 0, total = 0;
        for (int i = 0; i <= RV_SRV_NBUCKETS; i++)
            total += atomic_load_explicit(&s->m.latency[op][i], memory_order_relaxed);
        if (total == 0)
            continue;
        labels((enum rv_op)op, method, sizeof(method), &path);
        for (int i = 0; i <= RV_SRV_NBUCKETS; i++) {
            cum += atomic_load_explicit(&s->m.latency[op][i], memory_order_relaxed);
            if (i < RV_SRV_NBUCKETS)
                sb_printf(&b,
                          "regvault_http_request_duration_seconds_bucket{method=\"%s\","
                          "endpoint=\"%s\",le=\"%g\"} %llu\n",
                          method, path, rv_srv_buckets[i], (unsigned long long)cum);
            else
                sb_printf(&b,
                          "regvault_http_request_duration_seconds_bucket{method=\"%s\","
                          "endpoint=\"%s\",le=\"+Inf\"} %llu\n",
                          method, path, (unsigned long long)cum);
        }
        sb_printf(&b,
                  "regvault_http_request_duration_seconds_sum{method=\"%s\",endpoint=\"%s\"} "
                  "%.6f\nregvault_http_request_duration_seconds_count{method=\"%s\","
                  "endpoint=\"%s\"} %llu\n",
                  method, path,
                  (double)atomic_load_explicit(&s->m.latency_sum_us[op], memory_order_relaxed) /
                      1e6,
                  method, path, (unsigned long long)cum);
    }
    sb_printf(&b, "# HELP regvault_checks_total Donors checked, by verdict.\n# TYPE "
                  "regvault_checks_total counter\n");
    for (int i = 0; i < 4; i++)
        sb_printf(&b, "regvault_checks_total{verdict=\"%s\"} %llu\n", verdicts[i],
                  (unsigned long long)atomic_load(&s->m.verdicts[i]));
    sb_printf(&b, "# HELP regvault_logins_total Logins, by outcome.\n# TYPE "
                  "regvault_logins_total counter\n");
    for (int i = 0; i < LOGIN_NOUTCOMES; i++)
        sb_printf(&b, "regvault_logins_total{outcome=\"%s\"} %llu\n", logins[i],
                  (unsigned long long)atomic_load(&s->m.logins[i]));
    sb_printf(&b,
              "# HELP regvault_sessions_active Sessions held.\n# TYPE regvault_sessions_active "
              "gauge\nregvault_sessions_active %zu\n",
              rv_sessions_count(s->sessions));
    sb_printf(&b,
              "# HELP regvault_audit_log_entries Entries in the audit log.\n# TYPE "
              "regvault_audit_log_entries gauge\nregvault_audit_log_entries %llu\n",
              (unsigned long long)rv_audit_size(rv_policy_audit(s->gate)));
    sb_printf(&b,
              "# HELP regvault_audit_failures_total Requests answered 503 because the audit log "
              "could not be written.\n# TYPE regvault_audit_failures_total counter\n"
              "regvault_audit_failures_total %llu\n",
              (unsigned long long)atomic_load(&s->m.audit_failures));
    sb_printf(&b,
              "# HELP regvault_inflight_requests Requests being handled.\n# TYPE "
              "regvault_inflight_requests gauge\nregvault_inflight_requests %ld\n",
              atomic_load(&s->inflight));
    if (b.oom) {
        free(b.p);
        return RV_ENOMEM;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * The access log.
 */
#define LOGBUF 65536

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

/* Caller holds log_lock. */
static void flush_locked(struct rv_server *s)
{
    if (s->loglen > 0 && s->log_fd >= 0)
        write_all(s->log_fd, s->logbuf, s->loglen);
    s->loglen = 0;
}

void rv_srv_log_flush(struct rv_server *s)
{
    if (s->logbuf == NULL)
        return;
    pthread_mutex_lock(&s->log_lock);
    flush_locked(s);
    pthread_mutex_unlock(&s->log_lock);
}

static void append_line(struct rv_server *s, const char *line, size_t n)
{
    if (s->log_fd < 0 || s->logbuf == NULL)
        return;
    pthread_mutex_lock(&s->log_lock);
    if (s->loglen + n > LOGBUF)
        flush_locked(s);
    if (n <= LOGBUF) {
        memcpy(s->logbuf + s->loglen, line, n);
        s->loglen += n;
    }
    pthread_mutex_unlock(&s->log_lock);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and its NUL into out; returns its length. The calendar part is
 * made once a second per thread: gmtime_r takes glibc's time-zone lock, which hundreds of
 * threads would queue on. */
static size_t stamp(char out[64])
{
    static __thread time_t last = -1;
    static __thread char day[40];
    static __thread size_t daylen;
    struct timespec t;
    long ms;

    clock_gettime(CLOCK_REALTIME, &t);
    if (t.tv_sec != last) {
        struct tm tm;
        int n;
        gmtime_r(&t.tv_sec, &tm);
        n = snprintf(day, sizeof(day), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        daylen = n > 0 && (size_t)n < sizeof(day) ? (size_t)n : 0;
        last = t.tv_sec;
    }
    ms = t.tv_nsec / 1000000;
    memcpy(out, day, daylen);
    out[daylen] = '.';
    out[daylen + 1] = (char)('0' + ms / 100);
    out[daylen + 2] = (char)('0' + ms / 10 % 10);
    out[daylen + 3] = (char)('0' + ms % 10);
    out[daylen + 4] = 'Z';
    out[daylen + 5] = '\0';
    return daylen + 5;
}

/* A line of the access log, put together without the printf family (one per request). */
struct lbuf {
    char *p;
    size_t len, cap; /* cap keeps a byte for the newline */
};

static void lb_str(struct lbuf *b, const char *s)
{
    size_t n = strnlen(s, b->cap - b->len);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void lb_chr(struct lbuf *b, char c)
{
    if (b->len < b->cap)
        b->p[b->len++] = c;
}

static void lb_num(struct lbuf *b, uint64_t v)
{
    char d[20];
    size_t n = 0;

    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    while (n > 0)
        lb_chr(b, d[--n]);
}

void rv_srv_log_request(struct rv_server *s, const struct rv_exchange *x, int64_t us)
{
    char line[512];
    struct lbuf b = {line, 0, sizeof(line) - 1};

    if (s->log_fd < 0 || s->logbuf == NULL)
        return;
    b.len = stamp(line);
    lb_chr(&b, ' ');
    lb_str(&b, x->client);
    lb_chr(&b, ' ');
    lb_str(&b, x->method);
    lb_chr(&b, ' ');
    lb_str(&b, x->path);
    lb_chr(&b, ' ');
    if (x->r.status < 0)
        lb_chr(&b, '-');
    lb_num(&b, (uint64_t)(x->r.status < 0 ? -(int64_t)x->r.status : x->r.status));
    lb_chr(&b, ' ');
    if (us < 0)
        lb_chr(&b, '-');
    lb_num(&b, us < 0 ? (uint64_t)0 - (uint64_t)us : (uint64_t)us);
    lb_str(&b, "us ");
    lb_str(&b, x->principal);
    if (x->cut)
        lb_str(&b, " cut"); /* the connection ended before the answer went out whole */
    line[b.len++] = '\n';
    append_line(s, line, b.len);
}

void rv_srv_log_msg(struct rv_server *s, const char *fmt, ...)
{
    char line[600], when[64];
    va_list ap;
    int n;

    (void)stamp(when);
    n = snprintf(line, sizeof(line), "%s regvault serve: ", when);
    va_start(ap, fmt);
    n += vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    append_line(s, line, (size_t)n);
    rv_srv_log_flush(s);
}
