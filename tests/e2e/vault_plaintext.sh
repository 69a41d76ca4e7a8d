#!/usr/bin/env bash
# vault_plaintext.sh - a stolen copy of the vault's files yields nothing readable: after a
# synthetic register is ingested, no file under the vault holds any of 1,000 sampled
# surnames, address lines or postcodes from the input, in any case, with or without spaces.
#
# The samples are first checked to be found in the input files (so the test can fail).
# Surnames shorter than 6 letters are left out: in a few megabytes of ciphertext, any
# 2-5 letter string turns up by chance, whatever the vault does.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-plain-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

head -c 32 /dev/urandom >"$work/key"
"$rv" synth --electors 10000 --areas 3 --months 2 --seed 7 --out "$work/synth" >/dev/null
"$rv" init --vault "$work/v" --key-file "$work/key" 2>/dev/null
"$rv" ingest --vault "$work/v" --key-file "$work/key" "$work/synth" >/dev/null ||
    fail "ingest of the synthetic register failed"

python3 - "$work/synth" "$work/patterns" <<'PY'
import csv, glob, io, random, sys
src, out = sys.argv[1], sys.argv[2]
surnames, lines, postcodes = set(), set(), set()
for path in sorted(glob.glob(src + "/*/*.csv")):
    raw = open(path, "rb").read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    first = text.split("\n", 1)[0]
    rows = csv.reader(io.StringIO(text), delimiter="\t" if "\t" in first else ",")
    head = [h.lower().replace(" ", "").replace("_", "") for h in next(rows)]
    col = {h: i for i, h in enumerate(head)}
    for r in rows:
        if len(r) != len(head):
            continue
        if "electorsurname" in col:
            s = r[col["electorsurname"]]
        else:
            n = r[col["electorname"]]
            s = n.split(",")[0] if "," in n else (n.split() or [""])[-1]
        s = s.strip()
        if len(s.replace(" ", "")) >= 6:
            surnames.add(s)
        a = r[col["address1"]].strip()
        if len(a) >= 8:
            lines.add(a)
        p = r[col["postcode"]].strip()
        if p:
            postcodes.add(p)
rnd = random.Random(1)
pick = lambda s, k: rnd.sample(sorted(s), min(k, len(s)))
a = pick(surnames, 400)
b = pick(lines, 300 + 400 - len(a))
sample = a + b + pick(postcodes, 1000 - len(a) - len(b))
if len(sample) < 1000:
    sys.exit("only %d samples" % len(sample))
pats = set()
for s in sample:
    pats.add(s)
    pats.add(s.replace(" ", ""))
with open(out, "w", encoding="utf-8") as f:
    for p in sorted(pats):
        f.write(p + "\n")
PY
n=$(wc -l <"$work/patterns")
[ "$n" -ge 1000 ] || fail "only $n patterns"

# The patterns are in the input (a sanity check that the search can find them)...
hits=$(cat "$work"/synth/*/*.csv | grep -a -i -c -F -f "$work/patterns" || true)
[ "$hits" -gt 1000 ] || fail "the patterns match only $hits input lines: the search is broken"

# ...and in no file of the vault, in any case, with or without spaces.
while IFS= read -r -d '' f; do
    if grep -a -i -F -q -f "$work/patterns" "$f"; then
        grep -a -i -F -o -f "$work/patterns" "$f" | head -3 | sed 's/^/  found: /' >&2
        fail "plaintext personal data in ${f#"$work"/}"
    fi
done < <(find "$work/v" -type f -print0)
echo "ok: $n patterns, none in $(find "$work/v" -type f | wc -l) vault files"
