/*
 * Bearer JWT verification and issuance on top of libjwt 1.10.2 (the only
 * file that includes <jwt.h>; see DEPS.md section 4).
 *
 * Key decision: libjwt 1.10.2 is trusted only for the signature check.
 * Everything it gets wrong or leaves out is done here first or after:
 * the header is decoded and its "alg" compared byte for byte with the
 * configured one before jwt_decode() (libjwt matches alg case-insensitively
 * and would accept an HS256 token HMAC'd with our RS256 public key), the key
 * handed to jwt_decode() is never NULL or empty (that disables the check),
 * and exp/nbf/iss/aud/sub/scope/contractOwnerIds are validated by hand from
 * the claims' JSON text, because jwt_get_grant_int() turns "123" and 1.5
 * into 0 and a missing claim into -1.
 *
 * Lifetime: keys and settings are process-lifetime malloc'd state owned by
 * auth_init()/auth_shutdown(). A verification puts everything it returns
 * in the request arena; the jwt_t is released by an arena defer registered
 * right after jwt_decode(), other library buffers are freed before return.
 */
#include "auth.h"
#include "arena.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jwt.h>
#include <yajl/yajl_parse.h>

#define AUTH_MAX_KEY_FILE  (64 * 1024)  /* larger secret/PEM files are refused */
#define AUTH_MAX_JSON_DEPTH 16          /* nesting allowed in the JOSE header */

/* The loaded settings; key == NULL means "not initialised": refuse all. */
struct auth_state {
    jwt_alg_t      alg;       /* JWT_ALG_HS256 or JWT_ALG_RS256 */
    const char    *alg_name;  /* "HS256" or "RS256", static */
    unsigned char *key;       /* HS256 secret or RS256 public key PEM */
    size_t         key_len;
    unsigned char *priv;      /* RS256 private key PEM, or NULL */
    size_t         priv_len;
    char          *issuer;    /* NULL when iss is not checked */
    char          *audience;  /* NULL when aud is not checked */
};

static struct auth_state auth_st;

/* Client-safe reasons for AUTH_INVALID and friends (static strings). */
static const char AUTH_WHY_MISSING[]    = "missing bearer token";
static const char AUTH_WHY_SCHEME[]     = "not a bearer token";
static const char AUTH_WHY_TOO_LONG[]   = "token too long";
static const char AUTH_WHY_MALFORMED[]  = "malformed token";
static const char AUTH_WHY_ALG[]        = "unexpected alg";
static const char AUTH_WHY_SIGNATURE[]  = "bad signature";
static const char AUTH_WHY_TYP[]        = "unsupported typ (only JWT is accepted)";
static const char AUTH_WHY_NO_EXP[]     = "missing exp";
static const char AUTH_WHY_BAD_EXP[]    = "invalid exp";
static const char AUTH_WHY_EXPIRED[]    = "token expired";
static const char AUTH_WHY_BAD_NBF[]    = "invalid nbf";
static const char AUTH_WHY_NOT_YET[]    = "token not yet valid";
static const char AUTH_WHY_ISSUER[]     = "wrong issuer";
static const char AUTH_WHY_AUDIENCE[]   = "wrong audience";
static const char AUTH_WHY_NO_SUB[]     = "missing sub";
static const char AUTH_WHY_BAD_SUB[]    = "invalid sub";
static const char AUTH_WHY_BAD_SCOPE[]  = "invalid scope";
static const char AUTH_WHY_BAD_OWNERS[] = "invalid contractOwnerIds";
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
    free(k->issuer);
    free(k->audience);
    memset(k, 0, sizeof(*k));
}

/* ---- small parsers ------------------------------------------------------ */

