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
/* Signs a final checkpoint, closes the log and the vault, and wipes every key. Returns the
 * checkpoint's result (RV_EAUDIT if it could not be signed); the gate is gone either way.
 * NULL is a no-op. */
int rv_policy_close(struct rv_gate *g);

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

/* Statistics by area, edition and marker (rv_vault_stats), recorded first. */
RV_NODISCARD int rv_policy_stats(struct rv_gate *g, rv_vault_stats_fn fn, void *ctx)
    RV_NONNULL(1, 2);

/* Checks n donors (a single check is n = 1; a batch is checked in chunks) and fills out[n]
 * (free each with rv_check_answer_free). One entry is recorded per call, with kind ("single",
 * "batch" or "bequest"), counts of verdicts, and the subject id of every register entry the
 * answers show (in full or masked), and only then are the answers handed back: when the
 * entry cannot be made durable, every answer is wiped and RV_EAUDIT returned. Refused, and
 * recorded, with RV_EDENIED for a role other than checker. */
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

#endif /* RV_POLICY_H */
