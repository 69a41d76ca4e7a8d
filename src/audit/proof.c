/*
 * proof.c - the JSON form of inclusion and consistency proofs.
 *
 * `regvault audit proof` and `audit consistency` print these so that an auditor can carry a
 * proof away and check it with any RFC 9162 verifier. The reader is strict (exact key set,
 * integer sizes, 32-byte standard-base64 hashes, at most RV_AUDIT_PROOF_MAX of them) because
 * proofs come from outside and have a fuzz target.
 */
#include "audit/audit.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static json_t *b64_json(const uint8_t h[32])
{
    char b64[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];

    sodium_bin2base64(b64, sizeof(b64), h, 32, sodium_base64_VARIANT_ORIGINAL);
    return json_string(b64);
}

int rv_audit_proof_to_json(const struct rv_audit_proof *p, char **out)
{
    json_t *o = json_object(), *arr = json_array();
    int rc = RV_ENOMEM;

    *out = NULL;
    if (o == NULL || arr == NULL || p->nhashes > RV_AUDIT_PROOF_MAX)
        goto out;
    for (size_t i = 0; i < p->nhashes; i++)
        if (json_array_append_new(arr, b64_json(p->hashes[i])) != 0)
            goto out;
    if (p->consistency) {
        if (json_object_set_new(o, "size1", json_integer((json_int_t)p->size1)) != 0 ||
            json_object_set_new(o, "size2", json_integer((json_int_t)p->size2)) != 0 ||
            json_object_set_new(o, "root1", b64_json(p->root1)) != 0 ||
            json_object_set_new(o, "root2", b64_json(p->root2)) != 0)
            goto out;
    } else {
        if (json_object_set_new(o, "leaf_index", json_integer((json_int_t)p->index)) != 0 ||
            json_object_set_new(o, "tree_size", json_integer((json_int_t)p->size2)) != 0 ||
            json_object_set_new(o, "leaf_hash", b64_json(p->leaf)) != 0 ||
            json_object_set_new(o, "root", b64_json(p->root2)) != 0)
            goto out;
    }
    if (json_object_set(o, "proof", arr) != 0)
        goto out;
    *out = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    if (*out != NULL)
        rc = 0;
out:
    json_decref(arr);
    json_decref(o);
    return rc;
}

static int get_size(json_t *o, const char *key, uint64_t *v)
{
    json_t *x = json_object_get(o, key);

    if (!json_is_integer(x) || json_integer_value(x) < 0)
        return RV_EPARSE;
    *v = (uint64_t)json_integer_value(x);
    return 0;
}

static int get_hash(json_t *x, uint8_t h[32])
{
    const char *s, *end = NULL;
    size_t n, len = 0;

    if (!json_is_string(x))
        return RV_EPARSE;
    s = json_string_value(x);
    n = json_string_length(x);
    if (n != 44 ||
        sodium_base642bin(h, 32, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        len != 32 || end != s + n)
        return RV_EPARSE;
    return 0;
}

int rv_audit_proof_from_json(const char *json, size_t len, struct rv_audit_proof *out)
{
    json_error_t err;
    json_t *o = NULL, *arr;
    int rc = RV_EPARSE;

    memset(out, 0, sizeof(*out));
    o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(o) || json_object_size(o) != 5)
        goto out;
    arr = json_object_get(o, "proof");
    if (!json_is_array(arr) || json_array_size(arr) > RV_AUDIT_PROOF_MAX)
        goto out;
    if (json_object_get(o, "size1") != NULL) {
        out->consistency = true;
        if (get_size(o, "size1", &out->size1) != 0 || get_size(o, "size2", &out->size2) != 0 ||
            get_hash(json_object_get(o, "root1"), out->root1) != 0 ||
            get_hash(json_object_get(o, "root2"), out->root2) != 0)
            goto out;
    } else {
        if (get_size(o, "leaf_index", &out->index) != 0 ||
            get_size(o, "tree_size", &out->size2) != 0 ||
            get_hash(json_object_get(o, "leaf_hash"), out->leaf) != 0 ||
            get_hash(json_object_get(o, "root"), out->root2) != 0)
            goto out;
    }
    for (size_t i = 0; i < json_array_size(arr); i++)
        if (get_hash(json_array_get(arr, i), out->hashes[i]) != 0)
            goto out;
    out->nhashes = json_array_size(arr);
    rc = 0;
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    json_decref(o);
    return rc;
}
