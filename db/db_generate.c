/*
 * `pay-api generate`: a large, deterministic, internally consistent data
 * set for benchmarks (see db_load.h). The whole history is planned in C
 * before anything is written: every customer's invoices and installment
 * payments become events, which a stable counting sort by day puts into
 * one global chronological order. Walking that order assigns invoice,
 * ledger and invoice-payment ids and keeps each customer's running
 * balance, so ledger ids are chronological per customer (and globally) and
 * resulting_balance is exact without reading anything back.
 *
 * Writing uses prepared multi-row INSERTs of GEN_BATCH rows with every
 * value bound, a commit every ~GEN_COMMIT_ROWS rows and, for this session
 * only, foreign_key_checks/unique_checks off. New ids start above the
 * current MAX(id) of each table, so it can run after the demo data and any
 * number of times, but not while the API itself is inserting ledger rows.
 * A failure part-way leaves the already committed part in place.
 *
 * Memory: the event plan (16 bytes per ledger row) and per-customer arrays
 * are malloc'd for the call; statement parameters come from an arena that
 * is reset after every batch. Money is int64 pence throughout.
 */
#include "db_load.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "ledger.h"

#define GEN_OWNERS        10
#define GEN_NORMAL_RUNS   24
#define GEN_OPEN_RUNS     8      /* the newest third of the NORMAL runs */
#define GEN_ADHOC_RUNS    2
#define GEN_INSTALLMENTS  4
#define GEN_MIN_AMOUNT    1000   /* 10.00 GBP */
#define GEN_MAX_AMOUNT    50000  /* 500.00 GBP */
#define GEN_PAY_WINDOW    60     /* days after the invoice for installments */
#define GEN_DUE_DAYS      30
#define GEN_BATCH         1000   /* rows per INSERT statement */
#define GEN_COMMIT_ROWS   50000
#define GEN_POOL_PER_ROW  128    /* formatted text bytes per batch row */

/* Calendar: invoices are dated 2024-01-01 .. the day before the last day
 * (2026-10-31), payments up to the last day, due dates up to GEN_DUE_DAYS
 * after that. Days are counted from 2024-01-01 ("day offsets"). */
#define GEN_FIRST_YEAR    2024
#define GEN_LAST_YEAR     2026
#define GEN_LAST_MONTH    10
#define GEN_LAST_MDAY     31
#define GEN_MAX_DAYS      1200

static const char *const gen_methods[] = {
    "DIRECT_DEBIT", "CREDIT_CARD", "BACS", "GO_CARDLESS"};
#define GEN_NMETHODS (sizeof(gen_methods) / sizeof(gen_methods[0]))

/* One ledger row to be: an invoice raised or one of its installments. */
struct gen_event {
    uint32_t cust;    /* customer index */
    uint32_t inv;     /* invoice index in planning order */
    int32_t  amount;  /* signed ledger amount, pence */
    uint16_t day;     /* day offset */
    uint8_t  kind;    /* 0 = INVOICE_CREATED, 1..4 = installment */
    uint8_t  newest;  /* kind 0: the customer's newest (unpaid) invoice */
};

/* A bound value of a pending batch row. */
enum { GV_NULL, GV_I64, GV_STR };

struct gen_val {
    int64_t     i;
    const char *s;
    uint32_t    n;
    int         type;
};

/* Rows of one table waiting for their multi-row INSERT. */
struct batch {
    const char     *table;
    const char     *cols;
    size_t          ncols;
    char           *sql_full;   /* statement text for GEN_BATCH rows */
    struct gen_val *v;
    size_t          nv, rows;
    char           *pool;       /* text of formatted values */
    size_t          pool_len;
    long long       total;
};

enum { B_OWNERS, B_RUNS, B_CUSTOMERS, B_SITES, B_INVOICES, B_LEDGER,
       B_PAYMENTS, B_COUNT };

/*  batch            table               columns (as bound, in order) */
static const struct {
    const char *table;
    const char *cols;
} gen_tables[B_COUNT] = {
    [B_OWNERS]    = {"contract_owners",  "id, name"},
    [B_RUNS]      = {"bill_runs",        "id, type, status"},
    [B_CUSTOMERS] = {"customers",        "id, contract_owner_id, customer_name,"
                     " customer_account_number, currency_id, credit_threshold,"
                     " balance, total_payments, payments_since_invoice"},
    [B_SITES]     = {"sites",            "id, customer_id, site_name,"
                     " start_date, payment_method"},
    [B_INVOICES]  = {"invoices",         "kind, id, customer_id, site_id,"
                     " bill_run_id, invoice_number, invoice_date, due_date,"
                     " amount, auto_collect, paid, payment_status"},
    [B_LEDGER]    = {"ledger",           "id, customer_id, txn_type,"
                     " customer_payment_type, amount, resulting_balance,"
                     " currency_id, payment_method, payment_date, invoice_kind,"
                     " invoice_id, invoice_number, bill_run_type"},
    [B_PAYMENTS]  = {"invoice_payments", "id, invoice_kind, invoice_id,"
                     " customer_id, contract_owner_id, amount, currency_id, payment_method,"
                     " payment_date, customer_payment_type, ledger_id"},
};

