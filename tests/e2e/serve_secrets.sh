#!/usr/bin/env bash
# serve_secrets.sh - what the daemon writes holds no personal data and no secret, and bad
# input is refused clearly without bringing it down.
#
# A run with logins (password changes included), single and batch checks of synthetic
# donors taken from the register, an ingest through the API, a lockout and a honeytoken use
# (so that the alert file is not empty), then GET /metrics. Afterwards none of the daemon's
# outputs - its standard error, its log_file, the /metrics text and the alert_file - holds
# any of: the donors' names (full, surname, forenames), address lines, postcodes (with and
# without the space), the principals' passwords (issued and changed), TOTP secrets, or
# session tokens. Every needle is first shown to be in the inputs (so the test can fail),
# and grep is case-insensitive. The honeytoken's decoy user name, which its alert names on
# purpose and which may contain a synthetic surname, is masked first (only its own
# occurrences; a probe shows a real leak beside it is still found). The vault's folder (records, indexes, the audit log, the
# spool of batch uploads) holds none of the register's surnames (6 letters or more) in
# plaintext.
#
# Bad input: malformed JSON, invalid UTF-8, an unknown field, a missing field, a wrong
# Content-Type, a body over the cap, a slowloris (headers that never finish) - each gets the
# expected 4xx with a JSON {error, message} whose message is not empty (the slowloris is cut
# off at header_timeout), and the daemon keeps answering. Prints counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init secrets

serve_vault 3000 2 40
user_add sec-chk checker
user_add sec-reg registrar
user_add sec-adm admin
user_add sec-lock researcher
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "finance file share" \
    --format env >"$work/honey.env" 2>/dev/null || fail "regvault honeytoken create failed"
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} session_idle=600 rate_principal=1000 burst_principal=1000 rate_client=10000 \
    burst_client=10000 header_timeout=2 "log_file=$work/access.log" \
    "alert_file=$work/alerts.log" alert_syslog=no body_max_check=16k
serve_start

python3 - "$work" <<'PY'
import csv, io, json, os, re, socket, ssl, sys, time
import rvhttp
from rvhttp import request, login, user, ready_token

work = sys.argv[1]
bad = []
needles = set()      # every string that must not come out
inputs = []          # what the test sent or was given, to show the needles are real


def want(label, r, status, need_message=True):
    if r.status != status:
        bad.append("%s: got %d (%s), want %d" % (label, r.status, r.error(), status))
    elif status >= 400 and need_message:
        j = r.json()
        if not (isinstance(j, dict) and j.get("error") and isinstance(j.get("message"), str)
                and len(j["message"]) >= 10):
            bad.append("%s: %d without a clear JSON {error, message}" % (label, status))
    return r


# Donors: 30 plain entries of area 1 (surname of 6+ letters, so a chance hit in binary data
# is unlikely), as a checker would type them.
with open(work + "/s/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    rows = [r for r in csv.DictReader(f) if r["Elector Markers"] == "" and r["Address1"]]
donors = []
seen = set()
for r in rows:
    sn, fn = [x.strip() for x in r["Elector Name"].split(",", 1)]
    if len(sn) < 6 or sn.lower() in seen or len(r["Address1"]) < 10:
        continue
    seen.add(sn.lower())
    donors.append({"name": fn + " " + sn, "address": r["Address1"], "postcode": r["PostCode"],
                   "date": "2026-01-10"})
    needles.update([fn + " " + sn, sn, r["Address1"], r["PostCode"],
                    r["PostCode"].replace(" ", "")])
    if len(fn.split()[0]) >= 6:
        needles.add(fn.split()[0])
    if len(donors) == 30:
        break
assert len(donors) == 30, "not enough plain entries"

# Logins (with password changes), then checks.
chk = ready_token("sec-chk")
reg = ready_token("sec-reg")
adm = ready_token("sec-adm")
tokens = [chk, reg, adm]
# Every donor is checked alone (postcode as on the register) and again in a batch (postcode
# typed without its space, as people do), so that both forms are in the inputs.
for i, d in enumerate(donors):
    r = want("check %d" % i, request("POST", "/v1/checks", d, token=chk), 200)
    inputs.append(json.dumps(d, ensure_ascii=False))
b = io.StringIO()
w = csv.writer(b, lineterminator="\n")
w.writerow(["id", "name", "address", "postcode", "date"])
for i, d in enumerate(donors):
    w.writerow(["r%d" % i, d["name"], d["address"], d["postcode"].replace(" ", ""), d["date"]])
inputs.append(b.getvalue())
r = want("batch", request("POST", "/v1/checks/batch?format=plain", b.getvalue(), token=chk,
                          ctype="text/csv"), 200)
if r.body.count(b"\n") < 31:
    bad.append("batch answered %d lines for 30 rows" % r.body.count(b"\n"))
with open(work + "/s/E07000002/full-2025-12-01.csv", "rb") as f:
    want("ingest", request("POST", "/v1/ingest?area=E07000002&edition=2025-12-01", f.read(),
                           token=reg, ctype="text/csv"), 200)

# A lockout (alert) and a honeytoken use (alert), so that the alert file has lines.
lk = user("sec-lock")
for i in range(12):
    r = login("sec-lock", code="000000" if i % 2 else "999999", source="127.0.0.9")
    if r.status == 429:
        break
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)', open(work + "/honey.env").read(), re.M))
htok = next((v for v in env.values() if v.startswith("rvs_")), None)
if htok:
    want("honeytoken", request("GET", "/v1/stats", token=htok, source="127.0.0.8"), 401)
    needles.add(htok)

