# tests/e2e/lib/serve.sh - shared helpers for the daemon's end-to-end tests
# (tests/e2e/serve_*.sh). Sourced, never run: it lives under lib/ because CTest turns every
# tests/e2e/*.sh into a test.
#
# It makes a scratch folder ($work), a synthetic vault, principals (through `regvault user
# add --json`, credentials kept in $work/users/NAME.json and never printed), a config file,
# and starts the real `regvault serve --dev --listen 127.0.0.1:0`, waiting for its
# "listening on https://127.0.0.1:PORT" line. serve_cleanup (installed as the EXIT trap by
# serve_init) always kills the daemon and removes $work. It also writes $work/rvhttp.py, the
# Python (standard library only) HTTPS client the tests drive: TLS against the daemon's dev
# certificate, logins with TOTP codes computed by oathtool (independent of the daemon), and a
# per-user record of the TOTP steps used, so that no step is ever offered twice.
#
# Nothing here prints personal data: failures name statuses, counts and file names only.

rv=${REGVAULT:?REGVAULT must name the regvault binary}
serve_pid=
serve_port=
serve_ca=
serve_err=
serve_work_keep=${RV_KEEP_WORK:-}

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# serve_init NAME: scratch folder $work, EXIT trap, the Python client.
serve_init() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/rv-$1.XXXXXX")
    trap serve_cleanup EXIT
    mkdir -p "$work/users"
    serve_write_client
    export PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}"
    command -v oathtool >/dev/null || fail "oathtool is not installed (scripts/bootstrap)"
    command -v curl >/dev/null || fail "curl is not installed"
}

serve_cleanup() {
    local rc=$?
    if [ -n "$serve_pid" ] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$serve_pid" 2>/dev/null || true
        wait "$serve_pid" 2>/dev/null || true
    fi
    if [ -n "$serve_work_keep" ]; then
        echo "kept $work" >&2
    else
        rm -rf "$work"
    fi
    exit $rc
}

# serve_vault ELECTORS AREAS [DONATIONS]: key, synthetic register in $work/s, vault in
# $work/v with area 1 ingested (full register and alterations); the other areas are left for
# ingests through the daemon.
serve_vault() {
    local electors=$1 areas=$2 donations=${3:-50}
    head -c 32 /dev/urandom >"$work/key"
    "$rv" synth --electors "$electors" --areas "$areas" --months 1 --donations "$donations" \
        --seed 11 --out "$work/s" >/dev/null || fail "synth failed"
    "$rv" init --vault "$work/v" --key-file "$work/key" --expected-electors "$electors" \
        >/dev/null 2>&1 || fail "init failed"
    "$rv" ingest --vault "$work/v" --key-file "$work/key" --area E07000001 \
        --edition 2025-12-01 "$work/s/E07000001/full-2025-12-01.csv" >/dev/null 2>&1 ||
        fail "ingest of E07000001 failed"
    "$rv" ingest --vault "$work/v" --key-file "$work/key" --area E07000001 \
        --edition 2025-12-01 --alterations "$work/s/E07000001/alterations-2026-01.csv" \
        >/dev/null 2>&1 || fail "ingest of E07000001's alterations failed"
}

# user_add NAME ROLE: adds a principal; its credentials go to $work/users/NAME.json.
user_add() {
    "$rv" user --vault "$work/v" --key-file "$work/key" add "$1" --role "$2" --json \
        >"$work/users/$1.json" 2>"$work/users/$1.err" ||
        fail "regvault user add $1 --role $2 failed: $(head -c 300 "$work/users/$1.err")"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["password"] and d["totp_uri"].startswith("otpauth://")' \
        "$work/users/$1.json" || fail "regvault user add $1 --json: not {name, role, password, totp_uri}"
}

# serve_config KEY=VALUE...: writes $work/serve.conf.
serve_config() {
    {
        echo "# written by tests/e2e/lib/serve.sh"
        for kv in "$@"; do echo "${kv%%=*} = ${kv#*=}"; done
    } >"$work/serve.conf"
}

