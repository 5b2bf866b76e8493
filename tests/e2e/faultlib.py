"""Helpers for tests/e2e/test_faults.py: processes via /proc, the shared
stack's daemons (stop/start MariaDB and, if it ever died, the pay-api
master, exactly as tests/stack.sh starts them and with its "PID STARTTIME"
records in $PAY_STACK_DIR/run/), a tiny FastCGI client, raw HTTP sockets,
and the spec 3 ledger invariants read from the database.

Nothing here stops a process it did not find in the stack's pid records or
start itself, and nothing is killed by name.
"""
import http.client
import json
import os
import re
import shlex
import signal
import socket
import struct
import subprocess
import time
import urllib.parse
from decimal import Decimal

import paytest
from paytest import ENV

STACK = ENV["PAY_STACK_DIR"]
BIN = ENV["PAY_BIN"]
CONFIG = ENV["PAY_CONFIG"]
RUN = os.path.join(STACK, "run")
LOGS = os.path.join(STACK, "logs")
DB_SOCKET = ENV["PAY_DB_SOCKET"]
_URL = urllib.parse.urlsplit(ENV["PAY_BASE_URL"])
HOST, PORT = _URL.hostname, _URL.port


# ---- processes via /proc ---------------------------------------------------

def proc_stat(pid):
    """Fields of /proc/PID/stat after "pid (comm) " (0 = state, 1 = ppid,
    19 = starttime), or None when the process does not exist."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except (OSError, ValueError):
        return None
    return s[s.rindex(")") + 2:].split()


def alive(pid):
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def starttime(pid):
    st = proc_stat(pid)
    return st[19] if st else None


def children(ppid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is not None and int(st[1]) == ppid and st[0] not in ("Z", "X"):
            out.append(int(name))
    return sorted(out)


def kill_child(pid, parent, sig=signal.SIGKILL):
    """Sends sig to pid only if it is still a live child of parent (a pidfd
    pins the process, so a recycled pid is never hit). True when sent."""
    fd = None
    try:
        if hasattr(os, "pidfd_open"):
            fd = os.pidfd_open(pid)
        st = proc_stat(pid)
        if st is None or int(st[1]) != parent or st[0] in ("Z", "X"):
            return False
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
        return True
    except (OSError, ProcessLookupError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


def wait_for(pred, timeout, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(step)


def accept_backlog(path):
    """Connections waiting in the accept queue of the listening unix socket
    path (ss's Recv-Q of a listener), None when ss cannot tell."""
    out = subprocess.run(["ss", "-xlnH", "src", path], capture_output=True, text=True).stdout
    fields = out.split()
    return int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else None


def wait_accepted(path, timeout=5.0):
    """Waits until workers have accepted every connection made to path, then
    a moment more for them to read what was sent."""
    ok = wait_for(lambda: accept_backlog(path) == 0, timeout)
    time.sleep(0.2)
    return ok


def clean_env(**extra):
    """The environment tests/stack.sh gives its daemons: no PAY_* (each
    PAY_<KEY> would override the config file)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PAY_") or k.startswith("PAY_STACK_")}
    env.pop("PAY_STACK_ENV", None)
    env.update(extra)
    return env


def config_value(path, key):
    val = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            if k.strip() == key:
                val = v.strip()
    return val


def private_config(tmp, **overrides):
    """A copy of the stack config with overrides (own socket, log, ...)."""
    out = []
    with open(CONFIG) as f:
        for line in f:
            key = line.split("=", 1)[0].strip() if "=" in line else None
            if key in overrides:
                continue
            out.append(line.rstrip("\n"))
    for k, v in overrides.items():
        out.append("%s = %s" % (k, v))
    path = os.path.join(tmp, "pay-api.conf")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    os.chmod(path, 0o600)
    return path


WORKERS = int(config_value(CONFIG, "workers"))
LOG = config_value(CONFIG, "log_file") or os.path.join(LOGS, "pay-api.log")


def log_size(path=LOG):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def log_since(offset, path=LOG):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


# ---- pid records of tests/stack.sh ("PID STARTTIME") -----------------------

def recorded_pid(name):
    """The pid recorded in run/NAME.pid if that very process still runs."""
    try:
        with open(os.path.join(RUN, name + ".pid")) as f:
            pid, st = f.read().split()[:2]
        pid = int(pid)
    except (OSError, ValueError):
        return None
    return pid if alive(pid) and starttime(pid) == st else None


def record_pid(name, pid):
    st = starttime(pid)
    if st is None:
        raise RuntimeError("%s (pid %d) exited right after start" % (name, pid))
    tmp = os.path.join(RUN, ".%s.pid.tmp" % name)
    with open(tmp, "w") as f:
        f.write("%d %s\n" % (pid, st))
    os.replace(tmp, os.path.join(RUN, name + ".pid"))


def master_pid():
    return recorded_pid("pay-api")


def collectors():
    """The live children of the master named pay-collector."""
    master = master_pid()
    if master is None:
        return []
    out = []
    try:
        with open("/proc/%d/task/%d/children" % (master, master)) as f:
            kids = [int(x) for x in f.read().split()]
    except OSError:
        kids = children(master)
    for pid in kids:
        try:
            with open("/proc/%d/comm" % pid) as f:
                if f.read().strip() == "pay-collector":
                    out.append(pid)
        except OSError:
            pass
    return out


_started = []   # Popen objects of daemons started here (kept referenced)


def _spawn(argv, logname, cwd=None):
    logf = open(os.path.join(LOGS, logname), "ab")
    try:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT, env=clean_env(),
                             start_new_session=True)   # own session: pgid = pid
    finally:
        logf.close()
    _started.append(p)
    return p


# ---- MariaDB -----------------------------------------------------------------

def _dba():
    for a in shlex.split(ENV.get("MYSQL_CMD", "")):
        if a.startswith("-u") and len(a) > 2:
            return a[2:]
    return "root"


def mysql_admin(*args, timeout=10):
    cmd = ["mariadb-admin", "--no-defaults", "--socket=" + DB_SOCKET, "-u" + _dba(),
           "--connect-timeout=2"] + list(args)
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return None


def db_ping():
    return mysql_admin("ping", timeout=5) == 0


def mariadbd_command(pid):
    """argv and cwd of the running mariadbd, to start it again the same way."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    try:
        cwd = os.readlink("/proc/%d/cwd" % pid)
    except OSError:
        cwd = None
    return argv, cwd


def default_mariadbd_command():
    """tests/stack.sh's mariadbd command line (used only when the saved one
    is unavailable)."""
    argv = ["mariadbd", "--no-defaults"]
    if os.getuid() == 0:
        argv.append("--user=root")
    argv += ["--datadir=" + os.path.join(STACK, "mysql"), "--socket=" + DB_SOCKET,
             "--pid-file=" + os.path.join(RUN, "mysqld.pid"), "--skip-networking",
             "--log-error=" + os.path.join(LOGS, "mariadb.err"),
             "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
             "--innodb-buffer-pool-size=256M", "--innodb-flush-log-at-trx-commit=1",
             "--default-time-zone=+00:00"]
    return argv, os.path.join(STACK, "mysql")


def stop_mariadb(timeout=30):
    """mariadb-admin shutdown, then SIGTERM to the recorded pid if needed.
    Returns True once the recorded mariadbd is gone."""
    pid = recorded_pid("mariadbd")
    if pid is None:
        return True
    mysql_admin("shutdown", timeout=timeout)
    if wait_for(lambda: not alive(pid), timeout, 0.05):
        return True
    if recorded_pid("mariadbd") == pid:
        os.kill(pid, signal.SIGTERM)
    return bool(wait_for(lambda: not alive(pid), timeout, 0.05))


def start_mariadb(argv, cwd, wait=60):
    """Starts mariadbd like tests/stack.sh (own session, output appended to
    logs/mariadb.out), records "PID STARTTIME" in run/mariadbd.pid (the
    record stack.sh stop/status use; mariadbd itself writes run/mysqld.pid)
    and waits until it answers ping. Returns the pid, or None."""
    p = _spawn(argv, "mariadb.out", cwd=cwd)
    time.sleep(0.05)
    if p.poll() is not None:
        return None
    record_pid("mariadbd", p.pid)
    ok = wait_for(lambda: db_ping() or not alive(p.pid), wait, 0.1)
    return p.pid if ok and alive(p.pid) else None


# ---- pay-api master ---------------------------------------------------------------

def group_leftovers(pgid):
    """Live pay-api processes of the (dead) master's process group: workers
    that outlived it still hold the listening socket."""
    exe = os.path.realpath(BIN)
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st is None or int(st[2]) != pgid or st[0] in ("Z", "X"):
            continue
        try:
            if os.path.realpath("/proc/%s/exe" % name) == exe:
                out.append(int(name))
        except OSError:
            pass
    return out


def start_master():
    """Starts the stack's pay-api master again exactly as tests/stack.sh
    does (only used when it died); records it in run/pay-api.pid. Workers
    left over from the dead master (its process group, as stack.sh stop
    treats it) are stopped first, since they still hold the socket."""
    try:
        with open(os.path.join(RUN, "pay-api.pid")) as f:
            old = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        old = None
    if old and old > 1 and not alive(old):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in group_leftovers(old):
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            if wait_for(lambda: not group_leftovers(old), 5):
                break
    p = _spawn([BIN, "--config", CONFIG, "serve"], "pay-api.out")
    time.sleep(0.2)
    if p.poll() is not None:
        return None
    record_pid("pay-api", p.pid)
    return p.pid


def metric(name):
    r = paytest.get("/metrics")
    if r.status != 200:
        return None
    m = re.search(r"^%s (\d+)$" % re.escape(name), r.raw, re.M)
    return int(m.group(1)) if m else None


# ---- a tiny FastCGI client (as in test_process.py) -----------------------------

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN = 1, 3, 4, 5
FCGI_STDOUT, FCGI_STDERR = 6, 7
FCGI_RESPONDER = 1


def fcgi_record(rtype, rid, content=b""):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", 1, rtype, rid, len(content), pad) + content + b"\0" * pad


def fcgi_len(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def fcgi_params(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        out += fcgi_len(len(k)) + fcgi_len(len(v)) + k + v
    return out


class FcgiConn:
    """One FastCGI request over a fresh connection to a unix socket."""

    def __init__(self, path, timeout=15):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.rid = 1

    def begin(self, method, uri, query="", headers=None, content_type=None,
              content_length=None, hold=()):
        """Sends BEGIN_REQUEST and the params. Params named in hold are kept
        back (the params stream stays open) until send_held()."""
        params = {
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": method, "DOCUMENT_URI": uri, "SCRIPT_NAME": uri,
            "REQUEST_URI": uri + ("?" + query if query else ""),
            "QUERY_STRING": query, "REMOTE_ADDR": "127.0.0.1",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80",
            "CONTENT_TYPE": content_type or "",
            "CONTENT_LENGTH": "" if content_length is None else str(content_length),
        }
        for k, v in (headers or {}).items():
            params["HTTP_" + k.upper().replace("-", "_")] = v
        self.held = {k: params.pop(k) for k in hold}
        msg = fcgi_record(FCGI_BEGIN_REQUEST, self.rid, struct.pack(">HB5x", FCGI_RESPONDER, 0))
        msg += self._params(params, end=not self.held)
        self.sock.sendall(msg)

    def _params(self, params, end=True):
        body = fcgi_params(params)
        msg = b""
        for i in range(0, len(body), 65535):
            msg += fcgi_record(FCGI_PARAMS, self.rid, body[i:i + 65535])
        if end:
            msg += fcgi_record(FCGI_PARAMS, self.rid)
        return msg

    def send_held(self):
        """The params kept back by begin(hold=...), in a second record."""
        self.sock.sendall(self._params(self.held))

    def send_stdin(self, data=b"", end=True):
        msg = b""
        if data:
            msg += fcgi_record(FCGI_STDIN, self.rid, data)
        if end:
            msg += fcgi_record(FCGI_STDIN, self.rid)
        self.sock.sendall(msg)

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("connection closed after %d of %d bytes" % (len(buf), n))
            buf += chunk
        return buf

    def response(self):
        """(status, headers dict, body bytes, app_status)."""
        out = b""
        app_status = None
        try:
            while True:
                _, rtype, _, clen, plen = struct.unpack(">BBHHBx", self._read(8))
                content = self._read(clen)
                self._read(plen)
                if rtype == FCGI_STDOUT:
                    out += content
                elif rtype == FCGI_END_REQUEST:
                    app_status = struct.unpack(">IB3x", content)[0]
                    break
        finally:
            self.sock.close()
        head, _, body = out.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if ": " in line:
                k, v = line.split(": ", 1)
                headers[k] = v
        m = re.match(r"(\d{3})", headers.get("Status", ""))
        return (int(m.group(1)) if m else None), headers, body, app_status

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def can_connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


# ---- raw HTTP to nginx ----------------------------------------------------------

def tcp(timeout=30):
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_http_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length from sock:
    (status, headers {lower name: value}, body bytes). Raises EOFError."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before the response head (%r)" % buf[:80])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed in the body")
        rest += chunk
    return status, headers, rest[:n]


def json_or_none(body):
    try:
        return json.loads(body, parse_float=Decimal)
    except (ValueError, TypeError):
        return None


def timed_request(method, path, tok=None, raw=None, headers=None, timeout=30):
    """One HTTP request on a fresh connection: (status or None, json or None,
    headers, seconds, error text or None). Never raises for network errors."""
    hdrs = {"Connection": "close"}
    if tok:
        hdrs["Authorization"] = "Bearer " + tok
    if raw is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    t0 = time.monotonic()
    conn = http.client.HTTPConnection(HOST, PORT, timeout=timeout)
    try:
        conn.request(method, path, body=raw, headers=hdrs)
        r = conn.getresponse()
        body = r.read()
        return (r.status, json_or_none(body), dict((k.lower(), v) for k, v in r.getheaders()),
                time.monotonic() - t0, None)
    except (OSError, http.client.HTTPException) as e:
        return None, None, {}, time.monotonic() - t0, "%s: %s" % (type(e).__name__, e)
    finally:
        conn.close()


# ---- spec 3 invariants, read from the database ------------------------------------

COLLECTED = ("CONFIRMED", "PAID_OUT", "MANUALLY_PAID", "CHARGEBACK_CANCELLED")
REVERSED = ("CHARGED_BACK", "LATE_FAILURE_SETTLED", "CHARGEBACK_SETTLED")


def major(minor, digits=2):
    return Decimal(int(minor)).scaleb(-digits)


def _in(values):
    return ",".join("'%s'" % v for v in values)


def check_invariants(t, cids, tok, what):
    """Spec 3 for each customer: the resultingCustomerBalance chain, balance =
    sum of the ledger = newest row (database and API), 0 <= refunded <= paid,
    paid = what the invoice's payment events moved, refunded = its refunds,
    no customer payment spread beyond its amount, every settled refund has
    its REFUND row and every REFUND row its refund."""
    for cid in cids:
        tag = "%s: customer %d" % (what, cid)
        rows = [(int(a), int(b), int(c)) for a, b, c in paytest.sql(
            "SELECT id, amount, resulting_balance FROM ledger WHERE customer_id = %d"
            " ORDER BY id" % cid)]
        prev, broken = 0, []
        for lid, amount, resulting in rows:
            if resulting != prev + amount:
                broken.append((lid, prev, amount, resulting))
            prev = resulting
        t.eq(broken[:5], [], "%s: each row's resultingCustomerBalance = previous + amount" % tag)
        total = sum(r[1] for r in rows)
        bal = int(paytest.sql_one("SELECT balance FROM customers WHERE id = %d" % cid))
        t.eq(bal, total, "%s: customers.balance = sum of the ledger" % tag)
        if rows:
            t.eq(rows[-1][2], total, "%s: newest row's resultingCustomerBalance = sum" % tag)
        r = paytest.get("/v1/customer-balances?customer_id=%d" % cid, tok=tok)
        if t.status(r, 200, "%s: GET customer-balances" % tag):
            t.eq(r.json.get("balance"), major(total), "%s: API balance = sum of the ledger" % tag)
        r = paytest.get("/v1/customer-payments?customer_id=%d&page=1&pageSize=1&sort=id:desc"
                        % cid, tok=tok)
        if t.status(r, 200, "%s: GET newest ledger row" % tag) and rows:
            row = (r.json or [{}])[0]
            t.eq((row.get("id"), row.get("resultingCustomerBalance")),
                 (rows[-1][0], major(total)),
                 "%s: API newest row's resultingCustomerBalance = balance" % tag)

        inv = {(int(k), int(i)): (int(a), int(p), int(rf)) for k, i, a, p, rf in paytest.sql(
            "SELECT kind, id, amount, paid, refunded FROM invoices WHERE customer_id = %d" % cid)}
        # Events of no attempt move what their status says; an invoice's
        # attempt holds its amount while collected; an account-level attempt
        # moved what its events spread (COLLECTION.md 2).
        moved = {(int(k), int(i)): int(s) for k, i, s in paytest.sql(
            "SELECT p.invoice_kind, p.invoice_id, COALESCE(SUM(CASE"
            " WHEN p.attempt_id IS NOT NULL THEN IF(t.invoice_kind IS NULL, p.amount, 0)"
            " WHEN p.third_party_status IS NULL OR p.third_party_status IN (%s) THEN p.amount"
            " WHEN p.third_party_status IN (%s) THEN -ABS(p.amount) ELSE 0 END), 0)"
            " FROM invoice_payments p LEFT JOIN attempts t ON t.id = p.attempt_id"
            " WHERE p.customer_id = %d GROUP BY 1, 2"
            % (_in(COLLECTED), _in(REVERSED), cid))}
        for k, i, held in paytest.sql(
                "SELECT invoice_kind, invoice_id, SUM(IF(status IN (%s), amount, 0))"
                " FROM attempts WHERE kind = 1 AND customer_id = %d AND invoice_kind IS NOT NULL"
                " GROUP BY 1, 2" % (_in(COLLECTED), cid)):
            moved[(int(k), int(i))] = moved.get((int(k), int(i)), 0) + int(held)
        refunded = {(int(k), int(i)): int(s) for k, i, s in paytest.sql(
            "SELECT invoice_kind, invoice_id, SUM(amount) FROM refunds WHERE customer_id = %d"
            " AND third_party_refund_status NOT IN ('CANCELLED', 'BOUNCED', 'FUNDS_RETURNED')"
            " GROUP BY 1, 2" % cid)}
        t.eq(sorted(k for k, (a, p, rf) in inv.items() if not 0 <= rf <= p), [],
             "%s: 0 <= refunded <= paid on every invoice" % tag)
        t.eq(sorted((k, p, moved.get(k, 0)) for k, (a, p, rf) in inv.items()
                    if p != moved.get(k, 0)), [],
             "%s: invoice paid = sum of its payment events" % tag)
        t.eq(sorted((k, rf, refunded.get(k, 0)) for k, (a, p, rf) in inv.items()
                    if rf != refunded.get(k, 0)), [],
             "%s: invoice refunded = sum of its refunds" % tag)
        over = paytest.sql(
            "SELECT l.id, l.amount, SUM(p.amount) FROM ledger l JOIN invoice_payments p"
            " ON p.customer_payment_id = l.id AND p.customer_payment_type = 'CUSTOMER'"
            " WHERE l.customer_id = %d AND l.txn_type = 'PAYMENT'"
            " AND l.customer_payment_type = 'CUSTOMER'"
            " GROUP BY l.id, l.amount HAVING SUM(p.amount) > l.amount" % cid)
        t.eq(over, [], "%s: no customer payment applied beyond its amount" % tag)
        bad = paytest.sql(
            "SELECT f.id FROM refunds f LEFT JOIN ledger l ON l.id = f.ledger_id"
            " WHERE f.customer_id = %d AND f.third_party_refund_status IN"
            " ('MANUALLY_REFUNDED', 'REFUND_SETTLED')"
            " AND (l.id IS NULL OR l.amount <> -f.amount OR l.txn_type <> 'REFUND')" % cid)
        t.eq(bad, [], "%s: every settled refund has its REFUND ledger row" % tag)
        bad = paytest.sql(
            "SELECT l.id FROM ledger l LEFT JOIN refunds f ON f.ledger_id = l.id"
            " WHERE l.customer_id = %d AND l.txn_type = 'REFUND' AND f.id IS NULL" % cid)
        t.eq(bad, [], "%s: every REFUND ledger row belongs to a refund" % tag)


def marker_counts(prefix):
    """{marker: (ledger rows, refund rows, invoice payment events)} for every
    description starting with prefix."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    out = {}
    for table, idx in (("ledger", 0), ("refunds", 1), ("invoice_payments", 2)):
        for desc, n in paytest.sql("SELECT description, COUNT(*) FROM %s WHERE description"
                                   " LIKE '%s' GROUP BY description" % (table, like)):
            c = list(out.get(desc, (0, 0, 0)))
            c[idx] = int(n)
            out[desc] = tuple(c)
    return out


def marker_ids(prefix, table):
    like = prefix.replace("%", "\\%").replace("_", "\\_") + "%"
    return {d: sorted(int(x) for x in ids.split(",")) for d, ids in paytest.sql(
        "SELECT description, GROUP_CONCAT(id) FROM %s WHERE description LIKE '%s'"
        " GROUP BY description" % (table, like))}
