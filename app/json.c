/*
 * JSON parsing into an arena tree with yajl's callback parser, and yajl_gen
 * helpers. yajl's allocator is pointed at the request arena (free is a
 * no-op, realloc copies using a size header), so a parse error in the
 * middle of a document leaks nothing: the arena reset reclaims it all.
 */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_parse.h>

#include "money.h"
#include "text.h"

/* ---- arena-backed allocator for yajl ---------------------------------- */

static void *
afs_malloc(void *ctx, size_t n)
{
    size_t *p = arena_alloc(ctx, n + 16);
    p[0] = n;
    return (char *)p + 16;
}

static void *
afs_realloc(void *ctx, void *ptr, size_t n)
{
    if (ptr == NULL)
        return afs_malloc(ctx, n);
    size_t old = *(size_t *)((char *)ptr - 16);
    if (n <= old)
        return ptr;
    void *q = afs_malloc(ctx, n);
    memcpy(q, ptr, old);
    return q;
}

static void
afs_free(void *ctx, void *ptr)
{
    (void)ctx;
    (void)ptr;
}

static void
afs_init(yajl_alloc_funcs *f, struct arena *a)
{
    f->malloc = afs_malloc;
    f->realloc = afs_realloc;
    f->free = afs_free;
    f->ctx = a;
}

/* ---- parser ------------------------------------------------------------ */

struct frame {
    struct json_value *v;
    size_t             cap;
};

struct pctx {
    struct arena      *a;
    struct json_value *root;
    struct frame       stack[JSON_MAX_DEPTH + 1];
    int                depth;
    const char        *pending_key; /* key awaiting its value */
    const char        *err;
};

static struct json_value *
node(struct pctx *c, enum json_type t)
{
    struct json_value *v = arena_zalloc(c->a, sizeof(*v));
    v->type = t;
    return v;
}

/* Attaches v to the current container (or makes it the root). */
static int
attach(struct pctx *c, struct json_value *v)
{
    if (c->depth == 0) {
        c->root = v;
        return 1;
    }
    struct frame      *f = &c->stack[c->depth - 1];
    struct json_value *p = f->v;
    if (p->n == f->cap) {
        size_t ncap = f->cap ? f->cap * 2 : 8;
        p->items = arena_realloc(c->a, p->items, f->cap * sizeof(*p->items),
                                 ncap * sizeof(*p->items));
        if (p->type == JSON_OBJECT)
            p->keys = arena_realloc(c->a, p->keys, f->cap * sizeof(*p->keys),
                                    ncap * sizeof(*p->keys));
        f->cap = ncap;
    }
    if (p->type == JSON_OBJECT) {
        p->keys[p->n] = c->pending_key;
        c->pending_key = NULL;
    }
    p->items[p->n++] = v;
    return 1;
}

static int
push(struct pctx *c, struct json_value *v)
{
    if (c->depth >= JSON_MAX_DEPTH) {
        c->err = "JSON nested too deeply";
        return 0;
    }
    attach(c, v);
    c->stack[c->depth].v = v;
    c->stack[c->depth].cap = 0;
    c->depth++;
    return 1;
}

static int
cb_null(void *ctx)
{
    struct pctx *c = ctx;
    return attach(c, node(c, JSON_NULL));
}

static int
cb_bool(void *ctx, int b)
{
    struct pctx       *c = ctx;
    struct json_value *v = node(c, JSON_BOOL);
    v->boolean = b != 0;
    return attach(c, v);
}

static int
cb_number(void *ctx, const char *s, size_t n)
{
    struct pctx *c = ctx;
    if (n > 64) {
        c->err = "number too long";
        return 0;
    }
    struct json_value *v = node(c, JSON_NUMBER);
    v->str = arena_strndup(c->a, s, n);
    v->len = n;
    return attach(c, v);
}

static int
check_text(struct pctx *c, const unsigned char *s, size_t n)
{
    if (memchr(s, '\0', n) != NULL) {
        c->err = "NUL character in string";
        return 0;
    }
    if (!text_utf8_valid((const char *)s, n)) {
        c->err = "invalid UTF-8 in string";
        return 0;
    }
    return 1;
}

