"""Shared helpers for the end-to-end tests: they talk HTTP to the real stack
(nginx -> pay-api workers -> MariaDB) started by tests/stack.sh, whose
settings arrive in the file named by $PAY_STACK_ENV.

Money in responses is parsed with Decimal (never float) so that checks are
exact. Each test file is a script: checks are counted and the run ends with
the line "N passed, N failed" and exit status 1 if anything failed.
"""
import atexit
import hashlib
import json
import os
import re
import shlex
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

ENV = {}


def _load_env():
    path = os.environ.get("PAY_STACK_ENV")
    if not path or not os.path.exists(path):
        print("PAY_STACK_ENV is not set or missing: the stack is not running")
        sys.exit(1)
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            ENV[k] = shlex.split(v)[0] if v else ""


_load_env()
BASE = ENV["PAY_BASE_URL"]
# The web server in front (tests/stack.sh PAY_FRONT): nginx or apache. Only
# what the front answers itself may differ (see README, "Deploying on Apache").
FRONT = ENV.get("PAY_FRONT", "nginx")
# Server header values that name the product without a version.
SERVER_TOKENS = (None, "nginx", "Apache")


def http_dechunk(body):
    """The payload of a chunked HTTP/1.1 body (raw-socket tests: Apache
    streams what the app sends without a length in chunks)."""
    out = b""
    while body:
        n, _, body = body.partition(b"\r\n")
        try:
            n = int(n.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0:
            break
        out, body = out + body[:n], body[n + 2:]
    return out

# Over HTTPS (tests/stack.sh with PAY_TLS=1) the server must prove itself
# with a certificate of the stack's test CA, and nothing else is trusted:
# OpenSSL reads these variables whenever Python builds a default context, so
# every urllib opener of every test verifies the chain and the host name.
TLS_CA = ENV.get("PAY_TLS_CA") or None
if TLS_CA:
    os.environ["SSL_CERT_FILE"] = TLS_CA
    os.environ["SSL_CERT_DIR"] = os.path.dirname(TLS_CA)  # no hashed names: empty


def connect(timeout=30):
    """A socket to the service for hand-made requests: plain TCP, or TLS
    (verified against the test CA) when the stack serves HTTPS."""
    u = urllib.parse.urlsplit(BASE)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    if u.scheme != "https":
        return sock
    ctx = ssl.create_default_context(cafile=TLS_CA)
    return ctx.wrap_socket(sock, server_hostname=u.hostname)


def token(sub="e2e", scope="payments:read payments:write", owners="1,2", ttl=3600):
    cmd = [ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "token", "--sub", sub,
           "--scope", scope, "--ttl", str(ttl)]
    if owners:
        cmd += ["--contract-owners", owners]
    return subprocess.check_output(cmd, text=True).strip()


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body, parse_float=Decimal) if body else None
        except ValueError:
            self.json = None

    def header(self, name):
        return self.headers.get(name)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:300])


def request(method, path, body=None, tok=None, headers=None, raw=None,
            content_type="application/json"):
    url = path if path.startswith("http") else BASE + path
    data = None
    if raw is not None:
        data = raw if isinstance(raw, bytes) else raw.encode()
    elif body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None and content_type:
        req.add_header("Content-Type", content_type)
    if tok:
        req.add_header("Authorization", "Bearer " + tok)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            resp = Resp(r.status, r.headers, r.read().decode("utf-8", "replace"))
            final = r.geturl()
    except urllib.error.HTTPError as e:
        resp = Resp(e.code, e.headers, e.read().decode("utf-8", "replace"))
        final = e.geturl() or url
    _log_response(method, url, final, resp)
    return resp


# Every response request() receives is appended, as one JSON line, to the file
# named by $PAY_RESPONSE_LOG when it is set; tests/openapi/validate_responses.mjs
# then checks each one against the OpenAPI document (handlers/openapi.json).
RESPONSE_LOG = os.environ.get("PAY_RESPONSE_LOG")
_log_lock = threading.Lock()


