/*
 * The generic list and get-by-id operations over a struct resource (see
 * list.h). SQL text is assembled only from the resource's whitelisted
 * expressions and fixed fragments; every value is a bound parameter. The
 * statement cache keys on the SQL text, so each filter combination is
 * prepared once per worker.
 */
#include "list.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "router.h"

struct id_block {
    int64_t block; /* ids from block << OWNER_COUNT_BLOCK_SHIFT */
    int64_t n;     /* the list's rows among them */
};

void (*list_between_reads)(void);

struct bind {
    struct bind *next;
    int          is_str;
    int64_t      i;
    const char  *s;
};

static void
add_bind(struct list *l, int is_str, int64_t i, const char *s)
{
    struct bind *b = arena_zalloc(l->r->arena, sizeof(*b));
    b->is_str = is_str;
    b->i = i;
    b->s = s;
    if (l->last)
        l->last->next = b;
    else
        l->binds = b;
    l->last = b;
}

void
list_where(struct list *l, const char *cond)
{
    abuf_adds(&l->where, " AND ");
    abuf_adds(&l->where, cond);
}

void
list_bind_i64(struct list *l, int64_t v)
{
    add_bind(l, 0, v, NULL);
}

void
list_where_i64(struct list *l, const char *cond, int64_t v)
{
    list_where(l, cond);
    add_bind(l, 0, v, NULL);
}

void
list_where_str(struct list *l, const char *cond, const char *s)
{
    list_where(l, cond);
    add_bind(l, 1, 0, s);
}

static const char **
col_names(struct arena *a, const struct resource *res)
{
    const char **names = ARENA_NEW(a, const char *, res->ncols);
    for (size_t i = 0; i < res->ncols; i++)
        names[i] = res->cols[i].name;
    return names;
}

static int
fields_or_fail(struct req *r, const struct resource *res, unsigned char **sel)
{
    const char *text = req_query(r, "fields");
    const char *bad = NULL;
    *sel = NULL;
    if (text == NULL)
        return 0;
    *sel = arena_zalloc(r->arena, res->ncols);
    if (fields_parse(r->arena, text, col_names(r->arena, res), res->ncols,
                     *sel, &bad) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, "fields", "%s", bad);
    return 0;
}

static void
add_tenancy(struct list *l)
{
    const struct principal *p = &l->r->principal;
    if (l->res->owner_sql == NULL || p->all_owners)
        return;
    int shared = strncmp(l->res->owner_sql, "SELECT ", 7) == 0;
    if (shared) /* visible when any of the row's owners is one of ours */
        abuf_printf(&l->where, " AND EXISTS (SELECT 1 FROM contract_owners tn"
                    " WHERE tn.id IN (%s) AND tn.id IN (", l->res->owner_sql);
    else
        abuf_printf(&l->where, " AND %s IN (", l->res->owner_sql);
    for (size_t i = 0; i < p->nowners; i++) {
        abuf_adds(&l->where, i ? ",?" : "?");
        add_bind(l, 0, p->owners[i], NULL);
    }
    if (p->nowners == 0)
        abuf_adds(&l->where, "NULL");
    abuf_adds(&l->where, shared ? "))" : ")");
}

/* after=P.ID: P the page it continues to, ID the last row before it. */
static int
after_or_fail(struct list *l)
{
    const char *text = req_query(l->r, "after");
    if (text == NULL)
        return 0;
    const char *dot = strchr(text, '.');
    int64_t     page, id;
    char        buf[24];
    size_t      n = dot ? (size_t)(dot - text) : 0;
    if (dot == NULL || n == 0 || n >= sizeof(buf))
        goto bad;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (parse_id(buf, &page) != 0 || parse_id(dot + 1, &id) != 0)
        goto bad;
    if (page == l->page && l->by_id != 0)
        l->after = id;
    return 0;
bad:
    return req_failf(l->r, PAY_E_INVALID_PARAMETER, "after",
                     "after must be PAGE.ID as Link next gives it");
}

