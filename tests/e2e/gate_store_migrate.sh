#!/usr/bin/env bash
# gate_store_migrate.sh - a vault whose principals, honeytokens and disclosure budgets are in
# the vault's own store (as every vault made before the gate had a store of its own,
# <vault>/gate) is moved on its first open, and nothing is lost: the principals log in, the
# honeytoken still raises its alarm, a checker's budget for the day is still spent; the
# vault's store keeps none of those records; the gate's folder is 0700 and its files 0600.
#
# A process killed with SIGKILL at any moment of the move loses nothing either: a dozen
# copies of the vault are each opened by `regvault user list` killed after 0-60 ms, then
# opened again, and each ends with exactly the gate's records of an uninterrupted move.
#
# The old layout is made with RV_OLD_REGVAULT (a regvault built before the gate had its own
# store) when set; otherwise with this binary, whose gate records are then put back into the
# vault's store with mdb_dump and mdb_load (the layout is the same: same keys, same values).
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init gatemigrate
command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null ||
    fail "mdb_dump and mdb_load are not installed (lmdb-utils)"
new=$rv
old=${RV_OLD_REGVAULT:-}
rv=${old:-$new}

cat >"$work/mdbkeys.py" <<'PY'
"""mdbkeys - reads `mdb_dump` (hex) on stdin; `count` prints how many keys start with 0x80,
0x82 or 0x83 (the gate's records), `data` prints the key/value lines alone, `strip` prints
the dump without the mapsize line and without the gate store's marker."""
import sys
lines = sys.stdin.read().splitlines()
end = lines.index("HEADER=END")
head, data = lines[:end + 1], [l for l in lines[end + 1:] if l.startswith(" ")]
pairs = list(zip(data[0::2], data[1::2]))
MARKER = " " + b"\x01gate store".hex()
if sys.argv[1] == "count":
    print(sum(1 for k, _ in pairs if k[1:3] in ("80", "82", "83")))
elif sys.argv[1] == "data":
    print("\n".join(k + "\n" + v for k, v in pairs))
else:
    out = [l for l in head if not l.startswith(("mapsize=", "db_pagesize="))]
    for k, v in pairs:
        if k != MARKER:
            out += [k, v]
    print("\n".join(out + ["DATA=END"]))
PY
gate_records() { mdb_dump "$1/store" | python3 "$work/mdbkeys.py" count; }

# 1. A vault with a registrar, a checker who spends her whole budget (3 electors), and a
#    honeytoken, all made in the old layout.
serve_vault 3000 1 50
user_add gm-chk checker
user_add gm-reg registrar
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "finance share" \
    --format env >"$work/honey.env" 2>/dev/null || fail "regvault honeytoken create failed"
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} budget_checker=3 alert_syslog=no \
    "alert_file=$work/alerts.log"
serve_start
python3 - "$work" <<'PY'
import csv, json, sys
import rvhttp
work = sys.argv[1]
donors = []
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig", newline="") as f:
    rows = csv.reader(f)
    head = [h.lower().replace(" ", "") for h in next(rows)]
    col = {h: i for i, h in enumerate(head)}
    for r in rows:
        if len(r) != len(head) or r[col["electormarkers"]].strip():
            continue
        sn, _, fn = r[col["electorname"]].partition(",")
        if sn.strip() and fn.strip() and r[col["postcode"]].strip():
            donors.append({"name": fn.strip() + " " + sn.strip(),
                           "postcode": r[col["postcode"]].strip(), "date": "2026-01-10"})
        if len(donors) == 6:
            break
assert len(donors) == 6, "too few donors"
json.dump(donors, open(work + "/donors.json", "w"))
tok = rvhttp.ready_token("gm-chk")
for i in range(3):
    r = rvhttp.request("POST", "/v1/checks", donors[i], token=tok)
    assert r.status == 200, "check %d: %d %s" % (i, r.status, r.error())
r = rvhttp.request("POST", "/v1/checks", donors[3], token=tok)
assert r.status == 429, "a 4th elector past a budget of 3: %d %s" % (r.status, r.error())
json.dump(rvhttp._last_step, open(work + "/steps.json", "w"))
PY
serve_stop
if [ -z "$old" ]; then
    # Back to the layout of a vault made before the gate's store: its records in the vault's.
    mdb_dump "$work/v/gate" | python3 "$work/mdbkeys.py" strip >"$work/gate.dump"
    mdb_load -f "$work/gate.dump" "$work/v/store" || fail "mdb_load into the vault's store"
    rm -rf "$work/v/gate" "$work/gate.dump"
fi
[ ! -e "$work/v/gate" ] || fail "the old layout has a gate folder"
n=$(gate_records "$work/v")
[ "$n" -ge 4 ] || fail "the old layout's store holds only $n gate records"
rv=$new

