/*
 * gate.c - the access gate: authorise, record in the audit log, then act.
 *
 * The gate holds an unsealed vault and its audit log side by side. The log's Ed25519
 * signing seed and its MAC key for subject ids are subkeys of the vault's root key, so the
 * log needs no secret of its own and cannot be signed by anyone who cannot unseal the
 * vault. The log's origin (also its key name) is "regvault/" followed by the first eight
 * bytes of the signing public key in hex: stable for a vault, different between vaults.
 *
 * Order of work for every action: check the role (a refusal is itself recorded), append an
 * entry and wait until it is durable, and only then act. Actions that disclose electors
 * (checks) record their subject ids before the answer is handed back.
 */
#include "policy/inner.h"

#include "store/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const action_names[RV_ACT_COUNT] = {
    [RV_ACT_INIT] = "init",
    [RV_ACT_INGEST] = "ingest",
    [RV_ACT_STATS] = "stats",
    [RV_ACT_CHECK] = "check",
    [RV_ACT_AUDIT_READ] = "audit.read",
    [RV_ACT_SUBJECT] = "audit.subject",
    [RV_ACT_USERS] = "users",
    [RV_ACT_LOGIN] = "login",
    [RV_ACT_REQUEST] = "request",
    [RV_ACT_CANARY] = "canary",
    [RV_ACT_HONEYTOKEN] = "honeytoken",
    [RV_ACT_ALERT] = "alert",
    [RV_ACT_ALERTS] = "alerts",
};

/* Which roles may perform each action. */
static const char *const allowed_roles[RV_ACT_COUNT][4] = {
    [RV_ACT_INIT] = {"admin"},
    [RV_ACT_INGEST] = {"registrar"},
    [RV_ACT_STATS] = {"registrar", "researcher", "admin", "auditor"},
    [RV_ACT_CHECK] = {"checker"},
    [RV_ACT_AUDIT_READ] = {"auditor"},
    [RV_ACT_SUBJECT] = {"auditor"},
    [RV_ACT_USERS] = {"admin"},
    [RV_ACT_LOGIN] = {"*"},
    [RV_ACT_REQUEST] = {"*"},
    [RV_ACT_CANARY] = {"admin"},
    [RV_ACT_HONEYTOKEN] = {"admin"},
    [RV_ACT_ALERT] = {"*"},
    [RV_ACT_ALERTS] = {"auditor"},
};

const char *rv_policy_action_name(enum rv_action a)
{
    return (unsigned)a < RV_ACT_COUNT ? action_names[a] : "unknown";
}

static bool known_role(const char *role)
{
    static const char *const roles[] = {"admin", "registrar", "checker", "researcher", "auditor"};

    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
        if (strcmp(role, roles[i]) == 0)
            return true;
    return false;
}

int rv_policy_allowed(const char *role, enum rv_action a)
{
    if (role == NULL || (unsigned)a >= RV_ACT_COUNT)
        return RV_EDENIED;
    for (size_t i = 0; i < 4 && allowed_roles[a][i] != NULL; i++)
        if (strcmp(role, allowed_roles[a][i]) == 0 ||
            (strcmp(allowed_roles[a][i], "*") == 0 && known_role(role)))
            return 0;
    return RV_EDENIED;
}

static void audit_dir(const char *dir, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/audit", dir);
}

/* Opens (creating if needed) the vault's audit log with keys derived from the vault. */
static int open_log(struct rv_vault *v, const char *dir, struct rv_audit_log **out)
{
    uint8_t *seed = NULL, *sk = NULL;
    unsigned char pk[crypto_sign_PUBLICKEYBYTES];
    char origin[64], path[4096];
    struct rv_audit_opts opts = {0};
    int rc;

    seed = sodium_malloc(32);
    sk = sodium_malloc(crypto_sign_SECRETKEYBYTES);
    if (seed == NULL || sk == NULL) {
        rc = RV_ENOMEM;
        goto out;
    }
    if ((rc = rv_vault_subkey(v, RV_SUBKEY_AUDIT_SIGN_SEED, seed)) != 0)
        goto out;
    if (crypto_sign_seed_keypair(pk, sk, seed) != 0) {
        rc = RV_ECRYPTO;
        goto out;
    }
    memcpy(origin, "regvault/", 9);
    sodium_bin2hex(origin + 9, sizeof(origin) - 9, pk, 8);
    opts.origin = origin;
    audit_dir(dir, path, sizeof(path));
    rc = rv_audit_open(path, seed, &opts, out);
out:
    sodium_free(seed);
    sodium_free(sk);
    return rc;
}

