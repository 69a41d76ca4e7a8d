/*
 * test_policy_alert.c - alert delivery: every alert reaches the audit log (and parses back
 * exactly through rv_policy_alerts_read, with --since filtering), the alert file as JSON
 * lines, and the alert command's stdin; a hook that hangs is killed at its limit without
 * ever blocking the caller, and a hook that fails is itself logged, once, without the hook
 * being run for its own failure. Reading alerts back keeps what it read of each log: a
 * repeated read decodes only the entries appended since (counted, not timed), returns what a
 * fresh read would, and starts again when the log at the folder is another log.
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
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int setup(void **state)
{
    return rv_test_vault_setup(state, "rv-alert", 10000);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Opens a gate as a checker from 10.1.2.3, with the settings given (syslog off). */
static struct rv_gate *open_gate(struct rv_test_vault *f, const char *file, const char *cmd,
                                 uint32_t limit_ms)
{
    static struct rv_actor who = {"carol", "checker", "10.1.2.3"};
    struct rv_policy_config c;
    struct rv_diag d;
    struct rv_gate *g = NULL;

    assert_int_equal(rv_policy_open(f->dir, &f->secret, &who, &g), 0);
    rv_policy_config_defaults(&c);
    c.alert_syslog = false;
    c.alert_file = file;
    c.alert_command = cmd;
    if (limit_ms != 0)
        c.alert_command_ms = limit_ms;
    assert_int_equal(rv_policy_configure(g, &c, &d), 0);
    return g;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    return buf;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; s != NULL && *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* Polls until path holds at least want lines, for up to ms. */
static char *wait_lines(const char *path, int want, int ms)
{
    for (int waited = 0;; waited += 20) {
        char *s = slurp(path);
        if ((s != NULL && count_lines(s) >= want) || waited >= ms)
            return s;
        free(s);
        usleep(20000);
    }
}

/* An alert is in the log with its fields exact (odd characters included), in the default
 * alert file as one JSON line, and the actor of the entry is the gate's. */
static void test_log_and_file(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_gate(f, NULL, NULL, 0);
    struct rv_alert a = {.severity = RV_ALERT_HIGH,
                         .kind = "canary",
                         .principal = "mallory",
                         .client = "192.0.2.7",
                         .detail = "canary id 3fa2 seen = 100% sure & \"quoted\""};
    struct rv_audit_record rec;
    struct rv_test_alerts s = {0};
    char path[600], *text;
    json_t *j;
    uint64_t n;

    assert_int_equal(rv_policy_alert(g, &a), 0);
    n = rv_audit_size(rv_policy_audit(g));
    assert_int_equal(rv_audit_get(rv_policy_audit(g), n - 1, &rec), 0);
    assert_string_equal(rec.e.action, "alert");
    assert_string_equal(rec.e.outcome, "raised");
    assert_string_equal(rec.e.principal, "carol");
    assert_string_equal(rec.e.client, "10.1.2.3");
    assert_non_null(strstr(rec.e.params, "v=1 severity=high kind=canary principal=mallory "
                                         "client=192.0.2.7 detail=canary%20id"));
    rv_audit_record_free(&rec);
    assert_int_equal(rv_policy_close(g), 0);

    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.index[0], n - 1);
    assert_int_equal(s.sev[0], RV_ALERT_HIGH);
    assert_string_equal(s.kind[0], "canary");
    assert_string_equal(s.principal[0], "mallory");
    assert_string_equal(s.client[0], "192.0.2.7");
    assert_string_equal(s.detail[0], a.detail);

    snprintf(path, sizeof(path), "%s/alerts.log", f->dir);
    text = slurp(path);
    assert_non_null(text);
    assert_int_equal(count_lines(text), 1);
    j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "canary");
    assert_string_equal(json_string_value(json_object_get(j, "severity")), "high");
    assert_string_equal(json_string_value(json_object_get(j, "principal")), "mallory");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "192.0.2.7");
    assert_string_equal(json_string_value(json_object_get(j, "detail")), a.detail);
    assert_string_equal(json_string_value(json_object_get(j, "actor")), "carol");
    json_decref(j);
    free(text);
}

