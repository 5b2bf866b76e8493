/*
 * Unit tests for app/config.c: defaults, a file with comments and odd
 * spacing, PAY_<KEY> environment overrides, and every start-up refusal
 * (unknown key naming the key and line, bad or out-of-range integers and
 * modes, bad jwt_alg, log_level and public_base_url, missing file), plus
 * the trailing-slash trim of public_base_url and its HTTPS rule: required,
 * https://, http:// only with allow_insecure_http = 1. Files are written to a
 * private temporary directory that is removed at the end.
 */
#include "test.h"

#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * config_load strdup()s every string value (process lifetime, no free
 * function by design), and a value overridden by the file or environment
 * drops the pointer to the one it replaces. Loading dozens of configs in
 * one process therefore "leaks" by construction; keep LeakSanitizer quiet
 * about allocations made inside config_load only.
 */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
    return "leak:config_load\n";
}

static char dir[64];
static int  nfiles;
static char files[64][128];

/* Every key of the table, to clear PAY_<KEY> before each case. */
static const char *const all_keys[] = {
    "SOCKET", "SOCKET_MODE", "WORKERS", "MAX_REQUESTS", "SHUTDOWN_GRACE", "DB_HOST",
    "DB_PORT", "DB_SOCKET", "DB_USER", "DB_PASSWORD", "DB_NAME", "DB_TIMEOUT",
    "DB_LOCK_WAIT", "JWT_ALG", "JWT_SECRET", "JWT_SECRET_FILE", "JWT_PUBLIC_KEY_FILE",
    "JWT_PRIVATE_KEY_FILE", "JWT_ISSUER", "JWT_AUDIENCE", "PUBLIC_BASE_URL",
    "ALLOW_INSECURE_HTTP", "LOG_LEVEL", "LOG_FILE",
};

static void
unset_all(void)
{
    for (size_t i = 0; i < sizeof(all_keys) / sizeof(all_keys[0]); i++) {
        char name[64];
        snprintf(name, sizeof(name), "PAY_%s", all_keys[i]);
        unsetenv(name);
    }
}

/* No PAY_<KEY> but the one required key, public_base_url (its own tests
 * use unset_all). */
#define BASE_URL "https://pay.test"
static void
clear_env(void)
{
    unset_all();
    setenv("PAY_PUBLIC_BASE_URL", BASE_URL, 1);
}

