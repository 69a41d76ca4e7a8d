/*
 * note.c - signed checkpoints: C2SP tlog-checkpoint bodies inside C2SP signed notes, with
 * Ed25519 keys in the format of golang.org/x/mod/sumdb/note.
 *
 * A checkpoint is what an auditor keeps outside the vault host: with it, and the verifier
 * key, nobody can present a rewritten log as a continuation. So the parser here is strict
 * and allocates nothing: it follows the rules of note.Open (valid UTF-8, no control
 * characters but newline, signatures after the last blank line, at most 100 signatures,
 * names without spaces or '+') and refuses any note whose claimed signature by our key does
 * not verify. Signatures by other keys are ignored, as note.Open ignores unknown signers,
 * but a note needs one good signature by the expected key.
 */
#include "audit/audit.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define SIG_PREFIX     "\xe2\x80\x94 " /* em dash U+2014, space */
#define SIG_PREFIX_LEN 4
#define ALG_ED25519    0x01
#define MAX_SIGS       100

/* Decodes one UTF-8 sequence at s (n bytes left). Returns its length and the code point, or
 * 0 for an invalid, overlong or surrogate sequence. */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
    uint32_t c;
    size_t len;

    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        c = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        c = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        c = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3fu);
    }
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
        (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static bool is_unicode_space(uint32_t c)
{
    return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

/* A key or signer name: non-empty UTF-8, no white space, no '+'. */
static bool valid_name(const char *s, size_t n)
{
    size_t i = 0;

    if (n == 0 || n >= RV_AUDIT_ORIGIN_MAX)
        return false;
    while (i < n) {
        uint32_t c;
        size_t l = utf8_decode((const uint8_t *)s + i, n - i, &c);
        if (l == 0 || c < 0x20 || c == 0x7f || c == '+' || is_unicode_space(c))
            return false;
        i += l;
    }
    return true;
}

uint32_t rv_audit_key_id(const char *name, const uint8_t pub[32])
{
    crypto_hash_sha256_state st;
    uint8_t h[32];
    static const uint8_t sep[2] = {0x0a, ALG_ED25519};

    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const uint8_t *)name, strlen(name));
    crypto_hash_sha256_update(&st, sep, 2);
    crypto_hash_sha256_update(&st, pub, 32);
    crypto_hash_sha256_final(&st, h);
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

int rv_audit_keypair(const char *name, const uint8_t seed[32], uint8_t *secret,
                     struct rv_audit_vkey *k)
{
    size_t n = strlen(name);

    if (!valid_name(name, n))
        return RV_EINVAL;
    memset(k, 0, sizeof(*k));
    memcpy(k->name, name, n);
    if (crypto_sign_seed_keypair(k->pub, secret, seed) != 0)
        return RV_ECRYPTO;
    k->key_id = rv_audit_key_id(k->name, k->pub);
    return 0;
}

void rv_audit_vkey_format(const struct rv_audit_vkey *k, char out[RV_AUDIT_VKEY_MAX])
{
    uint8_t raw[33];
    char b64[sodium_base64_ENCODED_LEN(33, sodium_base64_VARIANT_ORIGINAL)];

    raw[0] = ALG_ED25519;
    memcpy(raw + 1, k->pub, 32);
    sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw), sodium_base64_VARIANT_ORIGINAL);
    snprintf(out, RV_AUDIT_VKEY_MAX, "%s+%08x+%s", k->name, (unsigned)k->key_id, b64);
}

bool rv_audit_b64_alphabet(const char *s, size_t n)
{
    size_t pad = 0;

    /* libsodium's decoder lets some bytes outside the alphabet through (seen with 0xd3), so
     * the alphabet and padding are checked here first. */
    if (n == 0 || n % 4 != 0)
        return false;
    while (pad < 2 && s[n - 1 - pad] == '=')
        pad++;
    for (size_t i = 0; i < n - pad; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/'))
            return false;
    }
    return true;
}

/* Strict standard base64 of exactly want bytes (or, if want is 0, up to cap bytes). */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
    const char *end = NULL;
    size_t len = 0;

    if (!rv_audit_b64_alphabet(s, n))
        return RV_EPARSE;
    if (sodium_base642bin(out, cap, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != s + n)
        return RV_EPARSE;
    *outlen = len;
    return 0;
}

