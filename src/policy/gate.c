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
#include "policy/policy.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rv_gate {
    struct rv_vault *vault;
    struct rv_audit_log *log;
    uint8_t *mac; /* audit MAC key, sodium_malloc */
    struct rv_actor who;
    struct rv_check_ctx *check; /* opened at the first check */
};

static const char *const action_names[RV_ACT_COUNT] = {
    [RV_ACT_INIT] = "init",
    [RV_ACT_INGEST] = "ingest",
    [RV_ACT_STATS] = "stats",
    [RV_ACT_CHECK] = "check",
    [RV_ACT_AUDIT_READ] = "audit.read",
    [RV_ACT_SUBJECT] = "audit.subject",
};

/* Which roles may perform each action. */
static const char *const allowed_roles[RV_ACT_COUNT][4] = {
    [RV_ACT_INIT] = {"admin"},
    [RV_ACT_INGEST] = {"registrar"},
    [RV_ACT_STATS] = {"registrar", "researcher", "admin", "auditor"},
    [RV_ACT_CHECK] = {"checker"},
    [RV_ACT_AUDIT_READ] = {"auditor"},
    [RV_ACT_SUBJECT] = {"auditor"},
};

const char *rv_policy_action_name(enum rv_action a)
{
    return (unsigned)a < RV_ACT_COUNT ? action_names[a] : "unknown";
}

