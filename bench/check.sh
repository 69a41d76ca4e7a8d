#!/usr/bin/env bash
# check.sh - speed of `regvault check`, compared with PostgreSQL 15 on the same data in the
# same run.
#
#   bench/check.sh [ELECTORS] [DONATIONS] [SINGLE]     defaults 1000000, 100000, 20000
#
# REGVAULT=<build>/regvault selects the build (default build/; a Release or RelWithDebInfo
# build). AREAS=K sets the number of registers (areas); by default one per 125,000 electors
# and at least 8 (8 at 1 million, 80 at 10 million), near the average UK registration area
# (about 120,000 electors), so that postcode districts hold 10,000 to 60,000 people as real
# ones do (synth gives about 14,500 per district at 10 million in 80 areas). Figures taken
# with 8 areas at 10 million (before this default) had 1.27 million electors in each area,
# more than the largest real one (Birmingham, about 750,000), and 24 districts of about
# 53,000 each, every one at the top of the real range.
# KEEP=DIR keeps the synthetic register and its vault in DIR and, when DIR already holds
# them (from an earlier run with the same ELECTORS and AREAS), reuses them instead of
# generating and ingesting again (the ingest line is then left out).
# ANSWERS=FILE copies the batch's answers (CSV) to FILE, so that two builds' answers can be
# compared byte for byte (cmp) on one kept vault.
# On a synthetic register (a revised register and 6 months of alterations per area) and
# DONATIONS synthetic donations it measures:
#   1. ingest speed (rows/s);
#   2. single checks in process: bench/check_bench.c, linked against the build's
#      libregvault.a, times rv_check_run for SINGLE random donors on one open context (no
#      access gate, no audit fsync): median and p99, in the fresh process and again (other
#      donors) after faulting the whole store into its map as the daemon does at start
#      (rv_store_prefetch, a long-running process's steady state); then every donor once through
#      rv_check_run_many on 2 threads, in chunks of 256 (the matcher's batch rate without
#      the gate, the audit log and the files);
#   3. the real `regvault check --batch` over every donation, through the access gate (one
#      durable audit entry per chunk of 256 rows);
#   4. PostgreSQL 15: a throwaway cluster (bench/pg.sh: initdb as the postgres user in a
#      temporary folder, unix socket there, port 54329) holding the register's surname, forename,
#      postcode and address1 with an index on (surname, postcode); pgbench, one client,
#      prepared statements, looks up random donors' surname and postcode
#      (SELECT ... WHERE surname = $1 AND postcode = $2). Per-statement latency of that
#      lookup is compared with the single check, and pgbench's rate with the batch's.
# Targets (10M electors): single check median <= 20 us, p99 <= 200 us; 100,000 donations in
# <= 2 s. Prints aggregate figures only, never a name.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
# shellcheck source=bench/pg.sh
. "$here/pg.sh"
electors=${1:-1000000}
donations=${2:-100000}
single=${3:-20000}
areas=${AREAS:-$(((electors + 62500) / 125000))}
[ "$areas" -ge 8 ] || areas=8
[ "$areas" -le 400 ] || areas=400 # synth's most
rv=$(realpath "${REGVAULT:-$here/../build/regvault}")
build=$(dirname "$rv")
lib=$build/libregvault.a
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
pgport=${PGPORT_BENCH:-54329}
[ -f "$lib" ] || { echo "check.sh: no $lib; build first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-check-bench.XXXXXX")
chmod 755 "$work"
data=$work
if [ -n "${KEEP:-}" ]; then
    mkdir -p "$KEEP" && chmod 755 "$KEEP"
    data=$(realpath "$KEEP")
fi
trap 'pg_stop; rm -rf "$work"' EXIT

cc -O2 -std=c17 -D_GNU_SOURCE -I"$here/../src" "$here/check_bench.c" "$lib" \
    $(pkg-config --libs libsodium lmdb jansson libutf8proc) -lpthread -lm -o "$work/check_bench"

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $electors electors in $areas areas (about $((electors / areas)) per area), 6 months of alterations, $donations donations"
shape="$electors $areas $donations"
if [ -f "$data/ready" ] && [ "$(cat "$data/ready")" = "$shape" ]; then
    echo "ingest: reusing the vault in $data"
