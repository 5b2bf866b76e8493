/*
 * app/http.c: the classification of answers, Retry-After parsing, and
 * http_do against a loopback HTTPS server (python3) whose certificate
 * comes from a CA this test makes with openssl: verification with that
 * CA passes, without it (system CAs) or for another host name it fails;
 * statuses, Retry-After and the request id are read; a second call reuses
 * the connection; oversized answers, timeouts and closed connections are
 * "no answer".
 */
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arena.h"
#include "http.h"

static void
test_class(void)
{
    static const struct {
        long status;
        int  want;
    } cases[] = {{200, 0}, {201, 0}, {204, 0}, {0, 1},   {408, 1}, {409, 1}, {425, 1},
                 {429, 1}, {500, 1}, {502, 1}, {503, 1}, {400, 2}, {401, 2}, {403, 2},
                 {404, 2}, {422, 2}, {302, 2}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http_call c = {.status = cases[i].status};
        CHECK(http_class(&c) == cases[i].want, "http_class(%ld) = %d", cases[i].status,
              http_class(&c));
    }
}

static void
test_retry_after(void)
{
    long long now = 1700000000; /* Tue, 14 Nov 2023 22:13:20 GMT */
    CHECK(http_retry_after_ms("7", now) == 7000, "seconds");
    CHECK(http_retry_after_ms(" 0 ", now) == 0, "zero");
    CHECK(http_retry_after_ms("120", now) == 120000, "two minutes");
    CHECK(http_retry_after_ms("99999999999", now) == 24L * 3600 * 1000, "capped at a day");
    CHECK(http_retry_after_ms("Tue, 14 Nov 2023 22:14:20 GMT", now) == 60000, "HTTP-date");
    CHECK(http_retry_after_ms("Tuesday, 14-Nov-23 22:13:50 GMT", now) == 30000, "RFC 850 date");
    CHECK(http_retry_after_ms("Tue, 14 Nov 2023 22:00:00 GMT", now) == 0, "a past date");
    CHECK(http_retry_after_ms("-5", now) == 0, "negative");
    CHECK(http_retry_after_ms("5s", now) == 0, "junk after digits");
    CHECK(http_retry_after_ms("soon", now) == 0, "not a date");
    CHECK(http_retry_after_ms("", now) == 0, "empty");
    CHECK(http_retry_after_ms(NULL, now) == 0, "absent");
}

static const char server_py[] =
    "import http.server, socketserver, ssl, sys, time, email.utils\n"
    "class H(http.server.BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    def log_message(self, *a): pass\n"
    "    def send(self, code, body, headers=()):\n"
    "        self.send_response(code)\n"
    "        for k, v in headers: self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.end_headers(); self.wfile.write(body)\n"
    "    def do_GET(self):\n"
    "        p = self.path\n"
    "        if p == '/ok': self.send(200, b'hello', [('X-Request-Id', 'rid-123')])\n"
    "        elif p == '/port': self.send(200, str(self.client_address[1]).encode())\n"
    "        elif p == '/429': self.send(429, b'{}', [('Retry-After', '7')])\n"
    "        elif p == '/503': self.send(503, b'{}', [('Retry-After',\n"
    "            email.utils.formatdate(time.time() + 3600, usegmt=True))])\n"
    "        elif p == '/reset': self.send(429, b'{}', [('RateLimit-Reset',\n"
    "            email.utils.formatdate(time.time() + 120, usegmt=True))])\n"
    "        elif p == '/big': self.send(200, b'x' * (5 * 1024 * 1024))\n"
    "        elif p == '/slow': time.sleep(4); self.send(200, b'late')\n"
    "        elif p == '/close': self.close_connection = True; self.connection.close()\n"
    "        else: self.send(404, b'nope')\n"
    "    def do_POST(self):\n"
    "        n = int(self.headers.get('Content-Length', '0'))\n"
    "        body = self.rfile.read(n)\n"
    "        self.send(201, self.command.encode() + b' ' +\n"
    "                  (self.headers.get('Idempotency-Key') or '').encode() + b' ' + body)\n"
    "    do_DELETE = do_POST\n"
    "class S(socketserver.ThreadingMixIn, http.server.HTTPServer):\n"
    "    daemon_threads = True\n"
    "s = S(('127.0.0.1', 0), H)\n"
    "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
    "ctx.load_cert_chain(sys.argv[1] + '/server.pem', sys.argv[1] + '/server.key')\n"
    "s.socket = ctx.wrap_socket(s.socket, server_side=True)\n"
    "open(sys.argv[1] + '/port.tmp', 'w').write(str(s.server_address[1]))\n"
    "import os; os.rename(sys.argv[1] + '/port.tmp', sys.argv[1] + '/port')\n"
    "s.serve_forever()\n";

