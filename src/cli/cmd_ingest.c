/*
 * cmd_ingest.c - `regvault ingest`: loads register editions and monthly alterations into a
 * vault, each file stored whole or not at all, many files in one store transaction.
 *
 * Two forms: named files for one area and edition, or a folder as `regvault synth` writes
 * it (<area>/full-<YYYY-MM-DD>.csv and <area>/alterations-<YYYY-MM>.csv), walked area by
 * area in date order. Refused rows are reported by file, line and rule; a file with more
 * than --max-errors of them is not stored at all (exit 3), and later files are not tried.
 *
 * The files go to the vault in loads (rv_policy_ingest_load): one store transaction for
 * many files, so that the index pages every file touches are written once per load rather
 * than once per file. A load holds at most --files-per-commit files and --commit-mb of
 * register files; a file is reported stored only once its load has committed.
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
    fprintf(f,
            "usage: regvault ingest --vault DIR --area CODE --edition YYYY-MM-DD\n"
            "                       [--alterations] [options] FILE...\n"
            "       regvault ingest --vault DIR [options] SYNTH_DIR\n\n"
            "Loads register files into the vault. Each file is stored whole or not at all;\n"
            "a file already ingested changes nothing. Anonymous (N) entries are counted and\n"
            "never stored. Several files are stored in one commit (see --files-per-commit):\n"
            "a file is reported stored once its commit is durable. A refused file stops the\n"
            "command; the files before it are kept.\n\n"
            "  --vault DIR           the vault\n"
            "  --area CODE           register area code of the files (1-15 of A-Z a-z 0-9 _ -)\n"
            "  --edition DATE        the edition's date; with --alterations, the edition the\n"
            "                        alterations amend (each row brings its own date)\n"
            "  --alterations         the files are monthly alterations\n"
            "  --encoding E          auto (default), utf8 or cp1252\n"
            "  --max-errors N        refused rows tolerated per file (default 0); one more and\n"
            "                        the file is not stored\n"
            "  --files-per-commit N  files stored together in one commit (default 0: no limit);\n"
            "                        1 commits each file on its own (slower on a large vault)\n"
            "  --commit-mb N         MB of register files stored together in one commit at\n"
            "                        most (default 1024; 0: no limit). A crash loses the\n"
            "                        files of the commit under way, never part of a file\n"
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
    uint64_t size; /* bytes, for the size of a load */
};

struct run {
    bool json, tty;
    json_t *files;
    struct timespec t0; /* when the file shown in progress began */
    const char *label;
    uint64_t total_rows, total_stored;
    double last_end; /* when the latest file of the load was read through (seconds) */
    struct timespec load_t0;
};

/* What the callbacks of one file know (the ingest options' ctx). */
struct file_ctx {
    struct run *run;
    const struct job *j;
    double end; /* seconds since the load began when the file was read through, or 0 */
    uint64_t shown_errors, more_errors;
};

static double elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void on_error(void *ctx, const struct rv_diag *d)
{
    struct file_ctx *fc = ctx;
    struct run *run = fc->run;
    char buf[600];

    if (fc->shown_errors < MAX_SHOWN_ERRORS) {
        if (run->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "regvault ingest: %s\n", rv_diag_format(d, buf, sizeof(buf)));
        fc->shown_errors++;
    } else {
        fc->more_errors++;
    }
}

