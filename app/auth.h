/*
 * Bearer-token authentication (spec 1.2): turns an Authorization header
 * into a struct principal, and issues tokens for tests and tooling.
 * auth.c is the only file that knows libjwt; nothing here exposes it.
 * Keys live in process-lifetime state loaded by auth_init(); everything a
 * verification returns lives in the caller's request arena.
 */
#ifndef PAY_APP_AUTH_H
#define PAY_APP_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct arena;

#define AUTH_MAX_OWNERS    1000  /* most contractOwnerIds a token may carry */
#define AUTH_MAX_SCOPES    32    /* most scope words a configuration names */
#define AUTH_LEEWAY        30    /* seconds of clock skew allowed on exp/nbf/iat */
#define AUTH_MAX_HEADER    4096  /* longest Authorization value accepted */
#define AUTH_MAX_SUB       128   /* longest sub accepted, in bytes */
#define AUTH_MIN_SECRET    32    /* shortest HS256 secret, bytes (RFC 7518) */

struct principal {
    const char *sub;          /* non-empty, <= 128 bytes, printable ASCII */
    unsigned    scopes;       /* union of the bits of its known scope words */
    int64_t    *owners;       /* contractOwnerIds, sorted ascending, deduplicated */
    size_t      nowners;
    int         all_owners;   /* 1 when a scope word grants every contract owner */
};

/*
 * One scope word the service knows, handed in by configuration (the
 * framework knows no scope names). A token's "scope" claim is a
 * space-separated list of words; words nobody configured are ignored.
 */
struct auth_scope {
    const char *name;        /* the word, e.g. "orders:read" (no spaces) */
    unsigned    bits;        /* what it grants in principal.scopes (a route
                                needs all of its route.scope bits) */
    int         all_owners;  /* 1: the bearer sees every contract owner and
                                needs no contractOwnerIds claim */
};

struct auth_settings {
    const char *alg;               /* "HS256" or "RS256" (exact) */
    const char *secret;            /* HS256: the shared secret (>= 32 bytes) ... */
    const char *secret_file;       /* ... or a file holding it (trailing newline stripped) */
    const char *public_key_file;   /* RS256: PEM public key (verification) */
    const char *private_key_file;  /* RS256: PEM private key, only needed to issue tokens; may be NULL */
    const char *issuer;            /* optional: when set, claim iss must equal it */
    const char *audience;          /* optional: when set, claim aud (string or array of strings) must contain it */
    const struct auth_scope *scopes; /* the known scope words (copied); at most AUTH_MAX_SCOPES */
    size_t      nscopes;
};

/*
 * Loads the keys named by s into process-lifetime (malloc'd) state.
 * HS256 needs exactly one of secret / secret_file, at least 32 bytes after
 * stripping one trailing "\n" or "\r\n" from the file. RS256 needs
 * public_key_file (a "BEGIN PUBLIC KEY" or "BEGIN RSA PUBLIC KEY" PEM); when
 * private_key_file is also given, a token is signed and verified once to
 * prove the two belong together. Empty strings count as unset; settings
 * the chosen alg does not use are ignored.
 * Returns 0, or -1 with a one-line message in err (e.g. "jwt_secret must be
 * at least 32 bytes", "cannot read jwt_public_key_file /x: No such file or
 * directory"). The scope table is copied; a word that is empty, holds a
 * space or is named twice is refused. May be called again: on success the
 * old settings are replaced, on failure they are left untouched.
 */
int auth_init(const struct auth_settings *s, char *err, size_t errlen);

/* Frees the state loaded by auth_init(); afterwards every token is refused. */
void auth_shutdown(void);

enum auth_rc { AUTH_OK = 0, AUTH_MISSING, AUTH_INVALID, AUTH_NO_TENANCY };

/*
 * Verifies header, the raw Authorization header value (NULL when absent),
 * against the settings of auth_init() at time now, and fills *p.
 *   AUTH_OK          *p is filled; everything in it lives in arena a.
 *   AUTH_MISSING     header is NULL or of another scheme than Bearer
 *                    (answer 401 without error=).
 *   AUTH_INVALID     malformed, badly signed, expired, not yet valid, issued
 *                    in the future (iat beyond AUTH_LEEWAY), wrong
 *                    alg/iss/aud, bad claim types (answer 401 invalid_token).
 *   AUTH_NO_TENANCY  valid, but neither a non-empty contractOwnerIds nor a
 *                    scope word granting all owners (answer 403); *p is filled.
 * On AUTH_MISSING and AUTH_INVALID *p is zeroed.
 * *why (when why is not NULL) gets a short static client-safe reason such as
 * "token expired", "bad signature" or "unexpected alg", or NULL on AUTH_OK.
 * Any libjwt object is released before return or by an arena defer; the
 * function never leaks on any path.
 */
enum auth_rc auth_verify_bearer(struct arena *a, const char *header, time_t now,
                                struct principal *p, const char **why);

/*
 * The configured scope word whose bits are exactly `bits`, else the first
 * that grants all of them (for "token lacks scope ..." messages); NULL when
 * none does. Process-lifetime memory.
 */
const char *auth_scope_name(unsigned bits);

/*
 * 1 if the principal may see objects of this contract owner (all_owners, or
 * owner in the sorted list by binary search), else 0.
 */
int auth_owner_allowed(const struct principal *p, int64_t owner);

/*
 * Issues a token signed with the configured key (HS256 secret or RS256
 * private key) with claims sub, scope (as given; omitted when NULL),
 * contractOwnerIds (array of integers; omitted when n == 0), iat = nbf =
 * now, exp = now + ttl, and iss/aud when configured. sub must be a valid
 * principal sub, owners positive, n <= AUTH_MAX_OWNERS, ttl > 0.
 * Returns a malloc'd NUL-terminated token (the caller frees it with free()),
 * or NULL with a message in err.
 */
char *auth_issue(const char *sub, const char *scope, const int64_t *owners,
                 size_t n, long ttl, time_t now, char *err, size_t errlen);

#endif
