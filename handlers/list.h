/*
 * Resources as data: a resource is a table of response fields, each with
 * the SQL expression it comes from and its type. From that one
 * description come the list operation (page/pageSize, sort and fields
 * whitelists, filters, tenancy, X-Total-Count and Link, rows streamed as
 * they are fetched) and the get-by-id operation. Column names only ever
 * come from these tables; values are always bound parameters.
 */
#ifndef PAY_HANDLERS_LIST_H
#define PAY_HANDLERS_LIST_H

#include "db.h"
#include "query.h"
#include "req.h"

/* COL_MONEY uses the row's currency digits; COL_HUNDREDTHS is an integer
 * count of hundredths written with two decimals (percentages);
 * COL_OWNER_IDS is a comma-separated list of contract owner ids (e.g. a
 * GROUP_CONCAT subquery) written as a JSON array of the ids the caller
 * may see; it cannot be a sort key. */
enum col_type { COL_ID, COL_INT, COL_MONEY, COL_HUNDREDTHS, COL_STR, COL_DATE, COL_BOOL,
                COL_OWNER_IDS };

struct col {
    const char   *name;  /* response field */
    const char   *sql;   /* SQL expression (from the whitelist only) */
    enum col_type type;
};

struct resource {
    const char       *from;       /* "FROM ... JOIN ..." */
    const char       *owner_sql;  /* contract owner of a row, for tenancy;
                                     or, for rows several owners share, a
                                     correlated "SELECT owner_id FROM ..."
                                     listing them (visible if any is) */
    const char       *digits_sql; /* currency minor digits, for COL_MONEY */
    const char       *id_sql;     /* unique id: final sort key, get-by-id */
    const struct col *cols;
    size_t            ncols;
    const char       *count_sql;  /* optional: "SELECT <exact total> FROM
                                     ... WHERE ..." over a table with a
                                     contract_owner_id column, for the
                                     unfiltered list; tenancy is added on
                                     that column */
    const char       *counter;    /* optional: the money core's
                                     owner_counts column counting the
                                     rows (by owner and block of ids;
                                     "refund_count" in the refunds' rows,
                                     the others in the events'), for
                                     the unfiltered list's exact total and
                                     to find a page's first row without
                                     reading the rows before it */
    const char       *dense_from; /* optional: `from` naming an index that
                                     holds the rows in id order with their
                                     owner, for a position within a block
                                     where a token's many owners hold many
                                     of the block's rows (their ranges of
                                     the owner index would be sorted) */
    const char       *span_table; /* optional: the table of the rows (with
                                     columns id, contract_owner_id) and */
    const char       *span_group; /* the GROUP BY of an index starting with
                                     contract_owner_id whose MIN(id) and
                                     MAX(id) per group are two dives: a
                                     token naming several owners has its
                                     statements bounded to the span of its
                                     owners' ids */
};

struct bind;
struct id_block;

struct list {
    struct req            *r;
    const struct resource *res;
    struct abuf            where;     /* " AND ..." conditions */
    struct bind           *binds, *last;
    int64_t                page, page_size;
    struct sort_key       *sort;
    size_t                 nsort;
    unsigned char         *selected;  /* NULL: every field */
    int                    filtered;  /* a filter parameter was given */
    int                    by_id;     /* ordered by id alone: 1 asc, -1 desc */
    struct id_block       *blocks;    /* the unfiltered list's rows by block */
    size_t                 nblocks;
    int64_t                after;     /* keyset: rows after this id (0: none) */
    int64_t                from;      /* the page's first id (from_incl) or the
                                         id before it; 0: from the start */
    int                    from_incl;
};

/* Parses page, pageSize, sort, fields and after, and adds the tenancy
 * condition. 0, or records a 400 and returns it.
 * after=P.ID (what Link next carries on a list ordered by id alone) is a
 * keyset continuation: page P starts after row ID, read from the index
 * without skipping the earlier pages. It counts only on page P (`page`
 * decides which page is answered; another page number ignores it). */
int list_begin_or_fail(struct req *r, const struct resource *res, struct list *l);
/* Adds " AND <cond>" where cond has exactly one '?' bound to v / s.
 * Conditions from the caller's query parameters must also set
 * l->filtered (list_filter_or_fail does). */
void list_where_i64(struct list *l, const char *cond, int64_t v);
void list_where_str(struct list *l, const char *cond, const char *s);
void list_where(struct list *l, const char *cond);
/* Binds the next '?' of conditions added with list_where. */
void list_bind_i64(struct list *l, int64_t v);
/* Reads query parameter `param`; if present parses it as a filter of this
 * kind and adds a condition over the SQL expressions exprs[] (several
 * expressions are OR'ed: any of them matches). */
int list_filter_or_fail(struct list *l, const char *param, enum filter_kind k,
                        const char *const *exprs);
/* list_filter_or_fail for a string filter over an enumerated field: each
 * value of a plain or "in:" filter must be one of vals[] (NULL-terminated),
 * else 400 INVALID_PARAMETER listing them ("like:" searches text and is
 * not checked). */
int list_enum_filter_or_fail(struct list *l, const char *param,
                             const char *const *vals, const char *const *exprs);
/* Rejects unknown parameters, counts, sets X-Total-Count and Link, and
 * streams the page as a JSON array. Returns the HTTP status. */
int list_run(struct list *l);

/* GET by id with tenancy: 200 with the object, 404 otherwise. Query
 * parameters other than `fields` are rejected. */
int resource_get(struct req *r, const struct resource *res, int64_t id);
/* The same for the id in path capture 0, named `param` in errors: the
 * whole handler of a GET /v1/<things>/{param} route. */
int resource_get_param(struct req *r, const struct resource *res, const char *param);

/* For tests: when set, called between a list's reads (after the counts
 * and again before the page's rows are read), so that a row can commit in
 * between. NULL in the server. */
extern void (*list_between_reads)(void);

#endif