struct gen_base {
    int64_t owner, customer, site, run, invoice, ledger, payment, currency;
};

struct gen {
    struct arena    *a;         /* statements; reset per batch */
    struct db_uow    u;         /* the whole run; one transaction at a time */
    unsigned         seed;
    uint32_t         ncust, ninv;
    struct timespec  t0;

    /* Calendar. */
    char           (*date)[11]; /* "YYYY-MM-DD" per day offset */
    uint8_t         *run_of;    /* NORMAL bill run index per day offset */
    unsigned         last;      /* offset of the last day */

    /* Customers. */
    uint32_t        *ninvs;     /* invoices per customer */
    uint8_t         *owner, *method;
    int64_t         *threshold; /* -1 = none */
    int64_t         *final_bal, *run_bal;
    int64_t         *paid, *since;  /* the money core's figures (ledger.h) */
    int64_t         *nevents;       /* invoice payment events */

    /* Plan. */
    uint16_t        *days;      /* one customer's invoice days */
    uint64_t         bitmap[(GEN_MAX_DAYS + 63) / 64];
    size_t          *day_pos;   /* counting sort: per day */
    struct gen_event *ev;
    size_t           nev;
    uint32_t        *inv_ord;   /* planning index -> id order */

    struct gen_base  base;
    struct batch     b[B_COUNT];
    long long        since_commit;
    int              in_tx;
};

/* ---- PRNG: xorshift64*, seeded through splitmix64 ----------------------- */

struct rng {
    uint64_t s;
};

static void
rng_seed(struct rng *g, unsigned seed, unsigned stream)
{
    uint64_t z = ((uint64_t)seed << 8 | stream) + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    g->s = z != 0 ? z : 0x2545F4914F6CDD1DULL;
}

static uint64_t
rng_next(struct rng *g)
{
    uint64_t x = g->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    g->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n); the modulo bias is irrelevant for benchmark data. */
static uint32_t
rng_below(struct rng *g, uint32_t n)
{
    return (uint32_t)((rng_next(g) >> 16) % n);
}

/* ---- helpers ------------------------------------------------------------- */

static long long
elapsed_ms(const struct gen *g)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)(t.tv_sec - g->t0.tv_sec) * 1000 +
           (t.tv_nsec - g->t0.tv_nsec) / 1000000;
}

static void *
gen_calloc(size_t n, size_t size)
{
    void *p = n > 0 ? calloc(n, size) : calloc(1, 1);
    if (p == NULL)
        fprintf(stderr, "generate: out of memory (%zu x %zu bytes)\n", n, size);
    return p;
}

/* "YYYY-MM-DD" (digits written directly: the ranges are known). */
static void
date_text(char *s, unsigned y, unsigned m, unsigned d)
{
    s[0] = (char)('0' + y / 1000 % 10);
    s[1] = (char)('0' + y / 100 % 10);
    s[2] = (char)('0' + y / 10 % 10);
    s[3] = (char)('0' + y % 10);
    s[4] = '-';
    s[5] = (char)('0' + m / 10);
    s[6] = (char)('0' + m % 10);
    s[7] = '-';
    s[8] = (char)('0' + d / 10);
    s[9] = (char)('0' + d % 10);
    s[10] = '\0';
}

/* Per day offset: date text and NORMAL bill run (by month,
 * the months of the range spread evenly over the runs). */