def _log_response(method, url, final, resp):
    if not RESPONSE_LOG:
        return
    if final != url:
        # Followed a redirect: what arrived answers a GET of the final URL.
        method = "GET"
    u = urllib.parse.urlsplit(final)
    if u.netloc != urllib.parse.urlsplit(BASE).netloc:
        return  # not this service
    headers = {}
    for k, v in resp.headers.items():
        k = k.lower()
        headers[k] = headers[k] + ", " + v if k in headers else v
    line = json.dumps({"method": method, "path": u.path, "query": u.query,
                       "status": resp.status, "contentType": resp.headers.get("Content-Type"),
                       "headers": headers, "body": resp.raw, "redirected": final != url,
                       "test": os.path.basename(sys.argv[0])}) + "\n"
    # One write(2) per line on an O_APPEND descriptor: lines from threads and
    # processes never interleave.
    with _log_lock:
        try:
            fd = os.open(RESPONSE_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as e:  # the check of the log reports what is missing
            print("paytest: cannot append to PAY_RESPONSE_LOG %s: %s" % (RESPONSE_LOG, e))


def get(path, tok=None, **kw):
    return request("GET", path, tok=tok, **kw)


def post(path, body=None, tok=None, **kw):
    return request("POST", path, body=body, tok=tok, **kw)


class _ReadSession:
    """One long-lived client (MYSQL_CMD) in a READ ONLY session, through
    which sql() runs plain single SELECTs: a query then costs a round trip
    instead of starting a client (~25 ms each, which made the files that
    snapshot the database around every request spend most of their time
    there). Every query ends with a SELECT of a fresh marker line, so its
    rows are the lines before that marker (-B: one row a line, tabs and
    newlines in values escaped, exactly as sql() parses a new client's
    output). The client stops at the first error (no --force): EOF before
    the marker returns None and the next query starts a new client. With
    autocommit each SELECT sees everything committed before it, as a new
    client would."""

    def __init__(self):
        self.proc = None
        self.pid = None
        self.n = 0
        self.lock = threading.Lock()

    def query(self, query):
        with self.lock:
            if self.proc is None or self.proc.poll() is not None or self.pid != os.getpid():
                self.pid = os.getpid()
                self.proc = subprocess.Popen(
                    shlex.split(ENV["MYSQL_CMD"]) + ["-N", "-B", "-n"], stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
                self.proc.stdin.write("SET SESSION TRANSACTION READ ONLY;\n")
            self.n += 1
            mark = "paytest-read-end-%d-%d" % (self.pid, self.n)
            rows = []
            try:
                # the ; on a line of its own also ends a query whose last line is a comment
                self.proc.stdin.write("%s\n;\nSELECT '%s';\n" % (query, mark))
                self.proc.stdin.flush()
                for line in self.proc.stdout:
                    line = line.rstrip("\n")
                    if line == mark:
                        return rows
                    rows.append(line.split("\t"))
            except OSError:
                pass
            self.close()
            self.proc = None
            return None

    def close(self):
        if self.proc is not None and self.pid == os.getpid():
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.wait()


# PAY_SQL_KEEP=0: every query in a new client (the cluster tests, whose
# faults kill the very node MYSQL_CMD names, and whose few checks gain nothing).
_KEEP_CLIENT = os.environ.get("PAY_SQL_KEEP", "1") != "0"
_read_session = _ReadSession()
atexit.register(_read_session.close)
# What the kept session may run: one SELECT that neither locks nor touches
# session state (user variables, INTO, lock functions, SLEEP, connection ids).
_READ_ONLY = re.compile(r"(?is)\s*SELECT\b[^;@]*")
_SESSION_BOUND = re.compile(r"(?i)\b(FOR\s+UPDATE|LOCK|INTO|SLEEP|GET_LOCK|RELEASE_LOCK"
                            r"|CONNECTION_ID|LAST_INSERT_ID|FOUND_ROWS|ROW_COUNT)\b")


def sql(query):
    """Runs SQL directly against the test database; returns rows of strings.
    A plain SELECT goes through the kept READ ONLY session; anything else,
    or a SELECT that fails there (MariaDB restarted, an error), runs in a
    new client as before, with its error raised from there."""
    q = query.strip().rstrip(";").rstrip()
    if _KEEP_CLIENT and _READ_ONLY.fullmatch(q) and not _SESSION_BOUND.search(q):
        rows = _read_session.query(q)
        if rows is not None:
            return rows
    out = subprocess.check_output(shlex.split(ENV["MYSQL_CMD"]) + ["-N", "-B", "-e", query],
                                  text=True)
    return [line.split("\t") for line in out.splitlines()]


def sandbox_reference(kind, what, basis):
    """The reference the sandbox provider answers for the provider call that
    does `what` with the idempotency key built from `basis` (a page's token,
    with the details entered where the call depends on them):
    handlers/api.c provider_call_key and
    handlers/provider_sandbox.c sandbox_reference, written out again."""
    key = "pay-api-%s-%s" % (what, hashlib.sha256(basis.encode()).hexdigest())
    return "SBX-%s-%s" % (kind, hashlib.sha256(("%s\n%s" % (kind, key)).encode()).hexdigest()[:16])


def run_engine(customers, until_idle=15):
    """Runs the collection engine for these customers only (the e2e stack has
    no collector process, and a file moves only its own customers' money):
    passes until none of their attempts is due within 30 s or until_idle
    seconds went by. Returns how many attempts it handled."""
    out = subprocess.run([ENV["PAY_BIN"], "--config", ENV["PAY_CONFIG"], "attempts", "run",
                          "--until-idle", str(until_idle), "--customers",
                          ",".join(str(c) for c in customers)], capture_output=True, text=True,
                         timeout=until_idle + 60)
    if out.returncode != 0:
        raise RuntimeError("pay-api attempts run: %s" % out.stderr[-500:])
    return int(out.stdout.strip() or 0)


def sql_one(query):
    rows = sql(query)
    return rows[0][0] if rows else None


class Suite:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, cond, what, detail=None):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, (" -- %r" % (detail,)) if detail is not None else ""))
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, what, "got %r, want %r" % (got, want))

    def status(self, resp, want, what):
        return self.check(resp.status == want, what,
                          "status %d, want %d: %s" % (resp.status, want, resp.raw[:300]))

    def error(self, resp, status, code, what, field=None):
        ok = self.status(resp, status, what)
        if ok and resp.json is not None:
            self.eq(resp.json.get("code"), code, what + " (code)")
            self.eq(resp.json.get("status"), status, what + " (status field)")
            self.check(bool(resp.json.get("requestId")), what + " (requestId)")
            self.eq(resp.header("Content-Type"), "application/json; charset=utf-8",
                    what + " (content type)")
            if field is not None:
                self.eq(resp.json.get("field"), field, what + " (field)")
        elif ok:
            self.check(False, what + " (JSON body)", resp.raw[:200])

    def run(self, tests):
        # PAY_E2E_PARTS=name,name: only the parts whose function name contains
        # one of these (ctest sets it where a second front re-runs a file and
        # only the parts that reach the front itself are worth repeating).
        only = [w for w in os.environ.get("PAY_E2E_PARTS", "").split(",") if w]
        if only:
            left = [t.__name__ for t in tests if not any(w in t.__name__ for w in only)]
            tests = [t for t in tests if any(w in t.__name__ for w in only)]
            print("PAY_E2E_PARTS: running %s; left to the first pass: %s"
                  % (", ".join(t.__name__ for t in tests), ", ".join(left) or "nothing"))
        for t in tests:
            t0 = time.monotonic()
            try:
                t(self)
            except Exception:
                self.failed += 1
                print("FAIL: %s raised:" % t.__name__)
                traceback.print_exc(file=sys.stdout)
            print("part %s: %.1f s" % (t.__name__, time.monotonic() - t0))
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)