/* Writes text to a new file in dir; returns its path (static storage). */
static const char *
write_file(const char *text)
{
    char *path = files[nfiles % 64];
    snprintf(path, sizeof(files[0]), "%s/c%d.conf", dir, nfiles);
    nfiles++;
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        printf("cannot write %s\n", path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
    return path;
}

static long
nprocs(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* ---- defaults ---------------------------------------------------------------- */

static void
test_defaults(void)
{
    struct config c;
    char          err[512] = "";

    clear_env();
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0, "defaults load: %s", err);
    CHECK_STR(c.socket, "/run/pay-api/fcgi.sock", "default socket");
    CHECK(c.socket_mode == 0660, "default socket_mode 0660 (got %o)", c.socket_mode);
    CHECK(c.workers == 4 * nprocs(), "workers = 0 means 4 x CPUs (%d, %ld CPUs)",
          c.workers, nprocs());
    CHECK(c.max_requests == 0, "default max_requests 0");
    CHECK(c.shutdown_grace == 10, "default shutdown_grace 10");
    CHECK_STR(c.db_host, "localhost", "default db_host");
    CHECK(c.db_port == 3306, "default db_port 3306");
    CHECK_STR(c.db_socket, "", "default db_socket empty");
    CHECK_STR(c.db_user, "pay", "default db_user");
    CHECK_STR(c.db_password, "", "default db_password empty");
    CHECK_STR(c.db_name, "pay", "default db_name");
    CHECK(c.db_timeout == 10, "default db_timeout 10");
    CHECK(c.db_lock_wait == 5, "default db_lock_wait 5");
    CHECK_STR(c.jwt_alg, "HS256", "default jwt_alg");
    CHECK_STR(c.jwt_secret, "", "default jwt_secret empty");
    CHECK_STR(c.jwt_secret_file, "", "default jwt_secret_file empty");
    CHECK_STR(c.jwt_public_key_file, "", "default jwt_public_key_file empty");
    CHECK_STR(c.jwt_private_key_file, "", "default jwt_private_key_file empty");
    CHECK_STR(c.jwt_issuer, "", "default jwt_issuer empty");
    CHECK_STR(c.jwt_audience, "", "default jwt_audience empty");
    CHECK_STR(c.public_base_url, BASE_URL, "public_base_url from the environment");
    CHECK(c.allow_insecure_http == 0, "default allow_insecure_http 0");
    CHECK_STR(c.log_level, "info", "default log_level");
    CHECK_STR(c.log_file, "", "default log_file empty (stderr)");

    struct config c2;
    CHECK(config_load(&c2, "", err, sizeof(err)) == 0 &&
              strcmp(c2.socket, "/run/pay-api/fcgi.sock") == 0,
          "an empty path means no file: %s", err);
}

/* ---- a file ------------------------------------------------------------------ */

static void
test_file(void)
{
    struct config c;
    char          err[512] = "";

    unset_all();
    const char *path = write_file(
        "# pay-api test config\n"
        "\n"
        "   # indented comment\n"
        "socket=/tmp/pay.sock\n"
        "  socket_mode   =   0600  \n"
        "\tworkers\t=\t3\t\n"
        "max_requests = 1000\n"
        "shutdown_grace = 30\n"
        "db_host = db.internal\n"
        "db_port = 3307\n"
        "db_user = app\n"
        "db_password = p@ss w=rd#1\n"
        "db_name = payments\n"
        "   \t  \n"
        "db_timeout = 20\n"
        "db_lock_wait = 7\n"
        "jwt_alg = RS256\n"
        "jwt_public_key_file = /etc/pay/pub.pem\n"
        "jwt_issuer = https://issuer.example\n"
        "public_base_url = https://pay.example.com/\n"
        "log_level = debug\n"
        "log_file = /var/log/pay-api.log\n"
        "workers = 5\n" /* a later line wins */
        "# trailing comment without newline");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0, "commented file loads: %s", err);
    CHECK_STR(c.socket, "/tmp/pay.sock", "socket from the file");
    CHECK(c.socket_mode == 0600, "socket_mode is octal (got %o)", c.socket_mode);
    CHECK(c.workers == 5, "workers: later line wins (%d)", c.workers);
    CHECK(c.max_requests == 1000, "max_requests");
    CHECK(c.shutdown_grace == 30, "shutdown_grace");
    CHECK_STR(c.db_host, "db.internal", "db_host");
    CHECK(c.db_port == 3307, "db_port");
    CHECK_STR(c.db_user, "app", "db_user");
    CHECK_STR(c.db_password, "p@ss w=rd#1", "value keeps inner spaces, '=' and '#'");
    CHECK_STR(c.db_name, "payments", "db_name");
    CHECK(c.db_timeout == 20 && c.db_lock_wait == 7, "db_timeout and db_lock_wait");
    CHECK_STR(c.jwt_alg, "RS256", "jwt_alg RS256 is accepted");
    CHECK_STR(c.jwt_public_key_file, "/etc/pay/pub.pem", "jwt_public_key_file");
    CHECK_STR(c.jwt_issuer, "https://issuer.example", "jwt_issuer");
    CHECK_STR(c.public_base_url, "https://pay.example.com",
              "trailing slash stripped from public_base_url");
    CHECK_STR(c.log_level, "debug", "log_level");
    CHECK_STR(c.log_file, "/var/log/pay-api.log", "log_file");
    CHECK_STR(c.jwt_audience, "", "keys absent from the file keep their default");

    clear_env();
    /* CRLF line endings. */
    path = write_file("workers = 4\r\ndb_name = crlf\r\n");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 && c.workers == 4 &&
              strcmp(c.db_name, "crlf") == 0,
          "CRLF line endings: %s", err);

    /* An empty value for a string key. */
    path = write_file("db_password =\n");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 && strcmp(c.db_password, "") == 0,
          "an empty string value is allowed: %s", err);

    /* An empty file is just the defaults. */
    path = write_file("");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 && c.db_port == 3306,
          "an empty file gives the defaults: %s", err);

    /* public_base_url variants that stay as they are. */
    unset_all();
    static const char *const urls[] = {"http://x", "https://a.example:8443/base",
                                       "http://127.0.0.1:9", "https://x"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        char text[256];
        snprintf(text, sizeof(text), "public_base_url = %s\nallow_insecure_http = %d\n",
                 urls[i], urls[i][4] == ':');
        path = write_file(text);
        CHECK(config_load(&c, path, err, sizeof(err)) == 0 &&
                  strcmp(c.public_base_url, urls[i]) == 0,
              "public_base_url %s is kept (%s)", urls[i], err);
    }
    path = write_file("public_base_url = https://a.example:8443/base/\n");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 &&
              strcmp(c.public_base_url, "https://a.example:8443/base") == 0,
          "trailing slash after a path is stripped (%s)", c.public_base_url);
}

