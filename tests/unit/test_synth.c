/*
 * test_synth.c - the synthetic register generator, checked from its files, not its word.
 *
 * Every later test and benchmark trusts these files, so they are read back with the core CSV
 * reader and checked against what synth claims: the statistics are recounted from the rows
 * and compared with the targets; every postcode must parse as BS 7666; elector numbers must
 * be unique and sequential within polling districts; Windows-1252 areas must really be
 * 1252; anonymous entries must carry nothing but their number; the ground truth of every
 * donation must name an entry that exists, with the name and postcode the note claims; and
 * the same options must give the same bytes while another seed must not.
 */
#include "synth/synth.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers --------------------------------------------------------------------------- */

static char *tmpdir(void)
{
    char *d = rv_test_tmpdir("rv-synth-test");

    assert_non_null(d);
    return d;
}

static void rmtree(const char *dir)
{
    rv_test_rmtree(dir);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static struct rv_synth_opts opts(uint64_t n, unsigned areas, uint64_t seed, unsigned months,
                                 uint64_t donations)
{
    struct rv_synth_opts o = {.electors = n,
                              .areas = areas,
                              .seed = seed,
                              .months = months,
                              .donations = donations,
                              .edition = rv_date_from_ymd(2025, 12, 1)};
    return o;
}

static void gen(const char *dir, const struct rv_synth_opts *o, struct rv_synth_stats *st)
{
    struct rv_diag diag;
    int err = rv_synth_run(o, dir, st, &diag);
    if (err != 0)
        fail_msg("rv_synth_run: %s: %s", rv_strerror(err), diag.msg);
}

/* Lists the files under dir (two levels), sorted, as "area/name" or "name". */
static size_t list_files(const char *dir, char names[][128], size_t cap)
{
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        assert_int_equal(stat(p, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            DIR *d2 = opendir(p);
            struct dirent *e2;
            assert_non_null(d2);
            while ((e2 = readdir(d2)) != NULL) {
                if (strcmp(e2->d_name, ".") == 0 || strcmp(e2->d_name, "..") == 0)
                    continue;
                assert_true(n < cap);
                snprintf(names[n++], 128, "%.60s/%.60s", e->d_name, e2->d_name);
            }
            closedir(d2);
        } else {
            assert_true(n < cap);
            snprintf(names[n++], 128, "%.120s", e->d_name);
        }
    }
    closedir(d);
    qsort(names, n, 128, (int (*)(const void *, const void *))strcmp);
    return n;
}

/* ---- reading registers back ------------------------------------------------------------- */

/* Column indexes by normalised header name; -1 when absent. */
struct cols {
    int prefix, number, suffix, markers, dob, name, surname, forename, postcode, addr1, addr2,
        addr3, optout, uprn, created, changed, deleted;
};

static void norm(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 1 < cap; s++)
        if (*s != ' ' && *s != '_' && *s != '-')
            out[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    out[n] = '\0';
}

static void find_cols(char **f, size_t nf, struct cols *c)
{
    memset(c, -1, sizeof(*c));
    for (size_t i = 0; i < nf; i++) {
        char h[64];
        norm(f[i], h, sizeof(h));
        int *slot = strcmp(h, "electornumberprefix") == 0   ? &c->prefix
                    : strcmp(h, "electornumber") == 0       ? &c->number
                    : strcmp(h, "electornumbersuffix") == 0 ? &c->suffix
                    : strcmp(h, "electormarkers") == 0      ? &c->markers
                    : strcmp(h, "electordob") == 0          ? &c->dob
                    : strcmp(h, "electorname") == 0         ? &c->name
                    : strcmp(h, "electorsurname") == 0      ? &c->surname
                    : strcmp(h, "electorforename") == 0     ? &c->forename
                    : strcmp(h, "postcode") == 0            ? &c->postcode
                    : strcmp(h, "address1") == 0            ? &c->addr1
                    : strcmp(h, "address2") == 0            ? &c->addr2
                    : strcmp(h, "address3") == 0            ? &c->addr3
                    : strcmp(h, "optout") == 0              ? &c->optout
                    : strcmp(h, "uprn") == 0                ? &c->uprn
                    : strcmp(h, "electorcreatedmonth") == 0 ? &c->created
                    : strcmp(h, "electorchangedmonth") == 0 ? &c->changed
                    : strcmp(h, "electordeletedmonth") == 0 ? &c->deleted
                                                            : NULL;
        if (slot != NULL)
            *slot = (int)i;
    }
    assert_true(c->prefix >= 0 && c->number >= 0 && c->suffix >= 0 && c->markers >= 0);
    assert_true(c->dob >= 0 && c->postcode >= 0 && c->addr1 >= 0 && c->optout >= 0);
    assert_true(c->name >= 0 || (c->surname >= 0 && c->forename >= 0));
}

/* One entry as read back: key "AREA|ABC1-12/1". */
struct entry {
    char key[48];
    char name[160];   /* "Forenames Surname", folded */
    char pc_full[12]; /* postcode in the full register */
    char pc_last[12]; /* after the latest change row */
    char name_last[160];
    char fore[2][128], sur[2][128]; /* as written: [0] first seen, [1] after the last change */
};

struct book {
    struct entry *e;
    size_t n, cap;
    size_t sorted; /* e[0..sorted) is in key order */
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->key, ((const struct entry *)b)->key);
}

