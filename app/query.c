/*
 * Query-string and list-parameter parsing (see query.h). All input here
 * comes straight from the client, so every error message echoes at most
 * ECHO_MAX bytes of it, sanitised by text_echo.
 */
#include "query.h"

#include "arena.h"
#include "text.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#define ECHO_MAX 64
#define TEXT_MAX_CHARS 255

/*
 * Client-safe copy of s[0..n): at most ECHO_MAX bytes, cut on a character
 * boundary (a few bytes more are copied so text_echo can see whole
 * characters), sanitised.
 */
static const char *
echo_n(struct arena *a, const char *s, size_t n)
{
    size_t take = n < ECHO_MAX + 4 ? n : ECHO_MAX + 4;
    return text_echo(a, arena_strndup(a, s, take), ECHO_MAX);
}

/* Sets *bad to pre 'echo(s[0..n))' post and returns -1. */
static int
fail_named(struct arena *a, const char **bad, const char *pre, const char *s,
           size_t n, const char *post)
{
    *bad = arena_printf(a, "%s'%s'%s", pre, echo_n(a, s, n), post);
    return -1;
}

/* Like fail_named for the decoded, valid name of a parameter whose value
 * or repetition is wrong: also records the name, as it is, in q->bad_name
 * (the error's `field`, JSON-escaped like every field name). */
static int
fail_param(struct arena *a, struct query *q, const char **bad,
           const char *pre, const char *name, size_t nlen, const char *post)
{
    q->bad_name = arena_strndup(a, name, nlen);
    return fail_named(a, bad, pre, name, nlen, post);
}

/* Value of the hex digit c, or -1. */
static int
hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

enum { DEC_OK = 0, DEC_BADESC = -1, DEC_NUL = -2 };

/*
 * Percent-decodes s[0..n) ('+' is a space) into a fresh NUL-terminated
 * arena string *out of length *outlen. Returns DEC_OK, DEC_BADESC for a
 * '%' not followed by two hex digits, or DEC_NUL for a decoded NUL byte
 * (a raw NUL cannot occur: s comes from a C string).
 */
static int
pct_decode(struct arena *a, const char *s, size_t n, char **out,
           size_t *outlen)
{
    char  *d = arena_alloc(a, n + 1);
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            d[o++] = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (n - i < 3)
                return DEC_BADESC;
            hi = hex_val((unsigned char)s[i + 1]);
            lo = hex_val((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return DEC_BADESC;
            c = (unsigned char)(hi * 16 + lo);
            if (c == 0)
                return DEC_NUL;
            d[o++] = (char)c;
            i += 2;
        } else {
            d[o++] = (char)c;
        }
    }
    d[o] = '\0';
    *out = d;
    *outlen = o;
    return DEC_OK;
}