int
list_begin_or_fail(struct req *r, const struct resource *res, struct list *l)
{
    const char *bad = NULL;
    memset(l, 0, sizeof(*l));
    l->r = r;
    l->res = res;
    abuf_init(&l->where, r->arena);
    const char *page = req_query(r, "page"), *size = req_query(r, "pageSize");
    if (page_parse(page, size, &l->page, &l->page_size, &bad) != 0) {
        const char *field = strstr(bad, "pageSize") ? "pageSize" : "page";
        int missing = strcmp(field, "page") == 0 ? page == NULL : size == NULL;
        return req_failf(r, missing ? PAY_E_MISSING_PARAMETER : PAY_E_INVALID_PARAMETER,
                         field, "%s", bad);
    }
    const char *sort = req_query(r, "sort");
    if (sort != NULL &&
        sort_parse(r->arena, sort, col_names(r->arena, res), res->ncols,
                   &l->sort, &l->nsort, &bad) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, "sort", "%s", bad);
    for (size_t i = 0; i < l->nsort; i++)
        if (res->cols[l->sort[i].field].type == COL_OWNER_IDS)
            return req_failf(r, PAY_E_INVALID_PARAMETER, "sort",
                             "cannot sort by %s", res->cols[l->sort[i].field].name);
    int rc = fields_or_fail(r, res, &l->selected);
    if (rc != 0)
        return rc;
    if (l->nsort == 0)
        l->by_id = 1;
    else if (l->nsort == 1 && strcmp(res->cols[l->sort[0].field].sql, res->id_sql) == 0)
        l->by_id = l->sort[0].desc ? -1 : 1;
    if ((rc = after_or_fail(l)) != 0)
        return rc;
    add_tenancy(l);
    return 0;
}

int
list_filter_or_fail(struct list *l, const char *param, enum filter_kind k,
                    const char *const *exprs)
{
    struct req   *r = l->r;
    const char   *text = req_query(r, param);
    struct filter f;
    if (text == NULL)
        return 0;
    if (filter_parse(r->arena, k, text, &f) != 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, param,
                         "%s has an invalid value", param);
    l->filtered = 1;
    abuf_adds(&l->where, " AND (");
    for (size_t e = 0; exprs[e] != NULL; e++) {
        if (e > 0)
            abuf_adds(&l->where, " OR ");
        /* String equality compares the text exactly, whatever the
         * column's type or collation: a numeric column must not match
         * "2abc" as 2, and a non-ASCII value must not meet an ascii
         * column's collation (an error, not a miss). */
        const char *exact = arena_printf(r->arena, "CONVERT(%s USING utf8mb4) COLLATE utf8mb4_bin",
                                        exprs[e]);
        switch (f.op) {
        case FOP_EQ:
            abuf_printf(&l->where, "%s = ?", k == FK_STRING ? exact : exprs[e]);
            if (k == FK_ID)
                add_bind(l, 0, f.id, NULL);
            else if (k == FK_BOOL)
                add_bind(l, 0, f.boolean, NULL);
            else
                add_bind(l, 1, 0, f.vals[0]);
            break;
        case FOP_IN:
            abuf_printf(&l->where, "%s IN (", exact);
            for (size_t i = 0; i < f.n; i++) {
                abuf_adds(&l->where, i ? ",?" : "?");
                add_bind(l, 1, 0, f.vals[i]);
            }
            abuf_adds(&l->where, ")");
            break;
        case FOP_LIKE:
            /* Case-insensitive whatever the column's collation (codes
             * and enums are stored ascii_bin for exact equality). */
            abuf_printf(&l->where, "CONVERT(%s USING utf8mb4) LIKE ? ESCAPE '\\\\'",
                        exprs[e]);
            add_bind(l, 1, 0, filter_like_pattern(r->arena, f.vals[0]));
            break;
        case FOP_LT:
        case FOP_GT:
            abuf_printf(&l->where, "%s %s ?", exprs[e], f.op == FOP_LT ? "<" : ">");
            add_bind(l, 1, 0, f.vals[0]);
            break;
        }
    }
    abuf_adds(&l->where, ")");
    return 0;
}