static struct entry *book_find(struct book *b, const char *key)
{
    struct entry k;
    snprintf(k.key, sizeof(k.key), "%s", key);
    return bsearch(&k, b->e, b->sorted, sizeof(*b->e), entry_cmp);
}

static void folded(const char *s, char *out, size_t cap)
{
    assert_int_equal(rv_fold(s, strlen(s), out, cap), 0);
}

/* "Forenames Surname" of a row, whatever the area's name layout. */
static void row_name(char **f, const struct cols *c, char *out, size_t cap)
{
    char tmp[300];
    if (c->name < 0) {
        snprintf(tmp, sizeof(tmp), "%s %s", f[c->forename], f[c->surname]);
    } else {
        const char *comma = strchr(f[c->name], ',');
        if (comma != NULL)
            snprintf(tmp, sizeof(tmp), "%s %.*s", comma + 2, (int)(comma - f[c->name]), f[c->name]);
        else
            snprintf(tmp, sizeof(tmp), "%s", f[c->name]);
    }
    folded(tmp, out, cap);
}

/* Forenames and surname as written (forenames-first names split at the last space). */
static void row_parts(char **f, const struct cols *c, char *fore, char *sur)
{
    const char *n = c->name >= 0 ? f[c->name] : NULL, *cut;
    if (n == NULL) {
        snprintf(fore, 128, "%s", f[c->forename]);
        snprintf(sur, 128, "%s", f[c->surname]);
    } else if ((cut = strchr(n, ',')) != NULL) {
        snprintf(fore, 128, "%s", cut + 2);
        snprintf(sur, 128, "%.*s", (int)(cut - n), n);
    } else {
        cut = strrchr(n, ' ');
        assert_non_null(cut);
        snprintf(fore, 128, "%.*s", (int)(cut - n), n);
        snprintf(sur, 128, "%s", cut + 1);
    }
}

struct recount {
    uint64_t electors, overseas, anonymous, attainers, optout, local, postal, created, changed,
        deleted;
};

static bool has(const char *markers, char m)
{
    return strchr(markers, m) != NULL;
}

/* Reads one register or alteration file, checking each row, adding entries to the book. */
static void read_register(const char *path, const char *area, bool alterations, struct book *b,
                          struct recount *rc)
{
    struct rv_csv *r = NULL;
    struct rv_diag diag;
    struct rv_csv_opts co = {0};
    char **f;
    size_t nf, ncols = 0;
    struct cols c;
    int rv;
    bool header = true;
    char last_prefix[24] = "";
    unsigned long last_number = 0;
    uint64_t anonymous = 0;

    assert_int_equal(rv_csv_open(path, &co, &r, &diag), 0);
    /* alterations change entries of earlier files only */
    if (b->n > 0)
        qsort(b->e, b->n, sizeof(*b->e), entry_cmp);
    b->sorted = b->n;
    while ((rv = rv_csv_next(r, &f, &nf, &diag)) == 1) {
        if (header) {
            find_cols(f, nf, &c);
            ncols = nf;
            header = false;
            if (alterations)
                assert_true(c.created >= 0 && c.changed >= 0 && c.deleted >= 0);
            continue;
        }
        if (nf != ncols)
            fail_msg("%s:%lu: %zu fields, header has %zu", path, rv_csv_line(r), nf, ncols);
        char key[48];
        const char *sfx = f[c.suffix];
        if (sfx[0] == '\0' || strcmp(sfx, "0") == 0)
            snprintf(key, sizeof(key), "%s|%s-%s", area, f[c.prefix], f[c.number]);
        else
            snprintf(key, sizeof(key), "%s|%s-%s/%s", area, f[c.prefix], f[c.number], sfx);
        const char *m = f[c.markers];
        bool anon = has(m, 'N'), overseas = has(m, 'F');
        if (anon) {
            /* nothing but the number: no name, postcode or address */
            assert_string_equal(c.name >= 0 ? f[c.name] : f[c.surname], "");
            assert_string_equal(f[c.postcode], "");
            assert_string_equal(f[c.addr1], "");
        } else if (overseas) {
            assert_string_equal(f[c.postcode], "");
            assert_string_equal(f[c.addr1], "");
        } else {
            struct rv_postcode pc;
            if (rv_postcode_parse(f[c.postcode], strlen(f[c.postcode]), &pc) != 0)
                fail_msg("%s:%lu: postcode does not parse", path, rv_csv_line(r));
            assert_string_equal(pc.canon, f[c.postcode]);
            assert_true(f[c.addr1][0] != '\0');
        }
        int kind = 0; /* 0 full, 1 created, 2 changed, 3 deleted */
        if (alterations) {
            int filled = (f[c.created][0] != 0) + (f[c.changed][0] != 0) + (f[c.deleted][0] != 0);
            assert_int_equal(filled, 1);
            kind = f[c.created][0] ? 1 : f[c.changed][0] ? 2 : 3;
        } else {
            rc->electors++;
            rc->anonymous += anon;
            rc->overseas += overseas;
            rc->attainers += f[c.dob][0] != '\0';
            rc->optout += strcmp(f[c.optout], "Y") == 0;
            rc->local += has(m, 'G') || has(m, 'B') || has(m, 'M') || has(m, 'L');
            rc->postal += has(m, 'A');
            anonymous += anon;
            /* numbers run 1, 2, 3 ... within each polling district */
            unsigned long num = strtoul(f[c.number], NULL, 10);
            if (strcmp(last_prefix, f[c.prefix]) != 0) {
                assert_int_equal(num, 1);
                snprintf(last_prefix, sizeof(last_prefix), "%s", f[c.prefix]);
            } else {
                assert_int_equal(num, last_number + 1);
            }
            last_number = num;
            assert_true(sfx[0] == '\0' || strcmp(sfx, "0") == 0);
        }
        if (kind == 0 || kind == 1) {
            if (b->n == b->cap) {
                b->cap = b->cap ? b->cap * 2 : 4096;
                b->e = realloc(b->e, b->cap * sizeof(*b->e));
                assert_non_null(b->e);
            }
            struct entry *e = &b->e[b->n++];
            snprintf(e->key, sizeof(e->key), "%s", key);
            e->name[0] = '\0';
            if (!anon)
                row_name(f, &c, e->name, sizeof(e->name));
            snprintf(e->pc_full, sizeof(e->pc_full), "%s", f[c.postcode]);
            snprintf(e->pc_last, sizeof(e->pc_last), "%s", f[c.postcode]);
            snprintf(e->name_last, sizeof(e->name_last), "%s", e->name);
            e->fore[0][0] = e->sur[0][0] = '\0';
            if (!anon)
                row_parts(f, &c, e->fore[0], e->sur[0]);
            memcpy(e->fore[1], e->fore[0], sizeof(e->fore[0]));
            memcpy(e->sur[1], e->sur[0], sizeof(e->sur[0]));
            rc->created += kind == 1;
        } else {
            /* changes and deletions refer to entries already on the register */
            struct entry *e = book_find(b, key);
            if (e == NULL)
                fail_msg("%s:%lu: alteration of an entry not on the register", path,
                         rv_csv_line(r));
            if (kind == 2) {
                snprintf(e->pc_last, sizeof(e->pc_last), "%s", f[c.postcode]);
                row_name(f, &c, e->name_last, sizeof(e->name_last));
                row_parts(f, &c, e->fore[1], e->sur[1]);
            }
            rc->changed += kind == 2;
            rc->deleted += kind == 3;
        }
    }
    assert_int_equal(rv, 0);
    if (!alterations)
        assert_true(anonymous >= 1); /* every area proves ingest rejects them */
    rv_csv_close(r);
}

