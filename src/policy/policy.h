/*
 * policy.h - the one boundary every front-end action crosses. It authorises the action for
 * the actor's role, records it in the vault's audit log, and only then acts or answers.
 *
 * A front end (the regvault command, later the HTTPS daemon) never calls vault/, ingest/ or
 * check/ directly: it opens a gate on a vault for an actor and asks the gate. The gate
 * keeps the audit log open beside the vault (<vault>/audit/), derives the log's signing
 * key and MAC key from the vault's root key, and fails closed: when an entry cannot be made
 * durable, the action is refused with RV_EAUDIT and no result is returned.
 *
 * Roles (DESIGN.md): admin (principals and keys, never records), registrar (ingest),
 * checker (permissibility checks), researcher (aggregates), auditor (the audit log). The
 * local command acts as the operator who holds the vault's secret; each verb records the
 * role its action needs.
 */
#ifndef RV_POLICY_H
#define RV_POLICY_H

#include "audit/audit.h"
#include "check/check.h"
#include "core/core.h"
#include "ingest/ingest.h"
#include "vault/vault.h"

/* Who is acting. Strings are borrowed for the life of the gate. */
struct rv_actor {
    const char *principal; /* the OS user for local commands; the vault principal otherwise */
    const char *role;      /* "admin", "registrar", "checker", "researcher", "auditor" */
    const char *client;    /* "local", or the client's address */
};

/* Actions the gate knows. Each has a fixed set of roles allowed to perform it. */
enum rv_action {
    RV_ACT_INIT = 0,   /* create a vault (admin) */
    RV_ACT_INGEST,     /* load a register file (registrar) */
    RV_ACT_STATS,      /* counts by area, edition and marker (registrar, researcher, admin) */
    RV_ACT_CHECK,      /* permissibility checks, single or batch (checker) */
    RV_ACT_AUDIT_READ, /* checkpoints, proofs, entries (auditor) */
    RV_ACT_SUBJECT,    /* who looked up an elector (auditor) */
    RV_ACT_USERS,      /* add, list, disable, reset, reinstate principals; set budgets (admin) */
    RV_ACT_LOGIN,      /* a login or password change (anyone; recorded with its outcome) */
    RV_ACT_REQUEST,    /* a daemon request refused before any other action (anyone) */
    RV_ACT_CANARY,     /* add canary electors (admin) */
    RV_ACT_HONEYTOKEN, /* create a honeytoken credential (admin) */
    RV_ACT_ALERT,      /* an alert raised by the vault itself (recorded for any role) */
    RV_ACT_ALERTS,     /* list alerts (auditor) */
    RV_ACT_COUNT
};

/* The action's name as recorded in the log ("ingest", "check", ...). */
const char *rv_policy_action_name(enum rv_action a);
/* 0 when role may perform a, RV_EDENIED otherwise (an unknown role may do nothing). */
RV_NODISCARD int rv_policy_allowed(const char *role, enum rv_action a);

struct rv_gate;

/* Creates a vault in dir (see rv_vault_create) and its audit log, whose first entry records
 * the creation. who must hold the admin role. RV_EEXIST if dir already holds a vault. */
RV_NODISCARD int rv_policy_create(const char *dir, const struct rv_vault_secret *secret,
                                  uint64_t expected_electors, const struct rv_actor *who)
    RV_NONNULL(1, 2, 4);

/* Opens and unseals the vault in dir and its audit log for who. Errors as rv_vault_open,
 * plus RV_EAUDIT when the log cannot be opened for writing and RV_EBUSY when another
 * process is writing it. Returned gate: free with rv_policy_close. */
RV_NODISCARD int rv_policy_open(const char *dir, const struct rv_vault_secret *secret,
                                const struct rv_actor *who, struct rv_gate **out)
    RV_NONNULL(1, 2, 3, 4);
/* The key by which a client address is counted (rate limits, lockouts, the daemon's
 * connections per client): an IPv4 address as it is (an IPv4-mapped IPv6 address as its IPv4
 * address), an IPv6 address as its /64 ("2001:db8:1:2::/64"), since one subscriber holds a
 * whole /64, and anything else as given (truncated). */
#define RV_CLIENT_KEY_MAX 64
void rv_client_key(const char *client, char out[RV_CLIENT_KEY_MAX]);

/* Has the vault's store read into the page cache and faulted into the process's map in the
 * background (rv_store_prefetch), so that a daemon's checks after it starts neither wait on
 * the disk nor take page faults; and again after each ingest through this gate (which may
 * have grown, and so remade, the map). A hint: it returns at once and cannot fail. */
