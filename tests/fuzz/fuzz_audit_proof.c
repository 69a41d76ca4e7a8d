/*
 * fuzz_audit_proof.c - the proof JSON reader and the RFC 9162 verifiers of src/audit.
 *
 * Proofs come from outside and are read strictly: any input must either be refused or give
 * a proof that the verifiers can run over without crashing, and whatever is read must
 * print back to JSON that reads the same. The raw bytes are also fed to the verifiers as
 * sizes, hashes and proof paths.
 */
#include "audit/audit.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rv_audit_proof *p = malloc(sizeof(*p)), *q = malloc(sizeof(*q));
    char *js = NULL;
    volatile int sink = 0;

    if (p == NULL || q == NULL)
        goto out;
    if (rv_audit_proof_from_json((const char *)data, size, p) == 0) {
        sink += rv_audit_proof_verify(p);
        if (rv_audit_proof_to_json(p, &js) != 0 ||
            rv_audit_proof_from_json(js, strlen(js), q) != 0 || q->nhashes != p->nhashes ||
            q->consistency != p->consistency || q->size2 != p->size2 ||
            memcmp(q->hashes, p->hashes, p->nhashes * 32) != 0)
            abort();
    }
    /* Raw: two sizes, two hashes, then proof hashes. */
    if (size >= 16 + 64) {
        uint64_t a = 0, b = 0;
        size_t np = (size - 80) / 32;
        memcpy(&a, data, 8);
        memcpy(&b, data + 8, 8);
        if (np > RV_AUDIT_PROOF_MAX)
            np = RV_AUDIT_PROOF_MAX;
        memcpy(p->hashes, data + 80, np * 32);
        sink += rv_audit_verify_inclusion(a % 1000000, b % 1000000 + 1, data + 16, p->hashes, np,
                                          data + 48);
        sink += rv_audit_verify_inclusion(a, b, data + 16, p->hashes, np, data + 48);
        sink += rv_audit_verify_consistency(a, b, data + 16, data + 48, p->hashes, np);
        sink += rv_audit_verify_consistency(a % 64 + 1, b % 4096 + 1, data + 16, data + 48,
                                            p->hashes, np);
    }
out:
    (void)sink;
    free(js);
    free(p);
    free(q);
    return 0;
}
