#!/usr/bin/env bash
# audit.sh - benchmarks of the audit log: durable appends with group commit, full
# verification, and inclusion proofs.
#
#   bench/audit.sh [ENTRIES]     default 10000000 (10 million); e.g. 1000000 for a quick run
#
# Builds libregvault in build-bench/ (Release) unless BUILD names an existing build folder,
# compiles bench/audit_bench.c against it, and works in a temporary folder (TMPDIR, on the
# same kind of disk as a vault would be) that it removes afterwards. Needs about 200 bytes
# of disk per entry. Targets: appends >= 200,000 entries/s from several threads; verify of
# 10 million entries <= 10 s; an inclusion proof at 10 million entries <= 50 us.
#
# With one entry per call, each thread has one append in flight, so the rate cannot pass
# threads / (time of one fdatasync): the CPU time per entry that append prints is the
# steadier figure on a shared machine.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-10000000}
build=${BUILD:-$here/build-bench}
if [ ! -f "$build/libregvault.a" ]; then
    cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target regvault_lib >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-audit-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cc -O2 -std=c17 -D_GNU_SOURCE -I"$here/src" "$here/bench/audit_bench.c" "$build/libregvault.a" \
    -lsodium -ljansson -lpthread -o "$work/audit_bench"
b=$work/audit_bench

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# one entry per call: every append waits for its own fsync, shared with whoever else is waiting"
for t in 16 64 256; do
    "$b" append "$work/a$t" "$t" 200000 1000 1
    rm -rf "$work/a$t"
done
echo "# batches (rv_audit_append_batch, as a batch check records one entry per donor)"
"$b" append "$work/b" 4 400000 1000 64
rm -rf "$work/b"
echo "# a log of $n entries, then verify and proofs"
"$b" append "$work/log" 8 "$n" 1000 256
"$b" verify "$work/log"
"$b" proof "$work/log" 100000
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
