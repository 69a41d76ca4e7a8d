/*
 * test_core_csv.c - the streaming CSV/TSV reader against the inputs register exports really
 * contain: quoted newlines, doubled quotes, mixed line ends, byte-order marks, Windows-1252
 * bytes, stray quotes, oversized fields, and records that straddle the reader's 64 KiB window.
 *
 * Every malformed record must give a located diagnostic that names the rule and never the
 * value, and the reader must carry on at the next line. Reading a file and reading the same
 * bytes from memory must give identical results wherever the window boundary falls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

/* Reads the whole input and renders it as text: one line per record, fields joined by '|',
 * errors as "!<code>@<line>:<field>". Lets a test state its expectation as one string. */
static char *render(struct rv_csv *r)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    char **f;
    size_t n;
    struct rv_diag d;
    int rc;

    assert_non_null(out);
    out[0] = '\0';
    for (int guard = 0; guard < 100000; guard++) {
        char tmp[128];
        rv_diag_clear(&d);
        rc = rv_csv_next(r, &f, &n, &d);
        if (rc == 0)
            break;
        if (rc < 0) {
            snprintf(tmp, sizeof(tmp), "!%d@%lu:%u\n", rc - RV_EINVAL, d.line, d.col);
            if (len + strlen(tmp) + 1 >= cap) {
                cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            memcpy(out + len, tmp, strlen(tmp) + 1);
            len += strlen(tmp);
            if (rc == RV_EIO || rc == RV_ENOMEM)
                break;
            continue;
        }
        assert_int_equal(rc, 1);
        assert_null(f[n]);
        for (size_t i = 0; i < n; i++) {
            size_t fl = strlen(f[i]);
            while (len + fl + 4 >= cap) {
                cap *= 2;
                out = realloc(out, cap);
                assert_non_null(out);
            }
            if (i > 0)
                out[len++] = '|';
            memcpy(out + len, f[i], fl);
            len += fl;
        }
        out[len++] = '\n';
        out[len] = '\0';
    }
    return out;
}

static char *render_mem(const char *buf, size_t len, const struct rv_csv_opts *o)
{
    struct rv_csv *r = NULL;
    char *s;

    assert_int_equal(rv_csv_open_mem(buf, len, "t.csv", o, &r), 0);
    s = render(r);
    assert_int_equal(rv_csv_offset(r), len);
    rv_csv_close(r);
    return s;
}

static void expectn(const char *in, size_t len, const struct rv_csv_opts *o, const char *want)
{
    char *got = render_mem(in, len, o);
    if (strcmp(got, want) != 0)
        print_error("input [%s]\n got  [%s]\n want [%s]\n", in, got, want);
    assert_string_equal(got, want);
    free(got);
}

static void expect(const char *in, const struct rv_csv_opts *o, const char *want)
{
    expectn(in, strlen(in), o, want);
}

/* For literals with NUL bytes in them. */
#define EXPECT_LIT(lit, o, want) expectn(lit, sizeof(lit) - 1, o, want)

/* Error codes as render() prints them. */
#define EPARSE  "!3"
#define ETOOBIG "!4"

static void test_basic(void **state)
{
    (void)state;
    expect("a,b,c\n1,2,3\n", NULL, "a|b|c\n1|2|3\n");
    expect("a,b,c\n1,2,3", NULL, "a|b|c\n1|2|3\n"); /* no final newline */
    expect("a,,c,\n,,\n", NULL, "a||c|\n||\n");     /* empty fields, trailing delimiter */
    expect("", NULL, "");                           /* empty input */
    expect("\n\n\r\n", NULL, "");                   /* only blank lines */
    expect("a\n\nb\n\n\n", NULL, "a\nb\n");         /* blank lines are not records */
    expect(" a , b \n", NULL, " a | b \n");         /* spaces are data */
    expect("\"\"\n", NULL, "\n");                   /* one quoted empty field */
    expect("\"\",\"\"\n", NULL, "|\n");
}

