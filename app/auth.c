/*
 * Bearer JWT verification and issuance on top of libjwt 1.10.2 (the only
 * file that includes <jwt.h>; see DEPS.md section 4).
 *
 * Key decision: libjwt 1.10.2 is trusted only for the signature check.
 * Everything it gets wrong or leaves out is done around it: the token's
 * shape and header are checked before jwt_decode() (its "alg" compared
 * byte for byte with the configured one: libjwt matches alg
 * case-insensitively and would accept an HS256 token HMAC'd with our RS256
 * public key), the key handed to jwt_decode() is never NULL or empty (that
 * disables the check), and the claims are read afterwards from the signed
 * payload with app/json.c (auth_claims.c), never through libjwt's getters.
 * Scope words come from the configuration (auth_settings.scopes).
 *
 * Lifetime: keys and settings are process-lifetime malloc'd state owned by
 * auth_init()/auth_shutdown(). A verification puts everything it returns
 * in the request arena; the jwt_t is released by an arena defer registered
 * right after jwt_decode().
 */
#include "auth.h"
#include "arena.h"
#include "auth_claims.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>

#define AUTH_MAX_KEY_FILE  (64 * 1024)  /* larger secret/PEM files are refused */

/* The loaded settings; key == NULL means "not initialised": refuse all. */
struct auth_state {
    jwt_alg_t          alg;       /* JWT_ALG_HS256 or JWT_ALG_RS256 */
    unsigned char     *key;       /* HS256 secret or RS256 public key PEM */
    size_t             key_len;
    unsigned char     *priv;      /* RS256 private key PEM, or NULL */
    size_t             priv_len;
    struct auth_policy policy;    /* alg name (static), iss, aud, scopes: malloc'd */
    struct auth_scope  scopes[AUTH_MAX_SCOPES]; /* policy.scopes; names malloc'd */
};

static struct auth_state auth_st;

/* Client-safe reasons (static strings); the claim ones are in auth_claims.c. */
static const char AUTH_WHY_MISSING[]    = "missing bearer token";
static const char AUTH_WHY_SCHEME[]     = "not a bearer token";
static const char AUTH_WHY_TOO_LONG[]   = "token too long";
static const char AUTH_WHY_ALG[]        = "unexpected alg";
static const char AUTH_WHY_SIGNATURE[]  = "bad signature";
static const char AUTH_WHY_NO_TENANCY[] = "token has no contractOwnerIds";
static const char AUTH_WHY_UNCONFIG[]   = "authentication not configured";

static void auth_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
auth_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void
auth_state_free(struct auth_state *k)
{
    free(k->key);
    free(k->priv);
    free((char *)k->policy.issuer);
    free((char *)k->policy.audience);
    for (size_t i = 0; i < k->policy.nscopes; i++)
        free((char *)k->scopes[i].name);
    memset(k, 0, sizeof(*k));
}

/* ---- verification ------------------------------------------------------- */

static void
auth_jwt_free(void *j)
{
    jwt_free(j);
}

static enum auth_rc
auth_verify_with(const struct auth_state *k, struct arena *a,
                 const char *header, time_t now, struct principal *p,
                 struct auth_times *t, const char **why)
{
    const char  *tok, *payload;
    size_t       payload_len;
    jwt_t       *j = NULL;
    enum auth_rc rc;

    if (header == NULL) {
        *why = AUTH_WHY_MISSING;
        return AUTH_MISSING;
    }
    /* bound the length first: libjwt alloca()s each segment's length */
    if (strnlen(header, AUTH_MAX_HEADER + 1) > AUTH_MAX_HEADER) {
        *why = AUTH_WHY_TOO_LONG;
        return AUTH_INVALID;
    }
    if (strncasecmp(header, "Bearer ", 7) != 0) {
        *why = AUTH_WHY_SCHEME;
        /* Another scheme (Basic, a bare token, nothing) is no bearer token
         * at all: RFC 6750 §3.1 answers it without an error code. */
        return strncasecmp(header, "Bearer", 6) == 0 ? AUTH_INVALID : AUTH_MISSING;
    }
    if (k->key == NULL || k->key_len == 0) {
        *why = AUTH_WHY_UNCONFIG;
        return AUTH_INVALID;
    }
    tok = header + 7;
    rc = auth_claims_shape(a, tok, &k->policy, &payload, &payload_len, why);
    if (rc != AUTH_OK)
        return rc;

