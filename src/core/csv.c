/*
 * csv.c - the streaming CSV/TSV reader that register files, alteration files and donation
 * batches all go through.
 *
 * Register exports are large (a district is hundreds of thousands of rows, a national load is
 * tens of millions), come from many electoral management systems, and are often hand-edited
 * in spreadsheets, so the reader has three jobs: stay fast, keep memory bounded by the longest
 * record rather than the file, and turn every malformed record into a located diagnostic
 * (file, line of the record start, field number, the rule broken; never the value) from which
 * the caller can count the error and carry on.
 *
 * Input is read through a fixed 64 KiB window (or straight from a caller's memory buffer).
 * Field bytes are copied, unquoted, into one record buffer and NUL-terminated there; the
 * caller borrows pointers into it until the next call. Quoting follows RFC 4180: a field that
 * starts with a double quote runs to the matching quote, "" inside it is one quote, and
 * delimiters and line ends inside it are data. Records end at LF, CRLF or a lone CR. Empty
 * physical lines between records (including the one after a final newline) are not records.
 * Encoding is decided per field: in RV_ENC_AUTO a field that is not valid UTF-8 is read as
 * Windows-1252 and the reader remembers it saw one. Ragged rows are the caller's business.
 *
 * After an error the reader skips to the start of the next physical line after the point of
 * failure, so one bad row costs one diagnostic and not the rest of the file.
 */
#include "core/core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define RV_CSV_IOBUF          (64u * 1024u)
#define RV_CSV_MAX_FIELD_DEF  (16u * 1024u)
#define RV_CSV_MAX_FIELDS_DEF 256u
#define RV_CSV_MAX_FIELD_CAP  (64u * 1024u * 1024u)
#define RV_CSV_MAX_FIELDS_CAP 65536u

/* Byte classes: zero means "ordinary data byte" for the scanning loops. */
enum { CLS_DATA = 0, CLS_DELIM, CLS_QUOTE, CLS_CR, CLS_LF, CLS_NUL };

struct rv_csv {
    /* Input window [pos, end). base is where the window's buffer starts, so the bytes
     * consumed are dropped + (pos - base). */
    int fd; /* -1 for memory input */
    bool own_fd;
    bool eof;   /* nothing more to read beyond end */
    bool done;  /* refuse further records (UTF-16 input) */
    int sticky; /* an I/O error, returned on every later call */
    const unsigned char *pos, *end, *base;
    unsigned char *iobuf;
    uint64_t dropped;

    /* Options. */
    char delim;
    enum rv_encoding enc;
    size_t max_field, max_fields;
    unsigned char cls_plain[256];  /* classes outside quotes */
    unsigned char cls_quoted[256]; /* classes inside quotes */

    /* The current record: field bytes, their start offsets, and the pointers handed out. */
    char *rb;
    size_t rlen, rcap;
    size_t *offs;
    char **fv;
    char *scratch;
    size_t scap;

    unsigned long line;     /* physical line of pos, 1-based */
    unsigned long rec_line; /* line on which the current or last record started */
    bool saw_cp1252;
    bool utf16; /* the input starts with a UTF-16 byte-order mark */
    char name[256];
};

/* ------------------------------------------------------------------------------------------
 * Input window.
 */

/* Makes at least `need` bytes available at pos unless the input ends first. Bytes already in
 * the window are kept (moved to the front). Returns 0 or RV_EIO. */
static int csv_fill(struct rv_csv *r, size_t need)
{
    size_t keep;
    unsigned char *e;

    if (r->eof || (size_t)(r->end - r->pos) >= need)
        return 0;
    keep = (size_t)(r->end - r->pos);
    r->dropped += (uint64_t)(r->pos - r->base);
    memmove(r->iobuf, r->pos, keep);
    r->pos = r->iobuf;
    e = r->iobuf + keep;
    while ((size_t)(e - r->iobuf) < need && e < r->iobuf + RV_CSV_IOBUF) {
        ssize_t n = read(r->fd, e, (size_t)(r->iobuf + RV_CSV_IOBUF - e));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            r->end = e;
            r->sticky = RV_EIO;
            return RV_EIO;
        }
        if (n == 0) {
            r->eof = true;
            break;
        }
        e += n;
    }
    r->end = e;
    return 0;
}

/* True if a byte is available at pos (reading more if needed). Sets *err on I/O failure. */
static inline bool csv_avail(struct rv_csv *r, int *err)
{
    if (r->pos < r->end)
        return true;
    *err = csv_fill(r, 1);
    return r->pos < r->end;
}