static void test_line_ends(void **state)
{
    (void)state;
    expect("a,b\r\nc,d\r\n", NULL, "a|b\nc|d\n");
    expect("a,b\rc,d\r", NULL, "a|b\nc|d\n");
    expect("a,b\rc,d\ne,f\r\ng\n", NULL, "a|b\nc|d\ne|f\ng\n");
    expect("a\r\r\nb", NULL, "a\nb\n");
}

static void test_quoting(void **state)
{
    (void)state;
    expect("\"a,b\",c\n", NULL, "a,b|c\n");
    expect("\"say \"\"hi\"\"\",x\n", NULL, "say \"hi\"|x\n");
    expect("\"\"\"\"\n", NULL, "\"\n");
    expect("\"line1\nline2\",z\n", NULL, "line1\nline2|z\n");
    expect("\"line1\r\nline2\"\r\n", NULL, "line1\r\nline2\n");
    expect("\"cr\ronly\"\n", NULL, "cr\ronly\n");
    expect("\"a\tb\"\tc\n", &(struct rv_csv_opts){.delim = '\t'}, "a\tb|c\n");
    expect("x,\"\"\n", NULL, "x|\n");
    expect("x,\"q\"", NULL, "x|q\n"); /* closing quote at end of input */
}

static void test_line_numbers(void **state)
{
    struct rv_csv *r = NULL;
    const char *in = "h1,h2\n\"multi\nline\r\nfield\",x\n\nlast,row\n";
    char **f;
    size_t n;

    (void)state;
    assert_int_equal(rv_csv_open_mem(in, strlen(in), "t.csv", NULL, &r), 0);
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_int_equal(rv_csv_line(r), 1);
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_int_equal(rv_csv_line(r), 2);
    assert_int_equal(n, 2);
    assert_string_equal(f[0], "multi\nline\r\nfield");
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_int_equal(rv_csv_line(r), 6);
    assert_string_equal(f[1], "row");
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 0);
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 0); /* stays at the end */
    rv_csv_close(r);
}

static void test_detect(void **state)
{
    struct rv_csv *r = NULL;
    const char *tsv = "Elector Name\tPostCode\tAddress1\n\"Smith, John\"\tAB1 2CD\t1 High St\n";
    const char *csv = "\"a\tb\",c\n";
    char **f;
    size_t n;

    (void)state;
    assert_int_equal(rv_csv_open_mem(tsv, strlen(tsv), "t.tsv", NULL, &r), 0);
    assert_int_equal(rv_csv_delim(r), '\t');
    rv_csv_close(r);
    expect(tsv, NULL, "Elector Name|PostCode|Address1\nSmith, John|AB1 2CD|1 High St\n");
    /* A tab inside quotes does not count. */
    assert_int_equal(rv_csv_open_mem(csv, strlen(csv), "t.csv", NULL, &r), 0);
    assert_int_equal(rv_csv_delim(r), ',');
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_int_equal(n, 2);
    rv_csv_close(r);
    /* Forced delimiter wins over detection. */
    expect("a\tb,c\n", &(struct rv_csv_opts){.delim = ','}, "a\tb|c\n");
    expect("a\tb,c\n", &(struct rv_csv_opts){.delim = '\t'}, "a|b,c\n");
    /* Bad options. */
    assert_int_equal(rv_csv_open_mem("a", 1, "x", &(struct rv_csv_opts){.delim = ';'}, &r),
                     RV_EINVAL);
    assert_int_equal(rv_csv_open_mem("a", 1, "x", &(struct rv_csv_opts){.enc = 7}, &r), RV_EINVAL);
}

