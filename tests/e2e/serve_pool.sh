#!/usr/bin/env bash
# serve_pool.sh - the daemon with a pool of threads (threads = 2), where a request's answer
# waits for its audit entry without holding a thread: the connection is suspended and resumed
# once the entry is durable (http.c).
#
# 1. Forty-eight clients on keep-alive connections send checks, /healthz, unauthenticated
#    checks (401) and unknown paths (404) at once, far more requests in flight than threads:
#    every answer has its expected status, and after the daemon stops the audit log holds
#    exactly one entry per request of each kind, and `regvault audit verify` passes.
# 2. The log then fails under the daemon (its file size limit is cut to one byte with
#    prlimit, so the next write fails): checks whose answers are already made must be
#    answered 503 audit_unavailable, never 200 with a result, and so must /healthz; an
#    admin's new user and budget change are refused 503 and, read from the vault after the
#    daemon is gone, were not made.
# 3. A thread per connection (threads = 0; the pool is the default) passes serve_audit.sh
#    (every kind of request, accepted or refused, on the log), serve_spool.sh (uploads and
#    streamed batches), serve_login_flood.sh (parallel logins bounded), serve_chunked_drop.sh
#    (uploads cut off) and serve_keepalive.sh.
# Prints counts only.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/serve.sh"
serve_init pool
command -v prlimit >/dev/null || fail "prlimit is not installed (util-linux)"

serve_vault 2000 1 50
user_add pool-chk checker
user_add pool-adm admin
"$rv" user --vault "$work/v" --key-file "$work/key" budget pool-chk 1000000 >/dev/null 2>&1 ||
    fail "regvault user budget failed"
serve_config threads=2 session_idle=600 rate_principal=100000 burst_principal=100000 \
    rate_client=100000 burst_client=100000 budget_checker=1000000 probe_window=100000 \
    probe_nomatch_ratio=1 probe_sector_max=100000 probe_sweep_run=100000 \
    probe_alerts_suspend=1000 alert_syslog=no "alert_file=$work/alerts.log"
start=$("$rv" audit show --vault "$work/v" --json | wc -l)
serve_start

python3 - "$work" >"$work/counts.json" <<'PY'
import csv, json, sys, threading
import rvhttp
from rvhttp import conn, ready_token

work = sys.argv[1]
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    rows = [r for r in csv.DictReader(f) if r["Elector Markers"] == "" and r["Address1"]][:40]
donors = []
for e in rows:
    sn, fn = [x.strip() for x in e["Elector Name"].split(",", 1)]
    donors.append({"name": fn + " " + sn, "address": "", "postcode": e["PostCode"],
                   "date": "2026-01-10"})
token = ready_token("pool-chk")
open(work + "/token", "w").write(token)
open(work + "/admtoken", "w").write(ready_token("pool-adm"))
N, PER = 48, 30
sent = {"check": 0, "healthz": 0, "401": 0, "404": 0}
bad, lock = [], threading.Lock()


def client(i):
    c = conn()
    mine = {k: 0 for k in sent}
    try:
        for j in range(PER):
            kind = ("check", "check", "healthz", "401", "check", "404")[(i + j) % 6]
            h = {"Content-Type": "application/json"}
            if kind == "check":
                h["Authorization"] = "Bearer " + token
                c.request("POST", "/v1/checks", json.dumps(donors[(i * PER + j) % len(donors)]), h)
                want = 200
            elif kind == "401":
                c.request("POST", "/v1/checks", json.dumps(donors[0]), h)
                want = 401
            elif kind == "healthz":
                c.request("GET", "/healthz")
                want = 200
            else:
                c.request("GET", "/v1/no-such-%d" % j)
                want = 404
            r = c.getresponse()
            body = r.read()
            mine[kind] += 1
            if r.status != want:
                with lock:
                    bad.append("%s answered %d, want %d" % (kind, r.status, want))
            elif kind == "check":
                j2 = json.loads(body)
                if not isinstance(j2, dict) or "verdict" not in j2:
                    with lock:
                        bad.append("a check answer without a verdict")
            if r.getheader("Connection", "").lower() == "close":
                c.close()
                c = conn()
    except Exception as ex:
        with lock:
            bad.append("client %d: %s" % (i, type(ex).__name__))
    finally:
        c.close()
        with lock:
            for k, v in mine.items():
                sent[k] += v


