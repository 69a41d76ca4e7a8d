#!/usr/bin/env bash
# serve_chunked_drop.sh - a chunked upload that goes on far past its cap is cut off, and the
# refusal is still on the audit log.
#
# A body sent without Content-Length (Transfer-Encoding: chunked) declares its size nowhere,
# so the daemon refuses it only once it passes the endpoint's cap (413 body_too_large,
# recorded then), and reads and drops the rest, since libmicrohttpd cannot answer while a
# body is still arriving (docs/api.md). A client that sends more than 64 MiB past the
# refusal is cut off without an answer. Here a checker's batch (POST /v1/checks/batch) and a
# registrar's register file (POST /v1/ingest), each capped at 64k, stream up to 96 MiB of
# filler: each connection must be closed by the daemon with no answer after more than 64 MiB
# and before the end. The daemon then goes on serving: /healthz, and a 60,000-byte batch
# with upload_memory_max at 100k (so that the memory counted for either cut upload, had it
# not been given back, would refuse it 503 busy). After the daemon stops, the audit log holds
# exactly one "413 too large" entry for each cut upload, from its own address, and verifies.
# RV_SERVE_THREADS=N runs it against a pool of N threads. Prints counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init chunkdrop

serve_vault 300 2 5
user_add cd-chk checker
user_add cd-reg registrar
start=$("$rv" audit show --vault "$work/v" --json | wc -l)
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} rate_principal=1000 burst_principal=1000 \
    rate_client=10000 burst_client=10000 budget_checker=100000 probe_window=100000 \
    probe_nomatch_ratio=1 probe_sector_max=100000 probe_sweep_run=100000 \
    probe_alerts_suspend=1000 alert_syslog=no body_max_batch=64k body_max_ingest=64k \
    upload_memory_max=100k
serve_start

python3 - "$work" <<'PY'
import sys, time
import rvhttp
from rvhttp import chunked, ready_token, request

work = sys.argv[1]
MIB = 1 << 20
DROP, LIMIT = 64 * MIB, 96 * MIB
bad = []
chk = ready_token("cd-chk")
reg = ready_token("cd-reg")
for kind, path, token, source in (
        ("batch", "/v1/checks/batch?format=plain", chk, "127.0.5.1"),
        ("ingest", "/v1/ingest?area=E07000002&edition=2025-12-01", reg, "127.0.5.2")):
    t0 = time.time()
    r, sent = chunked(path, LIMIT, token=token, source=source)
    took = time.time() - t0
    print("%s: %d MiB sent in %.1f s, %s" % (kind, sent // MIB, took,
                                            "no answer" if r is None else "answered %d" % r.status))
    if r is not None:
        bad.append("a chunked %s of %d MiB past its 64k cap was answered %d %s, want the "
                   "connection cut off without an answer" % (kind, sent // MIB, r.status, r.error()))
    elif sent <= DROP:
        bad.append("a chunked %s past its cap was cut off after %d bytes, not more than 64 MiB "
                   "past the refusal" % (kind, sent))
    elif sent >= LIMIT:
        bad.append("a chunked %s was read to its end (%d MiB) and then cut off" % (kind, sent // MIB))
    h = request("GET", "/healthz")
    if h.status != 200:
        bad.append("/healthz after the cut %s: %d" % (kind, h.status))

# The daemon goes on serving, and gave back what the cut uploads held.
rows = ["id,name,address,postcode,date"]
while sum(len(x) + 1 for x in rows) < 60000:
    rows.append("m%d,Zebedee Quixotic,,ZZ99 9ZZ,2026-01-10" % len(rows))
r = request("POST", "/v1/checks/batch?format=plain", "\n".join(rows) + "\n", token=chk,
            ctype="text/csv")
if r.status != 200:
    bad.append("a 60,000-byte batch after the cut uploads: %d %s, want 200" % (r.status, r.error()))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the cut uploads"
serve_stop

"$rv" audit show --vault "$work/v" --json --from "$start" >"$work/entries.jsonl" ||
    fail "regvault audit show failed"
python3 - "$work/entries.jsonl" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
bad = []
for kind, addr, path in (("batch", "127.0.5.1", "/v1/checks/batch"),
                         ("ingest", "127.0.5.2", "/v1/ingest")):
    es = [e for e in entries if e["client"] == addr and e["action"] != "alert"]
    refused = [e for e in es if e["action"] == "request" and e["outcome"].startswith("413 too large")]
    if len(refused) != 1 or len(es) != 1:
        bad.append("the cut %s from %s: %d entries, %d of them 413 too large; want exactly one"
                   % (kind, addr, len(es), len(refused)))
if bad:
    for x in bad:
        print("MISMATCH " + x, file=sys.stderr)
    sys.exit(1)
print("audit log: the refusal of each cut upload recorded once")
PY
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "regvault audit verify failed"
# The access log says that no answer went out for the cut uploads, and nothing else was cut.
for p in /v1/checks/batch /v1/ingest; do
    n=$(grep -c " POST $p 413 .* cut\$" "$work/serve.err" || true)
    [ "$n" -ge 1 ] || fail "no access line marks the cut upload to $p as cut"
done
others=$(grep -v -e " POST /v1/checks/batch 413 " -e " POST /v1/ingest 413 " "$work/serve.err" | grep -c " cut\$" || true)
[ "$others" -eq 0 ] || fail "$others access lines of answered requests are marked cut"
echo "serve_chunked_drop: all checks passed"