# Bad input, each refused clearly.
want("malformed JSON", request("POST", "/v1/checks", b'{"name": "x", ', token=chk,
                               ctype="application/json"), 400)
want("invalid UTF-8", request("POST", "/v1/checks",
     b'{"name":"\xc3\x28bad","address":"","postcode":"AB1 2CD","date":"2026-01-10"}',
     token=chk, ctype="application/json"), 400)
want("unknown field", request("POST", "/v1/checks", dict(donors[0], colour="blue"), token=chk), 400)
want("missing field", request("POST", "/v1/checks", {"name": donors[0]["name"]}, token=chk), 400)
want("bad date", request("POST", "/v1/checks", dict(donors[0], date="10/01/2026x"), token=chk), 400)
want("wrong content type", request("POST", "/v1/checks", json.dumps(donors[0]), token=chk,
                                   ctype="text/plain"), 415)
want("oversized body", request("POST", "/v1/checks",
     dict(donors[0], address="x" * (17 * 1024)), token=chk), 413)
want("not JSON object", request("POST", "/v1/checks", b'[1,2,3]', token=chk,
                                ctype="application/json"), 400)
want("login, malformed JSON", request("POST", "/v1/session", b'{"user":', ctype="application/json"), 400)
want("login, unknown field", request("POST", "/v1/session",
     {"user": "sec-chk", "password": "x", "totp": "123456", "admin": True}), 400)

# Slowloris: headers that never finish are cut off at header_timeout (2 s); meanwhile the
# daemon answers others.
ctx = ssl.create_default_context(cafile=rvhttp.CA)
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", rvhttp.PORT), timeout=15))
s.sendall(b"POST /v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: app")
t0 = time.time()
want("healthz during a slowloris", request("GET", "/healthz"), 200, need_message=False)
closed = False
try:
    while time.time() - t0 < 12:
        s.sendall(b"l")  # one byte at a time, never the end of the headers
        time.sleep(0.5)
except (ConnectionError, ssl.SSLError, OSError):
    closed = True
if not closed:
    try:
        s.settimeout(3)
        closed = s.recv(4096) in (b"",) or True  # an answer (408) and then the close
    except (socket.timeout, TimeoutError):
        closed = False
    except (ConnectionError, ssl.SSLError, OSError):
        closed = True
took = time.time() - t0
if not closed or took > 10:
    bad.append("slowloris connection still open after %.1f s (header_timeout 2 s)" % took)
s.close()

# /metrics, kept for the grep.
r = want("metrics", request("GET", "/metrics", token=adm), 200)
open(work + "/metrics.txt", "wb").write(r.body)

# Every secret: passwords (issued and changed), TOTP secrets, tokens.
for n in ("sec-chk", "sec-reg", "sec-adm", "sec-lock"):
    d = user(n)
    needles.update([d["password"], d["secret"]])
for f in os.listdir(work + "/users"):
    if f.endswith(".json"):
        inputs.append(open(os.path.join(work, "users", f)).read())
for extra in ("tokens.txt", "old-passwords.txt"):  # every token issued, every password replaced
    lines = [l for l in open(os.path.join(work, extra)).read().split("\n") if l]
    needles.update(lines)
    inputs.extend(lines)
if len(open(work + "/tokens.txt").read().split()) < 6:
    bad.append("fewer than 6 session tokens were issued")
inputs.append(open(work + "/honey.env").read())
open(work + "/needles", "w").write("\n".join(sorted(needles)) + "\n")
open(work + "/inputs", "w").write("\n".join(inputs) + "\n")
print("secrets: %d needles (names, addresses, postcodes, passwords, TOTP secrets, tokens)" %
      len(needles))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the bad input"
