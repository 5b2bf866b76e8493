"""The HTTPS front as production runs it, end to end: a stack started with
PAY_TLS=1 (tests/stack.sh) serves nginx/pay-api.conf itself, with pay-api,
MariaDB and a certificate of a test CA made at stack start.

- the certificate verifies against the test CA only (a client without the CA
  refuses it), for 127.0.0.1;
- Strict-Transport-Security on every kind of HTTPS answer: the app's JSON
  (200, 401, 404, 405 for TRACE), nginx's own JSON errors (404, 413), the
  HTML pages, /metrics, the OpenAPI document;
- public_base_url is https://: payment links point at the HTTPS site and the
  page's CSRF cookie is Secure;
- port 80: GET and HEAD get a 301 to the same URL over https://, a POST gets
  a JSON 403 and writes nothing, ACME challenge files are served from the
  webroot;
- pay-api refuses an http:// public_base_url without allow_insecure_http, with
  a message saying why and how.

Writes: one payment link for customer 61 (no money moves).
"""
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from paytest import *  # noqa: E402,F401,F403
import paytest  # noqa: E402

HSTS = "max-age=63072000"
HTTP = ENV.get("PAY_HTTP_URL", "")
U = urllib.parse.urlsplit(BASE)
TOK = token(sub="e2e-tls")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


