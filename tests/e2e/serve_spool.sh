#!/usr/bin/env bash
# serve_spool.sh - an upload to the daemon never reaches the vault's disk in the clear.
#
# A donations batch (POST /v1/checks/batch) and a register edition (POST /v1/ingest) are
# sent in two parts with a pause between them. During the pause, and again after the
# answer, every file under the vault's folder (records, indexes, the audit log, any spool)
# is searched for the upload's donor names, surnames and postcodes (with and without the
# space): none may be there. The search is first shown to work: a file planted in the
# vault's folder with one of the needles is found, and removed. Then the shared cap on
# uploads held in memory (upload_memory_max) refuses an upload past it, 503 busy, and frees
# what each upload held; a chunked upload (no length given beforehand) refused part way, past
# the endpoint's body cap or the shared cap, is answered (413 body_too_large or 503 busy,
# JSON {error, message}) once its body has been read, and recorded; and a client's
# connections are capped. Prints counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init spool

serve_vault 2000 2 20
user_add sp-chk checker
user_add sp-chk2 checker  # for the second daemon: a TOTP step is never offered twice
user_add sp-reg registrar
user_add sp-reg2 registrar # for the second daemon
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} rate_principal=1000 burst_principal=1000 rate_client=10000 burst_client=10000 \
    budget_checker=100000 probe_sector_max=100000 probe_sweep_run=100000 \
    probe_alerts_suspend=1000 alert_syslog=no "alert_file=$work/alerts.log"
serve_start

python3 - "$work" <<'PY'
import csv, io, os, subprocess, sys, time
import rvhttp
from rvhttp import ready_token

work = sys.argv[1]
vault = work + "/v"
bad = []


def entries_of(path, n):
    """(full name, surname, postcode) of the file's first n plain entries whose surname has
    6 letters or more."""
    out = []
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = text.split("\n", 1)[0]
    if True:
        for r in csv.DictReader(io.StringIO(text), delimiter="\t" if "\t" in first else ","):
            if r.get("Elector Surname"):
                sn, fn = r["Elector Surname"].strip(), (r.get("Elector Forename") or "").strip()
            elif "," in (r.get("Elector Name") or ""):
                sn, fn = [x.strip() for x in r["Elector Name"].split(",", 1)]
            else:
                continue
            # ASCII only, so that the needle's bytes are the same in any encoding of the file.
            full = fn + " " + sn
            if len(sn) < 6 or not sn.isalpha() or not full.isascii() or not r.get("PostCode"):
                continue
            out.append((full, sn, r["PostCode"]))
            if len(out) >= n:
                break
    return out


def needles_of(entries):
    out = set()
    for full, sn, pc in entries:
        out.update([full, sn, pc, pc.replace(" ", "")])
    return sorted(out)


def scan(needles, when):
    """Files under the vault holding any needle (case-insensitive, by grep -F)."""
    nf = "%s/needles-%s" % (work, when)
    open(nf, "w", encoding="utf-8").write("\n".join(needles) + "\n")
    r = subprocess.run(["grep", "-rFil", "-f", nf, vault], capture_output=True)
    os.unlink(nf)
    if r.returncode not in (0, 1):
        bad.append("grep failed (%d) %s" % (r.returncode, when))
    return len([x for x in r.stdout.split(b"\n") if x])


def upload(path, body, token, ctype, needles, label):
    """Sends headers and the first part of body, pauses, scans, sends the rest, reads the
    answer, scans again."""
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
            "Content-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
            % (path, rvhttp.PORT, token, ctype, len(body)))
    import http.client, socket
    raw = socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=120)
    s = rvhttp._ctx.wrap_socket(raw)
    try:
        s.sendall(head.encode())
        half = len(body) // 2
        s.sendall(body[:half])
        time.sleep(2)  # the daemon holds the first part now
        h = scan(needles, "during")
        if h:
            bad.append("%s: %d vault files hold the upload's personal data during it" % (label, h))
        s.sendall(body[half:])
        r = http.client.HTTPResponse(s, method="POST")
        r.begin()
        r.read()
        if r.status != 200:
            bad.append("%s: status %d, want 200" % (label, r.status))
    finally:
        s.close()
    h = scan(needles, "after")
    if h:
        bad.append("%s: %d vault files hold the upload's personal data after it" % (label, h))


