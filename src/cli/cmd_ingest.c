/*
 * cmd_ingest.c - `regvault ingest`: loads register editions and monthly alterations into a
 * vault, one file per atomic batch.
 *
 * Two forms: named files for one area and edition, or a folder as `regvault synth` writes
 * it (<area>/full-<YYYY-MM-DD>.csv and <area>/alterations-<YYYY-MM>.csv), walked area by
 * area in date order. Refused rows are reported by file, line and rule; a file with more
 * than --max-errors of them is not stored at all (exit 3), and later files are not tried.
 */
#include "cli/cli.h"
#include "policy/policy.h"
#include "ingest/ingest.h"
#include "vault/vault.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const VERB = "ingest";
#define MAX_SHOWN_ERRORS 20

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault ingest --vault DIR --area CODE --edition YYYY-MM-DD\n"
               "                       [--alterations] [options] FILE...\n"
               "       regvault ingest --vault DIR [options] SYNTH_DIR\n\n"
               "Loads register files into the vault. Each file is stored whole or not at all;\n"
               "a file already ingested changes nothing. Anonymous (N) entries are counted and\n"
               "never stored.\n\n"
               "  --vault DIR           the vault\n"
               "  --area CODE           register area code of the files (1-15 of A-Z a-z 0-9 _ -)\n"
               "  --edition DATE        the edition's date; with --alterations, the edition the\n"
               "                        alterations amend (each row brings its own date)\n"
               "  --alterations         the files are monthly alterations\n"
               "  --encoding E          auto (default), utf8 or cp1252\n"
               "  --max-errors N        refused rows tolerated per file (default 0); one more and\n"
               "                        the file is not stored\n"
               "  --json                print a machine-readable summary on stdout\n"
               "  --single-thread       do not use a second thread\n"
               "  --passphrase-file F, --key-file F   how to unseal (see regvault init --help)\n\n"
               "SYNTH_DIR holds one folder per area with full-<YYYY-MM-DD>.csv and\n"
               "alterations-<YYYY-MM>.csv files, ingested in date order.\n"
               "Exit: 0 done, 1 failed, 2 usage, 3 a file was refused (nothing of it stored),\n"
               "4 wrong passphrase or key, 5 the vault is damaged.\n");
}

struct job {
    char path[4096];
    char area[16];
    rv_date edition;
    rv_date sort; /* walk order */
    bool alterations;
};

struct run {
    bool json, tty;
    json_t *files;
    uint64_t shown_errors, more_errors;
    struct timespec t0;
    const char *label;
    uint64_t total_rows, total_stored;
};

static double elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_error(void *ctx, const struct rv_diag *d)
{
    struct run *run = ctx;
    char buf[600];

    if (run->shown_errors < MAX_SHOWN_ERRORS) {
        if (run->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "regvault ingest: %s\n", rv_diag_format(d, buf, sizeof(buf)));
        run->shown_errors++;
    } else {
        run->more_errors++;
    }
}

static void on_progress(void *ctx, const struct rv_ingest_progress *p)
{
    struct run *run = ctx;
    double t = elapsed(&run->t0), rate = t > 0 ? (double)p->rows / t : 0;
    double frac = p->total_bytes > 0 ? (double)p->bytes / (double)p->total_bytes : 0;
    double eta = frac > 0.001 ? t * (1 - frac) / frac : 0;

    if (!run->tty)
        return;
    fprintf(stderr, "\r\033[K%s: %llu rows, %.0f rows/s, %3.0f%%, ETA %.0fs", run->label,
            (unsigned long long)p->rows, rate, frac * 100, eta);
    fflush(stderr);
}

static const char *kind_name(enum rv_file_kind k)
{
    return k == RV_FILE_ALTERATIONS ? "alterations" : "edition";
}

