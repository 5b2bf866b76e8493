/*
 * JSON Patch (RFC 6902) and JSON Pointer (RFC 6901) over arena JSON trees.
 * The patch runs on a private deep copy of the document, so operations
 * may edit it in place and a failure part-way simply abandons the copy:
 * all or nothing without an undo log. Values taken from the patch are
 * deep-copied before they enter the document, so the patch itself stays
 * untouched (the pipeline may run a handler, and so the patch, twice).
 * Everything lives in the caller's arena. Recursion is bounded by the
 * nesting limit the applier enforces on every insertion.
 */
#include "jsonpatch.h"

#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "text.h"

struct ctx {
    struct arena           *a;
    size_t                  nodes;  /* created so far, against the budget */
    size_t                  op;     /* index of the running operation */
    const char             *name;   /* its op name, for messages */
    struct jsonpatch_error *err;
};

static enum jsonpatch_rc
fail(struct ctx *c, enum jsonpatch_rc rc, const char *member,
     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum jsonpatch_rc
fail(struct ctx *c, enum jsonpatch_rc rc, const char *member,
     const char *fmt, ...)
{
    va_list ap;
    if (c->err == NULL)
        return rc;
    va_start(ap, fmt);
    const char *what = arena_vprintf(c->a, fmt, ap);
    va_end(ap);
    c->err->rc = rc;
    c->err->op = c->op;
    c->err->member = member;
    if (c->name != NULL)
        c->err->message = arena_printf(c->a, "operation %zu (%s): %s", c->op,
                                       c->name, what);
    else
        c->err->message = arena_printf(c->a, "operation %zu: %s", c->op, what);
    return rc;
}

static const char *
echo(struct ctx *c, const char *s)
{
    return text_echo(c->a, s, 64);
}

/* ---- copies, depth, equality --------------------------------------------- */

/* Deep copy counting nodes against the budget; NULL once it is spent. */
static struct json_value *
copy_counted(struct arena *a, const struct json_value *v, size_t *nodes,
             size_t budget)
{
    if (++*nodes > budget)
        return NULL;
    struct json_value *n = arena_alloc(a, sizeof(*n));
    *n = *v;
    if (v->str != NULL)
        n->str = arena_strndup(a, v->str, v->len);
    if (v->type != JSON_ARRAY && v->type != JSON_OBJECT) {
        n->n = 0;
        n->items = NULL;
        n->keys = NULL;
        return n;
    }
    n->items = v->n ? ARENA_NEW(a, struct json_value *, v->n) : NULL;
    n->keys = (v->type == JSON_OBJECT && v->n)
                  ? ARENA_NEW(a, const char *, v->n) : NULL;
    for (size_t i = 0; i < v->n; i++) {
        if ((n->items[i] = copy_counted(a, v->items[i], nodes, budget)) == NULL)
            return NULL;
        if (v->type == JSON_OBJECT)
            n->keys[i] = arena_strdup(a, v->keys[i]);
    }
    return n;
}

struct json_value *
jsonpatch_copy(struct arena *a, const struct json_value *v)
{
    size_t nodes = 0;
    return v ? copy_counted(a, v, &nodes, SIZE_MAX) : NULL;
}

/* Containers nested in v, v included (a scalar is 0). */
static size_t
depth_of(const struct json_value *v)
{
    size_t d = 0;
    if (v->type != JSON_ARRAY && v->type != JSON_OBJECT)
        return 0;
    for (size_t i = 0; i < v->n; i++) {
        size_t k = depth_of(v->items[i]);
        if (k > d)
            d = k;
    }
    return d + 1;
}

/* A JSON number as sign, significant digits and a power of ten: the
 * digits are the concatenation int[0..ni) frac[0..nf) with leading and
 * trailing zeros trimmed (trailing zeros moved into exp). */
struct dec {
    int         neg;
    const char *i, *f;
    size_t      ni, nf;
    int64_t     exp;
    int         huge; /* |exponent| beyond DEC_EXP_MAX: exp is not valid */
};

#define DEC_EXP_MAX 100000000000000000LL /* 10^17: beyond it, compare text */

static size_t
digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* 0, or -1 when the text is not a JSON number. */
static int
dec_parse(const char *s, struct dec *d)
{
    int64_t e = 0;
    int     eneg = 0;

    memset(d, 0, sizeof(*d));
    if (*s == '-') {
        d->neg = 1;
        s++;
    }
    d->i = s;
    d->ni = digits(s);
    if (d->ni == 0)
        return -1;
    s += d->ni;
    if (*s == '.') {
        d->f = ++s;
        d->nf = digits(s);
        if (d->nf == 0)
            return -1;
        s += d->nf;
    } else {
        d->f = s;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-')
            eneg = *s++ == '-';
        if (*s < '0' || *s > '9')
            return -1;
        for (; *s >= '0' && *s <= '9'; s++)
            if (!d->huge && (e = e * 10 + (*s - '0')) > DEC_EXP_MAX)
                d->huge = 1;
    }
    if (*s != '\0')
        return -1;
    d->exp = (eneg ? -e : e) - (int64_t)d->nf;
    /* Trim leading zeros (through the point) and trailing zeros. */
    while (d->ni > 0 && d->i[0] == '0') {
        d->i++;
        d->ni--;
    }
    if (d->ni == 0)
        while (d->nf > 0 && d->f[0] == '0') {
            d->f++;
            d->nf--;
        }
    while (d->nf > 0 && d->f[d->nf - 1] == '0') {
        d->nf--;
        d->exp++;
    }
    if (d->nf == 0)
        while (d->ni > 0 && d->i[d->ni - 1] == '0') {
            d->ni--;
            d->exp++;
        }
    return 0;
}

static char
dec_digit(const struct dec *d, size_t k)
{
    return k < d->ni ? d->i[k] : d->f[k - d->ni];
}

static int
number_equal(const struct json_value *a, const struct json_value *b)
{
    struct dec x, y;
    if (dec_parse(a->str, &x) != 0 || dec_parse(b->str, &y) != 0)
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    size_t n = x.ni + x.nf;
    if (n != y.ni + y.nf)
        return 0;
    if (n == 0)
        return 1; /* both zero, whatever the sign or exponent */
    if (x.huge || y.huge)
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    if (x.neg != y.neg || x.exp != y.exp)
        return 0;
    for (size_t k = 0; k < n; k++)
        if (dec_digit(&x, k) != dec_digit(&y, k))
            return 0;
    return 1;
}

int
jsonpatch_equal(const struct json_value *a, const struct json_value *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    if (a->type != b->type)
        return 0;
    switch (a->type) {
    case JSON_NULL:   return 1;
    case JSON_BOOL:   return (a->boolean != 0) == (b->boolean != 0);
    case JSON_NUMBER: return number_equal(a, b);
    case JSON_STRING: return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case JSON_ARRAY:
        if (a->n != b->n)
            return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!jsonpatch_equal(a->items[i], b->items[i]))
                return 0;
        return 1;
    case JSON_OBJECT:
        if (a->n != b->n)
            return 0;
        for (size_t i = 0; i < a->n; i++)
            if (!jsonpatch_equal(a->items[i], json_get(b, a->keys[i])))
                return 0;
        return 1;
    }
    return 0;
}

