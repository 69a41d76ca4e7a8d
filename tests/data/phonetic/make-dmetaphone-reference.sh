#!/usr/bin/env bash
# Writes dmetaphone.tsv, the Double Metaphone reference table that
# tests/unit/test_core_phonetic.c checks rv_double_metaphone against.
#
# Oracle: PostgreSQL's contrib/fuzzystrmatch (dmetaphone and dmetaphone_alt), a port of
# Lawrence Philips' algorithm by way of the Text::DoubleMetaphone Perl module. The script
# starts a throwaway PostgreSQL server in a temporary directory (unix socket only, port
# 54329), asks it for both codes of every input, and stops it again.
#
#   tests/data/phonetic/make-dmetaphone-reference.sh      (PGBIN overrides the server's bin/)
#
# Inputs: the name lists in data/names, lower-cased, plus the classic hard cases of the
# algorithm and a few hundred pseudo-random letter strings. Only a-z count (as in
# rv_double_metaphone), so the server is given the letters of each input alone.
# Columns: input, primary, alternate as PostgreSQL returns them (the alternate equals the
# primary when there is no distinct alternate; rv_double_metaphone returns "" then).
set -euo pipefail
here=$(dirname "$(realpath "$0")")
root=$(realpath "$here/../../..")
pgbin=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
port=54329
tmp=$(mktemp -d)
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$tmp"
    as_pg=(runuser -u postgres --)
fi
stop() {
    "${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap stop EXIT

{
    for f in "$root"/data/names/*.csv; do
        tail -n +2 "$f" | cut -d, -f1
    done
    cat <<'HARD'
thompson
schmidt
smith
schneider
snider
xavier
caesar
michael
gallegos
jose
josie
san jacinto
womo
uomo
arnow
arnoff
filipowicz
filipowitz
tichner
dumb
thumb
dumber
knight
wright
cough
laugh
mclaughlin
gough
rough
tough
hugh
bough
broughton
ghislane
ghiradelli
gnome
pneumonia
psychology
ptolemy
wrack
orchestra
architect
orchid
chianti
chemistry
chorus
chore
character
charisma
hymn
mchugh
czerny
focaccia
mcclellan
bellocchio
bacchus
accident
accede
succeed
success
bertucci
bacci
edge
edgar
cagney
agnes
tagliaro
biaggi
danger
ranger
manger
rogier
hochmeier
island
isle
carlisle
carlysle
sugar
school
schooner
schermerhorn
schenker
schlesinger
resnais
artois
thomas
thames
wasserman
vasserman
breaux
zhao
yankelovich
jankelowicz
bajador
cabrillo
campbell
raspberry
mac caffrey
mac gregor
van halen
van
von
san
wachtler
wechsler
bacher
macher
xerxes
zeitgeist
zola
zizi
pizza
mozart
ewski
kowalski
jablonski
heimlich
lowenheim
sholz
obrien
o'neill
mcdonald
macdonald
featherstonehaugh
cholmondeley
marjoribanks
menzies
dalziel
farquharson
urquhart
ffoulkes
nguyen
wojciechowski
szczepanski
abdulrahman
siobhan
niamh
aoife
saoirse
tadhg
dafydd
gwyneth
rhys
llewellyn
cadwaladr
alexander
xiaoping
cc
x
xx
j
jj
zz
gh
ghi
gn
ach
sch
schw
wh
wicz
witz
tion
tia
tch
tth
dt
dd
dg
dgy
HARD
    for c in a b c d e f g h i j k l m n o p q r s t u v w x y z; do echo "$c"; done
    echo ""
    # Pseudo-random letter strings, weighted towards the letters with the most rules. The
    # generator is a Park-Miller LCG in exact double arithmetic, so every awk gives the same.
    awk 'function rnd() { x = (x * 16807) % 2147483647; return x / 2147483647 }
        BEGIN { x = 1201; L = "aeiouycghjlmrstwxzkpqbdnfv";
        for (i = 0; i < 400; i++) { n = 1 + int(rnd() * 9); s = "";
            for (k = 0; k < n; k++) s = s substr(L, 1 + int(rnd() * rnd() * 26), 1);
            print s } }'
} | tr 'A-Z' 'a-z' | awk '!seen[$0]++' >"$tmp/names.txt"
chmod 644 "$tmp/names.txt"

"${as_pg[@]}" "$pgbin/initdb" -D "$tmp/data" -A trust -U rv -E UTF8 --locale=C --no-sync \
    >/dev/null
"${as_pg[@]}" "$pgbin/pg_ctl" -D "$tmp/data" -w -l "$tmp/log" \
    -o "-k $tmp -p $port -c listen_addresses=''" start >/dev/null
"${as_pg[@]}" "$pgbin/psql" -X -q -h "$tmp" -p $port -U rv -d postgres -v ON_ERROR_STOP=1 \
    -At -F $'\t' >"$tmp/out.tsv" <<SQL
CREATE EXTENSION fuzzystrmatch;
CREATE TABLE names (ord serial, n text);
\\copy names(n) from '$tmp/names.txt'
SELECT coalesce(n, ''), dmetaphone(l), dmetaphone_alt(l)
  FROM (SELECT ord, n, regexp_replace(lower(coalesce(n, '')), '[^a-z]', '', 'g') AS l
          FROM names) s
 ORDER BY ord;
SQL
version=$("${as_pg[@]}" "$pgbin/postgres" --version)
{
    echo "# input	primary	alternate, from dmetaphone/dmetaphone_alt of $version"
    cat "$tmp/out.tsv"
} >"$here/dmetaphone.tsv"
echo "dmetaphone.tsv: $(($(wc -l <"$here/dmetaphone.tsv") - 1)) inputs"