/* ---- shared fixture: 200,000 electors in 4 areas, 2 months, 3,000 donations ------------ */

static char *big_dir;
static struct rv_synth_stats big_st;
static struct rv_synth_opts big_o;

static int setup_big(void **state)
{
    (void)state;
    big_dir = tmpdir();
    big_o = opts(200000, 4, 42, 2, 3000);
    gen(big_dir, &big_o, &big_st);
    return 0;
}

static int teardown_big(void **state)
{
    (void)state;
    rmtree(big_dir);
    free(big_dir);
    return 0;
}

static void near(const char *what, double got, double want, double rel)
{
    if (got < want * (1 - rel) || got > want * (1 + rel))
        fail_msg("%s: %.5f, target %.5f (+-%.0f%%)", what, got, want, rel * 100);
}

static void test_stats_match_targets(void **state)
{
    (void)state;
    const struct rv_synth_stats *s = &big_st;
    const double n = (double)s->electors, na = (double)s->addresses;
    static const double hh[6] = RV_SYNTH_HH_SHARES;

    assert_int_equal(s->electors, 200000);
    near("overseas", (double)s->overseas / n, RV_SYNTH_SHARE_OVERSEAS, 0.03);
    near("attainers", (double)s->attainers / n, RV_SYNTH_SHARE_ATTAINER, 0.03);
    near("local only", (double)s->local_only / n, RV_SYNTH_SHARE_LOCAL, 0.03);
    near("postal", (double)s->postal / n, RV_SYNTH_SHARE_POSTAL, 0.03);
    near("opt-out", (double)s->optout / n, s->optout_target, 0.02);
    assert_true(s->optout_target > 0.26 && s->optout_target < 0.84);
    assert_true(s->anonymous >= 4); /* at least one per area */
    for (int i = 0; i < 6; i++)
        near("household size", (double)s->by_size[i] / na, hh[i], 0.03);
    near("large addresses", (double)s->large / na, RV_SYNTH_SHARE_LARGE, 0.15);
    near("electors per address", (n - (double)s->overseas - (double)s->anonymous) / na, 1.79, 0.03);
    near("created", (double)s->created / n, RV_SYNTH_MONTHLY_CREATED * 2, 0.03);
    near("deleted", (double)s->deleted / n, RV_SYNTH_MONTHLY_DELETED * 2, 0.03);
    near("changed", (double)s->changed / n, RV_SYNTH_MONTHLY_CHANGED * 2, 0.03);
    assert_true(s->moves > 0 && s->renames > 0 && s->same_name > 0);
    assert_int_equal(s->donations, 3000);
    assert_int_equal(s->cp1252_areas, 2);
    assert_int_equal(s->tsv_areas, 1);
}

