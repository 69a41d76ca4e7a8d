#!/usr/bin/env bash
# serve_pool_long.sh - with a pool of threads (threads = 2), long requests (register ingests,
# a large batch, alert reads) run on the daemon's slow threads, not on the pool's, so that
# checks keep being answered while they run.
#
# Two clients send checks on keep-alive connections. Then a registrar uploads area 2's
# register and, once that ingest is under way, area 3's (the second waits for the vault's one
# writer, so with long requests on the pool both its threads would be held), while a checker
# uploads a batch of BATCH_ROWS donors and an auditor reads GET /v1/alerts again and again.
# Every long request must succeed (the ingests stored their rows, the batch answered every
# row once and in input order, every alert read 200), and the checks must go on: every one
# answered 200, none slower than CHECK_MAX_S, and at least MIN_CHECKS of them while the long
# requests ran. After the daemon stops, `regvault audit verify` passes. Prints counts only.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/serve.sh"
serve_init poollong

serve_vault 150000 3 5
user_add pg-chk checker
user_add pg-bat checker
user_add pg-reg registrar
user_add pg-aud auditor
serve_config threads=2 session_idle=600 rate_principal=100000 burst_principal=100000 \
    rate_client=100000 burst_client=100000 budget_checker=10000000 probe_window=100000 \
    probe_nomatch_ratio=1 probe_sector_max=100000 probe_sweep_run=100000 \
    probe_alerts_suspend=1000 alert_syslog=no "alert_file=$work/alerts.log"
serve_start

python3 - "$work" <<'PY'
import csv, http.client, io, json, socket, sys, threading, time
import rvhttp
from rvhttp import conn, ready_token

work = sys.argv[1]
CHECK_MAX_S, MIN_CHECKS, BATCH_ROWS = 0.5, 20, 20000
bad, lock = [], threading.Lock()


def entries(area, n):
    with open("%s/s/%s/full-2025-12-01.csv" % (work, area), encoding="utf-8-sig") as f:
        out = []
        for r in csv.DictReader(f):
            if r["Elector Markers"] == "" and r["Address1"]:
                sn, fn = [x.strip() for x in r["Elector Name"].split(",", 1)]
                out.append((fn + " " + sn, r["PostCode"]))
                if len(out) == n:
                    break
        return out


donors = [{"name": n, "address": "", "postcode": pc, "date": "2026-01-10"}
          for n, pc in entries("E07000001", 20)]
b = io.StringIO()
w = csv.writer(b, lineterminator="\n")
w.writerow(["id", "name", "address", "postcode", "date"])
people = entries("E07000001", 500)
for i in range(BATCH_ROWS):
    n, pc = people[i % len(people)]
    w.writerow(["r%d" % i, n if i % 3 else n + "x", "", pc, "2026-01-10"])
batch = b.getvalue().encode()

chk, bat = ready_token("pg-chk"), ready_token("pg-bat")
reg, aud = ready_token("pg-reg"), ready_token("pg-aud")
stop, long_on = threading.Event(), threading.Event()
lat_during, during = [0.0], [0]
results = {}


def checker(k):
    c = conn()
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + chk}
    i = k
    try:
        while not stop.is_set():
            on = long_on.is_set()
            t0 = time.time()
            c.request("POST", "/v1/checks", json.dumps(donors[i % len(donors)]), h)
            r = c.getresponse()
            r.read()
            dt = time.time() - t0
            i += 2
            with lock:
                if on or long_on.is_set():
                    during[0] += 1
                    lat_during[0] = max(lat_during[0], dt)
                if r.status != 200:
                    bad.append("a check was answered %d" % r.status)
                    return
    except Exception as ex:  # noqa: BLE001
        with lock:
            bad.append("a checking client failed: %s" % type(ex).__name__)
    finally:
        c.close()


