#!/usr/bin/env bash
# End-to-end ingest of a synthetic register (synth -> regvault ingest), in electors per
# second, against PostgreSQL 15 loading the same files with \copy into a table that has the
# equivalent plaintext indexes ((surname, postcode) and (address1, postcode)). Also reports
# regvault's peak memory: the largest RSS, and the largest anonymous RSS (RSS minus the
# pages of the mapped LMDB file), sampled every 100 ms, and the bytes it wrote (the kernel's
# write_bytes, which counts each page each time it is dirtied again after being written:
# 0 when TMPDIR is a tmpfs such as /dev/shm).
#
#   bench/ingest.sh [electors] [areas]   default 10000000 electors in 20 areas
#   REGVAULT=<build>/regvault selects the build (default build/regvault).
#   INGEST_OPTS="--files-per-commit 1" passes options to regvault ingest.
#   TMPDIR selects where the registers, the vault and PostgreSQL go (10 million electors:
#   0.8 GB of registers, a 6 to 9 GB vault, then PostgreSQL's table, indexes and WAL).
#
# PostgreSQL runs throwaway: initdb in a temporary folder, a unix socket there, port 54329,
# fsync and synchronous commit left on (as regvault's), shared_buffers 512MB; as root it is
# run as the postgres user. Without /usr/lib/postgresql/15/bin the comparison is skipped.
set -euo pipefail
here=$(dirname "$(realpath "$0")")
electors=${1:-10000000}
areas=${2:-20}
rv=$(realpath "${REGVAULT:-$here/../build/regvault}")
pgbin=${PGBIN:-/usr/lib/postgresql/15/bin}
port=54329
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rv-bench-ingest.XXXXXX")
chmod 755 "$tmp"
pg_started=
cleanup() {
    if [ -n "$pg_started" ]; then
        pgrun "$pgbin/pg_ctl" -D "$tmp/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
pgrun() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
now() { date +%s.%N; }

echo "synth: $electors electors in $areas areas"
t0=$(now)
"$rv" synth --electors "$electors" --areas "$areas" --seed 1 --out "$tmp/synth" >/dev/null
t1=$(now)
rows=$(cat "$tmp"/synth/*/full-*.csv | wc -l)
rows=$((rows - areas))
bytes=$(cat "$tmp"/synth/*/full-*.csv | wc -c)
printf 'synth: %.1f s, %d rows, %.0f MB of register files\n' "$(echo "$t1 - $t0" | bc)" "$rows" \
    "$(echo "$bytes / 1000000" | bc -l)"

# ---- regvault
head -c 32 /dev/urandom >"$tmp/key"
"$rv" init --vault "$tmp/vault" --key-file "$tmp/key" 2>/dev/null
sync
t0=$(now)
/usr/bin/time -v -o "$tmp/time.txt" "$rv" ingest --vault "$tmp/vault" --key-file "$tmp/key" \
    --json ${INGEST_OPTS:-} "$tmp/synth" >"$tmp/ingest.json" &
tpid=$!
anon=0
hwm=0
wbytes=0
while kill -0 "$tpid" 2>/dev/null; do
    p=$(pgrep -P "$tpid" regvault || true)
    if [ -n "$p" ] && [ -r "/proc/$p/status" ]; then
        a=$(awk '/^RssAnon/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        h=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
        [ "${a:-0}" -gt "$anon" ] && anon=$a
        [ "${h:-0}" -gt "$hwm" ] && hwm=$h
        w=$(awk '/^write_bytes/ {print $2}' "/proc/$p/io" 2>/dev/null || echo 0)
        [ "${w:-0}" -gt "$wbytes" ] && wbytes=$w
    fi
    sleep 0.1
done
wait "$tpid"
t1=$(now)
rv_s=$(echo "$t1 - $t0" | bc)
stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stored"])' "$tmp/ingest.json")
maxrss=$(awk -F': ' '/Maximum resident/ {print $2}' "$tmp/time.txt")
cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$tmp/time.txt")
store_mb=$(du -sm "$tmp/vault/store" | cut -f1)
rv_rate=$(echo "$rows / $rv_s" | bc)
printf 'regvault: %d electors in %.1f s: %d electors/s (CPU %.1f s; %d versions stored)\n' \
    "$rows" "$rv_s" "$rv_rate" "$cpu" "$stored"
printf 'regvault: peak RSS %d MB; peak anonymous RSS (RSS minus the LMDB map) %d MB; store %d MB on disk\n' \
    "$((maxrss / 1024))" "$((anon / 1024))" "$store_mb"
# Pages the process dirtied (the map's included, and a load's sealed scratch file of deferred
# index and list entries), as the kernel counts them, sampled as above: a page the kernel
# writes back during a load and the load dirties again is counted again.
printf 'regvault: %d MB written (write_bytes, sampled every 100 ms); %s\n' \
    "$((wbytes / 1000000))" "$(uptime | sed 's/.*load/load/')"

# ---- PostgreSQL 15
if [ ! -x "$pgbin/initdb" ]; then
    echo "postgresql: $pgbin/initdb not found: comparison skipped (scripts/bootstrap --bench)"
    exit 0
fi
mkdir "$tmp/pg" "$tmp/sock"
[ "$(id -u)" -eq 0 ] && chown postgres "$tmp/pg" "$tmp/sock"
pgrun "$pgbin/initdb" -D "$tmp/pg" -A trust -U postgres -E UTF8 >/dev/null
pgrun "$pgbin/pg_ctl" -D "$tmp/pg" -l "$tmp/sock/log" -w -o \
    "-p $port -k $tmp/sock -c listen_addresses='' -c shared_buffers=512MB -c max_wal_size=8GB" \
    start >/dev/null
pg_started=1
psql=(psql -X -q -v ON_ERROR_STOP=1 -h "$tmp/sock" -p "$port" -U postgres -d postgres)

# One \copy per file, with the file's own column list, delimiter and encoding.
python3 - "$tmp/synth" >"$tmp/copy.sql" <<'PY'
import glob, sys
names = {"electornumberprefix": "prefix", "electornumber": "number",
         "electornumbersuffix": "suffix", "electormarkers": "markers", "electordob": "dob",
         "electorname": "surname", "electorsurname": "surname", "electorforename": "forename",
         "postcode": "postcode", "optout": "optout", "uprn": "uprn"}
for i in range(1, 7):
    names["address%d" % i] = "address%d" % i
print("\\timing on")
for path in sorted(glob.glob(sys.argv[1] + "/*/full-*.csv")):
    raw = open(path, "rb").read()
    try:
        raw.decode("utf-8")
        enc = "UTF8"
    except UnicodeDecodeError:
        enc = "WIN1252"
    first = raw.split(b"\n", 1)[0].decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    delim = "\t" if "\t" in first else ","
    cols = [names.get(h.lower().replace(" ", "").replace("_", ""), "skip%d" % j)
            for j, h in enumerate(first.split(delim))]
    d = "E'\\t'" if delim == "\t" else "','"
    print("\\copy register(%s) from '%s' with (format csv, header true, delimiter %s, encoding '%s')"
          % (",".join(cols), path, d, enc))
PY
cols="prefix text, number int, suffix text, markers text, dob text, surname text, forename text,
      postcode text, address1 text, address2 text, address3 text, address4 text, address5 text,
      address6 text, optout text, uprn bigint"
for j in $(seq 0 20); do cols="$cols, skip$j text"; done
"${psql[@]}" -c "create table register ($cols)" \
    -c "create index on register (surname, postcode)" \
    -c "create index on register (address1, postcode)"
t0=$(now)
"${psql[@]}" -f "$tmp/copy.sql" >/dev/null
t1=$(now)
pg_s=$(echo "$t1 - $t0" | bc)
pg_rows=$("${psql[@]}" -t -A -c "select count(*) from register")
pg_rate=$(echo "$pg_rows / $pg_s" | bc)
printf 'postgresql 15 \\copy with 2 plaintext indexes: %d rows in %.1f s: %d rows/s\n' \
    "$pg_rows" "$pg_s" "$pg_rate"
printf 'ratio: regvault %.2fx the rows/s of PostgreSQL \\copy (regvault also seals every\n' \
    "$(echo "$rv_rate / $pg_rate" | bc -l)"
printf '       record, keeps 4 keyed blind indexes and versions, drops anonymous entries)\n'