static void test_files_agree_with_stats(void **state)
{
    (void)state;
    struct recount rc = {0};
    struct book b = {0};
    for (unsigned i = 0; i < big_o.areas; i++) {
        char code[16], path[4096];
        rv_synth_area_code(i, code);
        snprintf(path, sizeof(path), "%s/%s/full-2025-12-01.csv", big_dir, code);
        read_register(path, code, false, &b, &rc);
        for (int m = 1; m <= 2; m++) {
            snprintf(path, sizeof(path), "%s/%s/alterations-2026-%02d.csv", big_dir, code, m);
            read_register(path, code, true, &b, &rc);
        }
    }
    assert_int_equal(rc.electors, big_st.electors);
    assert_int_equal(rc.overseas, big_st.overseas);
    assert_int_equal(rc.anonymous, big_st.anonymous);
    assert_int_equal(rc.attainers, big_st.attainers);
    assert_int_equal(rc.optout, big_st.optout);
    assert_int_equal(rc.local, big_st.local_only);
    assert_int_equal(rc.postal, big_st.postal);
    assert_int_equal(rc.created, big_st.created);
    assert_int_equal(rc.changed, big_st.changed);
    assert_int_equal(rc.deleted, big_st.deleted);
    /* elector numbers are unique within an area, created entries included */
    qsort(b.e, b.n, sizeof(*b.e), entry_cmp);
    for (size_t i = 1; i < b.n; i++)
        if (strcmp(b.e[i - 1].key, b.e[i].key) == 0)
            fail_msg("elector number used twice in one area");
    free(b.e);
}

static bool bytes_valid_utf8(const char *path, bool *nonascii)
{
    size_t len;
    char *buf = slurp(path, &len);
    size_t off = rv_bom_len(buf, len);
    bool ok = rv_utf8_valid(buf + off, len - off);
    *nonascii = false;
    for (size_t i = off; i < len; i++)
        if ((unsigned char)buf[i] >= 0x80)
            *nonascii = true;
    free(buf);
    return ok;
}

static void test_encodings(void **state)
{
    (void)state;
    char path[4096];
    bool nonascii;
    /* E07000002 and E07000004 are Windows-1252: accented names make them invalid UTF-8 */
    snprintf(path, sizeof(path), "%s/E07000002/full-2025-12-01.csv", big_dir);
    assert_false(bytes_valid_utf8(path, &nonascii));
    assert_true(nonascii);
    snprintf(path, sizeof(path), "%s/E07000004/full-2025-12-01.csv", big_dir);
    assert_false(bytes_valid_utf8(path, &nonascii));
    /* the UTF-8 areas hold accents too, and are valid */
    snprintf(path, sizeof(path), "%s/E07000001/full-2025-12-01.csv", big_dir);
    assert_true(bytes_valid_utf8(path, &nonascii));
    assert_true(nonascii);
    snprintf(path, sizeof(path), "%s/E07000003/full-2025-12-01.csv", big_dir);
    assert_true(bytes_valid_utf8(path, &nonascii));
    size_t len;
    char *buf = slurp(path, &len);
    assert_int_equal(rv_bom_len(buf, len), 3);
    free(buf);
    snprintf(path, sizeof(path), "%s/donations.csv", big_dir);
    assert_true(bytes_valid_utf8(path, &nonascii));
}

/* Optimal string alignment distance (adjacent swaps count one), small strings only. */
static int osa(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    static int d[200][200];
    if (la >= 200 || lb >= 200)
        return 99;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < v)
                v = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[la][lb];
}

static bool ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static bool is_title(const char *dn, size_t *len)
{
    static const char *const titles[] = {"Mr ",  "Mrs ",  "Ms ",  "Miss ", "Dr ",
                                         "Sir ", "Dame ", "Rev ", "Lord ", "Lady "};
    for (size_t i = 0; i < sizeof(titles) / sizeof(titles[0]); i++)
        if (strncmp(dn, titles[i], strlen(titles[i])) == 0) {
            *len = strlen(titles[i]);
            return true;
        }
    return false;
}

/* Does the donor's name dn show the corruption the note claims, against version v of the
 * entry (0 as first registered, 1 after its last change)? */
