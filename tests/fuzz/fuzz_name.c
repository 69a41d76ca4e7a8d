/*
 * fuzz_name.c - libFuzzer target for name parsing and keying.
 *
 * Any byte string given as a whole name, or split at its first '|' into surname and
 * forename fields, must be refused or give a name whose key is built without overrunning a
 * field, and a parsed name must always have a surname.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void key_and_format(const struct rv_name *n)
{
    struct rv_name_key k;
    char buf[2 * RV_NAME_MAX];

    if (n->surname[0] == '\0')
        abort();
    if (rv_name_key(n, &k) == 0 && strlen(k.surname) >= sizeof(k.surname))
        abort();
    rv_name_format(n, buf, sizeof(buf));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_name n;
    const char *s = (const char *)data;

    if (rv_name_parse(s, size, &n) == 0)
        key_and_format(&n);
    if (size < 4096) {
        char buf[4096];
        const char *bar = memchr(s, '|', size);
        memcpy(buf, s, size);
        buf[size] = '\0';
        if (bar != NULL && memchr(s, '\0', size) == NULL) {
            buf[bar - s] = '\0';
            if (rv_name_from_parts(buf, buf + (bar - s) + 1, &n) == 0)
                key_and_format(&n);
        }
    }
    return 0;
}