static int
calendar_build(struct gen *g)
{
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30,
                                       31, 31, 30, 31, 30, 31};
    unsigned y = GEN_FIRST_YEAR, m = 1, d = 1, months, end = 0;

    months = (GEN_LAST_YEAR - GEN_FIRST_YEAR) * 12 + GEN_LAST_MONTH;
    g->date = gen_calloc(GEN_MAX_DAYS, sizeof(*g->date));
    g->run_of = gen_calloc(GEN_MAX_DAYS, 1);
    if (g->date == NULL || g->run_of == NULL)
        return -1;
    for (unsigned i = 0; i < GEN_MAX_DAYS; i++) {
        unsigned month = (y - GEN_FIRST_YEAR) * 12 + m - 1;
        unsigned leap = m == 2 && y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        date_text(g->date[i], y, m, d);
        g->run_of[i] = (uint8_t)(month < months
                                     ? month * GEN_NORMAL_RUNS / months
                                     : GEN_NORMAL_RUNS - 1);
        if (y == GEN_LAST_YEAR && m == GEN_LAST_MONTH && d == GEN_LAST_MDAY)
            end = i;
        if (++d > mdays[m - 1] + leap) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }
    g->last = end;
    if (end == 0 || end + GEN_DUE_DAYS >= GEN_MAX_DAYS) {
        fprintf(stderr, "generate: bad calendar range\n");
        return -1;
    }
    return 0;
}

/* ---- planning ------------------------------------------------------------ */

/* n sorted invoice days in [0, span): distinct when n <= span (Floyd's
 * sampling into a bitmap), otherwise every day n / span times plus a
 * distinct sample for the remainder. */
static void
pick_days(struct gen *g, struct rng *rng, uint32_t n, unsigned span)
{
    uint32_t q = n / span, rest = n % span, k = 0;
    size_t   words = (span + 63) / 64;

    memset(g->bitmap, 0, words * sizeof(g->bitmap[0]));
    for (uint32_t j = span - rest; j < span; j++) {
        uint32_t t = rng_below(rng, j + 1);
        if (g->bitmap[t / 64] >> (t % 64) & 1)
            t = j;
        g->bitmap[t / 64] |= (uint64_t)1 << (t % 64);
    }
    if (q == 0) {
        for (size_t w = 0; w < words; w++)
            for (uint64_t x = g->bitmap[w]; x != 0; x &= x - 1)
                g->days[k++] =
                    (uint16_t)(w * 64 + (unsigned)__builtin_ctzll(x));
        return;
    }
    for (unsigned d = 0; d < span; d++)
        for (uint32_t c = q + (g->bitmap[d / 64] >> (d % 64) & 1); c > 0; c--)
            g->days[k++] = (uint16_t)d;
}

/* Counting pass (place = 0): per-day counts, event total, final balances.
 * Placing pass: each event into its day's slot; being stable, the sort
 * keeps planning order within a day, so a customer's same-day rows stay
 * in the order planned (an invoice before its payments). */
static void
plan_emit(struct gen *g, int place, uint32_t c, uint32_t inv, int32_t amount,
          unsigned day, unsigned kind, int newest)
{
    if (!place) {
        g->day_pos[day]++;
        g->nev++;
        g->final_bal[c] += amount;
        return;
    }
    struct gen_event *e = &g->ev[g->day_pos[day]++];
    e->cust = c;
    e->inv = inv;
    e->amount = amount;
    e->day = (uint16_t)day;
    e->kind = (uint8_t)kind;
    e->newest = (uint8_t)newest;
}

/* Both passes draw exactly the same random numbers (same stream). */
static void
plan_events(struct gen *g, int place)
{
    struct rng rng;
    uint32_t   inv = 0;

    rng_seed(&rng, g->seed, 3);
    for (uint32_t c = 0; c < g->ncust; c++) {
        uint32_t n = g->ninvs[c];
        pick_days(g, &rng, n, g->last);
        for (uint32_t i = 0; i < n; i++, inv++) {
            int32_t  amount = GEN_MIN_AMOUNT +
                (int32_t)rng_below(&rng, GEN_MAX_AMOUNT - GEN_MIN_AMOUNT + 1);
            unsigned day = g->days[i];
            int      newest = i + 1 == n;

            plan_emit(g, place, c, inv, -amount, day, 0, newest);
            if (newest)
                continue;
            /* Installments: positive parts summing exactly to the amount,
             * each 0.5..1.5 times an even share of what is left. */
            int32_t  part[GEN_INSTALLMENTS], left = amount;
            unsigned pday[GEN_INSTALLMENTS] = {0};
            unsigned window = g->last - day < GEN_PAY_WINDOW
                                  ? g->last - day : GEN_PAY_WINDOW;
            for (int k = 0; k < GEN_INSTALLMENTS - 1; k++) {
                int32_t share = left / (GEN_INSTALLMENTS - k);
                part[k] = share / 2 +
                          (int32_t)rng_below(&rng, (uint32_t)share + 1);
                left -= part[k];
            }
            part[GEN_INSTALLMENTS - 1] = left;
            for (int k = 0; k < GEN_INSTALLMENTS; k++) {
                unsigned v = day + 1 + rng_below(&rng, window);
                int      j = k;
                for (; j > 0 && pday[j - 1] > v; j--)
                    pday[j] = pday[j - 1];
                pday[j] = v;
            }
            for (int k = 0; k < GEN_INSTALLMENTS; k++)
                plan_emit(g, place, c, inv, part[k], pday[k],
                          (unsigned)k + 1, 0);
        }
    }
}

