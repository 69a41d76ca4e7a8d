"""drill.py - the stolen-credential exfiltration drill against a running `regvault serve`.

Run by tests/e2e/drill.sh, which makes the vault (a 100,000-elector synthetic register, 20
canary electors), the principals (mallory and trent: checkers whose sessions are stolen;
carol: a checker with a budget of 2,500 set by an admin) and a honeytoken file, and starts
the daemon with its default limits. Then, in order:

  1. The attacker: holds mallory's session (password and TOTP already used), knows the
     surname lists (data/names/surnames.csv) and the register's postcodes (not the
     register), and harvests the obvious way (each postcode in turn, the 60 commonest
     surnames at each): single checks as fast as the daemon lets it, then batches of 200,
     shrinking a batch when the budget refuses it, waiting when rate limited, until the
     daemon suspends the session, the budget is spent or 120 s pass.
  2. The careful attacker (trent's session) knows the probing rules: it probes in random
     order and pads every batch with checks of electors it has already found (free under a
     budget that counts distinct electors) so that its last 100 checks never look like
     probing. Only the budget can stop it.
  3. A third attacker finds the honeytoken file and uses its API token once.
  4. carol works through the quarter's 2,000 synthetic donations, sorted by the donor's
     surname, in batches of 200 (Electoral Commission layout), from another address.

Figures (no personal data): for each attacker, the electors disclosed before the cut-off
(distinct area + elector number over every answered check), what cut it off, seconds from
its start to its first alert and the alerts' kinds, and whether a canary fired; seconds
from the honeytoken's first use to its alert; whether carol was ever refused or alerted on.
Targets asserted: no attacker sees more electors than the budget, each is cut off (suspended
or out of budget) and named by an alert, the first attacker within 5 s; the honeytoken
alerts within 10 s of its use; carol is never refused and never alerted on. The figures go
to stdout and to $RV_WORK/drill-figures.json.

Standard library only, plus rvhttp (written by tests/e2e/lib/serve.sh).
"""
import csv
import json
import os
import random
import re
import subprocess
import sys
import time

import rvhttp

WORK = os.environ["RV_WORK"]
RV = os.environ["REGVAULT"]
SRC = os.environ["RV_SOURCE_DIR"]
VAULT = os.path.join(WORK, "v")
KEY = os.path.join(WORK, "key")
BUDGET = int(os.environ.get("DRILL_BUDGET", "300"))
ATTACK_SECONDS = float(os.environ.get("DRILL_ATTACK_SECONDS", "120"))
DATE = "2026-01-15"


def note(msg):
    print("drill: " + msg, file=sys.stderr, flush=True)


# ---- alerts ---------------------------------------------------------------------------

def read_alerts():
    """Every alert so far, as dicts (time_ms, kind, principal, ...), from `regvault alerts
    --json` (one JSON array, an object holding one, or one object a line)."""
    for extra in ([], ["--key-file", KEY]):
        r = subprocess.run([RV, "alerts", "--vault", VAULT, "--json"] + extra,
                           capture_output=True, text=True, timeout=60)
        if r.returncode == 0:
            return parse_alerts(r.stdout)
    raise SystemExit("FAIL: regvault alerts --vault V --json failed (%d): %s"
                     % (r.returncode, r.stderr.strip()[:300]))


