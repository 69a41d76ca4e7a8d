/*
 * fuzz_csv.c - libFuzzer target for the streaming CSV/TSV reader.
 *
 * Register and donation files come from outside, so the reader must survive any bytes. Each
 * input is read to the end under every delimiter and encoding option, and with small field
 * and record limits so that the size checks are reached too. Invariants checked on the way:
 * each record has at least one field and at most max_fields, every field is NUL-terminated
 * valid UTF-8 of bounded length, line numbers never go backwards, and the reader always
 * reaches the end in a bounded number of calls.
 *
 * Run with its dictionary, new inputs going to a scratch folder, not the seed corpus:
 *   build-fuzz/fuzz_csv -dict=tests/fuzz/fuzz_csv.dict \
 *       /tmp/fuzz_csv tests/fuzz/corpus/fuzz_csv
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Local strict UTF-8 check, so the target does not trust the code under test. */
static int utf8_ok(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i], need, min;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xe0) == 0xc0)
            need = 1, min = 0x80, cp = c & 0x1f;
        else if ((c & 0xf0) == 0xe0)
            need = 2, min = 0x800, cp = c & 0x0f;
        else if ((c & 0xf8) == 0xf0)
            need = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if (i + need >= n)
            return 0;
        for (unsigned k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

static void run(const uint8_t *data, size_t size, const struct rv_csv_opts *o)
{
    struct rv_csv *r = NULL;
    struct rv_diag d;
    char **f;
    size_t n, limit = o->max_fields != 0 ? o->max_fields : 256;
    size_t flimit = 3 * (o->max_field != 0 ? o->max_field : 16384);
    unsigned long last = 0;
    int rc;

    if (rv_csv_open_mem((const char *)data, size, "fuzz", o, &r) != 0)
        abort();
    for (size_t calls = 0;; calls++) {
        if (calls > size + 2)
            abort(); /* every call consumes input or ends it */
        rc = rv_csv_next(r, &f, &n, &d);
        if (rc == 0)
            break;
        if (rc < 0) {
            if (rc != RV_EPARSE && rc != RV_ETOOBIG)
                abort();
            if (d.line == 0 || strlen(d.msg) == 0)
                abort();
            continue;
        }
        if (n == 0 || n > limit || f[n] != NULL || rv_csv_line(r) < last)
            abort();
        last = rv_csv_line(r);
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(f[i]);
            if (len > flimit || !utf8_ok((const unsigned char *)f[i], len))
                abort();
        }
    }
    if (rv_csv_offset(r) != size)
        abort();
    rv_csv_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = {0, ',', '\t'};
    static const enum rv_encoding encs[] = {RV_ENC_AUTO, RV_ENC_UTF8, RV_ENC_CP1252};

    for (size_t i = 0; i < sizeof(delims); i++)
        for (size_t j = 0; j < sizeof(encs) / sizeof(encs[0]); j++)
            run(data, size, &(struct rv_csv_opts){.delim = delims[i], .enc = encs[j]});
    run(data, size, &(struct rv_csv_opts){.max_field = 5, .max_fields = 3});
    return 0;
}