    /* libjwt only checks the signature; the claims are read by
     * auth_claims_read() from the very bytes that were signed. */
    if (jwt_decode(&j, tok, k->key, (int)k->key_len) != 0 || j == NULL) {
        *why = AUTH_WHY_SIGNATURE;
        return AUTH_INVALID;
    }
    arena_defer(a, auth_jwt_free, j);
    if (jwt_get_alg(j) != k->alg) {
        *why = AUTH_WHY_ALG;
        return AUTH_INVALID;
    }

    rc = auth_claims_read(a, payload, payload_len, &k->policy, now, p, t, why);
    if (rc != AUTH_OK)
        return rc;
    if (p->nowners == 0 && !p->all_owners) {
        *why = AUTH_WHY_NO_TENANCY;
        return AUTH_NO_TENANCY;
    }
    *why = NULL;
    return AUTH_OK;
}

/* ---- verified-token cache ------------------------------------------------
 * A client sends the same token with every request, and verifying it
 * (base64, JSON, HMAC or RSA) costs more than the rest of a small request.
 * Each process keeps the last AUTH_CACHE tokens that verified, keyed by the
 * exact header bytes: a token that differs in any byte misses. A hit only
 * re-checks the time claims against the clock. Cleared whenever the keys
 * change. */

#define AUTH_CACHE 64

struct auth_cached {
    char             *header;  /* NULL: empty slot */
    size_t            len;
    struct auth_times t;
    struct principal  p;       /* sub and owners malloc'd */
};

static struct auth_cached auth_cache[AUTH_CACHE];

static void
auth_cached_free(struct auth_cached *c)
{
    free(c->header);
    free((char *)c->p.sub);
    free(c->p.owners);
}

static void
auth_cache_clear(void)
{
    for (size_t i = 0; i < AUTH_CACHE; i++)
        auth_cached_free(&auth_cache[i]);
    memset(auth_cache, 0, sizeof(auth_cache));
}

static struct auth_cached *
auth_cache_slot(const char *header, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)header[i]) * 1099511628211ULL;
    return &auth_cache[h % AUTH_CACHE];
}

static void
auth_cache_put(struct auth_cached *c, const char *header, size_t len,
               const struct principal *p, const struct auth_times *t)
{
    struct auth_cached n = { .len = len, .t = *t, .p = *p };

    n.header = malloc(len + 1);
    n.p.sub = strdup(p->sub);
    n.p.owners = malloc((p->nowners ? p->nowners : 1) * sizeof(int64_t));
    if (n.header == NULL || n.p.sub == NULL || n.p.owners == NULL) {
        auth_cached_free(&n);
        return; /* no cache entry: the next request verifies again */
    }
    memcpy(n.header, header, len + 1);
    if (p->nowners)
        memcpy(n.p.owners, p->owners, p->nowners * sizeof(int64_t));
    auth_cached_free(c);
    *c = n;
}

enum auth_rc
auth_verify_bearer(struct arena *a, const char *header, time_t now,
                   struct principal *p, const char **why)
{
    const char        *reason = NULL;
    enum auth_rc       rc;
    struct auth_times  t;
    size_t             len = header ? strnlen(header, AUTH_MAX_HEADER + 1) : 0;
    struct auth_cached *c = header && len <= AUTH_MAX_HEADER
                                ? auth_cache_slot(header, len) : NULL;

