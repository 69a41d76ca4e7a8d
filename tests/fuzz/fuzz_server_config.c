/*
 * fuzz_server_config.c - libFuzzer target for the daemon's config parser: any bytes as a
 * config file, parsed over the defaults and then checked across keys. Nothing may crash or
 * read out of bounds; a refusal must name a line within the input; a parsed value must be
 * within its key's bounds.
 */
#include "server/server.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_server_config c;
    struct rv_diag d;
    unsigned long lines = 1;
    int rc;

    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    rv_server_config_defaults(&c);
    rc = rv_server_config_parse(&c, (const char *)data, size, "fuzz.conf", &d);
    if (rc != 0) {
        if (d.line == 0 || d.line > lines || d.msg[0] == '\0')
            abort();
        return 0;
    }
    if (c.threads > 4096 || c.session_idle < 10 || c.max_connections < 1 ||
        strlen(c.vault) >= sizeof(c.vault) || c.body_max_check < 16)
        abort();
    rv_diag_clear(&d);
    (void)!rv_server_config_finish(&c, &d);
    return 0;
}
