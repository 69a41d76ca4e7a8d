/*
 * testvault.h - a new vault in a fresh temporary folder, unsealed by a random key file and
 * created (with its audit log and principals) through the access gate, for the unit tests
 * of the access controls; and a bare vault, made by the vault module alone, for the tests of
 * the vault and the ingest below the gate. Header-only, as testutil.h, since each test is
 * one source file; it uses cmocka's assertions, so it comes after <cmocka.h>.
 */
#ifndef RV_TESTVAULT_H
#define RV_TESTVAULT_H

#include "policy/policy.h"
#include "testutil.h"
#include "vault/vault.h"

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

/* Makes /tmp/<prefix>-XXXXXX in dir (dirsz bytes) and a vault there by rv_vault_create
 * alone, without the gate's audit log or principals, unsealed by the 32-byte key file key
 * (borrowed) and planned for `expected` electors: for the tests of the vault and the ingest
 * below the gate. 0, or -1. Remove it with rv_test_rmtree(dir). */
static inline int rv_test_bare_vault_create(char *dir, size_t dirsz, const char *prefix,
                                            const uint8_t *key, uint64_t expected)
{
    struct rv_vault_secret s = {NULL, 0, key};

    if ((size_t)snprintf(dir, dirsz, "/tmp/%s-XXXXXX", prefix) >= dirsz || mkdtemp(dir) == NULL)
        return -1;
    return rv_vault_create(dir, &s, expected) == 0 ? 0 : -1;
}

/* Opens the vault made by rv_test_bare_vault_create (close with rv_vault_close); fails the
 * test if it cannot. */
static inline struct rv_vault *rv_test_bare_vault_open(const char *dir, const uint8_t *key)
{
    struct rv_vault *v = NULL;
    struct rv_vault_secret s = {NULL, 0, key};

    assert_int_equal(rv_vault_open(dir, &s, &v), 0);
    return v;
}

/* cmocka setup and teardown for tests whose whole state is one test vault: the setup makes
 * it (prefix and expected as for rv_test_vault_create) in memory of its own and sets *state
 * to it; the teardown removes and frees it. */
static inline int rv_test_vault_setup(void **state, const char *prefix, uint64_t expected)
{
    struct rv_test_vault *tv = calloc(1, sizeof(*tv));

    if (tv == NULL || rv_test_vault_create(tv, prefix, expected) != 0) {
        free(tv);
        return -1;
    }
    *state = tv;
    return 0;
}

static inline int rv_test_vault_teardown(void **state)
{
    rv_test_vault_remove(*state);
    free(*state);
    *state = NULL;
    return 0;
}

#endif /* RV_TESTVAULT_H */
