/*
 * The key-free checks of a bearer token (see auth_claims.h): shape, JOSE
 * header and claims; and auth_owner_allowed() over the principal they give.
 *
 * Key decision: header and claims are parsed with app/json.c, the parser
 * of request bodies, never read through libjwt's getters, which turn "123"
 * and 1.5 into 0 and a missing claim into -1 (DEPS.md section 4), nor
 * through a scanner of our own. json.c already refuses duplicate keys
 * (so libjwt and we cannot read two different "alg" or "sub"), comments,
 * NUL bytes, bad UTF-8 and deep nesting, and keeps numbers as their text,
 * so 1.0 and 1e3 are told apart from plain integers here.
 *
 * Lifetime: everything lives in the request arena, except the static
 * reasons and the caller's policy.
 */
#include "auth_claims.h"
#include "arena.h"
#include "json.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char AUTH_WHY_MALFORMED[]  = "malformed token";
static const char AUTH_WHY_ALG[]        = "unexpected alg";
static const char AUTH_WHY_TYP[]        = "unsupported typ (only JWT is accepted)";
static const char AUTH_WHY_NO_EXP[]     = "missing exp";
static const char AUTH_WHY_BAD_EXP[]    = "invalid exp";
static const char AUTH_WHY_EXPIRED[]    = "token expired";
static const char AUTH_WHY_BAD_NBF[]    = "invalid nbf";
static const char AUTH_WHY_NOT_YET[]    = "token not yet valid";
static const char AUTH_WHY_BAD_IAT[]    = "invalid iat";
static const char AUTH_WHY_FUTURE[]     = "token issued in the future";
static const char AUTH_WHY_ISSUER[]     = "wrong issuer";
static const char AUTH_WHY_AUDIENCE[]   = "wrong audience";
static const char AUTH_WHY_NO_SUB[]     = "missing sub";
static const char AUTH_WHY_BAD_SUB[]    = "invalid sub";
static const char AUTH_WHY_BAD_SCOPE[]  = "invalid scope";
static const char AUTH_WHY_BAD_OWNERS[] = "invalid contractOwnerIds";

/* ---- base64url ----------------------------------------------------------- */

static int
b64_value(unsigned char c)
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
 * Decodes unpadded base64url s[0..n) into the arena (NUL-terminated for
 * convenience). Only the canonical encoding is accepted (unused low bits of
 * the last character must be zero). With a == NULL it only validates.
 */
static int
b64url_decode(struct arena *a, const char *s, size_t n, char **out,
              size_t *outlen)
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
        int v = b64_value((unsigned char)s[i]);

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
    if (o != NULL)
        o[k] = '\0';
    if (out != NULL)
        *out = (char *)o;
    if (outlen != NULL)
        *outlen = k;
    return 0;
}

/* Decodes a segment and parses it as a JSON object; NULL when it is not one. */
static struct json_value *
segment_object(struct arena *a, const char *s, size_t n)
{
    struct json_value *v;
    const char        *err;
    char              *txt;
    size_t             len;

    if (b64url_decode(a, s, n, &txt, &len) != 0 ||
        json_parse(a, txt, len, &v, &err) != 0 || v->type != JSON_OBJECT)
        return NULL;
    return v;
}

/* ---- shape and header ----------------------------------------------------- */

/*
 * Splits tok into its three segments: only [A-Za-z0-9_-] and exactly two
 * dots, no segment empty. len[] gets the segment lengths.
 */
static int
split(const char *tok, size_t len[3])
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

static int
is_string(const struct json_value *v, const char *want)
{
    return v != NULL && v->type == JSON_STRING && v->len == strlen(want) &&
           memcmp(v->str, want, v->len) == 0;
}