chk = ready_token("sp-chk")
reg = ready_token("sp-reg")

# The batch: donors from area 1's register (found) and made-up ones (not found).
donors = entries_of(work + "/s/E07000001/full-2025-12-01.csv", 100)
b = io.StringIO()
w = csv.writer(b, lineterminator="\n")
w.writerow(["id", "name", "address", "postcode", "date"])
for i in range(600):
    full, sn, pc = donors[i % len(donors)]
    w.writerow(["r%d" % i, full if i % 3 else full + "x", "",
                pc if i % 2 else pc.replace(" ", ""), "2026-01-10"])
body = b.getvalue().encode()
needles = needles_of(donors)
names = [full for full, _, _ in donors]
assert all(x.lower().encode() in body.lower() for x in needles)

# The search can find a needle in a vault file: plant one and remove it.
probe = os.path.join(vault, "planted-probe")
open(probe, "wb").write(b"xx" + names[0].encode() + b"xx")
if scan([names[0]], "probe") != 1:
    bad.append("the search did not find a planted needle: it cannot work")
os.unlink(probe)
if scan(needles, "before"):
    bad.append("the vault holds the batch's personal data before the upload")

upload("/v1/checks/batch?format=plain", body, chk, "text/csv", needles, "batch")

# The register edition of area 2, ingested through the daemon.
edition = open(work + "/s/E07000002/full-2025-12-01.csv", "rb").read()
needles2 = needles_of(entries_of(work + "/s/E07000002/full-2025-12-01.csv", 100))
upload("/v1/ingest?area=E07000002&edition=2025-12-01", edition, reg, "text/csv", needles2,
       "ingest")

print("spool: batch of %d bytes (%d needles), edition of %d bytes (%d needles)"
      % (len(body), len(needles), len(edition), len(needles2)))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the uploads"
serve_stop

# All uploads in memory share one cap (upload_memory_max): with 40k, a 30,000-byte batch
# half sent holds 15,000 bytes, so a second whole one is refused 503 busy while it waits;
# the first then completes, and once both are gone the second is taken (nothing leaked).
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} rate_principal=1000 burst_principal=1000 rate_client=10000 burst_client=10000 \
    budget_checker=100000 probe_sector_max=100000 probe_sweep_run=100000 probe_nomatch_ratio=1 \
    probe_alerts_suspend=1000 alert_syslog=no "alert_file=$work/alerts.log" upload_memory_max=40k \
    body_max_ingest=32k max_connections_per_client=3
serve_start
python3 - <<'PY'
import http.client, socket, sys, time
import rvhttp
from rvhttp import ready_token

chk = ready_token("sp-chk2")
open(rvhttp.WORK + "/chk2", "w").write(chk)
rows = ["id,name,address,postcode,date"]
while sum(len(r) + 1 for r in rows) < 30000:
    rows.append("m%d,Zebedee Quixotic,,ZZ99 9ZZ,2026-01-10" % len(rows))
body = ("\n".join(rows) + "\n").encode()


def open_upload(n):
    """Headers and the first n bytes of the batch, on a connection of its own."""
    raw = socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=60)
    s = rvhttp._ctx.wrap_socket(raw)
    s.sendall(("POST /v1/checks/batch?format=plain HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Authorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: %d\r\n"
               "Connection: close\r\n\r\n" % (rvhttp.PORT, chk, len(body))).encode())
    s.sendall(body[:n])
    return s


def finish(s, n):
    """Sends the rest of the batch and reads the answer: its status."""
    s.sendall(body[n:])
    r = http.client.HTTPResponse(s, method="POST")
    r.begin()
    r.read()
    s.close()
    return r.status


def whole():
    """The batch at once on a fresh connection (rvhttp.request stops sending when an answer
    comes early)."""
    return rvhttp.request("POST", "/v1/checks/batch?format=plain", body, token=chk,
                          ctype="text/csv")