static int
cb_string(void *ctx, const unsigned char *s, size_t n)
{
    struct pctx *c = ctx;
    if (!check_text(c, s, n))
        return 0;
    struct json_value *v = node(c, JSON_STRING);
    v->str = arena_strndup(c->a, (const char *)s, n);
    v->len = n;
    return attach(c, v);
}

static int
cb_start_map(void *ctx)
{
    struct pctx *c = ctx;
    return push(c, node(c, JSON_OBJECT));
}

static int
cb_map_key(void *ctx, const unsigned char *s, size_t n)
{
    struct pctx       *c = ctx;
    struct json_value *obj = c->stack[c->depth - 1].v;
    if (!check_text(c, s, n))
        return 0;
    for (size_t i = 0; i < obj->n; i++) {
        if (strlen(obj->keys[i]) == n && memcmp(obj->keys[i], s, n) == 0) {
            c->err = arena_printf(c->a, "duplicate key \"%s\"",
                                  text_echo(c->a, arena_strndup(c->a, (const char *)s, n > 64 ? 64 : n), 64));
            return 0;
        }
    }
    c->pending_key = arena_strndup(c->a, (const char *)s, n);
    return 1;
}

static int
cb_end(void *ctx)
{
    struct pctx *c = ctx;
    c->depth--;
    return 1;
}

static int
cb_start_array(void *ctx)
{
    struct pctx *c = ctx;
    return push(c, node(c, JSON_ARRAY));
}

static const yajl_callbacks callbacks = {
    cb_null, cb_bool, NULL, NULL, cb_number, cb_string,
    cb_start_map, cb_map_key, cb_end, cb_start_array, cb_end,
};

static int
hex4(const char *p, const char *end, unsigned *v)
{
    *v = 0;
    if (end - p < 4)
        return 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = (c >= '0' && c <= '9') ? (unsigned)(c - '0')
                   : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                   : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10) : 16u;
        if (d > 15)
            return 0;
        *v = *v << 4 | d;
    }
    return 1;
}

/* yajl turns a lone high surrogate escape into '?' and pairs it with any
 * following \u escape, silently changing the text; refuse both. */
static int
surrogates_paired(const char *p, size_t len)
{
    const char *end = p + len;
    unsigned    v, w;
    for (; p < end; p++) {
        if (*p != '\\')
            continue;
        if (++p >= end)
            break;
        if (*p != 'u' || !hex4(p + 1, end, &v))
            continue;
        p += 4;
        if (v >= 0xDC00 && v <= 0xDFFF)
            return 0;
        if (v >= 0xD800 && v <= 0xDBFF) {
            if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || !hex4(p + 3, end, &w) ||
                w < 0xDC00 || w > 0xDFFF)
                return 0;
            p += 6;
        }
    }
    return 1;
}

int
json_parse(struct arena *a, const char *buf, size_t len,
           struct json_value **out, const char **err)
{
    yajl_alloc_funcs afs;
    struct pctx      c;

    if (!surrogates_paired(buf, len)) {
        *err = "invalid \\u escape: unpaired UTF-16 surrogate";
        return -1;
    }
    memset(&c, 0, sizeof(c));
    c.a = a;
    afs_init(&afs, a);
    yajl_handle h = yajl_alloc(&callbacks, &afs, &c);
    /* Strict: no comments (default off), validate UTF-8 (default on). */
    yajl_status st = yajl_parse(h, (const unsigned char *)buf, len);
    if (st == yajl_status_ok)
        st = yajl_complete_parse(h);
    if (st != yajl_status_ok || c.root == NULL) {
        if (c.err == NULL) {
            unsigned char *e = yajl_get_error(h, 0, (const unsigned char *)buf, len);
            /* yajl's text ends in a newline: trim it, keep the message a
             * clean sentence. */
            char *msg = arena_strdup(a, e ? (char *)e : "parse error");
            size_t n = strlen(msg);
            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                msg[--n] = '\0';
            c.err = arena_printf(a, "invalid JSON (%s)", text_echo(a, msg, 200));
            yajl_free_error(h, e);
        }
        yajl_free(h);
        *err = c.err;
        return -1;
    }
    yajl_free(h);
    *out = c.root;
    return 0;
}