int
list_enum_filter_or_fail(struct list *l, const char *param,
                         const char *const *vals, const char *const *exprs)
{
    struct req   *r = l->r;
    const char   *text = req_query(r, param);
    struct filter f;
    if (text != NULL && filter_parse(r->arena, FK_STRING, text, &f) == 0 &&
        f.op != FOP_LIKE) {
        for (size_t i = 0; i < f.n; i++) {
            size_t k = 0;
            while (vals[k] != NULL && strcmp(vals[k], f.vals[i]) != 0)
                k++;
            if (vals[k] != NULL)
                continue;
            struct abuf all;
            abuf_init(&all, r->arena);
            for (k = 0; vals[k] != NULL; k++)
                abuf_printf(&all, "%s%s", k ? ", " : "", vals[k]);
            return req_failf(r, PAY_E_INVALID_PARAMETER, param,
                             "%s must be one of %s (or in: a list of them)", param,
                             abuf_str(&all));
        }
    }
    return list_filter_or_fail(l, param, FK_STRING, exprs);
}

static void
bind_all(struct dbq *q, const struct bind *b)
{
    for (; b != NULL; b = b->next) {
        if (b->is_str)
            dbq_str(q, b->s);
        else
            dbq_i64(q, b->i);
    }
}

/* "SELECT <every column>, <digits> FROM ... WHERE 1=1": the same text for
 * every request on a resource, so it is built once per process. */
static void
select_list(struct abuf *sql, const struct resource *res)
{
    static struct {
        const struct resource *res;
        char                  *text;
    } built[32];
    size_t i;
    for (i = 0; i < 32 && built[i].res != NULL; i++) {
        if (built[i].res == res) {
            abuf_adds(sql, built[i].text);
            return;
        }
    }
    size_t start = sql->len;
    abuf_adds(sql, "SELECT ");
    for (size_t c = 0; c < res->ncols; c++)
        abuf_printf(sql, "%s, ", res->cols[c].sql);
    abuf_printf(sql, "%s %s WHERE 1=1", res->digits_sql ? res->digits_sql : "0",
                res->from);
    if (i < 32 && (built[i].text = strdup(sql->p + start)) != NULL)
        built[i].res = res;
}

/* Writes "1,5,7" as [1,5,7], keeping only the owners p may see. */
static void
emit_owner_ids(struct json_gen *g, const char *s, const struct principal *p)
{
    int64_t id;
    json_array_open(g);
    while (s != NULL && *s != '\0') {
        size_t n = strcspn(s, ",");
        char   buf[24];
        if (n < sizeof(buf)) {
            memcpy(buf, s, n);
            buf[n] = '\0';
            if (parse_id(buf, &id) == 0 && auth_owner_allowed(p, id))
                json_i64(g, id);
        }
        s += n + (s[n] == ',');
    }
    json_array_close(g);
}

/* Writes the current row as one JSON object. */
static void
emit_row(struct json_gen *g, struct dbq *q, const struct resource *res,
         const unsigned char *selected, const struct principal *p)
{
    int digits = (int)dbq_col_i64(q, res->ncols);
    json_map_open(g);
    for (size_t i = 0; i < res->ncols; i++) {
        if (selected != NULL && !selected[i])
            continue;
        json_key(g, res->cols[i].name);
        if (dbq_is_null(q, i)) {
            json_null(g);
            continue;
        }
        switch (res->cols[i].type) {
        case COL_ID:
        case COL_INT:   json_i64(g, dbq_col_i64(q, i)); break;
        case COL_MONEY: json_money(g, dbq_col_i64(q, i), digits); break;
        case COL_HUNDREDTHS: json_money(g, dbq_col_i64(q, i), 2); break;
        case COL_BOOL:  json_bool(g, dbq_col_i64(q, i) != 0); break;
        case COL_STR:
        case COL_DATE:  json_str(g, dbq_col_str(q, i)); break;
        case COL_OWNER_IDS: emit_owner_ids(g, dbq_col_str(q, i), p); break;
        }
    }
    json_map_close(g);
}

/* Percent-encodes a query component. */
static void
add_encoded(struct abuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
            (*p >= '0' && *p <= '9') || strchr("-._~,:", *p) != NULL)
            abuf_add(b, p, 1);
        else
            abuf_printf(b, "%%%02X", *p);
    }
}

/* The request's URL for another page; after > 0 adds the keyset
 * continuation to it (any after of the request is left out). */