static void test_bom(void **state)
{
    (void)state;
    expect("\xef\xbb\xbf"
           "Name\tX\nA\tB\n",
           NULL, "Name|X\nA|B\n");
    expect("\xef\xbb\xbf", NULL, "");
    /* A BOM anywhere else is data (U+FEFF), not skipped. */
    expect("a\n\xef\xbb\xbf"
           "b\n",
           NULL,
           "a\n\xef\xbb\xbf"
           "b\n");
    /* UTF-16 is refused once, with no records. */
    EXPECT_LIT("\xff\xfe"
               "a\0,\0b\0\n\0",
               NULL, EPARSE "@1:0\n");
}

static void test_encodings(void **state)
{
    struct rv_csv *r = NULL;
    const char *mixed = "Caf\xc3\xa9,Ren\xe9\n"       /* UTF-8, then 1252 e-acute */
                        "\x93quoted\x94,\x80,\x81\n"; /* curly quotes, euro, undefined */
    char **f;
    size_t n;

    (void)state;
    assert_int_equal(rv_csv_open_mem(mixed, strlen(mixed), "t.csv", NULL, &r), 0);
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_string_equal(f[0], "Caf\xc3\xa9");
    assert_string_equal(f[1], "Ren\xc3\xa9");
    assert_true(rv_csv_saw_cp1252(r));
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_string_equal(f[0], "\xe2\x80\x9cquoted\xe2\x80\x9d");
    assert_string_equal(f[1], "\xe2\x82\xac");
    assert_string_equal(f[2], "\xef\xbf\xbd");
    rv_csv_close(r);

    /* Pure UTF-8 never sets the flag. */
    assert_int_equal(rv_csv_open_mem("\xc5\x81\xc3\xb3\xc5\xba\n", 7, "t", NULL, &r), 0);
    assert_int_equal(rv_csv_next(r, &f, &n, NULL), 1);
    assert_false(rv_csv_saw_cp1252(r));
    rv_csv_close(r);

    /* Forced 1252 converts even valid UTF-8 (it is then mojibake, as asked). */
    expect("Caf\xc3\xa9\n", &(struct rv_csv_opts){.enc = RV_ENC_CP1252}, "Caf\xc3\x83\xc2\xa9\n");
    /* Forced UTF-8 refuses 1252 bytes, field by field, and carries on. */
    expect("ok,Ren\xe9\nnext\n", &(struct rv_csv_opts){.enc = RV_ENC_UTF8}, EPARSE "@1:2\nnext\n");
    /* Overlong, surrogate and out-of-range sequences are not UTF-8: read as 1252. */
    expect("\xc0\xaf\n", NULL, "\xc3\x80\xc2\xaf\n");
    expect("\xed\xa0\x80\n", &(struct rv_csv_opts){.enc = RV_ENC_UTF8}, EPARSE "@1:1\n");
    expect("\xf4\x90\x80\x80\n", &(struct rv_csv_opts){.enc = RV_ENC_UTF8}, EPARSE "@1:1\n");
    expect("\xe2\x82\n", &(struct rv_csv_opts){.enc = RV_ENC_UTF8}, EPARSE "@1:1\n");
    /* Quoted 1252 field with a doubled quote. */
    expect("\"O\x92"
           "Brien \"\"Jr\"\"\"\n",
           NULL,
           "O\xe2\x80\x99"
           "Brien \"Jr\"\n");
}

static void test_errors_and_resync(void **state)
{
    (void)state;
    /* Stray quote: the rest of the line is skipped, the next line is read. */
    expect("a,b\nSmi\"th,x\nc,d\n", NULL, "a|b\n" EPARSE "@2:1\nc|d\n");
    expect("a,12 \"Rose\" Cottage\nc\n", NULL, EPARSE "@1:2\nc\n");
    /* Text after a closing quote. */
    expect("\"ab\"c,d\ne\n", NULL, EPARSE "@1:1\ne\n");
    expect("x,\"ab\" ,d\ne\n", NULL, EPARSE "@1:2\ne\n");
    /* Unterminated at end of input, reported at the record's first line. */
    expect("a\nb,\"open\nmore\nlines", NULL, "a\n" EPARSE "@2:2\n");
    /* NUL bytes. */
    EXPECT_LIT("a\0b,c\nd\n", NULL, EPARSE "@1:1\nd\n");
    EXPECT_LIT("\"a\0b\",c\nd\n", NULL, EPARSE "@1:1\nd\n");
    /* Errors on consecutive lines are each reported, with their own line. */
    expect("\"x\"y\n\"x\"y\n\"x\"y\nok\n", NULL,
           EPARSE "@1:1\n" EPARSE "@2:1\n" EPARSE "@3:1\nok\n");
}

