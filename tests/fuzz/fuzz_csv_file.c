/*
 * fuzz_csv_file.c - libFuzzer target that holds the CSV reader's file input to its memory
 * input. A register file is read through a 64 KiB window that is refilled as records are
 * consumed; a record, a quoted field, a CRLF or a multi-byte character cut by the window's
 * end must read exactly as it does from one buffer.
 *
 * The first input byte chooses the case: odd, the rest of the input is the file as it is
 * (a byte-order mark or UTF-16 at its start included); even, the next two bytes choose where
 * the 64 KiB boundary falls in the rest (up to 4 KiB into it), and empty lines (which the
 * reader skips) fill the file up to there. The same bytes are then read from memory and from
 * a file (a memfd, opened by its /proc path as ingest opens a path), under every delimiter
 * and encoding option, and every call must give the same result: the same code, fields,
 * line, diagnostic line, delimiter and 1252 flag, and the same offset at the end.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define WINDOW (64u * 1024u)

static void compare(const char *buf, size_t len, const char *path, const struct rv_csv_opts *o)
{
    struct rv_csv *m = NULL, *f = NULL;
    struct rv_diag dm, df;

    memset(&dm, 0, sizeof(dm));
    memset(&df, 0, sizeof(df));
    if (rv_csv_open_mem(buf, len, "fuzz", o, &m) != 0)
        abort();
    if (rv_csv_open(path, o, &f, &df) != 0)
        abort();
    for (size_t calls = 0;; calls++) {
        char **fm, **ff;
        size_t nm = 0, nf = 0;
        int rm, rf;

        if (calls > len + 2)
            abort(); /* every call consumes input or ends it */
        rm = rv_csv_next(m, &fm, &nm, &dm);
        rf = rv_csv_next(f, &ff, &nf, &df);
        if (rm != rf || rv_csv_line(m) != rv_csv_line(f) || rv_csv_delim(m) != rv_csv_delim(f) ||
            rv_csv_saw_cp1252(m) != rv_csv_saw_cp1252(f))
            abort();
        if (rm == 0)
            break;
        if (rm < 0) {
            if (dm.line != df.line)
                abort();
            continue;
        }
        if (nm != nf)
            abort();
        for (size_t i = 0; i < nm; i++)
            if (strcmp(fm[i], ff[i]) != 0)
                abort();
    }
    if (rv_csv_offset(m) != len || rv_csv_offset(f) != len)
        abort();
    rv_csv_close(m);
    rv_csv_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char delims[] = {0, ',', '\t'};
    static const enum rv_encoding encs[] = {RV_ENC_AUTO, RV_ENC_UTF8, RV_ENC_CP1252};
    char *buf, path[64];
    size_t pad = 0, len;
    int fd;

    if (size < 3)
        return 0;
    if ((data[0] & 1) == 0) {
        pad = WINDOW - (((size_t)data[1] << 8 | data[2]) % 4096);
        data += 3;
        size -= 3;
    } else {
        data += 1;
        size -= 1;
    }
    len = pad + size;
    if ((buf = malloc(len + 1)) == NULL)
        return 0;
    memset(buf, '\n', pad);
    memcpy(buf + pad, data, size);
    if ((fd = memfd_create("fuzz_csv_file", MFD_CLOEXEC)) < 0) {
        free(buf);
        return 0;
    }
    for (size_t done = 0; done < len;) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    for (size_t i = 0; i < sizeof(delims); i++)
        for (size_t j = 0; j < sizeof(encs) / sizeof(encs[0]); j++)
            compare(buf, len, path, &(struct rv_csv_opts){.delim = delims[i], .enc = encs[j]});
    compare(buf, len, path, &(struct rv_csv_opts){.max_field = 5, .max_fields = 3});
    close(fd);
    free(buf);
    return 0;
}
