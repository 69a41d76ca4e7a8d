#!/usr/bin/env bash
# serve_pool_login.sh - with a pool of threads (threads = 2), password checks (Argon2id, 64
# MiB each) run on the daemon's password threads, not on the pool's, so that checks keep
# being answered while logins flood in.
#
# For four seconds, 24 clients from 24 addresses send bad logins for one principal as fast
# as they are answered, while one client sends checks on a keep-alive connection. Every
# login is answered 401, 503 busy (with Retry-After) or 429 locked (the principal's lockout,
# as without a pool), at least one is refused busy, the daemon's peak memory grows by no
# more than one hash per core and a margin, and the checks go on: every one answered 200,
# none slower than CHECK_MAX_S, and at least MIN_CHECKS of them during the flood. Then a
# good login of another principal succeeds, and after the daemon stops the audit log holds
# one "503 password hashing busy" entry per busy answer and passes `regvault audit verify`.
# Prints counts only.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/serve.sh"
serve_init poollogin

serve_vault 500 1 5
user_add pl-chk checker
user_add pl-victim checker
user_add pl-late checker
serve_config threads=2 session_idle=600 rate_principal=100000 burst_principal=100000 \
    rate_client=100000 burst_client=100000 budget_checker=1000000 probe_window=100000 \
    probe_nomatch_ratio=1 probe_sector_max=100000 probe_sweep_run=100000 \
    probe_alerts_suspend=1000 alert_syslog=no "alert_file=$work/alerts.log"
serve_start

python3 - "$serve_pid" "$(nproc)" "$work" >"$work/counts.txt" <<'PY'
import csv, json, sys, threading, time
import rvhttp
from rvhttp import conn, ready_token, request

pid, ncpu, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
CHECK_MAX_S, MIN_CHECKS, FLOOD_S, N = 1.0, 20, 4.0, 24
bad, lock = [], threading.Lock()


def hwm_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM for the daemon")


with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    rows = [r for r in csv.DictReader(f) if r["Elector Markers"] == "" and r["Address1"]][:20]
donors = []
for e in rows:
    sn, fn = [x.strip() for x in e["Elector Name"].split(",", 1)]
    donors.append({"name": fn + " " + sn, "address": "", "postcode": e["PostCode"],
                   "date": "2026-01-10"})
token = ready_token("pl-chk")
base = hwm_kib()
stop = threading.Event()
flooding = threading.Event()
lat, during = [], [0]
logins = {}


def checker():
    c = conn()
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + token}
    i = 0
    try:
        while not stop.is_set():
            t0 = time.time()
            c.request("POST", "/v1/checks", json.dumps(donors[i % len(donors)]), h)
            r = c.getresponse()
            r.read()
            dt = time.time() - t0
            i += 1
            with lock:
                lat.append(dt)
                if flooding.is_set():
                    during[0] += 1
                if r.status != 200:
                    bad.append("a check during the flood was answered %d" % r.status)
                    return
    except Exception as ex:  # noqa: BLE001
        with lock:
            bad.append("the checking client failed: %s" % type(ex).__name__)
    finally:
        c.close()


def flooder(i):
    n = 0
    while flooding.is_set():
        try:
            r = request("POST", "/v1/session",
                        {"user": "pl-nobody-%d-%d" % (i, n), "password": "wrong-password",
                         "totp": "000000"}, source="127.0.3.%d" % (i + 1))
        except Exception as ex:  # noqa: BLE001
            with lock:
                bad.append("a login failed: %s" % type(ex).__name__)
            return
        n += 1
        key = (r.status, r.error())
        with lock:
            logins[key] = logins.get(key, 0) + 1
            if key not in ((401, "bad_credentials"), (503, "busy"), (429, "locked")):
                bad.append("a bad login was answered %d %s" % key)
            if r.status in (503, 429) and not r.headers.get("retry-after"):
                bad.append("%d %s without Retry-After" % key)


ct = threading.Thread(target=checker)
ct.start()
time.sleep(0.5)
flooding.set()
fs = [threading.Thread(target=flooder, args=(i,)) for i in range(N)]
for t in fs:
    t.start()
time.sleep(FLOOD_S)
flooding.clear()
for t in fs:
    t.join(120)
stop.set()
ct.join(60)
grown_mib = (hwm_kib() - base) / 1024
allowed_mib = 64 * ncpu + 160
busy = logins.get((503, "busy"), 0)
if grown_mib > allowed_mib:
    bad.append("peak memory grew by %.0f MiB (at most %d)" % (grown_mib, allowed_mib))
if busy == 0:
    bad.append("%d clients flooding logins: none was refused busy" % N)
if during[0] < MIN_CHECKS:
    bad.append("only %d checks answered during a %.0f s login flood (at least %d)"
               % (during[0], FLOOD_S, MIN_CHECKS))
slow = max(lat) if lat else 0
if slow > CHECK_MAX_S:
    bad.append("a check took %.2f s during the login flood (at most %.1f)" % (slow, CHECK_MAX_S))
try:
    ready_token("pl-late")
except Exception as ex:  # noqa: BLE001
    bad.append("a good login after the flood failed: %s" % type(ex).__name__)
print("logins %s; %d checks during the flood, slowest %.3f s; peak memory +%.0f MiB"
      % (sorted((("%d %s" % k), v) for k, v in logins.items()), during[0], slow, grown_mib),
      file=sys.stderr)
print(busy)
if bad:
    for x in bad[:5]:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the login flood"
serve_stop
busy=$(cat "$work/counts.txt")
"$rv" audit show --vault "$work/v" >"$work/audit.txt" 2>/dev/null ||
    fail "regvault audit show failed"
logged=$(grep -c "503 password hashing busy" "$work/audit.txt" || true)
[ "$logged" = "$busy" ] ||
    fail "$busy logins were answered 503 busy, but $logged such refusals are on the audit log"
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "regvault audit verify failed"
echo "serve_pool_login: all checks passed"