/* --since: only alerts at or after the time are read. */
static void test_since(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_gate(f, NULL, NULL, 0);
    struct rv_alert a = {.severity = RV_ALERT_LOW, .kind = "anomaly.hours", .detail = "one"};
    struct rv_test_alerts s = {0};
    int64_t mid;

    assert_int_equal(rv_policy_alert(g, &a), 0);
    usleep(30000);
    mid = now_ms();
    usleep(30000);
    a.detail = "two";
    a.severity = RV_ALERT_MEDIUM;
    assert_int_equal(rv_policy_alert(g, &a), 0);
    assert_int_equal(rv_policy_close(g), 0);

    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 2);
    memset(&s, 0, sizeof(s));
    assert_int_equal(rv_policy_alerts_read(f->dir, mid, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.detail[0], "two");
    assert_int_equal(s.sev[0], RV_ALERT_MEDIUM);
    /* Unset principal and client read back as "-". */
    assert_string_equal(s.principal[0], "-");
    memset(&s, 0, sizeof(s));
    assert_int_equal(rv_policy_alerts_read(f->dir, now_ms() + 60000, rv_test_alerts_collect, &s),
                     0);
    assert_int_equal(s.n, 0);
}

/* The hook gets the alert as JSON on stdin; the file named in the settings is used. */
static void test_hook_stdin(void **state)
{
    struct rv_test_vault *f = *state;
    char out[600], file[600], cmd[2000], *text;
    struct rv_alert a = {.severity = RV_ALERT_HIGH,
                         .kind = "honeytoken",
                         .principal = "svc-sync",
                         .client = "203.0.113.9",
                         .detail = "finance share"};
    struct rv_gate *g;
    json_t *j;

    snprintf(out, sizeof(out), "%s/hook.out", f->tmp);
    snprintf(file, sizeof(file), "%s/custom-alerts.log", f->tmp);
    snprintf(cmd, sizeof(cmd), "cat > '%s.tmp' && mv '%s.tmp' '%s'", out, out, out);
    g = open_gate(f, file, cmd, 5000);
    assert_int_equal(rv_policy_alert(g, &a), 0);
    text = wait_lines(out, 1, 5000);
    assert_non_null(text);
    j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "honeytoken");
    assert_string_equal(json_string_value(json_object_get(j, "client")), "203.0.113.9");
    json_decref(j);
    free(text);
    assert_int_equal(rv_policy_close(g), 0);
    text = slurp(file);
    assert_int_equal(count_lines(text), 1);
    free(text);
}

/* Counts hook.failed alerts by severity into s->index[severity]. */
static int count_failed(void *ctx, uint64_t index, const struct rv_alert *a)
{
    struct rv_test_alerts *s = ctx;
    (void)index;
    if (strcmp(a->kind, "hook.failed") == 0 && (unsigned)a->severity < 3)
        s->index[a->severity]++;
    return 0;
}

/* The hook's queues are full (a slow hook and a burst of alerts): no high alert is lost to
 * the hook. High ones run before the others; those past their queue's room reach the hook
 * as one "hook.overflow" alert that counts them, and each postponement is itself a high
 * alert on the log; a medium one past its room is dropped with a medium "hook.failed". */