/* Parses a plain JSON integer -?(0|[1-9][0-9]*) that fits in int64_t. */
static int
auth_parse_i64(const char *s, size_t n, int64_t *v)
{
    uint64_t u = 0;
    size_t   i = 0;
    int      neg = 0;

    if (n > 0 && s[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == n || (s[i] == '0' && n - i > 1))
        return -1;
    for (; i < n; i++) {
        unsigned d;

        if (s[i] < '0' || s[i] > '9')
            return -1;
        d = (unsigned)(s[i] - '0');
        if (u > (UINT64_MAX - d) / 10)
            return -1;
        u = u * 10 + d;
    }
    if (neg) {
        if (u > (uint64_t)INT64_MAX + 1)
            return -1;
        *v = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else {
        if (u > (uint64_t)INT64_MAX)
            return -1;
        *v = (int64_t)u;
    }
    return 0;
}

static int
auth_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/*
 * Decodes unpadded base64url s[0..n). Only the canonical encoding is
 * accepted (unused low bits of the last character must be zero), so one
 * signature has exactly one spelling. With a == NULL it only validates.
 */
static int
auth_b64url_decode(struct arena *a, const char *s, size_t n,
                   unsigned char **out, size_t *outlen)
{
    unsigned char *o = NULL;
    uint32_t       acc = 0;
    unsigned       bits = 0;
    size_t         i, k = 0;

    if (n % 4 == 1)
        return -1;
    if (a != NULL)
        o = arena_alloc(a, n / 4 * 3 + 3);
    for (i = 0; i < n; i++) {
        int v = auth_b64_value((unsigned char)s[i]);

        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o != NULL)
                o[k] = (unsigned char)(acc >> bits);
            k++;
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return -1;
    if (out != NULL)
        *out = o;
    if (outlen != NULL)
        *outlen = k;
    return 0;
}

/*
 * JOSE header scan with yajl's callback parser: the top level must be an
 * object, "alg" must occur once as a string, "crit" (extensions we would
 * have to understand, RFC 7515 4.1.11) is refused. Any callback returning 0
 * cancels the parse, which the caller treats as a malformed token.
 */
struct auth_hdr {
    int         depth;
    int         at_alg;     /* the current depth-1 value belongs to "alg" */
    int         at_typ;     /* ... to "typ" */
    int         nalg;
    const char *alg;        /* points into the decoded header */
    size_t      alg_len;
    const char *typ;        /* a string "typ", or NULL */
    size_t      typ_len;
};

static int
auth_hdr_value(struct auth_hdr *h, int is_string)
{
    if (h->depth == 0)
        return 0;                       /* top level must be an object */
    if (h->depth == 1 && (h->at_alg || h->at_typ)) {
        int alg = h->at_alg;
        h->at_alg = h->at_typ = 0;
        return alg ? is_string : 1;
    }
    return 1;
}

static int
auth_hdr_null(void *ctx)
{
    return auth_hdr_value(ctx, 0);
}

static int
auth_hdr_bool(void *ctx, int v)
{
    (void)v;
    return auth_hdr_value(ctx, 0);
}

static int
auth_hdr_number(void *ctx, const char *s, size_t n)
{
    (void)s;
    (void)n;
    return auth_hdr_value(ctx, 0);
}

static int
auth_hdr_string(void *ctx, const unsigned char *s, size_t n)
{
    struct auth_hdr *h = ctx;

    if (h->depth == 1 && h->at_alg) {
        h->alg = (const char *)s;
        h->alg_len = n;
    }
    if (h->depth == 1 && h->at_typ) {
        h->typ = (const char *)s;
        h->typ_len = n;
    }
    return auth_hdr_value(h, 1);
}

static int
auth_hdr_start(void *ctx)
{
    struct auth_hdr *h = ctx;

    if (h->depth > 0 && !auth_hdr_value(h, 0))
        return 0;
    if (++h->depth > AUTH_MAX_JSON_DEPTH)
        return 0;
    return 1;
}

static int
auth_hdr_start_array(void *ctx)
{
    struct auth_hdr *h = ctx;

    if (h->depth == 0)
        return 0;
    return auth_hdr_start(ctx);
}

static int
auth_hdr_key(void *ctx, const unsigned char *k, size_t n)
{
    struct auth_hdr *h = ctx;

    if (h->depth != 1)
        return 1;
    if (n == 3 && memcmp(k, "alg", 3) == 0) {
        h->at_alg = 1;
        return ++h->nalg == 1;          /* duplicate "alg" → refuse */
    }
    if (n == 3 && memcmp(k, "typ", 3) == 0)
        h->at_typ = 1;
    if (n == 4 && memcmp(k, "crit", 4) == 0)
        return 0;
    return 1;
}

static int
auth_hdr_end(void *ctx)
{
    struct auth_hdr *h = ctx;

    h->depth--;
    return 1;
}

static const yajl_callbacks auth_hdr_cbs = {
    .yajl_null        = auth_hdr_null,
    .yajl_boolean     = auth_hdr_bool,
    .yajl_number      = auth_hdr_number,
    .yajl_string      = auth_hdr_string,
    .yajl_start_map   = auth_hdr_start,
    .yajl_map_key     = auth_hdr_key,
    .yajl_end_map     = auth_hdr_end,
    .yajl_start_array = auth_hdr_start_array,
    .yajl_end_array   = auth_hdr_end,
};

/*
 * Array scan for claim values: a flat JSON array of at most AUTH_MAX_OWNERS
 * positive integers (want_ints, for contractOwnerIds; collected in ints) or
 * of strings (for aud; found is set when one equals want). Any other shape
 * cancels the parse. yajl's number callback gives the raw text, so 1.0 and
 * 1e3 are told apart from 1000.
 */
struct auth_arr {
    struct arena *a;
    int           depth;
    int           want_ints;
    int64_t      *ints;     /* integer mode */
    size_t        n;
    size_t        cap;
    const char   *want;     /* string mode */
    int           found;
};

static int
auth_arr_reject(void *ctx)
{
    (void)ctx;
    return 0;
}

static int
auth_arr_bool(void *ctx, int v)
{
    (void)ctx;
    (void)v;
    return 0;
}

static int
auth_arr_number(void *ctx, const char *s, size_t n)
{
    struct auth_arr *r = ctx;
    int64_t          v;

    if (r->depth != 1 || !r->want_ints || r->n >= AUTH_MAX_OWNERS)
        return 0;
    if (auth_parse_i64(s, n, &v) != 0 || v <= 0)
        return 0;
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;

        r->ints = arena_realloc(r->a, r->ints, r->cap * sizeof(int64_t),
                                ncap * sizeof(int64_t));
        r->cap = ncap;
    }
    r->ints[r->n++] = v;
    return 1;
}

static int
auth_arr_string(void *ctx, const unsigned char *s, size_t n)
{
    struct auth_arr *r = ctx;

    if (r->depth != 1 || r->want_ints)
        return 0;
    if (strlen(r->want) == n && memcmp(r->want, s, n) == 0)
        r->found = 1;
    return 1;
}

static int
auth_arr_start(void *ctx)
{
    struct auth_arr *r = ctx;

    return r->depth++ == 0;
}

static int
auth_arr_end(void *ctx)
{
    struct auth_arr *r = ctx;

    r->depth--;
    return 1;
}

/* no map callbacks: start_map is refused, so keys never arrive */
static const yajl_callbacks auth_arr_cbs = {
    .yajl_null        = auth_arr_reject,
    .yajl_boolean     = auth_arr_bool,
    .yajl_number      = auth_arr_number,
    .yajl_string      = auth_arr_string,
    .yajl_start_map   = auth_arr_reject,
    .yajl_start_array = auth_arr_start,
    .yajl_end_array   = auth_arr_end,
};

/* Runs a yajl callback parse of s[0..n) to completion; 0 when accepted. */
static int
auth_json_scan(const yajl_callbacks *cbs, void *ctx, const char *s, size_t n)
{
    yajl_handle h = yajl_alloc(cbs, NULL, ctx);
    int         ok;

    if (h == NULL)
        return -1;
    ok = yajl_parse(h, (const unsigned char *)s, n) == yajl_status_ok &&
         yajl_complete_parse(h) == yajl_status_ok;
    yajl_free(h);
    return ok ? 0 : -1;
}

static int
auth_i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

    return (a > b) - (a < b);
}

