#!/usr/bin/env bash
# Match quality of `regvault check` on synthetic donations with ground truth: precision of
# exact+strong answers, recall of the true elector, and the confusion matrix of how each
# donor's details were written (the truth file's note) against the verdict.
#
#   REGVAULT=build/regvault bash bench/check-quality.sh [ELECTORS] [DONATIONS] [AREAS] [MONTHS]
#
# Defaults: 200000 electors, 10000 donations, 8 areas, 6 months of alterations. Prints a
# Markdown report (as pasted into docs/matching.md) and the timing of the batch.
set -euo pipefail
rv=$(realpath "${REGVAULT:-build/regvault}")
electors=${1:-200000}
donations=${2:-10000}
areas=${3:-8}
months=${4:-6}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-check-quality.XXXXXX")
[ -n "${KEEP:-}" ] && echo "work folder: $work" || trap 'rm -rf "$work"' EXIT

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors "$electors" --areas "$areas" --months "$months" \
    --donations "$donations" --seed 7 --out "$work/synth" >/dev/null
"$rv" init --vault "$work/vault" --key-file "$work/key" --expected-electors "$electors" >/dev/null 2>&1
"$rv" ingest --vault "$work/vault" --key-file "$work/key" "$work/synth" >/dev/null
start=$(date +%s.%N)
"$rv" check --vault "$work/vault" --key-file "$work/key" --batch "$work/synth/donations.csv" \
    --json --out "$work/answers.jsonl" 2>"$work/check.err"
end=$(date +%s.%N)
echo "electors $electors, areas $areas, months $months, donations $donations"
echo "batch: $(tail -1 "$work/check.err" | sed 's/^regvault check: //')"
awk -v s="$start" -v e="$end" -v n="$donations" \
    'BEGIN { printf "batch time %.2f s, %.0f donations/s\n\n", e - s, n / (e - s) }'

python3 "$(dirname "$0")/match_quality.py" "$work/answers.jsonl" "$work/synth/donations-truth.csv"
