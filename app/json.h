/*
 * JSON in and out.
 * In: yajl's callback parser builds an arena-resident tree. Numbers keep
 * their raw text (money is parsed from it, never through double);
 * duplicate keys, nesting deeper than JSON_MAX_DEPTH, NUL bytes in
 * strings and invalid UTF-8 are rejected. Nothing leaks on bad input:
 * yajl allocates from the arena too.
 * Out: a writer (struct json_gen, struct json_gen *inside) over the arena with a
 * caller-supplied print callback, with one call per value shape the API
 * uses. No other file of the project uses yajl.
 */
#ifndef PAY_APP_JSON_H
#define PAY_APP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "arena.h"

#define JSON_MAX_DEPTH 32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value {
    enum json_type type;
    int            boolean;
    const char    *str;   /* string contents or number text, NUL-terminated */
    size_t         len;
    size_t         n;     /* items or members */
    struct json_value **items;
    const char   **keys;  /* objects only */
};

/* Parses buf[0..len). Returns 0 and *out, or -1 with a client-safe
 * message in *err (arena memory). */
int json_parse(struct arena *a, const char *buf, size_t len,
               struct json_value **out, const char **err);
/* Member of an object, or NULL. */
struct json_value *json_get(const struct json_value *obj, const char *key);

/* Generator whose output is passed to print(ctx, bytes, n); it lives in
 * the arena. */
struct json_gen;
struct json_gen *json_gen_new(struct arena *a,
                              void (*print)(void *ctx, const char *s, size_t n),
                              void *ctx);
void json_map_open(struct json_gen *g);
void json_map_close(struct json_gen *g);
void json_array_open(struct json_gen *g);
void json_array_close(struct json_gen *g);
void json_key(struct json_gen *g, const char *key);
void json_str(struct json_gen *g, const char *s);          /* NULL → null */
void json_strn(struct json_gen *g, const char *s, size_t n);
void json_i64(struct json_gen *g, int64_t v);
void json_bool(struct json_gen *g, int v);
void json_null(struct json_gen *g);
/* Money: minor units written as a JSON number with `digits` decimals. */
void json_money(struct json_gen *g, int64_t minor, int digits);
/* Emits a parsed value again (used for stored metaData etc.). */
void json_value_gen(struct json_gen *g, const struct json_value *v);

#endif
