#!/usr/bin/env bash
# End-to-end test of canaries, honeytokens and `regvault alerts` through the real binary.
# A small synthetic register is ingested and canary electors planted. Nobody can list the
# canaries, so the test finds them the way an intruder holding a checker's session would:
# a batch that sweeps every listed surname over every postcode of the area. Before that,
# the alerts are empty and a batch of the register's own donations raises nothing (no
# false alarms); after it, every canary has raised a high alert naming the local actor.
# Then decoy credentials are made in the three formats (the JSON parsed with python3), the
# label kept out of the files and the log, and `regvault alerts --json` and --since read.
set -euo pipefail
rv=${REGVAULT:?set REGVAULT to the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-e2e-canary.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
k=(--key-file "$work/key")

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors 300 --areas 1 --months 0 --donations 200 --seed 5 --out "$work/s" >/dev/null
"$rv" init --vault "$work/v" "${k[@]}" --expected-electors 300 >/dev/null 2>&1
"$rv" ingest --vault "$work/v" "${k[@]}" "$work/s" >/dev/null 2>&1
area=$(ls "$work/s" | grep -v csv | head -1)

# 1. Usage: add needs --count; list does not exist; a bad area is refused.
set +e
"$rv" canary add --vault "$work/v" "${k[@]}" >/dev/null 2>&1
[ $? -eq 2 ] || fail "canary add without --count accepted"
"$rv" canary list --vault "$work/v" "${k[@]}" >/dev/null 2>&1
[ $? -eq 2 ] || fail "canary list must not exist"
"$rv" canary add --vault "$work/v" "${k[@]}" --count 2 --area NOSUCH >/dev/null 2>&1
[ $? -eq 2 ] || fail "canary add to an unknown area accepted"
"$rv" canary add --vault "$work/v" "${k[@]}" --count 0 >/dev/null 2>&1
[ $? -eq 2 ] || fail "canary add --count 0 accepted"
set -e
"$rv" canary --help | grep -q "canary add --vault DIR --count N" || fail "canary usage"
"$rv" alerts --help | grep -q "\-\-since T" || fail "alerts usage"

# 2. Plant three canaries; only the count is printed.
out=$("$rv" canary add --vault "$work/v" "${k[@]}" --count 3 --area "$area")
[ "$out" = "added 3 canary electors" ] || fail "canary add said: $out"
"$rv" audit show --vault "$work/v" | grep -q "canary .*ok added=3" || fail "canary add not recorded"

# 3. No alerts yet; the register's own donors raise none.
[ -z "$("$rv" alerts --vault "$work/v" 2>/dev/null)" ] || fail "alerts before any check"
"$rv" check --vault "$work/v" "${k[@]}" --batch "$work/s/donations.csv" --out "$work/don.csv" \
    2>/dev/null
[ -z "$("$rv" alerts --vault "$work/v" --json)" ] || fail "a real donor raised an alert"

# 4. A sweep of surnames over the area's postcodes shows every canary: one alert each.
python3 - "$work" "$RV_SOURCE_DIR/data/names/surnames.csv" <<'PY'
import csv, glob, sys
work, names = sys.argv[1], sys.argv[2]
pcs = set()
for f in glob.glob(work + "/s/*/full-*.csv"):
    with open(f, encoding="utf-8-sig", newline="") as fh:
        for r in csv.DictReader(fh):
            if r.get("PostCode"):
                pcs.add(r["PostCode"])
with open(names, encoding="utf-8") as fh:
    surnames = [l.split(",")[0] for l in fh.read().splitlines()[1:] if l]
with open(work + "/sweep.csv", "w", newline="") as out:
    w = csv.writer(out)
    w.writerow(["id", "name", "address", "postcode", "date"])
    n = 0
    for s in surnames:
        for p in sorted(pcs):
            n += 1
            w.writerow(["r%d" % n, s, "", p, "2026-01-10"])
PY
"$rv" check --vault "$work/v" "${k[@]}" --batch "$work/sweep.csv" --out "$work/sweep.out" \
    2>/dev/null
"$rv" alerts --vault "$work/v" --json >"$work/alerts.jsonl"
python3 - "$work/alerts.jsonl" "$(id -un)" <<'PY' || fail "canary alerts wrong: $(cat "$work/alerts.jsonl")"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 3, len(rows)
assert len({r["detail"] for r in rows}) == 3
for r in rows:
    assert r["kind"] == "canary" and r["severity"] == "high", r
    assert r["principal"] == sys.argv[2] and r["client"] == "local", r
PY
# The table has a header and three rows; the alert file holds the same three lines.
[ "$("$rv" alerts --vault "$work/v" | wc -l)" -eq 4 ] || fail "alerts table"
[ "$(grep -c '"kind":"canary"' "$work/v/alerts.log")" -eq 3 ] || fail "alert file"
# The answers to the sweep are ordinary answers: nothing marks a canary in them.
grep -qi canary "$work/sweep.out" && fail "an answer says canary"

# 5. --since: a future time shows nothing, a duration shows everything recent.
[ -z "$("$rv" alerts --vault "$work/v" --since 2099-01-01T00:00Z 2>/dev/null)" ] ||
    fail "--since in the future"
[ "$("$rv" alerts --vault "$work/v" --since 1h --json | wc -l)" -eq 3 ] || fail "--since 1h"
set +e
"$rv" alerts --vault "$work/v" --since yesterday >/dev/null 2>&1
[ $? -eq 2 ] || fail "--since yesterday accepted"
set -e

# 6. Honeytokens in three formats; the label in neither the file nor the log.
label="finance file share"
"$rv" honeytoken create --vault "$work/v" "${k[@]}" --label "$label" \
    --url https://regvault.example.org:8443 >"$work/h.env"
grep -Eq '^REGVAULT_TOKEN=rvs_[A-Za-z0-9_-]{43}$' "$work/h.env" || fail "env token shape"
grep -Eq '^REGVAULT_USER=[a-z][a-z0-9._-]+$' "$work/h.env" || fail "env user"
grep -q '^REGVAULT_URL=https://regvault.example.org:8443$' "$work/h.env" || fail "env url"
grep -q '^REGVAULT_PASSWORD=.' "$work/h.env" || fail "env password"
grep -q '^REGVAULT_TOTP_SECRET=[A-Z2-7]\{32\}$' "$work/h.env" || fail "env totp"
grep -q '^# ' "$work/h.env" || fail "env header"
"$rv" honeytoken create --vault "$work/v" "${k[@]}" --label "$label" --format json \
    --out "$work/h.json" 2>/dev/null
[ "$(stat -c %a "$work/h.json")" = 600 ] || fail "credentials file mode"
python3 - "$work/h.json" <<'PY' || fail "honeytoken JSON"
import json, re, sys
r = json.load(open(sys.argv[1]))["regvault"]
assert re.fullmatch(r"rvs_[A-Za-z0-9_-]{43}", r["token"]), r
assert re.fullmatch(r"[a-z][a-z0-9._-]{0,62}", r["user"]), r
assert r["url"].startswith("https://") and r["password"] and r["totp_secret"]
PY
"$rv" honeytoken create --vault "$work/v" "${k[@]}" --label "$label" --format ini >"$work/h.ini"
grep -q '^\[regvault\]$' "$work/h.ini" || fail "ini section"
grep -Eq '^token = rvs_[A-Za-z0-9_-]{43}$' "$work/h.ini" || fail "ini token"
set +e
"$rv" honeytoken create --vault "$work/v" "${k[@]}" --label "$label" --out "$work/h.json" \
    >/dev/null 2>&1
[ $? -ne 0 ] || fail "an existing file was overwritten"
"$rv" honeytoken create --vault "$work/v" "${k[@]}" --label "$label" --format yaml >/dev/null 2>&1
[ $? -eq 2 ] || fail "--format yaml accepted"
set -e
grep -q "$label" "$work/h.env" "$work/h.json" "$work/h.ini" && fail "the label is in a file"
grep -rqF "$label" "$work/v" && fail "the label is in the vault or its log"
token=$(sed -n 's/^REGVAULT_TOKEN=//p' "$work/h.env")
grep -rqF "$token" "$work/v" && fail "the token is in the vault in the clear"
"$rv" audit show --vault "$work/v" | grep -q "honeytoken .*format=env id=[0-9a-f]\{16\}" ||
    fail "honeytoken creation not recorded"
# Creating decoys raises no alert.
[ "$("$rv" alerts --vault "$work/v" --json | wc -l)" -eq 3 ] || fail "honeytoken create alerted"
"$rv" audit verify --vault "$work/v" >/dev/null || fail "audit log does not verify"
echo "ok"