static int
plan(struct gen *g)
{
    struct rng rng;
    uint32_t   maxn = 0;
    size_t     ndays = (size_t)g->last + 1;

    g->ninvs = gen_calloc(g->ncust, sizeof(*g->ninvs));
    g->owner = gen_calloc(g->ncust, 1);
    g->method = gen_calloc(g->ncust, 1);
    g->threshold = gen_calloc(g->ncust, sizeof(*g->threshold));
    g->final_bal = gen_calloc(g->ncust, sizeof(*g->final_bal));
    g->run_bal = gen_calloc(g->ncust, sizeof(*g->run_bal));
    g->inv_ord = gen_calloc(g->ninv, sizeof(*g->inv_ord));
    g->day_pos = gen_calloc(ndays, sizeof(*g->day_pos));
    if (g->ninvs == NULL || g->owner == NULL || g->method == NULL ||
        g->threshold == NULL || g->final_bal == NULL || g->run_bal == NULL ||
        g->inv_ord == NULL || g->day_pos == NULL)
        return -1;

    rng_seed(&rng, g->seed, 1);
    for (uint32_t c = 0; c < g->ncust; c++) {
        g->owner[c] = (uint8_t)rng_below(&rng, GEN_OWNERS);
        g->method[c] = (uint8_t)rng_below(&rng, GEN_NMETHODS);
        /* ~half get a credit threshold of 100.00 .. 2000.00 */
        g->threshold[c] = rng_below(&rng, 2) == 0
                              ? -1 : (int64_t)(1 + rng_below(&rng, 20)) * 10000;
    }
    rng_seed(&rng, g->seed, 2);
    for (uint32_t i = 0; i < g->ninv; i++)
        g->ninvs[rng_below(&rng, g->ncust)]++;
    for (uint32_t c = 0; c < g->ncust; c++)
        if (g->ninvs[c] > maxn)
            maxn = g->ninvs[c];
    g->days = gen_calloc(maxn, sizeof(*g->days));
    if (g->days == NULL)
        return -1;

    plan_events(g, 0);
    size_t pos = 0;
    for (size_t d = 0; d < ndays; d++) {
        size_t n = g->day_pos[d];
        g->day_pos[d] = pos;
        pos += n;
    }
    g->ev = gen_calloc(g->nev, sizeof(*g->ev));
    if (g->ev == NULL)
        return -1;
    plan_events(g, 1);
    return 0;
}

/* ---- batches ------------------------------------------------------------- */

static char *
insert_sql(const struct batch *b, size_t rows)
{
    size_t head = strlen(b->table) + strlen(b->cols) + 32;
    size_t row = 2 * b->ncols + 2;
    char  *sql = malloc(head + rows * row + 1);
    if (sql == NULL)
        return NULL;
    char *p = sql + snprintf(sql, head, "INSERT INTO %s (%s) VALUES ",
                             b->table, b->cols);
    for (size_t i = 0; i < rows; i++) {
        *p++ = i > 0 ? ',' : '(';
        if (i > 0)
            *p++ = '(';
        for (size_t k = 0; k < b->ncols; k++) {
            *p++ = '?';
            *p++ = k + 1 < b->ncols ? ',' : ')';
        }
    }
    *p = '\0';
    return sql;
}

static int
batch_init(struct batch *b, const char *table, const char *cols)
{
    b->table = table;
    b->cols = cols;
    b->ncols = 1;
    for (const char *p = cols; *p; p++)
        b->ncols += *p == ',';
    b->sql_full = insert_sql(b, GEN_BATCH);
    b->v = gen_calloc((size_t)GEN_BATCH * b->ncols, sizeof(*b->v));
    b->pool = gen_calloc(GEN_BATCH, GEN_POOL_PER_ROW);
    return b->sql_full != NULL && b->v != NULL && b->pool != NULL ? 0 : -1;
}

static void
batch_free(struct batch *b)
{
    free(b->sql_full);
    free(b->v);
    free(b->pool);
}

static void
put_i64(struct batch *b, int64_t i)
{
    struct gen_val *v = &b->v[b->nv++];
    v->type = GV_I64;
    v->i = i;
}

