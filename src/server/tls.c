/*
 * tls.c - the development certificate: a self-signed ECDSA P-256 certificate for localhost
 * (SAN DNS:localhost and IP:127.0.0.1), made with GnuTLS's x509 API the first time
 * `regvault serve --dev` runs on a vault and kept in <vault>/dev-tls/ (folder 0700, files
 * 0600) for the next runs, so that a client can pin it with curl --cacert. Its SHA-256
 * fingerprint is returned for the operator to compare.
 *
 * Also the daemon's TLS policy (rv_server_tls_priorities): TLS 1.3 first, TLS 1.2 only with
 * an ephemeral elliptic-curve key exchange and an AEAD cipher (AES-GCM or ChaCha20-Poly1305);
 * no CBC suite (Lucky 13 and its kin), no static RSA key exchange (no forward secrecy), no
 * CCM, nothing older than TLS 1.2. The server's order wins.
 */
#include "server/inner.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int write_private(const char *path, const void *data, size_t len)
{
    char tmp[RV_SERVER_PATH_MAX + 64];
    int fd, rc = 0;
    const char *p = data;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    /* Never through a link planted in the folder: the daemon may run this as root. */
    (void)unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
        return RV_EIO;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = RV_EIO;
            break;
        }
        p += w;
        len -= (size_t)w;
    }
    if (rc == 0 && (fchmod(fd, 0600) != 0 || fsync(fd) != 0))
        rc = RV_EIO;
    if (close(fd) != 0)
        rc = RV_EIO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = RV_EIO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* Makes a new key and certificate as PEM. */
static int make_cert(char **cert_pem, char **key_pem)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
    unsigned char serial[16], ip[4] = {127, 0, 0, 1};
    time_t now = time(NULL);
    int rc = RV_ECRYPTO;

    randombytes_buf(serial, sizeof(serial));
    serial[0] &= 0x7f;
    if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_crt_init(&crt) < 0)
        goto out;
    if (gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        gnutls_x509_crt_set_version(crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, now - 3600) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, now + 365L * 86400) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_ORGANIZATION_NAME, 0,
                                      "regvault development", 20) < 0 ||
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, "localhost", 9,
                                             GNUTLS_FSAN_SET) < 0 ||
        gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND) <
            0 ||
        gnutls_x509_crt_set_basic_constraints(crt, 0, -1) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
        gnutls_x509_crt_set_key(crt, key) < 0 ||
        gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
        gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c) < 0 ||
        gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k) < 0)
        goto out;
    if ((*cert_pem = strndup((const char *)c.data, c.size)) == NULL ||
        (*key_pem = strndup((const char *)k.data, k.size)) == NULL) {
        free(*cert_pem);
        *cert_pem = NULL;
        rc = RV_ENOMEM;
        goto out;
    }
    rc = 0;
out:
    if (k.data != NULL) {
        sodium_memzero(k.data, k.size);
        gnutls_free(k.data);
    }
    gnutls_free(c.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return rc;
}

static int fingerprint(const char *cert_pem, char out[96])
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t d = {(unsigned char *)(uintptr_t)cert_pem, (unsigned)strlen(cert_pem)};
    unsigned char fp[32];
    size_t n = sizeof(fp);
    int rc = RV_EPARSE;

    if (gnutls_x509_crt_init(&crt) < 0)
        return RV_ECRYPTO;
    if (gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) >= 0 &&
        gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, fp, &n) >= 0 && n == 32) {
        for (size_t i = 0; i < 32; i++)
            snprintf(out + 3 * i, 4, "%02X%s", fp[i], i + 1 < 32 ? ":" : "");
        rc = 0;
    }
    gnutls_x509_crt_deinit(crt);
    return rc;
}

int rv_server_dev_cert(const char *vault, char **cert_pem, char **key_pem, char fp[96],
                       char *cert_path, size_t cert_path_sz, struct rv_diag *d)
{
    char dir[RV_SERVER_PATH_MAX + 16], kpath[RV_SERVER_PATH_MAX + 32];
    int rc;

    *cert_pem = *key_pem = NULL;
    snprintf(dir, sizeof(dir), "%s/dev-tls", vault);
    snprintf(cert_path, cert_path_sz, "%s/cert.pem", dir);
    snprintf(kpath, sizeof(kpath), "%s/key.pem", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rv_diag_set(d, dir, 0, 0, "cannot make the folder: %s", strerror(errno));
        return RV_EIO;
    }
    if (rv_server_read_file(cert_path, cert_pem, NULL) == 0 &&
        rv_server_read_file(kpath, key_pem, NULL) == 0 && fingerprint(*cert_pem, fp) == 0)
        return 0;
    free(*cert_pem);
    if (*key_pem != NULL) {
        sodium_memzero(*key_pem, strlen(*key_pem));
        free(*key_pem);
    }
    *cert_pem = *key_pem = NULL;
    if ((rc = make_cert(cert_pem, key_pem)) != 0) {
        rv_diag_set(d, dir, 0, 0, "cannot make a development certificate (%s)", rv_strerror(rc));
        return rc;
    }
    if ((rc = write_private(kpath, *key_pem, strlen(*key_pem))) != 0 ||
        (rc = write_private(cert_path, *cert_pem, strlen(*cert_pem))) != 0) {
        rv_diag_set(d, dir, 0, 0, "cannot write the development certificate: %s", strerror(errno));
        goto bad;
    }
    if ((rc = fingerprint(*cert_pem, fp)) != 0) {
        rv_diag_set(d, cert_path, 0, 0, "the new certificate cannot be read back");
        goto bad;
    }
    return 0;
bad:
    free(*cert_pem);
    sodium_memzero(*key_pem, strlen(*key_pem));
    free(*key_pem);
    *cert_pem = *key_pem = NULL;
    return rc;
}

const char *rv_server_tls_priorities(void)
{
    return "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"
           "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE";
}