static const char *
page_url(struct req *r, int64_t page, int64_t after)
{
    struct abuf b;
    abuf_init(&b, r->arena);
    abuf_adds(&b, r->path);
    size_t n = 0;
    for (size_t i = 0; i < r->query.n; i++) {
        if (strcmp(r->query.v[i].name, "after") == 0)
            continue;
        abuf_adds(&b, n++ ? "&" : "?");
        add_encoded(&b, r->query.v[i].name);
        abuf_adds(&b, "=");
        if (strcmp(r->query.v[i].name, "page") == 0)
            abuf_printf(&b, "%" PRId64, page);
        else
            add_encoded(&b, r->query.v[i].value);
    }
    if (after > 0)
        abuf_printf(&b, "%safter=%" PRId64 ".%" PRId64, n ? "&" : "?", page, after);
    return abuf_str(&b);
}

/* next_after: the last id of this page when next continues by keyset,
 * else 0. */
static void
set_link(struct req *r, int64_t page, int64_t size, int64_t total, int64_t next_after)
{
    int64_t     last = total == 0 ? 1 : (total + size - 1) / size;
    struct abuf b;
    abuf_init(&b, r->arena);
    abuf_printf(&b, "<%s>; rel=\"first\"", page_url(r, 1, 0));
    if (page > 1)
        abuf_printf(&b, ", <%s>; rel=\"prev\"",
                    page_url(r, page - 1 < last ? page - 1 : last, 0));
    if (page < last)
        abuf_printf(&b, ", <%s>; rel=\"next\"", page_url(r, page + 1, next_after));
    abuf_printf(&b, ", <%s>; rel=\"last\"", page_url(r, last, 0));
    resp_header(r, "Link", abuf_str(&b));
}

/* " AND contract_owner_id IN (?,...)" for the principal's owners (nothing
 * for one that sees every owner), bound in q after the statement's other
 * parameters. */
static void
owner_cond(struct abuf *sql, const struct principal *p)
{
    if (p->all_owners)
        return;
    abuf_adds(sql, " AND contract_owner_id IN (");
    for (size_t i = 0; i < p->nowners; i++)
        abuf_adds(sql, i ? ",?" : "?");
    abuf_adds(sql, p->nowners ? ")" : "NULL)");
}

static void
owner_bind(struct dbq *q, const struct principal *p)
{
    if (!p->all_owners)
        for (size_t i = 0; i < p->nowners; i++)
            dbq_i64(q, p->owners[i]);
}

/* A statement of the list. With a token naming several (not all) owners
 * it is prepared for this use (dbq_new_fresh): MariaDB 10.11 runs a
 * re-executed cached statement with an IN list of parameters several
 * times slower (at 10 M rows: the 20 owners' credit status count 2.7 ms
 * on its first execution, 21 ms on every later one; the owners' span a
 * range scan of every owner row instead of two dives per owner). */
static struct dbq *
list_q(struct list *l, const char *sql)
{
    const struct principal *p = &l->r->principal;
    return !p->all_owners && p->nowners > 1 ? dbq_new_fresh(&l->r->db, sql)
                                            : dbq_new(&l->r->db, sql);
}

/* A token naming several (not all) owners: the list's ids bounded to the
 * span of the owners' rows, so a statement read in id order starts at the
 * owners' first (or newest) row instead of walking other owners' rows
 * from the table's end (the optimizer, counting on a match among the
 * first rows it reads, would take the primary key). */
static enum db_rc
owner_span(struct list *l)
{
    struct req *r = l->r;
    if (l->res->span_table == NULL || r->principal.all_owners || r->principal.nowners < 2)
        return DB_OK; /* every row, or one owner's range of the owner index */
    struct abuf cond, sql;
    abuf_init(&cond, r->arena);
    abuf_init(&sql, r->arena);
    owner_cond(&cond, &r->principal);
    abuf_printf(&sql, "SELECT MIN(id), MAX(id) FROM %s WHERE 1=1%s GROUP BY %s",
                l->res->span_table, abuf_str(&cond), l->res->span_group);
    struct dbq *q = list_q(l, abuf_str(&sql));
    owner_bind(q, &r->principal);
    enum db_rc rc = dbq_exec(q);
    int64_t    lo = INT64_MAX, hi = 0;
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        int64_t a = dbq_col_i64(q, 0), b = dbq_col_i64(q, 1);
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    if (rc != DB_NOT_FOUND || hi == 0)
        return rc == DB_NOT_FOUND ? DB_OK : rc; /* no rows: the list is empty anyway */
    abuf_init(&cond, r->arena);
    abuf_printf(&cond, "%s BETWEEN ? AND ?", l->res->id_sql);
    list_where(l, abuf_str(&cond));
    list_bind_i64(l, lo);
    list_bind_i64(l, hi);
    return DB_OK;
}