static bool note_holds(int note, const char *dn, const struct entry *e, int v)
{
    const char *fore = e->fore[v], *sur = e->sur[v];
    const char *sp = strchr(fore, ' ');
    char fdn[200], fr[200], tmp[300];
    size_t tl;
    folded(dn, fdn, sizeof(fdn));
    folded(v ? e->name_last : e->name, fr, sizeof(fr));
    switch (note) {
    case RV_SYNTH_NOTE_TYPO:
        return osa(fdn, fr) == 1 || (osa(fdn, fr) == 2 && strlen(fdn) == strlen(fr) + 1);
    case RV_SYNTH_NOTE_MIDDLE_DROPPED:
        snprintf(tmp, sizeof(tmp), "%.*s %s", sp ? (int)(sp - fore) : 0, fore, sur);
        folded(tmp, fr, sizeof(fr));
        return sp != NULL && strcmp(fdn, fr) == 0;
    case RV_SYNTH_NOTE_MIDDLE_AS_FIRST: {
        if (sp == NULL)
            return false;
        const char *sp2 = strchr(sp + 1, ' ');
        snprintf(tmp, sizeof(tmp), "%.*s %s", sp2 ? (int)(sp2 - sp - 1) : (int)strlen(sp + 1),
                 sp + 1, sur);
        folded(tmp, fr, sizeof(fr));
        return strcmp(fdn, fr) == 0;
    }
    case RV_SYNTH_NOTE_INITIALS:
        return dn[0] == fore[0] && (dn[1] == ' ' || (dn[1] == '.' && dn[2] == ' '));
    case RV_SYNTH_NOTE_NICKNAME: { /* "Emmy Blake-Connor" for Emma Jane Blake-Connor */
        size_t ld, ls;
        folded(sur, fr, sizeof(fr));
        ld = strlen(fdn);
        ls = strlen(fr);
        if (!(ld > ls + 1 && strcmp(fdn + ld - ls, fr) == 0 && fdn[ld - ls - 1] == ' ' &&
              strchr(fdn, ' ') == fdn + ld - ls - 1))
            return false;
        snprintf(tmp, sizeof(tmp), "%.*s", sp ? (int)(sp - fore) : (int)strlen(fore), fore);
        folded(tmp, fr, sizeof(fr));
        return strlen(fr) != ld - ls - 1 || strncmp(fdn, fr, ld - ls - 1) != 0;
    }
    case RV_SYNTH_NOTE_TITLE:
        return is_title(dn, &tl);
    case RV_SYNTH_NOTE_HYPHEN:
        return strchr(sur, '-') != NULL && strstr(dn, sur) == NULL;
    case RV_SYNTH_NOTE_MC_MAC:
        return (strncmp(sur, "Mc", 2) == 0 || strncmp(sur, "Mac", 3) == 0) &&
               strstr(dn, sur) == NULL;
    case RV_SYNTH_NOTE_APOSTROPHE:
        return strchr(sur, '\'') != NULL && strchr(dn, '\'') == NULL;
    case RV_SYNTH_NOTE_ACCENTS:
        snprintf(tmp, sizeof(tmp), "%s %s", fore, sur);
        return ascii(dn) && (!ascii(tmp) || strchr(tmp, '?') != NULL);
    case RV_SYNTH_NOTE_SWAPPED:
        if (is_title(dn, &tl))
            dn += tl;
        return strncasecmp(dn, sur, strlen(sur)) == 0 && dn[strlen(sur)] == ' ';
    default:
        return true;
    }
}