int rv_audit_vkey_parse(const char *s, size_t len, struct rv_audit_vkey *out)
{
    const char *p1, *p2;
    uint8_t raw[34];
    size_t rawlen = 0;
    uint32_t id = 0;

    memset(out, 0, sizeof(*out));
    p1 = memchr(s, '+', len);
    if (p1 == NULL || !valid_name(s, (size_t)(p1 - s)))
        return RV_EPARSE;
    p2 = memchr(p1 + 1, '+', len - (size_t)(p1 + 1 - s));
    if (p2 == NULL || p2 - p1 - 1 != 8)
        return RV_EPARSE;
    for (const char *h = p1 + 1; h < p2; h++) {
        int v;
        if (*h >= '0' && *h <= '9')
            v = *h - '0';
        else if (*h >= 'a' && *h <= 'f')
            v = *h - 'a' + 10;
        else if (*h >= 'A' && *h <= 'F')
            v = *h - 'A' + 10;
        else
            return RV_EPARSE;
        id = id << 4 | (uint32_t)v;
    }
    if (b64_decode(p2 + 1, len - (size_t)(p2 + 1 - s), raw, sizeof(raw), &rawlen) != 0 ||
        rawlen != 33 || raw[0] != ALG_ED25519)
        return RV_EPARSE;
    memcpy(out->name, s, (size_t)(p1 - s));
    memcpy(out->pub, raw + 1, 32);
    out->key_id = id;
    if (rv_audit_key_id(out->name, out->pub) != id) {
        memset(out, 0, sizeof(*out));
        return RV_EPARSE;
    }
    return 0;
}

long rv_audit_checkpoint_body(const struct rv_audit_checkpoint *c, char *out, size_t outsz)
{
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    int n;

    if (!valid_name(c->origin, strlen(c->origin)))
        return RV_EINVAL;
    sodium_bin2base64(b64, sizeof(b64), c->root, 32, sodium_base64_VARIANT_ORIGINAL);
    n = snprintf(out, outsz, "%s\n%llu\n%s\n", c->origin, (unsigned long long)c->size, b64);
    if (n < 0 || (size_t)n >= outsz)
        return RV_ETOOBIG;
    return n;
}

long rv_audit_note_sign(const char *body, size_t len, const struct rv_audit_vkey *k,
                        const uint8_t *secret, char *out, size_t outsz)
{
    uint8_t sig[4 + crypto_sign_BYTES];
    char b64[sodium_base64_ENCODED_LEN(sizeof(sig), sodium_base64_VARIANT_ORIGINAL)];
    int n;

    if (len == 0 || body[len - 1] != '\n' || len > (size_t)INT32_MAX)
        return RV_EINVAL;
    sig[0] = (uint8_t)(k->key_id >> 24);
    sig[1] = (uint8_t)(k->key_id >> 16);
    sig[2] = (uint8_t)(k->key_id >> 8);
    sig[3] = (uint8_t)k->key_id;
    if (crypto_sign_detached(sig + 4, NULL, (const uint8_t *)body, len, secret) != 0)
        return RV_ECRYPTO;
    sodium_bin2base64(b64, sizeof(b64), sig, sizeof(sig), sodium_base64_VARIANT_ORIGINAL);
    n = snprintf(out, outsz, "%.*s\n" SIG_PREFIX "%s %s\n", (int)len, body, k->name, b64);
    if (n < 0 || (size_t)n >= outsz)
        return RV_ETOOBIG;
    return n;
}