int rv_policy_allowed(const char *role, enum rv_action a)
{
    if (role == NULL || (unsigned)a >= RV_ACT_COUNT)
        return RV_EDENIED;
    for (size_t i = 0; i < 4 && allowed_roles[a][i] != NULL; i++)
        if (strcmp(role, allowed_roles[a][i]) == 0)
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

static int gate_new(struct rv_vault *v, const char *dir, const struct rv_actor *who,
                    struct rv_gate **out)
{
    struct rv_gate *g = calloc(1, sizeof(*g));
    int rc;

    if (g == NULL)
        return RV_ENOMEM;
    g->vault = v;
    g->who = *who;
    g->mac = sodium_malloc(32);
    if (g->mac == NULL) {
        rc = RV_ENOMEM;
        goto bad;
    }
    if ((rc = rv_vault_subkey(v, RV_SUBKEY_AUDIT_MAC, g->mac)) != 0)
        goto bad;
    if ((rc = open_log(v, dir, &g->log)) != 0)
        goto bad;
    *out = g;
    return 0;
bad:
    g->vault = NULL; /* the caller still owns v on failure */
    sodium_free(g->mac);
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

int rv_policy_close(struct rv_gate *g)
{
    int rc;

    if (g == NULL)
        return 0;
    rv_check_ctx_close(g->check);
    rc = rv_audit_close(g->log);
    rv_vault_close(g->vault);
    sodium_free(g->mac);
    free(g);
    return rc;
}

struct rv_audit_log *rv_policy_audit(struct rv_gate *g)
{
    return g->log;
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
    int rc = rv_audit_append(g->log, &e, NULL);

    /* Anything but a durable entry means the action must not go ahead. */
    return rc == 0 ? 0 : RV_EAUDIT;
}

/* Checks the role; a refusal is recorded, and reported as RV_EDENIED (or RV_EAUDIT when
 * even the refusal could not be recorded). */
static int authorise(struct rv_gate *g, enum rv_action a, const char *params)
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

int rv_policy_ingest(struct rv_gate *g, const char *path, const struct rv_ingest_opts *o,
                     struct rv_ingest_result *out)
{
    char params[512], outcome[256], date[11], hash[17];
    int rc, rc2;

    snprintf(params, sizeof(params), "area=%s edition=%s kind=%s file=%s", o->area,
             rv_date_format(o->edition, date), o->alterations ? "alterations" : "edition",
             base_name(path));
    if ((rc = authorise(g, RV_ACT_INGEST, params)) != 0)
        return rc;
    if ((rc = rv_policy_record(g, RV_ACT_INGEST, params, "started", NULL, 0)) != 0)
        return rc;

    rc = rv_ingest_file(g->vault, path, o, out);

    if (rc != 0) {
        snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
    } else {
        sodium_bin2hex(hash, sizeof(hash), out->st.file_hash, 8);
        snprintf(outcome, sizeof(outcome),
                 "%s rows=%llu stored=%llu unchanged=%llu closed=%llu anonymous=%llu "
                 "invalid=%llu file_mac=%s",
                 out->already    ? "already-ingested"
                 : out->rejected ? "rejected"
                                 : "ok",
                 (unsigned long long)out->st.rows, (unsigned long long)out->st.stored,
                 (unsigned long long)out->st.unchanged, (unsigned long long)out->st.closed,
                 (unsigned long long)out->st.anonymous, (unsigned long long)out->st.invalid, hash);
    }
    rc2 = rv_policy_record(g, RV_ACT_INGEST, params, outcome, NULL, 0);
    return rc != 0 ? rc : rc2;
}

int rv_policy_stats(struct rv_gate *g, rv_vault_stats_fn fn, void *ctx)
{
    int rc;

    if ((rc = authorise(g, RV_ACT_STATS, "")) != 0)
        return rc;
    if ((rc = rv_policy_record(g, RV_ACT_STATS, "", "ok", NULL, 0)) != 0)
        return rc;
    return rv_vault_stats(g->vault, fn, ctx);
}

int rv_policy_subject_id(struct rv_gate *g, const struct rv_elector *e, uint8_t out[32])
{
    struct rv_name_key k;
    int rc;

    if ((rc = rv_name_key(&e->name, &k)) != 0)
        return rc;
    rc = rv_audit_subject_id(g->mac, &k, &e->postcode, out);
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
    if ((rc = authorise(g, RV_ACT_SUBJECT, params)) != 0)
        goto out;
    if ((rc = rv_policy_record(g, RV_ACT_SUBJECT, params, "ok", NULL, 0)) != 0)
        goto out;
    rc = rv_audit_find_subject(g->log, id, out, n);
out:
    sodium_memzero(&e, sizeof(e));
    sodium_memzero(id, sizeof(id));
    return rc;
}

/* Records one check entry for answers [0, n), splitting the subjects over as many entries
 * as RV_AUDIT_SUBJECTS_MAX requires. */
static int record_check(struct rv_gate *g, const char *kind, const struct rv_check_answer *out,
                        size_t n)
{
    uint8_t(*subjects)[32] = NULL;
    size_t nsub = 0, cap = 0, done = 0;
    unsigned long verdicts[4] = {0};
    char params[256];
    int rc = 0;

    for (size_t i = 0; i < n; i++) {
        if ((unsigned)out[i].verdict < 4)
            verdicts[out[i].verdict]++;
        cap += out[i].nmatches;
    }
    if (cap > 0 && (subjects = sodium_allocarray(cap, 32)) == NULL)
        return RV_ENOMEM;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < out[i].nmatches; j++)
            if ((rc = rv_policy_subject_id(g, &out[i].matches[j].cand.elector, subjects[nsub++])) !=
                0)
                goto out;
    snprintf(params, sizeof(params),
             "kind=%s rows=%zu permissible=%lu review=%lu not_found=%lu out_of_scope=%lu", kind, n,
             verdicts[RV_VERDICT_PERMISSIBLE], verdicts[RV_VERDICT_REVIEW],
             verdicts[RV_VERDICT_NOT_FOUND], verdicts[RV_VERDICT_OUT_OF_SCOPE]);
    do {
        size_t take = nsub - done < RV_AUDIT_SUBJECTS_MAX ? nsub - done : RV_AUDIT_SUBJECTS_MAX;
        if ((rc = rv_policy_record(g, RV_ACT_CHECK, params, "ok",
                                   take > 0 ? (const uint8_t(*)[32])subjects[done] : NULL, take)) !=
            0)
            goto out;
        done += take;
    } while (done < nsub);
out:
    if (subjects != NULL) {
        sodium_memzero(subjects, cap * 32);
        sodium_free(subjects);
    }
    return rc;
}

int rv_policy_check(struct rv_gate *g, const char *kind, const struct rv_check_query *const *qs,
                    size_t n, struct rv_check_answer *out)
{
    char params[64];
    size_t done = 0;
    int rc;

    memset(out, 0, n * sizeof(*out));
    snprintf(params, sizeof(params), "kind=%s rows=%zu", kind, n);
    if ((rc = authorise(g, RV_ACT_CHECK, params)) != 0)
        return rc;
    if (g->check == NULL && (rc = rv_check_ctx_open(g->vault, &g->check)) != 0)
        return rc;
    for (done = 0; done < n; done++)
        if ((rc = rv_check_run(g->check, qs[done], &out[done])) != 0)
            goto bad;
    if ((rc = record_check(g, kind, out, n)) == 0)
        return 0;
bad:
    /* No entry, no answer. */
    for (size_t i = 0; i < done; i++)
        rv_check_answer_free(&out[i]);
    return rc;
}