void rv_policy_prefetch(struct rv_gate *g) RV_NONNULL(1);
/* Signs a final checkpoint, closes the log and the vault, and wipes every key. Returns the
 * checkpoint's result (RV_EAUDIT if it could not be signed); the gate is gone either way.
 * On a view (rv_policy_view) it frees only the view. NULL is a no-op. */
int rv_policy_close(struct rv_gate *g);

/* ------------------------------------------------------------------------------------------
 * Views: one open vault, many actors. The daemon opens one gate and gives each worker thread
 * a view, whose actor it sets per request. A gate and its views may be used by different
 * threads at once; each view by one thread at a time. Views must be closed before the gate.
 */

/* A view of g acting for who (strings borrowed until the next rv_policy_set_actor or
 * rv_policy_close). Returned view: free with rv_policy_close. */
RV_NODISCARD int rv_policy_view(struct rv_gate *g, const struct rv_actor *who, struct rv_gate **out)
    RV_NONNULL(1, 2, 3);
/* Changes the actor of a view (or of a gate); who's strings are borrowed as above. */
void rv_policy_set_actor(struct rv_gate *g, const struct rv_actor *who) RV_NONNULL(1, 2);
/* The actor (borrowed). */
const struct rv_actor *rv_policy_actor(const struct rv_gate *g) RV_NONNULL(1);
/* The vault's folder (borrowed until the gate closes). */
const char *rv_policy_dir(const struct rv_gate *g) RV_NONNULL(1);

/* ------------------------------------------------------------------------------------------
 * Settings of the prevention and detection controls (budgets, rate limits, probing limits,
 * alert delivery). The daemon reads them from its config; local commands use the defaults.
 */
struct rv_policy_config {
    uint32_t budget_checker;       /* distinct electors a checker may be shown a day: 300 */
    double rate_principal;         /* requests per second per principal (token bucket): 20 */
    uint32_t burst_principal;      /* bucket size: 40 */
    double rate_client;            /* requests per second per client address: 50 */
    uint32_t burst_client;         /* bucket size: 100 */
    uint32_t probe_window;         /* probing is judged over a principal's last N checks: 100 */
    double probe_nomatch_ratio;    /* alert when more than this share found nobody: 0.6 */
    uint32_t probe_sector_max;     /* alert at more checks than this in one postcode sector in
                                      the window: 40 */
    uint32_t probe_sweep_run;      /* alert at a run of this many checks in alphabetical or
                                      sequential order: 25 */
    uint32_t probe_alerts_suspend; /* probing alerts in a day before suspension: 3 */
    const char *alert_file;        /* NULL: <vault>/alerts.log */
    const char *alert_command;     /* NULL: no hook; else run with the alert as JSON on stdin */
    uint32_t alert_command_ms;     /* the hook's time limit: 5000 */
    bool alert_syslog;             /* a line to syslog (LOG_AUTHPRIV): true */
};
/* Fills c with the defaults above. */
void rv_policy_config_defaults(struct rv_policy_config *c) RV_NONNULL(1);
/* 0 when every setting is within bounds; RV_EINVAL and a message in d (naming the setting
 * and its bounds) otherwise. */
RV_NODISCARD int rv_policy_config_check(const struct rv_policy_config *c, struct rv_diag *d)
    RV_NONNULL(1, 2);
/* Applies c (checked as above) to g and all its views. Strings are copied. */
RV_NODISCARD int rv_policy_configure(struct rv_gate *g, const struct rv_policy_config *c,
                                     struct rv_diag *d) RV_NONNULL(1, 2, 3);

/* The audit log (borrowed until rv_policy_close), for reads only: proofs, checkpoints. */
struct rv_audit_log *rv_policy_audit(struct rv_gate *g) RV_NONNULL(1);

/* Records an action that the caller performed or refused. params and outcome must hold no
 * personal data. RV_EAUDIT when the entry could not be made durable. */
RV_NODISCARD int rv_policy_record(struct rv_gate *g, enum rv_action a, const char *params,
                                  const char *outcome, const uint8_t (*subjects)[32],
                                  size_t nsubjects) RV_NONNULL(1, 3, 4);

/* Ingests one register file (rv_ingest_file) after recording that it starts, and records
 * its outcome before returning it. Refused (and recorded) with RV_EDENIED for a role other
 * than registrar. */
RV_NODISCARD int rv_policy_ingest(struct rv_gate *g, const char *path,
                                  const struct rv_ingest_opts *o, struct rv_ingest_result *out)
    RV_NONNULL(1, 2, 3, 4);

