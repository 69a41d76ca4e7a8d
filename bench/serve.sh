#!/usr/bin/env bash
# serve.sh - throughput of `regvault serve` on POST /v1/checks over HTTPS, every check
# audited (a durable audit entry before each answer), compared with PostgreSQL 15 doing the
# equivalent indexed lookup in the same run.
#
#   bench/serve.sh [ELECTORS] [SECONDS] [CONNECTIONS]     defaults 1000000, 60, 256
#
# REGVAULT=<build>/regvault selects the build (default build/; use a Release or
# RelWithDebInfo build). RV_SERVE_CACHE=<folder> keeps the synthetic register and the
# ingested vault there and copies them for later runs of the same size (to iterate; delete
# the folder when done). RV_SERVE_EXTRA_CONF adds lines to the daemon's config ("threads = 0"
# for a thread per connection instead of the default pool of 4).
# RV_SERVE_WARM=<seconds> sets the warm-up before the measured run (default 5).
# PGBIN=<folder without pgbench> skips PostgreSQL. RV_SERVE_PERF=<file> records a perf
# profile of the daemon over the measured run (RV_SERVE_PERF_CG: perf's call-graph option,
# default -g). Steps:
#   1. `regvault synth` a register (8 areas, 6 months of alterations, 100,000 donations) and
#      `regvault ingest` it into a fresh vault;
#   2. a checker principal with a budget of 100,000,000 electors a day, and a config with the
#      rate limits and the probing alerts out of the way (the point is the daemon's speed, not
#      its brakes); `regvault serve --dev --listen 127.0.0.1:0`; log the checker in (password
#      change, TOTP by oathtool);
#   3. wrk (-t2, CONNECTIONS connections, keep-alive, HTTPS) for SECONDS against
#      POST /v1/checks with bench/serve_check.lua cycling through the individual donors of
#      the synthetic donation file ({name, address: "", postcode, date received});
#      requests/s, latency p50/p99, and errors (non-2xx and socket errors: both must be 0);
#   4. the audit log is then counted: one check entry per answered request;
#   5. PostgreSQL 15: a throwaway cluster (bench/pg.sh: initdb as the postgres user in a
#      temporary folder, unix socket there, port 54331), the same revised registers (surname, forename,
#      postcode, address1, as bench/check.sh loads them) with an index on (surname, postcode),
#      and pgbench -M prepared -j 2 for SECONDS with one statement per transaction: the donor
#      row by id joined to its register rows by (surname, postcode), an index lookup.
#      PG_CLIENTS (default "CONNECTIONS 16 4") lists the client counts tried; the best is
#      reported and used for the ratio;
#   6. the ratio of regvault's checks/s to PostgreSQL's lookups/s.
# Targets: >= 20,000 checks/s and >= 1.5x pgbench. Prints figures only, never a name.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
# shellcheck source=bench/pg.sh
. "$here/pg.sh"
electors=${1:-1000000}
secs=${2:-60}
conns=${3:-256}
rv=$(realpath "${REGVAULT:-$here/../build/regvault}")
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
pgport=${PGPORT_BENCH:-54331}
pg_clients=${PG_CLIENTS:-"$conns 16 4"}
for t in wrk oathtool curl python3; do
    command -v "$t" >/dev/null || { echo "serve.sh: $t is not installed (scripts/bootstrap --bench)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-serve-bench.XXXXXX")
chmod 755 "$work"
serve_pid=
bench_failed=0
cleanup() {
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$serve_pid" 2>/dev/null || true
    fi
    pg_stop
    rm -rf "$work"
}
trap cleanup EXIT

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $electors electors in 8 areas, 6 months of alterations; $conns connections, $secs s"
cache=${RV_SERVE_CACHE:-}
if [ -n "$cache" ] && [ -f "$cache/$electors/done" ]; then
    # A register and vault made by an earlier run with the same RV_SERVE_CACHE: copied, so
    # that each run starts from the same freshly ingested vault.
    cp -a "$cache/$electors/s" "$cache/$electors/v" "$cache/$electors/key" "$work/"
    echo "ingest: reused from $cache/$electors"