/* The gate's store: <vault>/gate, beside the vault's <vault>/store. */
#define STATE_DIR "gate"

/* The key byte of each kind of record the gate keeps in its own store; vaults made before
 * that store existed keep them in the vault's store, from where state_open moves them. */
static const uint8_t state_tags[] = {0x80 /* principals */, 0x82 /* honeytokens */,
                                     0x83 /* limits */};

/* In the gate's store, once the records of the vault's store have been copied into it. */
static const uint8_t STATE_MARKER[] = {0x01, 'g', 'a', 't', 'e', ' ', 's', 't', 'o', 'r', 'e'};
#define STATE_VERSION 1

static int copy_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    return rv_store_put(ctx, key, klen, val, vlen);
}

static int any_one(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val, size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    *(bool *)ctx = true;
    return 1;
}

/* True (1) when the vault's store still holds any of the gate's records, 0 when none, or an
 * RV_E* code. A read transaction: it never waits for the vault's writer. */
static int vault_has_state(struct rv_store *vs)
{
    struct rv_txn *t = NULL;
    bool any = false;
    int rc;

    if ((rc = rv_store_begin(vs, false, &t)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(state_tags) && rc == 0 && !any; i++)
        rc = rv_store_scan(t, &state_tags[i], 1, any_one, &any);
    rv_store_abort(t);
    return rc != 0 ? rc : any;
}

/* Copies the gate's records from the vault's store into the gate's, with the marker, in
 * one transaction of the gate's store: all or nothing. Nothing when the marker is there. */
static int state_copy(struct rv_store *vs, struct rv_store *ss)
{
    struct rv_txn *st = NULL, *vt = NULL;
    const void *val;
    size_t vlen;
    const uint8_t ver = STATE_VERSION;
    int rc;

    /* Every open but the first finds the marker: look in a read transaction, which costs no
     * sync, and look again under the write lock (another process may be copying). */
    if ((rc = rv_store_begin(ss, false, &st)) != 0)
        return rc;
    rc = rv_store_get(st, STATE_MARKER, sizeof(STATE_MARKER), &val, &vlen);
    rv_store_abort(st);
    if (rc != RV_ENOTFOUND)
        return rc;
    if ((rc = rv_store_begin(ss, true, &st)) != 0)
        return rc;
    rc = rv_store_get(st, STATE_MARKER, sizeof(STATE_MARKER), &val, &vlen);
    if (rc == 0) {
        rv_store_abort(st);
        return 0;
    }
    if (rc != RV_ENOTFOUND)
        goto bad;
    if ((rc = rv_store_begin(vs, false, &vt)) != 0)
        goto bad;
    for (size_t i = 0; i < sizeof(state_tags) && rc == 0; i++)
        rc = rv_store_scan(vt, &state_tags[i], 1, copy_one, st);
    rv_store_abort(vt);
    if (rc != 0 || (rc = rv_store_put(st, STATE_MARKER, sizeof(STATE_MARKER), &ver, 1)) != 0)
        goto bad;
    return rv_store_commit(st);
bad:
    rv_store_abort(st);
    return rc;
}

/* Deletes the gate's records from the vault's store (copies the gate's store holds). */
static int vault_drop_state(struct rv_store *vs)
{
    struct rv_txn *t = NULL;
    int rc;

    if ((rc = rv_store_begin(vs, true, &t)) != 0)
        return rc;
    for (size_t i = 0; i < sizeof(state_tags) && rc == 0; i++)
        rc = rv_store_del_prefix(t, &state_tags[i], 1, NULL, NULL);
    if (rc != 0) {
        rv_store_abort(t);
        return rc;
    }
    return rv_store_commit(t);
}

/* Opens (creating if needed, mode 0700) the gate's store beside the vault's, and moves into
 * it the records a vault made before it kept in the vault's store: copied first with the
 * marker (one commit), then deleted from the vault's store. A crash or a failure between the
 * two leaves copies in the vault's store that nothing reads; every open deletes them until
 * it succeeds. */
static int state_open(struct rv_vault *v, const char *dir, struct rv_store **out)
{
    const struct rv_store_opts opts = {.small = true};
    struct rv_store *vs = rv_vault_store(v), *ss = NULL;
    char path[4096];
    int rc, stale;

    *out = NULL;
    if (snprintf(path, sizeof(path), "%s/" STATE_DIR, dir) >= (int)sizeof(path))
        return RV_EINVAL;
    if (mkdir(path, 0700) == 0) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return RV_EIO;
        rc = fsync(fd) == 0 ? 0 : RV_EIO;
        close(fd);
        if (rc != 0)
            return rc;
    } else if (errno != EEXIST) {
        return RV_EIO;
    }
    if ((rc = rv_store_open_opts(path, &opts, &ss)) != 0)
        return rc;
    if ((rc = state_copy(vs, ss)) != 0)
        goto bad;
    if ((stale = vault_has_state(vs)) < 0) {
        rc = stale;
        goto bad;
    }
    if (stale)
        (void)vault_drop_state(vs); /* copies that nothing reads: the next open retries */
    *out = ss;
    return 0;
bad:
    rv_store_close(ss);
    return rc;
}