/* ------------------------------------------------------------------------------------------
 * Record buffer.
 */

static int csv_reserve(struct rv_csv *r, size_t need)
{
    size_t cap;
    char *nb;

    if (need <= r->rcap)
        return 0;
    cap = r->rcap != 0 ? r->rcap : 4096;
    while (cap < need)
        cap *= 2;
    nb = realloc(r->rb, cap);
    if (nb == NULL)
        return RV_ENOMEM;
    r->rb = nb;
    r->rcap = cap;
    return 0;
}

/* Skips to just past the next line end (LF, CRLF or CR) after pos, or to the end of input. */
static int csv_resync(struct rv_csv *r)
{
    int err = 0;

    while (csv_avail(r, &err)) {
        const unsigned char *p = r->pos, *e = r->end;
        while (p < e && *p != '\n' && *p != '\r')
            p++;
        r->pos = p;
        if (p == e)
            continue;
        r->pos++;
        r->line++;
        if (*p == '\r' && csv_avail(r, &err) && *r->pos == '\n')
            r->pos++;
        break;
    }
    return err;
}

static int csv_fail(struct rv_csv *r, struct rv_diag *diag, int code, size_t field, const char *fmt,
                    ...) RV_PRINTF(5, 6);

static int csv_fail(struct rv_csv *r, struct rv_diag *diag, int code, size_t field, const char *fmt,
                    ...)
{
    char msg[200];
    va_list ap;
    int err;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    rv_diag_set(diag, r->name, r->rec_line, (unsigned)field, "%s", msg);
    err = csv_resync(r);
    return err != 0 ? err : code;
}

/* Finishes the field that starts at offset fs: checks or converts its encoding and
 * NUL-terminates it. hi is the OR of its bytes. */
static int csv_end_field(struct rv_csv *r, size_t fs, unsigned hi, size_t nf, struct rv_diag *diag)
{
    size_t flen = r->rlen - fs;
    int err;

    if ((hi & 0x80) != 0) {
        bool convert = r->enc == RV_ENC_CP1252;
        if (!convert && !rv_utf8_valid(r->rb + fs, flen)) {
            if (r->enc == RV_ENC_UTF8)
                return csv_fail(r, diag, RV_EPARSE, nf + 1, "field is not valid UTF-8");
            convert = true;
            r->saw_cp1252 = true;
        }
        if (convert) {
            size_t out;
            if (r->scap < 3 * flen + 1) {
                char *ns = realloc(r->scratch, 3 * flen + 1);
                if (ns == NULL)
                    return RV_ENOMEM;
                r->scratch = ns;
                r->scap = 3 * flen + 1;
            }
            out = rv_cp1252_to_utf8(r->rb + fs, flen, r->scratch);
            if ((err = csv_reserve(r, fs + out + 1)) != 0)
                return err;
            memcpy(r->rb + fs, r->scratch, out);
            r->rlen = fs + out;
        }
    }
    if ((err = csv_reserve(r, r->rlen + 1)) != 0)
        return err;
    r->rb[r->rlen++] = '\0';
    r->offs[nf] = fs;
    return 0;
}

/* Appends n bytes to the record buffer. */
static inline int csv_append(struct rv_csv *r, const unsigned char *p, size_t n)
{
    if (r->rlen + n + 1 > r->rcap) {
        int err = csv_reserve(r, r->rlen + n + 1);
        if (err != 0)
            return err;
    }
    memcpy(r->rb + r->rlen, p, n);
    r->rlen += n;
    return 0;
}

/* Appends the n window bytes at pos (the data run just scanned). Short runs, the usual
 * register field, are moved as one 16-byte block when both sides have room for it. */
static inline int csv_append_run(struct rv_csv *r, size_t n)
{
    if (r->rlen + n + 17 > r->rcap) {
        int err = csv_reserve(r, r->rlen + n + 17);
        if (err != 0)
            return err;
    }
#if defined(__SSE2__)
    if (n <= 16 && r->end - r->pos >= 16) {
        _mm_storeu_si128((__m128i *)(void *)(r->rb + r->rlen),
                         _mm_loadu_si128((const __m128i *)(const void *)r->pos));
        r->rlen += n;
        return 0;
    }
#endif
    memcpy(r->rb + r->rlen, r->pos, n);
    r->rlen += n;
    return 0;
}

/* Consumes the line end at pos (which must be CR or LF). */
static int csv_eat_eol(struct rv_csv *r)
{
    int err = 0;
    unsigned char c = *r->pos++;

    r->line++;
    if (c == '\r' && csv_avail(r, &err) && *r->pos == '\n')
        r->pos++;
    return err;
}

