/*
 * config.c - the daemon's settings: one declarative table (name, type, bounds, default,
 * help), as in Redis's config.c, read from a `key = value` file with # comments and
 * overridden from the command line through the same setter. Every message says where
 * (file:line, added by the caller of rv_server_config_set), what is wrong, and what to do.
 * The table also feeds `regvault serve --help` and the sample etc/regvault.conf.
 */
#include "server/server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define SC(f)   offsetof(struct rv_server_config, f), sizeof(((struct rv_server_config *)0)->f)
#define PC(f)   offsetof(struct rv_server_config, policy.f), sizeof(((struct rv_policy_config *)0)->f)
#define KIB     1024.0
#define MIB     (1024.0 * 1024.0)
#define GIB     (1024.0 * 1024.0 * 1024.0)
#define MAXPATH (RV_SERVER_PATH_MAX - 1)

static const struct rv_server_config_key keys[] = {
    {"vault", RV_CFG_PATH, 0, MAXPATH, "", "the vault's folder (required)", SC(vault)},
    {"listen", RV_CFG_LISTEN, 0, 255, "127.0.0.1:8443",
     "address and port to listen on; port 0 picks a free port", SC(listen)},
    {"tls_cert", RV_CFG_PATH, 0, MAXPATH, "", "server certificate chain, PEM (unless dev)",
     SC(tls_cert)},
    {"tls_key", RV_CFG_PATH, 0, MAXPATH, "", "server private key, PEM (unless dev)", SC(tls_key)},
    {"tls_client_ca", RV_CFG_PATH, 0, MAXPATH, "",
     "CA certificates for client certificates (enables mutual TLS for service principals)",
     SC(tls_client_ca)},
    {"dev", RV_CFG_BOOL, 0, 1, "no",
     "development mode: a self-signed certificate for localhost kept in <vault>/dev-tls/", SC(dev)},
    {"user", RV_CFG_STRING, 0, 63, "",
     "when started as root, run as this user after binding (default: the vault's owner)", SC(user)},
    {"threads", RV_CFG_UINT, 0, 4096, "4",
     "N: a pool of N threads (answers wait for the audit log, and long requests run on two "
     "threads of their own, without holding a pool thread); 0: a thread per connection",
     SC(threads)},
    {"max_connections", RV_CFG_UINT, 1, 100000, "1024", "connections at once, in all",
     SC(max_connections)},
    {"max_connections_per_client", RV_CFG_UINT, 1, 100000, "512",
     "connections at once from one client (an IPv6 address by its /64)",
     SC(max_connections_per_client)},
    {"header_timeout", RV_CFG_UINT, 1, 3600, "10",
     "seconds a connection may take to send its first request's headers (slowloris)",
     SC(header_timeout)},
    {"idle_timeout", RV_CFG_UINT, 1, 3600, "60", "seconds a connection may stay silent",
     SC(idle_timeout)},
    {"body_max_check", RV_CFG_SIZE, 16, GIB, "16k", "largest body of POST /v1/checks",
     SC(body_max_check)},
    {"body_max_batch", RV_CFG_SIZE, 16, 64 * GIB, "256M",
     "largest body of POST /v1/checks/batch (held in memory while checked)", SC(body_max_batch)},
    {"body_max_ingest", RV_CFG_SIZE, 16, 1024 * GIB, "2G",
     "largest body of POST /v1/ingest (held in memory while ingested)", SC(body_max_ingest)},
    {"body_max_json", RV_CFG_SIZE, 16, GIB, "64k", "largest JSON body of the other endpoints",
     SC(body_max_json)},
    {"upload_memory_max", RV_CFG_SIZE, 1024, 1024 * GIB, "4G",
     "uploads (batches, register files) held in memory at once, in all; past it an upload "
     "is refused with 503 busy",
     SC(upload_memory_max)},
    {"session_idle", RV_CFG_UINT, 10, 86400, "900", "seconds a session lives without use",
     SC(session_idle)},
    {"session_max", RV_CFG_UINT, 10, 604800, "28800", "seconds a session lives after login",
     SC(session_max)},
    {"log_file", RV_CFG_PATH, 0, MAXPATH, "", "access log file (default: standard error)",
     SC(log_file)},
    {"budget_checker", RV_CFG_UINT, 1, 10000000, "300",
     "distinct electors a checker may be shown a day", PC(budget_checker)},
    {"rate_principal", RV_CFG_DOUBLE, 1e-9, 1e6, "20", "requests a second per principal",
     PC(rate_principal)},
    {"burst_principal", RV_CFG_UINT, 1, 1000000, "40", "burst of requests per principal",
     PC(burst_principal)},
    {"rate_client", RV_CFG_DOUBLE, 1e-9, 1e6, "50", "requests a second per client address",
     PC(rate_client)},
    {"burst_client", RV_CFG_UINT, 1, 1000000, "100", "burst of requests per client address",
     PC(burst_client)},
    {"probe_window", RV_CFG_UINT, 10, 100000, "100",
     "probing is judged over a principal's last N checks", PC(probe_window)},
    {"probe_nomatch_ratio", RV_CFG_DOUBLE, 1e-9, 1, "0.6",
     "alert when more than this share of the window found nobody", PC(probe_nomatch_ratio)},
    {"probe_sector_max", RV_CFG_UINT, 2, 100000, "40",
     "alert at more checks than this in one postcode sector in the window", PC(probe_sector_max)},
    {"probe_sweep_run", RV_CFG_UINT, 3, 100000, "25",
     "alert at a run of this many checks in alphabetical or sequential order", PC(probe_sweep_run)},
    {"probe_alerts_suspend", RV_CFG_UINT, 1, 1000, "3",
     "probing alerts in a day before the principal is suspended", PC(probe_alerts_suspend)},
    {"alert_file", RV_CFG_PATH, 0, MAXPATH, "", "alert log, absolute (default <vault>/alerts.log)",
     SC(alert_file)},
    {"alert_command", RV_CFG_STRING, 0, MAXPATH, "",
     "command run with each alert as JSON on stdin (default: none)", SC(alert_command)},
    {"alert_command_ms", RV_CFG_UINT, 100, 600000, "5000", "the alert command's time limit, ms",
     PC(alert_command_ms)},
    {"alert_syslog", RV_CFG_BOOL, 0, 1, "yes", "send alerts to syslog (LOG_AUTHPRIV)",
     PC(alert_syslog)},
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))
_Static_assert(NKEYS <= 64, "set_mask holds one bit per key");

