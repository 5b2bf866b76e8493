/*
 * Query strings and list parameters (spec 1.4): decoding, lookup with
 * tracking of unused parameters, ids and integers, filter syntaxes, and
 * sort/fields/page parsing against a whitelist of response field names.
 * Everything is allocated in the request arena. Every `bad` message is
 * safe to show to the client: it echoes at most 64 bytes of any input,
 * sanitised by text_echo.
 */
#ifndef PAY_APP_QUERY_H
#define PAY_APP_QUERY_H

#include <stddef.h>
#include <stdint.h>

struct arena;

#define QUERY_MAX_PARAMS 64    /* more parameters than this: refused */
#define QUERY_MAX_LEN    4096  /* bytes of a decoded name or value */
#define FILTER_MAX_IN    100   /* items of an "in:" filter */
#define SORT_MAX_KEYS    10
#define PAGE_MAX         1000000000
#define PAGE_SIZE_MAX    1000

struct qparam {
    const char *name;  /* decoded, NUL-terminated, valid UTF-8 */
    const char *value; /* decoded ("" when there was no '=') */
    int         used;  /* set by query_get */
};

struct query {
    struct qparam *v;
    size_t         n;
    const char    *bad_name; /* after a failed query_parse: the parameter
                                whose value or repetition was wrong, or NULL */
};

/*
 * Parses the raw query string qs (NULL or "" gives no parameters): pieces
 * split on '&' (empty pieces skipped), name=value (no '=' means value ""),
 * both percent-decoded with '+' as space. Returns 0, or -1 with *bad set
 * for: an empty name, a malformed %-escape, a decoded NUL byte, invalid
 * UTF-8, a name or value over QUERY_MAX_LEN bytes (after decoding), more
 * than QUERY_MAX_PARAMS parameters, or a name given twice.
 */
int query_parse(struct arena *a, const char *qs, struct query *q,
                const char **bad);

/* The value of parameter name, or NULL; marks the parameter used. */
const char *query_get(struct query *q, const char *name);

/*
 * The name of the first parameter never fetched with query_get, or NULL.
 * The name is unbounded (up to QUERY_MAX_LEN bytes): pass it through
 * text_echo before putting it in a message.
 */
const char *query_first_unused(const struct query *q);

/*
 * Parses a positive id: [1-9][0-9]* and at most INT64_MAX, nothing else
 * (no sign, no space). Returns 0 and sets *out, or -1 (NULL s too).
 */
int parse_id(const char *s, int64_t *out);

/*
 * Parses a decimal integer -?(0|[1-9][0-9]*) (no leading zeros, no '+',
 * no space; "-0" is 0) within [lo, hi]. Returns 0 and sets *out, or -1.
 */
int parse_int_range(const char *s, int64_t lo, int64_t hi, int64_t *out);

/*
 * Why the text s is no integer parse_id / parse_int_range take, for
 * messages that say exactly what is wrong: INT_NOT_DIGITS (NULL, empty, a
 * sign other than one leading '-', or a non-digit), INT_LEADING_ZERO
 * ("01", "-007"), or INT_OK (well formed: then only its range can be wrong).
 */
enum { INT_OK = 0, INT_NOT_DIGITS, INT_LEADING_ZERO };
int int_text_problem(const char *s);

enum filter_kind { FK_STRING, FK_ID, FK_BOOL, FK_DATE };
enum filter_op { FOP_EQ, FOP_IN, FOP_LIKE, FOP_LT, FOP_GT };

struct filter {
    enum filter_op op;
    const char   **vals; /* arena copies; n of them */
    size_t         n;
    int64_t        id;      /* FK_ID */
    int            boolean; /* FK_BOOL: 1 true, 0 false */
};

/*
 * Parses filter text of the given kind into *f (always fully reset):
 *  FK_STRING: "value" -> FOP_EQ; "in:a,b,c" -> FOP_IN (1..FILTER_MAX_IN
 *    items, none empty); "like:text" -> FOP_LIKE (text non-empty). Each
 *    value non-empty and text_valid(..., 255); vals hold the values.
 *  FK_ID: parse_id -> FOP_EQ, f->id; FK_BOOL: "true"/"false" -> FOP_EQ,
 *    f->boolean; FK_DATE: "yyyy-MM-dd" / "lt:..." / "gt:..." -> FOP_EQ /
 *    FOP_LT / FOP_GT with a text_date_valid date.
 *  For FK_ID, FK_BOOL and FK_DATE, vals[0] is the value text (the date
 *  without its prefix) and n is 1.
 * Returns 0, or -1 when text (NULL too) does not fit the syntax.
 */
int filter_parse(struct arena *a, enum filter_kind k, const char *text,
                 struct filter *f);

/*
 * "%text%" with '\\', '%' and '_' of text each preceded by a backslash,
 * for SQL `LIKE ? ESCAPE '\\'` so that they match literally.
 */
char *filter_like_pattern(struct arena *a, const char *text);

struct sort_key {
    size_t field; /* index into names[] */
    int    desc;
};

/*
 * Parses a sort parameter: comma-separated "name", "name:asc" or
 * "name:desc" (the direction in any case), each name one of
 * names[0..nnames). Sets *keys (arena) and
 * *nkeys; NULL text gives no keys. Returns 0, or -1 with *bad set for an
 * empty item, an unknown name, a bad direction, a name given twice or more
 * than SORT_MAX_KEYS keys.
 */
int sort_parse(struct arena *a, const char *text, const char *const *names,
               size_t nnames, struct sort_key **keys, size_t *nkeys,
               const char **bad);

/*
 * Parses a fields parameter: comma-separated names of names[0..nnames);
 * sets selected[i] = 1 for each (the caller zeroes selected; duplicates
 * are harmless; NULL text selects nothing). Returns 0, or -1 with *bad set
 * for an empty item or an unknown name.
 */
int fields_parse(struct arena *a, const char *text, const char *const *names,
                 size_t nnames, unsigned char *selected, const char **bad);

/*
 * Parses the required page (1..PAGE_MAX) and pageSize (1..PAGE_SIZE_MAX).
 * Returns 0, or -1 with *bad set to "page is required" / "pageSize is
 * required" (NULL or empty), "page must be a decimal integer", "page must
 * be written without leading zeros" (int_text_problem), or "page must be
 * between 1 and 1000000000" / "pageSize must be between 1 and 1000" (out
 * of range). page is checked first.
 */
int page_parse(const char *page, const char *page_size, int64_t *pg,
               int64_t *ps, const char **bad);

#endif