int
query_parse(struct arena *a, const char *qs, struct query *q,
            const char **bad)
{
    const char *p, *end;
    size_t      count = 0;

    q->v = NULL;
    q->n = 0;
    q->bad_name = NULL;
    if (qs == NULL || *qs == '\0')
        return 0;

    /* Count the non-empty pieces first: bounds the work and the array. */
    for (p = qs; ; p = end + 1) {
        end = strchr(p, '&');
        if (end == NULL)
            end = p + strlen(p);
        if (end > p)
            count++;
        if (*end == '\0')
            break;
    }
    if (count > QUERY_MAX_PARAMS) {
        *bad = "too many query parameters (at most 64)";
        return -1;
    }
    if (count == 0)
        return 0;
    q->v = ARENA_NEW(a, struct qparam, count);

    for (p = qs; ; p = end + 1) {
        const char *eq, *vraw;
        size_t      nraw, vrawlen, nlen, vlen;
        char       *name, *value;
        int         rc;

        end = strchr(p, '&');
        if (end == NULL)
            end = p + strlen(p);
        if (end == p)
            goto next;
        eq = memchr(p, '=', (size_t)(end - p));
        nraw = eq != NULL ? (size_t)(eq - p) : (size_t)(end - p);
        vraw = eq != NULL ? eq + 1 : end;
        vrawlen = (size_t)(end - vraw);
        if (nraw == 0) {
            *bad = "empty parameter name in query string";
            return -1;
        }

        rc = pct_decode(a, p, nraw, &name, &nlen);
        if (rc == DEC_BADESC)
            return fail_named(a, bad, "malformed percent-escape in query "
                              "parameter name ", p, nraw, "");
        if (rc == DEC_NUL)
            return fail_named(a, bad, "query parameter name ", p, nraw,
                              " contains a NUL byte");
        if (nlen > QUERY_MAX_LEN)
            return fail_named(a, bad, "query parameter name ", name, nlen,
                              " is too long");
        if (!text_utf8_valid(name, nlen))
            return fail_named(a, bad, "query parameter name ", p, nraw,
                              " is not valid UTF-8");

        rc = pct_decode(a, vraw, vrawlen, &value, &vlen);
        if (rc == DEC_BADESC)
            return fail_param(a, q, bad, "malformed percent-escape in query "
                              "parameter ", name, nlen, "");
        if (rc == DEC_NUL)
            return fail_param(a, q, bad, "query parameter ", name, nlen,
                              " contains a NUL byte");
        if (vlen > QUERY_MAX_LEN)
            return fail_param(a, q, bad, "query parameter ", name, nlen,
                              " is too long");
        if (!text_utf8_valid(value, vlen))
            return fail_param(a, q, bad, "query parameter ", name, nlen,
                              " is not valid UTF-8");

        for (size_t k = 0; k < q->n; k++) {
            if (strcmp(q->v[k].name, name) == 0)
                return fail_param(a, q, bad, "query parameter ", name, nlen,
                                  " is given more than once");
        }
        q->v[q->n].name = name;
        q->v[q->n].value = value;
        q->v[q->n].used = 0;
        q->n++;
    next:
        if (*end == '\0')
            break;
    }
    return 0;
}

const char *
query_get(struct query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->v[i].name, name) == 0) {
            q->v[i].used = 1;
            return q->v[i].value;
        }
    }
    return NULL;
}

const char *
query_first_unused(const struct query *q)
{
    for (size_t i = 0; i < q->n; i++) {
        if (!q->v[i].used)
            return q->v[i].name;
    }
    return NULL;
}

/*
 * Reads the unsigned decimal digits of s (at least one, no leading zero
 * unless the number is "0", nothing after them) into *mag, failing when
 * the value exceeds limit. Returns 0 or -1.
 */
