#!/usr/bin/env bash
# serve_mfa.sh - the daemon's second factor and its lockouts, against the real daemon:
#   - a login without a TOTP code fails (400 or 401), and with a wrong code gets 401;
#   - wrong codes count towards a lockout: after enough of them the user gets 429 with a
#     Retry-After even with the right code, and the Retry-After grows with each further
#     lockout (exponential backoff); once it has passed, the right code works again;
#   - a TOTP step already used (a replay) or one older than the last used gets 401;
#   - a code computed independently with `oathtool --totp` for the present moment (by curl,
#     outside the Python client) logs in;
#   - a disabled user gets 401 with the right password and code;
#   - a honeytoken (`regvault honeytoken create --format env`): its API token and its user
#     name and password get 401 like any bad credential, and each first use raises an alert
#     ("honeytoken", high) naming the client address it came from, in `regvault alerts
#     --json` and in GET /v1/alerts;
#   - `regvault user reset` run on the host while the daemon holds the vault is refused.
# Each scenario comes from its own loopback address (127.0.0.x, the daemon listens on
# 127.0.0.1), so that per-address lockouts of one do not disturb another. Prints statuses
# and counts only.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init mfa

serve_vault 600 1 10
for u in mfa-ok mfa-lock mfa-lock2 mfa-lock3 mfa-replay mfa-off; do user_add "$u" checker; done
user_add mfa-admin admin
user_add mfa-audit auditor
"$rv" honeytoken create --vault "$work/v" --key-file "$work/key" --label "finance file share" \
    --format env >"$work/honey.env" 2>"$work/honey.err" ||
    fail "regvault honeytoken create failed: $(head -c 300 "$work/honey.err")"
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} session_idle=600 rate_principal=1000 burst_principal=1000 rate_client=10000 \
    burst_client=10000
serve_start

# An independent code for the present moment, computed by oathtool and sent by curl.
secret=$(python3 -c 'import rvhttp; print(rvhttp.user("mfa-ok")["secret"])')
password=$(python3 -c 'import rvhttp; print(rvhttp.user("mfa-ok")["password"])')
# keep clear of the end of a step, so that the code is not a step old when it arrives
while [ $(($(date +%s) % 30)) -ge 27 ]; do sleep 1; done
code=$(oathtool --totp -b "$secret")
printf '{"user":"mfa-ok","password":"%s","totp":"%s"}' "$password" "$code" >"$work/login.json"
status=$(curl -s -o "$work/login.out" -w '%{http_code}' --cacert "$serve_ca" \
    -H 'Content-Type: application/json' --data-binary @"$work/login.json" \
    "https://127.0.0.1:$serve_port/v1/session")
rm -f "$work/login.json"
[ "$status" = 201 ] || fail "login with oathtool's code for now: $status, want 201"
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["token"].startswith("rvs_") and j["must_change"] is True' \
    "$work/login.out" || fail "login answer is not {token: rvs_..., must_change: true}"
# the same code again, at once, is a replay
printf '{"user":"mfa-ok","password":"%s","totp":"%s"}' "$password" "$code" >"$work/login.json"
status=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$serve_ca" \
    -H 'Content-Type: application/json' --data-binary @"$work/login.json" \
    "https://127.0.0.1:$serve_port/v1/session")
rm -f "$work/login.json"
[ "$status" = 401 ] || fail "the same oathtool code twice: $status, want 401"

python3 - "$work/honey.env" "$rv" "$work/v" <<'PY'
import json, re, subprocess, sys, time
import rvhttp
from rvhttp import request, login, user, totp, next_step, mark_step, STEP

honey_env, rv, vault = sys.argv[1:]
bad = []


def want(label, r, status):
    if r.status != status:
        bad.append("%s: got %d (%s), want %d" % (label, r.status, r.error(), status))
    return r


def wrong_code(secret, now):
    """A six-digit code that no step from now-2 to now+2 has."""
    good = {totp(secret, s) for s in range(now - 2, now + 3)}
    c = int(totp(secret, now))
    while True:
        c = (c + 1) % 1000000
        if "%06d" % c not in good:
            return "%06d" % c


# 1. No TOTP at all, and an empty one.
d = user("mfa-replay")
r = request("POST", "/v1/session", {"user": "mfa-replay", "password": d["password"]},
            source="127.0.0.5")
if r.status not in (400, 401):
    bad.append("login without totp: %d, want 400 or 401" % r.status)
r = request("POST", "/v1/session", {"user": "mfa-replay", "password": d["password"], "totp": ""},
            source="127.0.0.5")
if r.status not in (400, 401):
    bad.append("login with an empty totp: %d, want 400 or 401" % r.status)