    memset(p, 0, sizeof(*p));
    if (c != NULL && c->header != NULL && c->len == len &&
        memcmp(c->header, header, len) == 0 &&
        auth_claims_times(&c->t, now, &reason) == AUTH_OK) {
        *p = c->p;
        p->sub = arena_strdup(a, c->p.sub);
        p->owners = ARENA_NEW(a, int64_t, c->p.nowners ? c->p.nowners : 1);
        if (c->p.nowners)
            memcpy(p->owners, c->p.owners, c->p.nowners * sizeof(int64_t));
        if (why != NULL)
            *why = NULL;
        return AUTH_OK;
    }
    rc = auth_verify_with(&auth_st, a, header, now, p, &t, &reason);
    if (rc == AUTH_MISSING || rc == AUTH_INVALID)
        memset(p, 0, sizeof(*p));
    if (rc == AUTH_OK && c != NULL)
        auth_cache_put(c, header, len, p, &t);
    if (why != NULL)
        *why = reason;
    return rc;
}

const char *
auth_scope_name(unsigned bits)
{
    const struct auth_policy *pol = &auth_st.policy;

    for (size_t i = 0; i < pol->nscopes; i++)
        if (pol->scopes[i].bits == bits)
            return pol->scopes[i].name;
    for (size_t i = 0; i < pol->nscopes; i++)
        if ((pol->scopes[i].bits & bits) == bits)
            return pol->scopes[i].name;
    return NULL;
}

/* ---- issuance ----------------------------------------------------------- */

static char *
auth_issue_with(const struct auth_state *k, const char *sub,
                const char *scope, const int64_t *owners, size_t n, long ttl,
                time_t now, char *err, size_t errlen)
{
    jwt_t               *j = NULL;
    char                *owners_json = NULL, *tok = NULL;
    const unsigned char *key;
    size_t               key_len, i, off;

    key = k->alg == JWT_ALG_HS256 ? k->key : k->priv;
    key_len = k->alg == JWT_ALG_HS256 ? k->key_len : k->priv_len;
    if (k->key == NULL || key == NULL) {
        auth_err(err, errlen, k->key == NULL ? "auth_init has not been called"
                                             : "no jwt_private_key_file configured");
        return NULL;
    }
    if (sub == NULL || !auth_sub_valid(sub)) {
        auth_err(err, errlen, "sub must be 1..%d printable ASCII bytes",
                 AUTH_MAX_SUB);
        return NULL;
    }
    if (n > AUTH_MAX_OWNERS || (n > 0 && owners == NULL)) {
        auth_err(err, errlen, "at most %d contract owners", AUTH_MAX_OWNERS);
        return NULL;
    }
    if (ttl <= 0 || now < 0 || (intmax_t)now > (intmax_t)(LONG_MAX - ttl)) {
        auth_err(err, errlen, "ttl must be positive and now + ttl a long");
        return NULL;
    }

    if (n > 0) {
        /* {"contractOwnerIds":[...]}: at most 20 bytes per id plus a comma */
        owners_json = malloc(n * 21 + 32);
        if (owners_json == NULL) {
            auth_err(err, errlen, "out of memory");
            goto cleanup;
        }
        off = (size_t)sprintf(owners_json, "{\"contractOwnerIds\":[");
        for (i = 0; i < n; i++) {
            if (owners[i] <= 0) {
                auth_err(err, errlen, "contract owner ids must be positive");
                goto cleanup;
            }
            off += (size_t)sprintf(owners_json + off, "%s%" PRId64,
                                   i ? "," : "", owners[i]);
        }
        memcpy(owners_json + off, "]}", 3);
    }

    if (jwt_new(&j) != 0 || j == NULL ||
        jwt_set_alg(j, k->alg, key, (int)key_len) != 0 ||
        jwt_add_grant(j, "sub", sub) != 0 ||
        (scope != NULL && jwt_add_grant(j, "scope", scope) != 0) ||
        (owners_json != NULL && jwt_add_grants_json(j, owners_json) != 0) ||
        jwt_add_grant_int(j, "iat", (long)now) != 0 ||
        jwt_add_grant_int(j, "nbf", (long)now) != 0 ||
        jwt_add_grant_int(j, "exp", (long)now + ttl) != 0 ||
        (k->policy.issuer != NULL && jwt_add_grant(j, "iss", k->policy.issuer) != 0) ||
        (k->policy.audience != NULL && jwt_add_grant(j, "aud", k->policy.audience) != 0)) {
        auth_err(err, errlen, "cannot build the token");
        goto cleanup;
    }
    tok = jwt_encode_str(j);
    if (tok == NULL)
        auth_err(err, errlen, "cannot sign the token");

cleanup:
    if (j != NULL)
        jwt_free(j);
    free(owners_json);
    return tok;
}

