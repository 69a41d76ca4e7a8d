/*
 * alert.c - alert delivery: the audit log, syslog, the alert file and the alert command.
 *
 * An alert is first an audit entry (action "alert", outcome "raised"), made durable before
 * anything else happens, so that the log, which is signed and verifiable, is the record of
 * truth; then a line to syslog (LOG_AUTHPRIV; LOG_CRIT for high severity, LOG_WARNING
 * otherwise), a JSON line appended to the alert file, and, when an alert command is
 * configured, the same JSON on the command's standard input.
 *
 * The entry's params are space-separated key=value pairs in a fixed order, each value
 * percent-encoded (RFC 3986: anything but ALPHA DIGIT - . _ ~ becomes %XX), so that they
 * parse back exactly:
 *     v=1 severity=high kind=canary principal=alice client=10.0.0.7 detail=canary%20id%20...
 * The entry's actor is the gate's actor (who was acting when the alert fired); principal and
 * client in params are the alert's subject. Alerts hold no personal data by contract.
 *
 * The command runs on a runner thread of its own, one at a time from a queue, as
 * /bin/sh -c COMMAND in a process group of its own, stdin a pipe, stdout and stderr
 * /dev/null, killed (the whole group) at its time limit. The caller never waits for it. A
 * hook that cannot start, exits non-zero, dies of a signal or times out raises a
 * "hook.failed" alert, which goes to the log, syslog and the file but never to the hook.
 * High alerts have a queue of their own, run first, and are never turned away: when even it
 * is full, they are counted and the hook is given one high "hook.overflow" alert saying how
 * many it missed (each is in the log and the file), and each such postponement is itself a
 * high "hook.failed" alert. A low or medium alert that finds its queue full is not handed to
 * the hook, and that is a medium "hook.failed" alert.
 */
#include "policy/inner.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define QUEUE_MAX  256  /* low and medium hooks waiting to run; past it, new ones fail */
#define HIGH_MAX   1024 /* high hooks waiting; past it, they are summed up in one run */
#define FIELD_MAX  256  /* a decoded principal, client or kind */
#define PARAMS_MAX 2048 /* an alert's params */

/* One hook run: everything copied, since the caller's strings are borrowed. */
struct job {
    struct job *next;
    bool high;
    char *command;
    uint32_t limit_ms;
    char *json;      /* the alert, on the hook's stdin */
    char *kind;      /* for the failure's detail */
    char *principal; /* the actor who was acting, for the failure's entry */
    char *role;
    char *client;
    char *file; /* the alert file, or NULL for <vault>/alerts.log */
    bool syslog;
};

struct rv_alerter {
    struct rv_gate_shared *sh;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job *head, *tail;   /* low and medium, in order */
    struct job *hhead, *htail; /* high, in order, run before the others */
    size_t queued, hqueued;
    /* High alerts that found their queue full: never dropped silently. The first is kept
     * (as the template of one hook run that sums them all up), the others counted. */
    struct job *overflow;
    uint64_t overflowed;
    bool running; /* the runner thread exists */
    bool stop;
    pthread_t thread;
};