# 2. Replays: a step used once is refused, and so is an older one. Each refusal proves
#    something only while the gate's clock still accepts the step (one step either side), so
#    the login takes the step after the present one: that step stays acceptable for at least
#    30 s, the older one (the present step) until the end of the next. An attempt whose
#    answers came later than that (a stalled machine) is done again with later steps. A later
#    step works.
for attempt in range(3):
    s = max(int(time.time() // STEP) + 1, rvhttp._last_step.get("mfa-replay", -1) + 1)
    r = login("mfa-replay", step=s, source="127.0.0.5")
    if r.status != 201:
        if time.time() < (s + 2) * STEP:
            bad.append("first login: got %d (%s), want 201" % (r.status, r.error()))
            break
        continue
    r = login("mfa-replay", code=totp(d["secret"], s), source="127.0.0.5")
    replay_in_window = time.time() < (s + 2) * STEP
    r_old = login("mfa-replay", code=totp(d["secret"], s - 1), source="127.0.0.5")
    older_in_window = time.time() < (s + 1) * STEP
    if replay_in_window:
        want("replayed step", r, 401)
    if older_in_window:
        want("older step", r_old, 401)
    if replay_in_window and older_in_window:
        break
else:
    bad.append("replays: three attempts in a row were answered after their steps aged out")
want("later step", login("mfa-replay", source="127.0.0.5"), 201)
want("wrong password, right code", login("mfa-replay", password="not-the-password-at-all",
                                           source="127.0.0.5"), 401)

# 3. A disabled user: the admin disables it through the API; the right password and code
#    then get 401.
admin = rvhttp.ready_token("mfa-admin")
want("disabled user can log in before", login("mfa-off", source="127.0.0.6"), 201)
want("disable", request("POST", "/v1/users/mfa-off/disable", token=admin), 204)
want("disabled user", login("mfa-off", source="127.0.0.6"), 401)

# 4. Lockout by wrong codes: 401 until locked, then 429 with Retry-After even for the right
#    code, from this address and from another (the lock is per user as well); once the lock
#    has passed, one more wrong code locks again for longer (exponential backoff); once that
#    has passed, the right code works again.
#    A lock runs from the start of the failed login that earned it, and on a loaded machine
#    that login alone can outlast a lock of a second or two: the next wrong code then comes
#    after it, fails, and earns the next lock, twice as long. So the right code is tried on
#    the first lock seen with 3 s or more left, and a 201 counts against the daemon only when
#    it was answered before that lock could have ended (the 429's Retry-After, less the second
#    it is rounded up by, from when the 429 was asked for). A 201 that came later proves
#    nothing and has logged the user in: the checks start again with the next user.


def wrong_until_locked(u, secret, source, tries):
    """Wrong codes from source until one is not 401: (the 401s before it, that answer, when
    it was asked for)."""
    fails = 0
    for _ in range(tries):
        asked = time.time()
        r = login(u, code=wrong_code(secret, int(asked // STEP)), source=source)
        if r.status != 401:
            break
        fails += 1
    return fails, r, asked


def lockout(u, source, other):
    """The checks of a user's lockout; False when a late answer left them inconclusive."""
    lu = user(u)
    fails, r, asked = wrong_until_locked(u, lu["secret"], source, 30)
    if r.status != 429:
        bad.append("wrong codes: %d x 401 and then %d, want 429 within 30 tries" % (fails, r.status))
        return True
    ra_first = ra = int(r.headers.get("retry-after", "0"))
    if ra <= 0:
        bad.append("429 without a positive Retry-After")
        return True
    # Short locks are waited out, each followed by wrong codes until the next, longer, one.
    for _ in range(8):
        if ra >= 3:
            break
        time.sleep(ra + 0.5)
        n, r, asked = wrong_until_locked(u, lu["secret"], source, 10)
        if r.status != 429:
            bad.append("wrong codes after a lock: %d x 401 and then %d, want 429" % (n, r.status))
            return True
        fails += n
        ra = int(r.headers.get("retry-after", "0"))
    else:
        bad.append("Retry-After never reached 3 s: %d s, then %d s" % (ra_first, ra))
        return True
    held_until = asked + ra - 1  # the lock lasts at least until then
    for label, src in (("right code while locked", source),
                       ("right code from another address while locked", other)):
        r = login(u, source=src)
        if r.status != 429:
            if time.time() < held_until:
                bad.append("%s: got %d (%s), want 429" % (label, r.status, r.error()))
                return True
            return False
    # Backoff: once the lock has passed, wrong codes lock again, for longer.
    ra_locked = ra
    for _ in range(4):
        time.sleep(ra + 0.5)
        n, r, asked = wrong_until_locked(u, lu["secret"], source, 10)
        if r.status != 429:
            bad.append("wrong codes after the lock: %d x 401 and then %d, want 429" %
                       (n, r.status))
            return True
        grew, ra = int(r.headers.get("retry-after", "0")) > ra, int(r.headers.get("retry-after", "0"))
        if grew:
            break
    else:
        bad.append("Retry-After did not grow over four more locks: %d s, then %d s" % (ra_locked, ra))
        return True
    print("lockout: %d wrong codes before the first 429; Retry-After %d s, %d s, then %d s" %
          (fails, ra_first, ra_locked, ra))
    if ra <= 40:
        time.sleep(ra + 0.5)
        want("right code after the lock has passed", login(u, source=source), 201)
    return True


for u, source, other in (("mfa-lock", "127.0.0.2", "127.0.0.7"),
                         ("mfa-lock2", "127.0.0.8", "127.0.0.9"),
                         ("mfa-lock3", "127.0.0.10", "127.0.0.11")):
    if lockout(u, source, other):
        break
else:
    bad.append("lockout: three users in a row got answers too late to check their locks")

# 5. Honeytokens. The env file names a user, a password, a TOTP secret and an API token; the
#    login uses all of them, with a good code for the decoy's secret.
env = {}
for line in open(honey_env):
    m = re.match(r'\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$', line.strip())
    if m:
        env[m.group(1)] = m.group(2).strip().strip('"').strip("'")
token = next((v for v in env.values() if v.startswith("rvs_")), None)
huser = next((v for k, v in env.items() if "USER" in k.upper()), None)
hpass = next((v for k, v in env.items() if "PASS" in k.upper()), None)
if not (token and huser and hpass):
    bad.append("honeytoken env file: token %s, user %s, password %s" %
               (bool(token), bool(huser), bool(hpass)))
else:
    want("honeytoken API token", request("GET", "/v1/stats", token=token, source="127.0.0.3"), 401)
    hsecret = next((v for k, v in env.items() if "TOTP" in k.upper()), None)
    hcode = totp(hsecret, int(time.time() // STEP)) if hsecret else "123456"
    want("honeytoken login", request("POST", "/v1/session",
         {"user": huser, "password": hpass, "totp": hcode}, source="127.0.0.4"), 401)

    def alerts_cli():
        out = subprocess.run([rv, "alerts", "--vault", vault, "--json"], capture_output=True,
                             text=True)
        if out.returncode != 0:
            bad.append("regvault alerts --json exited %d" % out.returncode)
            return []
        text = out.stdout.strip()
        if text.startswith("["):
            return json.loads(text)
        return [json.loads(l) for l in text.splitlines() if l.strip()]

    def honey(alerts, client):
        return [a for a in alerts if a.get("kind") == "honeytoken" and a.get("client") == client]

    # A refusal's audit entries (its alert among them) may be made durable just after its
    # answer: wait for both alerts (at most 60 s), rather than for a fixed time.
    deadline = time.time() + 60
    cli = alerts_cli()
    while time.time() < deadline and not (honey(cli, "127.0.0.3") and honey(cli, "127.0.0.4")):
        time.sleep(0.2)
        cli = alerts_cli()
    for client, what in (("127.0.0.3", "token"), ("127.0.0.4", "login")):
        if len(honey(cli, client)) < 1:
            bad.append("regvault alerts: no honeytoken alert for the %s use from %s" % (what, client))
    auditor = rvhttp.ready_token("mfa-audit")
    r = want("GET /v1/alerts", request("GET", "/v1/alerts", token=auditor), 200)
    j = r.json()
    api = j if isinstance(j, list) else (j or {}).get("alerts", [])
    for client, what in (("127.0.0.3", "token"), ("127.0.0.4", "login")):
        hs = honey(api, client)
        if len(hs) < 1:
            bad.append("GET /v1/alerts: no honeytoken alert for the %s use from %s" % (what, client))
        elif hs[0].get("severity") not in ("high", 2):
            bad.append("honeytoken alert severity %r, want high" % hs[0].get("severity"))
    print("honeytoken alerts: %d in regvault alerts, %d in GET /v1/alerts" %
          (len([a for a in cli if a.get("kind") == "honeytoken"]),
           len([a for a in api if a.get("kind") == "honeytoken"])))

if bad:
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    print("FAIL: %d checks failed" % len(bad), file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the logins"

# While the daemon runs it holds the vault: a local `regvault user reset` is refused (so no
# principal changes behind the daemon's sessions) and changes nothing.
set +e
"$rv" user --vault "$work/v" --key-file "$work/key" reset mfa-ok >/dev/null 2>"$work/reset.err"
rc=$?
set -e
[ "$rc" -ne 0 ] && grep -q "busy" "$work/reset.err" ||
    fail "regvault user reset while the daemon runs: exit $rc, want a refusal saying the vault is busy"
serve_stop
echo "serve_mfa: all checks passed"