static void report(struct run *run, const struct job *j, const struct rv_ingest_result *res,
                   const char *status, double secs)
{
    const struct rv_file_stats *s = &res->st;
    char d[11];

    if (run->json) {
        json_t *o = json_pack(
            "{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "file", j->path,
            "area", j->area, "kind", j->alterations ? "alterations" : "edition", "edition",
            rv_date_format(j->edition, d), "status", status, "rows", (json_int_t)s->rows, "stored",
            (json_int_t)s->stored, "unchanged", (json_int_t)s->unchanged, "ended",
            (json_int_t)s->closed, "anonymous", (json_int_t)s->anonymous, "invalid",
            (json_int_t)s->invalid, "on_register", (json_int_t)s->on_register, "seconds", secs);
        if (o != NULL)
            json_array_append_new(run->files, o);
        return;
    }
    if (strcmp(status, "already") == 0) {
        printf("%s: already ingested (area %s, %s %s): nothing changed\n", j->path, s->area,
               kind_name(s->kind), rv_date_format(s->date, d));
        return;
    }
    if (strcmp(status, "rejected") == 0) {
        printf("%s: refused, nothing stored: %llu rows could not be used\n", j->path,
               (unsigned long long)s->invalid);
        return;
    }
    printf("%s: area %s %s %s: %llu rows: %llu stored, %llu unchanged, %llu ended, "
           "%llu anonymous (not stored), %llu invalid; %llu on the register (%.1fs)\n",
           j->path, j->area, j->alterations ? "alterations to" : "edition",
           rv_date_format(j->edition, d), (unsigned long long)s->rows,
           (unsigned long long)s->stored, (unsigned long long)s->unchanged,
           (unsigned long long)s->closed, (unsigned long long)s->anonymous,
           (unsigned long long)s->invalid, (unsigned long long)s->on_register, secs);
}

static int cmp_job(const void *a, const void *b)
{
    const struct job *x = a, *y = b;
    int c = strcmp(x->area, y->area);

    if (c != 0)
        return c;
    if (x->sort != y->sort)
        return x->sort < y->sort ? -1 : 1;
    return (int)x->alterations - (int)y->alterations;
}

static bool valid_area(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 15)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

