#!/usr/bin/env bash
# serve_honeytoken_busy.sh - a decoy credential used at login still raises the alarm when
# the daemon refuses the login as busy.
#
# When the password threads are full (with a pool, 8 logins waiting per password thread;
# without one, a hash running on every core), a login is refused 503 busy at once, without
# a hash. A login with a honeytoken's credentials (`regvault honeytoken create`) must still
# ring the decoy's alarm then: it is checked before the refusal. Here 24 clients flood bad
# logins of unknown names (from ever new addresses, so that no address is locked out and the
# queue stays full) while decoy logins are sent, each from an address of its own: the
# decoy's user name with its password, and a real principal's name with the decoy's
# password. Until at least one of each kind has been refused busy (at most 20 s), or none
# can be, which fails. Each decoy login refused busy must look like any other busy answer
# (503 busy, Retry-After) and, after the daemon stops, its address must have exactly one
# "honeytoken" alert in the alert file and its "503 password hashing busy" refusal on the
# audit log. Run with a pool of 2 threads, then with a thread per connection. Prints counts
# only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init honeybusy

serve_vault 300 1 5
user_add hb-chk checker
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "payroll share" \
    --format env >"$work/honey.env" 2>/dev/null || fail "regvault honeytoken create failed"

for threads in 2 0; do
    rm -f "$work/alerts.log" "$work/decoys.json"
    start=$("$rv" audit show --vault "$work/v" --json | wc -l)
    serve_config threads=$threads rate_client=100000 burst_client=100000 alert_syslog=no \
        "alert_file=$work/alerts.log"
    serve_start
    python3 - "$work" "$threads" <<'PY'
import json, os, re, sys, threading, time
import rvhttp
from rvhttp import request

work, threads = sys.argv[1], int(sys.argv[2])
# Enough flooders to fill the password threads' queue (half the cores, 8 waiting each, with
# a pool; as many as the cores without one) on any machine.
N, MAX_S = 5 * (os.cpu_count() or 2) + 14, 20.0
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)',
                      open(work + "/honey.env").read(), re.M))
du, dp = env.get("REGVAULT_USER"), env.get("REGVAULT_PASSWORD")
if not du or not dp:
    sys.exit("FAIL: no decoy user or password in the honeytoken file")
flooding = threading.Event()
lock = threading.Lock()
flood = {}
bad = []


def flooder(i):
    n = 0
    while flooding.is_set():
        # A new address every time: an address's failures lock it out, and a locked-out
        # login is refused before it reaches the password threads.
        try:
            r = request("POST", "/v1/session",
                        {"user": "hb-nobody-%d-%d" % (i, n), "password": "wrong-password",
                         "totp": "000000"}, source="127.3.%d.%d" % (i + 1, n % 250 + 1))
            key = r.status
        except Exception as ex:  # noqa: BLE001
            key = type(ex).__name__
        n += 1
        with lock:
            flood[key] = flood.get(key, 0) + 1


fs = [threading.Thread(target=flooder, args=(i,)) for i in range(N)]
flooding.set()
for t in fs:
    t.start()
time.sleep(1.0)
decoys = []  # (kind, address, status, error, retry-after)
t0 = time.time()
k = 0
while time.time() - t0 < MAX_S:
    for kind, name in (("decoy name", du), ("decoy password", "hb-chk")):
        if any(d[0] == kind and d[2] == 503 for d in decoys):
            continue
        k += 1
        addr = "127.4.%d.%d" % (k // 250, k % 250 + 1)
        r = request("POST", "/v1/session", {"user": name, "password": dp, "totp": "000000"},
                    source=addr)
        decoys.append((kind, addr, r.status, r.error(), r.headers.get("retry-after")))
    if all(any(d[0] == kind and d[2] == 503 for d in decoys)
           for kind in ("decoy name", "decoy password")):
        break
    time.sleep(0.05)
flooding.clear()
for t in fs:
    t.join(120)
for kind in ("decoy name", "decoy password"):
    if not any(d[0] == kind and d[2] == 503 for d in decoys):
        bad.append("threads=%d: no login with the %s was refused busy in %.0f s of a flood of "
                   "%d clients (logins %s)" % (threads, kind, MAX_S, N, sorted(flood.items(), key=str)))
for kind, addr, status, err, retry in decoys:
    if status not in (401, 503) or (status == 503 and (err != "busy" or not retry)):
        bad.append("threads=%d: a login with the %s was answered %d %s (Retry-After %s), want "
                   "401, or 503 busy with Retry-After" % (threads, kind, status, err, retry))
json.dump([d for d in decoys if d[2] == 503], open(work + "/decoys.json", "w"))
print("threads=%d: %d decoy logins, %d refused busy; flood %s"
      % (threads, len(decoys), sum(1 for d in decoys if d[2] == 503),
         sorted(flood.items(), key=str)))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    sys.exit(1)
PY
    serve_alive "after the flood with decoy logins (threads=$threads)"
    serve_stop
    "$rv" audit show --vault "$work/v" --json --from "$start" >"$work/entries.jsonl" ||
        fail "regvault audit show failed"
    python3 - "$work" "$threads" <<'PY'
import json, os, sys
work, threads = sys.argv[1], int(sys.argv[2])
decoys = json.load(open(work + "/decoys.json"))
alerts = []
if os.path.exists(work + "/alerts.log"):
    alerts = [json.loads(l) for l in open(work + "/alerts.log") if l.strip()]
entries = [json.loads(l) for l in open(work + "/entries.jsonl") if l.strip()]
bad = []
for kind, addr, _, _, _ in decoys:
    rung = [a for a in alerts if a.get("client") == addr and a.get("kind") == "honeytoken"]
    busy = [e for e in entries if e["client"] == addr and e["action"] == "request"
            and e["outcome"].startswith("503 password hashing busy")]
    if len(rung) != 1:
        bad.append("threads=%d: a login with the %s refused busy raised %d honeytoken alerts, "
                   "want 1" % (threads, kind, len(rung)))
    if len(busy) != 1:
        bad.append("threads=%d: a login with the %s refused busy: %d busy refusals on the "
                   "audit log, want 1" % (threads, kind, len(busy)))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    sys.exit(1)
print("threads=%d: every decoy login refused busy raised its alarm and is on the audit log"
      % threads)
PY
done
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "regvault audit verify failed"
echo "serve_honeytoken_busy: all checks passed"
