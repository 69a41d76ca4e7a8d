/*
 * gate.c - opens the access gate on a vault for a local verb: reads the unsealing secret
 * the options name, opens the vault and its audit log as the local user acting in the
 * verb's role, and turns every way that can fail into one clear message and exit code.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <sodium.h>
#include <stdio.h>
#include <unistd.h>

int rv_cli_open_error(const char *verb, const char *dir, int err)
{
    switch (err) {
    case 0:
        return RV_EXIT_OK;
    case RV_EKEY:
        rv_cli_err(verb,
                   "wrong passphrase or key file for the vault in %s (or the vault is sealed "
                   "with the other kind of secret); nothing was changed",
                   dir);
        return RV_EXIT_KEY;
    case RV_ECORRUPT:
        rv_cli_err(verb,
                   "the vault in %s is damaged: %s/vault.hdr, the store or the audit log failed "
                   "its integrity check; restore from a backup, and run 'regvault audit verify "
                   "--vault %s'",
                   dir, dir, dir);
        return RV_EXIT_INTEGRITY;
    case RV_EVERSION:
        rv_cli_err(verb,
                   "the vault in %s has a format this regvault does not know: upgrade regvault",
                   dir);
        return RV_EXIT_INTEGRITY;
    case RV_ENOTFOUND:
        rv_cli_err(verb, "no vault in %s: create one with 'regvault init --vault %s'", dir, dir);
        return RV_EXIT_FAIL;
    case RV_EAUDIT:
        rv_cli_err(verb,
                   "the audit log of the vault in %s cannot be written, so the vault refuses "
                   "all work: check the disk space and the permissions of %s/audit",
                   dir, dir);
        return RV_EXIT_DENIED;
    case RV_EBUSY:
        rv_cli_err(verb,
                   "the vault in %s is busy: another process holds it (a running "
                   "'regvault serve', or another command); while the daemon runs, use its "
                   "API (docs/api.md: /v1/users, /v1/ingest, /v1/checks), otherwise try "
                   "again when the other command has finished",
                   dir);
        return RV_EXIT_FAIL;
    case RV_EDENIED:
        rv_cli_err(verb, "refused: this role may not do that (the refusal is in the audit log)");
        return RV_EXIT_DENIED;
    default:
        rv_cli_err(verb, "cannot open the vault in %s: %s", dir, rv_strerror(err));
        return rv_cli_exit_for(err);
    }
}

int rv_cli_gate_open(const char *verb, const char *dir, const struct rv_unseal_opts *o,
                     const char *role, struct rv_gate **out)
{
    static struct rv_actor who;
    struct rv_vault_secret sec;
    char hdr[4096];
    int rc, err;

    *out = NULL;
    /* Say there is no vault before asking anyone for a passphrase. */
    snprintf(hdr, sizeof(hdr), "%s/vault.hdr", dir);
    if (access(hdr, F_OK) != 0)
        return rv_cli_open_error(verb, dir, RV_ENOTFOUND);
    if (sodium_init() < 0) {
        rv_cli_err(verb, "libsodium failed to initialise");
        return RV_EXIT_FAIL;
    }
    if ((rc = rv_cli_secret(verb, o, false, &sec)) != RV_EXIT_OK)
        return rc;
    rv_cli_actor(role, &who);
    err = rv_policy_open(dir, &sec, &who, out);
    rv_cli_secret_free(&sec);
    return rv_cli_open_error(verb, dir, err);
}