ts = [threading.Thread(target=client, args=(i,)) for i in range(N)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if bad:
    print("MISMATCH", len(bad), "bad answers, first:", bad[0], file=sys.stderr)
    sys.exit(1)
print(json.dumps(sent))
PY
echo "sent: $(cat "$work/counts.json")"

# 2. The log fails: answers already made must be replaced by 503.
prlimit --pid "$serve_pid" --fsize=1:1 || fail "prlimit failed"
python3 - "$work" <<'PY' || fail "an answer was sent although its audit entry failed"
import csv, json, sys, threading
import rvhttp
from rvhttp import request

work = sys.argv[1]
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    e = next(r for r in csv.DictReader(f) if r["Elector Markers"] == "" and r["Address1"])
sn, fn = [x.strip() for x in e["Elector Name"].split(",", 1)]
donor = {"name": fn + " " + sn, "address": "", "postcode": e["PostCode"], "date": "2026-01-10"}
tok = open(work + "/token").read().strip()
bad, lock = [], threading.Lock()


def one(i):
    r = request("POST", "/v1/checks", donor, token=tok) if i % 4 else request("GET", "/healthz")
    with lock:
        if r.status != 503 or r.error() != "audit_unavailable":
            bad.append("answered %d %s, want 503 audit_unavailable" % (r.status, r.error()))


ts = [threading.Thread(target=one, args=(i,)) for i in range(16)]
for t in ts:
    t.start()
for t in ts:
    t.join()
adm = open(work + "/admtoken").read().strip()
r = request("POST", "/v1/users", {"name": "pool-new", "role": "checker"}, token=adm)
if r.status != 503 or r.error() != "audit_unavailable":
    bad.append("a new user under a failed log: %d %s" % (r.status, r.error()))
r = request("PUT", "/v1/users/pool-chk/budget", {"budget": 5}, token=adm)
if r.status != 503 or r.error() != "audit_unavailable":
    bad.append("a budget change under a failed log: %d %s" % (r.status, r.error()))
if bad:
    print("MISMATCH", len(bad), "of 18:", bad[0], file=sys.stderr)
    sys.exit(1)
print("after the log failed: 18 of 18 answered 503 audit_unavailable")
PY
kill -KILL "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=

# The refused changes were not made.
"$rv" user --vault "$work/v" --key-file "$work/key" list --json >"$work/users.json" 2>&1 ||
    fail "regvault user list failed"
python3 - "$work/users.json" <<'PY' || fail "a change refused under a failed log was made"
import json, sys
users = {u["name"]: u for u in json.load(open(sys.argv[1]))}
if "pool-new" in users:
    sys.exit("MISMATCH the user added under a failed log exists")
if users["pool-chk"]["budget"] != 1000000:
    sys.exit("MISMATCH the budget set under a failed log changed")
print("no change was made under the failed log")
PY

# Every request of part 1 is on the log, and the log verifies.
"$rv" audit verify --vault "$work/v" >"$work/verify.txt" 2>&1 || fail "audit verify failed: $(tail -3 "$work/verify.txt")"
"$rv" audit show --vault "$work/v" --json --from "$start" >"$work/entries.jsonl"
python3 - "$work" <<'PY' || fail "the audit log does not hold every request"
import json, sys
work = sys.argv[1]
sent = json.load(open(work + "/counts.json"))
got = {"check": 0, "healthz": 0, "401": 0, "404": 0}
for line in open(work + "/entries.jsonl"):
    e = json.loads(line)
    a, o = e.get("action"), e.get("outcome", "")
    if a == "check" and e.get("client") == "127.0.0.1" and o != "" and "denied" not in o:
        got["check"] += 1
    elif a == "request" and o == "200 healthz":
        got["healthz"] += 1
    elif a == "request" and o.startswith("401"):
        got["401"] += 1
    elif a == "request" and o.startswith("404"):
        got["404"] += 1
# Part 2's requests failed before their entries were durable: none may be on the log.
if got != sent:
    print("MISMATCH audit entries %s, requests %s" % (got, sent), file=sys.stderr)
    sys.exit(1)
print("audit: every request on the log, %d entries counted" % sum(got.values()))
PY

# 3. The pool is the default (threads = 4), so the other suites run with it. They run here
#    again with a thread per connection (threads = 0), the other mode.
for suite in serve_audit serve_spool serve_login_flood serve_chunked_drop serve_keepalive; do
    RV_SERVE_THREADS=0 bash "$here/$suite.sh" >"$work/$suite.txt" 2>&1 ||
        fail "$suite.sh with threads = 0: $(tail -5 "$work/$suite.txt")"
done
echo "serve_audit, serve_spool, serve_login_flood, serve_chunked_drop and serve_keepalive pass" \
    "with threads = 0"
echo "PASS"