static void
put_null(struct batch *b)
{
    b->v[b->nv++].type = GV_NULL;
}

/* s must outlive the batch (a literal or the calendar). */
static void
put_str(struct batch *b, const char *s)
{
    struct gen_val *v = &b->v[b->nv++];
    v->type = GV_STR;
    v->s = s;
    v->n = (uint32_t)strlen(s);
}

static void put_fmt(struct batch *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formatted text, kept in the batch's pool until the batch is sent. */
static void
put_fmt(struct batch *b, const char *fmt, ...)
{
    size_t  room = (size_t)GEN_BATCH * GEN_POOL_PER_ROW - b->pool_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->pool + b->pool_len, room, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= room) {
        fprintf(stderr, "generate: text pool overflow\n");
        abort();
    }
    struct gen_val *v = &b->v[b->nv++];
    v->type = GV_STR;
    v->s = b->pool + b->pool_len;
    v->n = (uint32_t)n;
    b->pool_len += (size_t)n + 1;
}

static int gen_commit(struct gen *g, int reopen);

/* Sends the pending rows as one prepared statement; commits once enough
 * rows have gone out since the last commit. */
static int
batch_flush(struct gen *g, struct batch *b)
{
    if (b->rows == 0)
        return 0;
    char *tail = NULL;
    if (b->rows != GEN_BATCH && (tail = insert_sql(b, b->rows)) == NULL) {
        fprintf(stderr, "generate: out of memory\n");
        return -1;
    }
    struct dbq *q = dbq_new(&g->u, tail != NULL ? tail : b->sql_full);
    for (size_t i = 0; i < b->nv; i++) {
        const struct gen_val *v = &b->v[i];
        if (v->type == GV_I64)
            dbq_i64(q, v->i);
        else if (v->type == GV_STR)
            dbq_strn(q, v->s, v->n);
        else
            dbq_null(q);
    }
    enum db_rc rc = dbq_exec(q);
    arena_reset(g->a);
    free(tail);
    if (rc != DB_OK) {
        fprintf(stderr, "generate: inserting %zu rows into %s failed\n",
                b->rows, b->table);
        return -1;
    }
    b->total += (long long)b->rows;
    g->since_commit += (long long)b->rows;
    b->rows = b->nv = b->pool_len = 0;
    if (g->since_commit >= GEN_COMMIT_ROWS)
        return gen_commit(g, 1);
    return 0;
}

static int
batch_row_end(struct gen *g, struct batch *b)
{
    if (++b->rows < GEN_BATCH)
        return 0;
    return batch_flush(g, b);
}

/* ---- transaction --------------------------------------------------------- */

static int
gen_begin(struct gen *g)
{
    if (db_tx_begin(&g->u) != DB_OK) {
        fprintf(stderr, "generate: cannot start a transaction\n");
        return -1;
    }
    g->in_tx = 1;
    return 0;
}

static int
gen_commit(struct gen *g, int reopen)
{
    g->in_tx = 0;
    enum db_rc rc = db_tx_commit(&g->u);
    if (rc != DB_OK) {
        fprintf(stderr, "generate: commit failed\n");
        return -1;
    }
    g->since_commit = 0;
    if (!reopen)
        return 0;
    long long ms = elapsed_ms(g);
    printf("generate: %lld/%zu ledger rows, %lld invoices, %lld payments,"
           " %lld.%03lld s\n", g->b[B_LEDGER].total, g->nev,
           g->b[B_INVOICES].total, g->b[B_PAYMENTS].total, ms / 1000,
           ms % 1000);
    fflush(stdout);
    return gen_begin(g);
}

/* ---- reference rows ------------------------------------------------------ */

static int
max_ids(struct gen *g)
{
    static const char *const sql[] = {
        "SELECT COALESCE(MAX(id),0) FROM contract_owners",
        "SELECT COALESCE(MAX(id),0) FROM customers",
        "SELECT COALESCE(MAX(id),0) FROM sites",
        "SELECT COALESCE(MAX(id),0) FROM bill_runs",
        "SELECT COALESCE(MAX(id),0) FROM invoices WHERE kind = 1",
        "SELECT COALESCE(MAX(id),0) FROM ledger",
        "SELECT COALESCE(MAX(id),0) FROM invoice_payments",
    };
    int64_t *out[] = {&g->base.owner, &g->base.customer, &g->base.site,
                      &g->base.run, &g->base.invoice, &g->base.ledger,
                      &g->base.payment};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        struct dbq *q = dbq_new(&g->u, sql[i]);
        if (dbq_one(q) != DB_OK) {
            fprintf(stderr, "generate: cannot read the current ids\n");
            return -1;
        }
        *out[i] = dbq_col_i64(q, 0);
    }
    arena_reset(g->a);
    return 0;
}