/* What one delivery needs, read from the settings under their lock. */
struct settings {
    char *file;
    char *command;
    uint32_t limit_ms;
    bool syslog;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *sev_name(enum rv_alert_severity s)
{
    return s == RV_ALERT_HIGH ? "high" : s == RV_ALERT_MEDIUM ? "medium" : "low";
}

static int sev_parse(const char *s, enum rv_alert_severity *out)
{
    if (strcmp(s, "high") == 0)
        *out = RV_ALERT_HIGH;
    else if (strcmp(s, "medium") == 0)
        *out = RV_ALERT_MEDIUM;
    else if (strcmp(s, "low") == 0)
        *out = RV_ALERT_LOW;
    else
        return RV_EPARSE;
    return 0;
}

static const char *or_dash(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : "-";
}

/* Appends key=<percent-encoded v> to buf at *len. RV_ETOOBIG when it would not fit. */
static int put_field(char *buf, size_t cap, size_t *len, const char *key, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = *len;
    int w = snprintf(buf + n, cap - n, "%s%s=", n > 0 ? " " : "", key);

    if (w < 0 || (size_t)w >= cap - n)
        return RV_ETOOBIG;
    n += (size_t)w;
    for (const unsigned char *p = (const unsigned char *)v; *p != '\0'; p++) {
        bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        if (n + (plain ? 1 : 3) >= cap)
            return RV_ETOOBIG;
        if (plain) {
            buf[n++] = (char)*p;
        } else {
            buf[n++] = '%';
            buf[n++] = hex[*p >> 4];
            buf[n++] = hex[*p & 15];
        }
    }
    buf[n] = '\0';
    *len = n;
    return 0;
}

static int encode_params(const struct rv_alert *a, char *buf, size_t cap)
{
    size_t len = 0;
    int rc;

    buf[0] = '\0';
    if ((rc = put_field(buf, cap, &len, "v", "1")) != 0 ||
        (rc = put_field(buf, cap, &len, "severity", sev_name(a->severity))) != 0 ||
        (rc = put_field(buf, cap, &len, "kind", or_dash(a->kind))) != 0 ||
        (rc = put_field(buf, cap, &len, "principal", or_dash(a->principal))) != 0 ||
        (rc = put_field(buf, cap, &len, "client", or_dash(a->client))) != 0 ||
        (rc = put_field(buf, cap, &len, "detail", a->detail != NULL ? a->detail : "")) != 0)
        return rc;
    return 0;
}

static void fmt_time(int64_t ms, char buf[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* The alert as one line of JSON (no newline), or NULL when out of memory. Free with free(). */
static char *alert_json(const struct rv_alert *a, int64_t ms, const struct rv_actor *who,
                        const char *vault)
{
    char when[64];
    json_t *o;
    char *s;

    fmt_time(ms, when);
    o = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "time", when, "time_ms",
                  (json_int_t)ms, "severity", sev_name(a->severity), "kind", or_dash(a->kind),
                  "principal", or_dash(a->principal), "client", or_dash(a->client), "detail",
                  a->detail != NULL ? a->detail : "", "actor", or_dash(who->principal),
                  "actor_role", or_dash(who->role), "vault", vault);
    if (o == NULL)
        return NULL;
    s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(o);
    return s;
}

static void syslog_open_once(void)
{
    openlog("regvault", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV);
}

static void to_syslog(const struct rv_alert *a, const char *params)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;

    pthread_once(&once, syslog_open_once);
    syslog(LOG_AUTHPRIV | (a->severity == RV_ALERT_HIGH ? LOG_CRIT : LOG_WARNING), "alert %s",
           params);
}

/* Appends line and a newline to the alert file in one write, then fsyncs. */
static int to_file(const char *file, const char *vault, const char *line)
{
    char path[4096];
    size_t n = strlen(line);
    char *buf = NULL;
    int fd = -1, rc = 0;

    if (file == NULL) {
        if ((size_t)snprintf(path, sizeof(path), "%s/alerts.log", vault) >= sizeof(path))
            return RV_ETOOBIG;
        file = path;
    }
    if ((buf = malloc(n + 1)) == NULL)
        return RV_ENOMEM;
    memcpy(buf, line, n);
    buf[n] = '\n';
    fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, buf, n + 1) != (ssize_t)(n + 1) || fsync(fd) != 0)
        rc = RV_EIO;
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

static void settings_free(struct settings *s)
{
    free(s->file);
    free(s->command);
    memset(s, 0, sizeof(*s));
}

