#!/usr/bin/env bash
# serve_audit.sh - every request to the daemon, accepted or refused, is in the audit log, and
# the log verifies.
#
# A mixed run sends good and bad requests of every kind: logins (first ones that must change
# the password, the changes, later ones, a wrong password), 401 (no token, a made-up
# token), 403 (a role the endpoint does not serve), 404, 405, 400 (malformed JSON, invalid
# UTF-8, an unknown field), 413, 415, single and batch checks, an ingest, stats, audit and
# user reads, alerts, /healthz, /metrics and a logout. Each kind of request comes from its
# own loopback address (127.0.1.N; the daemon listens on 127.0.0.1), so that after the
# daemon is stopped the entries of each kind can be told apart by their client address and
# counted exactly against what was sent, with the action and outcome the kind must have (an
# audit read answered 400 must not be recorded as "ok").
# No entry may come from an address the test did not use. Then `regvault audit verify`
# passes with the verifier key taken before the run, and a copy of the log with one byte of
# an entry flipped fails verification (exit 5). Prints counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init audit

serve_vault 2000 2 20
user_add aud-chk checker
user_add aud-reg registrar
user_add aud-aud auditor
user_add aud-adm admin
"$rv" audit key --vault "$work/v" >"$work/vkey"
start=$("$rv" audit show --vault "$work/v" --json | wc -l)
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} session_idle=600 rate_principal=1000 burst_principal=1000 rate_client=10000 \
    burst_client=10000 budget_checker=100000 alert_syslog=no
serve_start

python3 - "$work" "$start" <<'PY'
import csv, io, json, os, sys
import rvhttp
from rvhttp import request, login, user, save_user

work, start = sys.argv[1], int(sys.argv[2])
bad = []
plan = []  # (kind, address, requests sent, entries per request, action, outcome prefix)


def addr(n):
    return "127.0.1.%d" % n


def send(kind, n, k, method, path, status, action, outcome, per=1, **kw):
    """Sends k requests of one kind from 127.0.1.n; each must get status."""
    got = {}
    last = None
    for _ in range(k):
        r = request(method, path, source=addr(n), **kw)
        got[r.status] = got.get(r.status, 0) + 1
        last = r
    if got != {status: k}:
        bad.append("%s: statuses %s, want %d x %d" % (kind, got, k, status))
    plan.append((kind, addr(n), k, per, action, outcome))
    return last


# Donor, batch, register file (synthetic).
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    e = next(r for r in csv.DictReader(f) if r["Elector Markers"] == "" and r["Address1"])
sn, fn = [x.strip() for x in e["Elector Name"].split(",", 1)]
donor = {"name": fn + " " + sn, "address": e["Address1"], "postcode": e["PostCode"],
         "date": "2026-01-10"}
batch = "id,name,address,postcode,date\nb1,%s,%s,%s,2026-01-10\nb2,Zebedee Quixotic,,%s,2026-01-10\nb3,,,,\n" % (
    donor["name"], donor["address"].replace(",", " "), donor["postcode"], donor["postcode"])
register2 = open(work + "/s/E07000002/full-2025-12-01.csv", "rb").read()

# Logins: the first (must change), the change, the second; a wrong password.
tokens = {}
names = ["aud-chk", "aud-reg", "aud-aud", "aud-adm"]


def login_all(kind, n):
    """Logs every principal in from 127.0.1.n; each must get 201. Keeps their tokens."""
    got = {}
    for nm in names:
        r = login(nm, source=addr(n))
        got[r.status] = got.get(r.status, 0) + 1
        if r.status == 201:
            tokens[nm] = r.json()["token"]
    if got != {201: len(names)}:
        bad.append("%ss: %s, want %d x 201" % (kind, got, len(names)))
    plan.append((kind, addr(n), len(names), 1, "login", ""))


