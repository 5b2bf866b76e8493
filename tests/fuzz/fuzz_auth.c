/*
 * fuzz_auth: app/auth.c (auth_verify_bearer on top of libjwt 1.10.2).
 *
 * auth_init once per configuration: HS256 with a 48-byte secret, without
 * or with iss/aud checks. `now` is fixed (NOW) so inputs are reproducible.
 *
 * Input: byte 0 = flags (low 4 bits; '0'..'9', ':'..'?' are 0..15):
 *   1  iss and aud are configured (ISSUER, AUDIENCE)
 *   2  the built token's signature gets one bit flipped
 *   4  the built token is signed with a wrong secret
 *   8  the built token is sent with the scheme "bearer " (lower case)
 * the rest = TEXT. Three verifications per input:
 *   a. TEXT (a C string) as the whole Authorization header;
 *   b. "Bearer " + TEXT;
 *   c. a structurally valid token built from TEXT: if TEXT contains '\n',
 *      the part before it is the JOSE header JSON and the part after it the
 *      payload JSON; otherwise the header is {"alg":"HS256","typ":"JWT"} and
 *      TEXT is the payload. Both are base64url-encoded and signed with
 *      HMAC-SHA256 (libcrypto, not libjwt) so the claim checks are reached.
 * Invariants:
 *  - the result is one of the four codes; MISSING/INVALID leave *p zeroed
 *    and give a reason; OK gives no reason; OK/NO_TENANCY give a valid sub
 *    (1..128 printable ASCII), owners positive, strictly ascending, at most
 *    AUTH_MAX_OWNERS, all_owners == (scope has payments:admin), and OK iff
 *    (owners or admin); auth_owner_allowed agrees with the list.
 *  - a token with a corrupted or wrong-key signature is never accepted.
 *  - an accepted built token really satisfies the contract, checked against
 *    our own parse of its JSON (when that parse succeeds): header alg is
 *    exactly "HS256"; exp a plain integer >= NOW - 30; nbf absent or a plain
 *    integer <= NOW + 30; iat likewise; sub is the principal's sub; iss/aud match when
 *    configured; scope bits and the owner list are what the claims say.
 *  - no leak on any path (LeakSanitizer; the jwt_t is freed by an arena
 *    defer that runs at arena_reset).
 */
#include "fuzz_common.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"
#include "json.h"
#include "text.h"

#define SECRET       "fuzz-hs256-secret-0123456789abcdef-0123456789abc"
#define WRONG_SECRET "fuzz-hs256-secret-0123456789abcdef-0123456789abX"
#define ISSUER       "https://issuer.example"
#define AUDIENCE     "pay-api"
#define NOW          ((time_t)1750000000)

_Static_assert(sizeof(SECRET) - 1 == 48, "the secret is 48 bytes");

/* The harness's scope words (the framework knows none of its own). */
#define PAY_SCOPE_READ  1u
#define PAY_SCOPE_WRITE 2u
#define PAY_SCOPE_ADMIN 4u
static const struct auth_scope scopes[] = {
    {"payments:read", PAY_SCOPE_READ, 0},
    {"payments:write", PAY_SCOPE_WRITE, 0},
    {"payments:admin", PAY_SCOPE_ADMIN, 1},
};

static int configured = -1; /* which configuration auth_init last loaded */

static void
configure(int with_iss_aud)
{
    struct auth_settings s;
    char                 err[256];

    if (configured == with_iss_aud)
        return;
    memset(&s, 0, sizeof(s));
    s.alg = "HS256";
    s.secret = SECRET;
    s.scopes = scopes;
    s.nscopes = sizeof(scopes) / sizeof(scopes[0]);
    if (with_iss_aud) {
        s.issuer = ISSUER;
        s.audience = AUDIENCE;
    }
    if (auth_init(&s, err, sizeof(err)) != 0) {
        fprintf(stderr, "auth_init: %s\n", err);
        abort();
    }
    configured = with_iss_aud;
}

static void
b64url(struct abuf *b, const unsigned char *in, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        char     o[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        abuf_add(b, o, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        char     o[2] = {tab[v >> 18], tab[(v >> 12) & 63]};
        abuf_add(b, o, 2);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        char     o[3] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63]};
        abuf_add(b, o, 3);
    }
}

/* ---- principal invariants ---------------------------------------------- */