static int settings_read(struct rv_gate_shared *sh, struct settings *s)
{
    int rc = 0;

    memset(s, 0, sizeof(*s));
    pthread_mutex_lock(&sh->cfg_lock);
    s->syslog = sh->cfg.alert_syslog;
    s->limit_ms = sh->cfg.alert_command_ms;
    if ((sh->cfg.alert_file != NULL && (s->file = strdup(sh->cfg.alert_file)) == NULL) ||
        (sh->cfg.alert_command != NULL && (s->command = strdup(sh->cfg.alert_command)) == NULL))
        rc = RV_ENOMEM;
    pthread_mutex_unlock(&sh->cfg_lock);
    if (rc != 0)
        settings_free(s);
    return rc;
}

static void job_free(struct job *j)
{
    if (j == NULL)
        return;
    free(j->command);
    free(j->json);
    free(j->kind);
    free(j->principal);
    free(j->role);
    free(j->client);
    free(j->file);
    free(j);
}

static void *runner(void *arg);

/* The queues' room; tests may make it smaller (rv_alert_test_queue_max). */
static size_t queue_max = QUEUE_MAX, high_max = HIGH_MAX;

void rv_alert_test_queue_max(size_t normal, size_t high)
{
    queue_max = normal != 0 ? normal : QUEUE_MAX;
    high_max = high != 0 ? high : HIGH_MAX;
}

/* Queues a hook run (taking j, whatever the result); starts the runner thread at the first
 * one. A high alert is never turned away: past its queue's room it joins the overflow,
 * which the runner hands to the hook as one summary ("hook.overflow") as soon as it can;
 * *overflowed is then set, for the caller to record. RV_ELIMIT when a low or medium one
 * does not fit. */
static int enqueue(struct rv_alerter *al, struct job *j, bool *overflowed)
{
    int rc = 0;

    *overflowed = false;
    pthread_mutex_lock(&al->mu);
    if (al->stop)
        rc = RV_ELIMIT;
    else if (!al->running) {
        if (pthread_create(&al->thread, NULL, runner, al) != 0)
            rc = RV_ENOMEM;
        else
            al->running = true;
    }
    if (rc == 0 && j->high) {
        if (al->hqueued < high_max) {
            if (al->htail != NULL)
                al->htail->next = j;
            else
                al->hhead = j;
            al->htail = j;
            al->hqueued++;
        } else {
            if (al->overflow == NULL)
                al->overflow = j;
            else
                job_free(j);
            al->overflowed++;
            *overflowed = true;
        }
        j = NULL;
        pthread_cond_signal(&al->cv);
    } else if (rc == 0 && al->queued >= queue_max) {
        rc = RV_ELIMIT;
    } else if (rc == 0) {
        if (al->tail != NULL)
            al->tail->next = j;
        else
            al->head = j;
        al->tail = j;
        al->queued++;
        j = NULL;
        pthread_cond_signal(&al->cv);
    }
    pthread_mutex_unlock(&al->mu);
    job_free(j);
    return rc;
}

/* s, cut to fit cap bytes (without splitting a UTF-8 sequence) in buf; NULL stays NULL. */
static const char *clip(const char *s, char *buf, size_t cap)
{
    size_t n;

    if (s == NULL)
        return NULL;
    n = strlen(s);
    if (n < cap)
        return s;
    n = cap - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return buf;
}

/* Records, logs and files an alert as who; runs the hook only when hook is true (never for
 * a hook's own failure). */
