/*
 * cmd_check.c - `regvault check`: is a donor on an electoral register on the date the party
 * received the donation (PPERA 2000 s.54)? One donor from the command line, or a batch of
 * donations in the Electoral Commission layout or the plain layout.
 *
 * The answer is permissible / needs review / not found / out of scope, with the register
 * area and edition it rests on, the elector number, for exact and strong matches the name
 * and address as on the register (which the party must record), and the reasons in words.
 * A batch writes one output row per input row, in input order, whatever went wrong with a
 * row. Every check goes through the access gate (policy/), which authorises it for the
 * checker role and records it, with the keyed ids of the entries shown, in the audit log
 * before any answer is written. Results go to stdout (or --out), diagnostics and progress to
 * stderr; nothing here logs personal data.
 */
#include "check/check.h"
#include "cli/cli.h"
#include "policy/policy.h"
#include "vault/vault.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define VERB "check"

static void usage(FILE *f)
{
    fprintf(f, "usage: regvault check --vault DIR --name NAME [--address ADDRESS] --postcode PC\n"
               "                      --date DATE [--json] [unsealing options]\n"
               "       regvault check --vault DIR --bequest --name NAME [--address ADDRESS]\n"
               "                      --postcode PC --death-date DATE [--json]\n"
               "       regvault check --vault DIR --batch FILE [--format auto|ec|plain]\n"
               "                      [--bequest] [--out FILE] [--json] [unsealing options]\n"
               "\n"
               "Checks whether a donor was on an electoral register on the date a donation was\n"
               "received (for a bequest: at any time in the five years before death). Answers\n"
               "permissible, needs review, not found or out of scope, with the register edition,\n"
               "the elector number, and the reasons.\n"
               "\n"
               "  --vault DIR          the vault\n"
               "  --name NAME          the donor's name as written (\"Mr Bill Smith\", \"SMITH, "
               "Bill\")\n"
               "  --address ADDRESS    the donor's address as written (optional)\n"
               "  --postcode PC        the donor's postcode (empty for a donor living abroad)\n"
               "  --date DATE          the date received, YYYY-MM-DD or dd/mm/yyyy\n"
               "  --bequest            judge over the five years before death\n"
               "  --death-date DATE    the date of death (with --bequest)\n"
               "  --batch FILE         a donations file (\"-\" for standard input)\n"
               "  --format F           auto (default), ec (Electoral Commission) or plain\n"
               "                       (id,name,address,postcode,date); see docs/formats.md\n"
               "  --out FILE           write the batch's results to FILE instead of stdout\n"
               "  --json               JSON: one object (single), one object per line (batch)\n"
               "  --passphrase-file F, --key-file F   how to unseal (default: ask)\n"
               "\n"
               "A batch writes CSV by default, one row per input row in input order; rows that\n"
               "cannot be read are answered 'needs review' with the line and the reason.\n"
               "Exit codes: 0 checked (whatever the verdicts), 1 failure, 2 usage, 3 the file\n"
               "was rejected, 4 wrong passphrase or key, 5 the vault failed an integrity check.\n");
}

static int parse_date_arg(const char *s, rv_date *out)
{
    if (rv_date_parse_iso(s, out) == 0 || rv_date_parse_dmy(s, out) == 0)
        return 0;
    return -1;
}

/* ---- text rendering of a single answer ----------------------------------------------- */

static void print_indented(FILE *f, const char *text)
{
    const char *p = text;
    while (*p != '\0') {
        size_t n = strcspn(p, "\n");
        fprintf(f, "  %.*s\n", (int)n, p);
        p += n;
        if (*p == '\n')
            p++;
    }
}

