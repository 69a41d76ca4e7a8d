/*
 * testvault.h - a new vault in a fresh temporary folder, unsealed by a random key file and
 * created (with its audit log and principals) through the access gate, for the unit tests
 * of the access controls. Header-only, as testutil.h, since each test is one source file.
 */
#ifndef RV_TESTVAULT_H
#define RV_TESTVAULT_H

#include "policy/policy.h"
#include "testutil.h"

#include <sodium.h>

struct rv_test_vault {
    char *tmp;     /* the temporary folder (malloc'd) */
    char dir[512]; /* the vault, <tmp>/vault */
    uint8_t *key;  /* the key file's 32 bytes, sodium memory */
    struct rv_vault_secret secret;
};

/* Makes /tmp/<prefix>-XXXXXX/vault, planned for `expected` electors, with "tester" as its
 * first admin. 0, or -1 with whatever was made removed. */
static inline int rv_test_vault_create(struct rv_test_vault *tv, const char *prefix,
                                       uint64_t expected)
{
    struct rv_actor admin = {"tester", "admin", "local"};

    memset(tv, 0, sizeof(*tv));
    if (sodium_init() < 0 || (tv->tmp = rv_test_tmpdir(prefix)) == NULL ||
        (tv->key = sodium_malloc(32)) == NULL)
        goto fail;
    snprintf(tv->dir, sizeof(tv->dir), "%s/vault", tv->tmp);
    randombytes_buf(tv->key, 32);
    tv->secret.keyfile = tv->key;
    if (rv_policy_create(tv->dir, &tv->secret, expected, &admin) != 0)
        goto fail;
    return 0;
fail:
    if (tv->tmp != NULL)
        rv_test_rmtree(tv->tmp);
    free(tv->tmp);
    sodium_free(tv->key);
    memset(tv, 0, sizeof(*tv));
    return -1;
}

/* Removes the folder and frees the key. */
static inline void rv_test_vault_remove(struct rv_test_vault *tv)
{
    if (tv->tmp != NULL)
        rv_test_rmtree(tv->tmp);
    free(tv->tmp);
    sodium_free(tv->key);
    memset(tv, 0, sizeof(*tv));
}

#endif /* RV_TESTVAULT_H */
