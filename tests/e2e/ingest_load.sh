#!/usr/bin/env bash
# ingest_load.sh - one `regvault ingest` stores many files in one commit (a load), and keeps
# every promise of one file per commit: a refused file in the middle leaves the file before
# it stored and itself absent (and the audit log says so), the same file twice in one command
# and a file ingested before are each stored once, two editions of an area and their
# alterations in one command give the statistics of --files-per-commit 1.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-ingest-load.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
key=(--key-file "$work/key")
head -c 32 /dev/urandom >"$work/key"
files() { "$rv" stats --vault "$1" "${key[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["files"]))'; }

"$rv" synth --electors 6000 --areas 3 --months 2 --seed 5 --out "$work/s" >/dev/null
a=$(ls "$work"/s/*/full-*.csv | sed -n 1p)
b=$(ls "$work"/s/*/full-*.csv | sed -n 2p)
c=$(ls "$work"/s/*/full-*.csv | sed -n 3p)
{ head -3 "$b"; echo 'ZZ1,1,,,,"Ragged, Row"'; sed -n '4,$p' "$b"; } >"$work/bad.csv"
ed=(--area AREA1 --edition 2025-12-01)

# A refused file in the middle: the one before it is stored, it is not, the one after is
# not tried; exit 3.
"$rv" init --vault "$work/v1" "${key[@]}" 2>/dev/null
set +e
"$rv" ingest --vault "$work/v1" "${key[@]}" "${ed[@]}" "$a" "$work/bad.csv" "$c" \
    >"$work/out" 2>"$work/err"
st=$?
set -e
[ "$st" -eq 3 ] || fail "a refused file in a load: exit $st, want 3"
grep -q "^$a: area AREA1 edition" "$work/out" || fail "the file before the refused one is not reported stored"
grep -q "bad.csv: refused, nothing stored" "$work/out" || fail "the refused file is not reported"
grep -q "$c" "$work/out" "$work/err" && fail "the file after the refused one was tried"
[ "$(files "$work/v1")" -eq 1 ] || fail "a refused file in a load: $(files "$work/v1") files stored, want 1"
"$rv" audit show --vault "$work/v1" --json >"$work/audit"
python3 - "$work/audit" <<'PY' || fail "the audit log does not tell the load's outcome file by file"
import json, sys
out = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["action"] == "ingest":
        out.append((e["params"].split("file=")[1], e["outcome"].split()[0]))
ends = [o for _, o in out[3:]]
assert [o for _, o in out[:3]] == ["started"] * 3 and ends == ["ok", "rejected", "not"], out
assert out[4][0] == "bad.csv", out
PY
# Given room for the bad row, the same command stores the other two (the first already).
"$rv" ingest --vault "$work/v1" "${key[@]}" "${ed[@]}" --max-errors 1 "$a" "$work/bad.csv" "$c" \
    >"$work/out" 2>/dev/null
grep -q "^$a: already ingested" "$work/out" || fail "a file ingested before is not 'already'"
[ "$(files "$work/v1")" -eq 3 ] || fail "after the retry: $(files "$work/v1") files, want 3"

# The same file twice in one command, and a copy of it: stored once.
"$rv" init --vault "$work/v2" "${key[@]}" 2>/dev/null
cp "$a" "$work/copy.csv"
"$rv" ingest --vault "$work/v2" "${key[@]}" "${ed[@]}" "$a" "$a" "$work/copy.csv" >"$work/out"
[ "$(grep -c "already ingested" "$work/out")" -eq 2 ] || fail "the same file twice is stored twice"
[ "$(files "$work/v2")" -eq 1 ] || fail "the same file twice: $(files "$work/v2") files, want 1"

# Two editions of each area and the alterations to each, in one command (a synth folder),
# against one commit per file: the same statistics.
"$rv" synth --electors 3000 --areas 2 --months 2 --seed 5 --edition 2024-12-01 \
    --out "$work/two" >/dev/null
"$rv" synth --electors 3000 --areas 2 --months 2 --seed 6 --edition 2025-12-01 --force \
    --out "$work/two" >/dev/null
[ "$(ls "$work"/two/*/full-*.csv | wc -l)" -eq 4 ] || fail "setup: two editions per area wanted"
for n in 0 1; do
    "$rv" init --vault "$work/e$n" "${key[@]}" 2>/dev/null
    "$rv" ingest --vault "$work/e$n" "${key[@]}" --files-per-commit "$n" "$work/two" >/dev/null
    "$rv" stats --vault "$work/e$n" "${key[@]}" --json >"$work/e$n.json"
done
python3 - "$work/e0.json" "$work/e1.json" <<'PY' || fail "one load and one commit per file disagree"
import json, sys
a, b = (json.load(open(p))["files"] for p in sys.argv[1:3])
assert len(a) == len(b) >= 3, (len(a), len(b))
assert a == b, "statistics differ"
assert sum(f["ended"] for f in a if f["kind"] == "edition") >= 1, "the second edition ended nothing"
PY
echo "ingest_load: ok"