def plain(method, url, data=None, headers=None):
    """One request to the port-80 side, redirects not followed: (status,
    headers, body)."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def test_certificate(s):
    s.check(BASE.startswith("https://127.0.0.1:"), "the stack is served over HTTPS", BASE)
    s.check(bool(paytest.TLS_CA) and os.path.exists(paytest.TLS_CA), "the env file names the test CA")
    s.check(HTTP.startswith("http://127.0.0.1:"), "the env file names the port-80 side", HTTP)
    ctx = ssl.create_default_context(cafile=paytest.TLS_CA)
    with socket.create_connection((U.hostname, U.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=U.hostname) as t:
            s.check(t.version() in ("TLSv1.2", "TLSv1.3"), "TLS 1.2 or 1.3", t.version())
            cert = t.getpeercert()
    issuer = dict(x[0] for x in cert.get("issuer", ()))
    s.eq(issuer.get("commonName"), "pay-api test intermediate CA", "issued under the test CA")
    s.check(("IP Address", "127.0.0.1") in cert.get("subjectAltName", ()), "SAN names 127.0.0.1",
            cert.get("subjectAltName"))
    # A client that does not trust the test CA refuses the very same server.
    other = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)     # verifies chain and host name
    other.load_verify_locations(cadata=_unrelated_ca())
    try:
        with socket.create_connection((U.hostname, U.port), timeout=10) as raw:
            with other.wrap_socket(raw, server_hostname=U.hostname):
                pass
        s.check(False, "a client without the test CA must refuse the certificate")
    except ssl.SSLCertVerificationError as e:
        s.check("unable to get local issuer certificate" in str(e),
                "a client without the test CA refuses the certificate", str(e))


def _unrelated_ca():
    """A CA certificate that did not issue the server's (made on the spot)."""
    d = tempfile.mkdtemp(prefix="pay-tls-other-")
    try:
        subprocess.check_call(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                               "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other CA",
                               "-days", "1", "-keyout", d + "/k.pem", "-out", d + "/c.pem"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return open(d + "/c.pem").read()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def hsts(s, r, what):
    s.eq(r.header("Strict-Transport-Security"), HSTS, what + ": Strict-Transport-Security")


def provider_for_owner1():
    return int(sql_one("SELECT MIN(p.id) FROM payment_providers p JOIN payment_provider_owners o"
                       " ON o.provider_id = p.id WHERE p.type = 'GO_CARDLESS'"
                       " AND p.status = 'ACTIVE' AND o.contract_owner_id = 1"))


def test_hsts_everywhere(s):
    cases = [
        ("GET /healthz (app, 200)", get("/healthz"), 200),
        ("GET a list (app, 200)", get("/v1/customer-payments?customer_id=10&page=1&pageSize=1", tok=TOK), 200),
        ("no token (app, 401)", get("/v1/customer-payments?customer_id=10&page=1&pageSize=1"), 401),
        ("unknown /v1 route (app, 404)", get("/v1/nope", tok=TOK), 404),
        ("TRACE (app via nginx's 405)", request("TRACE", "/v1/customer-payments"), 405),
        ("unknown path (nginx, 404)", get("/nope"), 404),
        ("body over 64 KiB (nginx, 413)", post("/v1/customer-payments", raw=b"x" * 70000, tok=TOK), 413),
        ("unknown payment link page (404)", get("/pay/" + "A" * 43), 404),
        ("/metrics from loopback", get("/metrics"), 200),
        ("/v1/openapi.json", get("/v1/openapi.json"), 200),
    ]
    for what, r, want in cases:
        s.status(r, want, what)
        hsts(s, r, what)


def test_links_and_cookie(s):
    r = post("/v1/payment-provider-payment-link", raw='{"paymentProviderId":%d,'
             '"amountInMajorCurrency":1.00,"description":"over TLS","customerId":61}'
             % provider_for_owner1(), tok=TOK)
    if not s.status(r, 201, "create a payment link over HTTPS"):
        return
    link = (r.json or {}).get("paymentLink") or ""
    s.check(link.startswith(BASE + "/pay/"), "paymentLink is on the HTTPS site", link)
    s.eq(r.header("Location"), link, "Location is the link")
    p = get(link)
    s.status(p, 200, "the payment page over HTTPS")
    hsts(s, p, "payment page")
    sc = p.header("Set-Cookie") or ""
    attrs = [a.strip() for a in sc.split(";")]
    s.check(sc.startswith("pay_csrf=") and "Secure" in attrs and "HttpOnly" in attrs
            and "SameSite=Strict" in attrs, "CSRF cookie: Secure, HttpOnly, SameSite=Strict", sc)
    csp = p.header("Content-Security-Policy") or ""
    m = re.search(r"form-action ([^;]*)", csp)
    s.check(m is not None and "http:" not in m.group(1), "form-action names no http:// origin", csp)


def test_port_80(s):
    path = "/v1/customer-payments?customer_id=10&page=1&pageSize=1"
    for m in ("GET", "HEAD"):
        st, h, _ = plain(m, HTTP + path, headers={"Authorization": "Bearer " + TOK})
        s.eq(st, 301, "port 80 %s: 301" % m)
        s.eq(h.get("Location"), "https://127.0.0.1" + path, "port 80 %s: Location is the https:// URL" % m)
        s.eq(h.get("Strict-Transport-Security"), None, "port 80 %s: no HSTS over plain HTTP" % m)
    rows = sql_one("SELECT COUNT(*) FROM ledger")
    body = b'{"customerId":2,"amountInMajorCurrency":1.00,"type":"BACS","description":"clear"}'
    st, h, b = plain("POST", HTTP + "/v1/customer-payments", data=body,
                     headers={"Authorization": "Bearer " + TOK, "Content-Type": "application/json",
                              "Idempotency-Key": "tls-port-80"})
    s.eq(st, 403, "port 80 POST: 403, not a redirect")
    s.eq(h.get("Location"), None, "port 80 POST: no Location")
    s.check((h.get("Content-Type") or "").startswith("application/json"), "port 80 POST: JSON")
    s.check('"code":"FORBIDDEN"' in b and "HTTPS" in b, "port 80 POST: the error says HTTPS", b)
    s.eq(sql_one("SELECT COUNT(*) FROM ledger"), rows, "port 80 POST: nothing was written")
    st, _, _ = plain("POST", HTTP + "/pay/" + "A" * 43, data=b"csrf=x",
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    s.eq(st, 403, "port 80: a page form POST is refused too")

    acme = ENV.get("PAY_ACME_DIR", "")
    name = "tls-e2e-" + os.urandom(6).hex()
    d = os.path.join(acme, ".well-known", "acme-challenge")
    with open(os.path.join(d, name), "w") as f:
        f.write(name + ".thumbprint")
    os.chmod(os.path.join(d, name), 0o644)
    try:
        st, h, b = plain("GET", HTTP + "/.well-known/acme-challenge/" + name)
        s.eq(st, 200, "ACME challenge served on port 80")
        s.eq(b, name + ".thumbprint", "ACME challenge: the file's content")
    finally:
        os.unlink(os.path.join(d, name))


def test_config_refusal(s):
    """The real binary refuses an http:// public_base_url without the flag."""
    tmp = tempfile.mkdtemp(prefix="pay-tls-cfg-")
    try:
        lines = [l for l in open(ENV["PAY_CONFIG"]).read().splitlines()
                 if not l.strip().startswith(("public_base_url", "allow_insecure_http"))]
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAY_")}
        for extra, want_rc in ((["public_base_url = http://127.0.0.1:9"], 2),
                               (["public_base_url = http://127.0.0.1:9", "allow_insecure_http = 1"], 0),
                               (["public_base_url = https://pay.example.com"], 0)):
            path = os.path.join(tmp, "c%d.conf" % len(os.listdir(tmp)))
            with open(path, "w") as f:
                f.write("\n".join(lines + extra) + "\n")
            p = subprocess.run([ENV["PAY_BIN"], "--config", path, "token", "--sub", "x", "--ttl", "60"],
                               env=env, capture_output=True, text=True, timeout=30)
            s.eq(p.returncode, want_rc, "pay-api token with %s: exit %d" % (extra, want_rc))
            if want_rc == 2:
                s.check("public_base_url http://127.0.0.1:9 is plain HTTP" in p.stderr
                        and "allow_insecure_http = 1" in p.stderr,
                        "the refusal says why and names the development flag", p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


Suite().run([
    test_certificate,
    test_hsts_everywhere,
    test_links_and_cookie,
    test_port_80,
    test_config_refusal,
])
