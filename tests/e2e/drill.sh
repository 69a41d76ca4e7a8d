#!/usr/bin/env bash
# drill.sh - the stolen-credential exfiltration drill (DESIGN.md, quality bars): attackers
# holding checkers' full sessions try to harvest the register through the real daemon. The
# obvious one must be caught by the probing rules within 5 seconds and suspended; a careful
# one that keeps clear of every probing rule must be cut off by the daily disclosure budget
# (300 distinct electors); neither may see more electors than the budget. A third attacker
# who finds a honeytoken file must raise an alert on its first use. And a legitimate checker
# working through a quarter's 2,000 donations (sorted by donor name, batches of 200, a
# budget of 2,500 set by an admin) must never be refused or alerted on.
#
# Setup: a 100,000-elector synthetic register (regvault synth), 20 canary electors, the
# principals mallory and trent (whose sessions are stolen) and carol, a honeytoken file, and
# `regvault serve --dev` with its default limits. The attackers and the checker are
# tests/e2e/drill/drill.py (Python, standard library only). It prints the figures (counts
# and seconds, never personal data) and fails unless every target is met.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/serve.sh"
serve_init drill

# The register: one area of 100,000 electors with a month of alterations, and a quarter's
# 2,000 donations.
head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors 100000 --areas 1 --months 1 --donations 2000 --seed 11 \
    --out "$work/s" >/dev/null || fail "synth failed"
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors 100000 \
    >/dev/null 2>&1 || fail "init failed"
"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/s" >/dev/null 2>"$work/ingest.err" ||
    fail "ingest failed: $(tail -c 300 "$work/ingest.err")"
"$rv" canary add --vault "$work/v" --key-file "$work/key" --count 20 >/dev/null 2>"$work/canary.err" ||
    fail "regvault canary add failed: $(head -c 300 "$work/canary.err")"
user_add mallory checker
user_add trent checker
user_add carol checker
"$rv" user --vault "$work/v" --key-file "$work/key" budget carol 2500 >/dev/null 2>"$work/budget.err" ||
    fail "regvault user budget carol 2500 failed: $(head -c 300 "$work/budget.err")"
# Planted where an intruder would look; the URL is the daemon's usual address.
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "ops-share/regvault.env" \
    --format env --url https://127.0.0.1:8443 >"$work/honeytoken.env" 2>"$work/honeytoken.err" ||
    fail "regvault honeytoken create failed: $(head -c 300 "$work/honeytoken.err")"
[ -s "$work/honeytoken.env" ] || fail "regvault honeytoken create wrote nothing"

serve_start
export REGVAULT="$rv" RV_SOURCE_DIR="${RV_SOURCE_DIR:-$(realpath "$here/../..")}"
export DRILL_HONEYTOKEN="$work/honeytoken.env"
python3 "$here/drill/drill.py" || fail "the drill missed a target (figures above)"
serve_alive "after the drill"
serve_stop
echo "drill: ok"