static void shared_free(struct rv_gate_shared *sh)
{
    if (sh == NULL)
        return;
    rv_alerter_free(sh->alerter);
    rv_canaries_free(sh->canaries);
    rv_limits_free(sh->limits);
    rv_principals_free(sh->principals);
    rv_store_close(sh->state);
    pthread_mutex_destroy(&sh->cfg_lock);
    free((char *)sh->cfg.alert_file);
    free((char *)sh->cfg.alert_command);
    sodium_free(sh->mac);
    free(sh->dir);
    free(sh);
}

static int gate_new(struct rv_vault *v, const char *dir, const struct rv_actor *who,
                    struct rv_gate **out)
{
    struct rv_gate *g = calloc(1, sizeof(*g));
    struct rv_gate_shared *sh = calloc(1, sizeof(*sh));
    int rc = RV_ENOMEM;

    if (g == NULL || sh == NULL)
        goto bad;
    g->sh = sh;
    g->who = *who;
    pthread_mutex_init(&sh->cfg_lock, NULL);
    rv_policy_config_defaults(&sh->cfg);
    sh->mac = sodium_malloc(32);
    sh->dir = strdup(dir);
    if (sh->mac == NULL || sh->dir == NULL)
        goto bad;
    if ((rc = rv_vault_subkey(v, RV_SUBKEY_AUDIT_MAC, sh->mac)) != 0)
        goto bad;
    if ((rc = state_open(v, dir, &sh->state)) != 0)
        goto bad;
    if ((rc = open_log(v, dir, &sh->log)) != 0)
        goto bad;
    sh->vault = v;
    if ((rc = rv_principals_new(sh, &sh->principals)) != 0 ||
        (rc = rv_limits_new(sh, &sh->limits)) != 0 ||
        (rc = rv_alerter_new(sh, &sh->alerter)) != 0 ||
        (rc = rv_canaries_new(sh, &sh->canaries)) != 0) {
        sh->vault = NULL;
        goto bad;
    }
    *out = g;
    return 0;
bad:
    /* The caller still owns v on failure. */
    if (sh != NULL && sh->log != NULL)
        (void)rv_audit_close(sh->log);
    shared_free(sh);
    free(g);
    return rc;
}

int rv_policy_create(const char *dir, const struct rv_vault_secret *secret,
                     uint64_t expected_electors, const struct rv_actor *who)
{
    struct rv_vault *v = NULL;
    struct rv_gate *g = NULL;
    char params[128];
    int rc, rc2;

    if ((rc = rv_policy_allowed(who->role, RV_ACT_INIT)) != 0)
        return rc;
    if ((rc = rv_vault_create(dir, secret, expected_electors)) != 0)
        return rc;
    if ((rc = rv_vault_open(dir, secret, &v)) != 0)
        return rc;
    if ((rc = gate_new(v, dir, who, &g)) != 0) {
        rv_vault_close(v);
        return rc;
    }
    snprintf(params, sizeof(params), "index_bits=%u", rv_vault_index_bits(v));
    rc = rv_policy_record(g, RV_ACT_INIT, params, "ok", NULL, 0);
    rc2 = rv_policy_close(g);
    return rc != 0 ? rc : rc2;
}

int rv_policy_open(const char *dir, const struct rv_vault_secret *secret,
                   const struct rv_actor *who, struct rv_gate **out)
{
    struct rv_vault *v = NULL;
    int rc;

    if ((rc = rv_vault_open(dir, secret, &v)) != 0)
        return rc;
    if ((rc = gate_new(v, dir, who, out)) != 0)
        rv_vault_close(v);
    return rc;
}