/* The GBP currency: reused when present, created otherwise. */
static int
currency_gbp(struct gen *g)
{
    struct dbq *q = dbq_new(&g->u, "SELECT id, minor_digits FROM currencies"
                                   " WHERE code = ?");
    dbq_str(q, "GBP");
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK) {
        g->base.currency = dbq_col_i64(q, 0);
        int64_t digits = dbq_col_i64(q, 1);
        arena_reset(g->a);
        if (digits != 2) {
            fprintf(stderr, "generate: currency GBP has %" PRId64
                    " minor digits, expected 2\n", digits);
            return -1;
        }
        return 0;
    }
    if (rc != DB_NOT_FOUND)
        goto fail;
    q = dbq_new(&g->u, "SELECT COALESCE(MAX(id),0) + 1 FROM currencies");
    if (dbq_one(q) != DB_OK)
        goto fail;
    g->base.currency = dbq_col_i64(q, 0);
    q = dbq_new(&g->u, "INSERT INTO currencies (id, code, name, minor_digits)"
                       " VALUES (?,?,?,?)");
    dbq_i64(q, g->base.currency);
    dbq_str(q, "GBP");
    dbq_str(q, "Pound sterling");
    dbq_i64(q, 2);
    if (dbq_exec(q) != DB_OK)
        goto fail;
    arena_reset(g->a);
    return 0;
fail:
    arena_reset(g->a);
    fprintf(stderr, "generate: cannot find or create currency GBP\n");
    return -1;
}

static int
write_reference(struct gen *g)
{
    struct batch *b = &g->b[B_OWNERS];
    for (int64_t i = 1; i <= GEN_OWNERS; i++) {
        put_i64(b, g->base.owner + i);
        put_fmt(b, "Generated owner %" PRId64, g->base.owner + i);
        if (batch_row_end(g, b) != 0)
            return -1;
    }
    b = &g->b[B_RUNS];
    for (int64_t i = 1; i <= GEN_NORMAL_RUNS + GEN_ADHOC_RUNS; i++) {
        put_i64(b, g->base.run + i);
        /* The newest NORMAL runs and the second ADHOC run are open. */
        int normal = i <= GEN_NORMAL_RUNS;
        int open = normal ? i > GEN_NORMAL_RUNS - GEN_OPEN_RUNS
                          : i == GEN_NORMAL_RUNS + GEN_ADHOC_RUNS;
        put_str(b, normal ? "NORMAL" : "ADHOC");
        put_str(b, open ? "OPEN" : "CLOSED");
        if (batch_row_end(g, b) != 0)
            return -1;
    }
    for (uint32_t c = 0; c < g->ncust; c++) {
        int64_t id = g->base.customer + c + 1;
        b = &g->b[B_CUSTOMERS];
        put_i64(b, id);
        put_i64(b, g->base.owner + 1 + g->owner[c]);
        put_fmt(b, "Generated customer %" PRId64, id);
        put_fmt(b, "GEN-%" PRId64, id);
        put_i64(b, g->base.currency);
        if (g->threshold[c] < 0)
            put_null(b);
        else
            put_i64(b, g->threshold[c]);
        put_i64(b, g->final_bal[c]);
        put_i64(b, g->paid[c]);
        put_i64(b, g->since[c]);
        if (batch_row_end(g, b) != 0)
            return -1;
        b = &g->b[B_SITES];
        put_i64(b, g->base.site + c + 1);
        put_i64(b, id);
        put_fmt(b, "Generated site %" PRId64, g->base.site + c + 1);
        put_str(b, g->date[0]);
        put_str(b, gen_methods[g->method[c]]);
        if (batch_row_end(g, b) != 0)
            return -1;
    }
    return 0;
}

/* ---- the ledger ---------------------------------------------------------- */

/* Walks the events in chronological order: ids, running balances and the
 * rows of invoices, ledger and invoice_payments. */