static void on_progress(void *ctx, const struct rv_ingest_progress *p)
{
    struct file_ctx *fc = ctx;
    struct run *run = fc->run;
    double t, rate, frac, eta;

    if (p->total_bytes > 0 && p->bytes >= p->total_bytes)
        fc->end = elapsed(&run->load_t0);
    if (run->label != fc->j->path) {
        run->label = fc->j->path;
        clock_gettime(CLOCK_MONOTONIC, &run->t0);
    }
    if (!run->tty)
        return;
    t = elapsed(&run->t0);
    rate = t > 0 ? (double)p->rows / t : 0;
    frac = p->total_bytes > 0 ? (double)p->bytes / (double)p->total_bytes : 0;
    eta = frac > 0.001 ? t * (1 - frac) / frac : 0;
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

/* Reports the outcome of one file of a load that is over, and its exit status. */
static int finish_job(struct run *run, const struct job *j, int err,
                      const struct rv_ingest_result *res, struct file_ctx *fc, uint64_t max_errors)
{
    char buf[600];
    double secs = fc->end > run->last_end ? fc->end - run->last_end : 0;

    if (fc->end > run->last_end)
        run->last_end = fc->end;
    if (fc->more_errors > 0)
        fprintf(stderr, "regvault ingest: %s: %llu more refused rows not shown\n", j->path,
                (unsigned long long)fc->more_errors);
    if (err != 0) {
        if (err == RV_EPARSE || (res->first_error.msg[0] != '\0' && err != RV_EINVAL)) {
            rv_cli_err(VERB, "%s; nothing of %s was stored",
                       rv_diag_format(&res->first_error, buf, sizeof(buf)), j->path);
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
    if (res->already) {
        report(run, j, res, "already", secs);
        return RV_EXIT_OK;
    }
    if (res->rejected) {
        report(run, j, res, "rejected", secs);
        rv_cli_err(VERB,
                   "%s: %llu rows refused, more than --max-errors %llu: nothing of the "
                   "file was stored; correct the rows above (or raise --max-errors)",
                   j->path, (unsigned long long)res->st.invalid, (unsigned long long)max_errors);
        return RV_EXIT_INPUT;
    }
    run->total_rows += res->st.rows;
    run->total_stored += res->st.stored;
    report(run, j, res, "stored", secs);
    return RV_EXIT_OK;
}

/* Ingests jobs[0, n) in one load and reports each file once the load is over. */
static int run_load(struct rv_gate *g, struct run *run, const struct job *jobs, size_t n,
                    const struct rv_ingest_opts *base)
{
    struct rv_ingest_file *files = calloc(n, sizeof(*files));
    struct file_ctx *fcs = calloc(n, sizeof(*fcs));
    size_t done = 0;
    int err, rc = RV_EXIT_OK;

    if (files == NULL || fcs == NULL) {
        free(files);
        free(fcs);
        rv_cli_err(VERB, "out of memory");
        return RV_EXIT_FAIL;
    }
    for (size_t i = 0; i < n; i++) {
        fcs[i].run = run;
        fcs[i].j = &jobs[i];
        files[i].path = jobs[i].path;
        files[i].o = *base;
        files[i].o.area = jobs[i].area;
        files[i].o.edition = jobs[i].edition;
        files[i].o.alterations = jobs[i].alterations;
        files[i].o.ctx = &fcs[i];
        files[i].o.on_error = on_error;
        files[i].o.progress = on_progress;
    }
    run->label = NULL;
    run->last_end = 0;
    clock_gettime(CLOCK_MONOTONIC, &run->load_t0);
    err = rv_policy_ingest_load(g, files, n, &done);
    if (run->tty)
        fputs("\r\033[K", stderr);
    for (size_t i = 0; i < done && rc == RV_EXIT_OK; i++)
        rc = finish_job(run, &jobs[i], files[i].rc, &files[i].res, &fcs[i], base->max_errors);
    if (rc == RV_EXIT_OK && err != 0) {
        /* Refused, or the audit log failed, around the load. */
        rv_cli_err(VERB, "%s: %s%s", jobs[done < n ? done : 0].path, rv_strerror(err),
                   done == 0 ? "; nothing of the file was stored" : "");
        rc = rv_cli_exit_for(err);
    }
    free(files);
    free(fcs);
    return rc;
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
    const char *edition_s = NULL, *encoding = NULL, *max_errors = NULL, *per_commit = NULL;
    const char *commit_mb = NULL;
    uint64_t files_per_commit = 0, bytes_per_commit = 1024ull << 20;
    bool alterations = false, single_thread = false;
    const struct rv_cli_option opts[] = {
        {"--vault", &dir, NULL},
        {"--area", &area, NULL},
        {"--edition", &edition_s, NULL},
        {"--encoding", &encoding, NULL},
        {"--max-errors", &max_errors, NULL},
        {"--files-per-commit", &per_commit, NULL},
        {"--commit-mb", &commit_mb, NULL},
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
    if (per_commit != NULL && rv_cli_parse_u64(VERB, "--files-per-commit", per_commit, 0, 1000000,
                                               &files_per_commit) != 0)
        goto out;
    if (commit_mb != NULL) {
        uint64_t mb;
        if (rv_cli_parse_u64(VERB, "--commit-mb", commit_mb, 0, 1ull << 30, &mb) != 0)
            goto out;
        bytes_per_commit = mb << 20;
    }
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
        for (size_t k = 0; k < njobs; k++) {
            struct stat st;
            jobs[k].size = stat(jobs[k].path, &st) == 0 ? (uint64_t)st.st_size : 0;
        }
        for (size_t k = 0, m; k < njobs && rc == RV_EXIT_OK; k += m) {
            uint64_t bytes = jobs[k].size;
            for (m = 1; k + m < njobs && (files_per_commit == 0 || m < files_per_commit) &&
                        (bytes_per_commit == 0 || bytes + jobs[k + m].size <= bytes_per_commit);
                 m++)
                bytes += jobs[k + m].size;
            rc = run_load(g, &run, &jobs[k], m, &o);
        }
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
