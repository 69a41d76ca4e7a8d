# pg.sh - the throwaway PostgreSQL 15 cluster that bench/check.sh and bench/serve.sh compare
# regvault with: sourced by them, not run.
#
# The caller sets pgbin (the PostgreSQL binaries), pgport (the cluster's port), work (the
# benchmark's temporary folder, mode 755, so that the postgres user can read it) and here
# (the bench/ folder), then:
#   pg_start [OPTION...]   initdb as the postgres user in $work/pg (trust, no sync) and start
#                          it on a unix socket there, port $pgport, no TCP, fsync off,
#                          shared_buffers 512MB, plus the caller's server options (-c k=v);
#   pg_load SYNTH          the revised registers of the synthetic register in SYNTH
#                          (surname, forename, postcode, address1; bench/check_pgload.py)
#                          into "register" with an index on (surname, postcode), and its
#                          individual donors into "donors" (i, surname, postcode); sets
#                          ndonors to the number of donors;
#   pg_stop                stops the cluster at once, if it is running (safe in an EXIT trap).
# psql (an array) runs psql as postgres against the cluster, stopping at the first error.
# shellcheck shell=bash disable=SC2034,SC2154 # the caller's variables, and ones set for it

pg_start() {
    mkdir "$work/pg" && chown postgres "$work/pg"
    runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w \
        -o "-k '$work/pg' -p $pgport -c listen_addresses='' -c fsync=off -c shared_buffers=512MB $*" \
        start >/dev/null
    psql=(runuser -u postgres -- psql -X -q -h "$work/pg" -p "$pgport" -U postgres -v ON_ERROR_STOP=1)
}

pg_load() {
    python3 "$here/check_pgload.py" "$1" "$work/register.tsv" "$work/donors.tsv" >/dev/null
    chmod 644 "$work/register.tsv" "$work/donors.tsv"
    ndonors=$(wc -l <"$work/donors.tsv")
    "${psql[@]}" <<SQL
CREATE TABLE register (surname text, forename text, postcode text, address1 text);
\copy register FROM '$work/register.tsv'
CREATE INDEX register_sp ON register (surname, postcode);
CREATE TABLE donors (i int PRIMARY KEY, surname text, postcode text);
\copy donors FROM '$work/donors.tsv'
VACUUM ANALYZE;
SQL
}

pg_stop() {
    if [ -f "$work/pg/postmaster.pid" ]; then
        runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
    fi
}