else
    head -c 32 /dev/urandom >"$work/key"
    "$rv" synth --electors "$electors" --areas 8 --months 6 --donations 100000 --seed 7 \
        --out "$work/s" >/dev/null
    "$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors "$electors" >/dev/null 2>&1
    t0=$(date +%s.%N)
    "$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/s" >"$work/ingest.out" 2>&1
    t1=$(date +%s.%N)
    echo "ingest: $(tail -1 "$work/ingest.out") [wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s]"
    if [ -n "$cache" ]; then
        rm -rf "${cache:?}/$electors" && mkdir -p "$cache/$electors"
        cp -a "$work/s" "$work/v" "$work/key" "$cache/$electors/" && touch "$cache/$electors/done"
    fi
fi

# Donor bodies for the daemon, and the same donors for PostgreSQL.
python3 - "$work/s/donations.csv" "$work/bodies.jsonl" <<'PY'
import csv, json, sys
src, out = sys.argv[1:]
raw = open(src, "rb").read().decode("utf-8-sig", errors="replace")
n = 0
with open(out, "w") as f:
    for r in csv.DictReader(raw.splitlines()):
        if r.get("DonorStatus") != "Individual" or not (r.get("DonorName") or "").strip():
            continue
        d, m, y = r["ReceivedDate"].split("/")
        f.write(json.dumps({"name": r["DonorName"], "address": "", "postcode": r["Postcode"],
                            "date": "%s-%s-%s" % (y, m, d)}) + "\n")
        n += 1
print(n, "donor bodies", file=sys.stderr)
PY

# The checker, its budget, the config.
"$rv" user --vault "$work/v" --key-file "$work/key" add bench-checker --role checker --json \
    >"$work/checker.json" 2>"$work/user.err"
"$rv" user --vault "$work/v" --key-file "$work/key" budget bench-checker 100000000 \
    >/dev/null 2>>"$work/user.err"
cat >"$work/serve.conf" <<CONF
# bench/serve.sh: limits out of the way, every check still audited
budget_checker = 10000000
rate_principal = 1000000
burst_principal = 1000000
rate_client = 1000000
burst_client = 1000000
max_connections = 4096
max_connections_per_client = 4096
probe_window = 100000
probe_nomatch_ratio = 1
probe_sector_max = 100000
probe_sweep_run = 100000
probe_alerts_suspend = 1000
alert_syslog = no
log_file = $work/access.log
${RV_SERVE_EXTRA_CONF:-}
CONF
"$rv" serve --vault "$work/v" --key-file "$work/key" --dev --listen 127.0.0.1:0 \
    --config "$work/serve.conf" 2>"$work/serve.err" &
serve_pid=$!
port=
for _ in $(seq 600); do
    port=$(grep -m1 -o 'listening on https://127\.0\.0\.1:[0-9]*' "$work/serve.err" 2>/dev/null | sed 's/.*://' || true)
    [ -n "$port" ] && break
    kill -0 "$serve_pid" 2>/dev/null || { echo "serve.sh: the daemon exited: $(tail -3 "$work/serve.err")" >&2; exit 1; }
    sleep 0.1
done
[ -n "$port" ] || { echo "serve.sh: the daemon did not listen within 60 s" >&2; exit 1; }
ca=$work/v/dev-tls/cert.pem

# Log in: the issued password must be changed first, then a second login with a later step.
token=$(python3 - "$work/checker.json" "$port" "$ca" <<'PY'
import http.client, json, os, ssl, subprocess, sys, time, urllib.parse
cred, port, ca = json.load(open(sys.argv[1])), int(sys.argv[2]), sys.argv[3]
secret = urllib.parse.parse_qs(urllib.parse.urlparse(cred["totp_uri"]).query)["secret"][0]
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False
def call(method, path, body, token=None):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, json.dumps(body), h)
    r = c.getresponse()
    return r.status, r.read()