/* 1 if s is 1..AUTH_MAX_SUB bytes of printable ASCII (0x20..0x7e). */
static int
auth_sub_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= AUTH_MAX_SUB || s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    }
    return i > 0;
}

static unsigned
auth_parse_scopes(const char *s)
{
    unsigned bits = 0;

    while (*s != '\0') {
        size_t n = strcspn(s, " ");

        if (n == 13 && memcmp(s, "payments:read", 13) == 0)
            bits |= PAY_SCOPE_READ;
        else if (n == 14 && memcmp(s, "payments:write", 14) == 0)
            bits |= PAY_SCOPE_WRITE;
        else if (n == 14 && memcmp(s, "payments:admin", 14) == 0)
            bits |= PAY_SCOPE_ADMIN;
        s += n;
        while (*s == ' ')
            s++;
    }
    return bits;
}

/* ---- verification ------------------------------------------------------- */

static void
auth_jwt_free(void *j)
{
    jwt_free(j);
}

/* The JSON text of claim name, copied into the arena; NULL when absent. */
static char *
auth_claim_json(struct arena *a, jwt_t *j, const char *name)
{
    char *txt = jwt_get_grants_json(j, name);
    char *copy;

    if (txt == NULL)
        return NULL;
    copy = arena_strdup(a, txt);
    free(txt);
    return copy;
}

