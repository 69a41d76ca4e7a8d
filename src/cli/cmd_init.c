/*
 * cmd_init.c - `regvault init`: creates a new, empty encrypted vault.
 *
 * A random root key is wrapped under the operator's passphrase (Argon2id) or a 32-byte key
 * file and written to DIR/vault.hdr with the blind-index width planned from the expected
 * number of electors. An existing vault, or any non-empty directory, is refused untouched.
 */
#include "cli/cli.h"
#include "policy/policy.h"
#include "vault/vault.h"

#include <stdio.h>
#include <string.h>

static const char *const VERB = "init";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: regvault init --vault DIR [--passphrase-file F | --key-file F]\n"
            "                     [--expected-electors N]\n\n"
            "Creates an empty encrypted vault in DIR (which must not exist or be empty).\n\n"
            "  --vault DIR              the vault directory to create\n"
            "  --passphrase-file F      read the passphrase from F (first line)\n"
            "  --key-file F             wrap the root key under a 32-byte key file instead\n"
            "                           (32 raw bytes or 64 hex digits)\n"
            "  --expected-electors N    entries the vault is planned for; fixes the blind-index\n"
            "                           width (default 50000000)\n\n"
            "With neither secret option, REGVAULT_PASSPHRASE_FILE names the passphrase file;\n"
            "otherwise the passphrase is asked on the terminal, twice.\n"
            "Exit: 0 created, 1 failed, 2 usage or the directory is not empty.\n");
}

int rv_cmd_init(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_vault_secret sec;
    struct rv_actor who;
    const char *dir = NULL, *expected_text = NULL;
    uint64_t expected = RV_VAULT_DEFAULT_EXPECTED;
    int rc, err;

    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL},
            {"--expected-electors", &expected_text, NULL},
        };
        rc = rv_cli_options(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
    }
    if (expected_text != NULL && rv_cli_parse_u64(VERB, "--expected-electors", expected_text, 16,
                                                  1ull << 40, &expected) != 0)
        return RV_EXIT_USAGE;
    if (dir == NULL) {
        rv_cli_err(VERB, "--vault DIR is required (see regvault init --help)");
        return RV_EXIT_USAGE;
    }
    rc = rv_cli_secret(VERB, &uo, true, &sec);
    if (rc != RV_EXIT_OK)
        return rc;
    rv_cli_actor("admin", &who);
    err = rv_policy_create(dir, &sec, expected, &who);
    rv_cli_secret_free(&sec);
    if (err == RV_EEXIST) {
        rv_cli_err(VERB,
                   "%s already exists and is not an empty directory: nothing was changed "
                   "(choose a new directory)",
                   dir);
        return RV_EXIT_USAGE;
    }
    if (err != 0) {
        rv_cli_err(VERB, "cannot create the vault in %s: %s", dir, rv_strerror(err));
        return rv_cli_exit_for(err);
    }
    fprintf(stderr,
            "regvault init: created an empty vault in %s, with its audit log in %s/audit\n"
            "  Keep a copy of the log's verifier key away from this machine (regvault audit key\n"
            "  --vault %s), and of its checkpoints as they grow (regvault audit checkpoint).\n",
            dir, dir, dir);
    return RV_EXIT_OK;
}