/* The unfiltered list's rows by block of ids, in id order, from the
 * owners' counters; *total their sum. */
static enum db_rc
list_blocks(struct list *l, int64_t *total)
{
    struct req *r = l->r;
    struct abuf sql;
    abuf_init(&sql, r->arena);
    abuf_printf(&sql, "SELECT block, SUM(%s) FROM owner_counts WHERE counted = %d",
                l->res->counter,
                strcmp(l->res->counter, "refund_count") == 0 ? COUNTED_REFUNDS : COUNTED_EVENTS);
    owner_cond(&sql, &r->principal);
    abuf_adds(&sql, " GROUP BY block ORDER BY block");
    struct dbq *q = list_q(l, abuf_str(&sql));
    owner_bind(q, &r->principal);
    enum db_rc rc = dbq_exec(q);
    size_t     cap = 0;
    *total = 0;
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        int64_t n = dbq_col_i64(q, 1);
        if (n <= 0)
            continue;
        if (l->nblocks == cap) {
            struct id_block *b = ARENA_NEW(r->arena, struct id_block, cap ? 2 * cap : 64);
            if (l->nblocks)
                memcpy(b, l->blocks, l->nblocks * sizeof(*b));
            l->blocks = b;
            cap = cap ? 2 * cap : 64;
        }
        l->blocks[l->nblocks].block = dbq_col_i64(q, 0);
        l->blocks[l->nblocks++].n = n;
        *total += n;
    }
    return rc == DB_NOT_FOUND ? DB_OK : rc;
}

/* X-Total-Count: from the owners' counters (or the resource's count
 * statement) when the resource has them and no filter narrows the list,
 * else COUNT(*) over the matching rows. */
static enum db_rc
list_total(struct list *l, int64_t *total)
{
    struct req            *r = l->r;
    const struct resource *res = l->res;
    struct abuf            sql;
    struct dbq            *q;
    if (res->counter != NULL && !l->filtered)
        return list_blocks(l, total);
    abuf_init(&sql, r->arena);
    if (res->count_sql != NULL && !l->filtered) {
        abuf_adds(&sql, res->count_sql);
        owner_cond(&sql, &r->principal);
        q = list_q(l, abuf_str(&sql));
        owner_bind(q, &r->principal);
    } else {
        abuf_printf(&sql, "SELECT COUNT(*) %s WHERE 1=1%s", res->from,
                    l->where.len ? abuf_str(&l->where) : "");
        q = list_q(l, abuf_str(&sql));
        bind_all(q, l->binds);
    }
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK)
        *total = dbq_col_i64(q, 0);
    return rc == DB_NOT_FOUND ? DB_ERROR : rc;
}

/* " AND id >= ?" (> after a keyset continuation; < and <= for a
 * descending list): the page's position in an id-ordered list. */
static void
keyset_cond(struct abuf *sql, const struct list *l)
{
    if (l->from > 0)
        abuf_printf(sql, " AND %s %s%s ?", l->res->id_sql, l->by_id > 0 ? ">" : "<",
                    l->from_incl ? "=" : "");
}

/* The token names several owners whose rows fill an eighth of the block
 * of `id` or more (by the counts): that block is read in id order through
 * the resource's dense_from, not through the owners' ranges of the owner
 * index and a sort of them. */
static int
dense_at(const struct list *l, int64_t id)
{
    const struct principal *p = &l->r->principal;
    if (l->res->dense_from == NULL || p->all_owners || p->nowners < 2)
        return 0;
    for (size_t i = 0; i < l->nblocks; i++)
        if (l->blocks[i].block == id >> OWNER_COUNT_BLOCK_SHIFT)
            return l->blocks[i].n * 8 >= ((int64_t)1 << OWNER_COUNT_BLOCK_SHIFT);
    return 0;
}

