#!/usr/bin/env bash
# Match quality of `regvault check` as a test: a synthetic register (200,000 electors in 8
# areas, a revised register and 6 months of alterations) and 10,000 donations with ground
# truth go through the real binary (init, ingest, check --batch --json), and the answers
# must meet the quality bars of docs/matching.md: precision of exact+strong >= 99.5 %,
# recall of the true elector (exact, strong or possible) >= 98 %, and no donor on no
# register graded exact. Only aggregate figures are printed, never a name.
#
# Sizes can be lowered for a quick look (RV_QUALITY_ELECTORS, RV_QUALITY_DONATIONS); the
# bars are only meaningful at the defaults.
set -euo pipefail
rv=${REGVAULT:?set REGVAULT to the regvault binary}
src=${RV_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
electors=${RV_QUALITY_ELECTORS:-200000}
donations=${RV_QUALITY_DONATIONS:-10000}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-e2e-quality.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors "$electors" --areas 8 --months 6 --donations "$donations" --seed 7 \
    --out "$work/s" >/dev/null || fail "synth failed"
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors "$electors" \
    >/dev/null 2>&1 || fail "init failed"
"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/s" >/dev/null 2>&1 ||
    fail "ingest failed"
start=$(date +%s.%N)
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/s/donations.csv" --json \
    --out "$work/answers.jsonl" 2>"$work/check.err" || fail "check --batch failed (exit $?)"
end=$(date +%s.%N)
rows=$(wc -l <"$work/answers.jsonl")
[ "$rows" -eq "$donations" ] || fail "$rows answers for $donations donations"
awk -v s="$start" -v e="$end" -v n="$donations" \
    'BEGIN { printf "electors %d, donations %d: batch %.2f s, %.0f donations/s\n", '"$electors"', n, e - s, n / (e - s) }'
python3 "$src/bench/match_quality.py" "$work/answers.jsonl" "$work/s/donations-truth.csv" --bars ||
    fail "match quality below the bars"
echo "PASS"
