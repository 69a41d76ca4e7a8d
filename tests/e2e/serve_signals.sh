#!/usr/bin/env bash
# End-to-end test of the daemon's signals: SIGTERM, SIGINT and SIGHUP must reach only the
# main thread, which waits for them (sigtimedwait) and stops in order, with a final audit
# checkpoint. A thread that left them unblocked (the audit log's committer, the store's
# prefetch, libmicrohttpd's workers) would take a SIGTERM that came while the main thread was
# busy, and its default action would kill the daemon with no stop on the audit log. So every
# thread of the running daemon, with a thread per connection and with a pool, must block all
# three; a SIGHUP leaves it serving; a SIGTERM stops it with exit 0 and "serve stop" on the
# log, which then verifies.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init e2e-serve-signals
serve_vault 2000 1

# blocked_everywhere: every thread of the daemon but the main one blocks SIGHUP (1), SIGINT (2)
# and SIGTERM (15). The main thread blocks them too, but the kernel shows them unblocked
# while it waits for them in sigtimedwait.
blocked_everywhere() {
    local n=0 blk
    for st in /proc/"$serve_pid"/task/*/status; do
        [ "$st" != "/proc/$serve_pid/task/$serve_pid/status" ] || continue
        blk=$(awk '/^SigBlk:/ { print $2 }' "$st" 2>/dev/null) || continue
        [ -n "$blk" ] || continue
        n=$((n + 1))
        for sig in 1 2 15; do
            (((0x$blk >> (sig - 1)) & 1)) ||
                fail "$1: a thread of the daemon ($(basename "$(dirname "$st")")) takes signal $sig"
        done
    done
    [ "$n" -ge 2 ] || fail "$1: only $n threads seen; the check would prove nothing"
    echo "$1: $n threads, each blocking SIGHUP, SIGINT and SIGTERM"
}

for threads in 0 2; do
    serve_config "threads=$threads"
    serve_start
    # Connections make libmicrohttpd's threads (one per connection without a pool).
    pids=()
    for _ in 1 2 3; do
        curl -s -o /dev/null --max-time 10 --cacert "$serve_ca" "https://127.0.0.1:$serve_port/healthz" &
        pids+=($!)
    done
    wait "${pids[@]}" || true
    blocked_everywhere "threads = $threads"
    kill -HUP "$serve_pid"
    sleep 0.3
    serve_alive "after SIGHUP, threads = $threads"
    serve_stop
done

"$rv" audit show --vault "$work/v" --json 2>/dev/null | grep -c '"serve stop"' >"$work/stops" || true
[ "$(cat "$work/stops")" -eq 2 ] || fail "the audit log holds $(cat "$work/stops") serve stops, want 2"
"$rv" audit verify --vault "$work/v" >/dev/null 2>&1 || fail "audit verify failed after the stops"
echo "ok"