const struct rv_server_config_key *rv_server_config_keys(size_t *n)
{
    *n = NKEYS;
    return keys;
}

const char *rv_server_config_type_name(enum rv_server_config_type t)
{
    switch (t) {
    case RV_CFG_STRING:
        return "string";
    case RV_CFG_PATH:
        return "path";
    case RV_CFG_BOOL:
        return "yes/no";
    case RV_CFG_UINT:
        return "integer";
    case RV_CFG_SIZE:
        return "size";
    case RV_CFG_DOUBLE:
        return "number";
    case RV_CFG_LISTEN:
        return "address:port";
    }
    return "?";
}

static const struct rv_server_config_key *find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* The closest key name, for "did you mean". */
static const char *nearest(const char *name)
{
    const char *best = NULL;
    double bs = 0.8;

    for (size_t i = 0; i < NKEYS; i++) {
        double sc = rv_jaro_winkler(name, keys[i].name);
        if (sc > bs) {
            bs = sc;
            best = keys[i].name;
        }
    }
    return best;
}

/* Sets d's message, keeping the file and line the caller put there. */
static void fail(struct rv_diag *d, const char *fmt, ...) RV_PRINTF(2, 3);
static void fail(struct rv_diag *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
}

static bool parse_bool(const char *v, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"}, *const no[] = {"no", "false",
                                                                                "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/* A decimal integer, no sign, no spaces, with an optional k/M/G suffix when sized. */
static bool parse_uint(const char *v, bool sized, double *out)
{
    unsigned long long n = 0;
    const char *p = v;
    double mul = 1;

    if (*p < '0' || *p > '9')
        return false;
    while (*p >= '0' && *p <= '9') {
        if (n > (ULLONG_MAX - 9) / 10)
            return false;
        n = n * 10 + (unsigned)(*p++ - '0');
    }
    if (sized && *p != '\0') {
        switch (*p++) {
        case 'k':
        case 'K':
            mul = KIB;
            break;
        case 'm':
        case 'M':
            mul = MIB;
            break;
        case 'g':
        case 'G':
            mul = GIB;
            break;
        default:
            return false;
        }
        if (*p == 'B' || *p == 'b')
            p++;
    }
    if (*p != '\0')
        return false;
    *out = (double)n * mul;
    return true;
}

static bool parse_double(const char *v, double *out)
{
    char *end = NULL;
    double x;

    if (!((*v >= '0' && *v <= '9') || *v == '.' || *v == '-'))
        return false;
    errno = 0;
    x = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || !isfinite(x))
        return false;
    *out = x;
    return true;
}

/* "host:port", "[v6]:port": checks the shape only; the address is checked when bound. */
static bool listen_ok(const char *v)
{
    const char *colon = strrchr(v, ':');
    double port;

    if (colon == NULL || colon == v)
        return false;
    if (v[0] == '[' && colon[-1] != ']')
        return false;
    if (!parse_uint(colon + 1, false, &port) || port > 65535)
        return false;
    for (const char *p = v; p < colon; p++)
        if (*p <= ' ' || *p == '/' || *p == '?' || *p == '#')
            return false;
    return true;
}

