#!/usr/bin/env bash
# serve_authz.sh - the daemon's authorisation matrix, from one table: every endpoint of
# `regvault serve` x every role (admin, registrar, checker, researcher, auditor) x every
# kind of credential (none, a made-up token, an expired token, a revoked token, a valid
# token) gives exactly the status the table says: 401 for anything but a valid token (except
# /healthz, which needs none), 403 {"error":"forbidden"} for a valid token of a role the
# endpoint does not serve, and the endpoint's own success status, with a valid body, for a
# role it does. A session that must change its password gets 403
# {"error":"password_change_required"} everywhere except the password change and logout.
# Every error is JSON with "error" and "message".
#
# Expired tokens are made by idling: the daemon runs with session_idle = 10 s (the least it
# takes). Valid tokens are kept alive by using them: besides the matrix's own requests, a
# thread of the client touches every valid token unused for 2 s, whatever the matrix is
# waiting for (on a loaded machine one upload can take longer than session_idle), and a touch
# refused as 401 is a valid session lost. Each role has three principals (one for the valid,
# one for the expired and one for the revoked session), so that no TOTP step is ever offered
# twice.
#
# Prints statuses and counts only, never a name or a credential.
set -euo pipefail
. "$(dirname "$(realpath "$0")")/lib/serve.sh"
serve_init authz

serve_vault 2000 2 20
for role in admin registrar checker researcher auditor; do
    for k in v x r; do user_add "$role-$k" "$role"; done
done
user_add target-d researcher
user_add target-r researcher
user_add target-b checker
serve_config ${RV_SERVE_THREADS:+threads=$RV_SERVE_THREADS} session_idle=10 session_max=3600 rate_principal=1000 burst_principal=1000 \
    rate_client=10000 burst_client=10000 budget_checker=100000
serve_start

python3 - "$work/s" <<'PY'
import csv, io, os, sys, threading, time
from rvhttp import request, login, user, save_user, ready_token

synth = sys.argv[1]
IDLE = 10
ROLES = ["admin", "registrar", "checker", "researcher", "auditor"]
ALL = set(ROLES)

# A real donor from the register of area 1 (UTF-8, "Surname, Forenames"), for valid bodies.
with open(synth + "/E07000001/full-2025-12-01.csv", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(f))
e = next(r for r in rows if r["Address1"][:1].isdigit() and r["Elector Markers"] == "")
sn, fn = [x.strip() for x in e["Elector Name"].split(",", 1)]
donor = {"name": fn + " " + sn, "address": e["Address1"], "postcode": e["PostCode"],
         "date": "2026-01-10"}
batch = io.StringIO()
w = csv.writer(batch, lineterminator="\n")
w.writerow(["id", "name", "address", "postcode", "date"])
w.writerow(["b1", donor["name"], donor["address"], donor["postcode"], donor["date"]])
w.writerow(["b2", "Zebedee Quixotic", "", donor["postcode"], donor["date"]])
batch = batch.getvalue()
with open(synth + "/E07000002/full-2025-12-01.csv", "rb") as f:
    register2 = f.read()

passwords = {}  # role -> the valid principal's current password (for the change endpoint)


pending = {}


def pw_body(role):
    pending[role] = "Changed-" + os.urandom(10).hex()
    return {"password": passwords.get(role, "x" * 16), "new_password": pending[role]}