static int deliver(struct rv_gate_shared *sh, const struct rv_actor *who, const struct rv_alert *a,
                   bool hook)
{
    struct rv_gate g = {.sh = sh, .is_view = true, .who = *who};
    struct settings s = {0};
    char params[PARAMS_MAX];
    char *json = NULL;
    struct job *j = NULL;
    int64_t ms = a->time_ms != 0 ? a->time_ms : now_ms();
    struct rv_alert cut;
    char kind[48], principal[96], client[96], detail[320];
    bool overflowed = false;
    int rc, qrc;

    if (encode_params(a, params, sizeof(params)) != 0) {
        /* Too long to record whole: the alert is kept, its strings cut. */
        cut = *a;
        cut.kind = clip(a->kind, kind, sizeof(kind));
        cut.principal = clip(a->principal, principal, sizeof(principal));
        cut.client = clip(a->client, client, sizeof(client));
        cut.detail = clip(a->detail, detail, sizeof(detail));
        a = &cut;
        if ((rc = encode_params(a, params, sizeof(params))) != 0)
            goto out;
    }
    /* The log first: an alert that cannot be recorded fails the caller closed (RV_EAUDIT),
     * but is still sent everywhere else, since a vault whose log fails is worth telling
     * someone about. */
    rc = rv_policy_record(&g, RV_ACT_ALERT, params, "raised", NULL, 0);
    if (settings_read(sh, &s) != 0 || (json = alert_json(a, ms, who, sh->dir)) == NULL)
        goto out; /* the rest is best effort */
    if (s.syslog)
        to_syslog(a, params);
    (void)to_file(s.file, sh->dir, json);
    if (hook && s.command != NULL && sh->alerter != NULL) {
        if ((j = calloc(1, sizeof(*j))) == NULL)
            goto out;
        j->command = s.command;
        s.command = NULL;
        j->file = s.file;
        s.file = NULL;
        j->json = json;
        json = NULL;
        j->limit_ms = s.limit_ms;
        j->syslog = s.syslog;
        j->kind = strdup(or_dash(a->kind));
        j->principal = strdup(or_dash(who->principal));
        j->role = strdup(or_dash(who->role));
        j->client = strdup(or_dash(who->client));
        j->high = a->severity == RV_ALERT_HIGH;
        if (j->kind == NULL || j->principal == NULL || j->role == NULL || j->client == NULL) {
            job_free(j);
            j = NULL;
            qrc = RV_ENOMEM;
        } else {
            qrc = enqueue(sh->alerter, j, &overflowed);
            j = NULL;
        }
        if (qrc != 0 || overflowed) {
            /* The alert itself is on the log, syslog and the file already; that its hook run
             * was lost (or, for a high one, postponed into a summary) is an alert too, of
             * the same severity as the one it is about. */
            struct rv_alert f = {
                .severity = a->severity == RV_ALERT_HIGH ? RV_ALERT_HIGH : RV_ALERT_MEDIUM,
                .kind = "hook.failed",
                .principal = a->principal,
                .client = a->client,
                .detail = overflowed ? "too many alert commands waiting: this high "
                                       "alert goes to the command in a summary"
                                     : "the alert command was not run: too many "
                                       "waiting"};
            (void)deliver(sh, who, &f, false);
        }
    }
out:
    free(json);
    settings_free(&s);
    return rc;
}

int rv_policy_alert(struct rv_gate *g, const struct rv_alert *a)
{
    return deliver(g->sh, &g->who, a, true);
}