/* "postcode|last word of the name|first letter" for near-miss checks. */
static void nearkey(const char *pc, const char *folded_name, char *out, size_t cap)
{
    const char *last = strrchr(folded_name, ' ');
    last = last ? last + 1 : folded_name;
    size_t lp = strlen(pc), ll = strlen(last);
    assert_true(lp + ll + 4 <= cap);
    memcpy(out, pc, lp);
    out[lp] = '|';
    memcpy(out + lp + 1, last, ll);
    out[lp + 1 + ll] = '|';
    out[lp + 2 + ll] = folded_name[0];
    out[lp + 3 + ll] = '\0';
}

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every truth row names a real entry; the note's claim holds in the donations file. */
static void test_truth(void **state)
{
    (void)state;
    struct recount rc = {0};
    struct book b = {0};
    struct rv_csv *rd = NULL, *rt = NULL;
    struct rv_diag diag;
    struct rv_csv_opts co = {0};
    char **f, **g, path[4096];
    size_t nf, ng;
    uint64_t rows = 0, named = 0, exact = 0, moved = 0, unregistered = 0, timed = 0;

    for (unsigned i = 0; i < big_o.areas; i++) {
        char code[16];
        rv_synth_area_code(i, code);
        snprintf(path, sizeof(path), "%s/%s/full-2025-12-01.csv", big_dir, code);
        read_register(path, code, false, &b, &rc);
        for (int m = 1; m <= 2; m++) {
            snprintf(path, sizeof(path), "%s/%s/alterations-2026-%02d.csv", big_dir, code, m);
            read_register(path, code, true, &b, &rc);
        }
    }
    qsort(b.e, b.n, sizeof(*b.e), entry_cmp);
    b.sorted = b.n;
    /* who is registered at each postcode, by surname and initial, for near-misses */
    char **nk = calloc(4 * b.n + 1, sizeof(*nk));
    size_t nnk = 0;
    assert_non_null(nk);
    for (size_t i = 0; i < b.n; i++) {
        const struct entry *e = &b.e[i];
        const char *pcs[2] = {e->pc_full, e->pc_last}, *nms[2] = {e->name, e->name_last};
        size_t first = nnk;
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 2; q++) {
                if (pcs[p][0] == '\0' || nms[q][0] == '\0')
                    continue;
                nk[nnk] = malloc(200);
                assert_non_null(nk[nnk]);
                nearkey(pcs[p], nms[q], nk[nnk], 200);
                bool dup = false; /* each entry once per key */
                for (size_t d = first; d < nnk && !dup; d++)
                    dup = strcmp(nk[d], nk[nnk]) == 0;
                if (dup)
                    free(nk[nnk]);
                else
                    nnk++;
            }
    }
    qsort(nk, nnk, sizeof(*nk), str_cmp);
    snprintf(path, sizeof(path), "%s/donations.csv", big_dir);
    assert_int_equal(rv_csv_open(path, &co, &rd, &diag), 0);
    snprintf(path, sizeof(path), "%s/donations-truth.csv", big_dir);
    assert_int_equal(rv_csv_open(path, &co, &rt, &diag), 0);
    assert_int_equal(rv_csv_next(rd, &f, &nf, &diag), 1);
    assert_int_equal(nf, 9);
    assert_string_equal(f[0], "ECRef");
    assert_string_equal(f[5], "DonorName");
    assert_int_equal(rv_csv_next(rt, &g, &ng, &diag), 1);
    assert_string_equal(g[0], "ECRef");
    for (;;) {
        int a = rv_csv_next(rd, &f, &nf, &diag);
        int t = rv_csv_next(rt, &g, &ng, &diag);
        assert_int_equal(a, t);
        if (a == 0)
            break;
        assert_int_equal(a, 1);
        assert_int_equal(nf, 9);
        assert_int_equal(ng, 4);
        assert_string_equal(f[0], g[0]);
        rows++;
        /* the value is pounds with a sign and commas; dates are dd/mm/yyyy */
        assert_true(strncmp(f[2], "\xc2\xa3", 2) == 0);
        rv_date acc, rec;
        assert_int_equal(rv_date_parse_dmy(f[3], &acc), 0);
        assert_int_equal(rv_date_parse_dmy(f[4], &rec), 0);
        assert_true(acc >= rec && acc - rec < 60);
        assert_true(rec >= big_o.edition && rec < big_o.edition + 366);
        int note = -1;
        for (int k = 0; k < RV_SYNTH_NOTE_COUNT; k++)
            if (strcmp(g[3], rv_synth_note_name(k)) == 0)
                note = k;
        if (note < 0)
            fail_msg("unknown note in truth row %llu", (unsigned long long)rows);
        bool individual = strcmp(f[6], "Individual") == 0;
        assert_true(individual == (note != RV_SYNTH_NOTE_ORGANISATION));
        bool on_register =
            note != RV_SYNTH_NOTE_ORGANISATION && note != RV_SYNTH_NOTE_NOT_REGISTERED &&
            note != RV_SYNTH_NOTE_REGISTERED_AFTER && note != RV_SYNTH_NOTE_LEFT_REGISTER;
        assert_true(on_register == (g[1][0] != '\0'));
        assert_true(on_register == (g[2][0] != '\0'));
        if (note == RV_SYNTH_NOTE_NOT_REGISTERED) {
            /* a near-miss, never a fair match: nobody at that postcode with the surname and
             * the initial */
            char fn[200], key[200], *kp = key;
            const char *nm = strncmp(f[5], "Mr ", 3) == 0 ? f[5] + 3 : f[5];
            folded(nm, fn, sizeof(fn));
            nearkey(f[7], fn, key, sizeof(key));
            if (bsearch(&kp, nk, nnk, sizeof(*nk), str_cmp) != NULL)
                fail_msg("donor %s on no register is confusable with an elector", g[0]);
            unregistered++;
        }
        if (note == RV_SYNTH_NOTE_REGISTERED_AFTER || note == RV_SYNTH_NOTE_LEFT_REGISTER) {
            /* the donor's own entry (later or earlier) is the only one like it there: no
             * housemate of that surname and initial who was on the register on the date */
            char fn[200], key[200], *kp = key;
            folded(f[5], fn, sizeof(fn));
            nearkey(f[7], fn, key, sizeof(key));
            char **hit = bsearch(&kp, nk, nnk, sizeof(*nk), str_cmp);
            if (hit == NULL)
                fail_msg("donor %s (%s) has no entry at the postcode", g[0], g[3]);
            size_t same = 1;
            if (hit > nk && strcmp(hit[-1], key) == 0)
                same++;
            if (hit + 1 < nk + nnk && strcmp(hit[1], key) == 0)
                same++;
            if (same != 1)
                fail_msg("donor %s (%s) looks like a housemate on the register", g[0], g[3]);
            timed++;
        }
        if (!on_register)
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%s|%s", g[1], g[2]);
        struct entry *e = book_find(&b, key);
        if (e == NULL)
            fail_msg("truth row %s names no register entry", g[0]);
        named++;
        if (note == RV_SYNTH_NOTE_EXACT || note == RV_SYNTH_NOTE_SAME_NAME) {
            char fn[200];
            folded(f[5], fn, sizeof(fn));
            if (strcmp(fn, e->name) != 0 && strcmp(fn, e->name_last) != 0)
                fail_msg("donor %s is not written as on the register", g[0]);
            exact++;
        }
        if (!note_holds(note, f[5], e, 0) && !note_holds(note, f[5], e, 1))
            fail_msg("donor %s is not written as its note (%s) says", g[0], g[3]);
        if (note == RV_SYNTH_NOTE_MOVED) {
            /* the postcode of the new address, not the one on the register when received */
            assert_string_equal(f[7], e->pc_last);
            assert_string_not_equal(f[7], e->pc_full);
            moved++;
        }
        if (note == RV_SYNTH_NOTE_POSTCODE_FORMAT && f[7][0] != '\0') {
            struct rv_postcode pc;
            assert_int_equal(rv_postcode_parse(f[7], strlen(f[7]), &pc), 0);
            assert_string_not_equal(f[7], pc.canon);
            assert_true(strcmp(pc.canon, e->pc_full) == 0 || strcmp(pc.canon, e->pc_last) == 0);
        }
    }
    assert_int_equal(rows, 3000);
    assert_true(named > 1500);
    assert_true(exact > 200);
    assert_true(moved > 20);
    assert_true(unregistered > 200);
    assert_true(timed > 100);
    for (size_t i = 0; i < nnk; i++)
        free(nk[i]);
    free(nk);
    rv_csv_close(rd);
    rv_csv_close(rt);
    free(b.e);
}

/* ---- determinism ------------------------------------------------------------------------- */

static char names_a[64][128], names_b[64][128];