static int
write_history(struct gen *g)
{
    struct batch *bi = &g->b[B_INVOICES], *bl = &g->b[B_LEDGER],
                 *bp = &g->b[B_PAYMENTS];
    uint32_t      next_inv = 0;
    int64_t       next_pay = g->base.payment;

    for (size_t i = 0; i < g->nev; i++) {
        const struct gen_event *e = &g->ev[i];
        uint32_t    c = e->cust;
        int64_t     cust = g->base.customer + c + 1;
        int64_t     ledger_id = g->base.ledger + (int64_t)i + 1;
        const char *method = gen_methods[g->method[c]];
        const char *date = g->date[e->day];
        int64_t     inv_id;

        g->run_bal[c] += e->amount;
        if (e->kind == 0) {
            g->inv_ord[e->inv] = next_inv++;
            inv_id = g->base.invoice + next_inv;
            int64_t amount = -(int64_t)e->amount;
            put_i64(bi, 1);
            put_i64(bi, inv_id);
            put_i64(bi, cust);
            put_i64(bi, g->base.site + c + 1);
            put_i64(bi, g->base.run + 1 + g->run_of[e->day]);
            put_fmt(bi, "G%" PRId64, inv_id);
            put_str(bi, date);
            put_str(bi, g->date[e->day + GEN_DUE_DAYS]);
            put_i64(bi, amount);
            put_i64(bi, g->method[c] == 0 || g->method[c] == 3);
            put_i64(bi, e->newest ? 0 : amount);
            put_str(bi, e->newest ? "UNPAID" : "PAID");
            if (batch_row_end(g, bi) != 0)
                return -1;
        } else {
            inv_id = g->base.invoice + g->inv_ord[e->inv] + 1;
        }

        put_i64(bl, ledger_id);
        put_i64(bl, cust);
        put_str(bl, e->kind == 0 ? "INVOICE_CREATED" : "PAYMENT");
        put_str(bl, "INVOICE");
        put_i64(bl, e->amount);
        put_i64(bl, g->run_bal[c]);
        put_i64(bl, g->base.currency);
        if (e->kind == 0)
            put_null(bl);
        else
            put_str(bl, method);
        put_str(bl, date);
        put_i64(bl, 1);
        put_i64(bl, inv_id);
        put_fmt(bl, "G%" PRId64, inv_id);
        put_str(bl, "NORMAL");
        if (batch_row_end(g, bl) != 0)
            return -1;

        if (e->kind != 0) {
            put_i64(bp, ++next_pay);
            put_i64(bp, 1);
            put_i64(bp, inv_id);
            put_i64(bp, cust);
            put_i64(bp, g->base.owner + 1 + g->owner[c]);
            put_i64(bp, e->amount);
            put_i64(bp, g->base.currency);
            put_str(bp, method);
            put_str(bp, date);
            put_str(bp, "INVOICE");
            put_i64(bp, ledger_id);
            if (batch_row_end(g, bp) != 0)
                return -1;
        }
    }
    /* The plan's final balances must be what the walk arrived at. */
    for (uint32_t c = 0; c < g->ncust; c++)
        if (g->run_bal[c] != g->final_bal[c]) {
            fprintf(stderr, "generate: internal error: balance of customer"
                    " %u\n", c);
            return -1;
        }
    return 0;
}

/* The customers' maintained figures, as the money core would have kept
 * them walking the same chronological order: payments in total and since
 * the newest invoice, and the number of invoice payment events. */
static int
figures(struct gen *g)
{
    g->paid = gen_calloc(g->ncust, sizeof(*g->paid));
    g->since = gen_calloc(g->ncust, sizeof(*g->since));
    g->nevents = gen_calloc(g->ncust, sizeof(*g->nevents));
    if (g->paid == NULL || g->since == NULL || g->nevents == NULL)
        return -1;
    for (size_t i = 0; i < g->nev; i++) {
        const struct gen_event *e = &g->ev[i];
        if (e->kind == 0) {
            g->since[e->cust] = 0;
        } else {
            g->paid[e->cust] += e->amount;
            g->since[e->cust] += e->amount;
            g->nevents[e->cust]++;
        }
    }
    return 0;
}

/* One block's counter rows (owner_counts, see ledger.h): the owners are
 * new, so their rows are too; a block's events are counted in its folded
 * row (as the money core leaves a block it has written). */
static int
flush_owner_block(struct gen *g, int64_t block, int64_t n[GEN_OWNERS])
{
    for (int o = 0; o < GEN_OWNERS; o++) {
        if (n[o] == 0)
            continue;
        struct dbq *q = dbq_new(&g->u, "INSERT INTO owner_counts (contract_owner_id,"
                                       " counted, block, shard, normal_events)"
                                       " VALUES (?,0,?,?,?)");
        dbq_i64(q, g->base.owner + 1 + o);
        dbq_i64(q, block);
        dbq_i64(q, OWNER_COUNT_FOLDED);
        dbq_i64(q, n[o]);
        if (dbq_exec(q) != DB_OK) {
            fprintf(stderr, "generate: inserting owner_counts failed\n");
            return -1;
        }
        n[o] = 0;
    }
    arena_reset(g->a);
    return 0;
}