bad = []
a = open_upload(len(body) // 2)
time.sleep(1)  # the daemon holds the first half now
r = whole()
if r.status != 503 or "retry-after" not in r.headers:
    bad.append("a second upload past upload_memory_max: %d, want 503 with Retry-After" % r.status)
status = finish(a, len(body) // 2)
if status != 200:
    bad.append("the first upload: %d, want 200" % status)
r = whole()
if r.status != 200:
    bad.append("the second upload once the first is done: %d, want 200" % r.status)
print("spool: upload_memory_max checked with a %d-byte batch" % len(body))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the shared upload cap"

# Chunked uploads refused part way: an ingest past body_max_ingest (32k) is answered 413,
# a batch past upload_memory_max (40k) 503 busy with Retry-After, both as JSON, once the
# body is in; the connection then serves the next request.
python3 - <<'PY'
import json, sys
import rvhttp
from rvhttp import conn, ready_token

bad = []
for who, path, n, want, code in (
        ("sp-reg2", "/v1/ingest?area=E07000002&edition=2025-12-01", 100, 413, "body_too_large"),
        ("sp-chk2", "/v1/checks/batch?format=plain", 100, 503, "busy")):
    token = ready_token(who) if who != "sp-chk2" else open(rvhttp.WORK + "/chk2").read()
    c = conn()

    def parts():
        yield b"id,name,address,postcode,date\n"
        for i in range(n):
            yield ("m%d,Zebedee Quixotic,,ZZ99 9ZZ,2026-01-10\n" % i).encode() * 30

    try:
        c.request("POST", path, body=parts(), encode_chunked=True,
                  headers={"Authorization": "Bearer " + token, "Content-Type": "text/csv"})
        r = c.getresponse()
        body = r.read()
    except Exception as ex:  # noqa: BLE001
        bad.append("a chunked upload to %s past its cap got no answer (%s)"
                   % (path.split("?")[0], type(ex).__name__))
        continue
    try:
        j = json.loads(body)
    except ValueError:
        j = {}
    if r.status != want or j.get("error") != code or not j.get("message"):
        bad.append("a chunked upload to %s past its cap: %d %s, want %d %s"
                   % (path.split("?")[0], r.status, j.get("error"), want, code))
    if want == 503 and not r.getheader("Retry-After"):
        bad.append("503 busy without Retry-After")
    if r.getheader("Connection", "").lower() != "close":
        c.request("GET", "/healthz")
        r2 = c.getresponse()
        r2.read()
        if r2.status != 200:
            bad.append("the connection after a refused chunked upload: %d" % r2.status)
    c.close()
print("spool: chunked uploads past their caps answered 413 and 503")
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after chunked uploads past their caps"

# Connections per client (max_connections_per_client = 3 here): a fourth from the same
# address is closed before its TLS handshake; once one of the three closes, a new one is
# taken and answered.
python3 - <<'PY'
import socket, ssl, sys, time
import rvhttp


def connect():
    raw = socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=10)
    return rvhttp._ctx.wrap_socket(raw)


held = [connect() for _ in range(3)]
time.sleep(0.3)
try:
    extra = connect()
    extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = extra.recv(64)
    extra.close()
    if got:
        sys.exit("FAIL: a fourth connection from one client was answered")
except (OSError, ssl.SSLError):
    pass
held.pop().close()
time.sleep(0.5)
r = rvhttp.request("GET", "/healthz")
if r.status != 200:
    sys.exit("FAIL: a connection after one of the three closed: %d, want 200" % r.status)
for c in held:
    c.close()
print("spool: a fourth connection from one client refused, a new one taken once one closed")
PY
serve_stop
"$rv" audit show --vault "$work/v" >"$work/audit.txt" 2>/dev/null || fail "regvault audit show failed"
grep -q "413 too large.*POST /v1/ingest" "$work/audit.txt" ||
    fail "the chunked ingest refused 413 is not on the audit log"
echo "serve_spool: all checks passed"
