#!/usr/bin/env bash
# serve_tls.sh - the real daemon refuses TLS 1.2 CBC suites, static RSA key exchange and TLS
# 1.1, and accepts TLS 1.3 and TLS 1.2 with ECDHE and AES-GCM or ChaCha20-Poly1305 (openssl
# s_client against `regvault serve --dev`). Each refusal is shown to be the suite's: the
# same client with an allowed suite gets through.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init tls
command -v openssl >/dev/null || fail "openssl is not installed"

serve_vault 200 1 5
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} alert_syslog=no "alert_file=$work/alerts.log"
serve_start

# hello ARGS...: 0 when a handshake with these s_client options completes.
hello() {
    timeout 20 openssl s_client -connect "127.0.0.1:$serve_port" -CAfile "$serve_ca" \
        -servername localhost "$@" </dev/null >"$work/s_client.out" 2>&1 &&
        grep -Eq "Cipher is [A-Z]" "$work/s_client.out" &&
        ! grep -q "Cipher is (NONE)" "$work/s_client.out"
}

refused=0
for cbc in ECDHE-ECDSA-AES128-SHA ECDHE-ECDSA-AES256-SHA ECDHE-ECDSA-AES128-SHA256 \
    ECDHE-ECDSA-AES256-SHA384; do
    if hello -tls1_2 -cipher "$cbc"; then
        fail "the daemon accepted TLS 1.2 with the CBC suite $cbc"
    fi
    refused=$((refused + 1))
done
if hello -tls1_2 -cipher "AES128-GCM-SHA256:AES256-GCM-SHA384"; then
    fail "the daemon accepted TLS 1.2 with static RSA key exchange"
fi
if hello -tls1_1 -cipher "ALL:@SECLEVEL=0"; then
    fail "the daemon accepted TLS 1.1"
fi
hello -tls1_3 || fail "a TLS 1.3 client was refused"
grep -q "TLSv1.3" "$work/s_client.out" || fail "TLS 1.3 was not the version agreed"
hello -tls1_2 -cipher ECDHE-ECDSA-AES128-GCM-SHA256 || fail "TLS 1.2 ECDHE-ECDSA-AES128-GCM was refused"
hello -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305 || fail "TLS 1.2 ECDHE-ECDSA-CHACHA20 was refused"
hello || fail "a default client was refused"
grep -q "TLSv1.3" "$work/s_client.out" || fail "a default client did not get TLS 1.3"
serve_alive "after the handshakes"
serve_stop
echo "serve_tls: $refused CBC suites, static RSA and TLS 1.1 refused; TLS 1.3 and 1.2 ECDHE-AEAD accepted"