/* Returns the first byte in [p, e) that is not plain data (cls non-zero): the delimiter, a
 * quote, CR, LF or NUL; stop is the delimiter, or '"' inside quotes. ORs the data bytes
 * skipped into *hi so the caller knows whether the field is pure ASCII. Sixteen bytes at a
 * time where SSE2 is available: this loop is most of the reader's time. */
static inline const unsigned char *csv_scan(const unsigned char *p, const unsigned char *e,
                                            char stop, const unsigned char *cls, unsigned *hi)
{
#if defined(__SSE2__)
    const __m128i vs = _mm_set1_epi8(stop), vq = _mm_set1_epi8('"');
    const __m128i vcr = _mm_set1_epi8('\r'), vlf = _mm_set1_epi8('\n'), vz = _mm_setzero_si128();

    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        __m128i m =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vs), _mm_cmpeq_epi8(v, vq)),
                         _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, vcr), _mm_cmpeq_epi8(v, vlf)),
                                      _mm_cmpeq_epi8(v, vz)));
        unsigned special = (unsigned)_mm_movemask_epi8(m);
        unsigned high = (unsigned)_mm_movemask_epi8(v);
        if (special != 0) {
            unsigned at = (unsigned)__builtin_ctz(special);
            if ((high & ((1u << at) - 1)) != 0)
                *hi |= 0x80;
            return p + at;
        }
        if (high != 0)
            *hi |= 0x80;
        p += 16;
    }
#else
    (void)stop;
#endif
    while (p < e && cls[*p] == CLS_DATA)
        *hi |= *p++;
    return p;
}

/* Reads one record into rb/offs; returns 1, 0 at end of input, or a negative code. */
static int csv_record(struct rv_csv *r, size_t *nfields, struct rv_diag *diag)
{
    int err = 0;
    size_t nf = 0;

    /* Empty lines are not records. */
    for (;;) {
        if (!csv_avail(r, &err))
            return err;
        if (*r->pos != '\n' && *r->pos != '\r')
            break;
        if ((err = csv_eat_eol(r)) != 0)
            return err;
    }
    r->rec_line = r->line;
    r->rlen = 0;

    for (;;) {
        size_t fs = r->rlen;
        unsigned hi = 0;
        int cls;

        if (nf == r->max_fields)
            return csv_fail(r, diag, RV_ETOOBIG, nf + 1, "record has more than %zu fields",
                            r->max_fields);

        if (csv_avail(r, &err) && *r->pos == '"') {
            /* Quoted field. */
            r->pos++;
            for (;;) {
                const unsigned char *p = r->pos, *e = r->end;
                size_t n;
                p = csv_scan(p, e, '"', r->cls_quoted, &hi);
                n = (size_t)(p - r->pos);
                if (r->rlen - fs + n > r->max_field)
                    return csv_fail(r, diag, RV_ETOOBIG, nf + 1, "field longer than %zu bytes",
                                    r->max_field);
                if ((err = csv_append_run(r, n)) != 0)
                    return err;
                r->pos = p;
                if (!csv_avail(r, &err)) {
                    if (err != 0)
                        return err;
                    return csv_fail(r, diag, RV_EPARSE, nf + 1,
                                    "unterminated quoted field at end of file");
                }
                cls = r->cls_quoted[*r->pos];
                if (cls == CLS_DATA)
                    continue; /* the window was refilled mid-field */
                if (cls == CLS_QUOTE) {
                    r->pos++;
                    if (!csv_avail(r, &err) || *r->pos != '"')
                        break;
                    r->pos++;
                    if (r->rlen - fs + 1 > r->max_field)
                        return csv_fail(r, diag, RV_ETOOBIG, nf + 1, "field longer than %zu bytes",
                                        r->max_field);
                    if ((err = csv_append(r, (const unsigned char *)"\"", 1)) != 0)
                        return err;
                } else if (cls == CLS_NUL) {
                    return csv_fail(r, diag, RV_EPARSE, nf + 1, "NUL byte in field");
                } else {
                    /* A line end inside quotes is data, kept as written. */
                    static const unsigned char eol[3] = "\r\n";
                    const unsigned char *what = *r->pos == '\r' ? eol : eol + 1;
                    size_t add = 1;
                    r->pos++;
                    if (what == eol && csv_avail(r, &err) && *r->pos == '\n') {
                        r->pos++;
                        add = 2;
                    }
                    r->line++;
                    if (r->rlen - fs + add > r->max_field)
                        return csv_fail(r, diag, RV_ETOOBIG, nf + 1, "field longer than %zu bytes",
                                        r->max_field);
                    if ((err = csv_append(r, what, add)) != 0)
                        return err;
                }
            }
            if (err != 0)
                return err;
            /* After the closing quote: a delimiter, a line end or the end of input. */
            if (csv_avail(r, &err)) {
                cls = r->cls_plain[*r->pos];
                if (cls != CLS_DELIM && cls != CLS_CR && cls != CLS_LF)
                    return csv_fail(r, diag, RV_EPARSE, nf + 1,
                                    "text after the closing quote of a quoted field");
            }
        } else {
            /* Unquoted field. */
            for (;;) {
                const unsigned char *p = r->pos, *e = r->end;
                size_t n;
                p = csv_scan(p, e, r->delim, r->cls_plain, &hi);
                n = (size_t)(p - r->pos);
                if (r->rlen - fs + n > r->max_field)
                    return csv_fail(r, diag, RV_ETOOBIG, nf + 1, "field longer than %zu bytes",
                                    r->max_field);
                if ((err = csv_append_run(r, n)) != 0)
                    return err;
                r->pos = p;
                if (p < e || !csv_avail(r, &err))
                    break;
            }
            if (err != 0)
                return err;
            if (r->pos < r->end) {
                cls = r->cls_plain[*r->pos];
                if (cls == CLS_QUOTE)
                    return csv_fail(r, diag, RV_EPARSE, nf + 1,
                                    "stray quote inside unquoted field");
                if (cls == CLS_NUL)
                    return csv_fail(r, diag, RV_EPARSE, nf + 1, "NUL byte in field");
            }
        }

        if ((err = csv_end_field(r, fs, hi, nf, diag)) != 0)
            return err;
        nf++;
        if (!csv_avail(r, &err)) {
            if (err != 0)
                return err;
            break;
        }
        if (r->cls_plain[*r->pos] == CLS_DELIM) {
            r->pos++;
            continue;
        }
        if ((err = csv_eat_eol(r)) != 0)
            return err;
        break;
    }
    *nfields = nf;
    return 1;
}

