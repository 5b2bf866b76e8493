/*
 * GET /v1/openapi.json (spec §6): the OpenAPI 3.0 document of this API as
 * implemented, for client generators. The source is handlers/openapi.json;
 * the build embeds its bytes (openapi.h), so the binary serves exactly the
 * document its tests checked. Public: no token.
 * Caching: a strong ETag, the first 128 bits of the document's SHA-256 in
 * hex, computed once per process on first use into static storage (the
 * bytes never change while the process runs); If-None-Match naming it, or
 * "*", is answered 304 without a body.
 */
#include <stdio.h>
#include <string.h>

#include "handlers.h"
#include "openapi.h"
#include "token.h"

#define OPENAPI_CACHE_CONTROL "public, max-age=300"

static char etag[1 + 32 + 1 + 1]; /* "<32 hex digits>" and the NUL */

static const char *
openapi_etag(struct req *r)
{
    if (etag[0] == '\0') {
        const char *hex = token_sha256_hex(r->arena, openapi_json, openapi_json_len);
        snprintf(etag, sizeof(etag), "\"%.32s\"", hex);
    }
    return etag;
}

/* 1 when the If-None-Match value h lists tag or is "*". Entity tags are
 * compared weakly (RFC 9110 §13.1.2: a W/ prefix is ignored); a malformed
 * list simply does not match. */
static int
etag_listed(const char *h, const char *tag)
{
    size_t n = strlen(tag);
    while (h != NULL && *h != '\0') {
        h += strspn(h, " \t,");
        if (*h == '\0')
            break;
        if (*h == '*')
            return 1;
        if (strncmp(h, "W/", 2) == 0)
            h += 2;
        if (*h != '"')
            return 0;
        const char *end = strchr(h + 1, '"');
        if (end == NULL)
            return 0;
        if ((size_t)(end + 1 - h) == n && memcmp(h, tag, n) == 0)
            return 1;
        h = end + 1;
    }
    return 0;
}

int
openapi_get(struct req *r)
{
    int rc;
    if ((rc = req_query_all_known_or_fail(r)) != 0)
        return rc;
    const char *tag = openapi_etag(r);
    resp_header(r, "ETag", tag);
    resp_header(r, "Cache-Control", OPENAPI_CACHE_CONTROL);
    if (etag_listed(req_env(r, "HTTP_IF_NONE_MATCH"), tag))
        return resp_body(r, 304, NULL, "", 0);
    return resp_body(r, 200, "application/json; charset=utf-8",
                     (const char *)openapi_json, openapi_json_len);
}