/* ------------------------------------------------------------------------------------------
 * The runner.
 */

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Runs one hook to completion or its limit. Returns 0 when it exited 0, else fills why. */
static int run_hook(const struct job *j, char *why, size_t whysz)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char *argv[] = {"sh", "-c", j->command, NULL};
    int p[2] = {-1, -1}, status = 0, rc = -1;
    bool fa_ok = false, at_ok = false, done = false;
    pid_t pid = -1;
    int64_t deadline;
    size_t len = strlen(j->json), off = 0;

    if (pipe2(p, O_CLOEXEC) != 0) {
        snprintf(why, whysz, "cannot make a pipe: %s", strerror(errno));
        goto out;
    }
    if (posix_spawn_file_actions_init(&fa) != 0 || (fa_ok = true, false) ||
        posix_spawnattr_init(&at) != 0 || (at_ok = true, false)) {
        snprintf(why, whysz, "cannot prepare the command");
        goto out;
    }
    (void)posix_spawn_file_actions_adddup2(&fa, p[0], 0);
    (void)posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    (void)posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* A group of its own, so that a kill reaches whatever the shell started. */
    (void)posix_spawnattr_setpgroup(&at, 0);
    (void)posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                            POSIX_SPAWN_SETSIGDEF);
    {
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        (void)posix_spawnattr_setsigmask(&at, &none);
        (void)posix_spawnattr_setsigdefault(&at, &all);
    }
    errno = posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ);
    if (errno != 0) {
        snprintf(why, whysz, "cannot start /bin/sh: %s", strerror(errno));
        pid = -1;
        goto out;
    }
    close(p[0]);
    p[0] = -1;
    /* The alert is far smaller than a pipe's buffer; a hook that does not read it is no
     * reason to wait. SIGPIPE is blocked on this thread. */
    (void)fcntl(p[1], F_SETFL, O_NONBLOCK);
    while (off < len) {
        ssize_t w = write(p[1], j->json + off, len - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    if (off == len)
        (void)!write(p[1], "\n", 1);
    close(p[1]);
    p[1] = -1;
    deadline = now_ms() + j->limit_ms;
    while (!done) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            done = true;
        } else if (r < 0 && errno != EINTR) {
            snprintf(why, whysz, "lost track of the command: %s", strerror(errno));
            pid = -1;
            goto out;
        } else if (now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            snprintf(why, whysz, "the alert command timed out after %u ms and was killed",
                     j->limit_ms);
            pid = -1;
            goto out;
        } else {
            sleep_ms(10);
        }
    }
    pid = -1;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        rc = 0;
    else if (WIFEXITED(status))
        snprintf(why, whysz, "the alert command exited with status %d", WEXITSTATUS(status));
    else
        snprintf(why, whysz, "the alert command died of signal %d",
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    if (fa_ok)
        posix_spawn_file_actions_destroy(&fa);
    if (at_ok)
        posix_spawnattr_destroy(&at);
    return rc;
}

/* Turns the first overflowed high alert's job into the summary of all n: a high alert
 * "hook.overflow" for the hook, saying how many high alerts it did not get one by one (each
 * is in the alert file and the audit log). */
static int overflow_summary(struct rv_alerter *al, struct job *j, uint64_t n)
{
    struct rv_actor who = {j->principal, j->role, j->client};
    char detail[200];
    struct rv_alert a = {.severity = RV_ALERT_HIGH,
                         .kind = "hook.overflow",
                         .principal = "-",
                         .client = "-",
                         .detail = detail};
    char *json;

    snprintf(detail, sizeof(detail),
             "%llu high alerts (the first of kind %s) were raised while too many alert commands "
             "were waiting; each is in the alert file and the audit log",
             (unsigned long long)n, j->kind);
    if ((json = alert_json(&a, now_ms(), &who, al->sh->dir)) == NULL)
        return RV_ENOMEM;
    free(j->json);
    j->json = json;
    free(j->kind);
    j->kind = strdup("hook.overflow");
    return j->kind != NULL ? 0 : RV_ENOMEM;
}