else
    rm -rf "$data/s" "$data/v" "$data/ready"
    head -c 32 /dev/urandom >"$data/key"
    "$rv" synth --electors "$electors" --areas "$areas" --months 6 --donations "$donations" \
        --seed 7 --out "$data/s" >/dev/null
    "$rv" init --vault "$data/v" --key-file "$data/key" --expected-electors "$electors" >/dev/null 2>&1
    t0=$(date +%s.%N)
    "$rv" ingest --vault "$data/v" --key-file "$data/key" "$data/s" >"$work/ingest.out" 2>&1
    t1=$(date +%s.%N)
    echo "ingest: $(tail -1 "$work/ingest.out") [wall $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s]"
    echo "$shape" >"$data/ready"
fi

"$work/check_bench" "$data/v" "$data/key" "$data/s/donations.csv" "$single" | tee "$work/single.txt"

t0=$(date +%s.%N)
TIMEFORMAT='%U %S' # the batch's CPU time (user, system): the machine's other load inflates wall time
{ time "$rv" check --vault "$data/v" --key-file "$data/key" --batch "$data/s/donations.csv" \
    --out "$work/answers.csv" 2>"$work/check.err"; } 2>"$work/batch.cpu"
t1=$(date +%s.%N)
batch_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
batch_cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/batch.cpu")
[ -z "${ANSWERS:-}" ] || cp "$work/answers.csv" "$ANSWERS"
echo "batch: $donations donations in $batch_s s, cpu $batch_cpu s ($(awk -v s="$batch_s" -v n="$donations" 'BEGIN { printf "%.0f", n / s }') donations/s), audited in chunks of 256 [$(tail -1 "$work/check.err" | sed 's/^regvault check: //')]"

# PostgreSQL 15 on the same register and the same donors.
pg_start
pg_load "$data/s"
cat >"$work/lookup.sql" <<SQL
\set r random(1, $ndonors)
SELECT surname AS s, postcode AS p FROM donors WHERE i = :r \gset
SELECT surname, forename, postcode, address1 FROM register WHERE surname = :s AND postcode = :p;
SQL
chmod 644 "$work/lookup.sql"
runuser -u postgres -- "$pgbin/pgbench" -h "$work/pg" -p "$pgport" -U postgres -n -M prepared \
    -c 1 -j 1 -T 15 -r -f "$work/lookup.sql" postgres >"$work/pgbench.txt" 2>&1
pg_lookup_ms=$(awk '/FROM register WHERE/ { print $1 }' "$work/pgbench.txt")
pg_tps=$(awk '/^tps/ { print $3; exit }' "$work/pgbench.txt")
pg_stop
echo "postgresql 15 (pgbench -M prepared -c 1, fsync off): $pg_tps lookups/s; the indexed lookup statement $pg_lookup_ms ms on average"

median=$(awk '/^single checks/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i + 1) }' "$work/single.txt")
mean=$(awk '/^single checks/ { for (i = 1; i <= NF; i++) if ($i == "mean") print $(i + 1) }' "$work/single.txt")
pmedian=$(awk '/^prefetched single checks/ { for (i = 1; i <= NF; i++) if ($i == "median") print $(i + 1) }' "$work/single.txt")
awk -v med="$median" -v pmed="$pmedian" -v mean="$mean" -v pg="$pg_lookup_ms" -v tps="$pg_tps" -v bs="$batch_s" -v n="$donations" 'BEGIN {
    pgus = pg * 1000
    printf "ratios against postgresql, same run: single check median %.2fx (prefetched %.2fx) and mean %.2fx the lookup latency (%.1f us); batch rate %.2fx pgbench'"'"'s lookup rate\n", med / pgus, pmed / pgus, mean / pgus, pgus, (n / bs) / tps
}'
