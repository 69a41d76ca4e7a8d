/*
 * cmd_alerts.c - `regvault alerts`: the security alerts recorded in a vault's audit log
 * (canaries shown, honeytokens used, probing, budgets, lockouts, anomalies, failed alert
 * hooks), oldest first. It reads the log read-only and needs no secret, like `regvault
 * audit show`, so it works on a copy of the log and while the daemon is running. Alerts
 * hold no personal data: principals' names and client addresses only.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *const VERB = "alerts";

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault alerts --vault DIR [--since T] [--json]\n\n"
               "Lists the security alerts recorded in the vault's audit log, oldest first:\n"
               "index, time (UTC), severity, kind, principal, client and detail. Reads the log\n"
               "read-only without any secret, so it works while the daemon is running.\n\n"
               "  --since T   only alerts at or after T: a UTC date or time (2026-01-31,\n"
               "              2026-01-31T09:30, 2026-01-31T09:30:00Z) or a duration back from\n"
               "              now (90s, 15m, 2h, 7d, 2w)\n"
               "  --json      one JSON object per line instead of a table\n");
}

/* Parses --since into UTC milliseconds. */
static int parse_since(const char *s, int64_t *out)
{
    char *end;
    unsigned long long n;
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    size_t len = strlen(s);

    if (len >= 2 && s[0] >= '0' && s[0] <= '9' && strchr("smhdw", s[len - 1]) != NULL &&
        strchr(s, '-') == NULL) {
        static const struct {
            char c;
            long long ms;
        } units[] = {{'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000}};
        struct timespec ts;
        n = strtoull(s, &end, 10);
        if (end != s + len - 1 || n > 100000000ULL)
            return -1;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
            if (units[i].c == s[len - 1])
                *out = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - (int64_t)n * units[i].ms;
        return 0;
    }
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3 || used != 10)
        return -1;
    if (s[10] == 'T' || s[10] == ' ') {
        int u2 = 0;
        if (sscanf(s + 11, "%2d:%2d%n", &h, &mi, &u2) != 2 || u2 != 5)
            return -1;
        used = 16;
        if (s[used] == ':') {
            if (sscanf(s + used + 1, "%2d%n", &sec, &u2) != 1 || u2 != 2)
                return -1;
            used += 3;
        }
        if (s[used] == 'Z')
            used++;
    }
    if (s[used] != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        h < 0 || mi < 0 || sec < 0)
        return -1;
    *out = ((int64_t)rv_date_from_ymd(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000;
    return 0;
}

static const char *sev_name(enum rv_alert_severity s)
{
    return s == RV_ALERT_HIGH ? "high" : s == RV_ALERT_MEDIUM ? "medium" : "low";
}

static void fmt_time(int64_t ms, char buf[64])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(buf, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

struct ctx {
    bool json;
    unsigned long n;
};

static int one(void *arg, uint64_t index, const struct rv_alert *a)
{
    struct ctx *c = arg;
    char when[64];

    fmt_time(a->time_ms, when);
    if (c->json) {
        json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s, s:s, s:s}", "index",
                              (json_int_t)index, "time", when, "time_ms", (json_int_t)a->time_ms,
                              "severity", sev_name(a->severity), "kind", a->kind, "principal",
                              a->principal, "client", a->client, "detail", a->detail);
        char *s = o != NULL ? json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT) : NULL;
        json_decref(o);
        if (s == NULL)
            return RV_ENOMEM;
        printf("%s\n", s);
        free(s);
    } else {
        if (c->n == 0)
            printf("%-8s %-24s  %-6s %-16s %-16s %-15s  %s\n", "index", "time (UTC)", "sev", "kind",
                   "principal", "client", "detail");
        printf("%-8llu %s  %-6s %-16s %-16s %-15s  %s\n", (unsigned long long)index, when,
               sev_name(a->severity), a->kind, a->principal, a->client, a->detail);
    }
    c->n++;
    return 0;
}

int rv_cmd_alerts(int argc, char **argv)
{
    const char *dir = NULL, *since = NULL;
    struct ctx c = {0};
    int64_t since_ms = 0;
    char path[4096];
    struct stat st;
    int rc, err;

    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL},
            {"--since", &since, NULL},
            {"--json", NULL, &c.json},
        };
        rc = rv_cli_options(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), NULL, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
    }
    if (dir == NULL) {
        rv_cli_err(VERB, "--vault DIR is required (see regvault alerts --help)");
        return RV_EXIT_USAGE;
    }
    if (since != NULL && parse_since(since, &since_ms) != 0) {
        rv_cli_err(VERB, "--since must be a UTC date or time (2026-01-31, 2026-01-31T09:30Z) or a "
                         "duration such as 15m, 2h or 7d");
        return RV_EXIT_USAGE;
    }
    snprintf(path, sizeof(path), "%s/audit", dir);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rv_cli_err(VERB, "no audit log in %s/audit: is %s a vault?", dir, dir);
        return RV_EXIT_FAIL;
    }
    err = rv_policy_alerts_read(dir, since_ms, one, &c);
    if (err == RV_ECORRUPT) {
        rv_cli_err(VERB, "the audit log in %s is damaged; run 'regvault audit verify --vault %s'",
                   path, dir);
        return RV_EXIT_INTEGRITY;
    }
    if (err != 0) {
        rv_cli_err(VERB, "cannot read the audit log in %s: %s", path, rv_strerror(err));
        return rv_cli_exit_for(err);
    }
    if (c.n == 0 && !c.json)
        fprintf(stderr, "regvault alerts: no alerts%s\n", since != NULL ? " in that time" : "");
    return RV_EXIT_OK;
}