/* Lists <dir>/<area>/{full,alterations}-*.csv as jobs in ingest order. */
static int walk(const char *dir, struct job **out, size_t *n)
{
    DIR *d = opendir(dir), *ad = NULL;
    struct dirent *e, *f;
    struct job *jobs = NULL;
    size_t cap = 0, cnt = 0;
    int rc = RV_EXIT_OK;

    *out = NULL;
    *n = 0;
    if (d == NULL) {
        rv_cli_err(VERB, "cannot read the folder %s", dir);
        return RV_EXIT_FAIL;
    }
    while ((e = readdir(d)) != NULL) {
        char sub[4096];
        struct stat st;
        if (e->d_name[0] == '.' || !valid_area(e->d_name))
            continue;
        if (snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub) - 300)
            continue;
        if (stat(sub, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        ad = opendir(sub);
        while (ad != NULL && (f = readdir(ad)) != NULL) {
            struct job j;
            int y, m, dd;
            char tail[8];
            memset(&j, 0, sizeof(j));
            if (sscanf(f->d_name, "full-%4d-%2d-%2d.%7s", &y, &m, &dd, tail) == 4 &&
                (strcmp(tail, "csv") == 0 || strcmp(tail, "tsv") == 0)) {
                j.sort = j.edition = rv_date_from_ymd(y, m, dd);
            } else if (sscanf(f->d_name, "alterations-%4d-%2d.%7s", &y, &m, tail) == 3 &&
                       (strcmp(tail, "csv") == 0 || strcmp(tail, "tsv") == 0)) {
                j.alterations = true;
                j.sort = rv_date_from_ymd(y, m, 1);
            } else {
                continue;
            }
            if (snprintf(j.path, sizeof(j.path), "%s/%s", sub, f->d_name) >= (int)sizeof(j.path))
                continue;
            memcpy(j.area, e->d_name, strlen(e->d_name) + 1); /* valid_area: <= 15 */
            if (cnt == cap) {
                struct job *nj = realloc(jobs, (cap = cap ? cap * 2 : 64) * sizeof(*jobs));
                if (nj == NULL) {
                    rc = RV_EXIT_FAIL;
                    break;
                }
                jobs = nj;
            }
            jobs[cnt++] = j;
        }
        if (ad != NULL)
            closedir(ad);
        ad = NULL;
        if (rc != RV_EXIT_OK)
            break;
    }
    closedir(d);
    if (rc != RV_EXIT_OK) {
        free(jobs);
        return rc;
    }
    if (jobs != NULL)
        qsort(jobs, cnt, sizeof(*jobs), cmp_job);
    /* Alterations amend the latest edition of their area before them. */
    for (size_t i = 0; i < cnt; i++) {
        if (!jobs[i].alterations)
            continue;
        jobs[i].edition = RV_DATE_NONE;
        for (size_t k = i; k-- > 0;) {
            if (strcmp(jobs[k].area, jobs[i].area) != 0)
                break;
            if (!jobs[k].alterations) {
                jobs[i].edition = jobs[k].edition;
                break;
            }
        }
        if (jobs[i].edition == RV_DATE_NONE) {
            rv_cli_err(VERB, "%s: alterations with no earlier full edition of area %s in %s",
                       jobs[i].path, jobs[i].area, dir);
            free(jobs);
            return RV_EXIT_INPUT;
        }
    }
    if (cnt == 0) {
        rv_cli_err(VERB, "%s holds no <area>/full-<YYYY-MM-DD>.csv files to ingest", dir);
        free(jobs);
        return RV_EXIT_USAGE;
    }
    *out = jobs;
    *n = cnt;
    return RV_EXIT_OK;
}

static int run_job(struct rv_gate *g, struct run *run, const struct job *j,
                   const struct rv_ingest_opts *base)
{
    struct rv_ingest_opts o = *base;
    struct rv_ingest_result res;
    struct timespec t0;
    char buf[600];
    double secs;
    int err;

    o.area = j->area;
    o.edition = j->edition;
    o.alterations = j->alterations;
    o.ctx = run;
    o.on_error = on_error;
    o.progress = on_progress;
    run->label = j->path;
    run->shown_errors = run->more_errors = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    run->t0 = t0;
    err = rv_policy_ingest(g, j->path, &o, &res);
    secs = elapsed(&t0);
    if (run->tty)
        fputs("\r\033[K", stderr);
    if (run->more_errors > 0)
        fprintf(stderr, "regvault ingest: %s: %llu more refused rows not shown\n", j->path,
                (unsigned long long)run->more_errors);
    if (err != 0) {
        if (err == RV_EPARSE || (res.first_error.msg[0] != '\0' && err != RV_EINVAL)) {
            rv_cli_err(VERB, "%s; nothing of %s was stored",
                       rv_diag_format(&res.first_error, buf, sizeof(buf)), j->path);
            return RV_EXIT_INPUT;
        }
        if (err == RV_EINVAL) {
            rv_cli_err(VERB,
                       "%s: area %s already holds an edition later than this one: editions go "
                       "in date order; nothing was stored",
                       j->path, j->area);
            return RV_EXIT_INPUT;
        }
        if (err == RV_ENOTFOUND) {
            rv_cli_err(VERB, "cannot read %s: no such file", j->path);
            return RV_EXIT_FAIL;
        }
        rv_cli_err(VERB, "%s: %s; nothing of the file was stored", j->path, rv_strerror(err));
        return rv_cli_exit_for(err);
    }
    if (res.already) {
        report(run, j, &res, "already", secs);
        return RV_EXIT_OK;
    }
    if (res.rejected) {
        report(run, j, &res, "rejected", secs);
        rv_cli_err(VERB,
                   "%s: %llu rows refused, more than --max-errors %llu: nothing of the "
                   "file was stored; correct the rows above (or raise --max-errors)",
                   j->path, (unsigned long long)res.st.invalid,
                   (unsigned long long)base->max_errors);
        return RV_EXIT_INPUT;
    }
    run->total_rows += res.st.rows;
    run->total_stored += res.st.stored;
    report(run, j, &res, "stored", secs);
    return RV_EXIT_OK;
}

int rv_cmd_ingest(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_ingest_opts o;
    struct run run;
    struct rv_gate *g = NULL;
    struct job *jobs = NULL;
    const char *dir = NULL, *area = NULL;
    char **files = NULL;
    size_t nfiles = 0, njobs = 0;
    rv_date edition = RV_DATE_NONE;
    int rc = RV_EXIT_OK;

    memset(&o, 0, sizeof(o));
    memset(&run, 0, sizeof(run));
    files = calloc((size_t)argc, sizeof(*files));
    if (files == NULL)
        return RV_EXIT_FAIL;
    const char *edition_s = NULL, *encoding = NULL, *max_errors = NULL;
    bool alterations = false, single_thread = false;
    const struct rv_cli_option opts[] = {
        {"--vault", &dir, NULL},
        {"--area", &area, NULL},
        {"--edition", &edition_s, NULL},
        {"--encoding", &encoding, NULL},
        {"--max-errors", &max_errors, NULL},
        {"--alterations", NULL, &alterations},
        {"--json", NULL, &run.json},
        {"--single-thread", NULL, &single_thread},
    };
    struct rv_cli_args args = {.v = (const char **)files, .max = (size_t)argc};
    rc = rv_cli_options_args(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage,
                             &args);
    if (rc != RV_CLI_GO_ON)
        goto out;
    rc = RV_EXIT_USAGE;
    nfiles = args.n;
    o.alterations = alterations;
    o.single_thread = single_thread;
    if (area != NULL && !valid_area(area)) {
        rv_cli_err(VERB, "--area wants 1 to 15 of A-Z a-z 0-9 _ -");
        goto out;
    }
    if (edition_s != NULL && rv_date_parse_iso(edition_s, &edition) != 0) {
        rv_cli_err(VERB, "--edition wants a date as YYYY-MM-DD");
        goto out;
    }
    if (encoding == NULL || strcmp(encoding, "auto") == 0) {
        o.enc = RV_ENC_AUTO;
    } else if (strcmp(encoding, "utf8") == 0 || strcmp(encoding, "utf-8") == 0) {
        o.enc = RV_ENC_UTF8;
    } else if (strcmp(encoding, "cp1252") == 0 || strcmp(encoding, "windows-1252") == 0) {
        o.enc = RV_ENC_CP1252;
    } else {
        rv_cli_err(VERB, "--encoding wants auto, utf8 or cp1252");
        goto out;
    }
    if (max_errors != NULL &&
        rv_cli_parse_u64(VERB, "--max-errors", max_errors, 0, UINT64_MAX - 1, &o.max_errors) != 0)
        goto out;
    rc = RV_EXIT_OK;
    if (dir == NULL || nfiles == 0) {
        rv_cli_err(VERB, "--vault DIR and at least one FILE or SYNTH_DIR are required (see "
                         "regvault ingest --help)");
        rc = RV_EXIT_USAGE;
        goto out;
    }
    if (area == NULL) {
        struct stat st;
        if (nfiles != 1 || stat(files[0], &st) != 0 || !S_ISDIR(st.st_mode)) {
            rv_cli_err(VERB, "--area and --edition are required unless the one argument is a "
                             "synth folder (see regvault ingest --help)");
            rc = RV_EXIT_USAGE;
            goto out;
        }
        rc = walk(files[0], &jobs, &njobs);
        if (rc != RV_EXIT_OK)
            goto out;
    } else {
        if (edition == RV_DATE_NONE) {
            rv_cli_err(VERB, "--edition YYYY-MM-DD is required with --area");
            rc = RV_EXIT_USAGE;
            goto out;
        }
        jobs = calloc(nfiles, sizeof(*jobs));
        if (jobs == NULL) {
            rc = RV_EXIT_FAIL;
            goto out;
        }
        for (size_t k = 0; k < nfiles; k++) {
            snprintf(jobs[k].path, sizeof(jobs[k].path), "%s", files[k]);
            snprintf(jobs[k].area, sizeof(jobs[k].area), "%s", area);
            jobs[k].edition = edition;
            jobs[k].alterations = o.alterations;
        }
        njobs = nfiles;
    }

    rc = rv_cli_gate_open(VERB, dir, &uo, "registrar", &g);
    if (rc != RV_EXIT_OK)
        goto out;
    run.tty = isatty(2) != 0;
    if (run.json)
        run.files = json_array();
    {
        struct timespec t0;
        double secs;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (size_t k = 0; k < njobs && rc == RV_EXIT_OK; k++)
            rc = run_job(g, &run, &jobs[k], &o);
        secs = elapsed(&t0);
        if (run.json) {
            json_t *top = json_pack("{s:o, s:I, s:I, s:f, s:f, s:s}", "files", run.files, "rows",
                                    (json_int_t)run.total_rows, "stored",
                                    (json_int_t)run.total_stored, "seconds", secs, "rows_per_s",
                                    secs > 0 ? (double)run.total_rows / secs : 0.0, "status",
                                    rc == RV_EXIT_OK ? "ok" : "failed");
            run.files = NULL;
            if (top != NULL) {
                json_dumpf(top, stdout, JSON_INDENT(2));
                fputc('\n', stdout);
                json_decref(top);
            }
        } else if (njobs > 1 && rc == RV_EXIT_OK) {
            printf("%zu files, %llu rows, %llu versions stored in %.1fs (%.0f rows/s)\n", njobs,
                   (unsigned long long)run.total_rows, (unsigned long long)run.total_stored, secs,
                   secs > 0 ? (double)run.total_rows / secs : 0.0);
        }
    }
out:
    json_decref(run.files);
    /* The final checkpoint is part of the account of this run: failing to sign it fails
     * the command. */
    if (rv_policy_close(g) != 0 && rc == RV_EXIT_OK)
        rc = rv_cli_open_error(VERB, dir, RV_EAUDIT);
    free(jobs);
    free(files);
    return rc;
}