login_all("first login", 1)
got = {}
for nm in names:
    d = user(nm)
    newp = "Audit-" + os.urandom(12).hex()
    r = request("POST", "/v1/session/password", {"password": d["password"], "new_password": newp},
                token=tokens.get(nm), source=addr(2))
    got[r.status] = got.get(r.status, 0) + 1
    if r.status == 204:
        d["password"] = newp
        save_user(nm, d)
if got != {204: 4}:
    bad.append("password changes: %s, want 4 x 204" % got)
# each change is recorded, and so is the end of the principal's other sessions
plan.append(("password change", addr(2), 4, 2, "login", ""))
login_all("second login", 24)
got = {}
for i in range(2):
    r = login("aud-chk", password="Wrong-password-%d" % i, source=addr(3))
    got[r.status] = got.get(r.status, 0) + 1
if got != {401: 2}:
    bad.append("wrong password: %s, want 2 x 401" % got)
plan.append(("wrong password", addr(3), 2, 1, "login", ""))

chk, reg, aud, adm = (tokens.get(n) for n in names)
J = "application/json"
send("no token", 4, 3, "GET", "/v1/stats", 401, "request", "401 no token")
send("made-up token", 5, 3, "GET", "/v1/stats", 401, "request", "401 bad token",
     token="rvs_" + "Q" * 43)
send("wrong role", 6, 3, "GET", "/v1/stats", 403, "stats", "denied", token=chk)
send("unknown path", 7, 2, "GET", "/v1/nothing-here", 404, "request", "404", token=chk)
send("wrong method", 8, 2, "GET", "/v1/checks", 405, "request", "405", token=chk)
send("malformed JSON", 9, 2, "POST", "/v1/checks", 400, "request", "400 malformed json",
     body=b'{"name": ', ctype=J, token=chk)
send("too large", 10, 2, "POST", "/v1/checks", 413, "request", "413",
     body=dict(donor, address="x" * 40000), token=chk)
send("wrong type", 11, 2, "POST", "/v1/checks", 415, "request", "415",
     body=json.dumps(donor), ctype="text/plain", token=chk)
send("check", 12, 5, "POST", "/v1/checks", 200, "check", "", body=donor, token=chk)
send("stats", 13, 2, "GET", "/v1/stats", 200, "stats", "ok", token=reg)
send("checkpoint", 14, 2, "GET", "/v1/audit/checkpoint", 200, "audit.read", "", token=aud)
send("batch", 15, 1, "POST", "/v1/checks/batch?format=plain", 200, "check", "", body=batch,
     ctype="text/csv", token=chk)
send("healthz", 17, 2, "GET", "/healthz", 200, "request", "200 healthz")
send("metrics", 18, 1, "GET", "/metrics", 200, "request", "200 metrics", token=adm)
send("unknown field", 19, 1, "POST", "/v1/checks", 400, "request", "400 unknown field",
     body=dict(donor, extra="x"), token=chk)
send("invalid UTF-8", 20, 1, "POST", "/v1/checks", 400, "request", "400 invalid utf-8",
     body=b'{"name":"\xff\xfe","address":"","postcode":"","date":"2026-01-10"}', ctype=J,
     token=chk)
send("ingest", 21, 1, "POST", "/v1/ingest?area=E07000002&edition=2025-12-01", 200, "ingest", "",
     per=2, body=register2, ctype="text/csv", token=reg)
send("users", 22, 1, "GET", "/v1/users", 200, "users", "", token=adm)
send("alerts", 23, 1, "GET", "/v1/alerts", 200, "alerts", "ok", token=aud)
send("proof", 25, 1, "GET", "/v1/audit/proof?index=1", 200, "audit.read", "", token=aud)
# an audit read the daemon answers 400 must not be recorded as a success
send("bad proof index", 27, 1, "GET", "/v1/audit/proof?index=999999", 400, "audit.read", "!ok",
     token=aud)
send("logout", 16, 1, "DELETE", "/v1/session", 204, "request", "204 logout", token=aud)
send("after logout", 26, 1, "GET", "/v1/audit/checkpoint", 401, "request", "401 bad token",
     token=aud)