static void *runner(void *arg)
{
    struct rv_alerter *al = arg;
    sigset_t pipe_set;

    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    for (;;) {
        struct job *j;
        char why[256];

        uint64_t summed = 0;

        pthread_mutex_lock(&al->mu);
        while (al->head == NULL && al->hhead == NULL && al->overflow == NULL && !al->stop)
            pthread_cond_wait(&al->cv, &al->mu);
        if ((j = al->hhead) != NULL) {
            al->hhead = j->next;
            if (al->hhead == NULL)
                al->htail = NULL;
            al->hqueued--;
        } else if ((j = al->overflow) != NULL) {
            al->overflow = NULL;
            summed = al->overflowed;
            al->overflowed = 0;
        } else if ((j = al->head) != NULL) {
            al->head = j->next;
            if (al->head == NULL)
                al->tail = NULL;
            al->queued--;
        }
        pthread_mutex_unlock(&al->mu);
        if (j == NULL)
            break; /* stopping, and nothing is left */
        if (summed > 0 && overflow_summary(al, j, summed) != 0) {
            job_free(j);
            continue;
        }
        why[0] = '\0';
        if (run_hook(j, why, sizeof(why)) != 0) {
            struct rv_actor who = {j->principal, j->role, j->client};
            char detail[384];
            struct rv_alert f = {.severity = RV_ALERT_MEDIUM,
                                 .kind = "hook.failed",
                                 .principal = j->principal,
                                 .client = j->client,
                                 .detail = detail};
            snprintf(detail, sizeof(detail), "%s (alert %s)", why, j->kind);
            (void)deliver(al->sh, &who, &f, false);
        }
        job_free(j);
        /* Clear a SIGPIPE a dead hook left pending on this thread. */
        {
            struct timespec zero = {0, 0};
            while (sigtimedwait(&pipe_set, NULL, &zero) > 0)
                ;
        }
    }
    return NULL;
}

int rv_alerter_new(struct rv_gate_shared *sh, struct rv_alerter **out)
{
    struct rv_alerter *a = calloc(1, sizeof(*a));

    *out = NULL;
    if (a == NULL)
        return RV_ENOMEM;
    a->sh = sh;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    *out = a;
    return 0;
}

void rv_alerter_free(struct rv_alerter *a)
{
    if (a == NULL)
        return;
    /* The runner finishes what is queued, each hook within its own limit. */
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->running)
        pthread_join(a->thread, NULL);
    while (a->head != NULL) {
        struct job *j = a->head;
        a->head = j->next;
        job_free(j);
    }
    while (a->hhead != NULL) {
        struct job *j = a->hhead;
        a->hhead = j->next;
        job_free(j);
    }
    job_free(a->overflow);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ------------------------------------------------------------------------------------------
 * Reading alerts back from the log, without any secret.
 */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* Decodes a percent-encoded value of n bytes into out (cap bytes, NUL-terminated). */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            int h, l;
            if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
                return RV_EPARSE;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= cap)
            return RV_ETOOBIG;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

struct parsed {
    char severity[16], kind[FIELD_MAX], principal[FIELD_MAX], client[FIELD_MAX];
    char detail[PARAMS_MAX];
};

static int parse_params(const char *params, struct parsed *p)
{
    const char *s = params;
    bool v1 = false;

    memset(p, 0, sizeof(*p));
    while (*s != '\0') {
        const char *end = strchr(s, ' '), *eq;
        size_t n = end != NULL ? (size_t)(end - s) : strlen(s);
        char *dst = NULL;
        size_t cap = 0;
        int rc;

        eq = memchr(s, '=', n);
        if (eq == NULL)
            return RV_EPARSE;
#define KEY(k) ((size_t)(eq - s) == sizeof(k) - 1 && memcmp(s, k, sizeof(k) - 1) == 0)
        if (KEY("v"))
            v1 = n == 3 && eq[1] == '1';
        else if (KEY("severity"))
            dst = p->severity, cap = sizeof(p->severity);
        else if (KEY("kind"))
            dst = p->kind, cap = sizeof(p->kind);
        else if (KEY("principal"))
            dst = p->principal, cap = sizeof(p->principal);
        else if (KEY("client"))
            dst = p->client, cap = sizeof(p->client);
        else if (KEY("detail"))
            dst = p->detail, cap = sizeof(p->detail);
#undef KEY
        if (dst != NULL && (rc = pct_decode(eq + 1, n - (size_t)(eq + 1 - s), dst, cap)) != 0)
            return rc;
        s += n;
        if (*s == ' ')
            s++;
    }
    return v1 ? 0 : RV_EVERSION;
}

