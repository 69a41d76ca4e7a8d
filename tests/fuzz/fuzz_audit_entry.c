/*
 * fuzz_audit_entry.c - the audit entry decoder of src/audit.
 *
 * The entry file is read back by `audit show` and `verify` from a disk that an insider may
 * have altered. Any bytes must be refused or decode to an entry that encodes back to
 * exactly the same bytes (the encoding is canonical).
 */
#include "audit/audit.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_audit_record rec;
    uint8_t *buf;
    size_t len = 0;
    int check = rv_audit_entry_check(data, size);

    if (rv_audit_entry_decode(data, size, &rec) != 0) {
        if (check == 0)
            abort();
        return 0;
    }
    if (check != 0)
        abort();
    buf = malloc(RV_AUDIT_ENTRY_MAX);
    if (buf == NULL)
        abort();
    if (rv_audit_entry_encode(&rec.e, buf, RV_AUDIT_ENTRY_MAX, &len) != 0 || len != size ||
        memcmp(buf, data, size) != 0)
        abort();
    free(buf);
    rv_audit_record_free(&rec);
    return 0;
}