/* ---- public_base_url: HTTPS unless the development flag -------------------- */

static void
test_https_rule(void)
{
    struct config c;
    char          err[512] = "";

    /* Not set at all: required, and the message says what to write. */
    unset_all();
    CHECK(config_load(&c, NULL, err, sizeof(err)) == -1, "no public_base_url: refused");
    CHECK(strstr(err, "public_base_url is not set") != NULL && strstr(err, "https://") != NULL,
          "no public_base_url: the message asks for an https:// address (%s)", err);

    /* http:// without the flag: refused with a clear message, from the file
     * and from the environment alike. */
    const char *path = write_file("public_base_url = http://pay.example.com\n");
    err[0] = '\0';
    CHECK(config_load(&c, path, err, sizeof(err)) == -1, "http:// base URL: refused");
    CHECK(strstr(err, "public_base_url http://pay.example.com is plain HTTP") != NULL,
          "http:// refusal names the key and the value (%s)", err);
    CHECK(strstr(err, "use https://") != NULL && strstr(err, "allow_insecure_http = 1") != NULL,
          "http:// refusal says how to fix it and names the development flag (%s)", err);
    path = write_file("public_base_url = http://127.0.0.1:8080\nallow_insecure_http = 0\n");
    CHECK(config_load(&c, path, err, sizeof(err)) == -1,
          "http:// on loopback with allow_insecure_http = 0: still refused");
    setenv("PAY_PUBLIC_BASE_URL", "http://env.example", 1);
    err[0] = '\0';
    CHECK(config_load(&c, NULL, err, sizeof(err)) == -1 &&
              strstr(err, "http://env.example is plain HTTP") != NULL,
          "PAY_PUBLIC_BASE_URL=http://...: refused (%s)", err);

    /* The development flag allows it, from the file or the environment. */
    path = write_file("public_base_url = http://127.0.0.1:8080/\nallow_insecure_http = 1\n");
    unset_all();
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 &&
              strcmp(c.public_base_url, "http://127.0.0.1:8080") == 0 &&
              c.allow_insecure_http == 1,
          "allow_insecure_http = 1 accepts http:// (%s)", err);
    setenv("PAY_PUBLIC_BASE_URL", "http://127.0.0.1:9", 1);
    setenv("PAY_ALLOW_INSECURE_HTTP", "1", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0, "PAY_ALLOW_INSECURE_HTTP=1 accepts http://");
    /* The flag changes nothing for https://. */
    setenv("PAY_PUBLIC_BASE_URL", "https://pay.example.com", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 &&
              strcmp(c.public_base_url, "https://pay.example.com") == 0,
          "https:// with the flag set is fine (%s)", err);

    /* The flag is 0 or 1; a URL needs a host. */
    static const char *const bad[] = {
        "public_base_url = https://x\nallow_insecure_http = 2\n",
        "public_base_url = https://x\nallow_insecure_http = yes\n",
        "public_base_url = https://\n",
        "public_base_url = https:///x\n",
        "public_base_url = http://\nallow_insecure_http = 1\n",
    };
    unset_all();
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        path = write_file(bad[i]);
        CHECK(config_load(&c, path, err, sizeof(err)) == -1 && err[0] != '\0',
              "refused: %.60s (%s)", bad[i], err);
    }
    unset_all();
}

/* ---- environment overrides ----------------------------------------------- */