/* The owners' event counters: the payment events get their ids in the
 * order of the walk (write_history), so the blocks come in order. */
static int
write_owner_counts(struct gen *g)
{
    int64_t n[GEN_OWNERS] = {0};
    int64_t id = g->base.payment, block = -1;
    for (size_t i = 0; i < g->nev; i++) {
        const struct gen_event *e = &g->ev[i];
        if (e->kind == 0)
            continue;
        int64_t b = ++id >> OWNER_COUNT_BLOCK_SHIFT;
        if (b != block && block >= 0 && flush_owner_block(g, block, n) != 0)
            return -1;
        block = b;
        n[g->owner[e->cust]]++;
    }
    return block >= 0 ? flush_owner_block(g, block, n) : 0;
}

/* ---- entry point --------------------------------------------------------- */

static void
gen_free(struct gen *g)
{
    for (int i = 0; i < B_COUNT; i++)
        batch_free(&g->b[i]);
    free(g->date);
    free(g->run_of);
    free(g->ninvs);
    free(g->owner);
    free(g->method);
    free(g->threshold);
    free(g->final_bal);
    free(g->run_bal);
    free(g->paid);
    free(g->since);
    free(g->nevents);
    free(g->days);
    free(g->day_pos);
    free(g->ev);
    free(g->inv_ord);
    if (g->a != NULL)
        arena_destroy(g->a);
}

int
db_generate(long customers, long invoices, unsigned seed)
{
    struct gen  gs;
    struct gen *g = &gs;
    int         rc = -1, checks_off = 0;

    memset(g, 0, sizeof(*g));
    clock_gettime(CLOCK_MONOTONIC, &g->t0);
    if (customers < 1 || customers > (long)UINT32_MAX / 2 || invoices < 0 ||
        invoices > (long)UINT32_MAX / 2) {
        fprintf(stderr, "generate: customers or invoices out of range\n");
        return -1;
    }
    g->ncust = (uint32_t)customers;
    g->ninv = (uint32_t)invoices;
    g->seed = seed;
    g->a = arena_create(1 << 20);
    db_uow_init(&g->u, g->a);

    for (int i = 0; i < B_COUNT; i++)
        if (batch_init(&g->b[i], gen_tables[i].table, gen_tables[i].cols) != 0)
            goto cleanup;

    if (calendar_build(g) != 0 || plan(g) != 0 || figures(g) != 0)
        goto cleanup;
    long long plan_ms = elapsed_ms(g);
    printf("generate: planned %lu customers, %lu invoices, %zu ledger rows"
           " in %lld.%03lld s\n", (unsigned long)g->ncust,
           (unsigned long)g->ninv, g->nev, plan_ms / 1000, plan_ms % 1000);
    fflush(stdout);

    /* Bulk load: this session only; ids are ours, references consistent. */
    if (db_exec_fixed(&g->u, "SET SESSION foreign_key_checks = 0, unique_checks = 0")
        != DB_OK) {
        fprintf(stderr, "generate: cannot set session options\n");
        goto cleanup;
    }
    checks_off = 1;
    if (gen_begin(g) != 0 || max_ids(g) != 0 || currency_gbp(g) != 0 ||
        write_reference(g) != 0 || write_history(g) != 0)
        goto cleanup;
    for (int i = 0; i < B_COUNT; i++)
        if (batch_flush(g, &g->b[i]) != 0)
            goto cleanup;
    if (write_owner_counts(g) != 0)
        goto cleanup;
    if (g->in_tx && gen_commit(g, 0) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    if (rc != 0) {
        g->in_tx = 0;
        db_uow_reset(&g->u); /* rolls the open transaction back */
        fprintf(stderr, "generate: failed; rows committed before the failure"
                " remain\n");
    }
    if (checks_off &&
        db_exec_fixed(&g->u, "SET SESSION foreign_key_checks = 1, unique_checks = 1")
            != DB_OK)
        rc = -1;
    if (rc == 0) {
        long long ms = elapsed_ms(g);
        printf("generate: done: %lld customers, %lld invoices, %lld ledger"
               " rows, %lld invoice payments (ledger ids from %" PRId64 "),"
               " %lld.%03lld s\n",
               g->b[B_CUSTOMERS].total, g->b[B_INVOICES].total,
               g->b[B_LEDGER].total, g->b[B_PAYMENTS].total,
               g->base.ledger + 1, ms / 1000, ms % 1000);
    }
    gen_free(g);
    return rc;
}