static void test_same_seed_same_bytes(void **state)
{
    (void)state;
    char *a = tmpdir(), *b = tmpdir(), *c = tmpdir();
    struct rv_synth_stats st;
    struct rv_synth_opts o = opts(20000, 5, 99, 3, 400);
    gen(a, &o, &st);
    gen(b, &o, &st);
    size_t na = list_files(a, names_a, 64), nb = list_files(b, names_b, 64);
    assert_int_equal(na, nb);
    assert_int_equal(na, 5 * 4 + 2);
    for (size_t i = 0; i < na; i++) {
        char pa[4096], pb[4096];
        size_t la, lb;
        assert_string_equal(names_a[i], names_b[i]);
        snprintf(pa, sizeof(pa), "%s/%s", a, names_a[i]);
        snprintf(pb, sizeof(pb), "%s/%s", b, names_b[i]);
        char *x = slurp(pa, &la), *y = slurp(pb, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(x, y, la);
        free(x);
        free(y);
    }
    /* another seed: every area and the donations differ */
    o.seed = 100;
    gen(c, &o, &st);
    for (size_t i = 0; i < na; i++) {
        char pa[4096], pc[4096];
        size_t la, lc;
        snprintf(pa, sizeof(pa), "%s/%s", a, names_a[i]);
        snprintf(pc, sizeof(pc), "%s/%s", c, names_a[i]);
        char *x = slurp(pa, &la), *y = slurp(pc, &lc);
        if (la == lc && memcmp(x, y, la) == 0)
            fail_msg("%s is the same under seeds 99 and 100", names_a[i]);
        free(x);
        free(y);
    }
    rmtree(a);
    rmtree(b);
    rmtree(c);
    free(a);
    free(b);
    free(c);
}

/* ---- options and failures ----------------------------------------------------------------- */

static void test_check_rejects(void **state)
{
    (void)state;
    struct rv_diag d;
    struct rv_synth_opts o = opts(1000, 1, 1, 0, 0);
    assert_int_equal(rv_synth_check(&o, &d), 0);
    o.electors = 0;
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    assert_string_equal(d.file, "--electors");
    o = opts(100, 6, 1, 0, 0); /* 20 per area is the least */
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    o = opts(120, 6, 1, 0, 0);
    assert_int_equal(rv_synth_check(&o, &d), 0);
    o = opts(1000, 0, 1, 0, 0);
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    assert_string_equal(d.file, "--areas");
    o = opts(100000, RV_SYNTH_MAX_AREAS + 1, 1, 0, 0);
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    o = opts(1000, 1, 1, RV_SYNTH_MAX_MONTHS + 1, 0);
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    assert_string_equal(d.file, "--months");
    o = opts(1000, 1, 1, 0, RV_SYNTH_MAX_DONATIONS + 1);
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    o = opts(1000, 1, 1, 0, 0);
    o.edition = RV_DATE_NONE;
    assert_int_equal(rv_synth_check(&o, &d), RV_EINVAL);
    assert_string_equal(d.file, "--edition");
}

static void test_unwritable_folder(void **state)
{
    (void)state;
    struct rv_synth_stats st;
    struct rv_diag d;
    struct rv_synth_opts o = opts(1000, 2, 1, 1, 10);
    assert_int_equal(rv_synth_run(&o, "/nonexistent-rv-synth/x", &st, &d), RV_EIO);
    assert_true(d.msg[0] != '\0');
}

/* The smallest run still holds every kind of entry, and no temporary file is left. */
static void test_tiny_and_clean(void **state)
{
    (void)state;
    char *dir = tmpdir(), path[4096];
    struct rv_synth_stats st;
    struct rv_synth_opts o = opts(20, 1, 5, 1, 5);
    char names[16][128];
    gen(dir, &o, &st);
    assert_int_equal(st.electors, 20);
    assert_true(st.anonymous >= 1 && st.overseas >= 1);
    size_t n = list_files(dir, names, 16);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++)
        assert_null(strstr(names[i], ".tmp"));
    snprintf(path, sizeof(path), "%s/E07000001/.full-2025-12-01.csv.tmp", dir);
    assert_int_equal(access(path, F_OK), -1);
    rmtree(dir);
    free(dir);
}

/* Huge numbers of areas do not run out of postcode space, and every area's postcodes are
 * its own. */
static void test_many_areas(void **state)
{
    (void)state;
    char *dir = tmpdir();
    struct rv_synth_stats st;
    struct rv_synth_opts o =
        opts(RV_SYNTH_MIN_PER_AREA * RV_SYNTH_MAX_AREAS * 5, RV_SYNTH_MAX_AREAS, 3, 0, 0);
    gen(dir, &o, &st);
    assert_int_equal(st.electors, o.electors);
    /* Scottish and Welsh registers use their countries' postcode areas; nobody lives in
     * Northern Ireland or the Crown Dependencies, which are not in these registers */
    static const char *const scot = " AB DD DG EH FK G HS IV KA KW KY ML PA PH TD ZE ";
    static const char *const wales = " CF LD LL NP SA ";
    static const char *const never = " BT GY JE IM ";
    size_t scottish = 0, welsh = 0;
    for (unsigned i = 0; i < o.areas; i++) {
        char code[16], path[4096], **f;
        struct rv_csv *r = NULL;
        struct rv_diag diag;
        struct rv_csv_opts co = {0};
        size_t nf;
        struct cols c;
        bool header = true;
        rv_synth_area_code(i, code);
        snprintf(path, sizeof(path), "%s/%s/full-2025-12-01.csv", dir, code);
        assert_int_equal(rv_csv_open(path, &co, &r, &diag), 0);
        while (rv_csv_next(r, &f, &nf, &diag) == 1) {
            if (header) {
                find_cols(f, nf, &c);
                header = false;
                continue;
            }
            char pa[8] = " ";
            size_t k = 1;
            for (const char *p = f[c.postcode]; *p >= 'A' && *p <= 'Z' && k < 4; p++)
                pa[k++] = *p;
            if (k == 1)
                continue;
            pa[k++] = ' ';
            pa[k] = '\0';
            if (strstr(never, pa) != NULL)
                fail_msg("%s has a postcode outside Great Britain", code);
            if (code[0] == 'S' && strstr(scot, pa) == NULL)
                fail_msg("Scottish register %s has an English or Welsh postcode", code);
            if (code[0] == 'E' && (strstr(scot, pa) != NULL || strstr(wales, pa) != NULL))
                fail_msg("English register %s has a Scottish or Welsh postcode", code);
            scottish += code[0] == 'S';
            welsh += code[0] == 'W' && strstr(wales, pa) != NULL;
        }
        rv_csv_close(r);
    }
    assert_true(scottish > 1000 && welsh > 500);
    rmtree(dir);
    free(dir);
}