/* Ingests several register files in one load (rv_ingest_load): records that each starts,
 * then, once the load is over (committed, or stopped by a file), each file's outcome as
 * rv_policy_ingest does, and for the files after one that stopped the load, that they were
 * not tried. *done and the return are rv_ingest_load's (or RV_EAUDIT). Refused (and
 * recorded) with RV_EDENIED, before anything is ingested, for a role other than registrar. */
RV_NODISCARD int rv_policy_ingest_load(struct rv_gate *g, struct rv_ingest_file *files, size_t n,
                                       size_t *done) RV_NONNULL(1, 2, 4);

/* Statistics by area, edition and marker (rv_vault_stats), recorded first. */
RV_NODISCARD int rv_policy_stats(struct rv_gate *g, rv_vault_stats_fn fn, void *ctx)
    RV_NONNULL(1, 2);

/* For the daemon, before it serves a request: RV_ESUSPENDED when the actor's principal is
 * suspended or disabled, RV_ELIMIT when its principal's or its client address's token bucket
 * is empty (*retry_after_ms says when to come back). Not recorded: the daemon records the
 * refusal. Local actors (client "local"), who hold the vault's secret, are not limited. */
RV_NODISCARD int rv_policy_admit(struct rv_gate *g, int64_t *retry_after_ms) RV_NONNULL(1, 2);

/* For the daemon, before any work for a request that has no principal yet (a login, an
 * unknown path, /healthz): takes a token from the client address's bucket only. RV_ELIMIT
 * when it is empty (*retry_after_ms says when to come back). Not recorded. Local actors are
 * not limited. */
RV_NODISCARD int rv_policy_admit_client(struct rv_gate *g, int64_t *retry_after_ms)
    RV_NONNULL(1, 2);

/* The actor's disclosure budget today: electors shown so far and the limit. */
RV_NODISCARD int rv_policy_budget(struct rv_gate *g, uint32_t *used, uint32_t *limit)
    RV_NONNULL(1, 2, 3);

/* Checks n donors (a single check is n = 1; a batch is checked in chunks) and fills out[n]
 * (free each with rv_check_answer_free); n may be 0 (a batch chunk whose rows could not be
 * checked), recorded as such. One entry is recorded per call, with kind ("single",
 * "batch" or "bequest"), counts of verdicts, and the subject id of every register entry the
 * answers show (in full or masked), and only then are the answers handed back: when the
 * entry cannot be made durable, every answer is wiped and RV_EAUDIT returned. Refused, and
 * recorded, with RV_EDENIED for a role other than checker, and with RV_ELIMIT (no answer at
 * all) when the distinct electors the answers would show take the principal past its daily
 * budget. Local actors have no budget. Answers that show a canary raise an alert; probing
 * (many no-matches, many checks in one sector, sweeps) raises alerts and, past a threshold,
 * suspends the principal. */
RV_NODISCARD int rv_policy_check(struct rv_gate *g, const char *kind,
                                 const struct rv_check_query *const *qs, size_t n,
                                 struct rv_check_answer *out) RV_NONNULL(1, 2, 3, 5);

/* Who looked up an elector: the log entries whose subjects include the elector named by
 * name and postcode (as on the register). The search itself is recorded first, as an
 * access by an auditor. *out: free with free(). */
RV_NODISCARD int rv_policy_subject(struct rv_gate *g, const char *name, const char *postcode,
                                   uint64_t **out, size_t *n, struct rv_diag *diag)
    RV_NONNULL(1, 2, 3, 4, 5);

/* The subject id (audit MAC) of an elector as the log records it. */
RV_NODISCARD int rv_policy_subject_id(struct rv_gate *g, const struct rv_elector *e,
                                      uint8_t out[32]) RV_NONNULL(1, 2, 3);

/* ------------------------------------------------------------------------------------------
 * Principals (principal.c). Stored in the vault's store beside the records, sealed under a
 * subkey: a principal's password hash (Argon2id, crypto_pwhash_str), its TOTP secret, the
 * last TOTP step it used, its failed-login count and lock, its pinned client-certificate
 * fingerprint, its budget. Names are 1 to 63 characters of [a-z0-9._-], starting with a
 * letter. Every call below is recorded; all but login and password change need the admin
 * role (RV_EDENIED otherwise).
 */
