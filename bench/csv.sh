#!/usr/bin/env bash
# Throughput of the streaming CSV reader alone. Generates a synthetic full-register file of
# ~120-byte rows (a third with a quoted "Surname, Forenames" name, some Windows-1252 bytes)
# and the same rows with every field quoted, as some exports write them; builds
# bench/csv-driver.c against the build's libregvault.a; reads each file through rv_csv_next
# three times. Prints rows/s, MB/s and peak memory (which must not grow with the file).
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

awk -v n="$rows" -v plain="$tmp/reg.csv" -v quoted="$tmp/quoted.csv" '
function emit(nf,    i, p, q) {
    p = ""; q = ""
    for (i = 1; i <= nf; i++) {
        p = p (i > 1 ? "," : "") (index(f[i], ",") ? "\"" f[i] "\"" : f[i])
        q = q (i > 1 ? "," : "") "\"" f[i] "\""
    }
    print p > plain; print q > quoted
}
BEGIN {
    srand(42);
    split("Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans Walker White Roberts Green Hall Wood Jackson Clarke", sn, " ");
    split("John David Michael Sarah Emma Mary James Robert Margaret Susan Peter Helen Paul Karen Andrew Ren\351e Zo\353", fn, " ");
    split("High Street North|Station Road|Church Lane|Victoria Road|Green Lane|Manor Road|Park Avenue|The Crescent", st, "|");
    split("Leeds|Bradford|Harrogate|Wakefield|Otley|Ilkley", tw, "|");
    nh = split("Elector Number Prefix,Elector Number,Elector Number Suffix,Elector Markers,Elector DOB,Elector Name,PostCode,Address1,Address2,Address3,Address4,Address5,Address6", f, ",");
    emit(nh);
    for (i = 1; i <= n; i++) {
        s = sn[int(rand() * 20) + 1]; g = fn[int(rand() * 17) + 1];
        f[1] = "LDS" (i % 40); f[2] = i; f[3] = (i % 7 == 0); f[4] = (i % 11 == 0) ? "A" : "";
        f[5] = ""; f[6] = (i % 3 == 0) ? s ", " g " A" : g " " s;
        f[7] = sprintf("LS%d %d%c%c", int(rand() * 30) + 1, int(rand() * 10),
                       65 + int(rand() * 26), 65 + int(rand() * 26));
        f[8] = (int(rand() * 200) + 1) " " st[int(rand() * 8) + 1];
        f[9] = "Flat " (int(rand() * 12) + 1) " Block B"; f[10] = "Headingley Village";
        f[11] = tw[int(rand() * 6) + 1]; f[12] = "West Yorkshire"; f[13] = "England";
        emit(13);
    }
}'

for f in reg quoted; do
    size=$(stat -c %s "$tmp/$f.csv")
    echo "csv ($f): $rows rows, $size bytes ($((size / rows)) bytes/row), $(nproc) cores"
    # Warm the page cache, then run three times (take the best).
    cat "$tmp/$f.csv" > /dev/null
    for i in 1 2 3; do "$tmp/driver" "$tmp/$f.csv"; done
done