void rv_policy_prefetch(struct rv_gate *g)
{
    if (g->sh->vault != NULL) {
        g->sh->prefetch = true;
        (void)rv_store_prefetch(rv_vault_store(g->sh->vault)); /* only a hint */
    }
}

/* After an ingest, which may have grown the store's map (a growth maps the file again and
 * stops a prefetch), a long-running reader has the new map prefetched. */
static void prefetch_again(struct rv_gate *g)
{
    if (g->sh->prefetch)
        (void)rv_store_prefetch(rv_vault_store(g->sh->vault)); /* only a hint */
}

int rv_policy_close(struct rv_gate *g)
{
    struct rv_gate_shared *sh;
    int rc;

    if (g == NULL)
        return 0;
    rv_check_ctx_close(g->check);
    free(g->subjects);
    sh = g->sh;
    if (g->is_view) {
        free(g);
        return 0;
    }
    free(g);
    /* Hooks still running may record their failure: stop them before the log closes. */
    rv_alerter_free(sh->alerter);
    sh->alerter = NULL;
    rc = rv_audit_close(sh->log);
    rv_vault_close(sh->vault);
    shared_free(sh);
    return rc;
}

int rv_policy_view(struct rv_gate *g, const struct rv_actor *who, struct rv_gate **out)
{
    struct rv_gate *v = calloc(1, sizeof(*v));

    if (v == NULL)
        return RV_ENOMEM;
    v->sh = g->sh;
    v->is_view = true;
    v->who = *who;
    *out = v;
    return 0;
}

void rv_policy_set_actor(struct rv_gate *g, const struct rv_actor *who)
{
    g->who = *who;
}

const struct rv_actor *rv_policy_actor(const struct rv_gate *g)
{
    return &g->who;
}

const char *rv_policy_dir(const struct rv_gate *g)
{
    return g->sh->dir;
}

bool rv_gate_is_local(const struct rv_gate *g)
{
    return g->who.client != NULL && strcmp(g->who.client, "local") == 0;
}

void rv_client_key(const char *client, char out[RV_CLIENT_KEY_MAX])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct in6_addr a6;
    char text[INET6_ADDRSTRLEN];

    if (client == NULL || strchr(client, ':') == NULL || inet_pton(AF_INET6, client, &a6) != 1) {
        snprintf(out, RV_CLIENT_KEY_MAX, "%.*s", RV_CLIENT_KEY_MAX - 1,
                 client != NULL ? client : "");
        return;
    }
    if (memcmp(a6.s6_addr, mapped, sizeof(mapped)) == 0) {
        /* An IPv4 client seen through an IPv6 socket is that IPv4 address. */
        inet_ntop(AF_INET, a6.s6_addr + 12, text, sizeof(text));
        snprintf(out, RV_CLIENT_KEY_MAX, "%s", text);
        return;
    }
    /* One subscriber holds a whole /64 and may use any address in it: one client. */
    memset(a6.s6_addr + 8, 0, 8);
    inet_ntop(AF_INET6, &a6, text, sizeof(text));
    snprintf(out, RV_CLIENT_KEY_MAX, "%s/64", text);
}

struct rv_audit_log *rv_policy_audit(struct rv_gate *g)
{
    return g->sh->log;
}

/* ------------------------------------------------------------------------------------------
 * Settings.
 */

void rv_policy_config_defaults(struct rv_policy_config *c)
{
    memset(c, 0, sizeof(*c));
    c->budget_checker = 300;
    c->rate_principal = 20;
    c->burst_principal = 40;
    c->rate_client = 50;
    c->burst_client = 100;
    c->probe_window = 100;
    c->probe_nomatch_ratio = 0.6;
    c->probe_sector_max = 40;
    c->probe_sweep_run = 25;
    c->probe_alerts_suspend = 3;
    c->alert_command_ms = 5000;
    c->alert_syslog = true;
}

static bool rate_ok(double r)
{
    return isfinite(r) && r > 0 && r <= 1e6;
}

