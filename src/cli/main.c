/*
 * main.c - the regvault command: dispatches `regvault <verb> ...` to the verb's function.
 *
 * The verb table is the single list of what the command can do. Verbs not built into this
 * binary are skipped in the listing, so `regvault --help` never shows something that
 * cannot run.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

struct verb {
    const char *name;
    rv_cmd_fn *fn; /* address of a weak symbol: *fn is NULL when not built */
    const char *summary;
};

static rv_cmd_fn fn_synth = rv_cmd_synth, fn_init = rv_cmd_init, fn_ingest = rv_cmd_ingest,
                 fn_stats = rv_cmd_stats, fn_check = rv_cmd_check, fn_audit = rv_cmd_audit,
                 fn_user = rv_cmd_user, fn_serve = rv_cmd_serve, fn_canary = rv_cmd_canary,
                 fn_honeytoken = rv_cmd_honeytoken, fn_alerts = rv_cmd_alerts;

static const struct verb verbs[] = {
    {"init", &fn_init, "create a new encrypted vault"},
    {"ingest", &fn_ingest, "load register editions and monthly alterations"},
    {"stats", &fn_stats, "count entries by area, edition and marker"},
    {"check", &fn_check, "check donors' permissibility against the register"},
    {"audit", &fn_audit, "verify and read the tamper-evident audit log"},
    {"user", &fn_user, "manage principals and their roles"},
    {"serve", &fn_serve, "run the HTTPS API"},
    {"canary", &fn_canary, "plant canary electors"},
    {"honeytoken", &fn_honeytoken, "create decoy credentials"},
    {"alerts", &fn_alerts, "list security alerts"},
    {"synth", &fn_synth, "generate a synthetic register for tests and demos"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault <verb> [options]\n"
               "       regvault <verb> --help\n"
               "       regvault --version\n\n"
               "A zero-trust vault for electoral registers.\n\nVerbs:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (*verbs[i].fn != NULL)
            fprintf(f, "  %-11s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(f, "\nExit codes: 0 success, 1 failure, 2 usage error, 3 input rejected,\n"
               "4 wrong passphrase or key, 5 tampering or corruption detected,\n"
               "6 refused by policy.\n");
}

void rv_cli_err(const char *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "regvault %s: ", verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int rv_cli_exit_for(int err)
{
    switch (err) {
    case 0:
        return RV_EXIT_OK;
    case RV_EINVAL:
        return RV_EXIT_USAGE;
    case RV_EPARSE:
    case RV_ETOOBIG:
        return RV_EXIT_INPUT;
    case RV_EKEY:
        return RV_EXIT_KEY;
    case RV_ECORRUPT:
    case RV_EVERSION:
        return RV_EXIT_INTEGRITY;
    case RV_EDENIED:
    case RV_EAUTH:
    case RV_ELIMIT:
    case RV_EAUDIT:
        return RV_EXIT_DENIED;
    default:
        return RV_EXIT_FAIL;
    }
}

int rv_cli_parse_u64(const char *verb, const char *opt, const char *val, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    char *end = NULL;
    unsigned long long v;

    errno = 0;
    if (val == NULL || val[0] < '0' || val[0] > '9')
        goto bad;
    v = strtoull(val, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    rv_cli_err(verb, "%s wants a whole number from %llu to %llu (see regvault %s --help)", opt,
               (unsigned long long)min, (unsigned long long)max, verb);
    return -1;
}

int main(int argc, char **argv)
{
    /* No core dumps: a dump of an unsealed process would hold keys and records. */
    struct rlimit nocore = {0, 0};
    (void)setrlimit(RLIMIT_CORE, &nocore);

    if (argc < 2) {
        usage(stderr);
        return RV_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return RV_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("regvault 0.1.0\n");
        return RV_EXIT_OK;
    }
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(argv[1], verbs[i].name) == 0 && *verbs[i].fn != NULL)
            return (*verbs[i].fn)(argc - 1, argv + 1);
    fprintf(stderr, "regvault: '%s' is not a verb. See 'regvault --help'.\n", argv[1]);
    return RV_EXIT_USAGE;
}
