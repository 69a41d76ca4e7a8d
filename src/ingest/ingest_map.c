/*
 * ingest_map.c - from a register file's header and rows to rv_elector entries.
 *
 * Columns are found by name, ignoring case, spaces, underscores and hyphens, so the layouts
 * of the common electoral management systems all map. Each row is checked field by field;
 * a refusal names the column and the rule it broke, never the value, because the value is
 * personal data.
 */
#include "ingest/ingest.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct colname {
    const char *name; /* normalised: lower case, no spaces, underscores or hyphens */
    int col;
};

static const struct colname COLS[] = {
    {"electornumberprefix", RV_COL_PREFIX},
    {"pdcode", RV_COL_PREFIX},
    {"electornumber", RV_COL_NUMBER},
    {"electornumbersuffix", RV_COL_SUFFIX},
    {"electormarkers", RV_COL_MARKERS},
    {"markers", RV_COL_MARKERS},
    {"electordob", RV_COL_DOB},
    {"electorname", RV_COL_NAME},
    {"name", RV_COL_NAME},
    {"electorsurname", RV_COL_SURNAME},
    {"surname", RV_COL_SURNAME},
    {"electorforename", RV_COL_FORENAME},
    {"electorforenames", RV_COL_FORENAME},
    {"forename", RV_COL_FORENAME},
    {"forenames", RV_COL_FORENAME},
    {"postcode", RV_COL_POSTCODE},
    {"address1", RV_COL_ADDR1},
    {"address2", RV_COL_ADDR1 + 1},
    {"address3", RV_COL_ADDR1 + 2},
    {"address4", RV_COL_ADDR1 + 3},
    {"address5", RV_COL_ADDR1 + 4},
    {"address6", RV_COL_ADDR1 + 5},
    {"optout", RV_COL_OPTOUT},
    {"uprn", RV_COL_UPRN},
    {"electorcreatedmonth", RV_COL_CREATED},
    {"electorchangedmonth", RV_COL_CHANGED},
    {"electordeletedmonth", RV_COL_DELETED},
    {"change", RV_COL_CHANGE},
    {"effectivedate", RV_COL_EFFECTIVE},
};

/* Display names for messages. */
static const char *const COLNAME[RV_COL_COUNT] = {
    "Elector Number Prefix",
    "Elector Number",
    "Elector Number Suffix",
    "Elector Markers",
    "Elector DOB",
    "Elector Name",
    "Elector Surname",
    "Elector Forename",
    "PostCode",
    "Address1",
    "Address2",
    "Address3",
    "Address4",
    "Address5",
    "Address6",
    "Opt Out",
    "UPRN",
    "ElectorCreatedMonth",
    "ElectorChangedMonth",
    "ElectorDeletedMonth",
    "Change",
    "Effective Date",
};

static void normalise(const char *s, char *out, size_t outsz)
{
    size_t n = 0;

    /* A byte-order mark may survive on the first header field. */
    if ((unsigned char)s[0] == 0xef && (unsigned char)s[1] == 0xbb && (unsigned char)s[2] == 0xbf)
        s += 3;
    for (; *s != '\0' && n + 1 < outsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == ' ' || c == '_' || c == '-' || c == '\t' || c == '.')
            continue;
        out[n++] = (char)tolower(c);
    }
    out[n] = '\0';
}

int rv_ingest_map_header(char *const *fields, size_t nfields, bool alterations,
                         struct rv_ingest_map *out, struct rv_diag *diag)
{
    char norm[64];

    for (int c = 0; c < RV_COL_COUNT; c++)
        out->col[c] = -1;
    out->nfields = nfields;
    out->alterations = alterations;
    for (size_t i = 0; i < nfields && fields != NULL; i++) {
        normalise(fields[i] != NULL ? fields[i] : "", norm, sizeof(norm));
        for (size_t k = 0; k < sizeof(COLS) / sizeof(COLS[0]); k++)
            if (strcmp(norm, COLS[k].name) == 0) {
                if (out->col[COLS[k].col] < 0)
                    out->col[COLS[k].col] = (int)i;
                break;
            }
    }
    if (out->col[RV_COL_NUMBER] < 0) {
        rv_diag_set(diag, "", 1, 0,
                    "no Elector Number column: the header must name the register's columns "
                    "(see docs/formats.md)");
        return RV_EPARSE;
    }
    if (out->col[RV_COL_NAME] < 0 && out->col[RV_COL_SURNAME] < 0) {
        rv_diag_set(diag, "", 1, 0,
                    "no Elector Name (or Elector Surname) column: the header must name the "
                    "register's columns (see docs/formats.md)");
        return RV_EPARSE;
    }
    if (alterations) {
        bool months = out->col[RV_COL_CREATED] >= 0 && out->col[RV_COL_CHANGED] >= 0 &&
                      out->col[RV_COL_DELETED] >= 0;
        bool simple = out->col[RV_COL_CHANGE] >= 0 && out->col[RV_COL_EFFECTIVE] >= 0;
        if (!months && !simple) {
            rv_diag_set(diag, "", 1, 0,
                        "an alterations file needs ElectorCreatedMonth, ElectorChangedMonth and "
                        "ElectorDeletedMonth columns, or Change and Effective Date");
            return RV_EPARSE;
        }
    }
    return 0;
}