def upload(label, path, body, token, sent=None):
    """POSTs body on a connection of its own; sets the event sent once it is all sent."""
    raw = socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=300)
    s = rvhttp._ctx.wrap_socket(raw)
    try:
        s.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: text/csv\r\n"
                   "Authorization: Bearer %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                   % (path, rvhttp.PORT, token, len(body))).encode())
        s.sendall(body)
        if sent is not None:
            sent.set()
        r = http.client.HTTPResponse(s, method="POST")
        r.begin()
        data = r.read()
        results[label] = (r.status, data)
    except Exception as ex:  # noqa: BLE001
        results[label] = (0, type(ex).__name__.encode())
    finally:
        s.close()
        if sent is not None:
            sent.set()


def alerts():
    c = conn()
    n = 0
    try:
        while long_on.is_set():
            c.request("GET", "/v1/alerts", headers={"Authorization": "Bearer " + aud})
            r = c.getresponse()
            body = r.read()
            n += 1
            if r.status != 200 or not isinstance(json.loads(body), list):
                with lock:
                    bad.append("GET /v1/alerts was answered %d" % r.status)
                return
    except Exception as ex:  # noqa: BLE001
        with lock:
            bad.append("the alerts client failed: %s" % type(ex).__name__)
    finally:
        c.close()
        results["alerts"] = n


cts = [threading.Thread(target=checker, args=(k,)) for k in range(2)]
for t in cts:
    t.start()
time.sleep(1.0)
long_on.set()
t0 = time.time()
sent1, sent2 = threading.Event(), threading.Event()
ed2 = open(work + "/s/E07000002/full-2025-12-01.csv", "rb").read()
ed3 = open(work + "/s/E07000003/full-2025-12-01.csv", "rb").read()
lts = [threading.Thread(target=upload, args=("ingest2", "/v1/ingest?area=E07000002&edition=2025-12-01",
                                             ed2, reg, sent1))]
lts[0].start()
sent1.wait(120)
time.sleep(0.1)
lts.append(threading.Thread(target=upload, args=("ingest3", "/v1/ingest?area=E07000003&edition=2025-12-01",
                                                 ed3, reg, sent2)))
lts[1].start()
sent2.wait(120)
time.sleep(0.2)
lts.append(threading.Thread(target=upload, args=("batch", "/v1/checks/batch?format=plain", batch, bat)))
lts[2].start()
at = threading.Thread(target=alerts)
at.start()
for t in lts:
    t.join(600)
long_s = time.time() - t0
long_on.clear()
at.join(120)
time.sleep(0.3)
stop.set()
for t in cts:
    t.join(120)

for label in ("ingest2", "ingest3"):
    st, data = results.get(label, (0, b""))
    if st != 200:
        bad.append("%s was answered %d" % (label, st))
    elif json.loads(data).get("stored", 0) < 1000:
        bad.append("%s stored too few rows" % label)
st, data = results.get("batch", (0, b""))
if st != 200:
    bad.append("the batch was answered %d" % st)
else:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    ids = [r[0] for r in rows[1:] if r]
    if ids != ["r%d" % i for i in range(BATCH_ROWS)]:
        bad.append("the batch answered %d rows, not each of %d once in input order"
                   % (len(ids), BATCH_ROWS))
if results.get("alerts", 0) < 1:
    bad.append("no GET /v1/alerts was answered")
if during[0] < MIN_CHECKS:
    bad.append("only %d checks answered during %.1f s of long requests (at least %d)"
               % (during[0], long_s, MIN_CHECKS))
if lat_during[0] > CHECK_MAX_S:
    bad.append("a check took %.2f s during the long requests (at most %.1f)"
               % (lat_during[0], CHECK_MAX_S))
print("long requests %.1f s: %d checks answered meanwhile, slowest %.3f s; %d alert reads"
      % (long_s, during[0], lat_during[0], results.get("alerts", 0)), file=sys.stderr)
if bad:
    for x in bad[:5]:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the long requests"
serve_stop
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "regvault audit verify failed"
echo "serve_pool_long: all checks passed"