static void test_errors_are_sized(void **state)
{
    char *buf = malloc(40000);
    char *want;
    char *got;

    (void)state;
    assert_non_null(buf);
    /* Field of exactly the limit passes; one more byte fails. */
    memset(buf, 'x', 16384);
    strcpy(buf + 16384, "\nok\n");
    got = render_mem(buf, strlen(buf), NULL);
    assert_int_equal(strlen(got), 16384 + 4);
    free(got);
    memset(buf, 'x', 16385);
    strcpy(buf + 16385, "\nok\n");
    got = render_mem(buf, strlen(buf), NULL);
    assert_string_equal(got, ETOOBIG "@1:1\nok\n");
    free(got);
    /* Quoted, with doubled quotes counting once each. */
    buf[0] = '"';
    memset(buf + 1, 'y', 9);
    strcpy(buf + 10, "\"\"\",ok\n");
    expect(buf, &(struct rv_csv_opts){.max_field = 10}, "yyyyyyyyy\"|ok\n");
    expect(buf, &(struct rv_csv_opts){.max_field = 9}, ETOOBIG "@1:1\n");
    /* A runaway quote is stopped by the field limit, not by memory; reading resumes at the
     * line after the point where the limit was crossed. */
    want = ETOOBIG "@1:1\ncccc\nnext\n";
    expect("\"aaaa\nbbbb\ncccc\nnext\n", &(struct rv_csv_opts){.max_field = 8}, want);
    /* Field count. */
    expect("a,b,c\na,b,c,d\na\n", &(struct rv_csv_opts){.max_fields = 3},
           "a|b|c\n" ETOOBIG "@2:4\na\n");
    free(buf);
}

static void test_diag_has_no_values(void **state)
{
    const char *in = "Surname,Forename\nO\"Sullivan,Siobhan\n\"Ng\"x,Wei\n";
    struct rv_csv *r = NULL;
    struct rv_diag d;
    char **f;
    size_t n;
    char buf[600];

    (void)state;
    assert_int_equal(rv_csv_open_mem(in, strlen(in), "reg.csv", NULL, &r), 0);
    assert_int_equal(rv_csv_next(r, &f, &n, &d), 1);
    assert_int_equal(rv_csv_next(r, &f, &n, &d), RV_EPARSE);
    rv_diag_format(&d, buf, sizeof(buf));
    assert_string_equal(buf, "reg.csv:2:1: stray quote inside unquoted field");
    assert_int_equal(rv_csv_next(r, &f, &n, &d), RV_EPARSE);
    rv_diag_format(&d, buf, sizeof(buf));
    assert_null(strstr(buf, "Ng"));
    assert_int_equal(d.line, 3);
    assert_int_equal(rv_csv_next(r, &f, &n, &d), 0);
    rv_csv_close(r);
}