#define RV_PRINCIPAL_NAME_MAX 64
enum rv_principal_kind {
    RV_PRINCIPAL_HUMAN = 0,   /* password + TOTP */
    RV_PRINCIPAL_SERVICE = 1, /* mutual TLS, certificate fingerprint pinned */
};
struct rv_principal {
    char name[RV_PRINCIPAL_NAME_MAX];
    char role[16];
    enum rv_principal_kind kind;
    bool disabled;        /* by an admin (rv_policy_user_disable) */
    bool suspended;       /* by the probing limits, until an admin reinstates it */
    bool must_change;     /* the password was issued or reset and not yet changed */
    uint32_t budget;      /* electors a day; 0 = the role's default */
    char cert_sha256[65]; /* service principals: SHA-256 of the client certificate (DER), hex */
    int64_t created;      /* UTC seconds */
};

/* True when s is shaped as a principal name (1 to 63 of [a-z0-9._-], starting with a letter)
 * or is one of the five roles. Shape only: whether such a principal exists is another matter. */
bool rv_principal_name_valid(const char *s) RV_NONNULL(1);
bool rv_principal_role_valid(const char *s) RV_NONNULL(1);

/* What a human principal is given once, at creation or reset. Wipe with sodium_memzero. */
struct rv_credentials {
    char password[64];  /* a random issued password, to be changed at first login */
    char totp_uri[256]; /* otpauth://totp/regvault:NAME?secret=BASE32&issuer=regvault&... */
};

/* Adds principal p (name, role, kind, budget, cert_sha256 for a service). For a human, a
 * random password and TOTP secret are made and returned in *cred (may be NULL for a
 * service). RV_EEXIST for a taken name, RV_EINVAL for a bad name, role or fingerprint. */
RV_NODISCARD int rv_policy_user_add(struct rv_gate *g, const struct rv_principal *p,
                                    struct rv_credentials *cred) RV_NONNULL(1, 2);
/* Calls fn for each principal in name order; a non-zero return stops and is returned. */
typedef int (*rv_principal_fn)(void *ctx, const struct rv_principal *p);
RV_NODISCARD int rv_policy_user_list(struct rv_gate *g, rv_principal_fn fn, void *ctx)
    RV_NONNULL(1, 2);
/* One principal, without recording (for the daemon's own use). RV_ENOTFOUND if none. */
RV_NODISCARD int rv_policy_user_get(struct rv_gate *g, const char *name, struct rv_principal *out)
    RV_NONNULL(1, 2, 3);
RV_NODISCARD int rv_policy_user_disable(struct rv_gate *g, const char *name) RV_NONNULL(1, 2);
/* New password and TOTP secret (human), must_change set, lock cleared. */
RV_NODISCARD int rv_policy_user_reset(struct rv_gate *g, const char *name,
                                      struct rv_credentials *cred) RV_NONNULL(1, 2, 3);
/* Lifts a suspension by the probing limits or a disable by an admin, and clears a lockout. */
RV_NODISCARD int rv_policy_user_reinstate(struct rv_gate *g, const char *name) RV_NONNULL(1, 2);
/* Sets a principal's daily budget (electors; 0 = the role's default). */
RV_NODISCARD int rv_policy_user_set_budget(struct rv_gate *g, const char *name, uint32_t budget)
    RV_NONNULL(1, 2);

/* Logs in a human principal from client (an address): password and a TOTP code (RFC 6238,
 * 30 s steps, +-1 step; a step already used is refused). On success fills *out and returns
 * 0, or RV_ECHANGE when the password must be changed first (*out filled; the caller may then
 * only call rv_policy_change_password). RV_EAUTH for any wrong, unknown, replayed, disabled
 * or decoy credential, alike to the caller; RV_ESUSPENDED for a suspended principal;
 * RV_ELOCKED while the user or the client address is locked out (*retry_after seconds).
 * Failures lock out with exponential backoff per user and per client address. Every attempt
 * and every lockout is recorded; a honeytoken's use raises an alert. */
RV_NODISCARD int rv_policy_login(struct rv_gate *g, const char *user, const char *password,
                                 const char *totp, const char *client, struct rv_principal *out,
                                 int64_t *retry_after) RV_NONNULL(1, 2, 3, 4, 5, 6, 7);
/* Changes a human principal's password after checking the old one (and its lock, as
 * login). RV_EWEAK when the new one is too weak (under 12 characters, or one of the common
 * passwords, or containing the user name, or the same as the old one); RV_ESUSPENDED for a
 * suspended principal (nothing changed). Clears must_change. */
RV_NODISCARD int rv_policy_change_password(struct rv_gate *g, const char *user, const char *old,
                                           const char *new_password, const char *client)
    RV_NONNULL(1, 2, 3, 4, 5);