static void test_hook_queue_full(void **state)
{
    struct rv_test_vault *f = *state;
    char out[600], cmd[2000], detail[32], *text, *over, *med;
    struct rv_alert a = {.kind = "canary", .principal = "carol", .client = "10.1.2.3"};
    struct rv_gate *g;
    struct rv_test_alerts s = {0};
    uint64_t high_failed = 0, medium_failed = 0;

    rv_alert_test_queue_max(2, 2);
    snprintf(out, sizeof(out), "%s/hook.out", f->tmp);
    /* One JSON line per run, appended; slow enough that the queues fill. */
    snprintf(cmd, sizeof(cmd), "sleep 0.3; (cat; echo) >> '%s'", out);
    g = open_gate(f, NULL, cmd, 10000);
    a.detail = detail;
    /* 1 high taken by the runner (or queued), 2 queued, the rest past the room. */
    for (int i = 0; i < 6; i++) {
        a.severity = RV_ALERT_HIGH;
        snprintf(detail, sizeof(detail), "high-%d", i);
        assert_int_equal(rv_policy_alert(g, &a), 0);
    }
    for (int i = 0; i < 4; i++) {
        a.severity = RV_ALERT_MEDIUM;
        snprintf(detail, sizeof(detail), "medium-%d", i);
        assert_int_equal(rv_policy_alert(g, &a), 0);
    }
    assert_int_equal(rv_policy_close(g), 0); /* waits for the queued runs */
    rv_alert_test_queue_max(0, 0);
    text = slurp(out);
    assert_non_null(text);
    /* Every high alert reached the hook, alone or counted in the summary. */
    over = strstr(text, "hook.overflow");
    {
        int alone = 0, counted = 0;
        for (int i = 0; i < 6; i++) {
            snprintf(detail, sizeof(detail), "\"high-%d\"", i);
            alone += strstr(text, detail) != NULL;
        }
        assert_true(alone >= 2);
        if (alone < 6) {
            char want[64];
            assert_non_null(over);
            snprintf(want, sizeof(want), "%d high alerts", 6 - alone);
            assert_non_null(strstr(over, want));
            counted = 6 - alone;
        }
        assert_int_equal(alone + counted, 6);
    }
    /* High ones (and the summary) ran before any medium one. */
    med = strstr(text, "medium-");
    assert_non_null(med);
    if (over != NULL)
        assert_true(over < med);
    assert_true(strstr(text, "high-1") < med);
    free(text);
    /* The log says what the hook missed. */
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, count_failed, &s), 0);
    high_failed = s.index[RV_ALERT_HIGH];
    medium_failed = s.index[RV_ALERT_MEDIUM];
    assert_true(high_failed >= 1);
    assert_true(medium_failed >= 1);
}

/* A hook that hangs does not block the caller, is killed at its limit, and its failure is
 * logged (in the log and the file), once. */
static void test_hook_hangs(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_alert a = {.severity = RV_ALERT_HIGH, .kind = "canary", .detail = "x"};
    struct rv_gate *g = open_gate(f, NULL, "sleep 60", 300);
    struct rv_test_alerts s = {0};
    int64_t t0, t1;
    char path[600], *text;

    t0 = mono_ms();
    assert_int_equal(rv_policy_alert(g, &a), 0);
    t1 = mono_ms();
    assert_true(t1 - t0 < 150); /* well under the limit: nobody waited for the hook */
    /* Closing waits for the hook, but not beyond its limit (and not 60 s). */
    assert_int_equal(rv_policy_close(g), 0);
    assert_true(mono_ms() - t0 < 5000);

    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kind[0], "canary");
    assert_string_equal(s.kind[1], "hook.failed");
    assert_non_null(strstr(s.detail[1], "timed out"));
    snprintf(path, sizeof(path), "%s/alerts.log", f->dir);
    text = slurp(path);
    assert_int_equal(count_lines(text), 2);
    assert_non_null(strstr(text, "hook.failed"));
    free(text);
}

/* A failing hook is logged; its failure is not handed to the hook again. */
static void test_hook_fails(void **state)
{
    struct rv_test_vault *f = *state;
    char count[600], cmd[1400];
    struct rv_alert a = {.severity = RV_ALERT_MEDIUM, .kind = "probing.sweep", .detail = "y"};
    struct rv_test_alerts s = {0};
    struct rv_gate *g;
    char *text;

    snprintf(count, sizeof(count), "%s/runs", f->tmp);
    snprintf(cmd, sizeof(cmd), "echo run >> '%s'; exit 3", count);
    g = open_gate(f, NULL, cmd, 5000);
    assert_int_equal(rv_policy_alert(g, &a), 0);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.kind[1], "hook.failed");
    assert_non_null(strstr(s.detail[1], "status 3"));
    text = slurp(count);
    assert_int_equal(count_lines(text), 1);
    free(text);
}

/* Many alerts from several views at once: every one recorded, none lost. */
struct burst {
    struct rv_gate *view;
};

static void *burst_thread(void *arg)
{
    struct burst *b = arg;
    struct rv_alert a = {.severity = RV_ALERT_LOW, .kind = "anomaly.volume", .detail = "b"};
    for (int i = 0; i < 5; i++)
        if (rv_policy_alert(b->view, &a) != 0)
            return (void *)1;
    return NULL;
}