/* ---- pointers -------------------------------------------------------------- */

int
jsonpatch_pointer_parse(struct arena *a, const char *ptr, const char ***tokens,
                        size_t *ntokens)
{
    size_t n = 0;

    *tokens = NULL;
    *ntokens = 0;
    if (ptr == NULL || (*ptr != '\0' && *ptr != '/'))
        return -1;
    for (const char *p = ptr; *p; p++) {
        if (*p == '/')
            n++;
        else if (*p == '~' && p[1] != '0' && p[1] != '1')
            return -1;
    }
    if (n == 0)
        return 0;
    const char **t = ARENA_NEW(a, const char *, n);
    const char  *p = ptr + 1;
    for (size_t k = 0; k < n; k++) {
        size_t len = strcspn(p, "/");
        char  *s = arena_alloc(a, len + 1);
        size_t o = 0;
        for (size_t j = 0; j < len; j++) {
            if (p[j] == '~') {
                s[o++] = p[j + 1] == '1' ? '/' : '~';
                j++;
            } else {
                s[o++] = p[j];
            }
        }
        s[o] = '\0';
        t[k] = s;
        p += len + 1;
    }
    *tokens = t;
    *ntokens = n;
    return 0;
}

/* An array index token: "0" or [1-9][0-9]* (at most 18 digits). */
static int
index_parse(const char *tok, size_t *out)
{
    size_t n = strlen(tok), v = 0;
    if (n == 0 || n > 18 || (n > 1 && tok[0] == '0'))
        return -1;
    for (size_t k = 0; k < n; k++) {
        if (tok[k] < '0' || tok[k] > '9')
            return -1;
        v = v * 10 + (size_t)(tok[k] - '0');
    }
    *out = v;
    return 0;
}

