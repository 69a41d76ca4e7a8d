#!/usr/bin/env bash
# vault_badinput.sh - bad input changes nothing: init refuses an existing vault; a wrong
# key file exits 4, a damaged header exits 5, a file with bad rows exits 3, each with a
# clear message, and the vault's content is the same before and after.
#
# "The same" is checked on the header's bytes and on a dump of every key and value in the
# store (mdb_dump). The store's raw bytes are also compared where no write transaction was
# begun (wrong key, damaged header); a refused file's abandoned transaction may leave its
# own sealed pages in free space, which a dump does not see and which hold no plaintext.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
src=${RV_SOURCE_DIR:?RV_SOURCE_DIR must name the source folder}
data=$src/tests/data/ingest
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-bad-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v mdb_dump >/dev/null || { echo "SKIP: mdb_dump (lmdb-utils) not installed"; exit 0; }

v=$work/v
head -c 32 /dev/urandom >"$work/key"
head -c 32 /dev/urandom >"$work/wrong"
printf 'short' >"$work/badkey"

run() { # run EXPECTED_RC verb args...
    local want=$1; shift
    set +e
    "$rv" "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "$* exited $rc, want $want: $(cat "$work/err")"
}
logical() { sha256sum <"$v/vault.hdr"; mdb_dump -a "$v/store" | sha256sum; }
raw() { find "$v" -type f -name '*.hdr' -o -type f -name 'data.mdb' | sort | xargs sha256sum; }

run 0 init --vault "$v" --key-file "$work/key"
run 2 init --vault "$v" --key-file "$work/key"
grep -q "nothing was changed" "$work/err" || fail "refused init does not say nothing changed"
run 2 init --vault "$work/v2" --key-file "$work/badkey"
grep -q "32 bytes" "$work/err" || fail "a short key file is not explained"
[ ! -e "$work/v2" ] || fail "a refused init left a directory behind"
run 0 ingest --vault "$v" --key-file "$work/key" --area LDS --edition 2025-12-01 "$data/full-small.csv"

before=$(logical)
rawbefore=$(raw)

# A wrong key file: exit 4, clear message, nothing touched.
run 4 ingest --vault "$v" --key-file "$work/wrong" --area LDS --edition 2026-12-01 "$data/full-small.tsv"
grep -q "wrong passphrase or key file" "$work/err" || fail "wrong key not explained: $(cat "$work/err")"
run 4 stats --vault "$v" --key-file "$work/wrong"
[ "$(raw)" = "$rawbefore" ] || fail "a wrong key changed the vault's files"

# A wrong passphrase for a key-file vault: also exit 4.
printf 'not the key\n' >"$work/pass"
run 4 stats --vault "$v" --passphrase-file "$work/pass"

# A damaged header: exit 5, and nothing else touched.
cp "$v/vault.hdr" "$work/hdr.good"
printf '\x00' | dd of="$v/vault.hdr" bs=1 seek=100 conv=notrunc status=none
cmp -s "$v/vault.hdr" "$work/hdr.good" && printf '\x01' | dd of="$v/vault.hdr" bs=1 seek=100 conv=notrunc status=none
run 5 ingest --vault "$v" --key-file "$work/key" --area LDS --edition 2026-12-01 "$data/full-small.tsv"
grep -q "damaged" "$work/err" || fail "a damaged header is not explained: $(cat "$work/err")"
run 5 stats --vault "$v" --key-file "$work/key"
cp "$work/hdr.good" "$v/vault.hdr"
[ "$(raw)" = "$rawbefore" ] || fail "a damaged header let something change the store"

# A file with bad rows: exit 3, each row named by file and line, no personal data.
run 3 ingest --vault "$v" --key-file "$work/key" --area YRK --edition 2025-12-01 --max-errors 2 "$data/full-bad.csv"
grep -q "full-bad.csv:3:" "$work/err" || fail "the ragged row is not named by line"
grep -q "full-bad.csv:4:7: PostCode" "$work/err" || fail "the bad postcode is not named"
grep -q "nothing of the file was stored" "$work/err" || fail "the refusal does not say nothing was stored"
if grep -a -i -E "secretname|qq99|smith|high street" "$work/err" "$work/out"; then
    fail "an error message quotes personal data"
fi
[ "$(logical)" = "$before" ] || fail "a refused file changed the vault"

# An edition older than one already stored: refused, nothing changed.
run 3 ingest --vault "$v" --key-file "$work/key" --area LDS --edition 2024-12-01 "$data/full-small.tsv"
[ "$(logical)" = "$before" ] || fail "an out-of-order edition changed the vault"

# Usage errors.
run 2 ingest --vault "$v" --key-file "$work/key" "$data/full-small.csv"
run 2 ingest --vault "$v" --key-file "$work/key" --area LDS --edition 2025-13-01 "$data/full-small.csv"
run 0 ingest --help
grep -q "usage: regvault ingest" "$work/out" || fail "ingest --help has no usage"
[ "$(logical)" = "$before" ] || fail "usage errors changed the vault"

# The same file again: nothing changes, and it says so.
run 0 ingest --vault "$v" --key-file "$work/key" --area LDS --edition 2025-12-01 "$data/full-small.csv"
grep -q "already ingested" "$work/out" || fail "a repeated file is not reported as already ingested"
[ "$(logical)" = "$before" ] || fail "a repeated file changed the vault"
echo ok