/* What one process has read of each log so far, so that a reader who polls (the daemon's
 * GET /v1/alerts) decodes only the entries appended since its last call, not the whole log.
 * A slot per log folder, the least recently used given up past CACHE_SLOTS: the entries
 * [0, scanned) have been read, and alerts holds, in log order, the number and time of each
 * alert among them that parses. A slot is trusted only while its log is the same log: at
 * least scanned entries, the same root hash over the first scanned (the Merkle tree binds
 * every one of them) and the same leaf hash at scanned - 1 (the entry file agrees with the
 * stored hashes there); otherwise it is read again from the start. */
#define CACHE_SLOTS 8

struct seen {
    uint64_t index;
    int64_t time_ms;
};

struct slot {
    char *path;       /* <dir>/audit; NULL: free */
    uint64_t scanned; /* entries read */
    uint8_t root[RV_AUDIT_HASH_LEN];
    uint8_t leaf[RV_AUDIT_HASH_LEN]; /* of entry scanned - 1 */
    struct seen *alerts;
    size_t n, cap;
    uint64_t used; /* for the least recently used */
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot cache[CACHE_SLOTS];
static uint64_t cache_tick;
static _Atomic uint64_t decodes; /* rv_audit_get calls, for tests */

uint64_t rv_alert_test_decodes(void)
{
    return atomic_load(&decodes);
}

static int get_entry(struct rv_audit_log *log, uint64_t i, struct rv_audit_record *rec)
{
    atomic_fetch_add(&decodes, 1);
    return rv_audit_get(log, i, rec);
}

static void slot_reset(struct slot *c)
{
    c->scanned = 0;
    c->n = 0;
}

/* The slot of path, or a free or the least recently used one given to it. NULL when out of
 * memory. Under cache_mu. */
static struct slot *slot_find(const char *path)
{
    struct slot *c = NULL;