char *
auth_issue(const char *sub, const char *scope, const int64_t *owners,
           size_t n, long ttl, time_t now, char *err, size_t errlen)
{
    return auth_issue_with(&auth_st, sub, scope, owners, n, ttl, now, err,
                           errlen);
}

/* ---- configuration ------------------------------------------------------ */

/*
 * Reads a whole (small) file into a NUL-terminated malloc'd buffer; what is
 * the setting name used in messages.
 */
static int
auth_read_file(const char *what, const char *path, unsigned char **out,
               size_t *outlen, char *err, size_t errlen)
{
    FILE          *f;
    unsigned char *buf;
    size_t         n;
    int            bad;

    f = fopen(path, "rb");
    if (f == NULL) {
        auth_err(err, errlen, "cannot read %s %s: %s", what, path,
                 strerror(errno));
        return -1;
    }
    buf = malloc(AUTH_MAX_KEY_FILE + 1);
    if (buf == NULL) {
        fclose(f);
        auth_err(err, errlen, "out of memory reading %s", what);
        return -1;
    }
    n = fread(buf, 1, AUTH_MAX_KEY_FILE + 1, f);
    bad = ferror(f);
    fclose(f);
    if (bad || n > AUTH_MAX_KEY_FILE) {
        if (bad)
            auth_err(err, errlen, "cannot read %s %s: read error", what, path);
        else
            auth_err(err, errlen, "%s %s is larger than %d bytes", what, path,
                     AUTH_MAX_KEY_FILE);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

static int
auth_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int
auth_load_hs256(struct auth_state *k, const struct auth_settings *s,
                char *err, size_t errlen)
{
    const char *what = "jwt_secret";

    if (auth_set(s->secret) && auth_set(s->secret_file)) {
        auth_err(err, errlen, "set only one of jwt_secret and jwt_secret_file");
        return -1;
    }
    if (auth_set(s->secret)) {
        k->key_len = strlen(s->secret);
        k->key = (unsigned char *)strdup(s->secret);
        if (k->key == NULL) {
            auth_err(err, errlen, "out of memory");
            return -1;
        }
    } else if (auth_set(s->secret_file)) {
        what = "jwt_secret_file";
        if (auth_read_file(what, s->secret_file, &k->key, &k->key_len, err,
                           errlen) != 0)
            return -1;
        /* editors add a final newline; it is not part of the secret */
        if (k->key_len > 0 && k->key[k->key_len - 1] == '\n')
            k->key[--k->key_len] = '\0';
        if (k->key_len > 0 && k->key[k->key_len - 1] == '\r')
            k->key[--k->key_len] = '\0';
    } else {
        auth_err(err, errlen, "HS256 needs jwt_secret or jwt_secret_file");
        return -1;
    }
    if (k->key_len < AUTH_MIN_SECRET) {
        auth_err(err, errlen, "%s must be at least %d bytes", what,
                 AUTH_MIN_SECRET);
        return -1;
    }
    return 0;
}

static int
auth_load_rs256(struct auth_state *k, const struct auth_settings *s,
                char *err, size_t errlen)
{
    if (!auth_set(s->public_key_file)) {
        auth_err(err, errlen, "RS256 needs jwt_public_key_file");
        return -1;
    }
    if (auth_read_file("jwt_public_key_file", s->public_key_file, &k->key,
                       &k->key_len, err, errlen) != 0)
        return -1;
    /* a private key here would make every verification fail silently */
    if (strstr((char *)k->key, "-----BEGIN PUBLIC KEY-----") == NULL &&
        strstr((char *)k->key, "-----BEGIN RSA PUBLIC KEY-----") == NULL) {
        auth_err(err, errlen, "jwt_public_key_file %s is not a PEM public key",
                 s->public_key_file);
        return -1;
    }
    if (auth_set(s->private_key_file)) {
        if (auth_read_file("jwt_private_key_file", s->private_key_file,
                           &k->priv, &k->priv_len, err, errlen) != 0)
            return -1;
        if (strstr((char *)k->priv, "PRIVATE KEY-----") == NULL) {
            auth_err(err, errlen,
                     "jwt_private_key_file %s is not a PEM private key",
                     s->private_key_file);
            return -1;
        }
    }
    return 0;
}

/* Copies the scope table: names non-empty, without spaces, distinct. */
static int
auth_load_scopes(struct auth_state *k, const struct auth_settings *s,
                 char *err, size_t errlen)
{
    if (s->nscopes > AUTH_MAX_SCOPES || (s->nscopes > 0 && s->scopes == NULL)) {
        auth_err(err, errlen, "at most %d scopes", AUTH_MAX_SCOPES);
        return -1;
    }
    k->policy.scopes = k->scopes;
    for (size_t i = 0; i < s->nscopes; i++) {
        const char *name = s->scopes[i].name;

        if (!auth_set(name) || strchr(name, ' ') != NULL) {
            auth_err(err, errlen, "scope %zu: a name is one word", i);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(k->scopes[j].name, name) == 0) {
                auth_err(err, errlen, "scope %s is named twice", name);
                return -1;
            }
        }
        k->scopes[i] = s->scopes[i];
        if ((k->scopes[i].name = strdup(name)) == NULL) {
            auth_err(err, errlen, "out of memory");
            return -1;
        }
        k->policy.nscopes = i + 1;
    }
    return 0;
}

/* Signs and verifies one token: proves the private key matches the public. */
static int
auth_self_test(const struct auth_state *k, char *err, size_t errlen)
{
    char  *tok;
    jwt_t *j = NULL;
    int    ok;

    tok = auth_issue_with(k, "auth-self-test", NULL, NULL, 0, 60, 1, err,
                          errlen);
    if (tok == NULL)
        return -1;
    ok = jwt_decode(&j, tok, k->key, (int)k->key_len) == 0 && j != NULL &&
         jwt_get_alg(j) == k->alg;
    jwt_free(j);
    free(tok);
    if (!ok) {
        auth_err(err, errlen, "jwt_private_key_file does not match "
                              "jwt_public_key_file");
        return -1;
    }
    return 0;
}

int
auth_init(const struct auth_settings *s, char *err, size_t errlen)
{
    struct auth_state k;

    memset(&k, 0, sizeof(k));
    if (s == NULL || s->alg == NULL) {
        auth_err(err, errlen, "jwt_alg must be HS256 or RS256");
        return -1;
    }
    if (strcmp(s->alg, "HS256") == 0) {
        k.alg = JWT_ALG_HS256;
        k.policy.alg_name = "HS256";
        if (auth_load_hs256(&k, s, err, errlen) != 0)
            goto cleanup;
    } else if (strcmp(s->alg, "RS256") == 0) {
        k.alg = JWT_ALG_RS256;
        k.policy.alg_name = "RS256";
        if (auth_load_rs256(&k, s, err, errlen) != 0)
            goto cleanup;
    } else {
        auth_err(err, errlen, "jwt_alg must be HS256 or RS256");
        goto cleanup;
    }
    if (k.key_len > INT_MAX) {
        auth_err(err, errlen, "jwt key too large");
        goto cleanup;
    }
    if (auth_set(s->issuer) && (k.policy.issuer = strdup(s->issuer)) == NULL)
        goto oom;
    if (auth_set(s->audience) &&
        (k.policy.audience = strdup(s->audience)) == NULL)
        goto oom;
    if (auth_load_scopes(&k, s, err, errlen) != 0)
        goto cleanup;
    if (k.priv != NULL && auth_self_test(&k, err, errlen) != 0)
        goto cleanup;

    auth_state_free(&auth_st);
    auth_st = k;
    auth_st.policy.scopes = auth_st.scopes;
    auth_cache_clear();
    return 0;

oom:
    auth_err(err, errlen, "out of memory");
cleanup:
    auth_state_free(&k);
    return -1;
}

void
auth_shutdown(void)
{
    auth_cache_clear();
    auth_state_free(&auth_st);
}