int rv_policy_config_check(const struct rv_policy_config *c, struct rv_diag *d)
{
    const char *bad = NULL, *bounds = NULL;

    if (c->budget_checker < 1 || c->budget_checker > 10000000)
        bad = "budget_checker", bounds = "1 to 10000000 electors a day";
    else if (!rate_ok(c->rate_principal))
        bad = "rate_principal", bounds = "more than 0 and at most 1000000 requests a second";
    else if (c->burst_principal < 1 || c->burst_principal > 1000000)
        bad = "burst_principal", bounds = "1 to 1000000";
    else if (!rate_ok(c->rate_client))
        bad = "rate_client", bounds = "more than 0 and at most 1000000 requests a second";
    else if (c->burst_client < 1 || c->burst_client > 1000000)
        bad = "burst_client", bounds = "1 to 1000000";
    else if (c->probe_window < 10 || c->probe_window > 100000)
        bad = "probe_window", bounds = "10 to 100000 checks";
    else if (!(c->probe_nomatch_ratio > 0 && c->probe_nomatch_ratio <= 1))
        bad = "probe_nomatch_ratio", bounds = "more than 0 and at most 1";
    else if (c->probe_sector_max < 2 || c->probe_sector_max > 100000)
        bad = "probe_sector_max", bounds = "2 to 100000 checks";
    else if (c->probe_sweep_run < 3 || c->probe_sweep_run > 100000)
        bad = "probe_sweep_run", bounds = "3 to 100000 checks";
    else if (c->probe_alerts_suspend < 1 || c->probe_alerts_suspend > 1000)
        bad = "probe_alerts_suspend", bounds = "1 to 1000 alerts";
    else if (c->alert_command_ms < 100 || c->alert_command_ms > 600000)
        bad = "alert_command_ms", bounds = "100 to 600000 ms";
    else if (c->alert_command != NULL && c->alert_command[0] == '\0')
        bad = "alert_command", bounds = "a command line, or left out";
    else if (c->alert_file != NULL && c->alert_file[0] != '/')
        bad = "alert_file", bounds = "an absolute path";
    if (bad == NULL)
        return 0;
    rv_diag_set(d, "", 0, 0, "%s is out of bounds: it must be %s", bad, bounds);
    return RV_EINVAL;
}

int rv_policy_configure(struct rv_gate *g, const struct rv_policy_config *c, struct rv_diag *d)
{
    struct rv_gate_shared *sh = g->sh;
    char *file = NULL, *cmd = NULL;
    const char *oldf, *oldc;
    int rc;

    if ((rc = rv_policy_config_check(c, d)) != 0)
        return rc;
    if ((c->alert_file != NULL && (file = strdup(c->alert_file)) == NULL) ||
        (c->alert_command != NULL && (cmd = strdup(c->alert_command)) == NULL)) {
        free(file);
        return RV_ENOMEM;
    }
    pthread_mutex_lock(&sh->cfg_lock);
    oldf = sh->cfg.alert_file;
    oldc = sh->cfg.alert_command;
    sh->cfg = *c;
    sh->cfg.alert_file = file;
    sh->cfg.alert_command = cmd;
    pthread_mutex_unlock(&sh->cfg_lock);
    free((char *)oldf);
    free((char *)oldc);
    return 0;
}

int rv_policy_record(struct rv_gate *g, enum rv_action a, const char *params, const char *outcome,
                     const uint8_t (*subjects)[32], size_t nsubjects)
{
    struct rv_audit_entry e = {
        .time_ms = 0,
        .principal = g->who.principal,
        .role = g->who.role,
        .action = rv_policy_action_name(a),
        .params = params,
        .outcome = outcome,
        .client = g->who.client,
        .subjects = subjects,
        .nsubjects = nsubjects,
    };
    int rc = rv_audit_append(g->sh->log, &e, NULL);

    /* Anything but a durable entry means the action must not go ahead. */
    return rc == 0 ? 0 : RV_EAUDIT;
}

int rv_gate_authorise(struct rv_gate *g, enum rv_action a, const char *params)
{
    int rc;

    if (rv_policy_allowed(g->who.role, a) == 0)
        return 0;
    rc = rv_policy_record(g, a, params, "denied: role", NULL, 0);
    return rc != 0 ? rc : RV_EDENIED;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s != NULL ? s + 1 : path;
}

static void ingest_params(const char *path, const struct rv_ingest_opts *o, char *params,
                          size_t len)
{
    char date[11];

    snprintf(params, len, "area=%s edition=%s kind=%s file=%s", o->area,
             rv_date_format(o->edition, date), o->alterations ? "alterations" : "edition",
             base_name(path));
}

