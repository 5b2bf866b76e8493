/*
 * The checks of a bearer token that need no key: its shape, its JOSE
 * header and its claims, read with app/json.c. Internal to auth.c (the
 * only caller); nothing here knows libjwt or any scope name. Everything
 * returned lives in the request arena; the "why" strings are static.
 */
#ifndef PAY_APP_AUTH_CLAIMS_H
#define PAY_APP_AUTH_CLAIMS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "auth.h"

struct arena;

/* What the claims are checked against (auth.c's process-lifetime copy). */
struct auth_policy {
    const char              *alg_name;  /* "HS256" / "RS256": the header's alg, exactly */
    const char              *issuer;    /* NULL: iss not checked */
    const char              *audience;  /* NULL: aud not checked */
    const struct auth_scope *scopes;    /* the scope words the service knows */
    size_t                   nscopes;
};

/* The time claims of a verified token; nbf and iat are INT64_MIN when absent. */
struct auth_times {
    int64_t exp, nbf, iat;
};

/*
 * tok is the token after "Bearer ". Checks three non-empty segments of
 * canonical unpadded base64url (one signature has one spelling), a header
 * that is a JSON object naming exactly pol->alg_name as "alg", no "crit"
 * (extensions we would have to understand, RFC 7515 4.1.11), and a "typ"
 * that is absent or "JWT" in any case (all libjwt 1.10 accepts; it would
 * call another one a bad signature). On AUTH_OK *payload / *payload_len
 * are the middle segment, still encoded.
 */
enum auth_rc auth_claims_shape(struct arena *a, const char *tok,
                               const struct auth_policy *pol,
                               const char **payload, size_t *payload_len,
                               const char **why);

/*
 * Decodes and checks the claims of a token whose signature was verified
 * (payload[0..len) is its middle segment): exp (required), nbf and iat
 * (plain JSON integers), iss/aud when configured, sub, scope and
 * contractOwnerIds into *p, the time claims into *t. AUTH_OK or
 * AUTH_INVALID with *why; tenancy is the caller's to judge.
 */
enum auth_rc auth_claims_read(struct arena *a, const char *payload, size_t len,
                              const struct auth_policy *pol, time_t now,
                              struct principal *p, struct auth_times *t,
                              const char **why);

/*
 * The clock checks alone, for a cached token: exp not passed, nbf and iat
 * not in the future, each with AUTH_LEEWAY. AUTH_OK or AUTH_INVALID.
 */
enum auth_rc auth_claims_times(const struct auth_times *t, time_t now,
                               const char **why);

/* 1 if s is 1..AUTH_MAX_SUB bytes of printable ASCII (0x20..0x7e). */
int auth_sub_valid(const char *s);

#endif