static void
check_result(enum auth_rc rc, const struct principal *p, const char *why)
{
    static const struct principal zero;

    FUZZ_CHECK(rc == AUTH_OK || rc == AUTH_MISSING || rc == AUTH_INVALID ||
               rc == AUTH_NO_TENANCY, "rc %d", (int)rc);
    if (rc == AUTH_MISSING || rc == AUTH_INVALID) {
        FUZZ_CHECK(memcmp(p, &zero, sizeof(zero)) == 0, "*p not zeroed (rc %d)", (int)rc);
        FUZZ_CHECK(why != NULL && *why != '\0', "no reason for rc %d", (int)rc);
    }
    if (why != NULL)
        FUZZ_CHECK(text_valid(why, strlen(why), 100), "reason is not clean text");
    if (rc != AUTH_OK && rc != AUTH_NO_TENANCY)
        return;
    FUZZ_CHECK(rc != AUTH_OK || why == NULL, "reason on success: %s", why);
    FUZZ_CHECK(rc != AUTH_NO_TENANCY || why != NULL, "no reason for 403");
    FUZZ_CHECK(p->sub != NULL, "no sub");
    size_t n = strlen(p->sub);
    FUZZ_CHECK(n >= 1 && n <= AUTH_MAX_SUB, "sub of %zu bytes", n);
    for (size_t i = 0; i < n; i++)
        FUZZ_CHECK(p->sub[i] >= 0x20 && p->sub[i] <= 0x7e, "sub byte 0x%02x",
                   (unsigned char)p->sub[i]);
    FUZZ_CHECK((p->scopes & ~(unsigned)(PAY_SCOPE_READ | PAY_SCOPE_WRITE |
                                         PAY_SCOPE_ADMIN)) == 0, "scope bits");
    FUZZ_CHECK(p->all_owners == ((p->scopes & PAY_SCOPE_ADMIN) != 0), "all_owners");
    FUZZ_CHECK(p->nowners <= AUTH_MAX_OWNERS, "%zu owners", p->nowners);
    FUZZ_CHECK(p->nowners == 0 || p->owners != NULL, "owners NULL");
    for (size_t i = 0; i < p->nowners; i++) {
        FUZZ_CHECK(p->owners[i] > 0, "owner %" PRId64, p->owners[i]);
        FUZZ_CHECK(i == 0 || p->owners[i - 1] < p->owners[i], "owners not sorted/unique");
        FUZZ_CHECK(auth_owner_allowed(p, p->owners[i]), "own owner refused");
        if (!p->all_owners && p->owners[i] < INT64_MAX &&
            (i + 1 == p->nowners || p->owners[i + 1] != p->owners[i] + 1))
            FUZZ_CHECK(!auth_owner_allowed(p, p->owners[i] + 1), "foreign owner allowed");
    }
    FUZZ_CHECK((rc == AUTH_OK) == (p->nowners > 0 || p->all_owners),
               "rc %d with %zu owners, admin %d", (int)rc, p->nowners, p->all_owners);
}

/* ---- oracle over our own parse of the claims ------------------------------ */

static int
plain_int(const struct json_value *v, int64_t *out)
{
    if (v == NULL || v->type != JSON_NUMBER)
        return 0;
    const char *s = v->str;
    size_t      i = s[0] == '-';
    if (s[i] == '\0' || (s[i] == '0' && s[i + 1] != '\0'))
        return 0;
    for (size_t k = i; s[k] != '\0'; k++)
        if (s[k] < '0' || s[k] > '9')
            return 0;
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno != 0)
        return 0;
    *out = x;
    return 1;
}

static unsigned
ref_scopes(const char *s)
{
    unsigned bits = 0;
    while (*s) {
        while (*s == ' ')
            s++;
        size_t n = strcspn(s, " ");
        if (n == 13 && !strncmp(s, "payments:read", n))
            bits |= PAY_SCOPE_READ;
        if (n == 14 && !strncmp(s, "payments:write", n))
            bits |= PAY_SCOPE_WRITE;
        if (n == 14 && !strncmp(s, "payments:admin", n))
            bits |= PAY_SCOPE_ADMIN;
        s += n;
    }
    return bits;
}

static int
cmp_i64(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a > b) - (a < b);
}

