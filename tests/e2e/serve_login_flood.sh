#!/usr/bin/env bash
# serve_login_flood.sh - bad logins cannot take the daemon's memory or time.
#
# Every password check is Argon2id with 64 MiB: unbounded, 24 parallel logins took over a
# gigabyte. Here 32 parallel bad logins come from 32 addresses (so no address limit stops
# them): the daemon's peak resident memory (VmHWM) may grow by at most what one hash per
# core and a margin take, every answer is 401, 503 busy (with Retry-After) or 429 locked,
# and at least one is 503 when there are more logins than cores. RV_SERVE_THREADS=N runs it
# against a pool of N threads. Then bad logins from one address past
# its bucket (rate_client 1/s, burst 6) are answered 429 at once, without a hash, and a
# honeytoken's credentials sent from it are refused alike but still raise the alarm; unknown
# paths and requests with a bad token or none are admitted through the same bucket.
# Refusals are on the audit log. Prints counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init loginflood

serve_vault 300 1 5
user_add lf-chk checker
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "shared drive" \
    --format env >"$work/honey.env" 2>/dev/null || fail "regvault honeytoken create failed"
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} rate_client=1 burst_client=6 alert_syslog=no "alert_file=$work/alerts.log"
serve_start

ncpu=$(nproc)
python3 - "$serve_pid" "$ncpu" "$work" <<'PY'
import os, re, sys, threading, time
import rvhttp
from rvhttp import request

pid, ncpu, work = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
bad = []


def hwm_kib():
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise SystemExit("no VmHWM for the daemon")


base = hwm_kib()
N = 32
results = [None] * N
start = threading.Event()


def one(i):
    start.wait()
    t0 = time.time()
    try:
        r = request("POST", "/v1/session",
                    {"user": "lf-chk", "password": "wrong-password-%d" % i, "totp": "000000"},
                    source="127.0.1.%d" % (i + 1))
        results[i] = (r.status, r.headers.get("retry-after"), r.error(), time.time() - t0)
    except Exception as e:  # noqa: BLE001
        results[i] = (0, None, type(e).__name__, time.time() - t0)


ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]
for t in ts:
    t.start()
start.set()
for t in ts:
    t.join(120)
peak = hwm_kib()
grown_mib = (peak - base) / 1024
# One Argon2id (64 MiB) per core, plus the threads' stacks and buffers.
allowed_mib = 64 * ncpu + 160
statuses = sorted(set(r[0] for r in results if r))
busy = [r for r in results if r and r[0] == 503]
if grown_mib > allowed_mib:
    bad.append("the daemon's peak memory grew by %.0f MiB for %d parallel logins (at most %d)"
               % (grown_mib, N, allowed_mib))
for r in results:
    # 429 locked: the principal's lockout, once enough of them were checked (with a pool,
    # whose password threads take them in turn, rather than refuse all but one per core).
    if r is None or (r[0], r[2]) not in ((401, "bad_credentials"), (503, "busy"),
                                         (429, "locked")):
        bad.append("a parallel bad login was answered %s, want 401, 503 busy or 429 locked"
                   % (r and r[0]))
        break
for r in busy:
    if r[2] != "busy" or not r[1]:
        bad.append("503 without error busy and Retry-After")
        break
if N > 2 * ncpu and not busy:
    bad.append("%d parallel logins on %d cores: none was refused busy" % (N, ncpu))
print("parallel: %d logins, statuses %s, %d busy, peak memory +%.0f MiB (at most %d)"
      % (N, statuses, len(busy), grown_mib, allowed_mib))

# One address past its bucket: refused at once (no hash, no wait for one). The 14 logins
# are sent together, so that they arrive within a fraction of the refill time however long
# each hash takes on a loaded machine (sent one after another, slow hashes would give the
# bucket time to refill and the test would prove nothing).
time.sleep(7)  # refill the bucket of 127.0.2.1
codes = [None] * 14
go = threading.Event()


