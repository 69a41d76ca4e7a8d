#!/usr/bin/env bash
# audit_vault.sh - every verb that touches a vault leaves a signed, verifiable account of
# itself: init, ingest, stats and check are recorded (refusals too), every command ends
# with a checkpoint covering all its entries, a subject access request finds the checks
# that disclosed an elector, no name or postcode reaches the log's files, and a flipped
# byte in the log is caught and named.
set -euo pipefail
rv=${REGVAULT:?}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-audit-vault.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
key=(--key-file "$work/key")
head -c 32 /dev/urandom >"$work/key"

# Size of the latest checkpoint must equal the number of entries after every command.
covered() {
    local cp n
    cp=$("$rv" audit checkpoint --vault "$work/v" | sed -n 2p)
    n=$("$rv" audit show --vault "$work/v" --json | wc -l)
    [ "$cp" = "$n" ] || fail "after $1 the latest checkpoint covers $cp of $n entries"
}
actions() { "$rv" audit show --vault "$work/v" --json | python3 -c '
import json, sys
print(" ".join(json.loads(l)["action"] + ":" + json.loads(l)["outcome"].split(" ")[0] for l in sys.stdin))'; }

"$rv" synth --electors 20000 --areas 1 --months 3 --donations 300 --seed 5 --out "$work/s" >/dev/null
"$rv" init --vault "$work/v" "${key[@]}" --expected-electors 20000 >/dev/null 2>&1
[ "$(actions)" = "init:ok" ] || fail "init was not recorded as the first entry: $(actions)"
"$rv" audit show --vault "$work/v" --json | grep -q '"role":"admin"' || fail "init not recorded as admin"
covered init

"$rv" ingest --vault "$work/v" "${key[@]}" "$work/s" >/dev/null 2>&1
n_ingest=$(actions | tr ' ' '\n' | grep -c '^ingest:ok$' || true)
[ "$n_ingest" -eq 4 ] || fail "4 files ingested, $n_ingest recorded as ok: $(actions)"
covered ingest

"$rv" stats --vault "$work/v" "${key[@]}" >/dev/null
actions | tr ' ' '\n' | grep -q '^stats:ok$' || fail "stats was not recorded"
covered stats

"$rv" check --vault "$work/v" "${key[@]}" --batch "$work/s/donations.csv" --json \
    --out "$work/answers.jsonl" 2>/dev/null
actions | tr ' ' '\n' | grep -q '^check:ok$' || fail "the batch check was not recorded"
covered check

# A wrong key is refused, and changes nothing in the log.
before=$("$rv" audit show --vault "$work/v" --json | wc -l)
head -c 32 /dev/urandom >"$work/badkey"
set +e
"$rv" check --vault "$work/v" --key-file "$work/badkey" --name "A Person" --postcode "AB1 2DE" \
    --date 2026-01-10 >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 4 ] || fail "wrong key: exit $rc, want 4"
[ "$("$rv" audit show --vault "$work/v" --json | wc -l)" -eq "$before" ] || fail "a wrong key wrote to the log"

"$rv" audit verify --vault "$work/v" >/dev/null || fail "the log does not verify after the run"

# Subject access: an elector disclosed by the batch is found; the search is recorded.
read -r name pc < <(python3 - "$work/answers.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1], encoding="utf-8"):
    a = json.loads(line)
    m = (a.get("matches") or [{}])[0]
    if a.get("verdict") == "permissible" and m.get("name") and m.get("postcode"):
        print(m["name"].replace(" ", "_"), m["postcode"].replace(" ", ""))
        break
PY
)
[ -n "${name:-}" ] || fail "no permissible answer with a register name to look up"
"$rv" audit subject --vault "$work/v" "${key[@]}" --name "${name//_/ }" --postcode "$pc" --json \
    >"$work/subject.jsonl" 2>/dev/null
grep -q '"action":"check"' "$work/subject.jsonl" || fail "subject search did not find the check that disclosed the elector"
actions | tr ' ' '\n' | grep -q '^audit.subject:ok$' || fail "the subject search was not recorded"
grep -qi -F "${name//_/ }" "$work/subject.jsonl" && fail "subject output holds the name"

# Privacy: no donor or register name or postcode in the log's files.
python3 - "$work/s/donations.csv" "$work/answers.jsonl" >"$work/needles" <<'PY'
import csv, json, sys
out = set()
for row in csv.DictReader(open(sys.argv[1], encoding="utf-8")):
    if row["DonorStatus"] == "Individual":
        for part in row["DonorName"].split():
            if len(part) >= 6:
                out.add(part)
        if len(row["Postcode"].replace(" ", "")) >= 6:
            out.add(row["Postcode"])
            out.add(row["Postcode"].replace(" ", ""))
for line in open(sys.argv[2], encoding="utf-8"):
    for m in json.loads(line).get("matches") or []:
        for k in ("name", "address", "postcode"):
            for part in str(m.get(k) or "").replace(",", " ").split():
                if len(part) >= 6:
                    out.add(part)
print("\n".join(sorted(out)))
PY
[ "$(wc -l <"$work/needles")" -gt 100 ] || fail "too few needles to search for"
if grep -a -r -i -l -F -f "$work/needles" "$work/v/audit" >"$work/hits"; then
    fail "personal data in the audit log's files: $(cat "$work/hits")"
fi

# Tampering: flip one byte in the middle of the entry file; verify must name an entry.
size=$(stat -c %s "$work/v/audit/entries")
off=$((size / 2))
printf "$(printf '\\%03o' $(( ($(od -An -tu1 -j "$off" -N1 "$work/v/audit/entries") ^ 0x20) )))" |
    dd of="$work/v/audit/entries" bs=1 seek="$off" conv=notrunc 2>/dev/null
set +e
"$rv" audit verify --vault "$work/v" >"$work/verify.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 5 ] || fail "verify after a flipped byte: exit $rc, want 5"
grep -qi "entry" "$work/verify.out" || fail "verify did not name the bad entry: $(cat "$work/verify.out")"
echo "audited flow: $(actions | wc -w) entries, all verbs recorded, subject found, tamper caught"
