#!/usr/bin/env bash
# user_cli.sh - drives `regvault user` on a real vault as an admin would: every command has
# --help; bad names, roles, fingerprints and options exit 2 before the vault is opened; users
# of every role and a service are added, listed (table and JSON), disabled, reinstated, given
# budgets, reset and have their passwords changed from files; a weak new password exits 3, a
# wrong current one 6, a wrong vault key 4. The TOTP enrolment is checked against an
# independent implementation: codes made by oathtool from the printed otpauth:// URI log in
# (through the unit-test binary's --login mode, the command having no login verb of its
# own), a code is refused the second time, and no password, secret or code reaches the
# audit log or stderr.
#
# Secrets are never printed by this script, even when it fails.
set -euo pipefail
rv=${REGVAULT:?REGVAULT must name the regvault binary}
build=${RV_BUILD_DIR:?RV_BUILD_DIR must name the build folder}
helper=$build/test_policy_principal
work=$(mktemp -d "${TMPDIR:-/tmp}/rv-user-e2e.XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v oathtool >/dev/null || fail "oathtool is not installed (scripts/bootstrap)"
command -v python3 >/dev/null || fail "python3 is not installed (scripts/bootstrap)"

v=$work/v
head -c 32 /dev/urandom >"$work/key"
head -c 32 /dev/urandom >"$work/wrong"
K=(--vault "$v" --key-file "$work/key")
cert=3f2a9c0d1e4b5a6978877665544332211000ffeeddccbbaa9988776655443322

run() { # run EXPECTED_RC args...: output in $work/out, $work/err
    local want=$1; shift
    set +e
    "$rv" user "$@" >"$work/out" 2>"$work/err"
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "user ${*:3} exited $rc, want $want: $(cat "$work/err")"
}
field() { # field NAME FILE: a string field of a one-line JSON object
    sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" "$2"
}
login() { # login EXPECTED USER PASSWORD_FILE CODE: 0 ok, 10 must change, 11 refused
    local want=$1
    set +e
    "$helper" --login "$v" "$work/key" "$2" "$3" "$4" >/dev/null 2>&1
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || fail "login of $2 gave $rc, want $want"
}

"$rv" init --vault "$v" --key-file "$work/key" >/dev/null 2>&1 || fail "init"

# usage
run 0 --help
grep -q "passwd NAME" "$work/out" || fail "user --help lacks the command list"
for c in add list disable reset reinstate budget passwd; do
    run 0 "$c" --help
    grep -q "usage: regvault user" "$work/out" || fail "user $c --help lacks its usage"
    grep -q "$c" "$work/out" || fail "user $c --help does not describe $c"
done
run 2
run 2 "${K[@]}" frobnicate
run 2 list
grep -q -- "--vault DIR is required" "$work/err" || fail "missing --vault not explained"
run 2 "${K[@]}" add
run 2 "${K[@]}" add carol
grep -q -- "--role" "$work/err" || fail "missing --role not explained"
for bad in Carol 1carol "ca rol" _carol "carol/x" "$(printf 'x%.0s' {1..64})"; do
    run 2 "${K[@]}" add "$bad" --role checker
    grep -q "not a valid principal name" "$work/err" || fail "bad name not explained"
done
for bad in root exporter Checker ""; do
    run 2 "${K[@]}" add carol --role "$bad"
done
run 2 "${K[@]}" add svc --role checker --service
run 2 "${K[@]}" add svc --role checker --cert-sha256 "$cert"
run 2 "${K[@]}" add svc --role checker --service --cert-sha256 abc123
grep -q "64 hex" "$work/err" || fail "bad fingerprint not explained"
run 2 "${K[@]}" add carol --role checker --budget -1
run 2 "${K[@]}" list extra
run 2 "${K[@]}" disable carol --role checker
run 2 "${K[@]}" budget carol
run 2 "${K[@]}" budget carol lots
run 2 "${K[@]}" list --frobnicate
run 4 --vault "$v" --key-file "$work/wrong" list
run 0 "${K[@]}" list
grep -q "no principals yet" "$work/out" || fail "empty list not explained"

# one user of each role, and a service
for r in admin registrar checker researcher auditor; do
    run 0 "${K[@]}" add "u-$r" --role "$r" --json
    cp "$work/out" "$work/$r.json"
    [ "$(field name "$work/$r.json")" = "u-$r" ] || fail "add --json name"
    [ "$(field role "$work/$r.json")" = "$r" ] || fail "add --json role"
    pw=$(field password "$work/$r.json")
    [ "${#pw}" -ge 20 ] || fail "issued password shorter than 20 characters"
    field totp_uri "$work/$r.json" |
        grep -Eq "^otpauth://totp/regvault:u-$r\?secret=[A-Z2-7]{32}&issuer=regvault&algorithm=SHA1&digits=6&period=30$" ||
        fail "enrolment URI of u-$r is not as specified"
done
run 0 "${K[@]}" add carol --role checker
grep -q "^password: " "$work/out" || fail "add prints no password"
grep -q "otpauth://totp/regvault:carol?secret=" "$work/out" || fail "add prints no URI"
grep -q $'\xe2\x96\x88' "$work/out" && fail "QR code drawn although stdout is not a terminal"
run 0 "${K[@]}" add dave --role researcher --budget 25 --qr
grep -q $'\xe2\x96\x88' "$work/out" || fail "--qr drew no QR code"
run 1 "${K[@]}" add carol --role auditor
grep -q "already exists" "$work/err" || fail "a taken name is not explained"
run 0 "${K[@]}" add batchbot --role checker --service --cert-sha256 \
    "$(echo "$cert" | tr a-f A-F | sed 's/../&:/g; s/:$//')"
grep -q "$cert" "$work/out" || fail "service fingerprint not normalised"

run 0 "${K[@]}" list
[ "$(wc -l <"$work/out")" -eq 9 ] || fail "list should show a header and 8 principals"
grep -Eq '^batchbot +checker +service +active ' "$work/out" || fail "list: service line"
grep -Eq '^dave +researcher +human +must-change +25 ' "$work/out" || fail "list: budget"
run 0 "${K[@]}" list --json
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert len(j) == 8 and j[0]["name"] == "batchbot" and j[0]["cert_sha256"] == sys.argv[2]' \
    "$work/out" "$cert" || fail "list --json"

# administration
run 0 "${K[@]}" disable u-registrar
run 0 "${K[@]}" list --json
python3 -c 'import json,sys; assert [p["disabled"] for p in json.load(open(sys.argv[1])) if p["name"] == "u-registrar"] == [True]' \
    "$work/out" || fail "disable not shown"
run 1 "${K[@]}" disable nobody
grep -q "no principal named nobody" "$work/err" || fail "unknown name not explained"
run 0 "${K[@]}" reinstate u-registrar
run 0 "${K[@]}" budget carol 500
run 0 "${K[@]}" list
grep -Eq '^carol +checker +human +must-change +500 ' "$work/out" || fail "budget not shown"
run 0 "${K[@]}" budget carol 0
run 2 "${K[@]}" reset batchbot

# reset, first login (must change), passwd from files, logins with oathtool's codes
field password "$work/checker.json" >"$work/old0"
run 0 "${K[@]}" reset u-checker --json
cp "$work/out" "$work/reset.json"
field password "$work/reset.json" >"$work/old"
cmp -s "$work/old0" "$work/old" && fail "reset issued the same password"
secret=$(field totp_uri "$work/reset.json" | sed 's/.*secret=\([A-Z2-7]*\)&.*/\1/')
printf 'a much better passphrase\n' >"$work/new"
printf 'password1234\n' >"$work/weak"
printf 'not the password at all\n' >"$work/bad"
run 6 "${K[@]}" passwd batchbot --password-file "$work/old0" --new-password-file "$work/new"
t=$(date +%s)
c0=$(oathtool --totp -b -N "@$t" "$secret")
c1=$(oathtool --totp -b -N "@$((t + 30))" "$secret")
[[ "$c0" =~ ^[0-9]{6}$ ]] || fail "oathtool did not accept the enrolment secret"
login 11 u-checker "$work/old0" "$c0"
login 10 u-checker "$work/old" "$c0"
login 11 u-checker "$work/old" "$c0"
run 3 "${K[@]}" passwd u-checker --password-file "$work/old" --new-password-file "$work/weak"
grep -q "too weak" "$work/err" || fail "a weak password is not explained"
run 6 "${K[@]}" passwd u-checker --password-file "$work/bad" --new-password-file "$work/new"
run 0 "${K[@]}" passwd u-checker --password-file "$work/old" --new-password-file "$work/new"
login 11 u-checker "$work/old" "$c1"
login 0 u-checker "$work/new" "$c1"
login 11 u-checker "$work/new" "$c1"
run 1 "${K[@]}" passwd u-checker --password-file "$work/nonexistent" --new-password-file "$work/new"

# no password, TOTP secret or code in the audit log, or in any message
"$rv" audit show --vault "$v" >"$work/log" 2>&1 || fail "audit show"
grep -q "op=reset user=u-checker" "$work/log" || fail "the reset is not in the audit log"
grep -q "op=login user=u-checker" "$work/log" || fail "logins are not in the audit log"
for f in "$work"/*.json; do
    for s in "$(field password "$f")" \
        "$(field totp_uri "$f" | sed 's/.*secret=\([A-Z2-7]*\)&.*/\1/')"; do
        [ -n "$s" ] || continue
        grep -qF "$s" "$work/log" && fail "a secret from $(basename "$f") is in the audit log"
        grep -qF "$s" "$work/err" && fail "a secret from $(basename "$f") is on stderr"
    done
done
for s in "a much better passphrase" "password1234" "not the password at all" "$c0" "$c1"; do
    grep -qwF "$s" "$work/log" && fail "a password or code is in the audit log"
done
echo "ok"
