#!/usr/bin/env bash
# synth_ingest.sh - what synth writes, ingest takes: every layout synth produces (CSV and TSV,
# UTF-8 with and without a byte-order mark, Windows-1252, one or two name columns, every
# alteration date form) is read without a single refused row, and ingest's counts agree with
# synth's own statistics (electors, anonymous entries it must refuse to store), and storing
# the files one per commit gives the same statistics as all in one.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-synth-ingest.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 9 areas: the four fixed layouts, random mixes, a Welsh and a Scottish register
"$rv" synth --electors 20000 --areas 9 --months 3 --seed 11 --out "$work/s" --stats >"$work/stats"
head -c 32 /dev/urandom >"$work/key"
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors 40000 >/dev/null 2>&1
"$rv" ingest --vault "$work/v" --key-file "$work/key" --json "$work/s" >"$work/ingest.json" \
    2>"$work/ingest.err" || fail "ingest refused synth's output: $(tail -3 "$work/ingest.err")"

electors=$(awk '/^electors / {print $2}' "$work/stats")
anonymous=$(awk '/anonymous \(N\)/ {print $3}' "$work/stats")
python3 - "$work/ingest.json" "$electors" "$anonymous" <<'PY' || fail "ingest and synth disagree"
import json, sys
d = json.load(open(sys.argv[1]))
electors, anonymous = int(sys.argv[2]), int(sys.argv[3])
files = d["files"]
assert len(files) == 9 * 4, f"{len(files)} files ingested, want 36"
bad = [f["file"] for f in files if f["invalid"] != 0 or f["status"] != "stored"]
assert not bad, f"rows refused in {bad}"
ed = [f for f in files if f["kind"] == "edition"]
assert sum(f["rows"] for f in ed) == electors, "edition rows != synth electors"
assert sum(f["anonymous"] for f in ed) == anonymous, "anonymous entries miscounted"
assert all(f["anonymous"] >= 1 for f in ed), "an area without an anonymous entry"
assert sum(f["stored"] for f in ed) == electors - anonymous, "stored != electors - anonymous"
PY
# The same folder one file per commit: the same statistics as all files in one commit.
"$rv" init --vault "$work/v1" --key-file "$work/key" --expected-electors 40000 >/dev/null 2>&1
"$rv" ingest --vault "$work/v1" --key-file "$work/key" --files-per-commit 1 "$work/s" >/dev/null
"$rv" stats --vault "$work/v" --key-file "$work/key" --json >"$work/all.json"
"$rv" stats --vault "$work/v1" --key-file "$work/key" --json >"$work/each.json"
python3 - "$work/all.json" "$work/each.json" <<'PY' || fail "one commit and one commit per file disagree"
import json, sys
a, b = (json.load(open(p))["files"] for p in sys.argv[1:3])
assert len(a) == len(b) == 36 and a == b, "statistics differ"
PY
echo "synth_ingest: ok"
