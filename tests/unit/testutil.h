/*
 * testutil.h - small helpers the unit tests share: a fresh temporary folder and its removal,
 * the path of a file under the test data folder, and a search for bytes in a folder's files
 * (for the tests that look for plaintext on disk).
 * Header-only (static inline), because each test is built from one source file.
 */
#ifndef RV_TESTUTIL_H
#define RV_TESTUTIL_H

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The path of name under the test data folder ($RV_TEST_DATA, which CTest sets, else
 * tests/data), in a static buffer overwritten by the next call. */
static inline const char *rv_test_data_file(const char *name)
{
    static char path[1024];
    const char *d = getenv("RV_TEST_DATA");
    snprintf(path, sizeof(path), "%s/%s", d != NULL ? d : "tests/data", name);
    return path;
}

/* Creates /tmp/<prefix>-XXXXXX and returns its path (free with free()), or NULL. */
static inline char *rv_test_tmpdir(const char *prefix)
{
    char *d = malloc(strlen(prefix) + 16);

    if (d == NULL)
        return NULL;
    sprintf(d, "/tmp/%s-XXXXXX", prefix);
    if (mkdtemp(d) == NULL) {
        free(d);
        return NULL;
    }
    return d;
}

/* Removes dir and everything below it; symbolic links are removed, never followed. */
static inline void rv_test_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        char p[4096];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if ((size_t)snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) >= sizeof(p))
            continue;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rv_test_rmtree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* True when the file at path holds needle (bytes, case as given). A file that cannot be
 * read, or memory that runs out, fails the test run instead of passing it quietly. */
static inline bool rv_test_file_contains(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "rb");
    size_t nl = strlen(needle), cap = 1 << 20, len = 0, r;
    char *buf = malloc(cap);
    bool hit;

    if (fp == NULL || buf == NULL || nl == 0) {
        fprintf(stderr, "rv_test_file_contains: cannot read %s\n", path);
        abort();
    }
    while ((r = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += r;
        if (len == cap && (buf = realloc(buf, cap *= 2)) == NULL)
            abort();
    }
    fclose(fp);
    hit = memmem(buf, len, needle, nl) != NULL;
    free(buf);
    return hit;
}

/* True when any file below dir holds needle; symbolic links are not followed. */
static inline bool rv_test_tree_contains(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    bool hit = false;

    if (d == NULL)
        return false;
    while (!hit && (e = readdir(d)) != NULL) {
        char p[1024];
        struct stat st;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        if (lstat(p, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            hit = rv_test_tree_contains(p, needle);
        else if (S_ISREG(st.st_mode))
            hit = rv_test_file_contains(p, needle);
    }
    closedir(d);
    return hit;
}

#endif /* RV_TESTUTIL_H */
