/*
 * batch.c - reads a quarter's donations for checking: the Electoral Commission layout
 * (ECRef, DonorName, DonorStatus, Postcode, ReceivedDate, ...) or the plain layout
 * (id, name, address, postcode, date), both described in docs/formats.md.
 *
 * A batch is read row by row through core's streaming CSV reader, so memory is bounded by
 * the longest row. A row that cannot be read (stray quote, unparseable date, invalid
 * postcode, empty name, oversized field, invalid UTF-8) comes back marked invalid with its
 * line and the rule it broke, and the batch goes on: every input row yields exactly one
 * output row, in input order. Only a header with neither layout's columns, or an I/O error,
 * stops a batch.
 */
#include "check/internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum col {
    COL_ID,
    COL_NAME,
    COL_ADDRESS,
    COL_POSTCODE,
    COL_DATE,     /* plain: date; EC: ReceivedDate */
    COL_ACCEPTED, /* EC: AcceptedDate */
    COL_STATUS,   /* EC: DonorStatus */
    COL_VALUE,    /* EC: Value */
    COL_COUNT
};

struct rv_check_batch {
    struct rv_csv *csv;
    enum rv_check_layout layout;
    long col[COL_COUNT]; /* field index of each column, -1 when absent */
    char name[128];      /* for messages */
};

/* Header names compare with case, spaces, underscores and hyphens ignored. */
static void header_key(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    for (; *s != '\0' && n + 1 < cap; s++) {
        char c = *s;
        if (c == ' ' || c == '_' || c == '-' || c == '\t')
            continue;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        out[n++] = c;
    }
    out[n] = '\0';
}

static long find_col(char **f, size_t n, const char *const *names)
{
    char k[64];
    for (size_t i = 0; i < n; i++) {
        header_key(f[i], k, sizeof(k));
        for (const char *const *p = names; *p != NULL; p++)
            if (strcmp(k, *p) == 0)
                return (long)i;
    }
    return -1;
}

static int read_header(struct rv_check_batch *b, enum rv_check_layout want, struct rv_diag *diag)
{
    static const char *const ec_id[] = {"ecref", NULL};
    static const char *const ec_name[] = {"donorname", NULL};
    static const char *const ec_pc[] = {"postcode", "donorpostcode", NULL};
    static const char *const ec_date[] = {"receiveddate", NULL};
    static const char *const ec_acc[] = {"accepteddate", NULL};
    static const char *const ec_status[] = {"donorstatus", NULL};
    static const char *const ec_value[] = {"value", NULL};
    static const char *const pl_id[] = {"id", NULL};
    static const char *const pl_name[] = {"name", NULL};
    static const char *const pl_addr[] = {"address", NULL};
    static const char *const pl_pc[] = {"postcode", NULL};
    static const char *const pl_date[] = {"date", NULL};
    char **f = NULL;
    size_t n = 0;
    int rc;

    rc = rv_csv_next(b->csv, &f, &n, diag);
    if (rc == 0) {
        rv_diag_set(diag, b->name, 1, 0, "the file is empty: expected a header line");
        return RV_EPARSE;
    }
    if (rc < 0)
        return rc;
    for (int i = 0; i < COL_COUNT; i++)
        b->col[i] = -1;
    if (want != RV_CHECK_LAYOUT_PLAIN && find_col(f, n, ec_name) >= 0) {
        b->layout = RV_CHECK_LAYOUT_EC;
        b->col[COL_ID] = find_col(f, n, ec_id);
        b->col[COL_NAME] = find_col(f, n, ec_name);
        b->col[COL_POSTCODE] = find_col(f, n, ec_pc);
        b->col[COL_DATE] = find_col(f, n, ec_date);
        b->col[COL_ACCEPTED] = find_col(f, n, ec_acc);
        b->col[COL_STATUS] = find_col(f, n, ec_status);
        b->col[COL_VALUE] = find_col(f, n, ec_value);
        if (b->col[COL_DATE] < 0 && b->col[COL_ACCEPTED] < 0) {
            rv_diag_set(diag, b->name, 1, 0,
                        "no ReceivedDate or AcceptedDate column: the Electoral Commission "
                        "layout needs the date each donation was received");
            return RV_EPARSE;
        }
        return 0;
    }
    if (want != RV_CHECK_LAYOUT_EC && find_col(f, n, pl_name) >= 0 &&
        find_col(f, n, pl_date) >= 0) {
        b->layout = RV_CHECK_LAYOUT_PLAIN;
        b->col[COL_ID] = find_col(f, n, pl_id);
        b->col[COL_NAME] = find_col(f, n, pl_name);
        b->col[COL_ADDRESS] = find_col(f, n, pl_addr);
        b->col[COL_POSTCODE] = find_col(f, n, pl_pc);
        b->col[COL_DATE] = find_col(f, n, pl_date);
        return 0;
    }
    rv_diag_set(diag, b->name, 1, 0,
                want == RV_CHECK_LAYOUT_EC
                    ? "the header has no DonorName column (Electoral Commission layout: "
                      "ECRef,...,DonorName,DonorStatus,Postcode,ReceivedDate)"
                : want == RV_CHECK_LAYOUT_PLAIN
                    ? "the header lacks name or date (plain layout: id,name,address,postcode,date)"
                    : "the header matches neither the Electoral Commission layout (DonorName, "
                      "ReceivedDate, ...) nor the plain layout (id,name,address,postcode,date)");
    return RV_EPARSE;
}

