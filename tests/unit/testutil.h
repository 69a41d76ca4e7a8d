/*
 * testutil.h - small helpers the unit tests share: a fresh temporary folder and its removal,
 * and the path of a file under the test data folder.
 * Header-only (static inline), because each test is built from one source file.
 */
#ifndef RV_TESTUTIL_H
#define RV_TESTUTIL_H

#include <dirent.h>
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

#endif /* RV_TESTUTIL_H */