# THE TABLE: name, method, path, body (a value or a function of the role), content type,
# roles served, success status. Logout (DELETE /v1/session) is in the table too; its valid
# case is the revocation of each role's "revoked" session (it ends the session it is sent
# with), so in the matrix its valid column is skipped.
TABLE = [
    ("check", "POST", "/v1/checks", donor, "application/json", {"checker"}, 200),
    ("batch", "POST", "/v1/checks/batch?format=plain", batch, "text/csv", {"checker"}, 200),
    ("ingest", "POST", "/v1/ingest?area=E07000002&edition=2025-12-01", register2, "text/csv",
     {"registrar"}, 200),
    ("stats", "GET", "/v1/stats", None, None, {"registrar", "researcher", "admin", "auditor"}, 200),
    ("checkpoint", "GET", "/v1/audit/checkpoint", None, None, {"auditor"}, 200),
    ("proof", "GET", "/v1/audit/proof?index=0", None, None, {"auditor"}, 200),
    ("consistency", "GET", "/v1/audit/consistency?from=1", None, None, {"auditor"}, 200),
    ("users", "GET", "/v1/users", None, None, {"admin"}, 200),
    ("user-add", "POST", "/v1/users", {"name": "newcomer", "role": "researcher", "kind": "human"},
     "application/json", {"admin"}, 201),
    ("disable", "POST", "/v1/users/target-d/disable", None, None, {"admin"}, 204),
    ("reinstate", "POST", "/v1/users/target-d/reinstate", None, None, {"admin"}, 204),
    ("reset", "POST", "/v1/users/target-r/reset", None, None, {"admin"}, 200),
    ("budget", "PUT", "/v1/users/target-b/budget", {"budget": 500}, "application/json",
     {"admin"}, 204),
    ("alerts", "GET", "/v1/alerts", None, None, {"auditor"}, 200),
    ("metrics", "GET", "/metrics", None, None, {"admin", "auditor"}, 200),
    ("healthz", "GET", "/healthz", None, None, None, 200),  # None: no authentication
    ("password", "POST", "/v1/session/password", pw_body, "application/json", ALL, 204),
    ("logout", "DELETE", "/v1/session", None, None, ALL, 204),
]

bad = []
sent = 0


def expect(label, r, want, err=None):
    global sent
    sent += 1
    ok = r.status == want
    if ok and r.status >= 400:
        j = r.json()
        ok = isinstance(j, dict) and isinstance(j.get("error"), str) and \
            isinstance(j.get("message"), str)
        if not ok:
            bad.append("%s: %d without a JSON {error, message} body" % (label, r.status))
            return
        if err and j["error"] != err:
            bad.append("%s: %d error %r, want %r" % (label, r.status, j["error"], err))
            return
    if not ok:
        bad.append("%s: got %d (%s), want %d" % (label, r.status, r.error(), want))


valid = {}
valid_used = {}
valid_lock = threading.Lock()
keeper_stop = threading.Event()


def keeper():
    """Every half second, touches each valid token unused for IDLE/5 seconds (GET /v1/stats;
    any answer past the token check, 403 for a checker included, counts as use), so that none
    idles out while the matrix waits on a slow request."""
    while not keeper_stop.wait(0.5):
        with valid_lock:
            due = [(role, token) for role, token in valid.items()
                   if time.time() - valid_used.get(role, 0) > IDLE / 5]
        for role, token in due:
            asked = time.time()
            r = request("GET", "/v1/stats", token=token)
            if r.status in (200, 403):
                with valid_lock:
                    valid_used[role] = max(valid_used.get(role, 0), asked)
            else:
                bad.append("keeping %s's valid session alive: %d (%s)" % (role, r.status, r.error()))


def send(row, role, token):
    name, method, path, body, ctype, roles, ok = row
    if callable(body):
        body = body(role)
    asked = time.time()
    r = request(method, path, body, token=token, ctype=ctype)
    if token is not None and valid.get(role) == token:
        with valid_lock:
            valid_used[role] = max(valid_used.get(role, 0), asked)
    return r


# 1. Expired and revoked sessions. The revoked principal's first session must change its
#    password: logout is allowed there, and ends it.
expired, revoked = {}, {}
for role in ROLES:
    expired[role] = ready_token(role + "-x")
    r = login(role + "-r")
    assert r.status == 201 and r.json().get("must_change") is True, \
        "first login of a new principal: %d, must_change %r" % (r.status, (r.json() or {}).get("must_change"))
    mc = r.json()["token"]
    expect("logout/%s/must_change" % role, request("DELETE", "/v1/session", token=mc), 204)
    expect("password/%s/logged-out must_change" % role,
           request("POST", "/v1/session/password", pw_body(role), token=mc), 401)
    revoked[role] = ready_token(role + "-r")
    expect("logout/%s/valid" % role, request("DELETE", "/v1/session", token=revoked[role]), 204)
expired_at = time.time()