static const char *field(const struct rv_ingest_map *m, char *const *fields, int col)
{
    int i = m->col[col];
    return i >= 0 && fields[i] != NULL ? fields[i] : "";
}

static bool blank(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isspace((unsigned char)*s))
            return false;
    return true;
}

/* dd/mm/yyyy, YYYY-MM-DD, or YYYY-MM (the first of the month). */
static int parse_date(const char *s, rv_date *out)
{
    char buf[16];
    size_t n = strlen(s);
    int y, mo;

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    while (n > 0 && isspace((unsigned char)*s)) {
        s++;
        n--;
    }
    if (n == 0 || n >= sizeof(buf))
        return RV_EPARSE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (n == 7 && buf[4] == '-' && sscanf(buf, "%4d-%2d", &y, &mo) == 2 && mo >= 1 && mo <= 12 &&
        isdigit((unsigned char)buf[5]) && isdigit((unsigned char)buf[6]) && y >= 1900 &&
        y <= 2999) {
        *out = rv_date_from_ymd(y, mo, 1);
        return 0;
    }
    if (strchr(buf, '/') != NULL)
        return rv_date_parse_dmy(buf, out);
    return rv_date_parse_iso(buf, out);
}

/* Sets the message and column, keeping the file and line the caller put in diag. */
static void diag_at(struct rv_diag *d, unsigned col, const char *fmt, ...) RV_PRINTF(3, 4);
static void diag_at(struct rv_diag *d, unsigned col, const char *fmt, ...)
{
    va_list ap;

    d->col = col;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
    va_end(ap);
}

static int bad(struct rv_diag *diag, const struct rv_ingest_map *m, int col, const char *rule)
{
    diag_at(diag, m->col[col] >= 0 ? (unsigned)m->col[col] + 1 : 0, "%s: %s", COLNAME[col], rule);
    return RV_EPARSE;
}

static int alteration_kind(const struct rv_ingest_map *m, char *const *fields,
                           enum rv_row_kind *kind, rv_date *eff, struct rv_diag *diag)
{
    if (m->col[RV_COL_CREATED] >= 0 && m->col[RV_COL_CHANGED] >= 0 && m->col[RV_COL_DELETED] >= 0) {
        static const int cols[3] = {RV_COL_CREATED, RV_COL_CHANGED, RV_COL_DELETED};
        static const enum rv_row_kind kinds[3] = {RV_ROW_CREATE, RV_ROW_CHANGE, RV_ROW_DELETE};
        int which = -1;
        for (int i = 0; i < 3; i++) {
            if (blank(field(m, fields, cols[i])))
                continue;
            if (which >= 0)
                return bad(diag, m, cols[i],
                           "more than one of the created, changed and deleted columns is filled; "
                           "exactly one must be");
            which = i;
        }
        if (which < 0)
            return bad(diag, m, RV_COL_CREATED,
                       "none of the created, changed and deleted columns is filled; exactly one "
                       "must be");
        if (parse_date(field(m, fields, cols[which]), eff) != 0)
            return bad(diag, m, cols[which], "not a date (dd/mm/yyyy, YYYY-MM-DD or YYYY-MM)");
        *kind = kinds[which];
        return 0;
    }
    {
        char norm[16];
        normalise(field(m, fields, RV_COL_CHANGE), norm, sizeof(norm));
        if (strcmp(norm, "create") == 0 || strcmp(norm, "created") == 0)
            *kind = RV_ROW_CREATE;
        else if (strcmp(norm, "change") == 0 || strcmp(norm, "changed") == 0)
            *kind = RV_ROW_CHANGE;
        else if (strcmp(norm, "delete") == 0 || strcmp(norm, "deleted") == 0)
            *kind = RV_ROW_DELETE;
        else
            return bad(diag, m, RV_COL_CHANGE, "must be create, change or delete");
        if (parse_date(field(m, fields, RV_COL_EFFECTIVE), eff) != 0)
            return bad(diag, m, RV_COL_EFFECTIVE, "not a date (dd/mm/yyyy, YYYY-MM-DD or YYYY-MM)");
    }
    return 0;
}