static void ingest_outcome(int rc, const struct rv_ingest_result *out, char *outcome, size_t len)
{
    char hash[17];

    if (rc != 0) {
        snprintf(outcome, len, "error: %s", rv_strerror(rc));
        return;
    }
    sodium_bin2hex(hash, sizeof(hash), out->st.file_hash, 8);
    snprintf(outcome, len,
             "%s rows=%llu stored=%llu unchanged=%llu closed=%llu anonymous=%llu "
             "invalid=%llu file_mac=%s",
             out->already    ? "already-ingested"
             : out->rejected ? "rejected"
                             : "ok",
             (unsigned long long)out->st.rows, (unsigned long long)out->st.stored,
             (unsigned long long)out->st.unchanged, (unsigned long long)out->st.closed,
             (unsigned long long)out->st.anonymous, (unsigned long long)out->st.invalid, hash);
}

int rv_policy_ingest(struct rv_gate *g, const char *path, const struct rv_ingest_opts *o,
                     struct rv_ingest_result *out)
{
    char params[512], outcome[256];
    int rc, rc2;

    ingest_params(path, o, params, sizeof(params));
    if ((rc = rv_gate_authorise(g, RV_ACT_INGEST, params)) != 0)
        return rc;
    if ((rc = rv_policy_record(g, RV_ACT_INGEST, params, "started", NULL, 0)) != 0)
        return rc;

    rc = rv_ingest_file(g->sh->vault, path, o, out);
    prefetch_again(g);

    ingest_outcome(rc, out, outcome, sizeof(outcome));
    rc2 = rv_policy_record(g, RV_ACT_INGEST, params, outcome, NULL, 0);
    return rc != 0 ? rc : rc2;
}

int rv_policy_ingest_load(struct rv_gate *g, struct rv_ingest_file *files, size_t n, size_t *done)
{
    char params[512], outcome[256];
    int rc = 0, rc2;

    *done = 0;
    for (size_t i = 0; i < n; i++) {
        ingest_params(files[i].path, &files[i].o, params, sizeof(params));
        if ((rc = rv_gate_authorise(g, RV_ACT_INGEST, params)) != 0)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        ingest_params(files[i].path, &files[i].o, params, sizeof(params));
        if ((rc = rv_policy_record(g, RV_ACT_INGEST, params, "started", NULL, 0)) != 0)
            return rc;
    }

    rc = rv_ingest_load(g->sh->vault, files, n, done);
    prefetch_again(g);

    for (size_t i = 0; i < n; i++) {
        ingest_params(files[i].path, &files[i].o, params, sizeof(params));
        if (i < *done)
            ingest_outcome(files[i].rc, &files[i].res, outcome, sizeof(outcome));
        else
            snprintf(outcome, sizeof(outcome), "not tried: an earlier file stopped the load");
        rc2 = rv_policy_record(g, RV_ACT_INGEST, params, outcome, NULL, 0);
        if (rc == 0)
            rc = rc2;
    }
    return rc;
}

int rv_policy_stats(struct rv_gate *g, rv_vault_stats_fn fn, void *ctx)
{
    int rc;

    if ((rc = rv_gate_authorise(g, RV_ACT_STATS, "")) != 0)
        return rc;
    if ((rc = rv_policy_record(g, RV_ACT_STATS, "", "ok", NULL, 0)) != 0)
        return rc;
    return rv_vault_stats(g->sh->vault, fn, ctx);
}

int rv_policy_subject_id(struct rv_gate *g, const struct rv_elector *e, uint8_t out[32])
{
    struct rv_name_key k;
    int rc;

    if ((rc = rv_name_key(&e->name, &k)) != 0)
        return rc;
    rc = rv_audit_subject_id(g->sh->mac, &k, &e->postcode, out);
    sodium_memzero(&k, sizeof(k));
    return rc;
}