static void bounds_text(const struct rv_server_config_key *k, char *buf, size_t sz)
{
    if (k->type == RV_CFG_DOUBLE)
        snprintf(buf, sz, "a number from %g to %g", k->min, k->max);
    else if (k->type == RV_CFG_SIZE)
        snprintf(buf, sz, "a size from %.0f to %.0f bytes (suffixes k, M, G allowed)", k->min,
                 k->max);
    else
        snprintf(buf, sz, "a whole number from %.0f to %.0f", k->min, k->max);
}

int rv_server_config_set(struct rv_server_config *c, const char *key, const char *value,
                         struct rv_diag *d)
{
    const struct rv_server_config_key *k = find(key);
    char *dst, b[128];
    size_t len = strlen(value);
    double x = 0;
    bool flag;

    if (k == NULL) {
        const char *near = nearest(key);
        fail(d, "unknown setting '%.64s'%s%s%s: remove it or fix it", key,
             near != NULL ? " (did you mean '" : "", near != NULL ? near : "",
             near != NULL ? "'?)" : " (see regvault serve --help)");
        return RV_EINVAL;
    }
    dst = (char *)c + k->offset;
    switch (k->type) {
    case RV_CFG_STRING:
    case RV_CFG_PATH:
    case RV_CFG_LISTEN:
        if (len > (size_t)k->max || len >= k->size) {
            fail(d, "%s is too long: at most %.0f bytes", k->name, k->max);
            return RV_EINVAL;
        }
        if (!rv_utf8_valid(value, len)) {
            fail(d, "%s is not valid UTF-8: write it in UTF-8", k->name);
            return RV_EINVAL;
        }
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
                fail(d, "%s holds a control character: remove it", k->name);
                return RV_EINVAL;
            }
        if (k->type == RV_CFG_LISTEN && !listen_ok(value)) {
            fail(d,
                 "%s must be ADDRESS:PORT (port 0 to 65535), such as 127.0.0.1:8443 or "
                 "[::1]:8443",
                 k->name);
            return RV_EINVAL;
        }
        if (k->type == RV_CFG_STRING && strcmp(k->name, "user") == 0)
            for (size_t i = 0; i < len; i++)
                if (!(value[i] == '_' || value[i] == '-' || value[i] == '.' ||
                      (value[i] >= 'a' && value[i] <= 'z') ||
                      (value[i] >= 'A' && value[i] <= 'Z') ||
                      (value[i] >= '0' && value[i] <= '9'))) {
                    fail(d, "user must be a user name (letters, digits, . _ -)");
                    return RV_EINVAL;
                }
        memcpy(dst, value, len + 1);
        break;
    case RV_CFG_BOOL:
        if (!parse_bool(value, &flag)) {
            fail(d, "%s must be yes or no (also true/false, on/off)", k->name);
            return RV_EINVAL;
        }
        *(bool *)dst = flag;
        break;
    case RV_CFG_UINT:
    case RV_CFG_SIZE:
    case RV_CFG_DOUBLE:
        if (k->type == RV_CFG_DOUBLE ? !parse_double(value, &x)
                                     : !parse_uint(value, k->type == RV_CFG_SIZE, &x)) {
            bounds_text(k, b, sizeof(b));
            fail(d, "%s must be %s, not '%.32s'", k->name, b, value);
            return RV_EINVAL;
        }
        if (x < k->min || x > k->max) {
            bounds_text(k, b, sizeof(b));
            fail(d, "%s is out of bounds: it must be %s", k->name, b);
            return RV_EINVAL;
        }
        if (k->type == RV_CFG_DOUBLE)
            *(double *)dst = x;
        else if (k->size == sizeof(uint64_t))
            *(uint64_t *)dst = (uint64_t)x;
        else
            *(uint32_t *)dst = (uint32_t)x;
        break;
    }
    c->set_mask |= 1ull << (size_t)(k - keys);
    return 0;
}

void rv_server_config_defaults(struct rv_server_config *c)
{
    struct rv_diag d;

    memset(c, 0, sizeof(*c));
    rv_policy_config_defaults(&c->policy);
    rv_diag_clear(&d);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].def[0] != '\0') {
            /* test_server_config checks that every default is within its own bounds. */
            int rc = rv_server_config_set(c, keys[i].name, keys[i].def, &d);
            (void)rc;
        }
    c->set_mask = 0;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