int rv_ingest_map_row(const struct rv_ingest_map *m, char *const *fields, size_t nfields,
                      const char *area, struct rv_elector *out, enum rv_row_kind *kind,
                      rv_date *effective, struct rv_diag *diag)
{
    const char *s;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    out->attainment = RV_DATE_NONE;
    *effective = RV_DATE_NONE;
    *kind = RV_ROW_ENTRY;
    if (nfields != m->nfields || fields == NULL) {
        diag_at(diag, 0,
                "the row has %zu fields but the header has %zu: check for a stray delimiter or "
                "quote",
                nfields, m->nfields);
        return RV_EPARSE;
    }
    n = strlen(area);
    if (n == 0 || n >= sizeof(out->area)) {
        diag_at(diag, 0, "area code must be 1 to 15 characters");
        return RV_EPARSE;
    }
    memcpy(out->area, area, n + 1);

    if (m->alterations && (rc = alteration_kind(m, fields, kind, effective, diag)) != 0)
        return rc;

    /* Elector number: three columns, or the quoted form in one. */
    if (m->col[RV_COL_PREFIX] >= 0)
        rc = rv_elector_number_from_parts(field(m, fields, RV_COL_PREFIX),
                                          field(m, fields, RV_COL_NUMBER),
                                          field(m, fields, RV_COL_SUFFIX), &out->number);
    else
        rc = rv_elector_number_parse(field(m, fields, RV_COL_NUMBER),
                                     strlen(field(m, fields, RV_COL_NUMBER)), &out->number);
    if (rc != 0)
        return bad(diag, m, RV_COL_NUMBER,
                   "not a valid elector number (polling district prefix, number, suffix)");

    s = field(m, fields, RV_COL_MARKERS);
    if (rv_markers_parse(s, strlen(s), &out->markers) != 0)
        return bad(diag, m, RV_COL_MARKERS,
                   "marker letters only (for example F, N, A), at most "
                   "11 unknown ones");
    if (out->markers.known & RV_MARK_N) {
        /* Anonymous: nothing else is read, nothing is kept. */
        memset(&out->markers, 0, sizeof(out->markers));
        *kind = RV_ROW_ANONYMOUS;
        return 0;
    }

    s = field(m, fields, RV_COL_DOB);
    if (!blank(s) && parse_date(s, &out->attainment) != 0)
        return bad(diag, m, RV_COL_DOB, "not a date of attainment (dd/mm/yyyy or YYYY-MM-DD)");

    if (m->col[RV_COL_NAME] >= 0 && !blank(field(m, fields, RV_COL_NAME))) {
        s = field(m, fields, RV_COL_NAME);
        rc = rv_name_parse(s, strlen(s), &out->name);
        if (rc != 0)
            return bad(diag, m, RV_COL_NAME,
                       rc == RV_ETOOBIG ? "a part of the name is too long"
                                        : "no surname could be read (Surname, Forenames or "
                                          "Forenames Surname)");
    } else if (m->col[RV_COL_SURNAME] >= 0 && !blank(field(m, fields, RV_COL_SURNAME))) {
        rc = rv_name_from_parts(field(m, fields, RV_COL_SURNAME), field(m, fields, RV_COL_FORENAME),
                                &out->name);
        if (rc != 0)
            return bad(diag, m, RV_COL_SURNAME,
                       rc == RV_ETOOBIG ? "a part of the name is too long"
                                        : "no surname could be read");
    } else if (*kind != RV_ROW_DELETE) {
        return bad(diag, m, m->col[RV_COL_NAME] >= 0 ? RV_COL_NAME : RV_COL_SURNAME,
                   "empty: every entry needs a name");
    }

    if (out->markers.known & RV_MARK_F)
        return 0; /* overseas: no address is kept */

    s = field(m, fields, RV_COL_POSTCODE);
    if (!blank(s) && rv_postcode_parse(s, strlen(s), &out->postcode) != 0)
        return bad(diag, m, RV_COL_POSTCODE, "not a valid UK postcode");
    for (int i = 0; i < RV_ADDR_LINES; i++) {
        s = field(m, fields, RV_COL_ADDR1 + i);
        if (blank(s))
            continue;
        rc = rv_text_clean(s, strlen(s), out->address[i], sizeof(out->address[i]));
        if (rc != 0)
            return bad(diag, m, RV_COL_ADDR1 + i,
                       rc == RV_ETOOBIG ? "longer than 127 bytes" : "not valid text");
    }

    s = field(m, fields, RV_COL_OPTOUT);
    if (!blank(s)) {
        char norm[8];
        normalise(s, norm, sizeof(norm));
        if (strcmp(norm, "y") == 0 || strcmp(norm, "yes") == 0 || strcmp(norm, "1") == 0)
            out->open_register_optout = true;
        else if (strcmp(norm, "n") != 0 && strcmp(norm, "no") != 0 && strcmp(norm, "0") != 0)
            return bad(diag, m, RV_COL_OPTOUT, "must be Y, N or empty");
    }
    s = field(m, fields, RV_COL_UPRN);
    if (!blank(s)) {
        uint64_t u = 0;
        const char *p = s;
        while (isspace((unsigned char)*p))
            p++;
        for (; isdigit((unsigned char)*p); p++) {
            if (u > (UINT64_MAX - 9) / 10)
                return bad(diag, m, RV_COL_UPRN, "too large for a UPRN");
            u = u * 10 + (uint64_t)(*p - '0');
        }
        while (isspace((unsigned char)*p))
            p++;
        if (*p != '\0' || u == 0)
            return bad(diag, m, RV_COL_UPRN, "must be a whole number");
        out->uprn = u;
    }
    return 0;
}