int rv_policy_subject(struct rv_gate *g, const char *name, const char *postcode, uint64_t **out,
                      size_t *n, struct rv_diag *diag)
{
    struct rv_elector e;
    uint8_t id[32];
    char params[80], hex[17];
    int rc;

    memset(&e, 0, sizeof(e));
    *out = NULL;
    *n = 0;
    if ((rc = rv_name_parse(name, strlen(name), &e.name)) != 0) {
        rv_diag_set(diag, "--name", 0, 0, "the name could not be read (%s)", rv_strerror(rc));
        goto out;
    }
    if (postcode[0] != '\0' &&
        (rc = rv_postcode_parse(postcode, strlen(postcode), &e.postcode)) != 0) {
        rv_diag_set(diag, "--postcode", 0, 0, "not a valid UK postcode (BS 7666)");
        goto out;
    }
    if ((rc = rv_policy_subject_id(g, &e, id)) != 0)
        goto out;
    /* The log shows which subject was searched for only as a prefix of its keyed id, in the
     * parameters: listing the search among the subject's own accesses would make every
     * answer to "who looked me up" include the question itself. */
    sodium_bin2hex(hex, sizeof(hex), id, 8);
    snprintf(params, sizeof(params), "subject=%s", hex);
    if ((rc = rv_gate_authorise(g, RV_ACT_SUBJECT, params)) != 0)
        goto out;
    if ((rc = rv_policy_record(g, RV_ACT_SUBJECT, params, "ok", NULL, 0)) != 0)
        goto out;
    rc = rv_audit_find_subject(g->sh->log, id, out, n);
out:
    sodium_memzero(&e, sizeof(e));
    sodium_memzero(id, sizeof(id));
    return rc;
}

/* The subject ids of every register entry answers [0, n) show, answer by answer and match
 * by match, into the view's own buffer (grown as needed, kept for the next check: subject
 * ids are keyed MACs, not keys, and guarded pages per check would serialise every thread on
 * the kernel's mapping lock). *subjects is borrowed until the view's next check; wipe it
 * with wipe_subjects. */
static int check_subjects(struct rv_gate *g, const struct rv_check_answer *out, size_t n,
                          uint8_t (**subjects)[32], size_t *nsub)
{
    size_t cap = 0;
    int rc;

    *subjects = NULL;
    *nsub = 0;
    for (size_t i = 0; i < n; i++)
        cap += out[i].nmatches;
    if (cap == 0)
        return 0;
    if (cap > g->subjects_cap) {
        uint8_t(*p)[32];
        if (cap > SIZE_MAX / 64)
            return RV_ENOMEM;
        if ((p = malloc(cap * 2 * 32)) == NULL)
            return RV_ENOMEM;
        free(g->subjects);
        g->subjects = p;
        g->subjects_cap = cap * 2;
    }
    *subjects = g->subjects;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < out[i].nmatches; j++)
            if ((rc = rv_policy_subject_id(g, &out[i].matches[j].cand.elector,
                                           (*subjects)[(*nsub)++])) != 0)
                return rc;
    return 0;
}

static void wipe_subjects(uint8_t (*subjects)[32], size_t nsub)
{
    if (subjects != NULL)
        sodium_memzero(subjects, nsub * 32);
}

/* Charges the electors answers [0, n) show to the budget. A subject id is a keyed hash of
 * name and postcode, so a father and son of one name at one address share it; such entries
 * score alike and are shown together, in one answer. Each repeat of an id within one answer
 * is therefore charged as another elector, under a variant of the id (its last byte xored
 * with the repeat count). The audit entry keeps the true ids. */
static int charge(struct rv_gate *g, const struct rv_check_answer *out, size_t n,
                  const uint8_t (*subjects)[32], size_t nsub)
{
    uint8_t(*ids)[32] = NULL;
    size_t k = 0;
    int rc;

    if (nsub == 0)
        return rv_limits_charge(g, subjects, 0);
    if ((ids = malloc(nsub * 32)) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        size_t start = k;
        for (size_t j = 0; j < out[i].nmatches && k < nsub; j++, k++) {
            uint8_t rep = 0;
            for (size_t m = start; m < k; m++)
                rep = (uint8_t)(rep + (sodium_memcmp(subjects[m], subjects[k], 32) == 0));
            memcpy(ids[k], subjects[k], 32);
            ids[k][31] ^= rep;
        }
    }
    rc = rv_limits_charge(g, (const uint8_t(*)[32])ids, nsub);
    sodium_memzero(ids, nsub * 32);
    free(ids);
    return rc;
}

/* Records the check entries for answers [0, n), splitting the subjects over as many entries
 * as RV_AUDIT_SUBJECTS_MAX requires. */