enum auth_rc
auth_claims_shape(struct arena *a, const char *tok,
                  const struct auth_policy *pol, const char **payload,
                  size_t *payload_len, const char **why)
{
    const struct json_value *h, *alg, *typ;
    size_t                   len[3];

    if (split(tok, len) != 0 ||
        b64url_decode(NULL, tok + len[0] + 1, len[1], NULL, NULL) != 0 ||
        b64url_decode(NULL, tok + len[0] + len[1] + 2, len[2], NULL,
                      NULL) != 0 ||
        (h = segment_object(a, tok, len[0])) == NULL ||
        json_get(h, "crit") != NULL) {
        *why = AUTH_WHY_MALFORMED;
        return AUTH_INVALID;
    }
    alg = json_get(h, "alg");
    if (alg != NULL && alg->type != JSON_STRING) {
        *why = AUTH_WHY_MALFORMED;
        return AUTH_INVALID;
    }
    /* byte for byte: libjwt compares alg without case */
    if (!is_string(alg, pol->alg_name)) {
        *why = AUTH_WHY_ALG;
        return AUTH_INVALID;
    }
    typ = json_get(h, "typ");
    if (typ != NULL && (typ->type != JSON_STRING || typ->len != 3 ||
                        strncasecmp(typ->str, "JWT", 3) != 0)) {
        *why = AUTH_WHY_TYP;
        return AUTH_INVALID;
    }
    *payload = tok + len[0] + 1;
    *payload_len = len[1];
    return AUTH_OK;
}

/* ---- claims ---------------------------------------------------------------- */

/* A plain JSON integer -?(0|[1-9][0-9]*) that fits in int64_t. */
static int
plain_i64(const struct json_value *v, int64_t *out)
{
    const char *s;
    uint64_t    u = 0;
    size_t      i, n;
    int         neg;

    if (v == NULL || v->type != JSON_NUMBER)
        return -1;
    s = v->str;
    n = v->len;
    neg = n > 0 && s[0] == '-';
    i = (size_t)neg;
    if (i == n || (s[i] == '0' && n - i > 1))
        return -1;
    for (; i < n; i++) {
        unsigned d = (unsigned)(s[i] - '0');

        if (s[i] < '0' || s[i] > '9' || u > (UINT64_MAX - d) / 10)
            return -1;
        u = u * 10 + d;
    }
    if (u > (uint64_t)INT64_MAX + (uint64_t)neg)
        return -1;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

/* An optional time claim: INT64_MIN when absent, -1 when not an integer. */
static int
time_claim(const struct json_value *c, const char *name, int64_t *out)
{
    const struct json_value *v = json_get(c, name);

    *out = INT64_MIN;
    return v == NULL ? 0 : plain_i64(v, out);
}

enum auth_rc
auth_claims_times(const struct auth_times *t, time_t now, const char **why)
{
    /* written so that huge or tiny claims cannot overflow */
    if (t->exp < (int64_t)now - AUTH_LEEWAY) {
        *why = AUTH_WHY_EXPIRED;
        return AUTH_INVALID;
    }
    if (t->nbf != INT64_MIN && t->nbf > (int64_t)now + AUTH_LEEWAY) {
        *why = AUTH_WHY_NOT_YET;
        return AUTH_INVALID;
    }
    /* A token "issued" later than now (beyond the clock-skew leeway) comes
     * from a broken clock or was forged to stay valid longer than its
     * issuer meant: refuse it rather than trust it (RFC 8725 hardening). */
    if (t->iat != INT64_MIN && t->iat > (int64_t)now + AUTH_LEEWAY) {
        *why = AUTH_WHY_FUTURE;
        return AUTH_INVALID;
    }
    return AUTH_OK;
}

/* aud: a string equal to want, or an array of strings containing it. */
static int
audience_ok(const struct json_value *v, const char *want)
{
    int found = 0;

    if (v == NULL || v->type != JSON_ARRAY)
        return is_string(v, want);
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->type != JSON_STRING)
            return 0;
        found |= is_string(v->items[i], want);
    }
    return found;
}

int
auth_sub_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i >= AUTH_MAX_SUB || s[i] < 0x20 || s[i] > 0x7e)
            return 0;
    }
    return i > 0;
}

