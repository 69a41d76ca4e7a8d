/*
 * honeytoken.c - decoy credentials: a user name, password, TOTP secret and API token that
 * belong to nobody, written out as a realistic credentials file to be left where an
 * intruder would look (a file share, a mailbox, a wiki page). Any use of the user name or
 * the password at login (with any user name, whatever the lockouts of the name or the
 * address), or of the token as a bearer token, raises a high-severity "honeytoken" alert
 * with the client's address, and is answered exactly as any bad credential.
 *
 * The decoy user name looks like the vault's other accounts: a service account
 * ("svc-finance-sync") or a person's login ("jthompson", "sarah.khan"), drawn from the
 * generator's name lists, never equal to an existing principal or decoy. The token has the
 * daemon's bearer-token shape ("rvs_" and 43 base64url characters, 256 random bits).
 *
 * Storage, in the gate's store (<vault>/gate) under the policy module's tag 0x82:
 *     0x82 || kind || H(kind, value)  ->  0x01 || nonce(24) || XChaCha20-Poly1305(payload)
 * where kind is 'u' (user name), 'p' (password) or 't' (token), H is BLAKE2b-256 keyed with
 * the vault's policy subkey over "regvault honeytoken" || kind || value, the payload is
 * "label NUL decoy-user" sealed under a key derived from the same subkey with the store key
 * as additional data. Without the vault's keys nothing on disk says which names or tokens
 * are decoys, nor where they were planted; the audit entry of the creation holds only the
 * first 8 bytes of the token's keyed hash, never the label, so a reader of the log cannot
 * learn where the decoys lie either. The label appears only in the alert, once a decoy has
 * been used.
 */
#include "policy/inner.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HONEY_TAG   0x82
#define LABEL_MAX   128
#define TOKEN_BYTES 32
#define TOKEN_LEN   (4 + 43)

static const char *const DEPTS[] = {"finance", "payroll", "reports", "backup",    "compliance",
                                    "regs",    "elect",   "audit",   "donations", "records",
                                    "ero",     "canvass", "gis",     "data",      "bi"};
static const char *const JOBS[] = {"sync",   "export", "backup", "reader", "etl",
                                   "report", "upload", "batch",  "svc",    "integration"};

/* The keyed hash of a value of one kind, and its store key. */
static int honey_key(const uint8_t *sub, char kind, const char *value, uint8_t key[34])
{
    crypto_generichash_state st;
    const char dom[] = "regvault honeytoken";

    key[0] = HONEY_TAG;
    key[1] = (uint8_t)kind;
    if (crypto_generichash_init(&st, sub, 32, 32) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)dom, sizeof(dom)) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)&kind, 1) != 0 ||
        crypto_generichash_update(&st, (const uint8_t *)value, strlen(value)) != 0 ||
        crypto_generichash_final(&st, key + 2, 32) != 0)
        return RV_ECRYPTO;
    return 0;
}

/* The sealing key for payloads, derived from the policy subkey. */
static int seal_key(const uint8_t *sub, uint8_t out[32])
{
    const char dom[] = "regvault honeytoken seal";
    return crypto_generichash(out, 32, (const uint8_t *)dom, sizeof(dom), sub, 32) == 0
               ? 0
               : RV_ECRYPTO;
}

