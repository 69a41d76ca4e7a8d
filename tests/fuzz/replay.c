/*
 * replay.c - runs a fuzz target without libFuzzer, so every target is built and exercised in
 * CTest. Feeds each file of the corpus folders (or files) named on the command line, then a
 * fixed set of pseudo-random inputs. A crash or sanitizer report fails the test.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long n;

    if (f == NULL)
        return -1;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, (size_t)n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned files = 0;
    uint64_t x = 0x9e3779b97f4a7c15u;
    uint8_t buf[4096];

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            DIR *d = opendir(argv[i]);
            struct dirent *e;
            char path[4096];
            while (d != NULL && (e = readdir(d)) != NULL) {
                if (e->d_name[0] == '.')
                    continue;
                snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
                if (run_file(path) == 0)
                    files++;
            }
            if (d != NULL)
                closedir(d);
        } else if (run_file(argv[i]) == 0) {
            files++;
        }
    }
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(x % sizeof(buf));
        for (size_t j = 0; j < len; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            /* Mostly printable, with separators and high bytes mixed in. */
            static const char alphabet[] = " ,\t\"\n\r/-aAzZ09\xc3\xa9";
            buf[j] = (x & 7) == 0 ? (uint8_t)(x >> 8)
                                  : (uint8_t)alphabet[(x >> 8) % (sizeof(alphabet) - 1)];
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("replayed %u corpus files and 2000 generated inputs\n", files);
    return 0;
}
