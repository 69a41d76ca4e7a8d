/*
 * cmd_synth.c - `regvault synth`: writes synthetic registers, monthly alterations and
 * donations with ground truth, so that tests, benchmarks and demos never need real data.
 *
 * This file only parses options, guards the output folder and prints the statistics; the
 * generator is src/synth.
 */
#include "cli/cli.h"
#include "synth/synth.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *const verb = "synth";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: regvault synth --electors N [--areas K] [--seed S] [--edition YYYY-MM-DD]\n"
            "                      [--months M] [--donations D] [--stats] [--force] --out DIR\n"
            "\n"
            "Writes realistic synthetic UK electoral registers. Nothing in them is real: names\n"
            "come from public name lists and generated syllables, addresses are made up, and\n"
            "postcodes only have a valid format. The same options give byte-identical files.\n"
            "\n"
            "Options:\n"
            "  --electors N   electors in all areas together (at least %d per area, at most "
            "%llu)\n"
            "  --areas K      registers (areas), 1 to %d; default 1\n"
            "  --seed S       any whole number; default 1\n"
            "  --edition D    date of the revised register, YYYY-MM-DD; default 2025-12-01\n"
            "  --months M     monthly alteration files after the edition, 0 to %d; default 0\n"
            "  --donations D  donations to write, 0 to %llu; default 0\n"
            "  --stats        print what was generated beside its target\n"
            "  --force        write into DIR even if it is not empty (files of the same names\n"
            "                 are replaced; other files are left alone)\n"
            "  --out DIR      output folder: created if missing; refused if not empty unless\n"
            "                 --force\n"
            "\n"
            "Output:\n"
            "  DIR/<area>/full-<edition>.csv      the full register of each area\n"
            "  DIR/<area>/alterations-YYYY-MM.csv created, changed and deleted entries,\n"
            "                                     effective on the 1st of each month\n"
            "  DIR/donations.csv                  Electoral Commission layout\n"
            "  DIR/donations-truth.csv            ECRef,area,elector_number,note\n"
            "\n"
            "Areas are ONS-like codes: E07000001, E07000002, ...; every eighth area from the\n"
            "sixth is Welsh (W06000006) and from the seventh Scottish (S12000007, with marker\n"
            "M for foreign nationals instead of G/B). Layouts differ by area, as real exports\n"
            "do: E07000001 is CSV in UTF-8 with \"Surname, Forenames\" and UPRN; E07000002 is\n"
            "tab-separated Windows-1252 with CRLF and separate surname and forename columns;\n"
            "E07000003 is UTF-8 with a byte-order mark, \"Forenames Surname\" and ISO dates;\n"
            "E07000004 is CSV in Windows-1252; later areas mix these at random. Every area has\n"
            "an Opt Out column and at least one anonymous (N) entry, which carries only its\n"
            "elector number.\n"
            "\n"
            "Shape (printed by --stats beside what was made): overseas electors (F) 0.4 %%,\n"
            "anonymous entries (N) 0.01 %%, attainers 0.65 %%, local-government-only electors\n"
            "(G B M L) 5 %%, postal voters (A) 20 %%, open-register opt-outs 3-84 %% by area\n"
            "(55 %% on average); addresses with 0/1/2/3/4/5+ electors 8/36/38/11/5/2 %%, with\n"
            "care homes and halls of 10-200; father and son of one name at some addresses.\n"
            "Each month 1 %% of entries are created, 1 %% deleted and 0.65 %% changed (moves,\n"
            "names changed on marriage, markers).\n"
            "\n"
            "Donations are received over the year after the edition (or over all the\n"
            "alteration months, if longer). The truth file's note says how the donor was\n"
            "written: exact, typo, middle-dropped, middle-as-first, initials, nickname,\n"
            "title, hyphen, mc-mac, apostrophe, accents, swapped, postcode-format, same-name\n"
            "(one of a father and son), moved (new postcode, old address on the date),\n"
            "registered-after, left-register, not-registered (a near-miss at a real postcode)\n"
            "or organisation. area and elector_number are filled exactly when the donor was\n"
            "on that register on the date received.\n"
            "\n"
            "Each file is written unnamed and gets its name only when complete, so even a\n"
            "killed run leaves no partial file (where the filesystem lacks O_TMPFILE, a\n"
            "hidden .<name>.tmp is renamed instead).\n"
            "\n"
            "Exit codes: 0 success, 1 failure (I/O), 2 usage error.\n",
            RV_SYNTH_MIN_PER_AREA, (unsigned long long)RV_SYNTH_MAX_ELECTORS, RV_SYNTH_MAX_AREAS,
            RV_SYNTH_MAX_MONTHS, (unsigned long long)RV_SYNTH_MAX_DONATIONS);
}

