/*
 * Typed readers of the request's JSON body (see body.h). They reject wrong
 * JSON types rather than coercing: "12" is not a number and 12 is not a
 * string.
 */
#include "body.h"

#include <string.h>

#include "money.h"
#include "query.h"
#include "text.h"

int
body_object_or_fail(struct req *r, const char *const *allowed)
{
    const struct json_value *b = r->json;
    if (b == NULL || b->type != JSON_OBJECT)
        return req_failf(r, PAY_E_INVALID_JSON, NULL,
                         "the request body must be a JSON object");
    /* null means absent (a generated client sends its whole model, the
     * server-assigned "id": null included); only a field with a value
     * must be known. */
    for (size_t i = 0; i < b->n; i++)
        if (b->items[i]->type != JSON_NULL && enum_index(allowed, b->keys[i]) < 0)
            return req_failf(r, PAY_E_UNKNOWN_FIELD, b->keys[i],
                             "unknown field '%s'",
                             text_echo(r->arena, b->keys[i], 64));
    return 0;
}

/* Fetches a field; NULL when absent or JSON null. */
static const struct json_value *
field(struct req *r, const char *name)
{
    const struct json_value *v = json_get(r->json, name);
    return (v == NULL || v->type == JSON_NULL) ? NULL : v;
}

static int
missing(struct req *r, const char *name)
{
    return req_failf(r, PAY_E_MISSING_FIELD, name, "%s is required", name);
}

int
body_id_or_fail(struct req *r, const char *name, int required, int64_t *out,
                int *present)
{
    const struct json_value *v = field(r, name);
    if (present != NULL)
        *present = v != NULL;
    if (v == NULL)
        return required ? missing(r, name) : 0;
    if (v->type != JSON_NUMBER || parse_id(v->str, out) != 0)
        return req_failf(r, PAY_E_INVALID_FIELD, name,
                         "%s must be a positive integer", name);
    return 0;
}

int
body_str_or_fail(struct req *r, const char *name, int required,
                 size_t max_chars, const char **out)
{
    const struct json_value *v = field(r, name);
    *out = NULL;
    if (v == NULL)
        return required ? missing(r, name) : 0;
    if (v->type != JSON_STRING)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s must be a string", name);
    if (!text_valid(v->str, v->len, max_chars))
        return req_failf(r, PAY_E_INVALID_FIELD, name,
                         "%s must be at most %zu characters without control characters",
                         name, max_chars);
    /* "" is a value: texts are 0..max characters (spec 1.7), required
     * only means present. */
    *out = v->str;
    return 0;
}

int
body_enum_or_fail(struct req *r, const char *name, int required,
                  const char *const *vals, const char **out)
{
    const struct json_value *v = field(r, name);
    *out = NULL;
    if (v == NULL || (v->type == JSON_STRING && v->len == 0))
        return required ? missing(r, name) : 0;
    if (v->type != JSON_STRING || enum_index(vals, v->str) < 0)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s has an unknown value",
                         name);
    *out = vals[enum_index(vals, v->str)];
    return 0;
}

int
body_number_or_fail(struct req *r, const char *name, const char **text)
{
    const struct json_value *v = field(r, name);
    if (v == NULL)
        return missing(r, name);
    if (v->type != JSON_NUMBER)
        return req_failf(r, PAY_E_INVALID_FIELD, name, "%s must be a JSON number",
                         name);
    *text = v->str;
    return 0;
}

int
body_money_or_fail(struct req *r, const char *name, const char *text,
                   int digits, int64_t lo, int64_t hi, int allow_zero,
                   int64_t *out)
{
    int rc = money_parse(text, strlen(text), digits, out);
    if (rc == MONEY_EPRECISION)
        return req_failf(r, PAY_E_INVALID_AMOUNT, name,
                         "%s has more than %d decimals", name, digits);
    if (rc != 0 || *out < lo || *out > hi || (!allow_zero && *out == 0))
        return req_failf(r, PAY_E_INVALID_AMOUNT, name,
                         "%s must be between %s and %s%s", name,
                         money_text(r, lo, digits), money_text(r, hi, digits),
                         allow_zero ? "" : " and not 0");
    return 0;
}

const char *
money_text(struct req *r, int64_t minor, int digits)
{
    char buf[MONEY_FMT_MAX];
    money_format(minor, digits, buf, sizeof(buf));
    return arena_strdup(r->arena, buf);
}