static void
test_env(void)
{
    struct config c;
    char          err[512] = "";

    clear_env();
    const char *path = write_file("workers = 4\ndb_name = fromfile\nsocket_mode = 0600\n"
                                  "public_base_url = http://file.example\n");
    setenv("PAY_WORKERS", "7", 1);
    setenv("PAY_DB_NAME", "fromenv", 1);
    setenv("PAY_SOCKET_MODE", "0640", 1);
    setenv("PAY_DB_PORT", "3310", 1);
    setenv("PAY_LOG_LEVEL", "warn", 1);
    setenv("PAY_PUBLIC_BASE_URL", "https://env.example/", 1);
    setenv("PAY_JWT_SECRET", "s3cret value", 1);
    CHECK(config_load(&c, path, err, sizeof(err)) == 0, "env overrides load: %s", err);
    CHECK(c.workers == 7, "PAY_WORKERS overrides the file (%d)", c.workers);
    CHECK_STR(c.db_name, "fromenv", "PAY_DB_NAME overrides the file");
    CHECK(c.socket_mode == 0640, "PAY_SOCKET_MODE is octal (%o)", c.socket_mode);
    CHECK(c.db_port == 3310, "PAY_DB_PORT overrides the default");
    CHECK_STR(c.log_level, "warn", "PAY_LOG_LEVEL");
    CHECK_STR(c.public_base_url, "https://env.example",
              "PAY_PUBLIC_BASE_URL, trailing slash stripped");
    CHECK_STR(c.jwt_secret, "s3cret value", "PAY_JWT_SECRET");

    /* Without a file. */
    clear_env();
    setenv("PAY_SOCKET", "/tmp/env.sock", 1);
    setenv("PAY_SHUTDOWN_GRACE", "3", 1);
    CHECK(config_load(&c, NULL, err, sizeof(err)) == 0 &&
              strcmp(c.socket, "/tmp/env.sock") == 0 && c.shutdown_grace == 3,
          "env overrides without a file: %s", err);

    /* Lower-case names are not ours. */
    clear_env();
    setenv("pay_workers", "9", 1);
    path = write_file("workers = 4\n");
    CHECK(config_load(&c, path, err, sizeof(err)) == 0 && c.workers == 4,
          "pay_workers (lower case) is ignored (%d)", c.workers);
    unsetenv("pay_workers");

    /* Bad environment values are errors naming the variable. */
    static const struct {
        const char *name, *value;
    } bad[] = {
        {"PAY_WORKERS", "abc"}, {"PAY_WORKERS", "-1"},  {"PAY_WORKERS", "257"},
        {"PAY_DB_PORT", "0"},   {"PAY_SOCKET_MODE", "9"}, {"PAY_WORKERS", ""},
        {"PAY_JWT_ALG", "none"}, {"PAY_LOG_LEVEL", "loud"},
        {"PAY_PUBLIC_BASE_URL", "ftp://x"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_env();
        setenv(bad[i].name, bad[i].value, 1);
        err[0] = '\0';
        int rc = config_load(&c, NULL, err, sizeof(err));
        CHECK(rc == -1, "%s=\"%s\" is refused", bad[i].name, bad[i].value);
        CHECK(err[0] != '\0', "%s=\"%s\": a message is given", bad[i].name,
              bad[i].value);
    }
    clear_env();
    setenv("PAY_WORKERS", "abc", 1);
    err[0] = '\0';
    config_load(&c, NULL, err, sizeof(err));
    CHECK(strstr(err, "PAY_WORKERS") != NULL && strstr(err, "abc") != NULL,
          "bad PAY_WORKERS: message names the variable and value (%s)", err);
    clear_env();
}

/* ---- file errors ----------------------------------------------------------- */

static void
test_file_errors(void)
{
    static const struct {
        const char *text;
        int         line;
        const char *needles[3]; /* substrings the message must contain */
    } cases[] = {
        {"workers = 2\n# c\nfrobnicate = 1\n", 3, {"unknown key", "frobnicate"}},
        {"Workers = 2\n", 1, {"unknown key", "Workers"}},
        {"db-name = x\n", 1, {"unknown key", "db-name"}},
        {"workers = abc\n", 1, {"workers", "abc"}},
        {"\n\nworkers = 4x\n", 3, {"workers", "4x"}},
        {"workers = 257\n", 1, {"workers", "257"}},
        {"workers = -1\n", 1, {"workers"}},
        {"workers =\n", 1, {"workers"}},
        {"workers = 99999999999999999999\n", 1, {"workers"}},
        {"workers = 2.5\n", 1, {"workers"}},
        {"db_port = 0\n", 1, {"db_port"}},
        {"db_port = 65536\n", 1, {"db_port", "65536"}},
        {"shutdown_grace = 0\n", 1, {"shutdown_grace"}},
        {"shutdown_grace = 601\n", 1, {"shutdown_grace"}},
        {"db_timeout = 0\n", 1, {"db_timeout"}},
        {"max_requests = -5\n", 1, {"max_requests"}},
        {"socket_mode = 0999\n", 1, {"socket_mode"}},
        {"socket_mode = 01000\n", 1, {"socket_mode"}},
        {"socket_mode = rw\n", 1, {"socket_mode"}},
        {"workers 4\n", 1, {"expected"}},
        {"db_name = a\njust some words\n", 2, {"expected"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct config c;
        char          err[512] = "";
        clear_env();
        const char *path = write_file(cases[i].text);
        int         rc = config_load(&c, path, err, sizeof(err));
        CHECK(rc == -1, "file case %zu is refused", i);
        char where[160];
        snprintf(where, sizeof(where), "%s:%d", path, cases[i].line);
        CHECK(strstr(err, where) != NULL, "file case %zu: message names %s (%s)", i,
              where, err);
        for (int k = 0; k < 3 && cases[i].needles[k]; k++)
            CHECK(strstr(err, cases[i].needles[k]) != NULL,
                  "file case %zu: message contains \"%s\" (%s)", i, cases[i].needles[k],
                  err);
    }

    /* Whole-config validation: lock wait vs timeout, jwt_alg, log_level,
     * public_base_url. */
    static const struct {
        const char *text, *needle;
    } vals[] = {
        {"db_lock_wait = 10\n", "db_lock_wait (10) must be below db_timeout (10)"},
        {"db_timeout = 3\n", "db_lock_wait (5) must be below db_timeout (3)"},
        {"jwt_alg = none\n", "jwt_alg"},
        {"jwt_alg = hs256\n", "jwt_alg"},
        {"jwt_alg = RS512\n", "jwt_alg"},
        {"jwt_alg = HS384\n", "jwt_alg"},
        {"jwt_alg =\n", "jwt_alg"},
        {"log_level = verbose\n", "log_level"},
        {"log_level =\n", "log_level"},
        {"log_level = INFO\n", "log_level"},
        {"public_base_url = ftp://pay.example\n", "public_base_url"},
        {"public_base_url = pay.example\n", "public_base_url"},
        {"public_base_url = 127.0.0.1:8080\n", "public_base_url"},
        {"public_base_url =\n", "public_base_url"},
        {"public_base_url = HTTP:/x\n", "public_base_url"},
        {"public_base_url = http://pay.example\n", "is plain HTTP"},
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct config c;
        char          err[512] = "";
        clear_env();
        if (strstr(vals[i].text, "public_base_url") != NULL)
            unsetenv("PAY_PUBLIC_BASE_URL"); /* the file's value is the one tested */
        const char *path = write_file(vals[i].text);
        CHECK(config_load(&c, path, err, sizeof(err)) == -1, "refuses %.40s", vals[i].text);
        CHECK(strstr(err, vals[i].needle) != NULL, "message names %s (%s)",
              vals[i].needle, err);
    }

    /* Missing file. */
    struct config c;
    char          err[512] = "";
    char          missing[128];
    snprintf(missing, sizeof(missing), "%s/does-not-exist.conf", dir);
    CHECK(config_load(&c, missing, err, sizeof(err)) == -1, "a missing file is an error");
    CHECK(strstr(err, missing) != NULL, "missing file: message names the path (%s)", err);
    CHECK(strstr(err, "No such file") != NULL, "missing file: message gives the reason (%s)",
          err);
    /* A directory is not a config file. */
    err[0] = '\0';
    CHECK(config_load(&c, dir, err, sizeof(err)) == -1 && err[0] != '\0',
          "a directory as config file is an error (%s)", err);

    /* A tiny error buffer is never overrun and stays terminated. */
    clear_env();
    const char *path = write_file("an_extremely_long_unknown_key_name_here = 1\n");
    char        small[16];
    memset(small, 'Z', sizeof(small));
    CHECK(config_load(&c, path, small, 8) == -1, "small err buffer: still refused");
    CHECK(memchr(small, '\0', 8) != NULL && small[8] == 'Z',
          "small err buffer: truncated within its size");
}

int
main(void)
{
    snprintf(dir, sizeof(dir), "%s", "/tmp/pay-test-config-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_file();
    test_env();
    test_https_rule();
    test_file_errors();

    for (int i = 0; i < nfiles && i < 64; i++)
        unlink(files[i]);
    rmdir(dir);
    return TEST_DONE();
}
