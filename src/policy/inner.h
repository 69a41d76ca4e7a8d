/*
 * inner.h - what the files of src/policy share and nobody else sees: the gate's layout and
 * the hooks by which the access gate (gate.c) calls the principals (principal.c), the
 * limits on disclosure and probing (limits.c), alert delivery (alert.c), canary electors
 * (canary.c) and honeytokens (honeytoken.c). Included first by every .c of src/policy.
 *
 * A gate is either the root, which owns the vault and the log, or a view of it for another
 * actor. Both point to one struct rv_gate_shared, which every module's state hangs from;
 * each module guards its own state with its own lock, since views run on many threads.
 *
 * The gate's own records (principals 0x80, honeytokens 0x82, limits 0x83) live in a small
 * store of their own beside the vault's (sh->state), so that their short durable commits
 * neither sync the vault's whole map nor wait behind an ingest's write transaction. Canaries
 * (0x81) are electors in the vault's indexes and stay in the vault's store. No transaction
 * writes both stores.
 */
#ifndef RV_POLICY_INNER_H
#define RV_POLICY_INNER_H

#include "policy/policy.h"

#include <pthread.h>

struct rv_principals;
struct rv_limits;
struct rv_alerter;
struct rv_canaries;

struct rv_gate_shared {
    struct rv_vault *vault;
    struct rv_store *state; /* the gate's own store (<vault>/gate): principals, limits, decoys */
    struct rv_audit_log *log;
    uint8_t *mac; /* audit MAC key for subject ids, sodium_malloc */
    char *dir;    /* the vault's folder */
    pthread_mutex_t cfg_lock;
    struct rv_policy_config cfg;      /* strings owned here (copied by rv_policy_configure) */
    struct rv_principals *principals; /* principal.c: lockouts by client address */
    struct rv_limits *limits;         /* limits.c: buckets, budgets, probing windows */
    struct rv_alerter *alerter;       /* alert.c: the hook's runner */
    struct rv_canaries *canaries;     /* canary.c: the canaries' keyed ids, in memory */
    _Atomic bool prefetch;            /* a long-running reader: map the store again after ingests */
};

struct rv_gate {
    struct rv_gate_shared *sh;
    bool is_view;
    struct rv_actor who;
    struct rv_check_ctx *check; /* opened at the view's first check */
    uint8_t (*subjects)[32];    /* the last check's subject ids (wiped after use) */
    size_t subjects_cap;
};

/* Checks the actor's role for a; a refusal is recorded with params and reported as
 * RV_EDENIED (or RV_EAUDIT when even the refusal could not be recorded). */
RV_NODISCARD int rv_gate_authorise(struct rv_gate *g, enum rv_action a, const char *params);
/* True when the actor is the local operator (client "local"), who holds the secret. */
bool rv_gate_is_local(const struct rv_gate *g);

/* principal.c */
RV_NODISCARD int rv_principals_new(struct rv_gate_shared *sh, struct rv_principals **out);
void rv_principals_free(struct rv_principals *p);
/* Suspends name (the probing limits' last step), recorded. */
RV_NODISCARD int rv_principal_suspend(struct rv_gate *g, const char *name, const char *why);
/* The principal record decoder, for tests/fuzz: 0 when buf is a valid record plaintext that
 * encodes back to the same bytes, RV_ECORRUPT when refused, 1 when it does not round-trip. */
int rv_principal_record_roundtrip(const uint8_t *buf, size_t len);

/* limits.c (also rv_policy_admit and rv_policy_budget) */
RV_NODISCARD int rv_limits_new(struct rv_gate_shared *sh, struct rv_limits **out);
void rv_limits_free(struct rv_limits *l);
/* Charges the subjects the answers would show (ids, possibly repeated) to the actor's
 * budget for today: 0 and charged, or RV_ELIMIT and nothing charged. */
RV_NODISCARD int rv_limits_charge(struct rv_gate *g, const uint8_t (*subjects)[32],
                                  size_t nsubjects);
/* Watches the checks for probing and anomalies after they are answered; raises alerts and
 * suspends as configured. RV_ESUSPENDED when these checks suspended the principal (alerts
 * raised and the suspension stored): the gate must stop answering it. */
RV_NODISCARD int rv_limits_observe(struct rv_gate *g, const struct rv_check_query *const *qs,
                                   const struct rv_check_answer *out, size_t n);

/* RV_ESUSPENDED when the actor's principal is suspended (by the probing limits) or disabled
 * (by an admin), read again from the store when the cached state is older than a second or
 * was forgotten; 0 otherwise, and for local actors. */
RV_NODISCARD int rv_limits_state(struct rv_gate *g);
/* Forgets the cached state of principal name, so that the next admission or check reads it
 * again (after an admin changed it). */
void rv_limits_forget(struct rv_gate_shared *sh, const char *name);

/* Tests only: replaces limits.c's clock (UTC ms; NULL: the real one) and sees every alert
 * the limits raise (NULL: none). Not thread-safe: call before any gate is open. */
void rv_limits_test_hooks(int64_t (*clock_ms)(void), void (*on_alert)(const struct rv_alert *a));
/* For tests: hook runs on the thread that writes new electors, before each write; a
 * non-zero return is the write's result (nothing is written). NULL: none. */
void rv_limits_test_write_hook(int (*hook)(void));

/* alert.c */
RV_NODISCARD int rv_alerter_new(struct rv_gate_shared *sh, struct rv_alerter **out);
void rv_alerter_free(struct rv_alerter *a); /* waits for running hooks, up to their limit */
/* Tests only: the room of the hook queues (low and medium, high); 0 = the default. Not
 * thread-safe: call before any gate is open. */
void rv_alert_test_queue_max(size_t normal, size_t high);
/* Tests only: how many audit entries rv_policy_alerts_read has decoded in this process, so
 * far (it keeps what it read of each log and reads only what was appended since). */
uint64_t rv_alert_test_decodes(void);

/* canary.c: the set of canaries' keyed ids (loaded at creation, refreshed by
 * rv_policy_canary_add); raises an alert for every answer that shows a canary. */
RV_NODISCARD int rv_canaries_new(struct rv_gate_shared *sh, struct rv_canaries **out);
void rv_canaries_free(struct rv_canaries *c);
RV_NODISCARD int rv_canary_scan(struct rv_gate *g, const struct rv_check_answer *out, size_t n);

/* honeytoken.c: 1 (and the alert raised) when user is a honeytoken's user name, else 0. */
RV_NODISCARD int rv_honeytoken_login(struct rv_gate *g, const char *user, const char *client);
/* 1 when user is a honeytoken's user name (no alert), else 0, or an RV_E* code. */
RV_NODISCARD int rv_honeytoken_is_name(struct rv_gate *g, const char *user);

#endif /* RV_POLICY_INNER_H */