/* Position of the existing child tok of v in v->items, or -1. */
static int
child_pos(const struct json_value *v, const char *tok, size_t *pos)
{
    if (v->type == JSON_OBJECT) {
        for (size_t k = 0; k < v->n; k++)
            if (strcmp(v->keys[k], tok) == 0) {
                *pos = k;
                return 0;
            }
        return -1;
    }
    if (v->type == JSON_ARRAY)
        return index_parse(tok, pos) == 0 && *pos < v->n ? 0 : -1;
    return -1;
}

/* The value at tokens[0..n) below v, or NULL. */
static struct json_value *
walk(struct json_value *v, const char *const *tokens, size_t n)
{
    size_t pos;
    for (size_t k = 0; k < n && v != NULL; k++)
        v = child_pos(v, tokens[k], &pos) == 0 ? v->items[pos] : NULL;
    return v;
}

const struct json_value *
jsonpatch_get(struct arena *a, const struct json_value *doc, const char *ptr)
{
    const char **t;
    size_t       n;
    if (doc == NULL || jsonpatch_pointer_parse(a, ptr, &t, &n) != 0)
        return NULL;
    /* walk() never writes; the cast only shares the code. */
    return walk((struct json_value *)(uintptr_t)doc, t, n);
}

/* ---- operations ------------------------------------------------------------ */

struct ptr {
    const char  *text;
    const char **t;
    size_t       n;
};

/* Adds value (already owned by the document) at p. */
static enum jsonpatch_rc
op_add(struct ctx *c, struct json_value **root, const struct ptr *p,
       struct json_value *value, const char *member)
{
    if (p->n + depth_of(value) > JSON_MAX_DEPTH)
        return fail(c, JSONPATCH_E_INVALID, member,
                    "the result would nest deeper than %d levels", JSON_MAX_DEPTH);
    if (p->n == 0) {
        *root = value;
        return JSONPATCH_OK;
    }
    struct json_value *parent = walk(*root, p->t, p->n - 1);
    const char        *last = p->t[p->n - 1];
    size_t             pos;
    if (parent == NULL || (parent->type != JSON_OBJECT && parent->type != JSON_ARRAY))
        return fail(c, JSONPATCH_E_PATH, member,
                    "the parent of \"%s\" does not exist or is not a container",
                    echo(c, p->text));
    if (parent->type == JSON_OBJECT) {
        if (child_pos(parent, last, &pos) == 0) {
            parent->items[pos] = value;
            return JSONPATCH_OK;
        }
        parent->keys = arena_realloc(c->a, parent->keys,
                                     parent->n * sizeof(*parent->keys),
                                     (parent->n + 1) * sizeof(*parent->keys));
        parent->items = arena_realloc(c->a, parent->items,
                                      parent->n * sizeof(*parent->items),
                                      (parent->n + 1) * sizeof(*parent->items));
        parent->keys[parent->n] = arena_strdup(c->a, last);
        parent->items[parent->n++] = value;
        return JSONPATCH_OK;
    }
    if (strcmp(last, "-") == 0)
        pos = parent->n;
    else if (index_parse(last, &pos) != 0 || pos > parent->n)
        return fail(c, JSONPATCH_E_PATH, member,
                    "\"%s\" is not an index from 0 to %zu or \"-\"",
                    echo(c, p->text), parent->n);
    parent->items = arena_realloc(c->a, parent->items,
                                  parent->n * sizeof(*parent->items),
                                  (parent->n + 1) * sizeof(*parent->items));
    memmove(parent->items + pos + 1, parent->items + pos,
            (parent->n - pos) * sizeof(*parent->items));
    parent->items[pos] = value;
    parent->n++;
    return JSONPATCH_OK;
}

/* Finds the existing target of p: its parent and position (parent NULL
 * for the whole document). */