# serve_start [extra args]: starts the daemon on 127.0.0.1:0 with $work/serve.conf (if any);
# sets serve_pid, serve_port, serve_ca; stderr goes to $work/serve.err (appended across
# restarts).
serve_start() {
    local cfg=()
    [ -f "$work/serve.conf" ] && cfg=(--config "$work/serve.conf")
    serve_err=$work/serve.err
    : >>"$serve_err"
    local before
    before=$(wc -l <"$serve_err")
    "$rv" serve --vault "$work/v" --key-file "$work/key" --dev --listen 127.0.0.1:0 \
        "${cfg[@]}" "$@" 2>>"$serve_err" >>"$work/serve.out" &
    serve_pid=$!
    local line=
    for _ in $(seq 300); do
        line=$(tail -n +"$((before + 1))" "$serve_err" | grep -m1 -o 'listening on https://127\.0\.0\.1:[0-9]*' || true)
        [ -n "$line" ] && break
        kill -0 "$serve_pid" 2>/dev/null || {
            wait "$serve_pid" 2>/dev/null; local rc=$?
            serve_pid=
            fail "regvault serve exited ($rc) before listening: $(tail -n 5 "$serve_err")"
        }
        sleep 0.1
    done
    [ -n "$line" ] || fail "regvault serve did not say it was listening within 30 s"
    serve_port=${line##*:}
    serve_ca=$(tail -n +"$((before + 1))" "$serve_err" | grep -o '/[^ ]*dev-tls/[^ ]*\.pem' | grep -v key | head -1 || true)
    [ -n "$serve_ca" ] || serve_ca=$work/v/dev-tls/cert.pem
    [ -f "$serve_ca" ] || fail "no dev certificate at $serve_ca"
    export RV_PORT=$serve_port RV_CA=$serve_ca RV_WORK=$work
}

# serve_stop: SIGTERM; the daemon must exit 0 within 20 s.
serve_stop() {
    [ -n "$serve_pid" ] || fail "serve_stop: no daemon"
    kill -TERM "$serve_pid"
    local rc=0
    for _ in $(seq 200); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$serve_pid" 2>/dev/null && fail "regvault serve did not stop within 20 s of SIGTERM"
    wait "$serve_pid" || rc=$?
    serve_pid=
    [ "$rc" -eq 0 ] || fail "regvault serve exited $rc after SIGTERM, want 0"
}

# serve_alive: fails unless the daemon is still running and answers /healthz.
serve_alive() {
    kill -0 "$serve_pid" 2>/dev/null || fail "the daemon died ($1)"
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$serve_ca" \
        "https://127.0.0.1:$serve_port/healthz") || true
    [ "$code" = 200 ] || fail "the daemon stopped answering /healthz ($1): $code"
}

serve_write_client() {
    cat >"$work/rvhttp.py" <<'PY'
"""rvhttp - the e2e tests' HTTPS client for regvault serve (standard library only).

Environment: RV_PORT, RV_CA, RV_WORK (set by tests/e2e/lib/serve.sh). Never prints
personal data: callers print statuses and counts.
"""
import http.client, json, os, select, socket, ssl, subprocess, time, urllib.parse

PORT = int(os.environ["RV_PORT"])
CA = os.environ["RV_CA"]
WORK = os.environ["RV_WORK"]
_ctx = ssl.create_default_context(cafile=CA)
_ctx.check_hostname = False  # the dev certificate may name localhost or 127.0.0.1
STEP = 30


def conn(source="127.0.0.1", timeout=60):
    return http.client.HTTPSConnection("127.0.0.1", PORT, context=_ctx, timeout=timeout,
                                       source_address=(source, 0))


class Resp:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except Exception:
            return None

    def error(self):
        j = self.json()
        return j.get("error") if isinstance(j, dict) else None


def request(method, path, body=None, token=None, ctype=None, headers=None, source="127.0.0.1"):
    """One request on a fresh connection (Connection: close). body: dict (sent as JSON), str
    or bytes. The daemon may answer (401, 403, 413, 415) before it has read a large body and
    then close the connection, as HTTP allows: the body is sent in pieces, and sending stops
    as soon as an answer is waiting, so that the answer is read rather than lost to a reset."""
    h = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        ctype = ctype or "application/json"
    elif isinstance(body, str):
        body = body.encode()
    if ctype:
        h["Content-Type"] = ctype
    if token:
        h["Authorization"] = "Bearer " + token
    h.setdefault("Host", "127.0.0.1:%d" % PORT)
    h["Connection"] = "close"
    if body is not None or method in ("POST", "PUT"):
        h["Content-Length"] = str(len(body or b""))
    head = "%s %s HTTP/1.1\r\n" % (method, path)
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=60, source_address=(source, 0))
    sock = _ctx.wrap_socket(raw)
    try:
        sock.sendall(head.encode("latin-1"))
        off, body = 0, body or b""
        try:
            while off < len(body):
                if sock.pending() or select.select([sock], [], [], 0)[0]:
                    break  # an early answer
                off += sock.send(body[off:off + 16384])
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        r = http.client.HTTPResponse(sock, method=method)
        r.begin()
        data = r.read()
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        sock.close()


def chunked(path, total, token=None, ctype="text/csv", source="127.0.0.1", piece=16384):
    """POSTs total bytes of CSV-like filler as a chunked body (Transfer-Encoding: chunked, no
    Content-Length), piece bytes a chunk, on a fresh connection. Returns (Resp, sent), or
    (None, sent) when the daemon closed the connection without an answer; sent counts the
    body's bytes handed to the socket before it was closed."""
    h = {"Host": "127.0.0.1:%d" % PORT, "Content-Type": ctype,
         "Transfer-Encoding": "chunked", "Connection": "close"}
    if token:
        h["Authorization"] = "Bearer " + token
    head = "POST %s HTTP/1.1\r\n" % path
    head += "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n"
    filler = (b"id,name,address,postcode,date\n" * (piece // 30 + 1))[:piece]
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=60, source_address=(source, 0))
    sock = _ctx.wrap_socket(raw)
    sent = 0
    try:
        try:
            sock.sendall(head.encode("latin-1"))
            while sent < total:
                n = min(piece, total - sent)
                sock.sendall(b"%x\r\n" % n + filler[:n] + b"\r\n")
                sent += n
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            pass
        try:
            r = http.client.HTTPResponse(sock, method="POST")
            r.begin()
            data = r.read()
        except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError):
            return None, sent
        return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data), sent
    finally:
        sock.close()


