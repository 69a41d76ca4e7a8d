#!/usr/bin/env bash
# End-to-end smoke test of `regvault serve`: a vault with a synthetic register and a checker
# made with `regvault user add`; the daemon started in development mode on a free port;
# /healthz over TLS pinned with --cacert; login with an oathtool code, the first-login
# password change, one check, logout (the token is then refused); SIGTERM stops the daemon
# with exit 0, and `regvault audit verify` passes on the log it leaves. Also: --check-config
# on the sample config and on a bad one, and no donor's name in the daemon's output.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
src=${RV_SOURCE_DIR:-$(dirname "$0")/../..}
serve_init e2e-serve
command -v jq >/dev/null || fail "jq is not installed"

# Settings: the sample config is good; an out-of-bounds value is refused with FILE:LINE, exit 3.
"$rv" serve --check-config --config "$src/etc/regvault.conf" 2>/dev/null ||
    fail "the sample config does not check"
printf 'vault = %s\ndev = yes\nthreads = 99999\n' "$work/v" >"$work/bad.conf"
set +e
msg=$("$rv" serve --check-config --config "$work/bad.conf" 2>&1)
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "--check-config on a bad file exited $rc, not 3"
echo "$msg" | grep -q "bad.conf:3: threads" || fail "no FILE:LINE in: $msg"

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors 2000 --areas 1 --months 1 --donations 50 --seed 5 --out "$work/s" >/dev/null
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors 2000 >/dev/null 2>&1
"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/s" >/dev/null 2>&1
"$rv" user --vault "$work/v" --key-file "$work/key" add smoke-checker --role checker --json \
    >"$work/checker.json" 2>/dev/null || fail "regvault user add failed"
password=$(jq -r .password "$work/checker.json")
secret=$(jq -r .totp_uri "$work/checker.json" | sed 's/.*secret=\([A-Z2-7]*\).*/\1/')

# A donor from the register, written as a donor would.
area=$(ls "$work/s" | grep -v csv | head -1)
line=$(awk -F, 'NR > 1 && $4 == "" && $6 ~ /^"/ {print; exit}' "$work/s/$area/full-2025-12-01.csv")
surname=$(echo "$line" | awk -F, '{gsub(/"/, "", $6); print $6}')
forenames=$(echo "$line" | awk -F, '{gsub(/"/, "", $7); sub(/^ /, "", $7); print $7}')
postcode=$(echo "$line" | awk -F, '{print $8}')

serve_start
grep -q "SHA-256 fingerprint" "$work/serve.err" || fail "no certificate fingerprint printed"
ca=$work/v/dev-tls/cert.pem
[ "$(stat -c %a "$ca")" = 600 ] || fail "the development certificate is not mode 0600"
[ "$(stat -c %a "$work/v/dev-tls/key.pem")" = 600 ] || fail "the development key is not mode 0600"
url=https://127.0.0.1:$serve_port
c() { curl -sS --cacert "$ca" -o "$work/body" -w '%{http_code}' "$@"; }

[ "$(c "$url/healthz")" = 200 ] || fail "/healthz"
jq -e '.status == "ok"' "$work/body" >/dev/null || fail "/healthz body"
# TLS 1.1 is refused.
if curl -sS --cacert "$ca" --tls-max 1.1 "$url/healthz" >/dev/null 2>&1; then
    fail "TLS 1.1 accepted"
fi
[ "$(c -X POST "$url/v1/checks" -H 'Content-Type: application/json' -d '{}')" = 401 ] ||
    fail "a check without a token was not 401"

# Log in (a code for the current step, not near its end), change the issued password.
while [ $(($(date +%s) % 30)) -gt 25 ]; do sleep 1; done
code=$(oathtool --totp -b "$secret")
jq -n --arg u smoke-checker --arg p "$password" --arg t "$code" \
    '{user: $u, password: $p, totp: $t}' >"$work/login.json"
[ "$(c -X POST "$url/v1/session" -H 'Content-Type: application/json' -d @"$work/login.json")" = 201 ] ||
    fail "login: $(cat "$work/body")"
token=$(jq -r .token "$work/body")
jq -e '.must_change == true and .idle_timeout == 900' "$work/body" >/dev/null || fail "login body"
auth="Authorization: Bearer $token"
jq -n --arg n "$forenames $surname" --arg p "$postcode" \
    '{name: $n, postcode: $p, date: "2026-01-10"}' >"$work/donor.json"
[ "$(c -X POST "$url/v1/checks" -H "$auth" -H 'Content-Type: application/json' -d @"$work/donor.json")" = 403 ] ||
    fail "a check before the password change was not 403"
jq -e '.error == "password_change_required"' "$work/body" >/dev/null || fail "403 body"
jq -n --arg o "$password" '{password: $o, new_password: "Smoke-Test-Passphrase-2026"}' >"$work/pw.json"
[ "$(c -X POST "$url/v1/session/password" -H "$auth" -H 'Content-Type: application/json' -d @"$work/pw.json")" = 204 ] ||
    fail "password change: $(cat "$work/body")"

# One check.
[ "$(c -X POST "$url/v1/checks" -H "$auth" -H 'Content-Type: application/json' -d @"$work/donor.json")" = 200 ] ||
    fail "check: $(cat "$work/body")"
jq -e '.verdict == "permissible"' "$work/body" >/dev/null || fail "the donor was not permissible"

# Logout; the token is dead.
[ "$(c -X DELETE "$url/v1/session" -H "$auth")" = 204 ] || fail "logout"
[ "$(c -X POST "$url/v1/checks" -H "$auth" -H 'Content-Type: application/json' -d @"$work/donor.json")" = 401 ] ||
    fail "a check after logout was not 401"

serve_stop
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "audit verify"
if grep -q -e "$surname" -e "$token" -e "$password" "$work/serve.err" "$work/serve.out"; then
    fail "personal data or a secret in the daemon's output"
fi
grep -q 'POST /v1/checks 200' "$work/serve.err" || fail "no access log line for the check"
echo "serve smoke: ok"
