#!/usr/bin/env bash
# serve_ingest_grow.sh - a register ingested through the daemon that grows the vault's store
# (its map is made again, larger) while checks are being answered must not disturb them.
#
# Two clients send checks on keep-alive connections while a registrar uploads area 2's and
# area 3's registers at once. Growing the map unmaps the one every thread is using, so it
# must wait until no other thread's transaction is open (the other ingest's write
# transaction included) and hold new ones back until it is done. Every
# check must be answered 200, both ingests must store their rows, the store's file must
# have grown (else the test proves nothing), the daemon must still be serving, and
# `regvault audit verify` must pass after it stops. Run with a thread per connection and
# with a pool. Prints counts only.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
. "$here/lib/serve.sh"
serve_init ingestgrow

serve_vault 240000 3 5
user_add ig-chk checker
user_add ig-reg registrar
cp -a "$work/v" "$work/v0"
cp -a "$work/users" "$work/users0"

for threads in 0 2; do
    rm -rf "$work/v" "$work/users"
    cp -a "$work/v0" "$work/v"
    cp -a "$work/users0" "$work/users"
    serve_config "threads=$threads" session_idle=600 rate_principal=100000 \
        burst_principal=100000 rate_client=100000 burst_client=100000 budget_checker=10000000 \
        probe_window=100000 probe_nomatch_ratio=1 probe_sector_max=100000 \
        probe_sweep_run=100000 probe_alerts_suspend=1000 alert_syslog=no \
        "alert_file=$work/alerts.log"
    before=$(stat -c %s "$work/v/store/data.mdb")
    serve_start
    python3 - "$work" <<'PY'
import csv, json, sys, threading, time
import rvhttp
from rvhttp import conn, ready_token

work = sys.argv[1]
bad, lock = [], threading.Lock()


def donors(n):
    with open("%s/s/E07000001/full-2025-12-01.csv" % work, encoding="utf-8-sig") as f:
        out = []
        for r in csv.DictReader(f):
            if r["Elector Markers"] == "" and r["Address1"]:
                sn, fn = [x.strip() for x in r["Elector Name"].split(",", 1)]
                out.append({"name": fn + " " + sn, "address": "", "postcode": r["PostCode"],
                            "date": "2026-01-10"})
                if len(out) == n:
                    return out
    return out


people = donors(50)
chk, reg = ready_token("ig-chk"), ready_token("ig-reg")
stop = threading.Event()
count = [0]


def checker(k):
    c = conn()
    h = {"Content-Type": "application/json", "Authorization": "Bearer " + chk}
    i = k
    try:
        while not stop.is_set():
            c.request("POST", "/v1/checks", json.dumps(people[i % len(people)]), h)
            r = c.getresponse()
            r.read()
            i += 2
            with lock:
                count[0] += 1
                if r.status != 200:
                    bad.append("a check was answered %d" % r.status)
                    return
    except Exception as ex:  # noqa: BLE001
        with lock:
            bad.append("a checking client failed: %s" % type(ex).__name__)
    finally:
        c.close()


def ingest(area):
    body = open("%s/s/%s/full-2025-12-01.csv" % (work, area), "rb").read()
    try:
        r = rvhttp.request("POST", "/v1/ingest?area=%s&edition=2025-12-01" % area, body, reg,
                           "text/csv")
    except Exception as ex:  # noqa: BLE001
        with lock:
            bad.append("the ingest of an area failed: %s" % type(ex).__name__)
        return
    with lock:
        if r.status != 200:
            bad.append("the ingest of an area was answered %d" % r.status)
        elif r.json().get("stored", 0) < 1000:
            bad.append("the ingest of an area stored too few rows")


ts = [threading.Thread(target=checker, args=(k,)) for k in range(2)]
for t in ts:
    t.start()
time.sleep(0.5)
# Both at once: the second's growth must wait for the first's write transaction.
its = [threading.Thread(target=ingest, args=(a,)) for a in ("E07000002", "E07000003")]
for t in its:
    t.start()
for t in its:
    t.join(600)
stop.set()
for t in ts:
    t.join(120)
print("%d checks answered while two areas were ingested at once" % count[0], file=sys.stderr)
if count[0] < 10:
    bad.append("only %d checks were answered" % count[0])
if bad:
    for x in bad[:5]:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
    serve_alive "after the ingests (threads = $threads)"
    serve_stop
    after=$(stat -c %s "$work/v/store/data.mdb")
    [ "$after" -gt "$before" ] ||
        fail "the store did not grow ($before -> $after bytes): the test proves nothing"
    "$rv" audit verify --vault "$work/v" >/dev/null 2>&1 ||
        fail "regvault audit verify failed (threads = $threads)"
    echo "threads = $threads: the store grew from $before to $after bytes under checks"
done
echo "serve_ingest_grow: all checks passed"
