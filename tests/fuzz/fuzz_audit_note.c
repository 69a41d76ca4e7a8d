/*
 * fuzz_audit_note.c - the signed-note, checkpoint and verifier-key parsers of src/audit.
 *
 * Checkpoints arrive from outside (an auditor's trusted copy, `audit verify --checkpoint`),
 * so their parser must never crash, read out of bounds or accept a note that a fixed key
 * did not sign. The input is tried as a note under a fixed verifier key, as a bare
 * checkpoint body, and as a verifier key string. A note signed by the fixed key is also
 * rebuilt from any body that parses and must then open.
 */
#include "audit/audit.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rv_audit_vkey k;
    static uint8_t sk[64];
    static int ready;
    struct rv_audit_checkpoint c;
    struct rv_audit_vkey v;
    char *s, note[RV_AUDIT_NOTE_MAX], body[RV_AUDIT_NOTE_MAX];
    size_t tl;
    long n;

    if (!ready) {
        uint8_t seed[32] = {7};
        if (sodium_init() < 0 || rv_audit_keypair("regvault.test/audit", seed, sk, &k) != 0)
            abort();
        ready = 1;
    }
    s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    /* Nothing in the corpus is signed by this key, and nothing can forge it: no input may
     * open. */
    if (rv_audit_note_open(s, size, &k, &tl) == 0 || rv_audit_checkpoint_open(s, size, &k, &c) == 0)
        abort();
    if (rv_audit_vkey_parse(s, size, &v) == 0) {
        char back[RV_AUDIT_VKEY_MAX];
        rv_audit_vkey_format(&v, back);
        if (strlen(back) != size || strncasecmp(back, s, size) != 0)
            abort();
    }
    if (rv_audit_checkpoint_parse(s, size, &c) == 0) {
        /* Round trip: what parses can be rebuilt, signed and opened again. */
        n = rv_audit_checkpoint_body(&c, body, sizeof(body));
        if (n > 0) {
            struct rv_audit_checkpoint back;
            strcpy(c.origin, k.name);
            n = rv_audit_checkpoint_body(&c, body, sizeof(body));
            if (n < 0)
                abort();
            n = rv_audit_note_sign(body, (size_t)n, &k, sk, note, sizeof(note));
            if (n < 0 || rv_audit_checkpoint_open(note, (size_t)n, &k, &back) != 0 ||
                back.size != c.size || memcmp(back.root, c.root, 32) != 0)
                abort();
        }
    }
    free(s);
    return 0;
}