/* A street lies in one postcode sector, and a unit postcode in one street: read back from the
 * address columns ("12 Kerr Road" / town, or a house, flat or home name first). */
static void test_streets_in_one_sector(void **state)
{
    (void)state;
    for (unsigned i = 0; i < big_o.areas; i++) {
        char code[16], path[4096];
        struct rv_csv *r = NULL;
        struct rv_diag diag;
        struct rv_csv_opts co = {0};
        char **f, **st = NULL, **un = NULL;
        size_t nf, n = 0, cap = 0;
        struct cols c;
        bool header = true;
        rv_synth_area_code(i, code);
        snprintf(path, sizeof(path), "%s/%s/full-2025-12-01.csv", big_dir, code);
        assert_int_equal(rv_csv_open(path, &co, &r, &diag), 0);
        while (rv_csv_next(r, &f, &nf, &diag) == 1) {
            if (header) {
                find_cols(f, nf, &c);
                assert_true(c.addr2 >= 0 && c.addr3 >= 0);
                header = false;
                continue;
            }
            const char *pc = f[c.postcode];
            if (pc[0] == '\0')
                continue;
            bool three = f[c.addr3][0] != '\0';
            const char *street = three ? f[c.addr2] : f[c.addr1];
            const char *town = three ? f[c.addr3] : f[c.addr2];
            if (street[0] >= '0' && street[0] <= '9')
                street = strchr(street, ' ') + 1;
            const char *sp = strchr(pc, ' ');
            assert_non_null(sp);
            if (n == cap) {
                cap = cap ? cap * 2 : 4096;
                st = realloc(st, cap * sizeof(*st));
                un = realloc(un, cap * sizeof(*un));
                assert_true(st != NULL && un != NULL);
            }
            /* "district|street|town|sector" and "unit|street|town" */
            st[n] = malloc(256);
            un[n] = malloc(256);
            assert_true(st[n] != NULL && un[n] != NULL);
            snprintf(st[n], 256, "%.*s|%s|%s|%c", (int)(sp - pc), pc, street, town, sp[1]);
            snprintf(un[n], 256, "%s|%s|%s", pc, street, town);
            n++;
        }
        rv_csv_close(r);
        qsort(st, n, sizeof(*st), str_cmp);
        qsort(un, n, sizeof(*un), str_cmp);
        size_t streets = 0, units = 0;
        for (size_t k = 1; k < n; k++) {
            size_t l = strlen(st[k]) - 1;
            if (strncmp(st[k - 1], st[k], l) == 0 && strlen(st[k - 1]) == l + 1 &&
                st[k - 1][l] != st[k][l])
                fail_msg("%s: a street spans two postcode sectors", code);
            streets += strcmp(st[k - 1], st[k]) != 0;
            /* the same unit postcode with two different streets */
            const char *b1 = strchr(un[k - 1], '|'), *b2 = strchr(un[k], '|');
            if (b1 - un[k - 1] == b2 - un[k] &&
                strncmp(un[k - 1], un[k], (size_t)(b1 - un[k - 1])) == 0)
                if (strcmp(b1, b2) != 0)
                    fail_msg("%s: a unit postcode covers two streets", code);
            units += strcmp(un[k - 1], un[k]) != 0;
        }
        assert_true(streets > 50 && units > 500);
        for (size_t k = 0; k < n; k++) {
            free(st[k]);
            free(un[k]);
        }
        free(st);
        free(un);
    }
}

int main(void)
{
    const struct CMUnitTest big[] = {
        cmocka_unit_test(test_stats_match_targets),
        cmocka_unit_test(test_files_agree_with_stats),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_truth),
        cmocka_unit_test(test_streets_in_one_sector),
    };
    const struct CMUnitTest small[] = {
        cmocka_unit_test(test_check_rejects),  cmocka_unit_test(test_unwritable_folder),
        cmocka_unit_test(test_tiny_and_clean), cmocka_unit_test(test_same_seed_same_bytes),
        cmocka_unit_test(test_many_areas),
    };
    int fails = cmocka_run_group_tests(small, NULL, NULL);
    fails += cmocka_run_group_tests(big, setup_big, teardown_big);
    return fails;
}
