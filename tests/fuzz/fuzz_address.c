/*
 * fuzz_address.c - libFuzzer target for reading addresses.
 *
 * Any byte string must be refused or read into a key whose fields are NUL-terminated
 * within their arrays. The input is read both as free text and, split at newlines, as
 * register address lines.
 */
#include "core/core.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct rv_address_key *k)
{
    if (strnlen(k->sub_building, sizeof(k->sub_building)) == sizeof(k->sub_building) ||
        strnlen(k->number, sizeof(k->number)) == sizeof(k->number) ||
        strnlen(k->first_line, sizeof(k->first_line)) == sizeof(k->first_line))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_address_key k;
    char buf[4096];
    const char *lines[RV_ADDR_LINES] = {0};
    size_t n = 0;

    if (rv_address_parse((const char *)data, size, &k) == 0)
        check(&k);
    if (size >= sizeof(buf))
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    for (char *p = buf; p != NULL && n < RV_ADDR_LINES;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }
    if (rv_address_key(lines, n, &k) == 0)
        check(&k);
    return 0;
}