def user(name):
    with open(os.path.join(WORK, "users", name + ".json")) as f:
        d = json.load(f)
    q = urllib.parse.parse_qs(urllib.parse.urlparse(d["totp_uri"]).query)
    d["secret"] = q["secret"][0]
    return d


def save_user(name, d):
    """Keeps d's credentials; the ones they replace go on in WORK/old-passwords.txt."""
    try:
        with open(os.path.join(WORK, "users", name + ".json")) as f:
            old = json.load(f)["password"]
        if old != d["password"]:
            with open(os.path.join(WORK, "old-passwords.txt"), "a") as f:
                f.write(old + "\n")
    except (OSError, ValueError, KeyError):
        pass
    with open(os.path.join(WORK, "users", name + ".json"), "w") as f:
        json.dump({k: d[k] for k in ("name", "role", "password", "totp_uri")}, f)


def totp(secret, step):
    """The code of a step, by oathtool (RFC 6238, SHA-1, 6 digits, 30 s)."""
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(step * STEP + 1))
    out = subprocess.run(["oathtool", "--totp", "-b", secret, "-N", when],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert len(out) == 6 and out.isdigit()
    return out


_last_step = {}


def next_step(name):
    """A step the daemon accepts now (now-1 .. now+1) that is later than any this user has
    offered; waits for the clock when all three are used. now-1 is offered only in the first
    half of a step: it ages out when the step ends, and a login on a loaded machine (an
    Argon2id hash among other work) can take seconds."""
    while True:
        t = time.time()
        now = int(t // STEP)
        lo = now - 1 if t % STEP < STEP / 2 else now
        s = max(_last_step.get(name, -1) + 1, lo)
        if s <= now + 1:
            _last_step[name] = s
            return s
        time.sleep((now + 1) * STEP - t + 0.2)


def mark_step(name, step):
    _last_step[name] = max(_last_step.get(name, -1), step)


def login(name, password=None, step=None, code=None, source="127.0.0.1", extra=None):
    d = user(name)
    if code is None:
        if step is None:
            step = next_step(name)
        else:
            mark_step(name, step)
        code = totp(d["secret"], step)
    body = {"user": name, "password": d["password"] if password is None else password,
            "totp": code}
    if extra:
        body.update(extra)
    r = request("POST", "/v1/session", body, source=source)
    j = r.json() if r.status == 201 else None
    if isinstance(j, dict) and isinstance(j.get("token"), str):
        with open(os.path.join(WORK, "tokens.txt"), "a") as f:  # for serve_secrets.sh
            f.write(j["token"] + "\n")
    return r


def ready_token(name, new_password=None):
    """Logs name in; if the session must change its password, changes it (to new_password
    or a generated one, saved) and logs in again. Returns the token of a normal session."""
    r = login(name)
    assert r.status == 201, "login of %s: %d %s" % (name, r.status, r.error())
    j = r.json()
    if j.get("must_change"):
        d = user(name)
        newp = new_password or ("Rv-" + os.urandom(12).hex())
        c = request("POST", "/v1/session/password",
                    {"password": d["password"], "new_password": newp}, token=j["token"])
        assert c.status == 204, "password change of %s: %d %s" % (name, c.status, c.error())
        d["password"] = newp
        save_user(name, d)
        r = login(name)
        assert r.status == 201, "second login of %s: %d %s" % (name, r.status, r.error())
        j = r.json()
        assert not j.get("must_change"), "must_change still set after the change"
    return j["token"]
PY
}
