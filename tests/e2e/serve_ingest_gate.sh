#!/usr/bin/env bash
# serve_ingest_gate.sh - a long ingest through the daemon does not stop the gate: while a
# register edition of some hundred thousand rows is still being ingested (POST /v1/ingest,
# one store transaction for the whole load), a check that shows electors the checker has not
# been shown today (so its disclosure budget is written before the answer) and a login
# (which writes the principal's record) are both answered, and before the upload is.
#
# The gate's state (principals, budgets, honeytokens) is kept in a store of its own beside
# the vault's, so its writes do not wait for the vault's one writer. Latencies are printed
# (counts and times only, no personal data).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
. "$src/tests/e2e/lib/serve.sh"
serve_init ingest-gate

electors=${RV_INGEST_GATE_ELECTORS:-800000}
serve_vault "$electors" 2 50
user_add ig-registrar registrar
user_add ig-checker checker
user_add ig-login checker
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} rate_principal=1000 burst_principal=1000 \
    rate_client=10000 burst_client=10000 budget_checker=100000
serve_start

python3 - "$work" <<'PY'
import csv, http.client, io, json, socket, sys, threading, time
import rvhttp
work = sys.argv[1]

# Donors from area 1 (ingested before the daemon started): each check shows a new elector.
donors = []
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig", newline="") as f:
    rows = csv.reader(f)
    head = [h.lower().replace(" ", "").replace("_", "") for h in next(rows)]
    col = {h: i for i, h in enumerate(head)}
    for r in rows:
        if len(r) != len(head) or r[col["electormarkers"]].strip():
            continue
        if "electorsurname" in col:
            sn = r[col["electorsurname"]].strip()
            fn = r[col.get("electorforename", col.get("electorforenames"))].strip()
        else:
            sn, _, fn = r[col["electorname"]].partition(",")
            sn, fn = sn.strip(), fn.strip()
        pc = r[col["postcode"]].strip()
        if sn and fn and pc:
            donors.append({"name": fn + " " + sn, "postcode": pc, "date": "2026-01-10"})
        if len(donors) >= 20:
            break
assert len(donors) >= 3, "too few donors in area 1: %d" % len(donors)

reg = rvhttp.ready_token("ig-registrar")
chk = rvhttp.ready_token("ig-checker")
# A first check, before the upload: the checker's budget record exists already.
r = rvhttp.request("POST", "/v1/checks", donors[0], token=chk)
assert r.status == 200, "check before the upload: %d %s" % (r.status, r.error())

edition = open(work + "/s/E07000002/full-2025-12-01.csv", "rb").read()
rows = edition.count(b"\n") - 1
up = {}

sent = threading.Event()

def upload():
    """POST /v1/ingest, setting `sent` once the whole body is written: the daemon then holds
    the upload and ingests it before it answers."""
    t0 = time.monotonic()
    head = ("POST /v1/ingest?area=E07000002&edition=2025-12-01 HTTP/1.1\r\n"
            "Host: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n" % (rvhttp.PORT, reg, len(edition)))
    raw = socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=600)
    sock = rvhttp._ctx.wrap_socket(raw)
    try:
        sock.sendall(head.encode("latin-1") + edition)
        up["sent"] = time.monotonic()
        sent.set()
        r = http.client.HTTPResponse(sock, method="POST")
        r.begin()
        body = r.read()
        up["status"], up["secs"] = r.status, time.monotonic() - t0
        up["done"] = time.monotonic()
        up["error"] = body[:200].decode("utf-8", "replace") if r.status != 200 else None
    finally:
        sock.close()
        sent.set()

th = threading.Thread(target=upload)
th.start()
sent.wait()
time.sleep(0.3)  # the daemon has the body; its load is under way
if not th.is_alive():
    sys.exit("FAIL: the upload of %d rows was answered (%s) before the test could check "
             "during it: make it larger (RV_INGEST_GATE_ELECTORS)" % (rows, up.get("status")))

# A check and a login at once, each timed; both must be answered while the upload is not.
res = {}

def timed(name, fn):
    t0 = time.monotonic()
    r = fn()
    res[name] = (r.status, r.error(), time.monotonic() - t0, time.monotonic())

tc = threading.Thread(target=timed, args=("check", lambda: rvhttp.request(
    "POST", "/v1/checks", donors[1], token=chk)))
# ig-login's first login: no TOTP step of it used yet, so no wait for the clock.
tl = threading.Thread(target=timed, args=("login", lambda: rvhttp.login("ig-login")))
tc.start()
tl.start()
tc.join()
tl.join()
th.join()
assert up["status"] == 200, "upload: %d %s" % (up["status"], up["error"])
assert res["check"][0] == 200, "check during the upload: %d %s" % res["check"][:2]
assert res["login"][0] == 201, "login during the upload: %d %s" % res["login"][:2]
print("ingest-gate: %d rows uploaded and ingested in %.1f s; during the ingest, check "
      "answered in %.2f s, login in %.2f s" % (rows, up["secs"], res["check"][2], res["login"][2]))
late = [n for n in ("check", "login") if res[n][3] >= up["done"]]
if late:
    sys.exit("FAIL: %s answered only once the upload was (%.1f s after it was sent): the gate "
             "waited for the ingest" % (" and ".join(late), up["done"] - up["sent"]))
PY
serve_alive "after the upload"
serve_stop
