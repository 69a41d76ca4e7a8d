#!/usr/bin/env bash
# Speed of `regvault synth`: generates a register of 10 million electors (one area, the
# common layout) into a temporary folder, reports electors per second of wall-clock and of
# CPU time (user + system: the generator is single-threaded), peak memory and bytes written,
# then deletes the output. The output goes to $TMPDIR (default /tmp); point TMPDIR at a
# tmpfs such as /dev/shm to measure the generator rather than the disk.
#
#   bench/synth.sh [electors] [extra synth options]
#   REGVAULT=<build>/regvault selects the build (default build/regvault)
set -euo pipefail
here=$(dirname "$(realpath "$0")")
rv=${REGVAULT:-$here/../build/regvault}
n=${1:-10000000}
shift || true
[ -x "$rv" ] || { echo "synth.sh: no $rv; build first" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rv-bench-synth.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# best of three runs, by wall-clock time
best=""
for run in 1 2 3; do
    rm -rf "$tmp/out"
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$rv" synth --electors "$n" "$@" \
        --out "$tmp/out" >/dev/null
    read -r wall user sys kb <"$tmp/time"
    bytes=$(du -sb "$tmp/out" | cut -f1)
    line="$wall $user $sys $kb $bytes"
    if [ -z "$best" ] || awk -v a="$wall" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
        best=$line
    fi
done
read -r wall user sys kb bytes <<<"$best"
awk -v n="$n" -v w="$wall" -v u="$user" -v s="$sys" -v kb="$kb" -v b="$bytes" -v cores="$(nproc)" 'BEGIN {
    cpu = u + s
    printf "synth: %d electors, %.1f MB written, %d cores\n", n, b / 1e6, cores
    printf "  wall %.2f s: %.2f M electors/s\n", w, n / w / 1e6
    printf "  cpu  %.2f s (user %.2f + sys %.2f): %.2f M electors/s on one core\n", cpu, u, s, n / cpu / 1e6
    printf "  peak memory %.0f MB\n", kb / 1024
}'
