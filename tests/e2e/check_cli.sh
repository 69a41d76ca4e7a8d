#!/usr/bin/env bash
# End-to-end test of `regvault check`: a synthetic register is ingested into a fresh vault,
# then single donors, bequests and batches are checked through the real binary. Attacks:
# a donor checked before the entry existed, batches with broken rows (every row must come
# back, in order, with its id), a file with no known header (exit 3), usage errors (exit 2),
# a wrong key (exit 4), and personal data leaking into diagnostics.
set -euo pipefail
rv=${REGVAULT:?set REGVAULT to the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-e2e-check.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

head -c 32 /dev/urandom >"$work/key"
head -c 32 /dev/urandom >"$work/badkey"
"$rv" synth --electors 3000 --areas 1 --months 2 --donations 300 --seed 3 --out "$work/s" >/dev/null
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors 3000 >/dev/null 2>&1
"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/s" >/dev/null 2>&1
area=$(ls "$work/s" | grep -v csv | head -1)
reg="$work/s/$area/full-2025-12-01.csv"

# A plain entry from the register: "Surname, Forenames",PostCode,Address1 (no flat, no
# marker), written the way a donor would.
line=$(awk -F, 'NR > 1 && $4 == "" && $5 == "" && $6 ~ /^"/ && $9 !~ /^Flat/ && $9 ~ /^[0-9]/ {print; exit}' "$reg")
[ -n "$line" ] || fail "no plain entry in the synthetic register"
surname=$(echo "$line" | awk -F, '{gsub(/"/, "", $6); print $6}')
forenames=$(echo "$line" | awk -F, '{gsub(/"/, "", $7); sub(/^ /, "", $7); print $7}')
postcode=$(echo "$line" | awk -F, '{print $8}')
addr1=$(echo "$line" | awk -F, '{print $9}')
number=$(echo "$line" | awk -F, '{print $1 "-" $2}')

# 1. Exact match: permissible, with the elector number and the register's name.
out=$("$rv" check --vault "$work/v" --key-file "$work/key" --name "$forenames $surname" \
    --address "$addr1" --postcode "$postcode" --date 2026-01-10)
echo "$out" | grep -q "^verdict: *permissible" || fail "exact donor not permissible: $out"
echo "$out" | grep -q "^grade: *exact" || fail "exact donor not graded exact"
echo "$out" | grep -q "$number" || fail "elector number missing"
echo "$out" | grep -q "edition 2025-12-01" || fail "edition missing"

# 2. JSON, lower case and a title, postcode without its space.
pc_nospace=$(echo "$postcode" | tr -d ' ' | tr 'A-Z' 'a-z')
json=$("$rv" check --vault "$work/v" --key-file "$work/key" --json \
    --name "Mx $(echo "$forenames $surname" | tr 'a-z' 'A-Z')" --postcode "$pc_nospace" \
    --date 10/01/2026)
echo "$json" | grep -q '"verdict": "permissible"' || fail "JSON answer not permissible: $json"
echo "$json" | grep -q '"elector_number": "'"$number"'"' || fail "JSON lacks the elector number"

# 3. Before the register edition existed: not found, and the answer says why.
out=$("$rv" check --vault "$work/v" --key-file "$work/key" --name "$forenames $surname" \
    --address "$addr1" --postcode "$postcode" --date 2025-11-30)
echo "$out" | grep -q "^verdict: *not found" || fail "donor found before the edition: $out"
echo "$out" | grep -q "entered the register on 2025-12-01, after the donation" ||
    fail "no dates given for the entry not yet in force"

# 4. Bequest: registered within five years before death.
out=$("$rv" check --vault "$work/v" --key-file "$work/key" --bequest --name "$forenames $surname" \
    --postcode "$postcode" --death-date 2027-06-01)
echo "$out" | grep -q "^verdict: *permissible" || fail "bequest not permissible: $out"

# 5. Someone not on the register.
out=$("$rv" check --vault "$work/v" --key-file "$work/key" --name "Zebedee Quixotic-Nonesuch" \
    --postcode "$postcode" --date 2026-01-10)
echo "$out" | grep -q "^verdict: *not found" || fail "unknown donor found: $out"

# 6. The synthetic batch: one output row per input row, ids in input order.
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/s/donations.csv" \
    --out "$work/answers.csv" 2>"$work/batch.err"
in_ids=$(tail -n +2 "$work/s/donations.csv" | cut -d, -f1)
out_ids=$(tail -n +2 "$work/answers.csv" | cut -d, -f1)
[ "$in_ids" = "$out_ids" ] || fail "batch output ids differ from input ids"
grep -q "300 rows" "$work/batch.err" || fail "batch summary missing: $(cat "$work/batch.err")"
grep -q ",out of scope," "$work/answers.csv" || fail "organisations not out of scope"
grep -q ",permissible," "$work/answers.csv" || fail "no permissible donor in the batch"

# 6b. A batch of many chunks (parsed, checked and written by different threads, 256 rows a
# chunk): every row answered once, in input order, with the same answers as the short run;
# and an output that cannot be written fails the command with a message, not a crash.
{
    head -1 "$work/s/donations.csv"
    for i in $(seq 1 12); do tail -n +2 "$work/s/donations.csv"; done
} >"$work/long.csv"
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/long.csv" \
    --out "$work/long.out" 2>"$work/long.err"
[ "$(tail -n +2 "$work/long.out" | cut -d, -f1)" = "$(tail -n +2 "$work/long.csv" | cut -d, -f1)" ] ||
    fail "a long batch's output ids differ from its input ids"
# (the second field is the input line, which differs)
for i in $(seq 1 12); do tail -n +2 "$work/answers.csv" | cut -d, -f1,3-; done >"$work/long.want"
tail -n +2 "$work/long.out" | cut -d, -f1,3- | cmp -s - "$work/long.want" ||
    fail "a long batch's answers differ from the same rows checked in a short batch"
grep -q "3600 rows" "$work/long.err" || fail "long batch summary missing: $(cat "$work/long.err")"
if [ -w /dev/full ]; then
    set +e
    "$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/long.csv" \
        --out /dev/full 2>"$work/full.err"
    rc=$?
    set -e
    [ "$rc" -ne 0 ] && [ "$rc" -lt 128 ] || fail "a batch written to a full disk: exit $rc"
    [ -s "$work/full.err" ] || fail "a batch written to a full disk gave no message"
fi

# 7. A hostile plain batch: broken rows are answered, never fatal, order and ids kept.
{
    echo "id,name,address,postcode,date"
    echo "a1,$forenames $surname,$addr1,$postcode,2026-01-10"
    echo "a2,$forenames $surname,,NOT A POSTCODE,2026-01-10"
    echo "a3,$forenames $surname,,$postcode,31/02/2026"
    echo "a4,,,$postcode,2026-01-10"
    printf 'a5,%s\001\033[2J,,%s,2026-01-10\n' "$surname" "$postcode"
    printf 'a6,\xff\xfe%s,,%s,2026-01-10\n' "$surname" "$postcode"
    echo "a7,$(head -c 12000 /dev/zero | tr '\0' 'x'),,$postcode,2026-01-10"
    echo "a8,$forenames $surname,,$postcode,2026-01-10"
} >"$work/hostile.csv"
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/hostile.csv" --json \
    --out "$work/hostile.jsonl" 2>"$work/hostile.err" || fail "hostile batch failed"
[ "$(wc -l <"$work/hostile.jsonl")" -eq 8 ] || fail "hostile batch lost rows"
[ "$(cut -d'"' -f4 "$work/hostile.jsonl" | tr '\n' ' ')" = "a1 a2 a3 a4 a5 a6 a7 a8 " ] ||
    fail "hostile batch ids or order changed"
sed -n 2p "$work/hostile.jsonl" | grep -q '"verdict":"needs review"' || fail "bad postcode row"
sed -n 2p "$work/hostile.jsonl" | grep -q 'hostile.csv:3' || fail "bad postcode row lacks its line"
sed -n 8p "$work/hostile.jsonl" | grep -q '"verdict":"permissible"' || fail "good row after bad ones"
# No personal data in diagnostics or in error messages.
if grep -q -- "$surname" "$work/hostile.err"; then fail "a surname reached stderr"; fi
if grep '"error"' "$work/hostile.jsonl" | grep -q "NOT A POSTCODE"; then
    fail "an error message quotes the refused value"
fi

# A batch with no checkable row (all unreadable) is still answered row by row and recorded
# as a check of none, so that probing with broken rows leaves a trace.
{
    echo "id,name,address,postcode,date"
    echo "u1,$forenames $surname,,NOT A POSTCODE,2026-01-10"
    echo "u2,,,$postcode,2026-01-10"
} >"$work/unreadable.csv"
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/unreadable.csv" \
    --out "$work/unreadable.out" 2>/dev/null || fail "an all-unreadable batch failed"
[ "$(wc -l <"$work/unreadable.out")" -eq 3 ] || fail "an all-unreadable batch lost rows"

# 8. Every check went through the audit log: entries for single, bequest and batch checks,
# no personal data in them, and the log verifies.
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "the audit log does not verify"
"$rv" audit show --vault "$work/v" --json >"$work/audit.jsonl" 2>/dev/null ||
    fail "cannot list the audit log"
grep -q 'kind=single' "$work/audit.jsonl" || fail "no audit entry for a single check"
grep -q 'kind=bequest' "$work/audit.jsonl" || fail "no audit entry for a bequest check"
grep -q 'kind=batch' "$work/audit.jsonl" || fail "no audit entry for a batch"
grep -q 'kind=batch rows=0' "$work/audit.jsonl" || fail "an all-unreadable batch was not recorded"
if grep -q -- "$surname" "$work/audit.jsonl"; then fail "a surname reached the audit log"; fi
if grep -q -- "$postcode" "$work/audit.jsonl"; then fail "a postcode reached the audit log"; fi

# 9. Refusals: unknown header (3), usage (2), wrong key (4).
printf 'foo,bar\n1,2\n' >"$work/bad.csv"
set +e
"$rv" check --vault "$work/v" --key-file "$work/key" --batch "$work/bad.csv" >/dev/null 2>&1
[ $? -eq 3 ] || fail "unknown header not refused with exit 3"
"$rv" check --vault "$work/v" --key-file "$work/key" --name "A B" --postcode "$postcode" >/dev/null 2>&1
[ $? -eq 2 ] || fail "missing --date not a usage error"
"$rv" check --vault "$work/v" --key-file "$work/key" --batch x --name y >/dev/null 2>&1
[ $? -eq 2 ] || fail "--batch with --name not a usage error"
"$rv" check --vault "$work/v" --key-file "$work/badkey" --name "$forenames $surname" \
    --postcode "$postcode" --date 2026-01-10 >/dev/null 2>&1
[ $? -eq 4 ] || fail "wrong key not refused with exit 4"
set -e
"$rv" check --help | grep -q -- "--death-date" || fail "help lacks --death-date"
echo "check e2e: ok"