static int record_check(struct rv_gate *g, const char *kind, const struct rv_check_answer *out,
                        size_t n, const uint8_t (*subjects)[32], size_t nsub)
{
    unsigned long verdicts[4] = {0};
    char params[256];
    size_t done = 0;
    int rc = 0;

    for (size_t i = 0; i < n; i++)
        if ((unsigned)out[i].verdict < 4)
            verdicts[out[i].verdict]++;
    snprintf(params, sizeof(params),
             "kind=%s rows=%zu permissible=%lu review=%lu not_found=%lu out_of_scope=%lu", kind, n,
             verdicts[RV_VERDICT_PERMISSIBLE], verdicts[RV_VERDICT_REVIEW],
             verdicts[RV_VERDICT_NOT_FOUND], verdicts[RV_VERDICT_OUT_OF_SCOPE]);
    do {
        size_t take = nsub - done < RV_AUDIT_SUBJECTS_MAX ? nsub - done : RV_AUDIT_SUBJECTS_MAX;
        if ((rc = rv_policy_record(g, RV_ACT_CHECK, params, "ok", take > 0 ? subjects + done : NULL,
                                   take)) != 0)
            return rc;
        done += take;
    } while (done < nsub);
    return 0;
}

/* Cores online, within what the check context takes. */
static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        return 1;
    return n > RV_CHECK_THREADS_MAX ? RV_CHECK_THREADS_MAX : (unsigned)n;
}

int rv_policy_check(struct rv_gate *g, const char *kind, const struct rv_check_query *const *qs,
                    size_t n, struct rv_check_answer *out)
{
    uint8_t(*subjects)[32] = NULL;
    size_t nsub = 0, done = 0;
    char params[64];
    int rc;

    memset(out, 0, n * sizeof(*out));
    snprintf(params, sizeof(params), "kind=%s rows=%zu", kind, n);
    if ((rc = rv_gate_authorise(g, RV_ACT_CHECK, params)) != 0)
        return rc;
    /* Asked again at every call, so that a batch answered chunk by chunk stops at the first
     * chunk after its principal is suspended or disabled. */
    if ((rc = rv_limits_state(g)) != 0) {
        int rc2 = rv_policy_record(g, RV_ACT_CHECK, params,
                                   rc == RV_ESUSPENDED ? "denied: suspended" : "error", NULL, 0);
        return rc2 != 0 ? rc2 : rc;
    }
    /* n = 0 (a batch chunk with no checkable row) is still recorded, as a check of none. */
    if (n > 0 && g->check == NULL) {
        if ((rc = rv_check_ctx_open(g->sh->vault, &g->check)) != 0)
            return rc;
        /* The local command has the machine to itself: a batch chunk is spread over every
         * core. A daemon's view keeps one thread; the daemon's requests fill the cores. */
        if (!g->is_view && (rc = rv_check_ctx_set_threads(g->check, online_cpus())) != 0)
            return rc;
    }
    if (n == 1) {
        if ((rc = rv_check_run(g->check, qs[0], &out[0])) != 0)
            goto bad;
    } else if (n > 1 && (rc = rv_check_run_many(g->check, qs, n, out)) != 0) {
        goto bad; /* every answer already freed */
    }
    done = n;
    if ((rc = check_subjects(g, out, n, &subjects, &nsub)) != 0)
        goto bad;
    /* The budget counts distinct electors shown: past it, nobody is shown anything. */
    if (!rv_gate_is_local(g) &&
        (rc = charge(g, out, n, (const uint8_t(*)[32])subjects, nsub)) != 0) {
        int rc2 = rv_policy_record(g, RV_ACT_CHECK, params,
                                   rc == RV_ELIMIT ? "denied: budget" : "error", NULL, 0);
        rc = rc2 != 0 ? rc2 : rc;
        goto bad;
    }
    if ((rc = record_check(g, kind, out, n, (const uint8_t(*)[32])subjects, nsub)) != 0)
        goto bad;
    wipe_subjects(subjects, nsub);
    /* Detection comes after the answer is on the log and never changes it; an alert that
     * cannot be recorded fails the whole request closed. */
    if ((rc = rv_canary_scan(g, out, n)) != 0 ||
        (!rv_gate_is_local(g) && (rc = rv_limits_observe(g, qs, out, n)) != 0)) {
        subjects = NULL;
        /* These very checks suspended the principal: their answers are withheld too. */
        if (rc == RV_ESUSPENDED) {
            int rc2 = rv_policy_record(g, RV_ACT_CHECK, params, "withheld: suspended", NULL, 0);
            rc = rc2 != 0 ? rc2 : rc;
        }
        goto bad;
    }
    return 0;
bad:
    /* No entry, no answer. */
    wipe_subjects(subjects, nsub);
    for (size_t i = 0; i < done && i < n; i++)
        rv_check_answer_free(&out[i]);
    return rc;
}