/* 0 if path is missing (then created) or an empty folder; 1 if it holds something; -1 and a
 * message on error. */
static int prepare_out(const char *path, bool force)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT) {
            rv_cli_err(verb, "--out: cannot use the folder: %s", strerror(errno));
            return -1;
        }
        if (mkdir(path, 0755) != 0) {
            rv_cli_err(verb, "--out: cannot create the folder: %s (does its parent exist?)",
                       strerror(errno));
            return -1;
        }
        return 0;
    }
    if (!S_ISDIR(sb.st_mode)) {
        rv_cli_err(verb, "--out: exists and is not a folder");
        return -1;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        rv_cli_err(verb, "--out: cannot read the folder: %s", strerror(errno));
        return -1;
    }
    struct dirent *de;
    int full = 0;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            full = 1;
            break;
        }
    closedir(d);
    if (full && !force) {
        rv_cli_err(verb, "--out: the folder is not empty; choose another or add --force");
        return -1;
    }
    return 0;
}

static void row(const char *what, uint64_t n, uint64_t of, double target)
{
    double share = of ? 100.0 * (double)n / (double)of : 0;
    if (target >= 0)
        printf("  %-34s %12llu %8.3f %%   target %7.3f %%\n", what, (unsigned long long)n, share,
               100.0 * target);
    else
        printf("  %-34s %12llu %8.3f %%\n", what, (unsigned long long)n, share);
}

static void print_stats(const struct rv_synth_opts *o, const struct rv_synth_stats *s)
{
    static const double hh[6] = RV_SYNTH_HH_SHARES;
    static const char *const hhname[6] = {"addresses with 0 electors", "addresses with 1",
                                          "addresses with 2",          "addresses with 3",
                                          "addresses with 4",          "addresses with 5+"};
    printf("electors %llu in %u areas (%llu Windows-1252, %llu tab-separated, %llu with two "
           "name columns, %llu with UPRN)\n",
           (unsigned long long)s->electors, o->areas, (unsigned long long)s->cp1252_areas,
           (unsigned long long)s->tsv_areas, (unsigned long long)s->split_name_areas,
           (unsigned long long)s->uprn_areas);
    printf("  %-34s %12s %10s\n", "", "count", "share");
    row("overseas (F)", s->overseas, s->electors, RV_SYNTH_SHARE_OVERSEAS);
    row("anonymous (N)", s->anonymous, s->electors, RV_SYNTH_SHARE_ANONYMOUS);
    row("attainers", s->attainers, s->electors, RV_SYNTH_SHARE_ATTAINER);
    row("open-register opt-outs", s->optout, s->electors, s->optout_target);
    row("local government only (G B M L)", s->local_only, s->electors, RV_SYNTH_SHARE_LOCAL);
    row("postal voters (A)", s->postal, s->electors, RV_SYNTH_SHARE_POSTAL);
    printf("  %-34s %12llu\n", "same-name pairs at one address", (unsigned long long)s->same_name);
    printf("addresses %llu (%.3f electors each, without overseas and anonymous)\n",
           (unsigned long long)s->addresses,
           s->addresses ? (double)(s->electors - s->overseas - s->anonymous) / (double)s->addresses
                        : 0);
    for (int i = 0; i < 6; i++)
        row(hhname[i], s->by_size[i], s->addresses, hh[i]);
    row("large addresses (10-200)", s->large, s->addresses, RV_SYNTH_SHARE_LARGE);
    row("electors at large addresses", s->large_electors, s->electors, -1);
    if (o->months > 0) {
        double m = o->months;
        printf("alterations over %u months (share of electors)\n", o->months);
        row("created", s->created, s->electors, RV_SYNTH_MONTHLY_CREATED * m);
        row("changed", s->changed, s->electors, RV_SYNTH_MONTHLY_CHANGED * m);
        row("  of which moves", s->moves, s->electors, -1);
        row("  of which name changes", s->renames, s->electors, -1);
        row("deleted", s->deleted, s->electors, RV_SYNTH_MONTHLY_DELETED * m);
    }
    if (o->donations > 0) {
        printf("donations %llu, by how the donor was written\n", (unsigned long long)s->donations);
        for (int i = 0; i < RV_SYNTH_NOTE_COUNT; i++)
            if (s->by_note[i] > 0)
                row(rv_synth_note_name(i), s->by_note[i], s->donations, -1);
    }
    printf("bytes written %llu\n", (unsigned long long)s->bytes);
}