static void
oracle(struct arena *a, const char *hdr, size_t hlen, const char *pl,
       size_t plen, int iss_aud, const struct principal *p)
{
    struct json_value *h = NULL, *c = NULL, *v;
    const char        *err;
    int64_t            t;

    if (json_parse(a, hdr, hlen, &h, &err) == 0 && h->type == JSON_OBJECT) {
        v = json_get(h, "alg");
        FUZZ_CHECK(v && v->type == JSON_STRING && strcmp(v->str, "HS256") == 0 &&
                   v->len == 5, "accepted a token whose alg is not exactly HS256");
    }
    if (json_parse(a, pl, plen, &c, &err) != 0 || c->type != JSON_OBJECT)
        return;
    v = json_get(c, "exp");
    FUZZ_CHECK(plain_int(v, &t), "accepted without a plain integer exp");
    FUZZ_CHECK(t >= (int64_t)NOW - AUTH_LEEWAY, "accepted an expired token (exp %" PRId64 ")", t);
    v = json_get(c, "nbf");
    if (v != NULL) {
        FUZZ_CHECK(plain_int(v, &t), "accepted a non-integer nbf");
        FUZZ_CHECK(t <= (int64_t)NOW + AUTH_LEEWAY, "accepted before nbf %" PRId64, t);
    }
    v = json_get(c, "iat");
    if (v != NULL) {
        FUZZ_CHECK(plain_int(v, &t), "accepted a non-integer iat");
        FUZZ_CHECK(t <= (int64_t)NOW + AUTH_LEEWAY, "accepted iat %" PRId64 " in the future", t);
    }
    v = json_get(c, "sub");
    FUZZ_CHECK(v && v->type == JSON_STRING && strcmp(v->str, p->sub) == 0 &&
               v->len == strlen(p->sub), "sub differs from the claim");
    if (iss_aud) {
        v = json_get(c, "iss");
        FUZZ_CHECK(v && v->type == JSON_STRING && strcmp(v->str, ISSUER) == 0 &&
                   v->len == strlen(ISSUER), "wrong iss accepted");
        v = json_get(c, "aud");
        int found = 0;
        if (v && v->type == JSON_STRING)
            found = strcmp(v->str, AUDIENCE) == 0 && v->len == strlen(AUDIENCE);
        else if (v && v->type == JSON_ARRAY)
            for (size_t i = 0; i < v->n; i++)
                found |= v->items[i]->type == JSON_STRING &&
                         strcmp(v->items[i]->str, AUDIENCE) == 0 &&
                         v->items[i]->len == strlen(AUDIENCE);
        FUZZ_CHECK(found, "wrong aud accepted");
    }
    v = json_get(c, "scope");
    FUZZ_CHECK(v == NULL || v->type == JSON_STRING, "non-string scope accepted");
    FUZZ_CHECK(p->scopes == (v ? ref_scopes(v->str) : 0u), "scope bits %u", p->scopes);
    v = json_get(c, "contractOwnerIds");
    if (v == NULL) {
        FUZZ_CHECK(p->nowners == 0, "owners without the claim");
        return;
    }
    FUZZ_CHECK(v->type == JSON_ARRAY, "non-array contractOwnerIds accepted");
    int64_t *ids = ARENA_NEW(a, int64_t, v->n + 1);
    size_t   n = 0;
    for (size_t i = 0; i < v->n; i++) {
        FUZZ_CHECK(plain_int(v->items[i], &ids[i]) && ids[i] > 0,
                   "bad owner id accepted");
    }
    qsort(ids, v->n, sizeof(int64_t), cmp_i64);
    for (size_t i = 0; i < v->n; i++)
        if (n == 0 || ids[n - 1] != ids[i])
            ids[n++] = ids[i];
    FUZZ_CHECK(n == p->nowners && (n == 0 || memcmp(ids, p->owners, n * sizeof(int64_t)) == 0),
               "owner list differs from the claim");
}

/* ---- one input ------------------------------------------------------------ */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct arena    *a = fuzz_arena();
    unsigned         flags = data[0] & 0x0Fu;
    const char      *text = (const char *)data + 1;
    size_t           tlen = size - 1;
    struct principal p;
    const char      *why;
    enum auth_rc     rc;

    configure(flags & 1);

    /* a. the raw header */
    char *raw = fuzz_cstr(a, (const uint8_t *)text, tlen);
    why = NULL;
    rc = auth_verify_bearer(a, raw, NOW, &p, &why);
    check_result(rc, &p, why);

    /* b. "Bearer " + text */
    char *bearer = arena_printf(a, "Bearer %s", raw);
    why = NULL;
    rc = auth_verify_bearer(a, bearer, NOW, &p, &why);
    check_result(rc, &p, why);

    /* c. a signed token around fuzzed header/payload JSON */
    static const char def_hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *hdr = def_hdr, *pl = text;
    size_t      hlen = sizeof(def_hdr) - 1, plen = tlen;
    const char *nl = memchr(text, '\n', tlen);
    if (nl != NULL) {
        hdr = text;
        hlen = (size_t)(nl - text);
        pl = nl + 1;
        plen = tlen - hlen - 1;
    }
    struct abuf tok;
    abuf_init(&tok, a);
    abuf_adds(&tok, (flags & 8) ? "bearer " : "Bearer ");
    size_t signed_from = tok.len;
    b64url(&tok, (const unsigned char *)hdr, hlen);
    abuf_add(&tok, ".", 1);
    b64url(&tok, (const unsigned char *)pl, plen);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int  maclen = 0;
    const char   *key = (flags & 4) ? WRONG_SECRET : SECRET;
    if (HMAC(EVP_sha256(), key, (int)strlen(key),
             (const unsigned char *)tok.p + signed_from, tok.len - signed_from,
             mac, &maclen) == NULL)
        abort();
    if (flags & 2)
        mac[(hlen + plen) % maclen] ^= (unsigned char)(1u << (plen % 8));
    abuf_add(&tok, ".", 1);
    b64url(&tok, mac, maclen);

    why = NULL;
    rc = auth_verify_bearer(a, abuf_str(&tok), NOW, &p, &why);
    check_result(rc, &p, why);
    if (flags & 6)
        FUZZ_CHECK(rc == AUTH_INVALID,
                   "token with a %s signature accepted (rc %d)",
                   (flags & 4) ? "wrong-key" : "corrupted", (int)rc);
    if (rc == AUTH_OK || rc == AUTH_NO_TENANCY)
        oracle(a, hdr, hlen, pl, plen, flags & 1, &p);

    arena_reset(a);
    return 0;
}