    for (size_t i = 0; i < CACHE_SLOTS; i++) {
        if (cache[i].path != NULL && strcmp(cache[i].path, path) == 0) {
            c = &cache[i];
            break;
        }
        if (c == NULL || cache[i].path == NULL || (c->path != NULL && cache[i].used < c->used))
            c = &cache[i];
    }
    if (c->path == NULL || strcmp(c->path, path) != 0) {
        char *copy = strdup(path);
        if (copy == NULL)
            return NULL;
        free(c->path);
        free(c->alerts);
        memset(c, 0, sizeof(*c));
        c->path = copy;
    }
    c->used = ++cache_tick;
    return c;
}

/* Keeps the slot when its log is still a prefix of log, else resets it. Under cache_mu. */
static void slot_check(struct slot *c, struct rv_audit_log *log, uint64_t size)
{
    struct rv_audit_record rec;
    uint8_t root[RV_AUDIT_HASH_LEN];
    bool same;

    if (c->scanned == 0)
        return;
    same = c->scanned <= size && rv_audit_root(log, c->scanned, root) == 0 &&
           memcmp(root, c->root, sizeof(root)) == 0;
    if (same && get_entry(log, c->scanned - 1, &rec) == 0) {
        same = memcmp(rec.leaf_hash, c->leaf, sizeof(c->leaf)) == 0;
        rv_audit_record_free(&rec);
    } else {
        same = false;
    }
    if (!same)
        slot_reset(c);
}

/* Reads the entries from c->scanned up to size into the slot. On an error, the slot keeps
 * what was read before it and the error is returned. Under cache_mu. */
static int slot_scan(struct slot *c, struct rv_audit_log *log, uint64_t size, struct parsed *p)
{
    uint8_t leaf[RV_AUDIT_HASH_LEN];
    uint64_t i = c->scanned;
    int rc = 0;

    if (i >= size)
        return 0;
    for (; i < size; i++) {
        struct rv_audit_record rec;
        enum rv_alert_severity sev;

        if ((rc = get_entry(log, i, &rec)) != 0)
            break;
        if (strcmp(rec.e.action, "alert") == 0 && parse_params(rec.e.params, p) == 0 &&
            sev_parse(p->severity, &sev) == 0) {
            if (c->n == c->cap) {
                size_t cap = c->cap != 0 ? c->cap * 2 : 64;
                struct seen *a = realloc(c->alerts, cap * sizeof(*a));
                if (a == NULL) {
                    rv_audit_record_free(&rec);
                    rc = RV_ENOMEM;
                    break;
                }
                c->alerts = a;
                c->cap = cap;
            }
            c->alerts[c->n++] = (struct seen){i, rec.e.time_ms};
        }
        memcpy(leaf, rec.leaf_hash, sizeof(leaf));
        rv_audit_record_free(&rec);
    }
    if (i > c->scanned) {
        /* The root over what was read, for the next call's check. */
        if (rv_audit_root(log, i, c->root) == 0) {
            c->scanned = i;
            memcpy(c->leaf, leaf, sizeof(leaf));
        } else {
            slot_reset(c);
        }
    }
    return rc;
}

int rv_policy_alerts_read(const char *dir, int64_t since_ms, rv_alert_fn fn, void *ctx)
{
    return rv_policy_alerts_read_from(dir, since_ms, 0, fn, ctx);
}

int rv_policy_alerts_read_from(const char *dir, int64_t since_ms, uint64_t from_index,
                               rv_alert_fn fn, void *ctx)
{
    struct rv_audit_log *log = NULL;
    struct parsed *p = NULL;
    struct seen *want = NULL;
    size_t nwant = 0;
    char path[4096];
    struct slot *c;
    int rc, scan_rc;

    if ((size_t)snprintf(path, sizeof(path), "%s/audit", dir) >= sizeof(path))
        return RV_ETOOBIG;
    if ((p = malloc(sizeof(*p))) == NULL)
        return RV_ENOMEM;
    if ((rc = rv_audit_open_ro(path, &log)) != 0)
        goto out;

    /* Bring the slot up to the log's end, then copy out the alerts to hand over, so that fn
     * runs without the lock. */
    pthread_mutex_lock(&cache_mu);
    if ((c = slot_find(path)) == NULL) {
        pthread_mutex_unlock(&cache_mu);
        rc = RV_ENOMEM;
        goto out;
    }
    slot_check(c, log, rv_audit_size(log));
    scan_rc = slot_scan(c, log, rv_audit_size(log), p);
    for (size_t i = 0; i < c->n; i++)
        nwant += c->alerts[i].time_ms >= since_ms && c->alerts[i].index >= from_index;
    if (nwant > 0 && (want = malloc(nwant * sizeof(*want))) == NULL) {
        pthread_mutex_unlock(&cache_mu);
        rc = RV_ENOMEM;
        goto out;
    }
    nwant = 0;
    for (size_t i = 0; i < c->n; i++)
        if (c->alerts[i].time_ms >= since_ms && c->alerts[i].index >= from_index)
            want[nwant++] = c->alerts[i];
    pthread_mutex_unlock(&cache_mu);

    /* The alerts themselves, read again: only those the caller asked for. */
    for (size_t k = 0; k < nwant && rc == 0; k++) {
        struct rv_audit_record rec;
        struct rv_alert a;

        if ((rc = get_entry(log, want[k].index, &rec)) != 0)
            break;
        if (parse_params(rec.e.params, p) == 0 && sev_parse(p->severity, &a.severity) == 0) {
            a.time_ms = rec.e.time_ms;
            a.kind = p->kind;
            a.principal = p->principal;
            a.client = p->client;
            a.detail = p->detail;
            rc = fn(ctx, want[k].index, &a);
        }
        rv_audit_record_free(&rec);
    }
    /* As before the cache: the alerts before an entry that could not be read are handed
     * over, then its error is returned. */
    if (rc == 0)
        rc = scan_rc;
out:
    rv_audit_close(log);
    free(want);
    free(p);
    return rc;
}
