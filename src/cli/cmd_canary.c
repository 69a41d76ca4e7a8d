/*
 * cmd_canary.c - `regvault canary add`: plants canary electors, synthetic entries that look
 * like their neighbours in the register, so that a check (or an export) that shows one
 * raises a high alert naming who asked. It says only how many were added: nobody lists
 * canaries in the clear, which is why there is no `canary list`.
 */
#include "cli/cli.h"
#include "policy/policy.h"

#include <stdio.h>
#include <string.h>

static const char *const VERB = "canary";

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault canary add --vault DIR --count N [--area CODE]\n"
               "                           [--passphrase-file F | --key-file F]\n\n"
               "Adds N (1 to 1000) canary electors to the area CODE, or spread over every area\n"
               "when none is named. Each is made like a real entry of its area (a real polling\n"
               "district, an unused elector number, an address in one of the area's postcodes,\n"
               "a realistic name), is valid from the area's current edition and is stored\n"
               "exactly as ingest stores entries. Which entries are canaries is kept only under\n"
               "the vault's key: they are never listed. Any check whose answer shows one raises\n"
               "a high alert (see regvault alerts). Plant them again after each new edition,\n"
               "which ends every entry it does not contain. Acts as admin; recorded.\n");
}

int rv_cmd_canary(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_gate *g = NULL;
    const char *dir = NULL, *area = NULL, *count = NULL;
    uint64_t n = 0;
    unsigned added = 0;
    int rc, err;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RV_EXIT_USAGE : RV_EXIT_OK;
    }
    if (strcmp(argv[1], "list") == 0) {
        rv_cli_err(VERB, "canaries are never listed in the clear: only their alerts show them "
                         "(regvault alerts)");
        return RV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "add") != 0) {
        rv_cli_err(VERB, "'%s' is not a canary command (see regvault canary --help)", argv[1]);
        return RV_EXIT_USAGE;
    }
    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL},
            {"--count", &count, NULL},
            {"--area", &area, NULL},
        };
        rc = rv_cli_options(VERB, argc, argv, 2, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
    }
    if (dir == NULL || count == NULL) {
        rv_cli_err(VERB, "--vault DIR and --count N are required (see regvault canary --help)");
        return RV_EXIT_USAGE;
    }
    if (rv_cli_parse_u64(VERB, "--count", count, 1, 1000, &n) != 0)
        return RV_EXIT_USAGE;
    rc = rv_cli_gate_open(VERB, dir, &uo, "admin", &g);
    if (rc != RV_EXIT_OK)
        return rc;
    err = rv_policy_canary_add(g, (unsigned)n, area, &added);
    if (err == RV_EAUDIT || err == RV_EDENIED) {
        rc = rv_cli_open_error(VERB, dir, err);
    } else if (err == RV_ENOTFOUND) {
        rv_cli_err(VERB, "the vault in %s has no edition of area '%s' (see regvault stats)", dir,
                   area != NULL ? area : "");
        rc = RV_EXIT_USAGE;
    } else if (err != 0) {
        rv_cli_err(VERB, "cannot add canaries to the vault in %s: %s", dir, rv_strerror(err));
        rc = err == RV_ECORRUPT ? RV_EXIT_INTEGRITY : rv_cli_exit_for(err);
    } else if (added == 0) {
        rv_cli_err(VERB, "no canary could be added: the vault holds no register entry with a "
                         "street address to model one on (ingest a register first)");
        rc = RV_EXIT_FAIL;
    } else {
        printf("added %u canary elector%s\n", added, added == 1 ? "" : "s");
        if (added < n)
            fprintf(stderr,
                    "regvault canary: only %u of %llu could be added: the area has too few "
                    "entries to model more on\n",
                    added, (unsigned long long)n);
    }
    if (rv_policy_close(g) != 0 && rc == RV_EXIT_OK)
        rc = rv_cli_open_error(VERB, dir, RV_EAUDIT);
    return rc;
}
