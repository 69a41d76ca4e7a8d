/*
 * cmd_stats.c - `regvault stats`: entries by area, edition and marker, from the counters the
 * vault keeps as files are ingested. Nothing is decrypted: no name or address is read.
 */
#include "cli/cli.h"
#include "policy/policy.h"
#include "vault/vault.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const VERB = "stats";
/* Column names of the marker counters, in RV_MARK_* bit order (N is never stored). */
static const char *const MARKS[RV_STAT_MARKERS] = {"F", "N", "L", "M", "G",    "B",
                                                   "A", "P", "E", "K", "other"};

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault stats --vault DIR [--json]\n"
               "                      [--passphrase-file F | --key-file F]\n\n"
               "Counts entries by area and ingested file (edition or alterations): rows read,\n"
               "versions stored, unchanged, ended, anonymous entries refused, invalid rows, and\n"
               "the entries on the register after the file, by marker. Decrypts nothing.\n");
}

struct ctx {
    bool json;
    json_t *arr;
    unsigned n;
};

static int one(void *arg, const struct rv_file_stats *s)
{
    struct ctx *c = arg;
    char d[11], f[11], l[11];

    c->n++;
    if (c->json) {
        json_t *m = json_object();
        json_t *o;
        for (int i = 0; i < RV_STAT_MARKERS; i++)
            if (i != 1)
                json_object_set_new(m, MARKS[i], json_integer((json_int_t)s->markers[i]));
        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, "
                      "s:I, s:I}",
                      "area", s->area, "kind",
                      s->kind == RV_FILE_ALTERATIONS ? "alterations" : "edition", "edition",
                      rv_date_format(s->date, d), "effective_from", rv_date_format(s->eff_first, f),
                      "effective_to", rv_date_format(s->eff_last, l), "seq", (int)s->seq, "rows",
                      (json_int_t)s->rows, "stored", (json_int_t)s->stored, "unchanged",
                      (json_int_t)s->unchanged, "ended", (json_int_t)s->closed, "anonymous",
                      (json_int_t)s->anonymous, "invalid", (json_int_t)s->invalid, "on_register",
                      (json_int_t)s->on_register, "markers", m, "attainers",
                      (json_int_t)s->attainers, "opted_out", (json_int_t)s->optout);
        if (o == NULL)
            return RV_ENOMEM;
        json_array_append_new(c->arr, o);
        return 0;
    }
    if (c->n == 1)
        printf("%-15s %-11s %-10s %-10s %9s %9s %9s %9s %9s %7s %10s %8s %8s %8s %8s\n", "area",
               "kind", "edition", "effective", "rows", "stored", "unchanged", "ended", "anonymous",
               "invalid", "on_reg", "F", "A", "P", "other");
    printf("%-15s %-11s %-10s %-10s %9llu %9llu %9llu %9llu %9llu %7llu %10llu %8llu %8llu %8llu "
           "%8llu\n",
           s->area, s->kind == RV_FILE_ALTERATIONS ? "alterations" : "edition",
           rv_date_format(s->date, d), rv_date_format(s->eff_last, l), (unsigned long long)s->rows,
           (unsigned long long)s->stored, (unsigned long long)s->unchanged,
           (unsigned long long)s->closed, (unsigned long long)s->anonymous,
           (unsigned long long)s->invalid, (unsigned long long)s->on_register,
           (unsigned long long)s->markers[0], (unsigned long long)s->markers[6],
           (unsigned long long)s->markers[7], (unsigned long long)s->markers[10]);
    return 0;
}

int rv_cmd_stats(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_gate *g = NULL;
    struct ctx c = {0};
    const char *dir = NULL;
    int rc, err;

    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL},
            {"--json", NULL, &c.json},
        };
        rc = rv_cli_options(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
    }
    if (dir == NULL) {
        rv_cli_err(VERB, "--vault DIR is required (see regvault stats --help)");
        return RV_EXIT_USAGE;
    }
    rc = rv_cli_gate_open(VERB, dir, &uo, "registrar", &g);
    if (rc != RV_EXIT_OK)
        return rc;
    if (c.json)
        c.arr = json_array();
    err = rv_policy_stats(g, one, &c);
    if (err == RV_EAUDIT || err == RV_EDENIED) {
        rc = rv_cli_open_error(VERB, dir, err);
    } else if (err != 0) {
        rv_cli_err(VERB, "cannot read the vault's counters in %s: %s", dir, rv_strerror(err));
        rc = err == RV_ECORRUPT ? RV_EXIT_INTEGRITY : rv_cli_exit_for(err);
    } else if (c.json) {
        json_t *top = json_pack("{s:o}", "files", c.arr);
        c.arr = NULL;
        json_dumpf(top, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(top);
    } else if (c.n == 0) {
        printf("the vault is empty: load a register with regvault ingest\n");
    }
    json_decref(c.arr);
    if (rv_policy_close(g) != 0 && rc == RV_EXIT_OK)
        rc = rv_cli_open_error(VERB, dir, RV_EAUDIT);
    return rc;
}
