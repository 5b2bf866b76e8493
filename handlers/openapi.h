/*
 * The OpenAPI 3.0 document of the API (handlers/openapi.json), embedded
 * into the binary at build time by embed_file.cmake, which also refuses a
 * document that is not valid JSON. Served by openapi_get (openapi.c) and
 * checked against the route table by tests/unit/handlers/test_openapi_routes.c.
 */
#ifndef PAY_HANDLERS_OPENAPI_H
#define PAY_HANDLERS_OPENAPI_H

#include <stddef.h>

/* The document's bytes, followed by a NUL that openapi_json_len does not
 * count. Process lifetime (read-only data). */
extern const unsigned char openapi_json[];
extern const size_t        openapi_json_len;

#endif
