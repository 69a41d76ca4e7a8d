#!/usr/bin/env python3
"""Match quality of `regvault check` answers against synth's ground truth.

    match_quality.py ANSWERS.jsonl DONATIONS-TRUTH.csv [--bars]

Prints precision of exact+strong answers, recall of the true elector, and the confusion
matrix of how each donor was written (the truth file's note) against the verdict, as
Markdown. Only aggregate figures are printed, never a name. With --bars, exits 1 when a
quality bar of docs/matching.md is missed: precision of exact+strong >= 99.5 %, recall
>= 98 %, no donor on no register graded exact. Shared by bench/check-quality.sh and
tests/e2e/check_quality.sh.
"""
import csv
import json
import sys
from collections import Counter, defaultdict

PRECISION_BAR = 99.5
RECALL_BAR = 98.0


def shown(a, grades):
    return {(m["area"], m["elector_number"]) for m in a.get("matches", [])
            if m.get("in_force") and m["grade"] in grades}


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    bars = "--bars" in argv[3:]
    answers = {}
    with open(argv[1], encoding="utf-8") as f:
        for line in f:
            a = json.loads(line)
            answers[a["id"]] = a
    with open(argv[2], encoding="utf-8") as f:
        truth = list(csv.DictReader(f))

    conf = defaultdict(Counter)
    strong_n = strong_ok = strong_person_ok = 0
    rec_n = rec_ok = 0
    exact_unreg = 0
    missing = 0
    for t in truth:
        a = answers.get(t["ECRef"])
        if a is None:
            missing += 1
            continue
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

    def pct(x, n):
        return 100.0 * x / n if n else 0.0

    precision, recall = pct(strong_ok, strong_n), pct(rec_ok, rec_n)
    print("| measure | value |\n|---|---|")
    print(f"| exact+strong answers | {strong_n} |")
    print(f"| precision: donor was on a register | {precision:.2f} % |")
    print(f"| precision: the entry shown is the donor's own | "
          f"{pct(strong_person_ok, strong_n):.2f} % |")
    print(f"| recall: true entry graded exact, strong or possible | {recall:.2f} % "
          f"({rec_ok}/{rec_n}) |")
    print(f"| donors on no register graded exact | {exact_unreg} |")
    print()
    verdicts = ["permissible", "needs review", "not found", "out of scope"]
    print("| note | " + " | ".join(verdicts) + " |")
    print("|---|" + "---|" * len(verdicts))
    for note in sorted(conf):
        print(f"| {note} | " + " | ".join(str(conf[note][v]) for v in verdicts) + " |")

    failed = []
    if missing:
        failed.append(f"{missing} rows have no answer")
    if bars:
        if strong_n == 0 or precision < PRECISION_BAR:
            failed.append(f"precision {precision:.2f} % is below {PRECISION_BAR} %")
        if rec_n == 0 or recall < RECALL_BAR:
            failed.append(f"recall {recall:.2f} % is below {RECALL_BAR} %")
        if exact_unreg:
            failed.append(f"{exact_unreg} donors on no register graded exact")
    for f in failed:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