static void test_threads(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_actor who = {"dave", "checker", "198.51.100.1"};
    struct rv_gate *g = open_gate(f, NULL, "cat > /dev/null", 2000);
    struct burst b[3];
    pthread_t t[3];
    struct rv_test_alerts s = {0};

    for (int i = 0; i < 3; i++) {
        assert_int_equal(rv_policy_view(g, &who, &b[i].view), 0);
        assert_int_equal(pthread_create(&t[i], NULL, burst_thread, &b[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
        assert_int_equal(rv_policy_close(b[i].view), 0);
    }
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 15);
}

/* An alert too long to record whole is still recorded, its detail cut. */
static void test_long_detail(void **state)
{
    struct rv_test_vault *f = *state;
    struct rv_gate *g = open_gate(f, NULL, NULL, 0);
    char *detail = malloc(5001);
    struct rv_alert a = {.severity = RV_ALERT_MEDIUM, .kind = "anomaly.client", .detail = detail};
    struct rv_test_alerts s = {0};

    memset(detail, 'x', 5000);
    detail[5000] = '\0';
    assert_int_equal(rv_policy_alert(g, &a), 0);
    assert_int_equal(rv_policy_close(g), 0);
    assert_int_equal(rv_policy_alerts_read(f->dir, 0, rv_test_alerts_collect, &s), 0);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.kind[0], "anomaly.client");
    assert_true(strlen(s.detail[0]) > 100 && strncmp(s.detail[0], "xxxx", 4) == 0);
    free(detail);
}

/* ---- reading alerts back: what is kept between reads --------------------------------- */

#define ALERT_PARAMS "v=1 severity=high kind=canary principal=p client=c detail=d%20x"

/* A bare audit log in <dir>/audit (no vault: alerts are read without any secret). */
struct bare {
    char *dir;
    char audit[600];
    struct rv_audit_log *log;
};

static void bare_open(struct bare *b, uint8_t seed_byte)
{
    uint8_t seed[32];

    memset(seed, seed_byte, sizeof(seed));
    snprintf(b->audit, sizeof(b->audit), "%s/audit", b->dir);
    assert_int_equal(rv_audit_open(b->audit, seed, NULL, &b->log), 0);
}

/* Appends n entries whose log numbers are first.. (asserted), time base + number; those for
 * which is_alert is true are alerts. */
static void bare_append(struct bare *b, uint64_t first, uint64_t n, int64_t base,
                        bool (*is_alert)(uint64_t))
{
    struct rv_audit_entry *e = calloc(n, sizeof(*e));
    uint64_t at = 0;

    assert_non_null(e);
    for (uint64_t i = 0; i < n; i++) {
        bool al = is_alert(first + i);
        e[i] = (struct rv_audit_entry){.time_ms = base + (int64_t)(first + i),
                                       .principal = "svc",
                                       .role = "checker",
                                       .action = al ? "alert" : "check",
                                       .params = al ? ALERT_PARAMS : "n=1",
                                       .outcome = al ? "raised" : "ok",
                                       .client = "10.0.0.1"};
    }
    assert_int_equal(rv_audit_append_batch(b->log, e, n, &at), 0);
    assert_int_equal(at, first);
    free(e);
}

static void bare_close(struct bare *b)
{
    assert_int_equal(rv_audit_close(b->log), 0);
    b->log = NULL;
}

/* Removes the log folder (for another log at the same place). */
static void bare_remove(struct bare *b)
{
    rv_test_rmtree(b->audit);
}

/* Every alert read, in order. */
struct got {
    uint64_t index[512];
    int64_t time[512];
    size_t n;
};

static int collect_all(void *ctx, uint64_t index, const struct rv_alert *a)
{
    struct got *g = ctx;

    assert_true(g->n < 512);
    assert_string_equal(a->kind, "canary");
    assert_string_equal(a->detail, "d x");
    g->index[g->n] = index;
    g->time[g->n++] = a->time_ms;
    return 0;
}

/* Reads dir's alerts since since_ms; *decoded is how many entries the read decoded. */
static void read_alerts(const char *dir, int64_t since_ms, struct got *g, uint64_t *decoded)
{
    uint64_t d0 = rv_alert_test_decodes();

    memset(g, 0, sizeof(*g));
    assert_int_equal(rv_policy_alerts_read(dir, since_ms, collect_all, g), 0);
    if (decoded != NULL)
        *decoded = rv_alert_test_decodes() - d0;
}

/* What a fresh read must give: every alert among the first size entries with time >=
 * since_ms, in order. */
static void expect_alerts(const struct got *g, uint64_t size, int64_t base, int64_t since_ms,
                          bool (*is_alert)(uint64_t))
{
    size_t k = 0;

    for (uint64_t i = 0; i < size; i++) {
        if (!is_alert(i) || base + (int64_t)i < since_ms)
            continue;
        assert_true(k < g->n);
        assert_int_equal(g->index[k], i);
        assert_int_equal(g->time[k], base + (int64_t)i);
        k++;
    }
    assert_int_equal(k, g->n);
}

static bool every_100th(uint64_t i)
{
    return i % 100 == 7;
}

#define T0 1700000000000LL

/* A repeated read returns what the first did and decodes only the entries appended since
 * (plus one to check that the log is the same, plus the alerts it hands over); alerts
 * appended between reads appear; --since filters as before. The log stays open for writing
 * meanwhile, as the daemon holds it. */
static void test_read_again(void **state)
{
    struct bare b = {.dir = rv_test_tmpdir("rv-alert-read")};
    struct got g;
    uint64_t d;

    (void)state;
    assert_non_null(b.dir);
    bare_open(&b, 1);
    bare_append(&b, 0, 2000, T0, every_100th);

    read_alerts(b.dir, 0, &g, &d);
    expect_alerts(&g, 2000, T0, 0, every_100th);
    assert_int_equal(g.n, 20);
    assert_true(d >= 2000); /* the first read reads the whole log */

    /* Nothing new: the check of the last entry read, and the 20 alerts. */
    read_alerts(b.dir, 0, &g, &d);
    expect_alerts(&g, 2000, T0, 0, every_100th);
    assert_true(d <= 1 + 20);
    /* Since a time: only the alerts at or after it are decoded. */
    read_alerts(b.dir, T0 + 1507, &g, &d);
    expect_alerts(&g, 2000, T0, T0 + 1507, every_100th);
    assert_int_equal(g.n, 5);
    assert_int_equal(g.index[0], 1507);
    assert_true(d <= 1 + 5);
    read_alerts(b.dir, T0 + 1508, &g, &d);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.index[0], 1607);
    /* A poller that has seen everything costs one decode, whatever the log's size. */
    read_alerts(b.dir, T0 + 100000, &g, &d);
    assert_int_equal(g.n, 0);
    assert_true(d <= 1);

    /* Appended since: read, and only they. */
    bare_append(&b, 2000, 500, T0, every_100th);
    read_alerts(b.dir, T0 + 1950, &g, &d);
    expect_alerts(&g, 2500, T0, T0 + 1950, every_100th);
    assert_int_equal(g.n, 5);
    assert_true(d <= 500 + 1 + 5);
    read_alerts(b.dir, 0, &g, &d);
    expect_alerts(&g, 2500, T0, 0, every_100th);
    assert_int_equal(g.n, 25);
    assert_true(d <= 1 + 25);

    bare_close(&b);
    /* Closing signed a checkpoint; the log is the same log. */
    read_alerts(b.dir, T0 + 100000, &g, &d);
    assert_int_equal(g.n, 0);
    assert_true(d <= 1);
    rv_test_rmtree(b.dir);
    free(b.dir);
}

