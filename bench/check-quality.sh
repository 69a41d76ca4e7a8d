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
"$rv" init --vault "$work/vault" --key-file "$work/key" --expected-electors "$electors" >/dev/null
"$rv" ingest --vault "$work/vault" --key-file "$work/key" "$work/synth" >/dev/null
start=$(date +%s.%N)
"$rv" check --vault "$work/vault" --key-file "$work/key" --batch "$work/synth/donations.csv" \
    --json --out "$work/answers.jsonl" 2>"$work/check.err"
end=$(date +%s.%N)
echo "electors $electors, areas $areas, months $months, donations $donations"
echo "batch: $(tail -1 "$work/check.err" | sed 's/^regvault check: //')"
awk -v s="$start" -v e="$end" -v n="$donations" \
    'BEGIN { printf "batch time %.2f s, %.0f donations/s\n\n", e - s, n / (e - s) }'

python3 - "$work/answers.jsonl" "$work/synth/donations-truth.csv" <<'PY'
import csv, json, sys
from collections import Counter, defaultdict

answers = {}
for line in open(sys.argv[1], encoding="utf-8"):
    a = json.loads(line)
    answers[a["id"]] = a
truth = list(csv.DictReader(open(sys.argv[2], encoding="utf-8")))

def shown(a, grades):
    return {(m["area"], m["elector_number"]) for m in a.get("matches", [])
            if m.get("in_force") and m["grade"] in grades}

conf = defaultdict(Counter)
strong_n = strong_ok = strong_person_ok = 0
rec_n = rec_ok = 0
exact_unreg = 0
for t in truth:
    a = answers.get(t["ECRef"])
    if a is None:
        print("missing answer for a row", file=sys.stderr); sys.exit(1)
    note, v = t["note"], a["verdict"]
    conf[note][v] += 1
    registered = t["area"] != ""
    key = (t["area"], t["elector_number"])
    if a["grade"] in ("exact", "strong"):
        strong_n += 1
        strong_ok += registered
        strong_person_ok += key in shown(a, ("exact", "strong"))
    if registered and note != "organisation":
        rec_n += 1
        rec_ok += key in shown(a, ("exact", "strong", "possible"))
    if not registered and a["grade"] == "exact":
        exact_unreg += 1

pct = lambda x, n: 100.0 * x / n if n else 0.0
print(f"| measure | value |\n|---|---|")
print(f"| exact+strong answers | {strong_n} |")
print(f"| precision: donor was on a register | {pct(strong_ok, strong_n):.2f} % |")
print(f"| precision: the entry shown is the donor's own | {pct(strong_person_ok, strong_n):.2f} % |")
print(f"| recall: true entry graded exact, strong or possible | {pct(rec_ok, rec_n):.2f} % ({rec_ok}/{rec_n}) |")
print(f"| donors on no register graded exact | {exact_unreg} |")
print()
verdicts = ["permissible", "needs review", "not found", "out of scope"]
print("| note | " + " | ".join(verdicts) + " |")
print("|---|" + "---|" * len(verdicts))
for note in sorted(conf):
    print(f"| {note} | " + " | ".join(str(conf[note][v]) for v in verdicts) + " |")
PY
