/*
 * test_server_tls.c - the daemon's TLS policy (rv_server_tls_priorities): every suite it
 * allows is AEAD (AES-GCM or ChaCha20-Poly1305), TLS 1.2 suites only with ECDHE, versions
 * TLS 1.3 then 1.2 and nothing else; and real handshakes over a socket pair against a server
 * with the policy and the development certificate: a client offering only TLS 1.2 CBC suites
 * (or only static RSA key exchange, or only TLS 1.1) is refused, while TLS 1.3 and TLS 1.2
 * ECDHE-GCM clients get through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "testutil.h"

#include "server/inner.h"

#include <gnutls/gnutls.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_policy_suites(void **state)
{
    gnutls_priority_t p;
    const char *err = NULL;
    const unsigned *protos;
    unsigned sidx, n12 = 0, n13 = 0;
    int n;
    (void)state;

    assert_int_equal(gnutls_priority_init(&p, rv_server_tls_priorities(), &err), 0);
    for (unsigned i = 0;; i++) {
        unsigned char id[2];
        gnutls_kx_algorithm_t kx;
        gnutls_cipher_algorithm_t c;
        gnutls_mac_algorithm_t m;
        gnutls_protocol_t v;
        int rc = gnutls_priority_get_cipher_suite_index(p, i, &sidx);
        if (rc == GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
            break;
        if (rc != 0)
            continue;
        assert_non_null(gnutls_cipher_suite_info(sidx, id, &kx, &c, &m, &v));
        assert_true(c == GNUTLS_CIPHER_AES_128_GCM || c == GNUTLS_CIPHER_AES_256_GCM ||
                    c == GNUTLS_CIPHER_CHACHA20_POLY1305);
        assert_int_equal(m, GNUTLS_MAC_AEAD);
        if (v == GNUTLS_TLS1_3) {
            n13++;
        } else {
            assert_int_equal(v, GNUTLS_TLS1_2);
            assert_true(kx == GNUTLS_KX_ECDHE_ECDSA || kx == GNUTLS_KX_ECDHE_RSA);
            n12++;
        }
    }
    assert_true(n13 >= 2);
    assert_true(n12 >= 2);
    n = gnutls_priority_protocol_list(p, &protos);
    assert_int_equal(n, 2);
    assert_int_equal(protos[0], GNUTLS_TLS1_3);
    assert_int_equal(protos[1], GNUTLS_TLS1_2);
    gnutls_priority_deinit(p);
}

/* ---- handshakes over a socket pair -------------------------------------------------- */
struct side {
    int fd;
    const char *priorities; /* the client's; the server uses the daemon's */
    gnutls_certificate_credentials_t cred;
    int rc;
    gnutls_protocol_t version;
};

static void *server_side(void *arg)
{
    struct side *s = arg;
    gnutls_session_t ses;
    const char *err = NULL;

    gnutls_init(&ses, GNUTLS_SERVER);
    s->rc = gnutls_priority_set_direct(ses, rv_server_tls_priorities(), &err);
    if (s->rc == 0)
        s->rc = gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, s->cred);
    gnutls_transport_set_int(ses, s->fd);
    gnutls_handshake_set_timeout(ses, 20000);
    if (s->rc == 0)
        do
            s->rc = gnutls_handshake(ses);
        while (s->rc < 0 && gnutls_error_is_fatal(s->rc) == 0);
    if (s->rc == 0)
        gnutls_bye(ses, GNUTLS_SHUT_WR);
    gnutls_deinit(ses);
    shutdown(s->fd, SHUT_RDWR);
    return NULL;
}

/* Handshakes a client with priorities against the daemon's policy; 0 when it succeeds. */
static int handshake(gnutls_certificate_credentials_t srv_cred, const char *priorities,
                     gnutls_protocol_t *version)
{
    int sv[2];
    pthread_t th;
    struct side srv = {0};
    gnutls_session_t ses;
    gnutls_certificate_credentials_t cc;
    const char *err = NULL;
    int rc;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    srv.fd = sv[0];
    srv.cred = srv_cred;
    assert_int_equal(pthread_create(&th, NULL, server_side, &srv), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&cc), 0);
    gnutls_init(&ses, GNUTLS_CLIENT);
    rc = gnutls_priority_set_direct(ses, priorities, &err);
    assert_int_equal(rc, 0);
    gnutls_credentials_set(ses, GNUTLS_CRD_CERTIFICATE, cc);
    gnutls_transport_set_int(ses, sv[1]);
    gnutls_handshake_set_timeout(ses, 20000);
    do
        rc = gnutls_handshake(ses);
    while (rc < 0 && gnutls_error_is_fatal(rc) == 0);
    if (rc == 0)
        *version = gnutls_protocol_get_version(ses);
    shutdown(sv[1], SHUT_RDWR);
    pthread_join(th, NULL);
    gnutls_deinit(ses);
    gnutls_certificate_free_credentials(cc);
    close(sv[0]);
    close(sv[1]);
    return rc == 0 && srv.rc == 0 ? 0 : -1;
}

static void test_handshakes(void **state)
{
    char *dir = rv_test_tmpdir("rv-tls"), *cert = NULL, *key = NULL, fp[96], path[1024];
    gnutls_certificate_credentials_t cred;
    gnutls_datum_t c, k;
    gnutls_protocol_t v = GNUTLS_VERSION_UNKNOWN;
    struct rv_diag d;
    (void)state;

    assert_non_null(dir);
    assert_int_equal(rv_server_dev_cert(dir, &cert, &key, fp, path, sizeof(path), &d), 0);
    c.data = (unsigned char *)cert;
    c.size = (unsigned)strlen(cert);
    k.data = (unsigned char *)key;
    k.size = (unsigned)strlen(key);
    assert_int_equal(gnutls_certificate_allocate_credentials(&cred), 0);
    assert_int_equal(gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM), 0);

    /* Refused: TLS 1.2 with CBC only (with SHA-1 or SHA-256 MACs), static RSA key exchange,
     * CCM, and TLS 1.1. */
    assert_int_not_equal(
        handshake(cred,
                  "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC:"
                  "-MAC-ALL:+SHA1:+SHA256:+SHA384",
                  &v),
        0);
    assert_int_not_equal(handshake(cred,
                                   "NORMAL:-VERS-ALL:+VERS-TLS1.2:-KX-ALL:+RSA:-CIPHER-ALL:"
                                   "+AES-128-GCM:+AES-256-GCM",
                                   &v),
                         0);
    assert_int_not_equal(
        handshake(cred, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-CCM:+AES-256-CCM", &v),
        0);
    assert_int_not_equal(handshake(cred, "NORMAL:-VERS-ALL:+VERS-TLS1.1", &v), 0);
    /* Accepted: TLS 1.3 (preferred), and TLS 1.2 with ECDHE and GCM or ChaCha20-Poly1305. */
    assert_int_equal(handshake(cred, "NORMAL", &v), 0);
    assert_int_equal(v, GNUTLS_TLS1_3);
    assert_int_equal(handshake(cred, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM", &v),
                     0);
    assert_int_equal(v, GNUTLS_TLS1_2);
    assert_int_equal(
        handshake(cred, "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+CHACHA20-POLY1305", &v), 0);

    gnutls_certificate_free_credentials(cred);
    sodium_memzero(key, strlen(key));
    free(key);
    free(cert);
    rv_test_rmtree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_suites),
        cmocka_unit_test(test_handshakes),
    };
    /* A refused handshake closes its end: writes to it must fail, not kill the test. */
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0 || gnutls_global_init() != 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