/* Progress on a terminal: electors so far, rate and time left, on one line. */
struct progress {
    struct timespec start;
    double last;
};

static double since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void show_progress(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    double el = since(&p->start);
    if (el - p->last < 0.25)
        return;
    p->last = el;
    double rate = (double)done / (el > 0 ? el : 1e-9);
    fprintf(stderr, "\rsynth: %3.0f %% of %llu electors, %.2f M electors/s, %.0f s left   ",
            100.0 * (double)done / (double)total, (unsigned long long)total / 2, rate / 2e6,
            rate > 0 ? (double)(total - done) / rate : 0);
}

int rv_cmd_synth(int argc, char **argv)
{
    struct rv_synth_opts o = {.areas = 1, .seed = 1};
    struct rv_synth_stats st;
    struct rv_diag diag;
    const char *out = NULL;
    bool stats = false, force = false, have_electors = false;
    uint64_t v;

    const char *electors = NULL, *areas = NULL, *seed = NULL, *months = NULL, *donations = NULL,
               *edition = NULL;
    const struct rv_cli_option opts[] = {
        {"--electors", &electors, NULL},
        {"--areas", &areas, NULL},
        {"--seed", &seed, NULL},
        {"--months", &months, NULL},
        {"--donations", &donations, NULL},
        {"--edition", &edition, NULL},
        {"--out", &out, NULL},
        {"--stats", NULL, &stats},
        {"--force", NULL, &force},
    };
    int rc = rv_cli_options(verb, argc, argv, 1, opts, sizeof(opts) / sizeof(opts[0]), NULL, usage);
    if (rc != RV_CLI_GO_ON)
        return rc;

    o.edition = rv_date_from_ymd(2025, 12, 1);
    if (electors != NULL) {
        if (rv_cli_parse_u64(verb, "--electors", electors, 1, RV_SYNTH_MAX_ELECTORS, &o.electors) !=
            0)
            return RV_EXIT_USAGE;
        have_electors = true;
    }
    if (areas != NULL) {
        if (rv_cli_parse_u64(verb, "--areas", areas, 1, RV_SYNTH_MAX_AREAS, &v) != 0)
            return RV_EXIT_USAGE;
        o.areas = (unsigned)v;
    }
    if (seed != NULL && rv_cli_parse_u64(verb, "--seed", seed, 0, UINT64_MAX, &o.seed) != 0)
        return RV_EXIT_USAGE;
    if (months != NULL) {
        if (rv_cli_parse_u64(verb, "--months", months, 0, RV_SYNTH_MAX_MONTHS, &v) != 0)
            return RV_EXIT_USAGE;
        o.months = (unsigned)v;
    }
    if (donations != NULL && rv_cli_parse_u64(verb, "--donations", donations, 0,
                                              RV_SYNTH_MAX_DONATIONS, &o.donations) != 0)
        return RV_EXIT_USAGE;
    if (edition != NULL && rv_date_parse_iso(edition, &o.edition) != 0) {
        rv_cli_err(verb, "--edition wants a real date written YYYY-MM-DD");
        return RV_EXIT_USAGE;
    }
    if (out != NULL && out[0] == '\0') {
        rv_cli_err(verb, "--out wants a folder name");
        return RV_EXIT_USAGE;
    }
    if (!have_electors) {
        rv_cli_err(verb, "--electors is required (see regvault synth --help)");
        return RV_EXIT_USAGE;
    }
    if (out == NULL) {
        rv_cli_err(verb, "--out is required (see regvault synth --help)");
        return RV_EXIT_USAGE;
    }
    if (rv_synth_check(&o, &diag) != 0) {
        rv_cli_err(verb, "%s %s", diag.file, diag.msg);
        return RV_EXIT_USAGE;
    }
    if (prepare_out(out, force) != 0)
        return RV_EXIT_USAGE;
    struct progress prog = {.last = 0};
    clock_gettime(CLOCK_MONOTONIC, &prog.start);
    if (isatty(STDERR_FILENO)) {
        o.progress = show_progress;
        o.progress_ctx = &prog;
    }
    int err = rv_synth_run(&o, out, &st, &diag);
    if (o.progress != NULL && prog.last > 0)
        fprintf(stderr, "\r%*s\r", 70, "");
    if (err != 0) {
        char buf[600];
        rv_cli_err(verb, "%s: %s%s%s", rv_diag_format(&diag, buf, sizeof(buf)), rv_strerror(err),
                   err == RV_EIO ? ": " : "", err == RV_EIO ? strerror(errno) : "");
        return rv_cli_exit_for(err);
    }
    if (stats)
        print_stats(&o, &st);
    return RV_EXIT_OK;
}