int rv_server_config_parse(struct rv_server_config *c, const char *text, size_t len,
                           const char *name, struct rv_diag *d)
{
    char line[2 * RV_SERVER_PATH_MAX], *key, *val, *eq, *end;
    unsigned long lineno = 0;
    size_t pos = 0;
    int rc;

    rv_diag_clear(d);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
        pos = 3;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;

        lineno++;
        rv_diag_set(d, name, lineno, 0, "%s", "");
        if (n >= sizeof(line)) {
            rv_diag_set(d, name, lineno, 0, "the line is longer than %zu bytes: shorten it",
                        sizeof(line) - 1);
            return RV_EPARSE;
        }
        memcpy(line, text + pos, n);
        line[n] = '\0';
        pos += n + (nl != NULL);
        if (memchr(line, '\0', n) != NULL) {
            rv_diag_set(d, name, lineno, 0, "the line holds a NUL byte: this is not a text file");
            return RV_EPARSE;
        }
        key = line;
        while (is_space(*key))
            key++;
        if (*key == '#' || *key == '\0')
            continue;
        if ((eq = strchr(key, '=')) == NULL) {
            rv_diag_set(d, name, lineno, 0,
                        "expected 'key = value' (or a # comment): add '=' and a value");
            return RV_EPARSE;
        }
        end = eq;
        while (end > key && is_space(end[-1]))
            end--;
        *end = '\0';
        if (*key == '\0') {
            rv_diag_set(d, name, lineno, 0, "a value without a key: write 'key = value'");
            return RV_EPARSE;
        }
        val = eq + 1;
        while (is_space(*val))
            val++;
        if (*val == '"') {
            char *close = strrchr(val + 1, '"');
            char *after = close != NULL ? close + 1 : NULL;
            if (close == NULL) {
                rv_diag_set(d, name, lineno, 0, "the quoted value of %s has no closing quote", key);
                return RV_EPARSE;
            }
            while (after != NULL && is_space(*after))
                after++;
            if (*after != '\0' && *after != '#') {
                rv_diag_set(d, name, lineno, 0,
                            "text after the quoted value of %s: put comments after a #", key);
                return RV_EPARSE;
            }
            *close = '\0';
            val++;
        } else {
            /* A # starts a comment when it follows white space. */
            for (char *p = val; *p != '\0'; p++)
                if (*p == '#' && (p == val || is_space(p[-1]))) {
                    *p = '\0';
                    break;
                }
            end = val + strlen(val);
            while (end > val && is_space(end[-1]))
                end--;
            *end = '\0';
        }
        if ((rc = rv_server_config_set(c, key, val, d)) != 0)
            return rc;
    }
    rv_diag_clear(d);
    return 0;
}

int rv_server_read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    size_t cap = 4096, n = 0;
    char *buf = NULL, *nb;
    ssize_t r;
    int rc = 0;

    *out = NULL;
    if (len != NULL)
        *len = 0;
    if (fd < 0)
        return RV_EIO;
    if ((buf = malloc(cap)) == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= 1024 * 1024) {
                rc = RV_ETOOBIG;
                goto out;
            }
            if ((nb = realloc(buf, cap * 2)) == NULL) {
                rc = RV_ENOMEM;
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = RV_EIO;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    if (len != NULL)
        *len = n;
out:
    free(buf);
    close(fd);
    return rc;
}

int rv_server_config_load(struct rv_server_config *c, const char *path, struct rv_diag *d)
{
    char *text = NULL;
    size_t len = 0;
    int rc;

    rv_diag_clear(d);
    if ((rc = rv_server_read_file(path, &text, &len)) != 0) {
        rv_diag_set(d, path, 0, 0,
                    "cannot read the config file (%s): check the path and its "
                    "permissions",
                    rc == RV_EIO ? strerror(errno) : rv_strerror(rc));
        return rc == RV_ETOOBIG ? RV_EINVAL : RV_EIO;
    }
    rc = rv_server_config_parse(c, text, len, path, d);
    free(text);
    return rc;
}

int rv_server_config_finish(struct rv_server_config *c, struct rv_diag *d)
{
    d->line = 0;
    d->col = 0;
    if (c->vault[0] == '\0') {
        fail(d, "no vault: set vault = DIR in the config or give --vault DIR");
        return RV_EINVAL;
    }
    if (!c->dev && (c->tls_cert[0] == '\0' || c->tls_key[0] == '\0')) {
        fail(d, "no TLS certificate: set tls_cert and tls_key, or use dev = yes (--dev) for a "
                "self-signed certificate on a development machine");
        return RV_EINVAL;
    }
    if ((c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
        fail(d, "tls_cert and tls_key go together: set both or neither");
        return RV_EINVAL;
    }
    if (c->session_idle > c->session_max) {
        fail(d, "session_idle (%u s) is longer than session_max (%u s): lower it", c->session_idle,
             c->session_max);
        return RV_EINVAL;
    }
    c->policy.alert_file = c->alert_file[0] != '\0' ? c->alert_file : NULL;
    c->policy.alert_command = c->alert_command[0] != '\0' ? c->alert_command : NULL;
    return rv_policy_config_check(&c->policy, d);
}