static enum jsonpatch_rc
target(struct ctx *c, struct json_value *root, const struct ptr *p,
       const char *member, struct json_value **parent, size_t *pos)
{
    *parent = NULL;
    *pos = 0;
    if (p->n == 0)
        return JSONPATCH_OK;
    *parent = walk(root, p->t, p->n - 1);
    if (*parent == NULL || child_pos(*parent, p->t[p->n - 1], pos) != 0)
        return fail(c, JSONPATCH_E_PATH, member, "\"%s\" does not exist",
                    echo(c, p->text));
    return JSONPATCH_OK;
}

static enum jsonpatch_rc
op_remove(struct ctx *c, struct json_value **root, const struct ptr *p,
          const char *member, struct json_value **removed)
{
    struct json_value *parent;
    size_t             pos;
    enum jsonpatch_rc  rc;

    if (p->n == 0)
        return fail(c, JSONPATCH_E_INVALID, member,
                    "the whole document cannot be removed");
    if ((rc = target(c, *root, p, member, &parent, &pos)) != JSONPATCH_OK)
        return rc;
    if (removed != NULL)
        *removed = parent->items[pos];
    memmove(parent->items + pos, parent->items + pos + 1,
            (parent->n - pos - 1) * sizeof(*parent->items));
    if (parent->type == JSON_OBJECT)
        memmove(parent->keys + pos, parent->keys + pos + 1,
                (parent->n - pos - 1) * sizeof(*parent->keys));
    parent->n--;
    return JSONPATCH_OK;
}

static enum jsonpatch_rc
op_replace(struct ctx *c, struct json_value **root, const struct ptr *p,
           struct json_value *value)
{
    struct json_value *parent;
    size_t             pos;
    enum jsonpatch_rc  rc;

    if ((rc = target(c, *root, p, "path", &parent, &pos)) != JSONPATCH_OK)
        return rc;
    if (p->n + depth_of(value) > JSON_MAX_DEPTH)
        return fail(c, JSONPATCH_E_INVALID, "value",
                    "the result would nest deeper than %d levels", JSON_MAX_DEPTH);
    if (parent == NULL)
        *root = value;
    else
        parent->items[pos] = value;
    return JSONPATCH_OK;
}

/* 1 if a's tokens are a proper prefix of b's. */
static int
proper_prefix(const struct ptr *a, const struct ptr *b)
{
    if (a->n >= b->n)
        return 0;
    for (size_t k = 0; k < a->n; k++)
        if (strcmp(a->t[k], b->t[k]) != 0)
            return 0;
    return 1;
}

static int
same_location(const struct ptr *a, const struct ptr *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t k = 0; k < a->n; k++)
        if (strcmp(a->t[k], b->t[k]) != 0)
            return 0;
    return 1;
}

/* A pointer member of operation o ("path" or "from"). */
static enum jsonpatch_rc
pointer_member(struct ctx *c, const struct json_value *o, const char *member,
               struct ptr *p)
{
    const struct json_value *v = json_get(o, member);
    if (v == NULL)
        return fail(c, JSONPATCH_E_INVALID, member, "%s is required", member);
    if (v->type != JSON_STRING)
        return fail(c, JSONPATCH_E_INVALID, member, "%s must be a string", member);
    p->text = v->str;
    if (jsonpatch_pointer_parse(c->a, v->str, &p->t, &p->n) != 0)
        return fail(c, JSONPATCH_E_INVALID, member,
                    "%s \"%s\" is not a JSON Pointer (RFC 6901)", member,
                    echo(c, v->str));
    return JSONPATCH_OK;
}

/* A copy of v for the document, counted against the node budget. */
static enum jsonpatch_rc
owned_copy(struct ctx *c, const struct json_value *v, const char *member,
           struct json_value **out)
{
    *out = copy_counted(c->a, v, &c->nodes, JSONPATCH_MAX_NODES);
    if (*out == NULL)
        return fail(c, JSONPATCH_E_INVALID, member,
                    "the result would exceed %d values", JSONPATCH_MAX_NODES);
    return JSONPATCH_OK;
}

static const char *const OPS[] = {"add", "remove", "replace", "move", "copy",
                                  "test", NULL};
enum { OP_ADD, OP_REMOVE, OP_REPLACE, OP_MOVE, OP_COPY, OP_TEST };