/* ------------------------------------------------------------------------------------------
 * Public interface.
 */

static void csv_set_delim(struct rv_csv *r, char delim)
{
    memset(r->cls_plain, CLS_DATA, sizeof(r->cls_plain));
    memset(r->cls_quoted, CLS_DATA, sizeof(r->cls_quoted));
    r->delim = delim;
    r->cls_plain[(unsigned char)delim] = CLS_DELIM;
    r->cls_plain['"'] = r->cls_quoted['"'] = CLS_QUOTE;
    r->cls_plain['\r'] = r->cls_quoted['\r'] = CLS_CR;
    r->cls_plain['\n'] = r->cls_quoted['\n'] = CLS_LF;
    r->cls_plain[0] = r->cls_quoted[0] = CLS_NUL;
}

/* Chooses ',' or '\t' from the first line in the window, outside quotes. */
static char csv_detect(const unsigned char *p, const unsigned char *e)
{
    size_t commas = 0, tabs = 0;
    bool quoted = false;

    for (; p < e; p++) {
        if (*p == '"')
            quoted = !quoted;
        else if (quoted)
            continue;
        else if (*p == '\n' || *p == '\r')
            break;
        else if (*p == ',')
            commas++;
        else if (*p == '\t')
            tabs++;
    }
    return tabs > commas ? '\t' : ',';
}

static int csv_new(const char *name, const struct rv_csv_opts *opts, struct rv_csv **out)
{
    struct rv_csv *r;
    struct rv_csv_opts o = {0};

    if (opts != NULL)
        o = *opts;
    if (o.delim != 0 && o.delim != ',' && o.delim != '\t')
        return RV_EINVAL;
    if (o.enc != RV_ENC_AUTO && o.enc != RV_ENC_UTF8 && o.enc != RV_ENC_CP1252)
        return RV_EINVAL;
    if (o.max_field == 0)
        o.max_field = RV_CSV_MAX_FIELD_DEF;
    if (o.max_fields == 0)
        o.max_fields = RV_CSV_MAX_FIELDS_DEF;
    if (o.max_field > RV_CSV_MAX_FIELD_CAP || o.max_fields > RV_CSV_MAX_FIELDS_CAP)
        return RV_EINVAL;

    r = calloc(1, sizeof(*r));
    if (r == NULL)
        return RV_ENOMEM;
    r->fd = -1;
    r->delim = o.delim;
    r->enc = o.enc;
    r->max_field = o.max_field;
    r->max_fields = o.max_fields;
    r->line = 1;
    snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "");
    r->offs = calloc(o.max_fields, sizeof(*r->offs));
    r->fv = calloc(o.max_fields + 1, sizeof(*r->fv));
    if (r->offs == NULL || r->fv == NULL) {
        rv_csv_close(r);
        return RV_ENOMEM;
    }
    *out = r;
    return 0;
}

