#!/usr/bin/env bash
# End-to-end test of the daemon's answers on a kept-alive HTTPS connection: a small answer is
# held in the TLS session and sent whole as one record when its request completes (http.c).
# Forty requests on one connection (curl reuses it: one connect in all) must each get their
# complete answer at once: an answer left behind in the session or in a corked socket would
# wait for the next request or for the kernel's 200 ms cork timer, and the run would take
# seconds. Then HEAD, a refused POST followed by a GET on the same connection, and answers on
# connections that close after them (Connection: close, HTTP/1.0, a 404); every body must be
# whole JSON.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init e2e-keepalive
command -v jq >/dev/null || fail "jq is not installed"

head -c 32 /dev/urandom >"$work/key"
"$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors 1000 >/dev/null 2>&1
printf 'rate_client = 100000\nburst_client = 100000\n' >"$work/serve.conf"
[ -z "${RV_SERVE_THREADS:-}" ] || echo "threads = $RV_SERVE_THREADS" >>"$work/serve.conf"
serve_start
url=https://127.0.0.1:$serve_port
ca=$serve_ca

# Forty GETs of /healthz on one connection.
args=()
for _ in $(seq 40); do
    args+=("$url/healthz")
done
t0=$(date +%s%N)
# Each answer's body (compact JSON, one line), then its status and connect count.
curl -sS --cacert "$ca" -w '\n%{http_code} %{num_connects}\n' "${args[@]}" >"$work/out" ||
    fail "curl failed"
t1=$(date +%s%N)
ms=$(((t1 - t0) / 1000000))
awk 'NR % 2 == 0' "$work/out" >"$work/codes"
awk 'NR % 2 == 1' "$work/out" >"$work/bodies"
n=$(wc -l <"$work/codes")
[ "$n" -eq 40 ] || fail "$n answers for 40 requests"
[ "$(awk '$2 > 0' "$work/codes" | wc -l)" -eq 1 ] || fail "the connection was not reused: $(awk "{print \$2}" "$work/codes" | tr "\n" " ")"
[ "$(awk '$1 == 200' "$work/codes" | wc -l)" -eq 40 ] || fail "/healthz did not answer 200 every time"
while IFS= read -r b; do
    echo "$b" | jq -e 'type == "object"' >/dev/null 2>&1 || fail "an answer is not whole JSON: ${b:0:200}"
done <"$work/bodies"
# 40 answers at 200 ms of cork timer each would take 8 s; a loaded test machine takes < 1 s.
[ "$ms" -lt 4000 ] || fail "40 requests on one connection took $ms ms: answers are held back"

# HEAD, a refused POST with a body, and a GET after them, still on one connection.
curl -sS --cacert "$ca" -w '%{http_code} %{num_connects}\n' -o /dev/null \
    -I "$url/healthz" >"$work/codes2" || fail "HEAD failed"
grep -qE '^(200|405) ' "$work/codes2" || fail "HEAD /healthz: $(cat "$work/codes2")"
curl -sS --cacert "$ca" -w '%{http_code} %{num_connects}\n' -o "$work/post" \
    -X POST -H 'Content-Type: application/json' -d '{"name":"x"}' "$url/v1/checks" \
    --next --cacert "$ca" -w '%{http_code} %{num_connects}\n' -o "$work/after" "$url/healthz" \
    >"$work/codes3" || fail "curl failed"
[ "$(sed -n 1p "$work/codes3" | cut -d' ' -f1)" = 401 ] || fail "an unauthenticated check: $(cat "$work/codes3")"
[ "$(sed -n 2p "$work/codes3" | cut -d' ' -f1)" = 200 ] || fail "/healthz after a refusal: $(cat "$work/codes3")"
jq -e '.error' "$work/post" >/dev/null || fail "the refusal has no JSON error body"

# Answers on connections the daemon closes after them: one asked with Connection: close, an
# HTTP/1.0 one, and a 404 (an unknown path ends its connection): each body must arrive
# whole before the connection's end, never cut off by it.
for how in "-H Connection:close" "--http1.0" ""; do
    path=/healthz
    [ -z "$how" ] && path=/no-such-endpoint
    # shellcheck disable=SC2086
    code=$(curl -sS --cacert "$ca" $how -o "$work/closing" -w '%{http_code}' "$url$path") ||
        fail "curl ${how:-404} failed"
    case "$code" in 200 | 404) ;; *) fail "${how:-404}: status $code" ;; esac
    jq -e 'type == "object"' "$work/closing" >/dev/null 2>&1 ||
        fail "${how:-404}: the answer is not whole JSON: $(head -c 200 "$work/closing")"
done

serve_stop
echo "keepalive: 40 answers on one connection in $ms ms; HEAD, a refused POST, closing answers"