static void print_text(FILE *f, const struct rv_check_query *q, const struct rv_check_answer *a)
{
    char buf[4096], d[11];
    const struct rv_check_match *b = a->nmatches > 0 ? &a->matches[0] : NULL;
    bool reveal = b != NULL && b->in_force && a->verdict == RV_VERDICT_PERMISSIBLE;

    fprintf(f, "verdict:   %s\n", rv_check_verdict_name(a->verdict));
    fprintf(f, "grade:     %s\n", rv_check_grade_name(a->grade));
    fprintf(f, "%s %s\n", a->bequest ? "died:     " : "received: ", rv_date_format(a->date, d));
    if (a->note[0] != '\0')
        fprintf(f, "note:      %s\n", a->note);
    if (b != NULL && b->in_force) {
        char num[64];
        fprintf(f, "register:  %s, edition %s\n", b->cand.elector.area, b->cand.edition);
        fprintf(f, "elector:   %s\n",
                rv_elector_number_format(&b->cand.elector.number, num, sizeof(num)));
    }
    if (reveal) {
        fprintf(f, "name:      %s (as on the register)\n",
                rv_name_format(&b->cand.elector.name, buf, sizeof(buf)));
        fprintf(f, "address:   ");
        for (unsigned i = 0, first = 1; i < RV_ADDR_LINES; i++)
            if (b->cand.elector.address[i][0] != '\0') {
                fprintf(f, "%s%s", first ? "" : ", ", b->cand.elector.address[i]);
                first = 0;
            }
        fprintf(f, "%s%s\n", b->cand.elector.postcode.canon[0] != '\0' ? ", " : "",
                b->cand.elector.postcode.canon);
    }
    if (a->runner_up != RV_GRADE_NONE)
        fprintf(f, "margin:    %.2f over the runner-up (%s)\n", a->margin,
                rv_check_grade_name(a->runner_up));
    for (size_t i = 0; i < a->nmatches; i++) {
        const struct rv_check_match *m = &a->matches[i];
        bool r = reveal && m->in_force && m->grade >= RV_GRADE_STRONG;
        char num[64], mask[256];
        fprintf(f, "\nentry %zu: %s, %s %s%s%s\n", i + 1,
                rv_check_grade_name(m->in_force ? m->grade : RV_GRADE_NONE), m->cand.elector.area,
                rv_elector_number_format(&m->cand.elector.number, num, sizeof(num)), r ? "" : ", ",
                r ? "" : rv_check_mask(&m->cand.elector, mask, sizeof(mask)));
        print_indented(f, rv_check_reasons(q, m, r, buf, sizeof(buf)));
    }
    if (a->nmatches == 0)
        fprintf(f, "\nNo entry on the register matches this donor%s.\n",
                a->bequest ? " in the five years before death" : " on that date");
    sodium_memzero(buf, sizeof(buf));
}

static int emit_json(FILE *f, const struct rv_check_query *q, const struct rv_check_answer *a,
                     size_t flags)
{
    json_t *j = NULL;
    int rc = rv_check_answer_json(q, a, &j);
    if (rc != 0)
        return rc;
    rc = json_dumpf(j, f, flags) != 0 ? RV_EIO : 0;
    fputc('\n', f);
    json_decref(j);
    return rc;
}

static int emit_csv(FILE *f, const struct rv_check_query *q, const struct rv_check_answer *a)
{
    char *row = NULL;
    int rc = rv_check_answer_csv(q, a, &row);
    if (rc != 0)
        return rc;
    fprintf(f, "%s\n", row);
    sodium_memzero(row, strlen(row));
    free(row);
    return 0;
}

/* ---- batch ----------------------------------------------------------------------------- */