/* The configured words of a scope claim into p->scopes / p->all_owners. */
static void
read_scopes(const struct auth_policy *pol, const char *s, struct principal *p)
{
    while (*s != '\0') {
        size_t n = strcspn(s, " ");

        for (size_t i = 0; i < pol->nscopes; i++) {
            const struct auth_scope *sc = &pol->scopes[i];

            if (n > 0 && strlen(sc->name) == n && memcmp(s, sc->name, n) == 0) {
                p->scopes |= sc->bits;
                p->all_owners |= sc->all_owners != 0;
            }
        }
        s += n;
        while (*s == ' ')
            s++;
    }
}

static int
i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

    return (a > b) - (a < b);
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

/* contractOwnerIds: 0..AUTH_MAX_OWNERS positive integers, sorted, deduplicated. */
static int
read_owners(struct arena *a, const struct json_value *v, struct principal *p)
{
    size_t i, n = 0;

    if (v->type != JSON_ARRAY || v->n > AUTH_MAX_OWNERS)
        return -1;
    p->owners = ARENA_NEW(a, int64_t, v->n ? v->n : 1);
    for (i = 0; i < v->n; i++) {
        if (plain_i64(v->items[i], &p->owners[i]) != 0 || p->owners[i] <= 0)
            return -1;
    }
    if (v->n > 1)
        qsort(p->owners, v->n, sizeof(int64_t), i64_cmp);
    for (i = 0; i < v->n; i++) {
        if (n == 0 || p->owners[n - 1] != p->owners[i])
            p->owners[n++] = p->owners[i];
    }
    p->nowners = n;
    return 0;
}

enum auth_rc
auth_claims_read(struct arena *a, const char *payload, size_t len,
                 const struct auth_policy *pol, time_t now,
                 struct principal *p, struct auth_times *t, const char **why)
{
    const struct json_value *c, *v;
    enum auth_rc             rc;

    if ((c = segment_object(a, payload, len)) == NULL) {
        *why = AUTH_WHY_MALFORMED;
        return AUTH_INVALID;
    }
    if ((v = json_get(c, "exp")) == NULL) {
        *why = AUTH_WHY_NO_EXP;
        return AUTH_INVALID;
    }
    if (plain_i64(v, &t->exp) != 0) {
        *why = AUTH_WHY_BAD_EXP;
        return AUTH_INVALID;
    }
    if (time_claim(c, "nbf", &t->nbf) != 0) {
        *why = AUTH_WHY_BAD_NBF;
        return AUTH_INVALID;
    }
    if (time_claim(c, "iat", &t->iat) != 0) {
        *why = AUTH_WHY_BAD_IAT;
        return AUTH_INVALID;
    }
    if ((rc = auth_claims_times(t, now, why)) != AUTH_OK)
        return rc;
    if (pol->issuer != NULL && !is_string(json_get(c, "iss"), pol->issuer)) {
        *why = AUTH_WHY_ISSUER;
        return AUTH_INVALID;
    }
    if (pol->audience != NULL &&
        !audience_ok(json_get(c, "aud"), pol->audience)) {
        *why = AUTH_WHY_AUDIENCE;
        return AUTH_INVALID;
    }

    if ((v = json_get(c, "sub")) == NULL) {
        *why = AUTH_WHY_NO_SUB;
        return AUTH_INVALID;
    }
    if (v->type != JSON_STRING || !auth_sub_valid(v->str)) {
        *why = AUTH_WHY_BAD_SUB;
        return AUTH_INVALID;
    }
    p->sub = v->str;

    /* scope: absent means no scopes; present but not a string is invalid */
    if ((v = json_get(c, "scope")) != NULL) {
        if (v->type != JSON_STRING) {
            *why = AUTH_WHY_BAD_SCOPE;
            return AUTH_INVALID;
        }
        read_scopes(pol, v->str, p);
    }
    if ((v = json_get(c, "contractOwnerIds")) != NULL &&
        read_owners(a, v, p) != 0) {
        *why = AUTH_WHY_BAD_OWNERS;
        return AUTH_INVALID;
    }
    return AUTH_OK;
}
