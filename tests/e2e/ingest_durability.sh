#!/usr/bin/env bash
# ingest_durability.sh - kill -9 at random points of a large ingest that stores its files
# three to a commit (a load): after each kill the vault opens, every file is wholly present
# (its statistics identical to an uninterrupted run's) or wholly absent, the files present
# are whole loads, and a final re-run ends with the same statistics as the uninterrupted run
# (which stores all its files in one load).
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-kill-e2e.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
kills=${RV_KILLS:-24}

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors 120000 --areas 4 --months 3 --seed 11 --out "$work/synth" >/dev/null

# The reference: one uninterrupted run.
"$rv" init --vault "$work/ref" --key-file "$work/key" 2>/dev/null
start=$(date +%s%N)
"$rv" ingest --vault "$work/ref" --key-file "$work/key" "$work/synth" >/dev/null
full_ms=$((($(date +%s%N) - start) / 1000000))
"$rv" stats --vault "$work/ref" --key-file "$work/key" --json >"$work/ref.json"

# Interrupted runs on a second vault.
"$rv" init --vault "$work/v" --key-file "$work/key" 2>/dev/null
done_kills=0
partial=0
# Kill points spread over most of what a run has left to do: runs are killed somewhere in a
# load (some while committing one), and a run that resumes with little left to do finishes.
# The span of a whole run is the uninterrupted run's time at first; the machine's pace can
# change after it (other work starting or ending), so it follows what the runs show: two
# runs in a row from an empty vault that were killed before storing anything (too early: no
# load reached its commit) widen it by half, and a run from an empty vault that finished
# before its kill narrows it by a quarter.
span=$((full_ms * 9 / 10 + 50))
span0=$span
nfiles=0
nref=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["files"]))' "$work/ref.json")
early=0
for i in $(seq 1 $((kills * 5))); do
    [ "$done_kills" -lt "$kills" ] || break
    before=$nfiles
    "$rv" ingest --vault "$work/v" --key-file "$work/key" --files-per-commit 3 "$work/synth" \
        >/dev/null 2>&1 &
    pid=$!
    # A random point of what the run has left to do.
    left=$((span * (nref - nfiles) / nref + 50))
    sleep "$(awk -v r="$RANDOM" -v s="$left" 'BEGIN { printf "%.3f", (20 + r % s) / 1000 }')"
    finished=
    if kill -9 "$pid" 2>/dev/null; then
        done_kills=$((done_kills + 1))
    else
        finished=1
    fi
    wait "$pid" 2>/dev/null || true
    pid=
    "$rv" stats --vault "$work/v" --key-file "$work/key" --json >"$work/now.json" ||
        fail "the vault does not open after kill $i"
    python3 - "$work/ref.json" "$work/now.json" "$work/count" <<'PY' || fail "after kill $i a file or a load is partly stored"
import json, sys
ref = {(f["area"], f["kind"], f["edition"], f["effective_to"]): f for f in json.load(open(sys.argv[1]))["files"]}
now = json.load(open(sys.argv[2]))["files"]
# Files go in walk order, three to a load: what is stored is whole loads.
if len(now) % 3 != 0 and len(now) != len(ref):
    sys.exit("%d files stored: not whole loads of 3" % len(now))
open(sys.argv[3], "w").write("%d %d\n" % (len(now), len(ref)))
for f in now:
    k = (f["area"], f["kind"], f["edition"], f["effective_to"])
    r = ref.get(k)
    if r is None:
        sys.exit("unknown file %r" % (k,))
    for field in ("rows", "stored", "unchanged", "ended", "anonymous", "invalid", "on_register", "markers"):
        if f[field] != r[field]:
            sys.exit("%r: %s is %r, uninterrupted %r" % (k, field, f[field], r[field]))
PY
    read -r nfiles nref <"$work/count"
    [ "$nfiles" -gt 0 ] && [ "$nfiles" -lt "$nref" ] && partial=$((partial + 1))
    if [ -z "$finished" ] && [ "$before" -eq 0 ] && [ "$nfiles" -eq 0 ]; then
        early=$((early + 1))
        if [ "$early" -ge 2 ]; then
            span=$((span * 3 / 2))
            early=0
        fi
    else
        early=0
    fi
    if [ -n "$finished" ] && [ "$before" -eq 0 ]; then
        span=$((span * 3 / 4 > 50 ? span * 3 / 4 : 50))
    fi
    if [ -n "$finished" ] || [ "$nfiles" -eq "$nref" ]; then
        # The run ended before its kill: start again from an empty vault for more kills.
        rm -rf "$work/v"
        "$rv" init --vault "$work/v" --key-file "$work/key" 2>/dev/null
        nfiles=0
    fi
done
[ "$done_kills" -ge 20 ] || fail "only $done_kills runs were killed before finishing"
# Kills that left some loads stored and not others: without them the test shows nothing.
[ "$partial" -ge 3 ] || fail "only $partial kills left a vault between empty and complete"

"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/synth" >/dev/null
"$rv" stats --vault "$work/v" --key-file "$work/key" --json >"$work/final.json"
python3 - "$work/ref.json" "$work/final.json" <<'PY' || fail "the completed vault differs from the uninterrupted one"
import json, sys
strip = lambda f: {k: v for k, v in f.items() if k != "seq"}
a = sorted(json.dumps(strip(f), sort_keys=True) for f in json.load(open(sys.argv[1]))["files"])
b = sorted(json.dumps(strip(f), sort_keys=True) for f in json.load(open(sys.argv[2]))["files"])
if a != b:
    sys.exit("statistics differ")
PY
echo "ok: $done_kills kills ($partial between loads) in $i runs, uninterrupted run ${full_ms} ms," \
    "kill span ${span0} ms at first, ${span} ms at last"