def nobody(i):
    go.wait()
    # A new unknown name each time, so that no lockout of a name answers instead.
    r = request("POST", "/v1/session",
                {"user": "nobody%d" % i, "password": "wrong", "totp": "000000"},
                source="127.0.2.1")
    codes[i] = (r.status if r.status != 429 else (429, r.error()), r.headers.get("retry-after"))


ts = [threading.Thread(target=nobody, args=(i,)) for i in range(14)]
for t in ts:
    t.start()
t0 = time.time()
go.set()
for t in ts:
    t.join(120)
sent_in = time.time() - t0
if any(c is None for c in codes):
    bad.append("a login from one address got no answer")
codes = [c for c in codes if c is not None]
if any(isinstance(c[0], tuple) and not c[1] for c in codes):
    bad.append("429 without Retry-After")
codes = [c[0] for c in codes]
limited = codes.count((429, "rate_limited"))
if limited < 5:
    bad.append("14 logins sent at once from one address at burst 6: only %d refused 429 "
               "(all answered in %.1f s)" % (limited, sent_in))
if any(c not in (401, 503, (429, "rate_limited")) for c in codes):
    bad.append("statuses from one address: %s" % sorted(set(map(str, codes))))
# The decoy's credentials from that address, over its rate: refused 429 like any other
# login, and still the honeytoken's alarm.
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)', open(work + "/honey.env").read(), re.M))
du, dp = env.get("REGVAULT_USER"), env.get("REGVAULT_PASSWORD")
if not du or not dp:
    bad.append("no decoy user or password in the honeytoken file")
else:
    for _ in range(20):  # empty the address's bucket (an unknown path costs a token)
        if request("GET", "/nope", source="127.0.2.1").status == 429:
            break
    r = request("POST", "/v1/session", {"user": du, "password": dp, "totp": "000000"},
                source="127.0.2.1")
    # 429 unless the machine was so slow that a token came back in between; either way the
    # alarm must ring.
    if r.status not in (429, 401):
        bad.append("the decoy login got %d, want 429 (or 401)" % r.status)
    print("decoy login from an address over its rate: %d" % r.status)
    alerts = open(work + "/alerts.log").read() if os.path.exists(work + "/alerts.log") else ""
    if not any("honeytoken" in l and "127.0.2.1" in l for l in alerts.splitlines()):
        bad.append("no honeytoken alert for the decoy login over the address's rate")
# Unknown paths from one address are admitted through the same bucket.
time.sleep(7)
nf = [request("GET", "/no/such/path/%d" % i, source="127.0.2.2").status for i in range(14)]
if nf.count(429) < 5 or nf.count(404) < 1:
    bad.append("unknown paths from one address: %d refused 429, %d answered 404"
               % (nf.count(429), nf.count(404)))
# So are requests with a bad token, or none.
bt = [request("GET", "/v1/stats", token="rvs_" + "A" * 43, source="127.0.2.3").status
      for i in range(10)]
bt += [request("GET", "/v1/stats", source="127.0.2.3").status for i in range(4)]
if bt.count(429) < 5 or bt.count(401) < 1:
    bad.append("bad tokens from one address: %d refused 429, %d answered 401"
               % (bt.count(429), bt.count(401)))
print("one address: %d of 14 logins refused 429, %d of 14 unknown paths, %d of 14 bad tokens"
      % (limited, nf.count(429), bt.count(429)))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the login flood"
serve_stop
# The refusals are on the audit log.
"$rv" audit show --vault "$work/v" >"$work/audit.txt" 2>/dev/null ||
    fail "regvault audit show failed"
grep -q "503 password hashing busy" "$work/audit.txt" || fail "no busy refusal on the audit log"
grep -q "429 client rate limit" "$work/audit.txt" || fail "no address refusal on the audit log"
echo "serve_login_flood: all checks passed"