struct tally {
    unsigned long rows, verdict[4], unreadable;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Rows checked per call through the gate: one audit entry each. */
#define CHUNK 256

static int emit_row(FILE *out, bool json, const struct rv_check_row *row,
                    const struct rv_check_answer *a, struct tally *t)
{
    const struct rv_check_query *q = row->status == RV_ROW_OK ? &row->q : NULL;
    t->verdict[a->verdict]++;
    return json ? emit_json(out, q, a, JSON_COMPACT) : emit_csv(out, q, a);
}

/* A batch runs as a pipeline of three threads over a ring of chunk slots, each slot going
 * FREE -> READ -> CHECKED -> FREE in ring order:
 *   the reader parses the next chunk of the file into a free slot;
 *   the calling thread checks a read slot through the gate (which records the chunk in the
 *   audit log, durably, before it returns the answers);
 *   the writer renders a checked slot's answers, in input order, and frees it.
 * So the cores that match chunk k+1 do not wait while chunk k is parsed or rendered, and no
 * answer is written before its entry is on the log. When the checks stop on an error, the
 * writer still writes what was checked before it. */
#define SLOTS 3

enum slot_state { SLOT_FREE = 0, SLOT_READ, SLOT_CHECKED };

struct slot {
    enum slot_state state;
    struct rv_check_row *rows; /* [CHUNK] */
    size_t n;
    struct rv_check_answer *answers; /* [CHUNK], one per row with status RV_ROW_OK */
    uint64_t offset;                 /* bytes of the file read when the slot was filled */
};

struct feed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rv_check_batch *b;
    bool bequest, json, tty;
    FILE *out;
    uint64_t size; /* of the file, for the progress line; 0 when unknown */
    struct timespec t0;
    struct tally *t; /* the writer's */
    struct slot slot[SLOTS];
    bool read_all;    /* the reader has read its last chunk (or stopped) */
    bool checked_all; /* the checker has checked its last chunk (or stopped) */
    bool stop;        /* something failed: reader and checker give up */
    int rc;           /* the reader's: 0, or the batch reader's error (diag in d) */
    int werr;         /* the writer's */
    struct rv_diag d;
};

