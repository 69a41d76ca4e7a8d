#!/usr/bin/env bash
# audit_cli.sh - drives `regvault audit` on a real log as an auditor would: usage errors exit
# 2; verify passes on a good log and exits 5 naming the entry when a byte is flipped; a
# rolled-back log is caught against a checkpoint kept elsewhere; proofs and checkpoints
# printed by the command are checked by a second, independent implementation (Python
# hashlib + cryptography's Ed25519) when that is installed.
#
# The log is made by the unit-test binary's fixture mode (the command has no verb that
# writes to the audit log: only the vault does).
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
fixture=${RV_BUILD_DIR:?RV_BUILD_DIR must name the build folder}/test_audit_log
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-audit-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$fixture" --make-fixture "$work/v" 40 || fail "fixture log could not be made"
"$fixture" --make-fixture "$work/old" 25 || fail "fixture log could not be made"

run() { # run EXPECTED_RC args...: output in $work/out, $work/err
    local want=$1; shift
    set +e
    "$rv" audit "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "audit $* exited $rc, want $want: $(cat "$work/err")"
}

# usage: every command has --help; errors exit 2 with a message and a pointer to --help
run 0 --help
grep -q "consistency" "$work/out" || fail "audit --help lacks the command list"
for c in verify checkpoint key proof consistency show subject; do
    run 0 "$c" --help
    grep -q "usage: regvault audit $c" "$work/out" || fail "audit $c --help lacks its usage"
done
run 2
run 2 frobnicate --vault "$work/v"
run 2 verify
grep -q -- "--vault DIR is required" "$work/err" || fail "missing --vault not explained"
run 2 verify --vault
run 2 verify --vault "$work/v" --index 3
run 2 proof --vault "$work/v"
run 2 proof --vault "$work/v" --index 40
grep -q -- "--index wants a whole number from 0 to 39" "$work/err" || fail "bad --index not explained"
run 2 proof --vault "$work/v" --index x
run 2 proof --vault "$work/v" --index 5 --size 5
run 2 consistency --vault "$work/v" --from 30 --to 20
run 2 consistency --vault "$work/v" --from 0 --to 20
run 2 show --vault "$work/v" --to 41
run 2 verify --vault "$work/v" --trusted-key not-a-key
run 1 verify --vault "$work/nothing-here"
grep -q "holds no audit log" "$work/err" || fail "missing log not explained"

# reading
run 0 verify --vault "$work/v"
grep -q "^audit log verified: 40 entries, .* latest checkpoint at 40$" "$work/out" ||
    fail "verify summary: $(cat "$work/out")"
run 0 key --vault "$work/v"
cp "$work/out" "$work/vkey"
grep -Eq '^regvault\.test/audit\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$' "$work/vkey" || fail "key format"
run 0 checkpoint --vault "$work/v"
cp "$work/out" "$work/cp40"
[ "$(sed -n 2p "$work/cp40")" = 40 ] || fail "checkpoint size line"
grep -q $'^\xe2\x80\x94 regvault.test/audit ' "$work/cp40" || fail "signature line lacks the em dash"
run 0 proof --vault "$work/v" --index 7
cp "$work/out" "$work/proof7"
grep -q '"leaf_index":7,"tree_size":40' "$work/proof7" || fail "proof JSON: $(cat "$work/proof7")"
run 0 proof --vault "$work/v" --index 3 --size 4
run 0 consistency --vault "$work/v" --from 25 --to 40
cp "$work/out" "$work/cons"
run 0 show --vault "$work/v" --from 3 --to 5
[ "$(wc -l <"$work/out")" -eq 3 ] || fail "show --from 3 --to 5 printed $(wc -l <"$work/out") lines"
run 0 show --vault "$work/v" --json
[ "$(wc -l <"$work/out")" -eq 40 ] || fail "show --json should print 40 lines"
grep -q '"index":39' "$work/out" || fail "show --json lacks the last entry"
run 1 subject --vault "$work/v" --name "Flora MacDonald" --postcode "IV1 1AA"
grep -q "no vault in" "$work/err" || fail "subject on a folder with no vault should say so"
grep -qi "flora\|IV1" "$work/err" && fail "subject echoed personal data in an error"

# trusted copies kept elsewhere
run 0 verify --vault "$work/v" --trusted-key "$(cat "$work/vkey")" --checkpoint "$work/cp40"
grep -q "extends the trusted checkpoint" "$work/out" || fail "trusted checkpoint not reported"
run 0 verify --vault "$work/v" --trusted-key-file "$work/vkey"
run 0 checkpoint --vault "$work/old"
cp "$work/out" "$work/cp25"
run 0 verify --vault "$work/v" --checkpoint "$work/cp25"
# the old log is a prefix of the new one: alone it verifies, against cp40 it is a rollback
run 0 verify --vault "$work/old"
run 5 verify --vault "$work/old" --checkpoint "$work/cp40"
grep -q "trusted checkpoint" "$work/err" || fail "rollback message: $(cat "$work/err")"