static int open_common(struct rv_check_batch *b, enum rv_check_layout layout, const char *name,
                       struct rv_diag *diag)
{
    snprintf(b->name, sizeof(b->name), "%s", name);
    return read_header(b, layout, diag);
}

int rv_check_batch_open(const char *path, enum rv_check_layout layout, struct rv_check_batch **out,
                        struct rv_diag *diag)
{
    struct rv_check_batch *b = calloc(1, sizeof(*b));
    int err;

    *out = NULL;
    rv_diag_clear(diag);
    if (b == NULL)
        return RV_ENOMEM;
    if ((err = rv_csv_open(path, NULL, &b->csv, diag)) != 0)
        goto out;
    if ((err = open_common(b, layout, strcmp(path, "-") == 0 ? "<stdin>" : path, diag)) != 0)
        goto out;
    *out = b;
    b = NULL;
out:
    rv_check_batch_close(b);
    return err;
}

int rv_check_batch_open_mem(const char *buf, size_t len, const char *name,
                            enum rv_check_layout layout, struct rv_check_batch **out,
                            struct rv_diag *diag)
{
    struct rv_check_batch *b = calloc(1, sizeof(*b));
    int err;

    *out = NULL;
    rv_diag_clear(diag);
    if (b == NULL)
        return RV_ENOMEM;
    if ((err = rv_csv_open_mem(buf, len, name, NULL, &b->csv)) != 0)
        goto out;
    if ((err = open_common(b, layout, name, diag)) != 0)
        goto out;
    *out = b;
    b = NULL;
out:
    rv_check_batch_close(b);
    return err;
}

enum rv_check_layout rv_check_batch_layout(const struct rv_check_batch *b)
{
    return b->layout;
}

uint64_t rv_check_batch_offset(const struct rv_check_batch *b)
{
    return rv_csv_offset(b->csv);
}

void rv_check_batch_close(struct rv_check_batch *b)
{
    if (b == NULL)
        return;
    if (b->csv != NULL)
        rv_csv_close(b->csv);
    free(b);
}

static const char *field(char **f, size_t n, long idx)
{
    return idx >= 0 && (size_t)idx < n ? f[idx] : "";
}

static bool row_blank(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (const char *p = f[i]; *p != '\0'; p++)
            if (*p != ' ' && *p != '\t' && *p != '\r')
                return false;
    return true;
}

/* "£1,250.00", "1250", "1,250.5" -> pence; -1 when unreadable. */
static long long parse_pence(const char *s)
{
    long long pounds = 0, pence = 0;
    int digits = 0, frac = -1;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == ',')
            continue;
        if (c == 0xC2 && (unsigned char)s[1] == 0xA3) { /* £ */
            s++;
            continue;
        }
        if (c == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (c < '0' || c > '9')
            return -1;
        if (frac >= 0) {
            if (frac >= 2)
                continue;
            pence = pence * 10 + (c - '0');
            frac++;
        } else {
            if (pounds > 1000000000000LL)
                return -1;
            pounds = pounds * 10 + (c - '0');
            digits++;
        }
    }
    if (digits == 0)
        return -1;
    if (frac == 1)
        pence *= 10;
    return pounds * 100 + pence;
}

static int parse_date(const char *s, rv_date *out)
{
    char buf[32];
    size_t n;
    while (*s == ' ')
        s++;
    n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n == 0 || n >= sizeof(buf))
        return RV_EPARSE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (rv_date_parse_dmy(buf, out) == 0 || rv_date_parse_iso(buf, out) == 0)
        return 0;
    return RV_EPARSE;
}