struct json_value *
json_get(const struct json_value *obj, const char *key)
{
    if (obj == NULL || obj->type != JSON_OBJECT)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->items[i];
    return NULL;
}

/* ---- generator ---------------------------------------------------------- */

struct json_gen {
    yajl_gen y;
};

struct json_gen *
json_gen_new(struct arena *a, void (*print)(void *ctx, const char *s, size_t n),
             void *ctx)
{
    yajl_alloc_funcs *afs = arena_alloc(a, sizeof(*afs));
    struct json_gen  *g = arena_alloc(a, sizeof(*g));
    afs_init(afs, a);
    g->y = yajl_gen_alloc(afs);
    yajl_gen_config(g->y, yajl_gen_print_callback, print, ctx);
    yajl_gen_config(g->y, yajl_gen_validate_utf8, 1);
    /* yajl_gen_free only frees into the arena; the handle dies with it. */
    return g;
}

void
json_map_open(struct json_gen *g)
{
    yajl_gen_map_open(g->y);
}

void
json_map_close(struct json_gen *g)
{
    yajl_gen_map_close(g->y);
}

void
json_array_open(struct json_gen *g)
{
    yajl_gen_array_open(g->y);
}

void
json_array_close(struct json_gen *g)
{
    yajl_gen_array_close(g->y);
}

void
json_key(struct json_gen *g, const char *key)
{
    yajl_gen_string(g->y, (const unsigned char *)key, strlen(key));
}

void
json_strn(struct json_gen *g, const char *s, size_t n)
{
    if (s == NULL) {
        yajl_gen_null(g->y);
        return;
    }
    if (yajl_gen_string(g->y, (const unsigned char *)s, n) != yajl_gen_status_ok)
        yajl_gen_null(g->y); /* keeps the document well formed */
}

void
json_str(struct json_gen *g, const char *s)
{
    json_strn(g, s, s ? strlen(s) : 0);
}

void
json_i64(struct json_gen *g, int64_t v)
{
    char buf[MONEY_FMT_MAX];
    int  n = money_format(v, 0, buf, sizeof(buf)); /* digits 0: plain integer */
    yajl_gen_number(g->y, buf, (size_t)n);
}

void
json_bool(struct json_gen *g, int v)
{
    yajl_gen_bool(g->y, v != 0);
}

void
json_null(struct json_gen *g)
{
    yajl_gen_null(g->y);
}

void
json_money(struct json_gen *g, int64_t minor, int digits)
{
    char buf[MONEY_FMT_MAX];
    int  n = money_format(minor, digits, buf, sizeof(buf));
    if (n < 0)
        yajl_gen_null(g->y);
    else
        yajl_gen_number(g->y, buf, (size_t)n);
}

void
json_value_gen(struct json_gen *g, const struct json_value *v)
{
    if (v == NULL) {
        yajl_gen_null(g->y);
        return;
    }
    switch (v->type) {
    case JSON_NULL:   yajl_gen_null(g->y); break;
    case JSON_BOOL:   yajl_gen_bool(g->y, v->boolean); break;
    case JSON_NUMBER: yajl_gen_number(g->y, v->str, v->len); break;
    case JSON_STRING: json_strn(g, v->str, v->len); break;
    case JSON_ARRAY:
        yajl_gen_array_open(g->y);
        for (size_t i = 0; i < v->n; i++)
            json_value_gen(g, v->items[i]);
        yajl_gen_array_close(g->y);
        break;
    case JSON_OBJECT:
        yajl_gen_map_open(g->y);
        for (size_t i = 0; i < v->n; i++) {
            json_key(g, v->keys[i]);
            json_value_gen(g, v->items[i]);
        }
        yajl_gen_map_close(g->y);
        break;
    }
}
