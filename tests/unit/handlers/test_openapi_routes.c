/*
 * The OpenAPI document (handlers/openapi.json, as embedded in the binary)
 * against THE route table (handlers/routes.c) and the error catalogue
 * (app/errors.def). Every route, /v1 or not (health, metrics, the HTML
 * pages), must be exactly one operation of the document and every
 * operation one route: method and path, with ":name" captures written
 * "{name}". For each pair the document must also agree with the route's
 * flags: bearer security (R_AUTH) and the scope (x-required-scope), the
 * request body media type (R_JSON, R_JSON_PATCH, R_FORM), the
 * Idempotency-Key parameter (R_IDEMPOTENT), the path parameters, and the
 * pipeline's own error statuses (401/403 for R_AUTH, 413/415 for a body).
 * The Error schema's `code` enum must be the catalogue's codes. Every
 * difference is printed; the exit status is 1 if there is any.
 */
#include "test.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "errors.h"
#include "handlers.h"
#include "json.h"
#include "openapi.h"
#include "router.h"

#define MAX_OPS 256

static const char *const HTTP_METHODS[] = {"get", "put", "post", "delete", "options",
                                           "head", "patch", "trace", NULL};

struct op {
    char                     method[8]; /* "GET" */
    const char              *path;      /* "/v1/x/{id}" */
    const struct json_value *v;         /* the operation object */
    int                      matched;
};

static struct op ops[MAX_OPS];
static size_t    nops;