/* Skips a UTF-8 BOM and settles the delimiter once the first bytes are in the window. */
static void csv_start(struct rv_csv *r)
{
    if (r->end - r->pos >= 2 &&
        ((r->pos[0] == 0xff && r->pos[1] == 0xfe) || (r->pos[0] == 0xfe && r->pos[1] == 0xff)))
        r->utf16 = true;
    if (r->end - r->pos >= 3 && r->pos[0] == 0xef && r->pos[1] == 0xbb && r->pos[2] == 0xbf)
        r->pos += 3;
    csv_set_delim(r, r->delim != 0 ? r->delim : csv_detect(r->pos, r->end));
}

int rv_csv_open(const char *path, const struct rv_csv_opts *opts, struct rv_csv **out,
                struct rv_diag *diag)
{
    struct rv_csv *r = NULL;
    int err;

    *out = NULL;
    if ((err = csv_new(path, opts, &r)) != 0) {
        rv_diag_set(diag, path, 0, 0, "invalid reader options");
        goto out;
    }
    r->iobuf = malloc(RV_CSV_IOBUF);
    if (r->iobuf == NULL) {
        err = RV_ENOMEM;
        goto out;
    }
    r->pos = r->end = r->base = r->iobuf;
    if (strcmp(path, "-") == 0) {
        r->fd = STDIN_FILENO;
    } else {
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) {
            int e = errno;
            rv_diag_set(diag, path, 0, 0, "cannot open: %s", strerror(e));
            err = e == ENOENT ? RV_ENOTFOUND : RV_EIO;
            goto out;
        }
        r->own_fd = true;
    }
    if ((err = csv_fill(r, RV_CSV_IOBUF)) != 0) {
        rv_diag_set(diag, path, 0, 0, "cannot read: %s", strerror(errno));
        goto out;
    }
    csv_start(r);
    *out = r;
    r = NULL;
out:
    rv_csv_close(r);
    return err;
}

int rv_csv_open_mem(const char *buf, size_t len, const char *name, const struct rv_csv_opts *opts,
                    struct rv_csv **out)
{
    struct rv_csv *r = NULL;
    int err;

    *out = NULL;
    if ((err = csv_new(name, opts, &r)) != 0)
        return err;
    r->pos = r->base = (const unsigned char *)buf;
    r->end = r->pos + len;
    r->eof = true;
    csv_start(r);
    *out = r;
    return 0;
}

int rv_csv_next(struct rv_csv *r, char ***fields, size_t *nfields, struct rv_diag *diag)
{
    size_t nf = 0;
    int rc;

    *fields = NULL;
    *nfields = 0;
    if (r->sticky != 0) {
        rv_diag_set(diag, r->name, r->line, 0, "read failed");
        return r->sticky;
    }
    if (r->done)
        return 0;
    if (r->utf16) {
        r->done = true;
        r->pos = r->end;
        rv_diag_set(diag, r->name, 1, 0,
                    "file is UTF-16 encoded; save it as CSV UTF-8 or Windows-1252");
        return RV_EPARSE;
    }
    rc = csv_record(r, &nf, diag);
    if (rc == RV_EIO)
        goto io;
    if (rc <= 0)
        return rc;
    for (size_t i = 0; i < nf; i++)
        r->fv[i] = r->rb + r->offs[i];
    r->fv[nf] = NULL;
    *fields = r->fv;
    *nfields = nf;
    return 1;
io:
    rv_diag_set(diag, r->name, r->line, 0, "read failed: %s", strerror(errno));
    return rc;
}

unsigned long rv_csv_line(const struct rv_csv *r)
{
    return r->rec_line;
}

char rv_csv_delim(const struct rv_csv *r)
{
    return r->delim;
}

bool rv_csv_saw_cp1252(const struct rv_csv *r)
{
    return r->saw_cp1252;
}

uint64_t rv_csv_offset(const struct rv_csv *r)
{
    return r->dropped + (uint64_t)(r->pos - r->base);
}

void rv_csv_close(struct rv_csv *r)
{
    if (r == NULL)
        return;
    if (r->own_fd && r->fd >= 0)
        close(r->fd);
    free(r->iobuf);
    free(r->rb);
    free(r->scratch);
    free(r->offs);
    free(r->fv);
    free(r);
}
