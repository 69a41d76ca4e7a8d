#!/usr/bin/env bash
# vault_passphrase.sh - a vault sealed by passphrase: --passphrase-file and the
# REGVAULT_PASSPHRASE_FILE variable unseal it the same way; a wrong passphrase exits 4 and
# changes nothing; with no secret and no terminal the command says how to give one.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
src=${RV_SOURCE_DIR:?RV_SOURCE_DIR must name the source folder}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-pass-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'purple monkey dishwasher\n' >"$work/pass"
printf 'purple monkey dishwasher' >"$work/pass-nonl"
printf 'purple monkey dishwashers\n' >"$work/wrong"
: >"$work/empty"

"$rv" init --vault "$work/v" --passphrase-file "$work/pass" 2>/dev/null || fail "init by passphrase"
set +e
"$rv" init --vault "$work/v2" --passphrase-file "$work/empty" 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "an empty passphrase file was accepted (exit $rc)"
grep -q "empty" "$work/err" || fail "an empty passphrase file is not explained"

"$rv" ingest --vault "$work/v" --passphrase-file "$work/pass-nonl" --area LDS \
    --edition 2025-12-01 "$src/tests/data/ingest/full-small.csv" >/dev/null ||
    fail "the passphrase without its newline does not unseal"
REGVAULT_PASSPHRASE_FILE=$work/pass "$rv" stats --vault "$work/v" >"$work/out" ||
    fail "REGVAULT_PASSPHRASE_FILE does not unseal"
grep -q "LDS" "$work/out" || fail "stats after unsealing by environment shows nothing"

before=$(sha256sum "$work/v/vault.hdr" "$work/v/store/data.mdb")
set +e
REGVAULT_PASSPHRASE_FILE=$work/wrong "$rv" stats --vault "$work/v" >/dev/null 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "a wrong passphrase exited $rc, want 4"
grep -q "wrong passphrase" "$work/err" || fail "a wrong passphrase is not explained"
[ "$(sha256sum "$work/v/vault.hdr" "$work/v/store/data.mdb")" = "$before" ] ||
    fail "a wrong passphrase changed the vault"

# No secret and no terminal: a clear message, exit 2.
set +e
env -u REGVAULT_PASSPHRASE_FILE setsid "$rv" stats --vault "$work/v" </dev/null >/dev/null 2>"$work/err"
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "no secret and no terminal exited $rc, want 2"
grep -q "REGVAULT_PASSPHRASE_FILE" "$work/err" || fail "no secret: the message does not say how to give one"
echo ok