static bool at_10_20(uint64_t i)
{
    return i == 10 || i == 20;
}
static bool at_20(uint64_t i)
{
    return i == 20;
}
static bool at_5_77(uint64_t i)
{
    return i == 5 || i == 77;
}
static bool at_1(uint64_t i)
{
    return i == 1;
}

/* Another log at the same folder is read from its start, whether it is shorter, longer, or
 * of the same length with the same last entry and an earlier one changed. */
static void test_read_other_log(void **state)
{
    struct bare b = {.dir = rv_test_tmpdir("rv-alert-other")};
    struct got g;
    uint64_t d;

    (void)state;
    assert_non_null(b.dir);
    bare_open(&b, 1);
    bare_append(&b, 0, 50, T0, at_10_20);
    bare_close(&b);
    read_alerts(b.dir, 0, &g, NULL);
    expect_alerts(&g, 50, T0, 0, at_10_20);
    assert_int_equal(g.n, 2);

    /* Same key, same length, same last entry; entry 10 is no longer an alert. */
    bare_remove(&b);
    bare_open(&b, 1);
    bare_append(&b, 0, 50, T0, at_20);
    bare_close(&b);
    read_alerts(b.dir, 0, &g, &d);
    expect_alerts(&g, 50, T0, 0, at_20);
    assert_int_equal(g.n, 1);
    assert_true(d >= 50);

    /* Longer, another key and other times. */
    bare_remove(&b);
    bare_open(&b, 2);
    bare_append(&b, 0, 100, T0 + 5000, at_5_77);
    bare_close(&b);
    read_alerts(b.dir, 0, &g, NULL);
    expect_alerts(&g, 100, T0 + 5000, 0, at_5_77);
    assert_int_equal(g.n, 2);

    /* Shorter. */
    bare_remove(&b);
    bare_open(&b, 3);
    bare_append(&b, 0, 3, T0, at_1);
    bare_close(&b);
    read_alerts(b.dir, 0, &g, NULL);
    expect_alerts(&g, 3, T0, 0, at_1);
    assert_int_equal(g.n, 1);

    /* No log at all: an error, as before. */
    bare_remove(&b);
    memset(&g, 0, sizeof(g));
    assert_int_not_equal(rv_policy_alerts_read(b.dir, 0, collect_all, &g), 0);
    rv_test_rmtree(b.dir);
    free(b.dir);
}