/* Identifies a service principal by its client certificate's SHA-256 (hex). RV_EAUTH when no
 * enabled service principal pins it. Recorded. */
RV_NODISCARD int rv_policy_login_cert(struct rv_gate *g, const char *cert_sha256,
                                      const char *client, struct rv_principal *out)
    RV_NONNULL(1, 2, 3, 4);

/* ------------------------------------------------------------------------------------------
 * Alerts (alert.c). An alert is recorded in the audit log (action "alert"), written as a
 * line to syslog and to the alert file, and handed to the alert command, if any, as JSON on
 * stdin, in the background with a time limit: a hook that hangs or fails never blocks the
 * caller, and its failure is itself logged. Alerts hold no personal data.
 */
enum rv_alert_severity { RV_ALERT_LOW = 0, RV_ALERT_MEDIUM, RV_ALERT_HIGH };
struct rv_alert {
    int64_t time_ms; /* 0 = now */
    enum rv_alert_severity severity;
    const char *kind; /* "canary", "honeytoken", "probing.nomatch", "probing.sector",
                         "probing.sweep", "budget", "suspended", "lockout", "anomaly.volume",
                         "anomaly.hours", "anomaly.client", "hook.failed", "hook.overflow" */
    const char *principal;
    const char *client;
    const char *detail; /* words, without personal data */
};
/* Raises an alert. RV_EAUDIT when its audit entry could not be made durable. */
RV_NODISCARD int rv_policy_alert(struct rv_gate *g, const struct rv_alert *a) RV_NONNULL(1, 2);
/* Reads the alerts recorded in a vault's audit log since since_ms (UTC ms), oldest first,
 * without any secret (the log holds no personal data). fn's strings are borrowed for the
 * call; a non-zero return stops and is returned. */
typedef int (*rv_alert_fn)(void *ctx, uint64_t index, const struct rv_alert *a);
RV_NODISCARD int rv_policy_alerts_read(const char *dir, int64_t since_ms, rv_alert_fn fn, void *ctx)
    RV_NONNULL(1, 3);
/* The same, only the alerts whose audit entry index is from_index or later (a page after the
 * last alert a caller has seen): those before it are not decoded. */
RV_NODISCARD int rv_policy_alerts_read_from(const char *dir, int64_t since_ms, uint64_t from_index,
                                            rv_alert_fn fn, void *ctx) RV_NONNULL(1, 4);

/* ------------------------------------------------------------------------------------------
 * Canary electors (canary.c) and honeytoken credentials (honeytoken.c).
 */

/* Adds n synthetic electors to area (NULL: spread over the areas present), stored and
 * answered exactly like real entries; which entries are canaries is kept only under the
 * vault's canary subkey. Any check that shows one raises a high-severity alert naming the
 * principal, and its answer is unchanged. Admin. *added: how many were stored. */
RV_NODISCARD int rv_policy_canary_add(struct rv_gate *g, unsigned n, const char *area,
                                      unsigned *added) RV_NONNULL(1, 4);

enum rv_honeytoken_format { RV_HONEYTOKEN_ENV = 0, RV_HONEYTOKEN_JSON, RV_HONEYTOKEN_INI };
/* Makes a decoy credential labelled label (where it will be planted) for the daemon at url,
 * and returns the text of a realistic credentials file in *text (free with free(), after
 * sodium_memzero). Its user name, password and API token are remembered (hashed) so that
 * their use raises an alert with the client address; the use is answered as any bad
 * credential. Admin. */
RV_NODISCARD int rv_policy_honeytoken_create(struct rv_gate *g, const char *label,
                                             enum rv_honeytoken_format format, const char *url,
                                             char **text) RV_NONNULL(1, 2, 4, 5);
/* 1 (and the alert raised) when user is a honeytoken's user name or password a honeytoken's
 * password, presented at a login by client; 0 when neither is, or an RV_E* code. Not
 * otherwise recorded. rv_policy_login calls it first, before any lockout; the daemon also
 * calls it for a login it refuses before rv_policy_login (an address over its rate). */
RV_NODISCARD int rv_policy_honeytoken_login(struct rv_gate *g, const char *user,
                                            const char *password, const char *client)
    RV_NONNULL(1, 2, 3, 4);
/* For the daemon: 1 (and the alert raised) when token is a honeytoken's API token presented
 * by client, 0 when it is not, or an RV_E* code. */
RV_NODISCARD int rv_policy_honeytoken_token(struct rv_gate *g, const char *token,
                                            const char *client) RV_NONNULL(1, 2, 3);

#endif /* RV_POLICY_H */