def parse_alerts(text):
    text = text.strip()
    if not text:
        return []
    try:
        j = json.loads(text)
        if isinstance(j, dict):
            j = j.get("alerts", [j])
        return [a for a in j if isinstance(a, dict)]
    except ValueError:
        return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def alert_ms(a):
    if isinstance(a.get("time_ms"), (int, float)):
        return int(a["time_ms"])
    t = a.get("time", "")
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", t)
    if not m:
        return None
    ms = int(time.mktime(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")) - time.timezone) * 1000
    return ms + int(float(m.group(2) or 0) * 1000)


# ---- sessions -------------------------------------------------------------------------

def session(name, source):
    """A normal session for name from source (the password changed first if it must be)."""
    r = rvhttp.login(name, source=source)
    assert r.status == 201, "login of %s: %d %s" % (name, r.status, r.error())
    j = r.json()
    if j.get("must_change"):
        d = rvhttp.user(name)
        newp = "Rv-" + os.urandom(12).hex()
        c = rvhttp.request("POST", "/v1/session/password",
                           {"password": d["password"], "new_password": newp},
                           token=j["token"], source=source)
        assert c.status == 204, "password change of %s: %d %s" % (name, c.status, c.error())
        d["password"] = newp
        rvhttp.save_user(name, d)
        r = rvhttp.login(name, source=source)
        assert r.status == 201, "second login of %s: %d %s" % (name, r.status, r.error())
        j = r.json()
    return j["token"]


def retry_after(r):
    v = r.headers.get("retry-after")
    try:
        return max(0.05, float(v))
    except (TypeError, ValueError):
        return 0.5


# ---- 1. the attacker ------------------------------------------------------------------

def attacker_knowledge():
    with open(os.path.join(SRC, "data", "names", "surnames.csv"), encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f)]
    surnames = [r["name"] for r in sorted(rows, key=lambda r: -float(r["share"]))]
    postcodes = set()
    synth = os.path.join(WORK, "s")
    for area in sorted(os.listdir(synth)):
        d = os.path.join(synth, area)
        if not os.path.isdir(d):
            continue
        for fn in sorted(os.listdir(d)):
            if not fn.startswith("full-"):
                continue
            raw = open(os.path.join(d, fn), "rb").read()
            try:
                text = raw.decode("utf-8-sig")
            except UnicodeDecodeError:
                text = raw.decode("cp1252")
            lines = text.splitlines()
            delim = "\t" if "\t" in lines[0] else ","
            for row in csv.DictReader(lines, delimiter=delim):
                pc = (row.get("PostCode") or "").strip()
                if pc:
                    postcodes.add(pc)
    return surnames, sorted(postcodes)


class Harvest:
    def __init__(self):
        self.electors = set()
        self.checks = 0
        self.answers = 0
        self.canary = False
        self.stopped = None
        self.refused_budget = 0
        self.rate_limited = 0

    def take(self, answer):
        self.answers += 1
        for m in answer.get("matches", []) or []:
            if m.get("elector_number"):
                self.electors.add((m.get("area"), m.get("elector_number")))
            else:
                self.electors.add(("masked", m.get("masked")))


def attack(token):
    surnames, postcodes = attacker_knowledge()
    rnd = random.Random(20261122)
    top = surnames[:60]
    # The obvious enumeration: each postcode in turn, the commonest surnames at each.
    plan = ((pc, sn) for pc in rnd.sample(postcodes, len(postcodes)) for sn in top)
    h = Harvest()
    t0 = time.time()
    batch = 200
    seq = 0
    while time.time() - t0 < ATTACK_SECONDS and h.stopped is None:
        single = h.checks < 80
        rows = []
        for _ in range(1 if single else batch):
            try:
                rows.append(next(plan))
            except StopIteration:
                break
        if not rows:
            h.stopped = "plan exhausted"
            break
        if single:
            pc, sn = rows[0]
            r = rvhttp.request("POST", "/v1/checks",
                               {"name": sn, "postcode": pc, "date": DATE}, token=token)
        else:
            lines = ["id,name,address,postcode,date"]
            for pc, sn in rows:
                seq += 1
                lines.append("r%d,%s,,%s,%s" % (seq, sn, pc, DATE))
            r = rvhttp.request("POST", "/v1/checks/batch?format=plain",
                               "\n".join(lines) + "\n", token=token, ctype="text/csv",
                               headers={"Accept": "application/x-ndjson"})
        err = r.error() if r.status != 200 else None
        if r.status == 200:
            h.checks += len(rows)
            if single:
                h.take(r.json() or {})
            else:
                for line in r.body.decode("utf-8", "replace").splitlines():
                    if not line.strip():
                        continue
                    j = json.loads(line, strict=False)
                    if "error" in j and "matches" not in j:
                        h.refused_budget += j.get("error") == "budget_exhausted"
                        continue
                    h.take(j)
        elif r.status == 429 and err == "budget_exhausted":
            h.refused_budget += 1
            if single or batch == 1:
                h.stopped = "budget exhausted"
            else:
                batch = max(1, batch // 4)  # ask for less and try again
        elif r.status == 429:
            h.rate_limited += 1
            time.sleep(retry_after(r))
        elif r.status == 403 and err == "suspended":
            h.stopped = "suspended"
        elif r.status == 401:
            h.stopped = "session ended"
        else:
            raise SystemExit("FAIL: attacker got %d %s" % (r.status, err))
    h.seconds = time.time() - t0
    h.t0 = t0
    if h.stopped is None:
        h.stopped = "time limit"
    return h


def sector(pc):
    return pc.replace(" ", "")[:-2]


def stealth(token):
    """The careful attacker: probes in random order, and pads every batch with checks of
    electors it has already found (which cost no budget) so that its last 100 checks never
    look like probing: at most 55 % of them finding nobody, at most 38 in one sector, no
    sweep. Only the budget stops it."""
    surnames, postcodes = attacker_knowledge()
    rnd = random.Random(7)
    top = surnames[:5]
    known = []              # (surname, postcode) pairs that found someone
    window = []             # (nomatch, sector) of its last 100 checks, as it expects them
    h = Harvest()
    t0 = time.time()
    seq = 0
    limit = 200
    while time.time() - t0 < ATTACK_SECONDS and h.stopped is None:
        rows, sim = [], list(window)
        while len(rows) < limit:
            nm = sum(1 for x in sim[-99:] if x[0])
            secs = {}
            for x in sim[-99:]:
                secs[x[1]] = secs.get(x[1], 0) + 1
            probe = (rnd.choice(top), rnd.choice(postcodes))
            if (nm + 1) <= 0.55 * min(100, len(sim) + 1) or len(sim) < 11:
                if secs.get(sector(probe[1]), 0) < 38:
                    rows.append(probe)
                    sim.append((True, sector(probe[1])))
                    continue
            room = [k for k in known if secs.get(sector(k[1]), 0) < 38]
            if not room:
                break
            k = rnd.choice(room)
            rows.append(k)
            sim.append((False, sector(k[1])))
        if not rows:  # nothing safe to send: gamble on a probe
            rows = [(rnd.choice(top), rnd.choice(postcodes))]
        lines = ["id,name,address,postcode,date"]
        ids = {}
        for sn, pc in rows:
            seq += 1
            ids["s%d" % seq] = (sn, pc)
            lines.append("s%d,%s,,%s,%s" % (seq, sn, pc, DATE))
        r = rvhttp.request("POST", "/v1/checks/batch?format=plain", "\n".join(lines) + "\n",
                           token=token, ctype="text/csv",
                           headers={"Accept": "application/x-ndjson"})
        err = r.error() if r.status != 200 else None
        if r.status == 200:
            for line in r.body.decode("utf-8", "replace").splitlines():
                if not line.strip():
                    continue
                j = json.loads(line, strict=False)
                if "error" in j and "matches" not in j:
                    continue
                h.checks += 1
                h.take(j)
                pair = ids.get(j.get("id"))
                found = bool(j.get("matches"))
                if pair is not None:
                    window.append((not found, sector(pair[1])))
                    if found and pair not in known:
                        known.append(pair)
            window = window[-100:]
        elif r.status == 429 and err == "budget_exhausted":
            h.refused_budget += 1
            if limit == 1:
                h.stopped = "budget exhausted"
            limit = max(1, limit // 4)
        elif r.status == 429:
            h.rate_limited += 1
            time.sleep(retry_after(r))
        elif r.status == 403 and err == "suspended":
            h.stopped = "suspended"
        else:
            raise SystemExit("FAIL: the careful attacker got %d %s" % (r.status, err))
    h.seconds = time.time() - t0
    h.t0 = t0
    if h.stopped is None:
        h.stopped = "time limit"
    return h


def figures_of(h, who, prefix, figures, failures):
    alerts = read_alerts()
    mine = [a for a in alerts if a.get("principal") == who and alert_ms(a) is not None]
    first = min((alert_ms(a) for a in mine), default=None)
    figures[prefix + "seconds"] = round(h.seconds, 1)
    figures[prefix + "checks_answered"] = h.checks
    figures[prefix + "electors_disclosed"] = len(h.electors)
    figures[prefix + "stopped_by"] = h.stopped
    figures[prefix + "requests_refused_budget"] = h.refused_budget
    figures[prefix + "requests_rate_limited"] = h.rate_limited
    figures[prefix + "seconds_to_first_alert"] = (round(first / 1000.0 - h.t0, 2)
                                                  if first is not None else None)
    figures[prefix + "alert_kinds"] = sorted({a.get("kind") for a in mine})
    figures[prefix + "canary_fired"] = any(a.get("kind") == "canary" for a in mine)
    if len(h.electors) > BUDGET:
        failures.append("%s saw %d electors, over the budget of %d"
                        % (who, len(h.electors), BUDGET))
    if h.stopped not in ("suspended", "budget exhausted"):
        failures.append("%s was not cut off (%s)" % (who, h.stopped))
    if first is None:
        failures.append("no alert named %s" % who)
    return first


# ---- 2. the honeytoken ----------------------------------------------------------------

def honeytoken_creds(path):
    text = open(path, encoding="utf-8").read()
    pairs = {}
    try:
        j = json.loads(text)

        def walk(o):
            if isinstance(o, dict):
                for k, v in o.items():
                    if isinstance(v, str):
                        pairs[k.lower()] = v
                    walk(v)
        walk(j)
    except ValueError:
        for line in text.splitlines():
            m = re.match(r"\s*(?:export\s+)?([A-Za-z0-9_.-]+)\s*[=:]\s*\"?([^\"#]*?)\"?\s*$", line)
            if m:
                pairs[m.group(1).lower()] = m.group(2)

    def pick(*words):
        for k, v in pairs.items():
            if v and any(w in k for w in words):
                return v
        return None
    return (pick("token", "api_key", "apikey"), pick("user", "login", "username"),
            pick("password", "passwd", "secret"))


def use_honeytoken(path):
    token, user, password = honeytoken_creds(path)
    assert token or (user and password), "the honeytoken file holds no credential we can read"
    t_use = time.time()
    if token:
        r = rvhttp.request("POST", "/v1/checks", {"name": "Smith", "postcode": "", "date": DATE},
                           token=token, source="127.0.0.3")
        how = "api token"
    else:
        r = rvhttp.request("POST", "/v1/session",
                           {"user": user, "password": password, "totp": "000000"},
                           source="127.0.0.3")
        how = "login"
    assert r.status in (401, 403), "a honeytoken was accepted: %d" % r.status
    fired = None
    while time.time() - t_use < 10:
        for a in read_alerts():
            ms = alert_ms(a)
            if a.get("kind") == "honeytoken" and ms is not None and ms >= int(t_use * 1000) - 1000:
                fired = ms / 1000.0 - t_use
                break
        if fired is not None:
            break
        time.sleep(0.25)
    return how, r.status, fired


# ---- 3. the legitimate checker --------------------------------------------------------

def surname_key(row):
    name = (row.get("DonorName") or "").strip()
    parts = name.replace(",", " ").split()
    return ((parts[-1] if parts else "").lower(), name.lower())


def legitimate(token):
    path = os.path.join(WORK, "s", "donations.csv")
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        fields = reader.fieldnames
        rows = list(reader)
    rows.sort(key=surname_key)  # the Commission's files may come sorted by donor name
    refused = 0
    answered = 0
    batches = 0
    for at in range(0, len(rows), 200):
        out = [",".join(fields)]
        for row in rows[at:at + 200]:
            out.append(",".join('"%s"' % (row[k] or "").replace('"', '""') for k in fields))
        body = "\r\n".join(out) + "\r\n"
        while True:
            r = rvhttp.request("POST", "/v1/checks/batch?format=ec", body, token=token,
                               ctype="text/csv", headers={"Accept": "application/x-ndjson"},
                               source="127.0.0.2")
            if r.status == 429 and r.error() == "rate_limited":
                time.sleep(retry_after(r))
                continue
            break
        batches += 1
        if r.status != 200:
            refused += 1
            note("legitimate batch %d refused: %d %s" % (batches, r.status, r.error()))
            continue
        for line in r.body.decode("utf-8", "replace").splitlines():
            if not line.strip():
                continue
            j = json.loads(line, strict=False)
            if "error" in j and "verdict" not in j:
                refused += 1
                note("legitimate batch %d stopped: %s" % (batches, j.get("error")))
            else:
                answered += 1
    return len(rows), batches, answered, refused


# ---- the drill ------------------------------------------------------------------------

def main():
    figures = {}
    failures = []

    mallory = session("mallory", "127.0.0.1")  # the stolen sessions
    trent = session("trent", "127.0.0.4")
    carol = session("carol", "127.0.0.2")

    note("attack starts")
    h = attack(mallory)
    figures["daily_budget"] = BUDGET
    first = figures_of(h, "mallory", "attack_", figures, failures)
    if first is None or first / 1000.0 - h.t0 >= 5:
        failures.append("no alert on the attacker within 5 s of the attack's start")

    note("careful attack starts")
    h2 = stealth(trent)
    figures_of(h2, "trent", "careful_", figures, failures)

    htfile = os.environ.get("DRILL_HONEYTOKEN")
    if htfile:
        how, status, fired = use_honeytoken(htfile)
        figures["honeytoken_use"] = how
        figures["honeytoken_status"] = status
        figures["honeytoken_seconds_to_alert"] = round(fired, 2) if fired is not None else None
        if fired is None:
            failures.append("no honeytoken alert within 10 s of its first use")

    n, batches, answered, refused = legitimate(carol)
    after = read_alerts()
    carol_alerts = sorted({a.get("kind") for a in after if a.get("principal") == "carol"})
    figures["legit_donations"] = n
    figures["legit_batches"] = batches
    figures["legit_rows_answered"] = answered
    figures["legit_refusals"] = refused
    figures["legit_alert_kinds"] = carol_alerts
    if refused or answered != n:
        failures.append("the legitimate checker was refused (%d refusals, %d of %d answered)"
                        % (refused, answered, n))
    if carol_alerts:
        failures.append("alerts named the legitimate checker: %s" % ", ".join(carol_alerts))

    with open(os.path.join(WORK, "drill-figures.json"), "w") as f:
        json.dump(figures, f, indent=1)
    for k, v in figures.items():
        print("%-30s %s" % (k, v))
    for msg in failures:
        print("FAIL: " + msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