static char  dir[] = "/tmp/pay-test-http-XXXXXX";
static pid_t server;

/* Runs `cmd` in directory d. */
static int
sh_in(const char *d, const char *cmd)
{
    char line[2048];
    snprintf(line, sizeof(line), "cd '%s' && %s", d, cmd);
    return system(line);
}

/* A CA, a certificate for 127.0.0.1 signed by it, and the server. Port or 0. */
static int
start_server(void)
{
    if (mkdtemp(dir) == NULL)
        return 0;
    if (sh_in(dir, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=pay test CA'"
           " -keyout ca.key -out ca.pem >/dev/null 2>&1"
           " && openssl req -newkey rsa:2048 -nodes -subj '/CN=127.0.0.1' -keyout server.key"
           " -out server.csr >/dev/null 2>&1"
           " && printf 'subjectAltName=IP:127.0.0.1\\n' > ext"
           " && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial"
           " -days 2 -extfile ext -out server.pem >/dev/null 2>&1") != 0)
        return 0;
    char path[256];
    snprintf(path, sizeof(path), "%s/server.py", dir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return 0;
    fputs(server_py, f);
    fclose(f);
    server = fork();
    if (server == 0) {
        execlp("python3", "python3", path, dir, (char *)NULL);
        _exit(127);
    }
    snprintf(path, sizeof(path), "%s/port", dir);
    for (int i = 0; i < 600; i++) { /* up to a minute on a loaded machine */
        f = fopen(path, "r");
        if (f != NULL) {
            int port = 0;
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
            return port;
        }
        usleep(100000);
    }
    return 0;
}

static void
test_loopback(struct arena *a)
{
    int port = start_server();
    CHECK(port > 0, "the loopback HTTPS server started");
    if (port <= 0)
        return;
    char ca[256];
    snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
    const char *base = arena_printf(a, "https://127.0.0.1:%d", port);

    struct http_call c = {.method = "GET", .url = arena_printf(a, "%s/ok", base), .ca_file = ca,
                          .request_id_header = "X-Request-Id"};
    CHECK(http_do(a, &c) == 0 && c.status == 200, "GET with the test CA: 200 (%ld, %s)",
          c.status, c.error ? c.error : "-");
    CHECK_STR(c.resp, "hello", "the body");
    CHECK(c.resp_len == 5, "its length");
    CHECK_STR(c.request_id, "rid-123", "the request id header");
    CHECK(http_class(&c) == 0, "2xx: success");

    struct http_call v = {.method = "GET", .url = c.url};
    CHECK(http_do(a, &v) == -1 && v.status == 0 && v.error != NULL,
          "without the test CA the certificate is refused");
    CHECK(http_class(&v) == 1, "no answer: retryable");
    struct http_call h = {.method = "GET", .url = arena_printf(a, "https://localhost:%d/ok", port),
                          .ca_file = ca};
    CHECK(http_do(a, &h) == -1 && h.status == 0, "a certificate for another name is refused");

    struct http_call p1 = {.method = "GET", .url = arena_printf(a, "%s/port", base), .ca_file = ca};
    struct http_call p2 = p1;
    CHECK(http_do(a, &p1) == 0 && http_do(a, &p2) == 0 && p1.resp && p2.resp &&
          strcmp(p1.resp, p2.resp) == 0, "the second call reuses the connection (%s, %s)",
          p1.resp ? p1.resp : "-", p2.resp ? p2.resp : "-");

    struct http_call r = {.method = "GET", .url = arena_printf(a, "%s/429", base), .ca_file = ca};
    CHECK(http_do(a, &r) == 0 && r.status == 429 && r.retry_after_ms == 7000,
          "429 with Retry-After: 7 (%ld)", r.retry_after_ms);
    CHECK(http_class(&r) == 1, "429: retryable");
    r = (struct http_call){.method = "GET", .url = arena_printf(a, "%s/503", base), .ca_file = ca};
    CHECK(http_do(a, &r) == 0 && r.status == 503 && r.retry_after_ms > 3000000 &&
          r.retry_after_ms <= 3600000, "503 with an HTTP-date an hour ahead (%ld)",
          r.retry_after_ms);
    r = (struct http_call){.method = "GET", .url = arena_printf(a, "%s/reset", base),
                           .ca_file = ca};
    CHECK(http_do(a, &r) == 0 && r.status == 429 && r.retry_after_ms > 60000 &&
          r.retry_after_ms <= 120000, "429 without Retry-After: RateLimit-Reset (%ld)",
          r.retry_after_ms);
    r = (struct http_call){.method = "GET", .url = arena_printf(a, "%s/nothing", base),
                           .ca_file = ca};
    CHECK(http_do(a, &r) == 0 && r.status == 404 && http_class(&r) == 2 && r.retry_after_ms == 0,
          "404: permanent");

    struct http_header hd[] = {{"Idempotency-Key", "key-1"}, {"Authorization", "Bearer s3cret"}};
    struct http_call   post = {.method = "POST", .url = arena_printf(a, "%s/echo", base),
                               .ca_file = ca, .headers = hd, .nheaders = 2,
                               .body = "{\"a\":1}", .body_len = 7};
    CHECK(http_do(a, &post) == 0 && post.status == 201, "POST: 201");
    CHECK_STR(post.resp, "POST key-1 {\"a\":1}", "method, header and body arrived");
    struct http_call del = {.method = "DELETE", .url = post.url, .ca_file = ca};
    CHECK(http_do(a, &del) == 0 && del.resp && strncmp(del.resp, "DELETE", 6) == 0, "DELETE");

    struct http_call big = {.method = "GET", .url = arena_printf(a, "%s/big", base),
                            .ca_file = ca};
    CHECK(http_do(a, &big) == -1 && big.status == 0, "an answer over 4 MiB: no answer");
    struct http_call slow = {.method = "GET", .url = arena_printf(a, "%s/slow", base),
                             .ca_file = ca, .timeout_ms = 500};
    CHECK(http_do(a, &slow) == -1 && slow.status == 0 && http_class(&slow) == 1,
          "past the total timeout: no answer, retryable");
    struct http_call cl = {.method = "GET", .url = arena_printf(a, "%s/close", base),
                           .ca_file = ca};
    CHECK(http_do(a, &cl) == -1 && cl.status == 0, "a closed connection: no answer");
    struct http_call ok2 = c;
    CHECK(http_do(a, &ok2) == 0 && ok2.status == 200, "and the next call works");

    struct http_call plain = {.method = "GET", .url = "http://example.com/"};
    CHECK(http_do(a, &plain) == -1 && plain.error != NULL, "plain http:// off loopback refused");

    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    sh_in("/tmp", arena_printf(a, "rm -rf '%s'", dir));
}

int
main(void)
{
    struct arena *a = arena_create(1 << 16);
    test_class();
    test_retry_after();
    test_loopback(a);
    arena_destroy(a);
    return TEST_DONE();
}