/* Writes buf to a temporary file and returns its path (static storage). */
static const char *write_temp(const char *buf, size_t len)
{
    static char path[64];
    int fd;

    snprintf(path, sizeof(path), "/tmp/rv_csv_test_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *render_file(const char *path, const struct rv_csv_opts *o, uint64_t *offset)
{
    struct rv_csv *r = NULL;
    struct rv_diag d;
    char *s;

    assert_int_equal(rv_csv_open(path, o, &r, &d), 0);
    s = render(r);
    *offset = rv_csv_offset(r);
    rv_csv_close(r);
    return s;
}

/* Every tricky construct placed across the 64 KiB window boundary, at every offset near it:
 * the file reader must agree with the memory reader byte for byte. */
static void test_window_boundaries(void **state)
{
    static const char *const tails[] = {
        "\"q\"\"q\",\"a\r\nb\"\r\nx\xe9y,\"\"\r\n",
        "a\r\nb\rc\n\"\"\"\"\n",
        "\xc3\xa9\xc3\xa9\xe2\x82\xac,\"\xe2\x82\xac\"\n",
        "st\"ray,x\n\"open\"junk\nok\n",
        "\"unterminated\n",
        "\"0123456789abcdef\",\"0123456789\r\nabcdef\"\r\n",
        "0123456789abcdef,\xe9\xe9\xe9\xe9\xe9\xe9\xe9\xe9\r\n",
    };
    size_t size = 70000;
    char *buf = malloc(size + 100);

    (void)state;
    assert_non_null(buf);
    for (size_t t = 0; t < sizeof(tails) / sizeof(tails[0]); t++) {
        size_t tl = strlen(tails[t]);
        for (size_t at = 65536 - 8; at <= 65536 + 2; at++) {
            size_t len, pad = at - 2;
            uint64_t off = 0;
            /* Padding lines of 99 bytes plus a newline, then a filler line to hit `at`. */
            memset(buf, 'p', pad);
            for (size_t i = 99; i < pad; i += 100)
                buf[i] = '\n';
            buf[pad] = 'z';
            buf[pad + 1] = '\n';
            memcpy(buf + at, tails[t], tl);
            len = at + tl;
            char *want = render_mem(buf, len, NULL);
            const char *path = write_temp(buf, len);
            char *got = render_file(path, NULL, &off);
            unlink(path);
            assert_string_equal(got, want);
            assert_int_equal(off, len);
            free(got);
            free(want);
        }
    }
    free(buf);
}

/* A long file through the window: counts, line numbers and offsets add up. */
static void test_file_many_rows(void **state)
{
    const size_t rows = 30000;
    size_t cap = rows * 64, len = 0;
    char *buf = malloc(cap);
    struct rv_csv *r = NULL;
    struct rv_diag d;
    char **f;
    size_t n, seen = 0;
    int rc;

    (void)state;
    assert_non_null(buf);
    for (size_t i = 0; i < rows; i++)
        len +=
            (size_t)snprintf(buf + len, cap - len, "%zu,\"Name %zu\",AB1 2CD,\"a\nb\"\r\n", i, i);
    const char *path = write_temp(buf, len);
    assert_int_equal(rv_csv_open(path, NULL, &r, &d), 0);
    while ((rc = rv_csv_next(r, &f, &n, &d)) == 1) {
        char want[32];
        assert_int_equal(n, 4);
        snprintf(want, sizeof(want), "%zu", seen);
        assert_string_equal(f[0], want);
        assert_string_equal(f[3], "a\nb");
        assert_int_equal(rv_csv_line(r), 2 * seen + 1);
        seen++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(seen, rows);
    assert_int_equal(rv_csv_offset(r), len);
    rv_csv_close(r);
    unlink(path);
    free(buf);
}

static void test_open_errors(void **state)
{
    struct rv_csv *r = (struct rv_csv *)1;
    struct rv_diag d;
    uint64_t off;

    (void)state;
    assert_int_equal(rv_csv_open("/nonexistent/dir/reg.csv", NULL, &r, &d), RV_ENOTFOUND);
    assert_null(r);
    assert_string_equal(d.file, "/nonexistent/dir/reg.csv");
    /* A directory opens but cannot be read: refused at once, with the path named. */
    rv_diag_clear(&d);
    assert_int_equal(rv_csv_open("/", NULL, &r, &d), RV_EIO);
    assert_null(r);
    assert_string_equal(d.file, "/");
    assert_non_null(strstr(d.msg, "cannot read"));
    /* Options are checked before the file is touched. */
    assert_int_equal(rv_csv_open("/nonexistent", &(struct rv_csv_opts){.delim = '|'}, &r, &d),
                     RV_EINVAL);
    /* BOM and detection work through the file path too. */
    const char *path = write_temp("\xef\xbb\xbf"
                                  "a\tb\n1\t2",
                                  10);
    char *got = render_file(path, NULL, &off);
    assert_string_equal(got, "a|b\n1|2\n");
    assert_int_equal(off, 10);
    free(got);
    /* Standard input. */
    int saved = dup(0);
    int fd = open(path, 0);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 0);
    close(fd);
    got = render_file("-", NULL, &off);
    dup2(saved, 0);
    close(saved);
    assert_string_equal(got, "a|b\n1|2\n");
    free(got);
    unlink(path);
}

/* The row the pipe writer sends as row i: quoted fields, a quoted newline, a 1252 byte. */
static size_t pipe_row(size_t i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap,
                            "LDS%zu,%zu,\"Smith, J\xe9\",\"1 High St\nLeeds\",LS1 %zuAB\r\n",
                            i % 40, i, i % 10);
}

/* Reads 25 MB of short rows from a pipe whose writer sends them in odd-sized pieces, so that
 * reads end at every kind of position. Every row must arrive intact, and the peak memory of
 * the process must not grow with the input. */
static void test_pipe_and_memory_bound(void **state)
{
    const size_t rows = 400000;
    int fds[2];
    pid_t pid;
    char path[64], want[128];
    struct rv_csv *r = NULL;
    struct rv_diag d;
    struct rusage ru0, ru1;
    char **f;
    size_t n, seen = 0;
    int rc, status;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char row[128];
        close(fds[0]);
        for (size_t i = 0; i < rows; i++) {
            size_t len = pipe_row(i, row, sizeof(row)), off = 0;
            /* The first rows go out a few bytes at a time, the rest whole. */
            while (off < len) {
                size_t piece = i < 2000 ? 1 + (i + off) % 7 : len - off;
                if (piece > len - off)
                    piece = len - off;
                if (write(fds[1], row + off, piece) != (ssize_t)piece)
                    _exit(1);
                off += piece;
            }
        }
        _exit(0);
    }
    close(fds[1]);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fds[0]);
    getrusage(RUSAGE_SELF, &ru0);
    assert_int_equal(rv_csv_open(path, NULL, &r, &d), 0);
    while ((rc = rv_csv_next(r, &f, &n, &d)) == 1) {
        char got[128];
        assert_int_equal(n, 5);
        pipe_row(seen, want, sizeof(want));
        snprintf(got, sizeof(got), "%s,%s,\"%s\",\"%s\",%s\r\n", f[0], f[1], f[2], f[3], f[4]);
        /* The reader hands out UTF-8: compare with the 1252 byte converted. */
        assert_non_null(strstr(f[2], "J\xc3\xa9"));
        char *e9 = strstr(want, "\xe9");
        assert_non_null(e9);
        memmove(e9 + 2, e9 + 1, strlen(e9 + 1) + 1);
        e9[0] = '\xc3';
        e9[1] = '\xa9';
        assert_string_equal(got, want);
        seen++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(seen, rows);
    assert_true(rv_csv_saw_cp1252(r));
    rv_csv_close(r);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    getrusage(RUSAGE_SELF, &ru1);
    /* ru_maxrss is in KiB; 25 MB went through. */
    assert_true(ru1.ru_maxrss - ru0.ru_maxrss < 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_line_ends),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_encodings),
        cmocka_unit_test(test_errors_and_resync),
        cmocka_unit_test(test_errors_are_sized),
        cmocka_unit_test(test_diag_has_no_values),
        cmocka_unit_test(test_window_boundaries),
        cmocka_unit_test(test_file_many_rows),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_pipe_and_memory_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