/* The id `skip` rows on from the page's position in the list's order, or,
 * with from_end, `skip` rows back from the list's end: one read of the
 * ids through the index the list is read from (no rows but the ids).
 * DB_NOT_FOUND when the list is shorter. */
static enum db_rc
nth_id(struct list *l, int from_end, int64_t skip, int64_t bound, int64_t *id)
{
    struct req *r = l->r;
    struct abuf sql;
    abuf_init(&sql, r->arena);
    /* Bounded from the page's position (a page's last id): in id order
     * where the owners' rows are dense there. */
    int dense = !from_end && l->from > 0 && bound > 0 && dense_at(l, l->from);
    abuf_printf(&sql, "SELECT %s %s WHERE 1=1%s", l->res->id_sql,
                dense ? l->res->dense_from : l->res->from,
                l->where.len ? abuf_str(&l->where) : "");
    if (!from_end)
        keyset_cond(&sql, l);
    if (bound > 0)
        abuf_printf(&sql, " AND %s %s ?", l->res->id_sql, l->by_id > 0 ? "<" : ">=");
    abuf_printf(&sql, " ORDER BY %s%s LIMIT 1 OFFSET ?", l->res->id_sql,
                (l->by_id > 0) != from_end ? "" : " DESC");
    struct dbq *q = list_q(l, abuf_str(&sql));
    bind_all(q, l->binds);
    if (!from_end && l->from > 0)
        dbq_i64(q, l->from);
    if (bound > 0)
        dbq_i64(q, bound);
    dbq_i64(q, skip);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK)
        *id = dbq_col_i64(q, 0);
    return rc;
}

/* The id at position pos (from 0) of the list in ascending id order, from
 * the blocks' counts: the block that holds it is found by adding up the
 * counts, then at most half a block's ids are skipped, from the block's
 * nearer end. DB_NOT_FOUND when the counts do not reach pos. */
static enum db_rc
block_nth_id(struct list *l, int64_t pos, int64_t *id)
{
    size_t i = 0;
    while (i < l->nblocks && pos >= l->blocks[i].n)
        pos -= l->blocks[i++].n;
    if (i == l->nblocks)
        return DB_NOT_FOUND;
    int64_t     n = l->blocks[i].n, lo = l->blocks[i].block << OWNER_COUNT_BLOCK_SHIFT;
    int         back = pos >= n / 2;
    struct req *r = l->r;
    int         dense = dense_at(l, lo);
    struct abuf sql;
    abuf_init(&sql, r->arena);
    abuf_printf(&sql, "SELECT %s %s WHERE 1=1%s AND %s >= ? AND %s < ? ORDER BY %s%s"
                " LIMIT 1 OFFSET ?", l->res->id_sql, dense ? l->res->dense_from : l->res->from,
                l->where.len ? abuf_str(&l->where) : "", l->res->id_sql, l->res->id_sql,
                l->res->id_sql, back ? " DESC" : "");
    struct dbq *q = list_q(l, abuf_str(&sql));
    bind_all(q, l->binds);
    dbq_i64(q, lo);
    dbq_i64(q, lo + ((int64_t)1 << OWNER_COUNT_BLOCK_SHIFT));
    dbq_i64(q, back ? n - 1 - pos : pos);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK)
        *id = dbq_col_i64(q, 0);
    return rc;
}

/* From the blocks' counts: an id bound (exclusive ascending, inclusive
 * descending) such that the list holds at least `need` rows between the
 * page's position l->from and the bound, counting only the whole blocks
 * after the block of l->from in the list's order. 0 when the blocks that
 * follow do not reach `need`: no bound. */
static int64_t
block_bound(const struct list *l, int64_t need)
{
    int64_t fb = l->from >> OWNER_COUNT_BLOCK_SHIFT, sum = 0;
    if (l->by_id > 0) {
        for (size_t i = 0; i < l->nblocks; i++)
            if (l->blocks[i].block > fb && (sum += l->blocks[i].n) >= need)
                return (l->blocks[i].block + 1) << OWNER_COUNT_BLOCK_SHIFT;
    } else {
        for (size_t i = l->nblocks; i-- > 0;)
            if (l->blocks[i].block < fb && (sum += l->blocks[i].n) >= need)
                return l->blocks[i].block << OWNER_COUNT_BLOCK_SHIFT;
    }
    return 0;
}