static bool every_10th(uint64_t i)
{
    return i % 10 == 3;
}

struct poller {
    const char *dir;
    const char *fail;
};

/* Reads again and again while the log grows: each read is in order, a prefix of the alerts
 * that are there by the end, and never shorter than the read before. */
static void *poll_thread(void *arg)
{
    struct poller *p = arg;
    struct got *g = malloc(sizeof(*g));
    size_t last = 0;

    for (int r = 0; r < 40 && g != NULL && p->fail == NULL; r++) {
        memset(g, 0, sizeof(*g));
        if (rv_policy_alerts_read(p->dir, 0, collect_all, g) != 0)
            p->fail = "read failed";
        for (size_t k = 0; k < g->n && p->fail == NULL; k++)
            if (g->index[k] != 10 * k + 3 || g->time[k] != T0 + (int64_t)g->index[k])
                p->fail = "an alert out of place";
        if (g->n < last)
            p->fail = "fewer alerts than before";
        last = g->n;
    }
    free(g);
    return NULL;
}

static void test_read_while_appending(void **state)
{
    struct bare b = {.dir = rv_test_tmpdir("rv-alert-poll")};
    struct poller p[2];
    pthread_t t[2];
    struct got g;

    (void)state;
    assert_non_null(b.dir);
    bare_open(&b, 1);
    for (int i = 0; i < 2; i++) {
        p[i] = (struct poller){b.dir, NULL};
        assert_int_equal(pthread_create(&t[i], NULL, poll_thread, &p[i]), 0);
    }
    for (uint64_t k = 0; k < 40; k++) {
        bare_append(&b, k * 25, 25, T0, every_10th);
        usleep(1000);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        assert_null(p[i].fail);
    }
    read_alerts(b.dir, 0, &g, NULL);
    expect_alerts(&g, 1000, T0, 0, every_10th);
    assert_int_equal(g.n, 100);
    bare_close(&b);
    rv_test_rmtree(b.dir);
    free(b.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_and_file, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_since, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_hook_stdin, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_hook_hangs, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_hook_fails, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_hook_queue_full, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, rv_test_vault_teardown),
        cmocka_unit_test_setup_teardown(test_long_detail, setup, rv_test_vault_teardown),
        cmocka_unit_test(test_read_again),
        cmocka_unit_test(test_read_other_log),
        cmocka_unit_test(test_read_while_appending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
