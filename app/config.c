/*
 * The config key table: name, type, offset into struct config, default.
 * Each key may come from the file and be overridden by PAY_<NAME> in the
 * environment. Unknown keys and bad values are start-up errors.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum ktype { K_STR, K_INT, K_OCTAL };

struct key {
    const char *name;
    enum ktype  type;
    size_t      off;
    const char *def;
    long        min, max;
};

#define S(name, def)             {#name, K_STR, offsetof(struct config, name), def, 0, 0}
#define I(name, def, lo, hi)     {#name, K_INT, offsetof(struct config, name), def, lo, hi}

/*  key                        default                     range            */
static const struct key keys[] = {
    S(socket,                  "/run/pay-api/fcgi.sock"),
    {"socket_mode", K_OCTAL, offsetof(struct config, socket_mode), "0660", 0, 0777},
    I(workers,                 "0",                        0, 256),
    I(max_requests,            "0",                        0, 1000000000),
    I(shutdown_grace,          "10",                       1, 600),
    S(db_host,                 "localhost"),
    I(db_port,                 "3306",                     1, 65535),
    S(db_socket,               ""),
    S(db_user,                 "pay"),
    S(db_password,             ""),
    S(db_name,                 "pay"),
    I(db_timeout,              "10",                       1, 3600),
    I(db_lock_wait,            "5",                        1, 3600),
    I(db_causal_reads,         "1",                        0, 15),
    S(jwt_alg,                 "HS256"),
    S(jwt_secret,              ""),
    S(jwt_secret_file,         ""),
    S(jwt_public_key_file,     ""),
    S(jwt_private_key_file,    ""),
    S(jwt_issuer,              ""),
    S(jwt_audience,            ""),
    S(public_base_url,         ""),
    I(allow_insecure_http,     "0",                        0, 1),
    S(log_level,               "info"),
    S(log_file,                ""),
    I(collectors,              "1",                        0, 16),
    I(collector_poll_ms,       "500",                      10, 60000),
    I(collector_lease_ms,      "30000",                    100, 3600000),
    I(reconcile_ms,            "5000",                     10, 86400000),
    I(refund_expiry_days,      "7",                        1, 3650),
    I(autocollect_interval,    "60",                       1, 86400),
    I(sandbox_step_ms,         "2000",                     1, 3600000),
    S(sandbox_ca_file,         ""),
    S(webhook_secret,          ""),
    S(gocardless_credentials,  ""),
    S(stripe_credentials,      ""),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
set(struct config *c, const struct key *k, const char *v, const char *where,
    char *err, size_t errlen)
{
    char *slot = (char *)c + k->off;
    if (k->type == K_STR) {
        char *dup = strdup(v);
        if (dup == NULL)
            return -1;
        free(*(char **)slot); /* the default or the file's value */
        *(const char **)slot = dup;
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, k->type == K_OCTAL ? 8 : 10);
    if (errno || end == v || *end != '\0' || n < k->min || n > k->max) {
        snprintf(err, errlen, "%s: %s must be %s between %ld and %ld (got \"%.40s\")",
                 where, k->name, k->type == K_OCTAL ? "an octal mode" : "an integer",
                 k->min, k->max, v);
        return -1;
    }
    *(int *)slot = (int)n;
    return 0;
}

static const struct key *
find(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static int
load_file(struct config *c, const char *path, char *err, size_t errlen)
{
    FILE       *f = fopen(path, "r");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "cannot read config %s: %s", path,
                 f == NULL ? strerror(errno) : "not a regular file");
        if (f != NULL)
            fclose(f);
        return -1;
    }
    char line[1024], where[300];
    int  lineno = 0, rc = 0;
    while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        snprintf(where, sizeof(where), "%s:%d", path, lineno);
        char *s = trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s: expected key = value", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char            *name = trim(s), *value = trim(eq + 1);
        const struct key *k = find(name);
        if (k == NULL) {
            snprintf(err, errlen, "%s: unknown key \"%.60s\"", where, name);
            rc = -1;
            break;
        }
        rc = set(c, k, value, where, err, errlen);
    }
    if (rc == 0 && ferror(f)) {
        snprintf(err, errlen, "cannot read config %s", path);
        rc = -1;
    }
    fclose(f);
    return rc;
}

/*
 * public_base_url is where clients and browsers reach the service; links
 * and the pages' cookies and Origin check are built from it. It is
 * required, and https:// unless allow_insecure_http = 1 (a development
 * stack on loopback: the pages' CSRF cookie then loses "Secure").
 */
static int
check_base_url(struct config *c, char *err, size_t errlen)
{
    const char *u = c->public_base_url;
    size_t      scheme = strncmp(u, "https://", 8) == 0  ? 8
                         : strncmp(u, "http://", 7) == 0 ? 7
                                                         : 0;
    if (*u == '\0') {
        snprintf(err, errlen, "public_base_url is not set: give the https:// address"
                 " clients use, e.g. public_base_url = https://pay.example.com");
        return -1;
    }
    if (scheme == 0 || u[scheme] == '\0' || u[scheme] == '/') {
        snprintf(err, errlen, "public_base_url must be an https:// URL with a host"
                 " (got \"%.60s\")", u);
        return -1;
    }
    if (scheme == 7 && !c->allow_insecure_http) {
        snprintf(err, errlen, "public_base_url %.60s is plain HTTP: bearer tokens and"
                 " payment pages must only travel over TLS, so use https://;"
                 " allow_insecure_http = 1 permits http:// for a development stack"
                 " only (cookies then lose Secure)", u);
        return -1;
    }
    size_t n = strlen(u);
    if (u[n - 1] == '/')
        ((char *)u)[n - 1] = '\0';
    return 0;
}

int
config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NKEYS; i++)
        if (set(c, &keys[i], keys[i].def, "default", err, errlen) != 0)
            return -1;
    if (path != NULL && *path != '\0' && load_file(c, path, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < NKEYS; i++) {
        char env[64];
        snprintf(env, sizeof(env), "PAY_%s", keys[i].name);
        for (char *p = env; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        const char *v = getenv(env);
        if (v != NULL && set(c, &keys[i], v, env, err, errlen) != 0)
            return -1;
    }
    if (c->workers == 0) {
        /* Four per core: a worker waiting for its commit's fsync (or any
         * database round trip) holds its core's turn for nothing, and only
         * commits waiting at the same time share an fsync (group commit). */
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = (int)(n > 0 ? 4 * n : 4);
    }
    if (c->db_lock_wait >= c->db_timeout) {
        snprintf(err, errlen, "db_lock_wait (%d) must be below db_timeout (%d)",
                 c->db_lock_wait, c->db_timeout);
        return -1;
    }
    if (strcmp(c->jwt_alg, "HS256") != 0 && strcmp(c->jwt_alg, "RS256") != 0) {
        snprintf(err, errlen, "jwt_alg must be HS256 or RS256 (got \"%.20s\")", c->jwt_alg);
        return -1;
    }
    if (check_base_url(c, err, errlen) != 0)
        return -1;
    if (c->log_level[0] == '\0' || (strcmp(c->log_level, "error") && strcmp(c->log_level, "warn") &&
        strcmp(c->log_level, "info") && strcmp(c->log_level, "debug"))) {
        snprintf(err, errlen, "log_level must be error, warn, info or debug");
        return -1;
    }
    return 0;
}