def code(step):
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(step * 30 + 1))
    return subprocess.run(["oathtool", "--totp", "-b", secret, "-N", when], check=True,
                          capture_output=True, text=True).stdout.strip()
while time.time() % 30 > 26:
    time.sleep(0.5)
now = int(time.time() // 30)
st, b = call("POST", "/v1/session", {"user": cred["name"], "password": cred["password"], "totp": code(now - 1)})
assert st == 201, "login: %d" % st
j = json.loads(b)
if j.get("must_change"):
    newp = "Bench-" + os.urandom(12).hex()
    st, _ = call("POST", "/v1/session/password", {"password": cred["password"], "new_password": newp}, j["token"])
    assert st == 204, "password change: %d" % st
    st, b = call("POST", "/v1/session", {"user": cred["name"], "password": newp, "totp": code(now)})
    assert st == 201, "second login: %d" % st
    j = json.loads(b)
print(j["token"])
PY
)
audit_before=$("$rv" audit show --vault "$work/v" --json | wc -l)

# Warm up (RV_SERVE_WARM seconds, default 5), then the measured run. A short warm-up leaves
# most measured checks the first of their donor today, each charging the checker's
# disclosure budget (a durable write); 60 s or so measures the steady state.
RV_BODIES=$work/bodies.jsonl RV_TOKEN=$token wrk -t2 -c"$conns" -d"${RV_SERVE_WARM:-5}s" -s "$here/serve_check.lua" \
    "https://127.0.0.1:$port/v1/checks" >"$work/wrk-warm.txt" 2>&1
user_ticks() { awk '{ print $14 }' "/proc/$serve_pid/stat"; }
sys_ticks() { awk '{ print $15 }' "/proc/$serve_pid/stat"; }
uticks0=$(user_ticks)
sticks0=$(sys_ticks)
cs_pid=
if command -v perf >/dev/null; then
    # Context switches of the daemon (a software event, counted even where the machine has no
    # hardware counters), over the measured run.
    perf stat -e context-switches -x, -p "$serve_pid" -o "$work/cs.txt" -- sleep "$secs" >/dev/null 2>&1 &
    cs_pid=$!
fi
perf_pid=
if [ -n "${RV_SERVE_PERF:-}" ]; then
    # RV_SERVE_PERF=<file>: a perf profile of the daemon over the measured run
    perf record -F 499 ${RV_SERVE_PERF_CG:--g} -p "$serve_pid" -o "$RV_SERVE_PERF" -- sleep "$secs" \
        >/dev/null 2>&1 &
    perf_pid=$!
fi
RV_BODIES=$work/bodies.jsonl RV_TOKEN=$token wrk -t2 -c"$conns" -d"${secs}s" --timeout 10s \
    -s "$here/serve_check.lua" "https://127.0.0.1:$port/v1/checks" >"$work/wrk.txt" 2>&1
uticks1=$(user_ticks)
sticks1=$(sys_ticks)
[ -z "$perf_pid" ] || wait "$perf_pid" || true
[ -z "$cs_pid" ] || wait "$cs_pid" || true
load=$(cut -d' ' -f1 /proc/loadavg)
line=$(grep '^serve_check: requests' "$work/wrk.txt") || { cat "$work/wrk.txt" >&2; exit 1; }
grep '^serve_check: non-200' "$work/wrk.txt" || true
read -r _ _ reqs _ dur _ non2xx _ econn _ eread _ ewrite _ etime _ p50 _ p99 <<<"$line"
rv_rps=$(awk -v n="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", n / (d / 1e6) }')
kill -TERM "$serve_pid"
wait "$serve_pid" || { echo "serve.sh: the daemon did not exit 0 on SIGTERM" >&2; exit 1; }
serve_pid=
checks_logged=$("$rv" audit show --vault "$work/v" --json --from "$audit_before" |
    grep -c '"action":"check"' || true)