serve_stop

# The needles are all in the inputs (the grep can find them) ...
missing=0
while IFS= read -r n; do
    grep -Fqi -- "$n" "$work/inputs" || missing=$((missing + 1))
done <"$work/needles"
[ "$missing" -eq 0 ] || fail "$missing needles not found in the inputs: the grep cannot work"
# ... and in none of the outputs. The honeytoken's decoy user name is in the outputs on
# purpose (the alert names it), and it is drawn from the same name lists as the synthetic
# register, so it may contain a donor's surname or forename: each output is searched with
# the decoy's own occurrences (the whole name, bounded by characters a user name cannot
# hold) masked, and nothing else. The masking is first shown not to hide a real leak: a
# needle written beside the decoy name, and the decoy name glued to a needle, are found.
mask_decoy() { # FILE OUT
    python3 - "$work/honey.env" "$1" "$2" <<'PY'
import re, sys
env = dict(re.findall(r'^(?:export\s+)?(\w+)=["\']?([^"\'\n]*)', open(sys.argv[1]).read(), re.M))
decoy = env.get("REGVAULT_USER", "")
data = open(sys.argv[2], "rb").read()
if decoy:
    pat = re.compile(rb"(?<![A-Za-z0-9._-])" + re.escape(decoy.encode()) + rb"(?![A-Za-z0-9._-])",
                     re.I)
    data = pat.sub(b"<decoy>", data)
open(sys.argv[3], "wb").write(data)
PY
}
decoy=$(sed -n 's/^\(export \)\{0,1\}REGVAULT_USER=["'"'"']\{0,1\}\([^"'"'"']*\).*/\2/p' "$work/honey.env")
[ -n "$decoy" ] || fail "no decoy user name in the honeytoken file"
probe=$(head -1 "$work/needles")
printf '{"principal":"%s","detail":"%s"}\n{"principal":"%s%s"}\n' "$decoy" "$probe" "$decoy" \
    "$probe" >"$work/probe.log"
mask_decoy "$work/probe.log" "$work/probe.masked"
hits=$({ grep -Fio -f "$work/needles" "$work/probe.masked" || true; } | wc -l)
[ "$hits" -ge 2 ] || fail "masking the decoy name hides a real leak: the search cannot work"
for f in serve.err access.log metrics.txt alerts.log; do
    [ -s "$work/$f" ] || fail "$f is empty: nothing to search"
    mask_decoy "$work/$f" "$work/$f.masked"
    hits=$({ grep -Fio -f "$work/needles" "$work/$f.masked" || true; } | wc -l)
    [ "$hits" -eq 0 ] || fail "$f holds $hits occurrences of personal data or secrets"
done
echo "outputs: $(wc -l <"$work/needles") needles, none in serve.err ($(wc -l <"$work/serve.err") lines), access.log ($(wc -l <"$work/access.log") lines), metrics ($(wc -l <"$work/metrics.txt") lines), alerts.log ($(wc -l <"$work/alerts.log") lines)"

# The vault's folder holds none of the register's surnames (6+ letters) in plaintext.
python3 - "$work/s" "$work/surnames" <<'PY'
import csv, glob, io, sys
out = set()
for path in glob.glob(sys.argv[1] + "/*/*.csv"):
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = text.split("\n", 1)[0]
    for r in csv.DictReader(io.StringIO(text), delimiter="\t" if "\t" in first else ","):
        s = r.get("Elector Surname") or (r.get("Elector Name") or "").split(",")[0]
        s = (s or "").strip()
        if len(s) >= 6 and s.isalpha():
            out.add(s)
open(sys.argv[2], "w").write("\n".join(sorted(out)) + "\n")
PY
n=$(wc -l <"$work/surnames")
[ "$n" -ge 100 ] || fail "only $n surnames sampled"
grep -Fqi -f "$work/surnames" -r "$work/s" || fail "the surnames are not in the register files"
# The audit log holds the honeytoken alert, which names the decoy user on purpose: mask it
# there as in the outputs.
hits=0
while IFS= read -r -d '' f; do
    mask_decoy "$f" "$work/vault-file.masked"
    if grep -Fqi -f "$work/surnames" "$work/vault-file.masked"; then hits=$((hits + 1)); fi
done < <(find "$work/v" -type f -print0)
rm -f "$work/vault-file.masked"
[ "$hits" -eq 0 ] || fail "$hits files in the vault folder hold register surnames in plaintext"
echo "vault folder: none of $n surnames in $(find "$work/v" -type f | wc -l) files"
echo "serve_secrets: all checks passed"