# tampering: flip one byte of entry 10's record; verify names entry 10
cp -r "$work/v" "$work/t"
off=$(od -An -tu8 -j $((16 + 10 * 8)) -N8 "$work/t/audit/index" | tr -d ' ')
printf 'X' | dd of="$work/t/audit/entries" bs=1 seek=$((off + 20)) conv=notrunc status=none
run 5 verify --vault "$work/t"
grep -q "FAILED at entry 10:" "$work/err" || fail "tamper message: $(cat "$work/err")"
# a checkpoint from another log (another key) is refused
run 5 verify --vault "$work/v" --trusted-key-file "$RV_SOURCE_DIR/tests/data/audit/verifier-key.txt"
grep -q "trusted verifier key" "$work/err" || fail "other-key message: $(cat "$work/err")"
run 5 verify --vault "$work/v" --checkpoint "$RV_SOURCE_DIR/tests/data/audit/checkpoint.note"

# a second implementation, if Python and its cryptography package are here
if python3 -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' 2>/dev/null; then
    python3 - "$work/v/audit" "$work/vkey" "$work/cp40" "$work/proof7" "$work/cons" <<'EOF'
import base64, hashlib, json, struct, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log, vkey, cp, proof, cons = sys.argv[1:]
H = lambda b: hashlib.sha256(b).digest()
node = lambda l, r: H(b"\x01" + l + r)

# entries file: 16-byte header, then u32le length | entry | 8 bytes of its leaf hash
data = open(log + "/entries", "rb").read()
assert data[:8] == b"RVAUDENT" and struct.unpack("<I", data[8:12])[0] == 1
leaves, off = [], 16
while off < len(data):
    (n,) = struct.unpack("<I", data[off:off + 4])
    entry = data[off + 4:off + 4 + n]
    leaf = H(b"\x00" + entry)
    assert data[off + 4 + n:off + 12 + n] == leaf[:8]
    leaves.append(leaf)
    off += 12 + n

def mth(ls):
    if len(ls) == 1:
        return ls[0]
    k = 1
    while k * 2 < len(ls):
        k *= 2
    return node(mth(ls[:k]), mth(ls[k:]))

# verifier key and signed note (C2SP signed-note, Ed25519)
name, kid, key = open(vkey).read().strip().split("+", 2)
raw = base64.b64decode(key)
assert raw[0] == 1 and len(raw) == 33
assert H(name.encode() + b"\n\x01" + raw[1:])[:4].hex() == kid
note = open(cp, "rb").read()
text, sigs = note.rsplit(b"\n\n", 1)
text += b"\n"
dash, signer, b64 = sigs.decode().strip().split(" ")
assert dash == "\u2014" and signer == name
sig = base64.b64decode(b64)
assert sig[:4].hex() == kid
Ed25519PublicKey.from_public_bytes(raw[1:]).verify(sig[4:], text)
origin, size, root = text.decode().splitlines()
assert origin == name and int(size) == len(leaves) == 40
assert base64.b64decode(root) == mth(leaves)

# RFC 9162 2.1.3.2 inclusion
p = json.load(open(proof))
fn, sn, r = p["leaf_index"], p["tree_size"] - 1, base64.b64decode(p["leaf_hash"])
assert r == leaves[p["leaf_index"]]
for h in map(base64.b64decode, p["proof"]):
    assert sn != 0
    if fn & 1 or fn == sn:
        r = node(h, r)
        while not fn & 1 and fn:
            fn >>= 1; sn >>= 1
    else:
        r = node(r, h)
    fn >>= 1; sn >>= 1
assert sn == 0 and r == base64.b64decode(p["root"]) == mth(leaves[:p["tree_size"]])

# RFC 9162 2.1.4.2 consistency
c = json.load(open(cons))
s1, s2 = c["size1"], c["size2"]
path = [base64.b64decode(h) for h in c["proof"]]
r1, r2 = base64.b64decode(c["root1"]), base64.b64decode(c["root2"])
assert r1 == mth(leaves[:s1]) and r2 == mth(leaves[:s2])
if s1 & (s1 - 1) == 0:
    path = [r1] + path
fn, sn = s1 - 1, s2 - 1
while fn & 1:
    fn >>= 1; sn >>= 1
fr = sr = path[0]
for h in path[1:]:
    assert sn != 0
    if fn & 1 or fn == sn:
        fr, sr = node(h, fr), node(h, sr)
        while not fn & 1 and fn:
            fn >>= 1; sn >>= 1
    else:
        sr = node(sr, h)
    fn >>= 1; sn >>= 1
assert sn == 0 and fr == r1 and sr == r2
print("second implementation agrees: entries, root, signature, inclusion, consistency")
EOF
else
    echo "python3 with 'cryptography' not found: skipping the second implementation"
fi
echo "audit_cli: all checks passed"
