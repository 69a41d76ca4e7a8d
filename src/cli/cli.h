/*
 * cli.h - the regvault command's verbs and the few helpers they share.
 *
 * cli/ is a front end: it parses arguments, calls the library, and turns RV_E* codes into
 * messages and exit codes. Nothing below cli/ prints or exits. Each verb lives in
 * cmd_<verb>.c and has the signature of rv_cmd_fn; main.c dispatches on argv[1].
 */
#ifndef RV_CLI_H
#define RV_CLI_H

#include <stdio.h>

#include "core/core.h"

/* Exit codes, documented in `regvault --help` and README.md. */
enum {
    RV_EXIT_OK = 0,        /* success */
    RV_EXIT_FAIL = 1,      /* the operation failed (I/O, storage, internal) */
    RV_EXIT_USAGE = 2,     /* bad command line: nothing was done */
    RV_EXIT_INPUT = 3,     /* an input file was rejected: nothing was stored */
    RV_EXIT_KEY = 4,       /* wrong passphrase or key file: the vault is unchanged */
    RV_EXIT_INTEGRITY = 5, /* tampering or corruption detected */
    RV_EXIT_DENIED = 6,    /* refused by policy (role, budget, audit unavailable) */
};

/* A verb: argv[0] is the verb's name. Returns an RV_EXIT_* code. */
typedef int (*rv_cmd_fn)(int argc, char **argv);

/* Verbs. A verb whose cmd_<verb>.c is not yet in the tree resolves to NULL and is not
 * listed. */
int rv_cmd_synth(int argc, char **argv) __attribute__((weak));
int rv_cmd_init(int argc, char **argv) __attribute__((weak));
int rv_cmd_ingest(int argc, char **argv) __attribute__((weak));
int rv_cmd_stats(int argc, char **argv) __attribute__((weak));
int rv_cmd_check(int argc, char **argv) __attribute__((weak));
int rv_cmd_audit(int argc, char **argv) __attribute__((weak));
int rv_cmd_user(int argc, char **argv) __attribute__((weak));
int rv_cmd_serve(int argc, char **argv) __attribute__((weak));
int rv_cmd_canary(int argc, char **argv) __attribute__((weak));
int rv_cmd_honeytoken(int argc, char **argv) __attribute__((weak));
int rv_cmd_alerts(int argc, char **argv) __attribute__((weak));

/* Fills *out with the local actor: the OS user as principal, the given role (a static
 * string), client "local". */
struct rv_actor;
void rv_cli_actor(const char *role, struct rv_actor *out);

/* Prints "regvault <verb>: <message>" to stderr. */
void rv_cli_err(const char *verb, const char *fmt, ...) RV_PRINTF(2, 3);
/* Maps a library error to an exit code. */
int rv_cli_exit_for(int err);
/* Parses a non-negative decimal integer option value within [min, max]; prints a usage
 * error naming the option and returns -1 when it is not one. */
int rv_cli_parse_u64(const char *verb, const char *opt, const char *val, uint64_t min, uint64_t max,
                     uint64_t *out);

/* One option of a verb (src/cli/options.c): "--name VALUE" or "--name=VALUE" stores VALUE
 * (borrowed from argv) in *value; a flag (value NULL) sets *flag. */
struct rv_cli_option {
    const char *name;
    const char **value;
    bool *flag;
};
struct rv_unseal_opts;
/* What rv_cli_options returns when the verb should go on. */
#define RV_CLI_GO_ON (-1)
/* Reads argv[start..]: the unseal options when uo is not NULL, --help or -h (prints usage to
 * stdout), and the n options in opts. Returns RV_CLI_GO_ON when all were read, and otherwise
 * the exit code the verb returns at once (RV_EXIT_OK after --help, RV_EXIT_USAGE after
 * printing why an option was refused). */
int rv_cli_options(const char *verb, int argc, char **argv, int start,
                   const struct rv_cli_option *opts, size_t n, struct rv_unseal_opts *uo,
                   void (*usage)(FILE *));
/* The arguments that are not options, in order (borrowed from argv): room for max in v. */
struct rv_cli_args {
    const char **v;
    size_t n, max;
};
/* rv_cli_options, also taking arguments that are not options into args (refused with a usage
 * error past args->max, or always when args is NULL). */
int rv_cli_options_args(const char *verb, int argc, char **argv, int start,
                        const struct rv_cli_option *opts, size_t n, struct rv_unseal_opts *uo,
                        void (*usage)(FILE *), struct rv_cli_args *args);

/* ------------------------------------------------------------------------------------------
 * Unsealing (src/cli/unseal.c). Every verb that needs the vault's keys unseals the same way:
 * --passphrase-file F, --key-file F, else the file named by REGVAULT_PASSPHRASE_FILE, else a
 * passphrase typed on the terminal without echo (asked twice when creating a vault).
 */
struct rv_vault;
struct rv_vault_secret;

struct rv_unseal_opts {
    const char *passphrase_file; /* borrowed from argv */
    const char *key_file;        /* borrowed from argv */
};

/* If argv[*i] is --passphrase-file or --key-file (as "--opt F" or "--opt=F"), records it in
 * o, advances *i past it and returns 1; returns 0 for any other argument, and -1 after
 * printing a usage error. */
int rv_cli_unseal_option(const char *verb, int argc, char **argv, int *i, struct rv_unseal_opts *o);
/* Obtains the secret the options name into *sec (its buffers in sodium_malloc memory:
 * free with rv_cli_secret_free). confirm asks for a typed passphrase twice. Returns
 * RV_EXIT_OK or an exit code, after printing a message. */
int rv_cli_secret(const char *verb, const struct rv_unseal_opts *o, bool confirm,
                  struct rv_vault_secret *sec);
void rv_cli_secret_free(struct rv_vault_secret *sec);
/* ------------------------------------------------------------------------------------------
 * The access gate (src/cli/gate.c). Verbs that touch a vault's records open it through the
 * gate (policy/), which records every action in the audit log before acting.
 */
struct rv_gate;
/* Unseals with the secret the options name and opens the gate on the vault in dir as the
 * local user acting in role. Returns RV_EXIT_OK with *out (free with rv_policy_close), or
 * prints why and returns the exit code. */
int rv_cli_gate_open(const char *verb, const char *dir, const struct rv_unseal_opts *o,
                     const char *role, struct rv_gate **out);
/* Prints the message for an error from opening a vault or gate and returns its exit code. */
int rv_cli_open_error(const char *verb, const char *dir, int err);

#endif /* RV_CLI_H */
