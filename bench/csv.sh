#!/usr/bin/env bash
# Throughput of the streaming CSV reader alone: generates a synthetic full-register file of
# ~120-byte rows (a third with a quoted "Surname, Forenames" name, some Windows-1252 bytes),
# builds bench/csv-driver.c against the build's libregvault.a, and reads the file through
# rv_csv_next. Prints rows/s, MB/s and peak memory (which must not grow with the file).
#
#   bench/csv.sh [rows]          REGVAULT=<build>/regvault selects the build (default build/)
set -euo pipefail
here=$(dirname "$(realpath "$0")")
rows=${1:-2000000}
rv=${REGVAULT:-$here/../build/regvault}
build=$(dirname "$(realpath "$rv")")
lib=$build/libregvault.a
[ -f "$lib" ] || { echo "csv.sh: no $lib; build first" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cc -O2 -std=c17 -D_GNU_SOURCE -I"$here/../src" "$here/csv-driver.c" "$lib" -o "$tmp/driver"

awk -v n="$rows" 'BEGIN {
    srand(42);
    split("Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White Roberts Green Hall Wood Jackson Clarke", sn, " ");
    split("John David Michael Sarah Emma Mary James Robert Margaret Susan Peter Helen Paul Karen Andrew Ren\351e Zo\353", fn, " ");
    split("High Street North|Station Road|Church Lane|Victoria Road|Green Lane|Manor Road|Park Avenue|The Crescent", st, "|");
    split("Leeds|Bradford|Harrogate|Wakefield|Otley|Ilkley", tw, "|");
    print "Elector Number Prefix,Elector Number,Elector Number Suffix,Elector Markers,Elector DOB,Elector Name,PostCode,Address1,Address2,Address3,Address4,Address5,Address6";
    for (i = 1; i <= n; i++) {
        s = sn[int(rand() * 20) + 1]; f = fn[int(rand() * 17) + 1];
        name = (i % 3 == 0) ? "\"" s ", " f " A\"" : f " " s;
        printf "LDS%d,%d,%d,%s,,%s,LS%d %d%c%c,%d %s,Flat %d Block B,Headingley Village,%s,West Yorkshire,England\n",
            i % 40, i, i % 7 == 0, (i % 11 == 0) ? "A" : "", name, int(rand() * 30) + 1,
            int(rand() * 10), 65 + int(rand() * 26), 65 + int(rand() * 26),
            int(rand() * 200) + 1, st[int(rand() * 8) + 1], int(rand() * 12) + 1,
            tw[int(rand() * 6) + 1];
    }
}' > "$tmp/reg.csv"

size=$(stat -c %s "$tmp/reg.csv")
echo "csv: $rows rows, $size bytes ($((size / rows)) bytes/row), $(nproc) cores"
# Warm the page cache, then take the best of three.
cat "$tmp/reg.csv" > /dev/null
for i in 1 2 3; do "$tmp/driver" "$tmp/reg.csv"; done