/* Ids are references, not personal data, but still cleaned of control characters. */
static void copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    if (!rv_utf8_valid(src, strlen(src))) {
        dst[0] = '\0';
        return;
    }
    for (; *src != '\0' && n + 1 < cap; src++)
        dst[n++] = ((unsigned char)*src < 0x20 || *src == 0x7f) ? ' ' : *src;
    while (n > 0 && ((unsigned char)dst[n - 1] & 0xC0) == 0x80) {
        /* Back off to a whole character if the copy was cut. */
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)dst[start] & 0xC0) == 0x80)
            start--;
        if (rv_utf8_valid(dst + start, n - start))
            break;
        n = start;
    }
    dst[n] = '\0';
}

static void invalid(struct rv_check_batch *b, struct rv_check_row *out, unsigned long line,
                    const char *col, const char *msg)
{
    out->status = RV_ROW_INVALID;
    snprintf(out->error, sizeof(out->error), "%.80s:%lu: %.16s%s%.130s", b->name, line, col,
             col[0] != '\0' ? ": " : "", msg);
}

int rv_check_batch_next(struct rv_check_batch *b, struct rv_check_row *out, struct rv_diag *diag)
{
    char **f = NULL;
    size_t n = 0;
    unsigned long line;
    const char *name, *date_s, *pc, *addr = NULL;
    rv_date date = RV_DATE_NONE;
    struct rv_diag qd;
    int rc, err;

    sodium_memzero(out, sizeof(*out));
    out->value_pence = -1;
    rv_diag_clear(diag);
    for (;;) {
        rc = rv_csv_next(b->csv, &f, &n, diag);
        line = rv_csv_line(b->csv);
        if (rc == RV_EPARSE || rc == RV_ETOOBIG) {
            /* The reader resynchronises at the next line; this row is reported. */
            out->q.line = diag->line != 0 ? diag->line : line;
            invalid(b, out, out->q.line, "",
                    rc == RV_ETOOBIG ? "a field is too long (over 16 KiB); the row was skipped"
                                     : "the row is not well-formed CSV (a stray or unclosed "
                                       "quote); fix the quoting and check it again");
            rv_diag_clear(diag);
            return 1;
        }
        if (rc <= 0)
            return rc;
        if (!row_blank(f, n))
            break;
    }
    out->q.line = line;
    copy_id(out->q.id, sizeof(out->q.id), field(f, n, b->col[COL_ID]));

    if (b->layout == RV_CHECK_LAYOUT_EC) {
        const char *status = field(f, n, b->col[COL_STATUS]);
        char k[32];
        header_key(status, k, sizeof(k));
        if (k[0] != '\0' && strcmp(k, "individual") != 0) {
            out->status = RV_ROW_OUT_OF_SCOPE;
            return 1;
        }
        if (b->col[COL_VALUE] >= 0)
            out->value_pence = parse_pence(field(f, n, b->col[COL_VALUE]));
    }

    name = field(f, n, b->col[COL_NAME]);
    pc = field(f, n, b->col[COL_POSTCODE]);
    if (b->layout == RV_CHECK_LAYOUT_PLAIN)
        addr = field(f, n, b->col[COL_ADDRESS]);
    date_s = field(f, n, b->col[COL_DATE]);
    if (b->layout == RV_CHECK_LAYOUT_EC && date_s[strspn(date_s, " ")] == '\0') {
        date_s = field(f, n, b->col[COL_ACCEPTED]);
        if (date_s[strspn(date_s, " ")] != '\0')
            snprintf(out->q.note, sizeof(out->q.note),
                     "no ReceivedDate: the AcceptedDate was used instead");
    }
    if (date_s[strspn(date_s, " ")] == '\0') {
        invalid(b, out, line, b->layout == RV_CHECK_LAYOUT_EC ? "ReceivedDate" : "date",
                "empty; the date the donation was received is needed");
        return 1;
    }
    if (parse_date(date_s, &date) != 0) {
        invalid(b, out, line, b->layout == RV_CHECK_LAYOUT_EC ? "ReceivedDate" : "date",
                "not a date (use dd/mm/yyyy or YYYY-MM-DD)");
        return 1;
    }
    {
        char note[sizeof(out->q.note)];
        memcpy(note, out->q.note, sizeof(note));
        rv_diag_clear(&qd);
        err = rv_check_query_init(name, addr, pc, date, &out->q, &qd);
        out->q.line = line;
        copy_id(out->q.id, sizeof(out->q.id), field(f, n, b->col[COL_ID]));
        if (note[0] != '\0' && out->q.note[0] == '\0')
            memcpy(out->q.note, note, sizeof(note));
    }
    if (err != 0) {
        invalid(b, out, line, "", qd.msg);
        return 1;
    }
    out->status = RV_ROW_OK;
    return 1;
}