int rv_audit_checkpoint_parse(const char *body, size_t len, struct rv_audit_checkpoint *out)
{
    const char *p = body, *end = body + len, *nl;
    uint64_t size = 0;
    size_t rootlen = 0;

    memset(out, 0, sizeof(*out));
    if (len == 0 || body[len - 1] != '\n')
        return RV_EPARSE;
    /* Origin: any non-empty line (C2SP); we also hold it to the key-name rules. */
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == p || !valid_name(p, (size_t)(nl - p)))
        return RV_EPARSE;
    memcpy(out->origin, p, (size_t)(nl - p));
    p = nl + 1;
    /* Tree size: decimal, no sign, no leading zeros. */
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL || nl == p || (nl - p > 1 && p[0] == '0') || nl - p > 20)
        return RV_EPARSE;
    for (const char *d = p; d < nl; d++) {
        if (*d < '0' || *d > '9')
            return RV_EPARSE;
        if (size > (UINT64_MAX - (uint64_t)(*d - '0')) / 10)
            return RV_EPARSE;
        size = size * 10 + (uint64_t)(*d - '0');
    }
    out->size = size;
    p = nl + 1;
    /* Root hash. */
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL || b64_decode(p, (size_t)(nl - p), out->root, 32, &rootlen) != 0 ||
        rootlen != 32)
        goto bad;
    p = nl + 1;
    /* Extension lines: allowed, each non-empty. */
    while (p < end) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL || nl == p)
            goto bad;
        p = nl + 1;
    }
    return 0;
bad:
    memset(out, 0, sizeof(*out));
    return RV_EPARSE;
}

int rv_audit_note_open(const char *note, size_t len, const struct rv_audit_vkey *k, size_t *textlen)
{
    const char *split = NULL, *sigs, *end = note + len;
    size_t klen = strlen(k->name);
    unsigned nsig = 0;
    bool good = false;

    *textlen = 0;
    /* Valid UTF-8, no control characters but newline. */
    for (size_t i = 0; i < len;) {
        uint32_t c;
        size_t l = utf8_decode((const uint8_t *)note + i, len - i, &c);
        if (l == 0 || (c < 0x20 && c != '\n'))
            return RV_EPARSE;
        i += l;
    }
    /* The signature block follows the last blank line. */
    for (size_t i = len; i >= 2; i--)
        if (note[i - 2] == '\n' && note[i - 1] == '\n') {
            split = note + i - 2;
            break;
        }
    if (split == NULL)
        return RV_EPARSE;
    sigs = split + 2;
    if (sigs == end || end[-1] != '\n')
        return RV_EPARSE;
    while (sigs < end) {
        const char *nl = memchr(sigs, '\n', (size_t)(end - sigs));
        const char *name, *sp, *b64;
        uint8_t sig[4 + crypto_sign_BYTES + 64];
        size_t siglen = 0;
        uint32_t id;

        if (nl - sigs < SIG_PREFIX_LEN || memcmp(sigs, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
            return RV_EPARSE;
        name = sigs + SIG_PREFIX_LEN;
        sp = memchr(name, ' ', (size_t)(nl - name));
        if (sp == NULL || !valid_name(name, (size_t)(sp - name)))
            return RV_EPARSE;
        b64 = sp + 1;
        if (b64_decode(b64, (size_t)(nl - b64), sig, sizeof(sig), &siglen) != 0 || siglen < 5)
            return RV_EPARSE;
        if (++nsig > MAX_SIGS)
            return RV_EPARSE;
        id = (uint32_t)sig[0] << 24 | (uint32_t)sig[1] << 16 | (uint32_t)sig[2] << 8 | sig[3];
        if ((size_t)(sp - name) == klen && memcmp(name, k->name, klen) == 0 && id == k->key_id) {
            if (siglen != 4 + crypto_sign_BYTES ||
                crypto_sign_verify_detached(sig + 4, (const uint8_t *)note,
                                            (size_t)(split - note) + 1, k->pub) != 0)
                return RV_EKEY;
            good = true;
        }
        sigs = nl + 1;
    }
    if (!good)
        return RV_EKEY;
    *textlen = (size_t)(split - note) + 1;
    return 0;
}

int rv_audit_checkpoint_open(const char *note, size_t len, const struct rv_audit_vkey *k,
                             struct rv_audit_checkpoint *out)
{
    size_t textlen = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = rv_audit_note_open(note, len, k, &textlen);
    if (rc != 0)
        return rc;
    rc = rv_audit_checkpoint_parse(note, textlen, out);
    if (rc != 0)
        return rc;
    if (strcmp(out->origin, k->name) != 0) {
        memset(out, 0, sizeof(*out));
        return RV_EKEY;
    }
    return 0;
}