static void *read_chunks(void *arg)
{
    struct feed *f = arg;
    int rc = 1;

    for (int i = 0; rc == 1; i = (i + 1) % SLOTS) {
        struct slot *s = &f->slot[i];
        size_t n = 0;
        pthread_mutex_lock(&f->mu);
        while (s->state != SLOT_FREE && !f->stop)
            pthread_cond_wait(&f->cv, &f->mu);
        bool stop = f->stop;
        pthread_mutex_unlock(&f->mu);
        if (stop)
            break;
        while (n < CHUNK && (rc = rv_check_batch_next(f->b, &s->rows[n], &f->d)) == 1) {
            if (f->bequest && s->rows[n].status == RV_ROW_OK)
                rv_check_query_set_bequest(&s->rows[n].q);
            n++;
        }
        pthread_mutex_lock(&f->mu);
        s->n = n;
        s->offset = rv_check_batch_offset(f->b);
        if (n > 0 && rc >= 0) /* rows before a read error are not checked */
            s->state = SLOT_READ;
        if (rc != 1)
            f->rc = rc < 0 ? rc : 0;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_lock(&f->mu);
    f->read_all = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Writes one answer per row of a checked slot, in order, and frees the answers. */
static int write_slot(struct feed *f, struct slot *s)
{
    struct rv_check_answer a;
    size_t k = 0;
    int err = 0;

    for (size_t i = 0; i < s->n; i++) {
        struct rv_check_row *row = &s->rows[i];
        if (row->status == RV_ROW_OK) {
            if (err == 0)
                err = emit_row(f->out, f->json, row, &s->answers[k], f->t);
            rv_check_answer_free(&s->answers[k++]);
            continue;
        }
        if (err != 0)
            continue;
        rv_check_answer_unmatched(row->q.id, row->q.line,
                                  row->status == RV_ROW_OUT_OF_SCOPE ? RV_VERDICT_OUT_OF_SCOPE
                                                                     : RV_VERDICT_REVIEW,
                                  row->error[0] != '\0' ? row->error : NULL, &a);
        if (row->status == RV_ROW_INVALID)
            f->t->unreadable++;
        err = emit_row(f->out, f->json, row, &a, f->t);
        rv_check_answer_free(&a);
    }
    f->t->rows += s->n;
    return err;
}

static void *write_chunks(void *arg)
{
    struct feed *f = arg;

    for (int i = 0;; i = (i + 1) % SLOTS) {
        struct slot *s = &f->slot[i];
        pthread_mutex_lock(&f->mu);
        while (s->state != SLOT_CHECKED && !f->checked_all)
            pthread_cond_wait(&f->cv, &f->mu);
        bool have = s->state == SLOT_CHECKED;
        pthread_mutex_unlock(&f->mu);
        if (!have)
            break;
        int err = write_slot(f, s);
        sodium_memzero(s->rows, s->n * sizeof(*s->rows));
        pthread_mutex_lock(&f->mu);
        s->state = SLOT_FREE;
        if (err != 0 && f->werr == 0) {
            f->werr = err;
            f->stop = true;
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        if (err != 0)
            break;
        if (f->tty) {
            double sec = since(&f->t0), rate = sec > 0 ? (double)f->t->rows / sec : 0;
            if (f->size > 0 && s->offset > 0 && s->offset <= f->size)
                fprintf(stderr, "\r%lu rows, %.0f rows/s, about %.0f s left   ", f->t->rows, rate,
                        sec * (double)(f->size - s->offset) / (double)s->offset);
            else
                fprintf(stderr, "\r%lu rows, %.0f rows/s   ", f->t->rows, rate);
        }
    }
    return NULL;
}

/* Checks a read slot's rows through the gate: its answers, recorded. */
static int check_slot(struct rv_gate *g, struct slot *s)
{
    const struct rv_check_query *qs[CHUNK] = {0};
    size_t nq = 0;

    for (size_t i = 0; i < s->n; i++)
        if (s->rows[i].status == RV_ROW_OK)
            qs[nq++] = &s->rows[i].q;
    return rv_policy_check(g, "batch", qs, nq, s->answers);
}

static void feed_finish(struct feed *f, bool *flag)
{
    pthread_mutex_lock(&f->mu);
    *flag = true;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static int run_batch(struct rv_gate *g, const char *path, enum rv_check_layout layout, bool bequest,
                     bool json, FILE *out, struct tally *t)
{
    struct feed f;
    pthread_t reader, writer;
    bool reading = false, writing = false;
    struct stat st;
    char msg[512];
    int err = 0;

    memset(&f, 0, sizeof(f));
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.cv, NULL);
    f.bequest = bequest;
    f.json = json;
    f.out = out;
    f.t = t;
    f.tty = isatty(2) != 0;
    if (strcmp(path, "-") != 0 && stat(path, &st) == 0)
        f.size = (uint64_t)st.st_size;
    rv_diag_clear(&f.d);
    if ((err = rv_check_batch_open(path, layout, &f.b, &f.d)) != 0) {
        rv_cli_err(VERB, "%s", rv_diag_format(&f.d, msg, sizeof(msg)));
        goto out;
    }
    for (int i = 0; i < SLOTS; i++)
        if ((f.slot[i].rows = calloc(CHUNK, sizeof(*f.slot[i].rows))) == NULL ||
            (f.slot[i].answers = calloc(CHUNK, sizeof(*f.slot[i].answers))) == NULL) {
            err = RV_ENOMEM;
            goto out;
        }
    if (!json)
        fprintf(out, "%s\n", rv_check_csv_header());
    clock_gettime(CLOCK_MONOTONIC, &f.t0);
    if (pthread_create(&reader, NULL, read_chunks, &f) != 0) {
        err = RV_ENOMEM;
        goto out;
    }
    reading = true;
    if (pthread_create(&writer, NULL, write_chunks, &f) != 0) {
        err = RV_ENOMEM;
        goto out;
    }
    writing = true;
    for (int i = 0;; i = (i + 1) % SLOTS) {
        struct slot *s = &f.slot[i];
        pthread_mutex_lock(&f.mu);
        while (s->state != SLOT_READ && !f.read_all && !f.stop)
            pthread_cond_wait(&f.cv, &f.mu);
        bool have = s->state == SLOT_READ && !f.stop;
        pthread_mutex_unlock(&f.mu);
        if (!have)
            break;
        err = check_slot(g, s);
        pthread_mutex_lock(&f.mu);
        if (err == 0)
            s->state = SLOT_CHECKED;
        else
            f.stop = true;
        pthread_cond_broadcast(&f.cv);
        pthread_mutex_unlock(&f.mu);
        if (err != 0)
            break;
    }
out:
    if (writing) {
        feed_finish(&f, &f.checked_all);
        pthread_join(writer, NULL);
    }
    if (reading) {
        feed_finish(&f, &f.stop);
        pthread_join(reader, NULL);
    }
    if (err == 0 && f.werr != 0)
        err = f.werr;
    if (err == 0 && f.rc < 0) {
        rv_cli_err(VERB, "%s", rv_diag_format(&f.d, msg, sizeof(msg)));
        err = f.rc;
    }
    if (err == 0 && f.tty)
        fprintf(stderr, "\r%60s\r", "");
    for (int i = 0; i < SLOTS; i++) {
        struct slot *s = &f.slot[i];
        if (s->state == SLOT_CHECKED) /* not written: the writer failed */
            for (size_t k = 0; k < s->n; k++)
                rv_check_answer_free(&s->answers[k]);
        if (s->rows != NULL) {
            sodium_memzero(s->rows, CHUNK * sizeof(*s->rows));
            free(s->rows);
        }
        free(s->answers);
    }
    rv_check_batch_close(f.b);
    pthread_cond_destroy(&f.cv);
    pthread_mutex_destroy(&f.mu);
    return err;
}

int rv_cmd_check(int argc, char **argv)
{
    struct rv_unseal_opts uo = {0};
    struct rv_gate *g = NULL;
    struct rv_check_query *q = NULL;
    struct rv_check_answer a;
    const char *dir = NULL, *name = NULL, *address = NULL, *postcode = NULL, *batch = NULL,
               *outpath = NULL, *date_text = NULL, *death_text = NULL, *format_text = NULL;
    enum rv_check_layout layout = RV_CHECK_LAYOUT_AUTO;
    rv_date date = RV_DATE_NONE, death = RV_DATE_NONE;
    bool json = false, bequest = false;
    FILE *out = stdout;
    int rc = RV_EXIT_OK, err;

    memset(&a, 0, sizeof(a));
    {
        const struct rv_cli_option opts[] = {
            {"--vault", &dir, NULL},          {"--name", &name, NULL},
            {"--address", &address, NULL},    {"--postcode", &postcode, NULL},
            {"--date", &date_text, NULL},     {"--death-date", &death_text, NULL},
            {"--bequest", NULL, &bequest},    {"--batch", &batch, NULL},
            {"--format", &format_text, NULL}, {"--out", &outpath, NULL},
            {"--json", NULL, &json},
        };
        rc = rv_cli_options(VERB, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), &uo, usage);
        if (rc != RV_CLI_GO_ON)
            return rc;
        rc = RV_EXIT_OK;
    }
    if (date_text != NULL && parse_date_arg(date_text, &date) != 0) {
        rv_cli_err(VERB, "--date wants a date as YYYY-MM-DD or dd/mm/yyyy");
        return RV_EXIT_USAGE;
    }
    if (death_text != NULL && parse_date_arg(death_text, &death) != 0) {
        rv_cli_err(VERB, "--death-date wants a date as YYYY-MM-DD or dd/mm/yyyy");
        return RV_EXIT_USAGE;
    }
    if (format_text != NULL) {
        if (strcmp(format_text, "ec") == 0)
            layout = RV_CHECK_LAYOUT_EC;
        else if (strcmp(format_text, "plain") == 0)
            layout = RV_CHECK_LAYOUT_PLAIN;
        else if (strcmp(format_text, "auto") != 0) {
            rv_cli_err(VERB, "--format wants auto, ec or plain");
            return RV_EXIT_USAGE;
        }
    }
    if (dir == NULL) {
        rv_cli_err(VERB, "--vault DIR is required (see regvault check --help)");
        return RV_EXIT_USAGE;
    }
    if (batch != NULL && (name != NULL || address != NULL || postcode != NULL ||
                          date != RV_DATE_NONE || death != RV_DATE_NONE)) {
        rv_cli_err(VERB, "--batch reads names, addresses, postcodes and dates from the file: "
                         "give either --batch or --name/--postcode/--date");
        return RV_EXIT_USAGE;
    }
    if (batch == NULL) {
        if (name == NULL) {
            rv_cli_err(VERB, "--name is required (or --batch FILE)");
            return RV_EXIT_USAGE;
        }
        if (bequest ? death == RV_DATE_NONE || date != RV_DATE_NONE
                    : date == RV_DATE_NONE || death != RV_DATE_NONE) {
            rv_cli_err(VERB, bequest ? "--bequest needs --death-date DATE (and no --date)"
                                     : "--date DATE is required (--death-date goes with "
                                       "--bequest)");
            return RV_EXIT_USAGE;
        }
        if ((q = calloc(1, sizeof(*q))) == NULL)
            return RV_EXIT_FAIL;
        {
            struct rv_diag d;
            rv_diag_clear(&d);
            err = rv_check_query_init(name, address, postcode != NULL ? postcode : "",
                                      bequest ? death : date, q, &d);
            if (err != 0) {
                rv_cli_err(VERB, "%s", d.msg);
                rc = RV_EXIT_USAGE;
                goto out;
            }
            if (bequest)
                rv_check_query_set_bequest(q);
        }
    }
    if (outpath != NULL && (out = fopen(outpath, "w")) == NULL) {
        rv_cli_err(VERB, "cannot write %s: %s", outpath, strerror(errno));
        out = stdout;
        rc = RV_EXIT_FAIL;
        goto out;
    }

    if ((rc = rv_cli_gate_open(VERB, dir, &uo, "checker", &g)) != RV_EXIT_OK)
        goto out;
    if (batch != NULL) {
        struct tally t;
        memset(&t, 0, sizeof(t));
        err = run_batch(g, batch, layout, bequest, json, out, &t);
        fprintf(stderr,
                "regvault check: %lu rows: %lu permissible, %lu needs review (%lu unreadable), "
                "%lu not found, %lu out of scope\n",
                t.rows, t.verdict[RV_VERDICT_PERMISSIBLE], t.verdict[RV_VERDICT_REVIEW],
                t.unreadable, t.verdict[RV_VERDICT_NOT_FOUND], t.verdict[RV_VERDICT_OUT_OF_SCOPE]);
        if (err != 0) {
            if (err != RV_EPARSE)
                rv_cli_err(VERB, "the batch stopped: %s", rv_strerror(err));
            rc = rv_cli_exit_for(err);
        }
        goto out;
    }
    {
        const struct rv_check_query *qs[1] = {q};
        if ((err = rv_policy_check(g, bequest ? "bequest" : "single", qs, 1, &a)) != 0) {
            rv_cli_err(VERB, "the check failed: %s", rv_strerror(err));
            rc = rv_cli_exit_for(err);
            goto out;
        }
    }
    if (json)
        err = emit_json(out, q, &a, JSON_INDENT(2));
    else
        print_text(out, q, &a);
out:
    rv_check_answer_free(&a);
    if (q != NULL) {
        sodium_memzero(q, sizeof(*q));
        free(q);
    }
    if (g != NULL && (err = rv_policy_close(g)) != 0 && rc == RV_EXIT_OK) {
        rv_cli_err(VERB, "the audit log's closing checkpoint could not be signed: %s",
                   rv_strerror(err));
        rc = RV_EXIT_DENIED;
    }
    if (out != stdout && fclose(out) != 0 && rc == RV_EXIT_OK) {
        rv_cli_err(VERB, "cannot write %s: %s", outpath, strerror(errno));
        rc = RV_EXIT_FAIL;
    }
    return rc;
}