/*
 * Splits tok into its three segments: only [A-Za-z0-9_-] and exactly two
 * dots, no segment empty. len[] gets the segment lengths.
 */
static int
auth_split(const char *tok, size_t len[3])
{
    const char *d1, *d2;

    if (tok[strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "0123456789-_.")] != '\0')
        return -1;
    d1 = strchr(tok, '.');
    d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (d2 == NULL || strchr(d2 + 1, '.') != NULL)
        return -1;
    len[0] = (size_t)(d1 - tok);
    len[1] = (size_t)(d2 - d1 - 1);
    len[2] = strlen(d2 + 1);
    return len[0] && len[1] && len[2] ? 0 : -1;
}

/*
 * Checks the token's shape (three non-empty base64url segments, canonical
 * encoding, a JSON object header) and that its header names exactly the
 * configured alg, before libjwt sees it.
 */
static enum auth_rc
auth_check_shape(const struct auth_state *k, struct arena *a,
                 const char *tok, const char **why)
{
    unsigned char  *hdr;
    size_t          len[3], hlen;
    struct auth_hdr h;

    memset(&h, 0, sizeof(h));
    if (auth_split(tok, len) != 0 ||
        auth_b64url_decode(a, tok, len[0], &hdr, &hlen) != 0 ||
        auth_b64url_decode(NULL, tok + len[0] + 1, len[1], NULL, NULL) != 0 ||
        auth_b64url_decode(NULL, tok + len[0] + len[1] + 2, len[2], NULL,
                           NULL) != 0 ||
        auth_json_scan(&auth_hdr_cbs, &h, (const char *)hdr, hlen) != 0) {
        *why = AUTH_WHY_MALFORMED;
        return AUTH_INVALID;
    }
    if (h.alg == NULL || h.alg_len != strlen(k->alg_name) ||
        memcmp(h.alg, k->alg_name, h.alg_len) != 0) {
        *why = AUTH_WHY_ALG;
        return AUTH_INVALID;
    }
    /* libjwt 1.10 refuses any other typ (e.g. RFC 9068's "at+jwt") as if
     * the signature were bad: say what it is instead. */
    if (h.typ != NULL && (h.typ_len != 3 || strncasecmp(h.typ, "JWT", 3) != 0)) {
        *why = AUTH_WHY_TYP;
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

/* exp (required) and nbf (optional): plain integers, with AUTH_LEEWAY. */
static enum auth_rc
auth_check_times(struct arena *a, jwt_t *j, time_t now, int64_t *exp_out,
                 int64_t *nbf_out, const char **why)
{
    const char *txt;
    int64_t     exp, nbf = INT64_MIN;

    txt = auth_claim_json(a, j, "exp");
    if (txt == NULL) {
        *why = AUTH_WHY_NO_EXP;
        return AUTH_INVALID;
    }
    if (auth_parse_i64(txt, strlen(txt), &exp) != 0) {
        *why = AUTH_WHY_BAD_EXP;
        return AUTH_INVALID;
    }
    /* now <= exp + leeway, written so that a huge exp cannot overflow */
    if (exp < (int64_t)now - AUTH_LEEWAY) {
        *why = AUTH_WHY_EXPIRED;
        return AUTH_INVALID;
    }
    txt = auth_claim_json(a, j, "nbf");
    if (txt != NULL) {
        if (auth_parse_i64(txt, strlen(txt), &nbf) != 0) {
            *why = AUTH_WHY_BAD_NBF;
            return AUTH_INVALID;
        }
        if (nbf > (int64_t)now + AUTH_LEEWAY) {
            *why = AUTH_WHY_NOT_YET;
            return AUTH_INVALID;
        }
    }
    *exp_out = exp;
    *nbf_out = nbf;
    return AUTH_OK;
}

/* iss and aud, each only when configured. */
static enum auth_rc
auth_check_iss_aud(const struct auth_state *k, struct arena *a, jwt_t *j,
                   const char **why)
{
    const char     *s;
    struct auth_arr r;

    if (k->issuer != NULL) {
        s = jwt_get_grant(j, "iss");
        if (s == NULL || strcmp(s, k->issuer) != 0) {
            *why = AUTH_WHY_ISSUER;
            return AUTH_INVALID;
        }
    }
    if (k->audience != NULL) {
        s = auth_claim_json(a, j, "aud");
        if (s != NULL && s[0] == '"') {
            s = jwt_get_grant(j, "aud");
            if (s != NULL && strcmp(s, k->audience) == 0)
                return AUTH_OK;
        } else if (s != NULL && s[0] == '[') {
            memset(&r, 0, sizeof(r));
            r.a = a;
            r.want = k->audience;
            if (auth_json_scan(&auth_arr_cbs, &r, s, strlen(s)) == 0 &&
                r.found)
                return AUTH_OK;
        }
        *why = AUTH_WHY_AUDIENCE;
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

/* sub, scope and contractOwnerIds into *p. */
static enum auth_rc
auth_read_principal(struct arena *a, jwt_t *j, struct principal *p,
                    const char **why)
{
    const char     *s;
    struct auth_arr r;
    size_t          i, n;

    s = jwt_get_grant(j, "sub");
    if (s == NULL) {
        *why = auth_claim_json(a, j, "sub") ? AUTH_WHY_BAD_SUB
                                            : AUTH_WHY_NO_SUB;
        return AUTH_INVALID;
    }
    if (!auth_sub_valid(s)) {
        *why = AUTH_WHY_BAD_SUB;
        return AUTH_INVALID;
    }
    p->sub = arena_strdup(a, s);

    /* scope: absent means no scopes; present but not a string is invalid */
    s = jwt_get_grant(j, "scope");
    if (s != NULL) {
        p->scopes = auth_parse_scopes(s);
    } else if (auth_claim_json(a, j, "scope") != NULL) {
        *why = AUTH_WHY_BAD_SCOPE;
        return AUTH_INVALID;
    }
    p->all_owners = (p->scopes & PAY_SCOPE_ADMIN) != 0;

    s = auth_claim_json(a, j, "contractOwnerIds");
    if (s != NULL) {
        memset(&r, 0, sizeof(r));
        r.a = a;
        r.want_ints = 1;
        if (s[0] != '[' ||
            auth_json_scan(&auth_arr_cbs, &r, s, strlen(s)) != 0) {
            *why = AUTH_WHY_BAD_OWNERS;
            return AUTH_INVALID;
        }
        if (r.n > 1)
            qsort(r.ints, r.n, sizeof(int64_t), auth_i64_cmp);
        for (i = 0, n = 0; i < r.n; i++) {
            if (n == 0 || r.ints[n - 1] != r.ints[i])
                r.ints[n++] = r.ints[i];
        }
        p->owners = r.ints;
        p->nowners = n;
    }
    return AUTH_OK;
}

static enum auth_rc
auth_verify_with(const struct auth_state *k, struct arena *a,
                 const char *header, time_t now, struct principal *p,
                 int64_t *exp, int64_t *nbf, const char **why)
{
    const char  *tok;
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
    rc = auth_check_shape(k, a, tok, why);
    if (rc != AUTH_OK)
        return rc;

    if (jwt_decode(&j, tok, k->key, (int)k->key_len) != 0 || j == NULL) {
        *why = AUTH_WHY_SIGNATURE;
        return AUTH_INVALID;
    }
    arena_defer(a, auth_jwt_free, j);
    if (jwt_get_alg(j) != k->alg) {
        *why = AUTH_WHY_ALG;
        return AUTH_INVALID;
    }

    rc = auth_check_times(a, j, now, exp, nbf, why);
    if (rc == AUTH_OK)
        rc = auth_check_iss_aud(k, a, j, why);
    if (rc == AUTH_OK)
        rc = auth_read_principal(a, j, p, why);
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
 * re-checks exp/nbf against the clock. Cleared whenever the keys change. */

#define AUTH_CACHE 64

struct auth_cached {
    char    *header;
    size_t   len;
    int64_t  exp, nbf;
    char    *sub;
    unsigned scopes;
    int64_t *owners;
    size_t   nowners;
    int      all_owners;
};

static struct auth_cached auth_cache[AUTH_CACHE];

static void
auth_cache_clear(void)
{
    for (size_t i = 0; i < AUTH_CACHE; i++) {
        free(auth_cache[i].header);
        free(auth_cache[i].sub);
        free(auth_cache[i].owners);
    }
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
               const struct principal *p, int64_t exp, int64_t nbf)
{
    struct auth_cached n = {0};
    n.header = malloc(len + 1);
    n.sub = strdup(p->sub);
    n.owners = malloc((p->nowners ? p->nowners : 1) * sizeof(int64_t));
    if (n.header == NULL || n.sub == NULL || n.owners == NULL) {
        free(n.header);
        free(n.sub);
        free(n.owners);
        return; /* no cache entry: the next request verifies again */
    }
    memcpy(n.header, header, len + 1);
    n.len = len;
    n.exp = exp;
    n.nbf = nbf;
    n.scopes = p->scopes;
    n.all_owners = p->all_owners;
    n.nowners = p->nowners;
    if (p->nowners)
        memcpy(n.owners, p->owners, p->nowners * sizeof(int64_t));
    free(c->header);
    free(c->sub);
    free(c->owners);
    *c = n;
}

enum auth_rc
auth_verify_bearer(struct arena *a, const char *header, time_t now,
                   struct principal *p, const char **why)
{
    const char  *reason = NULL;
    enum auth_rc rc;
    int64_t      exp = 0, nbf = 0;

    memset(p, 0, sizeof(*p));
    size_t len = header ? strnlen(header, AUTH_MAX_HEADER + 1) : 0;
    struct auth_cached *c = header && len <= AUTH_MAX_HEADER
                                ? auth_cache_slot(header, len) : NULL;
    if (c != NULL && c->header != NULL && c->len == len &&
        memcmp(c->header, header, len) == 0 &&
        c->exp >= (int64_t)now - AUTH_LEEWAY &&
        (c->nbf == INT64_MIN || c->nbf <= (int64_t)now + AUTH_LEEWAY)) {
        p->sub = arena_strdup(a, c->sub);
        p->scopes = c->scopes;
        p->all_owners = c->all_owners;
        p->nowners = c->nowners;
        p->owners = ARENA_NEW(a, int64_t, c->nowners ? c->nowners : 1);
        if (c->nowners)
            memcpy(p->owners, c->owners, c->nowners * sizeof(int64_t));
        if (why != NULL)
            *why = NULL;
        return AUTH_OK;
    }
    rc = auth_verify_with(&auth_st, a, header, now, p, &exp, &nbf, &reason);
    if (rc == AUTH_MISSING || rc == AUTH_INVALID)
        memset(p, 0, sizeof(*p));
    if (rc == AUTH_OK && c != NULL)
        auth_cache_put(c, header, len, p, exp, nbf);
    if (why != NULL)
        *why = reason;
    return rc;
}

int
auth_owner_allowed(const struct principal *p, int64_t owner)
{
    size_t lo = 0, hi;

    if (p->all_owners)
        return 1;
    hi = p->nowners;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (p->owners[mid] == owner)
            return 1;
        if (p->owners[mid] < owner)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
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

    if (k->key == NULL) {
        auth_err(err, errlen, "auth_init has not been called");
        return NULL;
    }
    key = k->alg == JWT_ALG_HS256 ? k->key : k->priv;
    key_len = k->alg == JWT_ALG_HS256 ? k->key_len : k->priv_len;
    if (key == NULL) {
        auth_err(err, errlen, "no jwt_private_key_file configured");
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
        (k->issuer != NULL && jwt_add_grant(j, "iss", k->issuer) != 0) ||
        (k->audience != NULL && jwt_add_grant(j, "aud", k->audience) != 0)) {
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
    if (bad) {
        auth_err(err, errlen, "cannot read %s %s: read error", what, path);
        free(buf);
        return -1;
    }
    if (n > AUTH_MAX_KEY_FILE) {
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
        k.alg_name = "HS256";
        if (auth_load_hs256(&k, s, err, errlen) != 0)
            goto cleanup;
    } else if (strcmp(s->alg, "RS256") == 0) {
        k.alg = JWT_ALG_RS256;
        k.alg_name = "RS256";
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
    if (auth_set(s->issuer) && (k.issuer = strdup(s->issuer)) == NULL)
        goto oom;
    if (auth_set(s->audience) && (k.audience = strdup(s->audience)) == NULL)
        goto oom;
    if (k.priv != NULL && auth_self_test(&k, err, errlen) != 0)
        goto cleanup;

    auth_state_free(&auth_st);
    auth_st = k;
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