/* From the blocks' counts: an id bound (exclusive ascending, inclusive
 * descending) at the end of the block that holds position pos (from 0, in
 * ascending id order) in the list's order. 0 when the counts do not reach
 * pos: no bound. */
static int64_t
pos_bound(const struct list *l, int64_t pos)
{
    size_t i = 0;
    while (i < l->nblocks && pos >= l->blocks[i].n)
        pos -= l->blocks[i++].n;
    if (i == l->nblocks)
        return 0;
    return l->by_id > 0 ? (l->blocks[i].block + 1) << OWNER_COUNT_BLOCK_SHIFT
                        : l->blocks[i].block << OWNER_COUNT_BLOCK_SHIFT;
}

/* The page's last id: the row page_size - 1 on from the page's first
 * (l->from), so the page and its Link next come from one anchor and rows
 * that commit meanwhile only ever come after it. Read within bounded ids:
 * an unfiltered list up to the end of the block that holds the page's
 * last position by the blocks' counts, or, continuing after a keyset id,
 * within the blocks that hold at least a page after it (again without the
 * bound if the rows there fall short of the counts). A filtered list
 * skips ids from the page's first. */
static enum db_rc
page_last_id(struct list *l, int64_t total, int64_t *id)
{
    int64_t last = l->page * l->page_size - 1, bound = 0;
    if (l->nblocks)
        bound = l->after == 0 ? pos_bound(l, l->by_id > 0 ? last : total - last - 1)
                              : block_bound(l, l->page_size);
    enum db_rc rc = nth_id(l, 0, l->page_size - 1, bound, id);
    if (rc == DB_NOT_FOUND && bound > 0)
        rc = nth_id(l, 0, l->page_size - 1, 0, id);
    return rc;
}

/* An id-ordered list is read by position, never by OFFSET over the rows:
 * the page starts after the keyset continuation's id, or at the id found
 * from the owners' counters by block (an unfiltered list), or else by
 * skipping ids from the nearer end of the list (the exact total says
 * which end). *next_after: the page's last id when a next page follows.
 * *empty: the page is past the end. */
static enum db_rc
position(struct list *l, int64_t total, int64_t *next_after, int *empty)
{
    enum db_rc rc = DB_OK;
    int64_t    skip = (l->page - 1) * l->page_size;
    *next_after = 0;
    *empty = 0;
    if (l->after > 0) {
        l->from = l->after;
        l->from_incl = 0;
    } else if (skip > 0) {
        rc = skip >= total ? DB_NOT_FOUND
             : l->nblocks  ? block_nth_id(l, l->by_id > 0 ? skip : total - skip - 1, &l->from)
             : skip <= total / 2 ? nth_id(l, 0, skip, 0, &l->from)
                                 : nth_id(l, 1, total - skip - 1, 0, &l->from);
        l->from_incl = 1;
    }
    if (rc == DB_NOT_FOUND) {
        *empty = 1;
        return DB_OK;
    }
    if (rc == DB_OK && l->page * l->page_size < total) {
        /* A descending first page starts at the newest row: anchored on
         * it, a row that commits before the page is read is left for the
         * next request instead of pushing the page's last row out. Found
         * within its block (both ends bound: the owners' newest rows may
         * lie far below the table's). */
        if (l->from == 0 && l->by_id < 0) {
            rc = l->nblocks ? block_nth_id(l, total - 1, &l->from) : nth_id(l, 0, 0, 0, &l->from);
            if (rc == DB_NOT_FOUND && l->nblocks)
                rc = nth_id(l, 0, 0, 0, &l->from);
            l->from_incl = 1;
        }
        if (rc == DB_OK)
            rc = page_last_id(l, total, next_after);
        if (rc == DB_NOT_FOUND) {
            *next_after = 0;
            rc = DB_OK;
        }
    }
    return rc;
}

