/*
 * options.c - the option loop the verbs share.
 *
 * Most verbs take "--name VALUE" options, a few flags, --help, and (when they open a vault)
 * the unseal options. rv_cli_options reads them all from a table the verb gives, so that every
 * verb answers an unknown option, a missing value and --help the same way. A value may also
 * be joined to its option ("--electors=1000"). A verb that takes arguments besides options
 * (files) gets them in order through rv_cli_options_args; "-" alone is an argument.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct rv_cli_option *find(const struct rv_cli_option *opts, size_t n,
                                        const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(opts[k].name, name) == 0)
            return &opts[k];
    return NULL;
}

int rv_cli_options(const char *verb, int argc, char **argv, int start,
                   const struct rv_cli_option *opts, size_t n, struct rv_unseal_opts *uo,
                   void (*usage)(FILE *))
{
    return rv_cli_options_args(verb, argc, argv, start, opts, n, uo, usage, NULL);
}

int rv_cli_options_args(const char *verb, int argc, char **argv, int start,
                        const struct rv_cli_option *opts, size_t n, struct rv_unseal_opts *uo,
                        void (*usage)(FILE *), struct rv_cli_args *args)
{
    int i = start;
    if (args != NULL)
        args->n = 0;
    while (i < argc) {
        const char *a = argv[i];
        const struct rv_cli_option *o;
        if (uo != NULL) {
            int rc = rv_cli_unseal_option(verb, argc, argv, &i, uo);
            if (rc < 0)
                return RV_EXIT_USAGE;
            if (rc > 0)
                continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return RV_EXIT_OK;
        }
        /* "--name=VALUE" is "--name VALUE" */
        const char *eq = strncmp(a, "--", 2) == 0 ? strchr(a, '=') : NULL;
        char name[40];
        if (eq != NULL && (size_t)(eq - a) < sizeof(name)) {
            memcpy(name, a, (size_t)(eq - a));
            name[eq - a] = '\0';
            if ((o = find(opts, n, name)) != NULL && o->value != NULL) {
                *o->value = eq + 1;
                i++;
                continue;
            }
        }
        o = find(opts, n, a);
        if (o != NULL && o->flag != NULL) {
            *o->flag = true;
        } else if (o != NULL && o->value != NULL && i + 1 < argc) {
            *o->value = argv[++i];
        } else if (o != NULL) {
            rv_cli_err(verb, "option '%s' needs a value (see regvault %s --help)", a, verb);
            return RV_EXIT_USAGE;
        } else if (args != NULL && (a[0] != '-' || a[1] == '\0')) {
            if (args->n == args->max) {
                rv_cli_err(verb, "too many arguments (see regvault %s --help)", verb);
                return RV_EXIT_USAGE;
            }
            args->v[args->n++] = a;
        } else {
            rv_cli_err(verb, "unknown option '%s' (see regvault %s --help)", a, verb);
            return RV_EXIT_USAGE;
        }
        i++;
    }
    return RV_CLI_GO_ON;
}