json.dump(plan, open(work + "/plan.json", "w"))
print("mixed run: %d requests of %d kinds" % (sum(p[2] for p in plan), len(plan)))
if bad:
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the mixed run"
serve_stop

"$rv" audit show --vault "$work/v" --json --from "$start" >"$work/entries.jsonl" ||
    fail "audit show failed"
python3 - "$work/plan.json" "$work/entries.jsonl" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
plan.append(["liveness probe (serve_alive)", "127.0.0.1", 1, 1, "request", "200 healthz"])
entries = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
bad = []
addrs = {p[1] for p in plan}
by = {}
local = [e for e in entries if e["client"] == "local"]  # the daemon's own start and stop
for e in entries:
    if e["client"] == "local":
        if e["action"] != "request" or e["principal"] == "-":
            bad.append("entry %d from local: %s %s" % (e["index"], e["action"], e["outcome"][:30]))
        continue
    if e["client"] not in addrs:
        bad.append("entry %d from %s, which the test never used (action %s)" %
                   (e["index"], e["client"], e["action"]))
        continue
    if e["action"] == "alert":  # alerts the requests raised (new address, ...) are extra
        continue
    by.setdefault(e["client"], []).append(e)
total = 0
for kind, addr, sent, per, action, outcome in plan:
    es = by.get(addr, [])
    total += len(es)
    if len(es) != sent * per:
        bad.append("%s: %d requests sent, %d entries, want %d" % (kind, sent, len(es), sent * per))
    if outcome.startswith("!"):  # "!ok": any outcome but one starting with "ok"
        wrong = [e for e in es if e["action"] != action or e["outcome"].startswith(outcome[1:])]
    else:
        wrong = [e for e in es if e["action"] != action or not e["outcome"].startswith(outcome)]
    if wrong:
        bad.append("%s: %d entries with action/outcome %s/%s, want %s/%s..." %
                   (kind, len(wrong), wrong[0]["action"], wrong[0]["outcome"][:40], action, outcome))
print("audit log: %d entries since the daemon started, %d for the %d requests sent, %d alerts, "
      "%d of the daemon's own (start, stop)" % (len(entries), total, sum(p[2] for p in plan),
                                                sum(1 for e in entries if e["action"] == "alert"),
                                                len(local)))
if len(local) < 1:
    bad.append("the daemon's start is not recorded")
if bad:
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    print("FAIL: %d kinds of request are not recorded as sent" % len(bad), file=sys.stderr)
    sys.exit(1)
PY

set +e
"$rv" audit verify --vault "$work/v" --trusted-key-file "$work/vkey" >"$work/verify.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 0 ] || fail "audit verify after the run exited $rc: $(head -3 "$work/verify.out")"
grep -q "^audit log verified: " "$work/verify.out" || fail "verify printed no summary"
echo "$(head -1 "$work/verify.out")"

# Tampering: flip one byte inside the last request's entry (a copy of the vault).
cp -r "$work/v" "$work/t"
last=$(( $(wc -l <"$work/entries.jsonl") + start - 1 ))
off=$(od -An -tu8 -j $((16 + last * 8)) -N8 "$work/t/audit/index" | tr -d ' ')
orig=$(od -An -tx1 -j $((off + 20)) -N1 "$work/t/audit/entries" | tr -d ' ')
flip=$(printf '%02x' $(( 0x$orig ^ 0x01 )))
printf "\\x$flip" | dd of="$work/t/audit/entries" bs=1 seek=$((off + 20)) conv=notrunc status=none
set +e
"$rv" audit verify --vault "$work/t" --trusted-key-file "$work/vkey" >"$work/verify.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 5 ] || fail "audit verify of a tampered log exited $rc, want 5"
grep -q "FAILED at entry $last" "$work/verify.out" ||
    fail "tamper not located at entry $last: $(head -2 "$work/verify.out")"
echo "tampered copy: verify exits 5 at entry $last"
echo "serve_audit: all checks passed"