int
list_run(struct list *l)
{
    struct req            *r = l->r;
    const struct resource *res = l->res;
    int                    rc, empty = 0;

    if ((rc = req_query_all_known_or_fail(r)) != 0)
        return rc;

    int64_t total, next_after = 0;
    if (list_total(l, &total) != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    if (owner_span(l) != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    if (list_between_reads != NULL)
        list_between_reads();
    if (l->by_id != 0 && position(l, total, &next_after, &empty) != DB_OK)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL);

    struct abuf sql;
    abuf_init(&sql, r->arena);
    select_list(&sql, res);
    if (l->where.len)
        abuf_adds(&sql, abuf_str(&l->where));
    keyset_cond(&sql, l);
    /* The page's last id bounds the range too, so the plan is a range of
     * about one page whatever the optimizer estimates for the rest. */
    if (next_after > 0)
        abuf_printf(&sql, " AND %s %s ?", res->id_sql, l->by_id > 0 ? "<=" : ">=");
    abuf_adds(&sql, " ORDER BY ");
    int id_sorted = 0;
    for (size_t i = 0; i < l->nsort; i++) {
        const struct col *c = &res->cols[l->sort[i].field];
        abuf_printf(&sql, "%s%s, ", c->sql, l->sort[i].desc ? " DESC" : "");
        id_sorted |= strcmp(c->sql, res->id_sql) == 0;
    }
    if (!id_sorted)
        abuf_printf(&sql, "%s, ", res->id_sql);
    sql.len -= 2;
    abuf_adds(&sql, l->by_id != 0 ? " LIMIT ?" : " LIMIT ? OFFSET ?");
    struct dbq *q = NULL;
    if (list_between_reads != NULL)
        list_between_reads();
    if (!empty) {
        q = list_q(l, abuf_str(&sql));
        bind_all(q, l->binds);
        if (l->from > 0)
            dbq_i64(q, l->from);
        if (next_after > 0)
            dbq_i64(q, next_after);
        dbq_i64(q, l->page_size);
        if (l->by_id == 0)
            dbq_i64(q, (l->page - 1) * l->page_size);
        if (dbq_exec(q) != DB_OK)
            return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    }

    resp_header(r, "X-Total-Count", arena_printf(r->arena, "%" PRId64, total));
    set_link(r, l->page, l->page_size, total, next_after);
    struct json_gen *g = resp_json_stream(r, 200);
    json_array_open(g);
    enum db_rc frc = DB_NOT_FOUND;
    while (q != NULL && (frc = dbq_fetch(q)) == DB_OK)
        emit_row(g, q, res, l->selected, &r->principal);
    json_array_close(g);
    if (frc != DB_NOT_FOUND)
        return req_fail(r, PAY_E_UNAVAILABLE, NULL); /* mid-stream: logged */
    return 200;
}

int
resource_get(struct req *r, const struct resource *res, int64_t id)
{
    struct list l;
    int         rc;

    memset(&l, 0, sizeof(l));
    l.r = r;
    l.res = res;
    abuf_init(&l.where, r->arena);
    if ((rc = fields_or_fail(r, res, &l.selected)) != 0)
        return rc;
    if ((rc = req_query_all_known_or_fail(r)) != 0)
        return rc;
    add_bind(&l, 0, id, NULL);
    add_tenancy(&l);

    struct abuf sql;
    abuf_init(&sql, r->arena);
    select_list(&sql, res);
    abuf_printf(&sql, " AND %s = ?%s", res->id_sql,
                l.where.len ? abuf_str(&l.where) : "");
    struct dbq *q = dbq_new(&r->db, abuf_str(&sql));
    bind_all(q, l.binds);
    switch (dbq_one(q)) {
    case DB_OK:        break;
    case DB_NOT_FOUND: return req_failf(r, PAY_E_NOT_FOUND, NULL, "no such object");
    default:           return req_fail(r, PAY_E_UNAVAILABLE, NULL);
    }
    struct json_gen *g = resp_json(r, 200);
    emit_row(g, q, res, l.selected, &r->principal);
    return 200;
}

int
resource_get_param(struct req *r, const struct resource *res, const char *param)
{
    int64_t id;
    int     rc;
    if ((rc = req_param_id_or_fail(r, 0, param, &id)) != 0)
        return rc;
    return resource_get(r, res, id);
}
