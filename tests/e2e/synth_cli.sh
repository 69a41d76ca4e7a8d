#!/usr/bin/env bash
# synth_cli.sh - drives `regvault synth` as a user would: usage errors exit 2 with a message
# and write nothing, two runs with the same options are byte-identical, a different seed
# differs, and the documented layout of files is there.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-synth-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# usage errors: exit 2, a message naming the problem, nothing written
expect_usage() {
    local want=$1; shift
    set +e
    "$rv" synth "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    set -e
    [ "$rc" -eq 2 ] || fail "synth $* exited $rc, want 2"
    grep -q -- "$want" "$work/err" || fail "synth $*: message lacks '$want': $(cat "$work/err")"
}
expect_usage "--out is required" --electors 100
expect_usage "--electors is required" --out "$work/x"
expect_usage "--electors wants a whole number" --electors abc --out "$work/x"
expect_usage "--electors wants a whole number" --electors 0 --out "$work/x"
expect_usage "--electors wants a whole number" --electors -5 --out "$work/x"
expect_usage "--electors wants a whole number" --electors 12x --out "$work/x"
expect_usage "--areas wants a whole number" --electors 100 --areas 0 --out "$work/x"
expect_usage "at least 20 electors per area" --electors 100 --areas 10 --out "$work/x"
expect_usage "--edition wants a real date" --electors 100 --edition 2025-02-30 --out "$work/x"
expect_usage "--edition wants a real date" --electors 100 --edition 01/12/2025 --out "$work/x"
expect_usage "--months wants a whole number" --electors 100 --months 99 --out "$work/x"
expect_usage "unknown option" --electors 100 --colour blue --out "$work/x"
expect_usage "needs a value" --electors 100 --out
[ ! -e "$work/x" ] || fail "a usage error created the output folder"
mkdir "$work/full" && echo keep >"$work/full/precious.txt"
expect_usage "not empty" --electors 100 --out "$work/full"
[ "$(ls "$work/full")" = precious.txt ] || fail "refused run touched a non-empty folder"
echo hello >"$work/file"
expect_usage "not a folder" --electors 100 --out "$work/file"

"$rv" synth --help | grep -q -- "--donations" || fail "--help does not document --donations"

# two runs, same options: byte-identical trees
args=(--electors 30000 --areas 4 --seed 7 --months 2 --donations 300)
"$rv" synth "${args[@]}" --out "$work/a" >/dev/null
# the second with every value joined to its option: the same run
"$rv" synth --electors=30000 --areas=4 --seed=7 --months=2 --donations=300 --out="$work/b" >/dev/null
(cd "$work/a" && find . -type f | sort) >"$work/la"
(cd "$work/b" && find . -type f | sort) >"$work/lb"
cmp -s "$work/la" "$work/lb" || fail "file lists differ between two identical runs"
while read -r f; do
    cmp -s "$work/a/$f" "$work/b/$f" || fail "$f differs between two identical runs"
done <"$work/la"

# a different seed gives a different register
"$rv" synth --electors 30000 --areas 4 --seed 8 --months 2 --out "$work/c" >/dev/null
! cmp -s "$work/a/E07000001/full-2025-12-01.csv" "$work/c/E07000001/full-2025-12-01.csv" ||
    fail "seeds 7 and 8 gave the same register"

# the layout: one folder per area, a full register, one alteration file per month
for area in E07000001 E07000002 E07000003 E07000004; do
    [ -s "$work/a/$area/full-2025-12-01.csv" ] || fail "$area has no full register"
    [ -s "$work/a/$area/alterations-2026-01.csv" ] || fail "$area lacks alterations-2026-01"
    [ -s "$work/a/$area/alterations-2026-02.csv" ] || fail "$area lacks alterations-2026-02"
    [ ! -e "$work/a/$area/alterations-2026-03.csv" ] || fail "$area has a third month"
done
grep -q '^Elector Number Prefix,Elector Number,Elector Number Suffix,Elector Markers,Elector DOB,Elector Name,PostCode,Address1,Address2,Address3,Address4,Address5,Address6,Opt Out' \
    "$work/a/E07000001/full-2025-12-01.csv" || fail "E07000001 header is not the common layout"
head -1 "$work/a/E07000002/full-2025-12-01.csv" | grep -q $'Elector Surname\tElector Forename' ||
    fail "E07000002 is not tab-separated with split name columns"
head -1 "$work/a/E07000001/alterations-2026-01.csv" |
    grep -q 'ElectorCreatedMonth,ElectorChangedMonth,ElectorDeletedMonth' ||
    fail "alteration header lacks the update columns"
[ -s "$work/a/donations.csv" ] || fail "no donations.csv"
head -1 "$work/a/donations-truth.csv" | grep -q '^ECRef,area,elector_number,note' ||
    fail "truth file header"
[ "$(($(wc -l <"$work/a/donations.csv") - 1))" -eq 300 ] || fail "donations.csv rows != 300"
# no temporary files left behind
[ -z "$(find "$work/a" -name '.*.tmp')" ] || fail "temporary files left in the output"

# --force writes into a non-empty folder
"$rv" synth --electors 100 --out "$work/full" --force >/dev/null
[ -s "$work/full/E07000001/full-2025-12-01.csv" ] && [ -e "$work/full/precious.txt" ] ||
    fail "--force did not write, or removed other files"
# kill -9 at several moments of a run: every file is either complete or absent
for delay in 0.2 0.5 0.8 1.1 1.4; do
    rm -rf "$work/k"
    "$rv" synth --electors 4000000 --areas 4 --months 1 --out "$work/k" >/dev/null &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    [ -z "$(find "$work/k" -name '*.tmp')" ] || fail "a run killed after ${delay}s left temporary files"
    for f in $(find "$work/k" -type f); do
        [ "$(tail -c 1 "$f" | od -An -c | tr -d ' ')" = '\n' ] || fail "$f is cut short"
        head -1 "$f" | sed $'s/^\xef\xbb\xbf//' | grep -q '^Elector Number Prefix' ||
            fail "$f has no header"
    done
done

echo "synth_cli: ok"