/* "/v1/x/:id" -> "/v1/x/{id}" (arena). */
static char *
openapi_path(struct arena *a, const char *pattern)
{
    char  *out = arena_alloc(a, 2 * strlen(pattern) + 1);
    char  *o = out;
    for (const char *p = pattern; *p != '\0';) {
        if (*p == ':' && (p == pattern || p[-1] == '/')) {
            size_t n = strcspn(p + 1, "/");
            *o++ = '{';
            memcpy(o, p + 1, n);
            o += n;
            *o++ = '}';
            p += 1 + n;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static const struct json_value *
get_path(const struct json_value *v, const char *a, const char *b, const char *c)
{
    if (v != NULL && a != NULL)
        v = json_get(v, a);
    if (v != NULL && b != NULL)
        v = json_get(v, b);
    if (v != NULL && c != NULL)
        v = json_get(v, c);
    return v;
}

static int
is_str(const struct json_value *v, const char *s)
{
    return v != NULL && v->type == JSON_STRING && strcmp(v->str, s) == 0;
}

static void
collect_ops(const struct json_value *paths)
{
    for (size_t i = 0; i < paths->n; i++) {
        const struct json_value *item = paths->items[i];
        if (item->type != JSON_OBJECT)
            continue;
        for (size_t k = 0; k < item->n; k++) {
            size_t m;
            for (m = 0; HTTP_METHODS[m] != NULL; m++)
                if (strcmp(item->keys[k], HTTP_METHODS[m]) == 0)
                    break;
            if (HTTP_METHODS[m] == NULL)
                continue; /* "parameters", "summary", x-... */
            if (nops == MAX_OPS) {
                CHECK(0, "more than %d operations", MAX_OPS);
                return;
            }
            struct op *o = &ops[nops++];
            for (size_t c = 0; HTTP_METHODS[m][c] != '\0' && c < sizeof(o->method) - 1; c++)
                o->method[c] = (char)(HTTP_METHODS[m][c] - 'a' + 'A');
            o->path = paths->keys[i];
            o->v = item->items[k];
        }
    }
}

static struct op *
find_op(const char *method, const char *path)
{
    for (size_t i = 0; i < nops; i++)
        if (strcmp(ops[i].method, method) == 0 && strcmp(ops[i].path, path) == 0)
            return &ops[i];
    return NULL;
}

/* 1 if the operation's parameters hold a path parameter named name. */
static int
has_path_param(const struct json_value *op, const char *name)
{
    const struct json_value *ps = json_get(op, "parameters");
    for (size_t i = 0; ps != NULL && ps->type == JSON_ARRAY && i < ps->n; i++)
        if (is_str(json_get(ps->items[i], "in"), "path") &&
            is_str(json_get(ps->items[i], "name"), name))
            return 1;
    return 0;
}

static size_t
count_path_params(const struct json_value *op)
{
    const struct json_value *ps = json_get(op, "parameters");
    size_t                   n = 0;
    for (size_t i = 0; ps != NULL && ps->type == JSON_ARRAY && i < ps->n; i++)
        n += is_str(json_get(ps->items[i], "in"), "path");
    return n;
}

static int
has_ref_param(const struct json_value *op, const char *ref)
{
    const struct json_value *ps = json_get(op, "parameters");
    for (size_t i = 0; ps != NULL && ps->type == JSON_ARRAY && i < ps->n; i++)
        if (is_str(json_get(ps->items[i], "$ref"), ref))
            return 1;
    return 0;
}

/* The route's flags, scope and captures against its operation. */
static void
check_agreement(const struct route *rt, const struct op *o)
{
    const char *where = rt->pattern;
    const char *m = o->method;

    /* Security: bearer for R_AUTH, explicitly none otherwise (the
     * document's default is bearer). */
    const struct json_value *sec = json_get(o->v, "security");
    int bearer = sec != NULL && sec->type == JSON_ARRAY && sec->n > 0 &&
                 json_get(sec->items[0], "bearerAuth") != NULL;
    int open = sec != NULL && sec->type == JSON_ARRAY && sec->n == 0;
    if (rt->flags & R_AUTH) {
        CHECK(bearer, "%s %s: R_AUTH route, but the operation has no bearerAuth security", m, where);
        const char *want = rt->scope == PAY_SCOPE_WRITE ? "payments:write"
                           : rt->scope == PAY_SCOPE_READ ? "payments:read"
                                                         : "payments:admin";
        const struct json_value *scope = json_get(o->v, "x-required-scope");
        CHECK(is_str(scope, want), "%s %s: x-required-scope must be %s", m, where, want);
        CHECK(get_path(o->v, "responses", "401", NULL) != NULL,
              "%s %s: R_AUTH route without a 401 response", m, where);
        CHECK(get_path(o->v, "responses", "403", NULL) != NULL,
              "%s %s: R_AUTH route without a 403 response", m, where);
    } else {
        CHECK(open, "%s %s: public route, but the operation's security is not []", m, where);
        CHECK(json_get(o->v, "x-required-scope") == NULL,
              "%s %s: public route with an x-required-scope", m, where);
    }

    /* Request body media type. */
    const char *want_body = (rt->flags & (R_JSON | R_RAW_JSON)) ? "application/json"
                            : (rt->flags & R_JSON_PATCH) ? "application/json-patch+json"
                            : (rt->flags & R_FORM)       ? "application/x-www-form-urlencoded"
                                                         : NULL;
    const struct json_value *content = get_path(o->v, "requestBody", "content", NULL);
    if (want_body != NULL) {
        CHECK(content != NULL && content->type == JSON_OBJECT && content->n == 1 &&
                  json_get(content, want_body) != NULL,
              "%s %s: the request body must be exactly %s", m, where, want_body);
        CHECK(get_path(o->v, "requestBody", "required", NULL) != NULL &&
                  get_path(o->v, "requestBody", "required", NULL)->type == JSON_BOOL &&
                  get_path(o->v, "requestBody", "required", NULL)->boolean,
              "%s %s: the request body must be required", m, where);
        CHECK(get_path(o->v, "responses", "413", NULL) != NULL,
              "%s %s: body route without a 413 response", m, where);
        CHECK(get_path(o->v, "responses", "415", NULL) != NULL,
              "%s %s: body route without a 415 response", m, where);
    } else {
        CHECK(json_get(o->v, "requestBody") == NULL,
              "%s %s: the route takes no body, but the operation has a requestBody", m, where);
    }

    /* Idempotency-Key. */
    int idem = has_ref_param(o->v, "#/components/parameters/IdempotencyKey");
    if (rt->flags & R_IDEMPOTENT)
        CHECK(idem, "%s %s: R_IDEMPOTENT route without the IdempotencyKey parameter", m, where);
    else
        CHECK(!idem, "%s %s: IdempotencyKey parameter on a route that ignores it", m, where);

    /* Path parameters: one per capture, same names. */
    size_t captures = 0;
    for (const char *p = rt->pattern; (p = strchr(p, ':')) != NULL; p++) {
        char   name[64];
        size_t n = strcspn(p + 1, "/");
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        memcpy(name, p + 1, n);
        name[n] = '\0';
        captures++;
        CHECK(has_path_param(o->v, name), "%s %s: no path parameter '%s'", m, where, name);
    }
    CHECK(count_path_params(o->v) == captures,
          "%s %s: %zu path parameters for %zu captures", m, where,
          count_path_params(o->v), captures);

    /* Every operation: an operationId, a tag, a success response. */
    const struct json_value *id = json_get(o->v, "operationId");
    CHECK(id != NULL && id->type == JSON_STRING && id->len > 0, "%s %s: no operationId", m, where);
    const struct json_value *tags = json_get(o->v, "tags");
    CHECK(tags != NULL && tags->type == JSON_ARRAY && tags->n == 1,
          "%s %s: exactly one tag expected", m, where);
}

static void
check_error_codes(const struct json_value *doc)
{
    const struct json_value *e = get_path(doc, "components", "schemas", "Error");
    const struct json_value *codes = get_path(e, "properties", "code", "enum");
    CHECK(codes != NULL && codes->type == JSON_ARRAY,
          "components.schemas.Error.properties.code.enum is present");
    if (codes == NULL || codes->type != JSON_ARRAY)
        return;
    for (int i = 0; i < PAY_E__COUNT; i++) {
        const char *code = errors_get((enum pay_err)i)->code;
        int         found = 0;
        for (size_t k = 0; k < codes->n; k++)
            found |= is_str(codes->items[k], code);
        CHECK(found, "error code %s (app/errors.def) is missing from the Error schema", code);
    }
    for (size_t k = 0; k < codes->n; k++) {
        int found = 0;
        for (int i = 0; i < PAY_E__COUNT; i++)
            found |= is_str(codes->items[k], errors_get((enum pay_err)i)->code);
        CHECK(found, "Error schema code %s is not in the catalogue (app/errors.def)",
              codes->items[k]->type == JSON_STRING ? codes->items[k]->str : "(not a string)");
    }
}

int
main(void)
{
    struct arena      *a = arena_create(1 << 16);
    struct json_value *doc = NULL;
    const char        *err = NULL;

    CHECK(openapi_json_len > 1000, "the embedded document is suspiciously small (%zu bytes)",
          openapi_json_len);
    CHECK(openapi_json[openapi_json_len] == '\0', "the embedded document is NUL-terminated");
    if (json_parse(a, (const char *)openapi_json, openapi_json_len, &doc, &err) != 0) {
        CHECK(0, "handlers/openapi.json does not parse with json_parse: %s", err);
        return TEST_DONE();
    }
    CHECK(doc->type == JSON_OBJECT, "the document is a JSON object");
    const struct json_value *ver = json_get(doc, "openapi");
    CHECK(ver != NULL && ver->type == JSON_STRING && strncmp(ver->str, "3.0.", 4) == 0,
          "the document declares OpenAPI 3.0.x");
    const struct json_value *paths = json_get(doc, "paths");
    CHECK(paths != NULL && paths->type == JSON_OBJECT, "the document has paths");
    if (paths == NULL || paths->type != JSON_OBJECT)
        return TEST_DONE();
    collect_ops(paths);
    CHECK(nops > 0, "the document has operations");

    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < routes_count; i++) {
        const struct route *rt = &routes_table[i];
        const char         *method = router_method_name(rt->method);
        const char         *path = openapi_path(a, rt->pattern);
        struct op          *o = find_op(method, path);
        if (o == NULL) {
            printf("MISSING from handlers/openapi.json: %s %s (route %s)\n", method, path,
                   rt->pattern);
            missing++;
            continue;
        }
        o->matched++;
        check_agreement(rt, o);
    }
    for (size_t i = 0; i < nops; i++) {
        if (ops[i].matched == 0) {
            printf("NOT IN THE ROUTE TABLE (handlers/routes.c): %s %s\n", ops[i].method,
                   ops[i].path);
            extra++;
        }
        CHECK(ops[i].matched <= 1, "%s %s matches %d routes", ops[i].method, ops[i].path,
              ops[i].matched);
    }
    CHECK(missing == 0, "%zu route(s) of the table are missing from the document", missing);
    CHECK(extra == 0, "%zu operation(s) of the document are not in the route table", extra);
    CHECK(nops == routes_count, "%zu operations for %zu routes", nops, routes_count);

    check_error_codes(doc);

    printf("%zu routes, %zu operations\n", routes_count, nops);
    arena_destroy(a);
    return TEST_DONE();
}