# 2. SIGKILL during the move, on copies; the reference is a move left alone.
cp -a "$work/v" "$work/ref"
"$rv" user --vault "$work/ref" --key-file "$work/key" list >/dev/null 2>&1 || fail "user list (ref)"
mdb_dump "$work/ref/gate" | python3 "$work/mdbkeys.py" data >"$work/ref.data"
[ "$(gate_records "$work/ref")" = 0 ] || fail "the move left gate records in the vault's store"
killed=0
for i in $(seq 0 11); do
    d=$work/k$i
    cp -a "$work/v" "$d"
    "$rv" user --vault "$d" --key-file "$work/key" list >/dev/null 2>&1 &
    pid=$!
    sleep "$(awk -v i="$i" 'BEGIN { printf "%.3f", i * 0.005 }')"
    kill -KILL "$pid" 2>/dev/null && killed=$((killed + 1))
    wait "$pid" 2>/dev/null || true
    "$rv" user --vault "$d" --key-file "$work/key" list >/dev/null 2>&1 ||
        fail "user list after a kill at $((i * 5)) ms"
    mdb_dump "$d/gate" | python3 "$work/mdbkeys.py" data | cmp -s - "$work/ref.data" ||
        fail "after a kill at $((i * 5)) ms the gate's records differ from an uninterrupted move"
    [ "$(gate_records "$d")" = 0 ] || fail "after a kill at $((i * 5)) ms the vault's store keeps gate records"
    rm -rf "$d"
done
echo "gate-migrate: $n records moved; $killed of 12 moves killed part way, none lost"

# 3. The daemon on the old-layout vault: users, budget and honeytoken are all there.
serve_start
[ "$(stat -c %a "$work/v/gate")" = 700 ] || fail "the gate folder is not 0700"
for f in "$work/v/gate"/*; do
    [ "$(stat -c %a "$f")" = 600 ] || fail "${f##*/} in the gate folder is not 0600"
done
[ "$(gate_records "$work/v")" = 0 ] || fail "the vault's store keeps gate records"
python3 - "$work" <<'PY'
import json, re, sys
import rvhttp
work = sys.argv[1]
donors = json.load(open(work + "/donors.json"))
rvhttp._last_step.update(json.load(open(work + "/steps.json")))
tok = rvhttp.ready_token("gm-chk")  # the password changed before the move
r = rvhttp.request("POST", "/v1/checks", donors[0], token=tok)
assert r.status == 200, "an elector shown before the move: %d %s" % (r.status, r.error())
r = rvhttp.request("POST", "/v1/checks", donors[4], token=tok)
assert r.status == 429, "a new elector past the budget spent before the move: %d %s" % (
    r.status, r.error())
r = rvhttp.login("gm-reg")
assert r.status == 201, "the registrar's first login: %d %s" % (r.status, r.error())
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)',
                      open(work + "/honey.env").read(), re.M))
r = rvhttp.request("POST", "/v1/session", {"user": env["REGVAULT_USER"],
                   "password": env["REGVAULT_PASSWORD"], "totp": "000000"}, source="127.0.3.1")
assert r.status == 401, "the decoy login: %d" % r.status
PY
for _ in $(seq 50); do grep -q honeytoken "$work/alerts.log" 2>/dev/null && break; sleep 0.1; done
grep -q "honeytoken.*127\.0\.3\.1" "$work/alerts.log" || fail "no honeytoken alert for the decoy login"
serve_stop

# 4. Nothing in the gate's folder in the clear: not the electors checked (names, postcodes),
#    not the passwords or TOTP secrets, not the honeytoken's label, decoy user or password.
python3 - "$work" <<'PY'
import glob, json, os, re, sys, urllib.parse
work = sys.argv[1]
needles = []
for d in json.load(open(work + "/donors.json")):
    needles += [d["name"], d["name"].split()[-1], d["postcode"], d["postcode"].replace(" ", "")]
for f in glob.glob(work + "/users/*.json"):
    u = json.load(open(f))
    needles += [u["password"], urllib.parse.parse_qs(
        urllib.parse.urlparse(u["totp_uri"]).query)["secret"][0]]
if os.path.exists(work + "/old-passwords.txt"):
    needles += open(work + "/old-passwords.txt").read().split()
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)', open(work + "/honey.env").read(), re.M))
needles += ["finance share", env["REGVAULT_USER"], env["REGVAULT_PASSWORD"]]
needles = [n.lower().encode() for n in needles if len(n) >= 5]
files = glob.glob(work + "/v/gate/*")
def found(blobs):
    return [i for i, n in enumerate(needles) if any(n in b for b in blobs)]
blobs = [open(f, "rb").read().lower() for f in files]
assert 0 in found([b"xx" + needles[0] + b"xx"]), "the search cannot find a needle"
hits = found(blobs)
if hits:
    sys.exit("FAIL: %d of %d secrets or personal data found in the clear in the gate's folder"
             % (len(hits), len(needles)))
print("gate-migrate: none of %d needles in the gate's %d files" % (len(needles), len(files)))
PY