static int
parse_magnitude(const char *s, uint64_t limit, uint64_t *mag)
{
    uint64_t v = 0;

    if (*s < '0' || *s > '9' || (s[0] == '0' && s[1] != '\0'))
        return -1;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > (limit - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *mag = v;
    return 0;
}

int
parse_id(const char *s, int64_t *out)
{
    uint64_t v;

    if (s == NULL || s[0] == '0')
        return -1;
    if (parse_magnitude(s, (uint64_t)INT64_MAX, &v) != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int
parse_int_range(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    uint64_t mag;
    int64_t  v;

    if (s == NULL)
        return -1;
    if (*s == '-') {
        /* 2^63: the magnitude of INT64_MIN */
        if (parse_magnitude(s + 1, (uint64_t)INT64_MAX + 1, &mag) != 0)
            return -1;
        v = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
    } else {
        if (parse_magnitude(s, (uint64_t)INT64_MAX, &mag) != 0)
            return -1;
        v = (int64_t)mag;
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* 1 if the string filter value s[0..n) is acceptable. */
static int
filter_text_ok(const char *s, size_t n)
{
    return n > 0 && text_valid(s, n, TEXT_MAX_CHARS);
}

/* Sets f to a single-valued filter of op with an arena copy of s. */
static void
filter_one(struct arena *a, struct filter *f, enum filter_op op,
           const char *s)
{
    f->op = op;
    f->vals = ARENA_NEW(a, const char *, 1);
    f->vals[0] = arena_strdup(a, s);
    f->n = 1;
}

/* Parses the items of an "in:" filter, s being the text after "in:". */
static int
filter_in(struct arena *a, const char *s, struct filter *f)
{
    size_t      count = 1, k = 0;
    const char *p, *end;

    for (p = s; *p != '\0'; p++) {
        if (*p == ',')
            count++;
    }
    if (count > FILTER_MAX_IN)
        return -1;
    f->vals = ARENA_NEW(a, const char *, count);
    for (p = s; ; p = end + 1) {
        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (!filter_text_ok(p, (size_t)(end - p)))
            return -1;
        f->vals[k++] = arena_strndup(a, p, (size_t)(end - p));
        if (*end == '\0')
            break;
    }
    f->op = FOP_IN;
    f->n = k;
    return 0;
}

/* filter_parse without the reset of *f on failure. */
static int
filter_parse_kind(struct arena *a, enum filter_kind k, const char *text,
                  struct filter *f)
{
    switch (k) {
    case FK_STRING:
        if (strncmp(text, "in:", 3) == 0)
            return filter_in(a, text + 3, f);
        if (strncmp(text, "like:", 5) == 0) {
            if (!filter_text_ok(text + 5, strlen(text + 5)))
                return -1;
            filter_one(a, f, FOP_LIKE, text + 5);
            return 0;
        }
        if (!filter_text_ok(text, strlen(text)))
            return -1;
        filter_one(a, f, FOP_EQ, text);
        return 0;
    case FK_ID:
        if (parse_id(text, &f->id) != 0)
            return -1;
        filter_one(a, f, FOP_EQ, text);
        return 0;
    case FK_BOOL:
        if (strcmp(text, "true") == 0)
            f->boolean = 1;
        else if (strcmp(text, "false") != 0)
            return -1;
        filter_one(a, f, FOP_EQ, text);
        return 0;
    case FK_DATE: {
        enum filter_op op = FOP_EQ;
        if (strncmp(text, "lt:", 3) == 0) {
            op = FOP_LT;
            text += 3;
        } else if (strncmp(text, "gt:", 3) == 0) {
            op = FOP_GT;
            text += 3;
        }
        if (!text_date_valid(text))
            return -1;
        filter_one(a, f, op, text);
        return 0;
    }
    }
    return -1;
}

int
filter_parse(struct arena *a, enum filter_kind k, const char *text,
             struct filter *f)
{
    memset(f, 0, sizeof(*f));
    f->op = FOP_EQ;
    if (text == NULL || filter_parse_kind(a, k, text, f) != 0) {
        memset(f, 0, sizeof(*f));
        f->op = FOP_EQ;
        return -1;
    }
    return 0;
}

char *
filter_like_pattern(struct arena *a, const char *text)
{
    size_t n = strlen(text), o = 0;
    char  *out = arena_alloc_array(a, 2, n + 2); /* worst case, plus NUL */

    out[o++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\\' || text[i] == '%' || text[i] == '_')
            out[o++] = '\\';
        out[o++] = text[i];
    }
    out[o++] = '%';
    out[o] = '\0';
    return out;
}

/* Index of the name s[0..n) in names[0..nnames), or nnames if absent. */
static size_t
name_index(const char *s, size_t n, const char *const *names, size_t nnames)
{
    for (size_t i = 0; i < nnames; i++) {
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return i;
    }
    return nnames;
}

int
sort_parse(struct arena *a, const char *text, const char *const *names,
           size_t nnames, struct sort_key **keys, size_t *nkeys,
           const char **bad)
{
    size_t           count = 1, k = 0;
    const char      *p, *end;
    struct sort_key *out;

    *keys = NULL;
    *nkeys = 0;
    if (text == NULL)
        return 0;
    for (p = text; *p != '\0'; p++) {
        if (*p == ',')
            count++;
    }
    if (count > SORT_MAX_KEYS) {
        *bad = "too many sort fields (at most 10)";
        return -1;
    }
    out = ARENA_NEW(a, struct sort_key, count);
    for (p = text; ; p = end + 1) {
        const char *colon;
        size_t      len, nlen, field;
        int         desc = 0;

        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        colon = memchr(p, ':', len);
        nlen = colon != NULL ? (size_t)(colon - p) : len;
        if (nlen == 0) {
            *bad = "empty item in sort";
            return -1;
        }
        if (colon != NULL) {
            size_t dlen = (size_t)(end - colon - 1);
            /* the direction in any case: DESC, Desc (field names stay exact) */
            if (dlen == 4 && strncasecmp(colon + 1, "desc", 4) == 0)
                desc = 1;
            else if (!(dlen == 3 && strncasecmp(colon + 1, "asc", 3) == 0))
                return fail_named(a, bad, "invalid sort direction in ", p,
                                  len, " (use :asc or :desc)");
        }
        field = name_index(p, nlen, names, nnames);
        if (field == nnames)
            return fail_named(a, bad, "unknown sort field ", p, nlen, "");
        for (size_t j = 0; j < k; j++) {
            if (out[j].field == field)
                return fail_named(a, bad, "sort field ", p, nlen,
                                  " is given more than once");
        }
        out[k].field = field;
        out[k].desc = desc;
        k++;
        if (*end == '\0')
            break;
    }
    *keys = out;
    *nkeys = k;
    return 0;
}

int
fields_parse(struct arena *a, const char *text, const char *const *names,
             size_t nnames, unsigned char *selected, const char **bad)
{
    const char *p, *end;

    if (text == NULL)
        return 0;
    for (p = text; ; p = end + 1) {
        size_t len, field;

        end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        if (len == 0) {
            *bad = "empty item in fields";
            return -1;
        }
        field = name_index(p, len, names, nnames);
        if (field == nnames)
            return fail_named(a, bad, "unknown field ", p, len,
                              " in fields");
        selected[field] = 1;
        if (*end == '\0')
            break;
    }
    return 0;
}

int
int_text_problem(const char *s)
{
    size_t i = s != NULL && *s == '-';

    if (s == NULL || s[i] == '\0' || strspn(s + i, "0123456789") != strlen(s + i))
        return INT_NOT_DIGITS;
    if (s[i] == '0' && s[i + 1] != '\0')
        return INT_LEADING_ZERO;
    return INT_OK;
}

/* The message for a page or pageSize value parse_int_range refused. */
static const char *
page_problem(const char *s, const char *name, const char *range)
{
    switch (int_text_problem(s)) {
    case INT_NOT_DIGITS:   return name[4] ? "pageSize must be a decimal integer"
                                          : "page must be a decimal integer";
    case INT_LEADING_ZERO: return name[4] ? "pageSize must be written without leading zeros"
                                          : "page must be written without leading zeros";
    default:               return range;
    }
}

int
page_parse(const char *page, const char *page_size, int64_t *pg,
           int64_t *ps, const char **bad)
{
    if (page == NULL || *page == '\0') {
        *bad = "page is required";
        return -1;
    }
    if (parse_int_range(page, 1, PAGE_MAX, pg) != 0) {
        *bad = page_problem(page, "page", "page must be between 1 and 1000000000");
        return -1;
    }
    if (page_size == NULL || *page_size == '\0') {
        *bad = "pageSize is required";
        return -1;
    }
    if (parse_int_range(page_size, 1, PAGE_SIZE_MAX, ps) != 0) {
        *bad = page_problem(page_size, "pageSize", "pageSize must be between 1 and 1000");
        return -1;
    }
    return 0;
}