warm_reqs=$(awk '/^serve_check: requests/ { print $3 }' "$work/wrk-warm.txt")
answered=$((warm_reqs + reqs))
echo "regvault serve (wrk -t2 -c$conns ${secs}s, HTTPS keep-alive, POST /v1/checks, every check audited): $rv_rps checks/s; latency p50 $(awk -v x="$p50" 'BEGIN { printf "%.2f", x / 1000 }') ms, p99 $(awk -v x="$p99" 'BEGIN { printf "%.2f", x / 1000 }') ms; $reqs requests, non-2xx $non2xx, socket errors connect $econn read $eread write $ewrite timeout $etime"
cs=$(awk -F, '/context-switches/ { print $1 }' "$work/cs.txt" 2>/dev/null || true)
echo "daemon CPU during the run: $(awk -v u="$((uticks1 - uticks0))" -v y="$((sticks1 - sticks0))" -v hz="$(getconf CLK_TCK)" -v s="$secs" -v n="$reqs" -v cs="$cs" 'BEGIN { t = u + y; printf "%.2f cores on average, %.0f us per check (user %.0f, system %.0f)", t / hz / s, t / hz * 1e6 / n, u / hz * 1e6 / n, y / hz * 1e6 / n; if (cs ~ /^[0-9]+$/) printf ", %.2f context switches per check", cs / n }') (load average $load on $(nproc) cores)"
echo "audit: $checks_logged check entries for $answered answered checks (warm-up and run; requests cut off by wrk's stop are audited but not counted as answered)"
if [ "$checks_logged" -lt "$answered" ] || [ "$non2xx" -ne 0 ] || [ $((econn + eread + ewrite + etime)) -ne 0 ]; then
    echo "serve.sh: FAILED: every answered check must be audited, and there must be no errors" >&2
    bench_failed=1
fi

# PostgreSQL 15 on the same register and the same donors.
if [ ! -x "$pgbin/pgbench" ]; then
    echo "postgresql 15 not found in $pgbin: comparison skipped"
    exit "$bench_failed"
fi
pg_start "-c max_connections=$((conns + 20))"
pg_load "$work/s"
cat >"$work/lookup.sql" <<SQL
\set r random(1, $ndonors)
SELECT r.surname, r.forename, r.postcode, r.address1 FROM donors d JOIN register r ON r.surname = d.surname AND r.postcode = d.postcode WHERE d.i = :r;
SQL
chmod 644 "$work/lookup.sql"
best_tps=0
best_c=
for c in $pg_clients; do
    runuser -u postgres -- "$pgbin/pgbench" -h "$work/pg" -p "$pgport" -U postgres -n \
        -M prepared -c "$c" -j 2 -T "$secs" -f "$work/lookup.sql" postgres >"$work/pgbench-$c.txt" 2>&1
    tps=$(awk '/^tps/ { print $3; exit }' "$work/pgbench-$c.txt")
    lat=$(awk '/^latency average/ { print $4; exit }' "$work/pgbench-$c.txt")
    failed=$(awk '/^number of failed transactions/ { print $5; exit }' "$work/pgbench-$c.txt")
    echo "postgresql 15 (pgbench -M prepared -c $c -j 2 ${secs}s, fsync off, one indexed lookup per transaction): ${tps%.*} lookups/s, average latency $lat ms, failed ${failed:-0}"
    if awk -v a="$tps" -v b="$best_tps" 'BEGIN { exit !(a > b) }'; then
        best_tps=$tps
        best_c=$c
    fi
done
pg_stop
awk -v a="$rv_rps" -v b="$best_tps" -v c="$best_c" 'BEGIN {
    printf "ratio: regvault %.0f checks/s / postgresql %.0f lookups/s (best, -c %s) = %.2fx (targets: >= 20000 checks/s, >= 1.5x)\n", a, b, c, a / b
}'
exit "$bench_failed"