static int get_subkey(struct rv_gate *g, uint8_t **out)
{
    uint8_t *k = sodium_malloc(32);
    int rc;

    *out = NULL;
    if (k == NULL)
        return RV_ENOMEM;
    if ((rc = rv_vault_subkey(g->sh->vault, RV_SUBKEY_POLICY, k)) != 0) {
        sodium_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* Looks up a decoy of the given kind; on a hit fills label and user (from the payload) and
 * returns 1, else 0, or an RV_E* code. */
static int honey_find(struct rv_gate *g, const uint8_t *sub, char kind, const char *value,
                      char *label, size_t labelsz, char *user, size_t usersz)
{
    uint8_t key[34], sk[32], plain[LABEL_MAX + RV_PRINCIPAL_NAME_MAX + 2];
    unsigned long long plen = 0;
    struct rv_txn *t = NULL;
    const void *val;
    size_t vlen;
    int rc;

    if ((rc = honey_key(sub, kind, value, key)) != 0)
        return rc;
    if ((rc = rv_store_begin(g->sh->state, false, &t)) != 0)
        return rc;
    rc = rv_store_get(t, key, sizeof(key), &val, &vlen);
    if (rc == RV_ENOTFOUND) {
        rc = 0;
        goto out;
    }
    if (rc != 0)
        goto out;
    if (label == NULL) {
        rc = 1;
        goto out;
    }
    if (vlen < 1 + 24 + 16 || vlen > 1 + 24 + 16 + sizeof(plain) ||
        ((const uint8_t *)val)[0] != 1 || (rc = seal_key(sub, sk)) != 0 ||
        crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, (const uint8_t *)val + 25,
                                                   vlen - 25, key, sizeof(key),
                                                   (const uint8_t *)val + 1, sk) != 0) {
        rc = rc != 0 ? rc : RV_ECORRUPT;
        goto out;
    }
    plain[plen < sizeof(plain) ? plen : sizeof(plain) - 1] = '\0';
    if (snprintf(label, labelsz, "%s", (const char *)plain) < 0)
        label[0] = '\0';
    {
        size_t l = strlen((const char *)plain);
        /* A longer stored name is cut to usersz: a label for an alert, never compared. */
        if (snprintf(user, usersz, "%s", l + 1 < plen ? (const char *)plain + l + 1 : "-") < 0)
            user[0] = '\0';
    }
    rc = 1;
out:
    rv_store_abort(t);
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

static int honey_put(struct rv_txn *t, const uint8_t *sub, char kind, const char *value,
                     const char *label, const char *user)
{
    uint8_t key[34], sk[32], plain[LABEL_MAX + RV_PRINCIPAL_NAME_MAX + 2];
    uint8_t val[1 + 24 + sizeof(plain) + 16];
    unsigned long long clen = 0;
    size_t ll = strlen(label), ul = strlen(user);
    int rc;

    if (ll + ul + 2 > sizeof(plain))
        return RV_ETOOBIG;
    memcpy(plain, label, ll + 1);
    memcpy(plain + ll + 1, user, ul + 1);
    if ((rc = honey_key(sub, kind, value, key)) != 0 || (rc = seal_key(sub, sk)) != 0)
        goto out;
    val[0] = 1;
    randombytes_buf(val + 1, 24);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(val + 25, &clen, plain, ll + ul + 2, key,
                                                   sizeof(key), NULL, val + 1, sk) != 0) {
        rc = RV_ECRYPTO;
        goto out;
    }
    rc = rv_store_put(t, key, sizeof(key), val, 25 + (size_t)clen);
out:
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Making decoys.
 */

static uint32_t rnd(uint32_t n)
{
    return randombytes_uniform(n);
}

/* A random line (after the header) of a data/names list, lower-cased, letters only. */
static int pick_listed(const char *file, char *out, size_t outsz)
{
    const struct rv_blob *b = rv_data_find(file);
    size_t lines = 0, want, o = 0;
    const char *p;

    if (b == NULL)
        return RV_ENOTFOUND;
    for (size_t i = 0; i < b->len; i++)
        lines += b->data[i] == '\n';
    if (lines < 2)
        return RV_ENOTFOUND;
    want = 1 + rnd((uint32_t)(lines - 1));
    p = b->data;
    for (size_t n = 0; n < want && p != NULL; n++) {
        p = memchr(p, '\n', b->len - (size_t)(p - b->data));
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        return RV_ENOTFOUND;
    for (; p < b->data + b->len && *p != '\n' && *p != ',' && o + 1 < outsz; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
            out[o++] = (char)(*p | 0x20);
    out[o] = '\0';
    return o >= 2 ? 0 : RV_ENOTFOUND;
}

static int make_user(char *out, size_t outsz)
{
    char first[64], sur[64];
    int rc;

    switch (rnd(4)) {
    case 0:
    case 1:
        snprintf(out, outsz, "svc-%s-%s", DEPTS[rnd(sizeof(DEPTS) / sizeof(DEPTS[0]))],
                 JOBS[rnd(sizeof(JOBS) / sizeof(JOBS[0]))]);
        return 0;
    default:
        if ((rc =
                 pick_listed(rnd(2) ? "names/first_names_female.csv" : "names/first_names_male.csv",
                             first, sizeof(first))) != 0 ||
            (rc = pick_listed("names/surnames.csv", sur, sizeof(sur))) != 0)
            return rc;
        if (rnd(2) == 0)
            snprintf(out, outsz, "%c%.40s", first[0], sur);
        else
            snprintf(out, outsz, "%.20s.%.40s", first, sur);
        return 0;
    }
}

/* 1 when name is taken by a principal or a decoy, 0 when free. */
static int user_taken(struct rv_gate *g, const uint8_t *sub, const char *name)
{
    struct rv_principal p;
    int rc = rv_policy_user_get(g, name, &p);
    if (rc == 0)
        return 1;
    if (rc != RV_ENOTFOUND)
        return rc;
    return honey_find(g, sub, 'u', name, NULL, 0, NULL, 0);
}

/* A password like those a service desk hands out: two words, digits and a sign. */
static void make_password(char *out, size_t outsz)
{
    static const char *const W[] = {"Harbour", "Lantern", "Maple",  "Orchid", "Falcon",  "Granite",
                                    "Meadow",  "Copper",  "Willow", "Summit", "Thistle", "Bramble",
                                    "Cobalt",  "Juniper", "Pebble", "Saffron"};
    static const char S[] = "!#$%*?@";
    snprintf(out, outsz, "%s%s%04u%c", W[rnd(16)], W[rnd(16)], rnd(10000), S[rnd(7)]);
}

static void make_totp_secret(char out[33])
{
    static const char B32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    uint8_t r[32];

    randombytes_buf(r, sizeof(r));
    for (int i = 0; i < 32; i++)
        out[i] = B32[r[i] & 31];
    out[32] = '\0';
    sodium_memzero(r, sizeof(r));
}

static void make_token(char out[TOKEN_LEN + 1])
{
    uint8_t r[TOKEN_BYTES];
    char b64[64];

    randombytes_buf(r, sizeof(r));
    sodium_bin2base64(b64, sizeof(b64), r, sizeof(r), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    memcpy(out, "rvs_", 4);
    memcpy(out + 4, b64, TOKEN_LEN - 4);
    out[TOKEN_LEN] = '\0';
    sodium_memzero(r, sizeof(r));
    sodium_memzero(b64, sizeof(b64));
}

static bool label_ok(const char *label)
{
    size_t n = strlen(label);
    if (n == 0 || n > LABEL_MAX || !rv_utf8_valid(label, n))
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)label[i] < 0x20 || label[i] == 0x7f)
            return false;
    return true;
}

static bool url_ok(const char *url)
{
    size_t n = strlen(url);
    if (n == 0 || n > 512)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)url[i] <= 0x20 || url[i] == 0x7f || url[i] == '"' || url[i] == '\\')
            return false;
    return true;
}

static char *render(enum rv_honeytoken_format f, const char *url, const char *user, const char *pw,
                    const char *totp, const char *token, const char *day)
{
    char *s = NULL;
    int n;

    switch (f) {
    case RV_HONEYTOKEN_JSON:
        n = asprintf(&s,
                     "{\n  \"regvault\": {\n    \"url\": \"%s\",\n    \"user\": \"%s\",\n"
                     "    \"password\": \"%s\",\n    \"totp_secret\": \"%s\",\n"
                     "    \"token\": \"%s\",\n    \"issued\": \"%s\",\n"
                     "    \"note\": \"service account; rotate every 90 days\"\n  }\n}\n",
                     url, user, pw, totp, token, day);
        break;
    case RV_HONEYTOKEN_INI:
        n = asprintf(&s,
                     "; regvault API credentials - %s\n; issued %s by the IT service desk. Do "
                     "not share; rotate every 90 days.\n\n[regvault]\nurl = %s\nuser = %s\n"
                     "password = %s\ntotp_secret = %s\ntoken = %s\n",
                     user, day, url, user, pw, totp, token);
        break;
    default:
        n = asprintf(&s,
                     "# regvault API credentials for %s\n# Issued %s by the IT service desk. "
                     "Do not share or commit; rotate every 90 days.\n# Load with: set -a; . "
                     "./regvault.env; set +a\nREGVAULT_URL=%s\nREGVAULT_USER=%s\n"
                     "REGVAULT_PASSWORD=%s\nREGVAULT_TOTP_SECRET=%s\nREGVAULT_TOKEN=%s\n",
                     user, day, url, user, pw, totp, token);
        break;
    }
    return n < 0 ? NULL : s;
}

int rv_policy_honeytoken_create(struct rv_gate *g, const char *label,
                                enum rv_honeytoken_format format, const char *url, char **text)
{
    char user[RV_PRINCIPAL_NAME_MAX], pw[64], totp[33], token[TOKEN_LEN + 1], day[11];
    char params[96], outcome[96], hex[17];
    uint8_t *sub = NULL, tkey[34];
    struct rv_txn *t = NULL;
    const char *fname = format == RV_HONEYTOKEN_JSON  ? "json"
                        : format == RV_HONEYTOKEN_INI ? "ini"
                                                      : "env";
    int rc, taken = 1;

    *text = NULL;
    snprintf(params, sizeof(params), "format=%s", fname);
    if ((rc = rv_gate_authorise(g, RV_ACT_HONEYTOKEN, params)) != 0)
        return rc;
    if ((unsigned)format > RV_HONEYTOKEN_INI || !label_ok(label) || !url_ok(url)) {
        rc = RV_EINVAL;
        goto record;
    }
    if ((rc = get_subkey(g, &sub)) != 0)
        goto record;
    for (int tries = 0; tries < 32 && taken == 1; tries++) {
        if ((rc = make_user(user, sizeof(user))) != 0)
            goto record;
        if ((taken = user_taken(g, sub, user)) < 0) {
            rc = taken;
            goto record;
        }
    }
    if (taken != 0) {
        rc = RV_EEXIST;
        goto record;
    }
    make_password(pw, sizeof(pw));
    make_totp_secret(totp);
    make_token(token);
    if ((rc = honey_key(sub, 't', token, tkey)) != 0)
        goto record;
    sodium_bin2hex(hex, sizeof(hex), tkey + 2, 8);
    snprintf(params, sizeof(params), "format=%s id=%s", fname, hex);
    /* Recorded before the decoy exists, as every action is. */
    if ((rc = rv_policy_record(g, RV_ACT_HONEYTOKEN, params, "started", NULL, 0)) != 0)
        goto out;
    if ((rc = rv_store_begin(g->sh->state, true, &t)) != 0)
        goto record;
    if ((rc = honey_put(t, sub, 'u', user, label, user)) != 0 ||
        (rc = honey_put(t, sub, 'p', pw, label, user)) != 0 ||
        (rc = honey_put(t, sub, 't', token, label, user)) != 0) {
        rv_store_abort(t);
        goto record;
    }
    if ((rc = rv_store_commit(t)) != 0)
        goto record;
    rv_date_format(rv_date_today(), day);
    if ((*text = render(format, url, user, pw, totp, token, day)) == NULL)
        rc = RV_ENOMEM;
record:
    if (rc != 0)
        snprintf(outcome, sizeof(outcome), "error: %s", rv_strerror(rc));
    else
        snprintf(outcome, sizeof(outcome), "ok");
    {
        int rc2 = rv_policy_record(g, RV_ACT_HONEYTOKEN, params, outcome, NULL, 0);
        if (rc == 0 && rc2 != 0) {
            rc = rc2;
            if (*text != NULL) {
                sodium_memzero(*text, strlen(*text));
                free(*text);
                *text = NULL;
            }
        }
    }
out:
    sodium_memzero(pw, sizeof(pw));
    sodium_memzero(totp, sizeof(totp));
    sodium_memzero(token, sizeof(token));
    sodium_memzero(user, sizeof(user));
    sodium_free(sub);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Use.
 */

static int honey_use(struct rv_gate *g, char kind, const char *value, const char *client,
                     const char *how)
{
    char label[LABEL_MAX + 1], user[RV_PRINCIPAL_NAME_MAX], detail[320];
    uint8_t *sub = NULL;
    int rc;

    if ((rc = get_subkey(g, &sub)) != 0)
        return rc;
    rc = honey_find(g, sub, kind, value, label, sizeof(label), user, sizeof(user));
    sodium_free(sub);
    if (rc == 1) {
        struct rv_alert a = {.severity = RV_ALERT_HIGH,
                             .kind = "honeytoken",
                             .principal = user,
                             .client = client,
                             .detail = detail};
        snprintf(detail, sizeof(detail), "decoy credential \"%s\" used: %s", label, how);
        rc = rv_policy_alert(g, &a);
        rc = rc != 0 ? rc : 1;
    }
    sodium_memzero(label, sizeof(label));
    return rc;
}

int rv_honeytoken_login(struct rv_gate *g, const char *user, const char *client)
{
    size_t n = strnlen(user, RV_PRINCIPAL_NAME_MAX);

    if (n == 0 || n >= RV_PRINCIPAL_NAME_MAX)
        return 0;
    return honey_use(g, 'u', user, client, "its user name was given at login");
}

int rv_policy_honeytoken_login(struct rv_gate *g, const char *user, const char *password,
                               const char *client)
{
    size_t n = strnlen(password, LABEL_MAX + 1);
    int rc = rv_honeytoken_login(g, user, client);

    /* The decoy password is as much a decoy as its user name: given with any name (a real
     * one, to try it elsewhere), it is the intruder. One alert per attempt. */
    if (rc == 0 && n > 0 && n <= LABEL_MAX)
        rc = honey_use(g, 'p', password, client, "its password was given at login");
    return rc;
}

int rv_honeytoken_is_name(struct rv_gate *g, const char *user)
{
    uint8_t *sub = NULL;
    int rc;

    if (strnlen(user, RV_PRINCIPAL_NAME_MAX) >= RV_PRINCIPAL_NAME_MAX)
        return 0;
    if ((rc = get_subkey(g, &sub)) != 0)
        return rc;
    rc = honey_find(g, sub, 'u', user, NULL, 0, NULL, 0);
    sodium_free(sub);
    return rc;
}

int rv_policy_honeytoken_token(struct rv_gate *g, const char *token, const char *client)
{
    if (strnlen(token, TOKEN_LEN + 1) != TOKEN_LEN || strncmp(token, "rvs_", 4) != 0)
        return 0;
    return honey_use(g, 't', token, client, "its API token was presented");
}