static enum jsonpatch_rc
apply_one(struct ctx *c, struct json_value **root, const struct json_value *o)
{
    const struct json_value *opv, *value = NULL;
    struct json_value       *v, *parent;
    struct ptr               path, from;
    enum jsonpatch_rc        rc;
    size_t                   pos;
    int                      op = -1;

    if (o->type != JSON_OBJECT)
        return fail(c, JSONPATCH_E_INVALID, NULL, "an operation must be an object");
    if ((opv = json_get(o, "op")) == NULL)
        return fail(c, JSONPATCH_E_INVALID, "op", "op is required");
    if (opv->type != JSON_STRING)
        return fail(c, JSONPATCH_E_INVALID, "op", "op must be a string");
    for (int k = 0; OPS[k] != NULL; k++)
        if (strcmp(OPS[k], opv->str) == 0)
            op = k;
    if (op < 0)
        return fail(c, JSONPATCH_E_INVALID, "op",
                    "unknown op \"%s\" (add, remove, replace, move, copy or test)",
                    echo(c, opv->str));
    c->name = OPS[op];
    if ((rc = pointer_member(c, o, "path", &path)) != JSONPATCH_OK)
        return rc;
    if ((op == OP_MOVE || op == OP_COPY) &&
        (rc = pointer_member(c, o, "from", &from)) != JSONPATCH_OK)
        return rc;
    if ((op == OP_ADD || op == OP_REPLACE || op == OP_TEST) &&
        (value = json_get(o, "value")) == NULL)
        return fail(c, JSONPATCH_E_INVALID, "value", "value is required");

    switch (op) {
    case OP_ADD:
        if ((rc = owned_copy(c, value, "value", &v)) != JSONPATCH_OK)
            return rc;
        return op_add(c, root, &path, v, "path");
    case OP_REMOVE:
        return op_remove(c, root, &path, "path", NULL);
    case OP_REPLACE:
        if ((rc = owned_copy(c, value, "value", &v)) != JSONPATCH_OK)
            return rc;
        return op_replace(c, root, &path, v);
    case OP_MOVE:
        if (proper_prefix(&from, &path))
            return fail(c, JSONPATCH_E_INVALID, "from",
                        "\"%s\" cannot be moved into its own child",
                        echo(c, from.text));
        if (same_location(&from, &path))
            return target(c, *root, &from, "from", &parent, &pos);
        if ((rc = op_remove(c, root, &from, "from", &v)) != JSONPATCH_OK)
            return rc;
        return op_add(c, root, &path, v, "path");
    case OP_COPY:
        if ((rc = target(c, *root, &from, "from", &parent, &pos)) != JSONPATCH_OK)
            return rc;
        if ((rc = owned_copy(c, parent ? parent->items[pos] : *root, "from",
                             &v)) != JSONPATCH_OK)
            return rc;
        return op_add(c, root, &path, v, "path");
    default: /* OP_TEST */
        if ((rc = target(c, *root, &path, "path", &parent, &pos)) != JSONPATCH_OK)
            return rc;
        if (!jsonpatch_equal(parent ? parent->items[pos] : *root, value))
            return fail(c, JSONPATCH_E_TEST, "value",
                        "the value at \"%s\" is not the one given",
                        echo(c, path.text));
        return JSONPATCH_OK;
    }
}

enum jsonpatch_rc
jsonpatch_apply(struct arena *a, const struct json_value *doc,
                const struct json_value *patch, struct json_value **out,
                struct jsonpatch_error *err)
{
    struct ctx         c = {a, 0, 0, NULL, err};
    struct json_value *root;
    enum jsonpatch_rc  rc;

    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof(*err));
    if (patch == NULL || patch->type != JSON_ARRAY || doc == NULL) {
        if (err != NULL) {
            err->rc = JSONPATCH_E_INVALID;
            err->message = patch == NULL || patch->type != JSON_ARRAY
                               ? "a JSON Patch must be an array of operations"
                               : "there is no document to patch";
        }
        return JSONPATCH_E_INVALID;
    }
    if ((root = copy_counted(a, doc, &c.nodes, JSONPATCH_MAX_NODES)) == NULL) {
        if (err != NULL) {
            err->rc = JSONPATCH_E_INVALID;
            err->message = "the document is too large to patch";
        }
        return JSONPATCH_E_INVALID;
    }
    for (size_t i = 0; i < patch->n; i++) {
        c.op = i;
        c.name = NULL;
        if ((rc = apply_one(&c, &root, patch->items[i])) != JSONPATCH_OK)
            return rc;
    }
    *out = root;
    return JSONPATCH_OK;
}