# 2. A session that must change its password: 403 password_change_required everywhere but
#    the change (and /healthz); then the change.
for role in ROLES:
    name = role + "-v"
    r = login(name)
    assert r.status == 201 and r.json().get("must_change") is True
    j = r.json()
    for k in ("token", "expires_at", "idle_timeout", "must_change"):
        if k not in j:
            bad.append("login: answer lacks %r" % k)
    if not (j["token"].startswith("rvs_") and len(j["token"]) == 47):
        bad.append("login: token is not rvs_ + 43 characters")
    if j.get("idle_timeout") != IDLE:
        bad.append("login: idle_timeout %r, want %d" % (j.get("idle_timeout"), IDLE))
    for row in TABLE:
        if row[0] in ("password", "logout"):
            continue
        want = 200 if row[5] is None else 403
        expect("%s/%s/must_change" % (row[0], role), send(row, role, j["token"]), want,
               None if row[5] is None else "password_change_required")
    d = user(name)
    newp = "Fresh-" + os.urandom(12).hex()
    expect("password/%s/must_change" % role,
           request("POST", "/v1/session/password", {"password": d["password"], "new_password": newp},
                   token=j["token"]), 204)
    d["password"] = newp
    save_user(name, d)
    passwords[role] = newp

# 3. Let the expired sessions idle past session_idle, then log the valid principals in; from
#    the first, the keeper keeps them alive.
time.sleep(max(0, expired_at + IDLE + 2 - time.time()))
keeper_thread = threading.Thread(target=keeper, daemon=True)
keeper_thread.start()
for role in ROLES:
    asked = time.time()
    r = login(role + "-v")
    assert r.status == 201 and r.json().get("must_change") is False, \
        "login after the change: %d" % r.status
    with valid_lock:
        valid[role] = r.json()["token"]
        valid_used[role] = asked

# 4. The matrix.
bogus = "rvs_" + "A" * 43
for row in TABLE:
    name, method, path, body, ctype, roles, ok = row
    for role in ROLES:
        for state, token in (("none", None), ("bogus", bogus), ("expired", expired[role]),
                             ("revoked", revoked[role]), ("valid", valid[role])):
            if name == "logout" and state == "valid":
                continue  # checked in step 1: it would end the session the matrix uses
            if state == "bogus" and role != ROLES[0]:
                continue  # a made-up token has no role: once per endpoint
            if roles is None:
                want, err = ok, None
            elif state != "valid":
                want, err = 401, None
            elif role in roles:
                want, err = ok, None
            else:
                want, err = 403, "forbidden"
            r = send(row, role, token)
            expect("%s/%s/%s" % (name, role, state), r, want, err)
            if name == "password" and state == "valid" and r.status == 204:
                passwords[role] = pending[role]

# 5. Requests outside the table: an unknown path and a wrong method, with a valid token.
expect("unknown path", request("GET", "/v1/nothing-here", token=valid["admin"]), 404)
expect("wrong method", request("GET", "/v1/checks", token=valid["checker"]), 405)
expect("wrong method on stats", request("DELETE", "/v1/stats", token=valid["admin"]), 405)

# 6. The valid tokens are still alive after the matrix; the expired ones stayed expired.
nobody = {"name": "Zebedee Quixotic", "address": "", "postcode": donor["postcode"],
          "date": "2026-01-10"}
for role in ROLES:
    if role == "checker":
        r = request("POST", "/v1/checks", nobody, token=valid[role])
    else:
        r = request("GET", "/v1/stats", token=valid[role])
    expect("still valid/%s" % role, r, 200)
    expect("still expired/%s" % role, request("GET", "/v1/stats", token=expired[role]), 401)
keeper_stop.set()
keeper_thread.join()

print("serve_authz: %d requests, %d table rows x %d roles x 4 credentials, and a made-up "
      "token once per row" % (sent, len(TABLE), len(ROLES)))
if bad:
    for b in bad:
        print("MISMATCH " + b, file=sys.stderr)
    print("FAIL: %d of %d requests did not give the expected status" % (len(bad), sent),
          file=sys.stderr)
    sys.exit(1)
PY
serve_alive "after the matrix"
serve_stop
echo "serve_authz: all checks passed"
