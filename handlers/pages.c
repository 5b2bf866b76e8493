/*
 * The two customer-facing HTML pages, served without a bearer token: the
 * token in the URL is the capability.
 *   /pay/{token}      payment link landing page and receipt (spec §4.11)
 *   /mandate/{token}  the sandbox provider's hosted mandate page (§4.2)
 * Cross-site form posts are refused twice over: a SameSite=Strict cookie
 * must match the form's hidden field (double submit), and an Origin
 * header, when sent, must be this service's. A link or flow is used inside
 * a transaction that locks its row, so a double click or a replayed POST
 * finds it used and shows the receipt instead of paying twice.
 */
#include <inttypes.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "collection.h"
#include "handlers.h"
#include "html.h"
#include "money.h"
#include "provider.h"
#include "text.h"
#include "token.h"

#define CSRF_COOKIE "pay_csrf"
#define CSRF_BYTES  24
#define CSRF_LEN    32  /* base64url of CSRF_BYTES */

/* ---- shared bits ----------------------------------------------------------- */

/* The token in the URL is the capability: the page acts for whichever
 * contract owner the link or flow belongs to. */
static void
act_for_token_owner(struct req *r)
{
    r->principal.all_owners = 1;
}

static int
token_shape_ok(const char *t)
{
    return t != NULL && strlen(t) == 43 &&
           strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789-_") == 43;
}

/* A simple page with a heading and one paragraph. */
static int
message_page(struct req *r, int status, const char *title, const char *text)
{
    struct html_page p;
    html_begin(r, &p, title);
    abuf_adds(&p.b, "<h1>");
    html_esc(&p.b, title);
    abuf_adds(&p.b, "</h1><p>");
    html_esc(&p.b, text);
    abuf_adds(&p.b, "</p>");
    return html_end(r, &p, status, NULL);
}

/* Issues a fresh CSRF value as a cookie and returns it for the form. The
 * cookie is Secure whenever public_base_url is https://, which config_load
 * requires unless allow_insecure_http = 1 (a development stack on http://). */
static const char *
csrf_issue(struct req *r)
{
    const char *v = token_random(r->arena, CSRF_BYTES);
    int secure = strncmp(provider_public_base_url(), "https://", 8) == 0;
    resp_header(r, "Set-Cookie",
                arena_printf(r->arena, CSRF_COOKIE "=%s; Path=/; HttpOnly;"
                             " SameSite=Strict%s", v, secure ? "; Secure" : ""));
    return v;
}

static const char *
cookie_value(struct req *r, const char *name)
{
    const char *c = req_env(r, "HTTP_COOKIE");
    size_t      n = strlen(name);
    while (c != NULL && *c) {
        while (*c == ' ' || *c == ';')
            c++;
        if (strncmp(c, name, n) == 0 && c[n] == '=') {
            const char *v = c + n + 1;
            return arena_strndup(r->arena, v, strcspn(v, ";"));
        }
        c += strcspn(c, ";");
    }
    return NULL;
}

/* 0 when the post comes from our own page; else a 403 page. */
static int
csrf_check_or_page(struct req *r, struct query *form)
{
    const char *origin = req_env(r, "HTTP_ORIGIN");
    const char *ours = html_origin(r->arena, provider_public_base_url());
    const char *site = req_env(r, "HTTP_SEC_FETCH_SITE");
    const char *field = query_get(form, "csrf");
    const char *cookie = cookie_value(r, CSRF_COOKIE);
    int ok = field != NULL && cookie != NULL && strlen(field) == CSRF_LEN &&
             token_equal(field, cookie) &&
             (origin == NULL || strcmp(origin, "null") == 0 ||
              (ours != NULL && strcasecmp(origin, ours) == 0)) &&
             (site == NULL || strcmp(site, "same-origin") == 0 ||
              strcmp(site, "none") == 0);
    if (ok && origin != NULL && strcmp(origin, "null") == 0)
        ok = 0; /* opaque origins are never ours */
    if (ok)
        return 0;
    return message_page(r, 403, "This form has expired",
                        "For your security this form can only be sent from this"
                        " page. Please go back, reload the page and try again.");
}

static int
parse_form_or_page(struct req *r, struct query *form)
{
    const char *bad;
    if (query_parse(r->arena, r->body, form, &bad) != 0)
        return message_page(r, 400, "Something went wrong",
                            "The form could not be read. Please reload the page"
                            " and try again.");
    return 0;
}

static void
format_amount(struct abuf *b, int64_t minor, int digits, const char *code)
{
    char num[MONEY_FMT_MAX];
    money_format(minor, digits, num, sizeof(num));
    html_esc(b, code);
    abuf_adds(b, " ");
    abuf_adds(b, num);
}

static int redirect(struct req *r, const char *url);

/* ---- /pay/{token} ------------------------------------------------------------ */

struct link {
    int64_t     id, amount, customer_id, invoice_id, provider_id;
    int         digits, kind, expired, paid;
    const char *description, *owner_name, *currency, *receipt, *invoice_number,
               *paid_at;
};

/* A plain read (no row is locked): what changes a link (its attempts, its
 * payment) is written with its customer locked, so the Pay button reads
 * the link again once it holds that lock. */
static enum db_rc
link_load(struct req *r, const char *tok, struct link *l)
{
#define LINK_SQL                                                                     \
        "SELECT l.id, l.amount, l.customer_id, COALESCE(l.invoice_kind, 0)," \
        " COALESCE(l.invoice_id, 0), l.provider_id, l.description," \
        " l.expires_at < UTC_TIMESTAMP(), l.paid_at IS NOT NULL, l.receipt_reference," \
        " DATE_FORMAT(l.paid_at, '%Y-%m-%d %H:%i UTC'), co.name, cur.code," \
        " cur.minor_digits, i.invoice_number" \
        " FROM payment_links l JOIN contract_owners co ON co.id = l.contract_owner_id" \
        " JOIN currencies cur ON cur.id = l.currency_id LEFT JOIN invoices i" \
        " ON i.kind = l.invoice_kind AND i.id = l.invoice_id" \
        " WHERE l.token_hash = ?"

    struct dbq *q = dbq_new(&r->db, LINK_SQL);
    dbq_str(q, token_sha256_hex(r->arena, tok, strlen(tok)));
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    l->id = dbq_col_i64(q, 0);
    l->amount = dbq_col_i64(q, 1);
    l->customer_id = dbq_col_i64(q, 2);
    l->kind = (int)dbq_col_i64(q, 3);
    l->invoice_id = dbq_col_i64(q, 4);
    l->provider_id = dbq_col_i64(q, 5);
    l->description = dbq_col_str(q, 6);
    l->expired = dbq_col_i64(q, 7) != 0;
    l->paid = dbq_col_i64(q, 8) != 0;
    l->receipt = dbq_col_str(q, 9);
    l->paid_at = dbq_col_str(q, 10);
    l->owner_name = dbq_col_str(q, 11);
    l->currency = dbq_col_str(q, 12);
    l->digits = (int)dbq_col_i64(q, 13);
    l->invoice_number = dbq_col_str(q, 14);
    return DB_OK;
}

static void
link_details(struct abuf *b, const struct link *l)
{
    abuf_adds(b, "<dl><dt>Payment to</dt><dd>");
    html_esc(b, l->owner_name);
    abuf_adds(b, "</dd><dt>For</dt><dd>");
    html_esc(b, l->description);
    abuf_adds(b, "</dd>");
    if (l->invoice_number != NULL) {
        abuf_adds(b, "<dt>Invoice</dt><dd>");
        html_esc(b, l->invoice_number);
        abuf_adds(b, "</dd>");
    }
    abuf_adds(b, "<dt>Amount</dt><dd class=\"amount\">");
    format_amount(b, l->amount, l->digits, l->currency);
    abuf_adds(b, "</dd></dl>");
}

/* 200 right after paying; 410 for a used link (spec §4.11), which still
 * shows its receipt so a reload or a double click tells the payer it is done. */
static int
receipt_page(struct req *r, const struct link *l, int status)
{
    struct html_page p;
    html_begin(r, &p, "Payment received");
    abuf_adds(&p.b, "<h1 class=\"ok\">Payment received</h1><p>Thank you. Your payment"
                    " has been received.</p>");
    link_details(&p.b, l);
    abuf_adds(&p.b, "<dl><dt>Receipt reference</dt><dd id=\"receipt-reference\">");
    html_esc(&p.b, l->receipt);
    abuf_adds(&p.b, "</dd><dt>Paid</dt><dd>");
    html_esc(&p.b, l->paid_at);
    abuf_adds(&p.b, "</dd></dl><footer>Keep this reference for your records.</footer>");
    return html_end(r, &p, status, NULL);
}

static int
link_state_page(struct req *r, enum db_rc rc, const struct link *l)
{
    if (rc == DB_NOT_FOUND)
        return message_page(r, 404, "Payment link not found",
                            "This payment link is not valid. Please check the link"
                            " you were sent.");
    if (rc != DB_OK)
        return message_page(r, 503, "Please try again",
                            "We cannot take payments at the moment. Please try"
                            " again in a few minutes.");
    if (l->paid)
        return receipt_page(r, l, 410);
    if (l->expired)
        return message_page(r, 410, "Payment link expired",
                            "This payment link has expired. Please ask for a new one.");
    return 0;
}

/* The newest payment attempt of a link: its status (NULL when there is
 * none), error and how many attempts the link has had. */
struct link_attempt {
    const char *status, *error, *reference;
    int64_t     count, id;
    int         cancel_requested;
};

static enum db_rc
link_attempt_load(struct req *r, const struct link *l, struct link_attempt *la)
{
    struct dbq *q = dbq_new(&r->db,
        "SELECT status, error_info, (SELECT COUNT(*) FROM attempts WHERE payment_link_id = ?),"
        " provider_reference, id, cancel_requested FROM attempts WHERE payment_link_id = ?"
        " ORDER BY id DESC LIMIT 1");
    dbq_i64(q, l->id);
    dbq_i64(q, l->id);
    memset(la, 0, sizeof(*la));
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK) {
        la->status = dbq_col_str(q, 0);
        la->error = dbq_col_str(q, 1);
        la->count = dbq_col_i64(q, 2);
        la->reference = dbq_col_str(q, 3);
        la->id = dbq_col_i64(q, 4);
        la->cancel_requested = dbq_col_i64(q, 5) != 0;
    }
    return rc == DB_NOT_FOUND ? DB_OK : rc;
}

/* The payment is with the provider: the page reloads itself (Refresh
 * header, no script) until the provider's answer turns it into the receipt
 * or a failure. */
static int
processing_page(struct req *r, const struct link *l)
{
    struct html_page p;
    resp_header(r, "Refresh", "2");
    html_begin(r, &p, "Processing your payment");
    abuf_adds(&p.b, "<h1 id=\"processing\">Processing your payment</h1><p>Your payment is"
                    " with our payment provider. This page updates itself; you can also"
                    " reload it.</p>");
    link_details(&p.b, l);
    return html_end(r, &p, 200, NULL);
}

/* The adapter through whose hosted page a link's provider takes the
 * payment (payment_checkout: Stripe Checkout, GoCardless instant bank
 * payments), or NULL (the engine submits it); *type its PaymentMethod.
 * active: only while the provider is ACTIVE. */
static const struct provider_adapter *
link_checkout(struct req *r, const struct link *l, int active, const char **type)
{
    struct dbq *q = dbq_new(&r->db, active ? "SELECT type FROM payment_providers WHERE id = ?"
                                             " AND status = 'ACTIVE'"
                                           : "SELECT type FROM payment_providers WHERE id = ?");
    dbq_i64(q, l->provider_id);
    const char *t = dbq_one(q) == DB_OK ? arena_strdup(r->arena, dbq_col_str(q, 0)) : NULL;
    const struct provider_adapter *pa = t != NULL ? provider_adapter(t) : NULL;
    if (type != NULL)
        *type = t;
    return pa != NULL && pa->payment_checkout != NULL ? pa : NULL;
}

static const char *
link_page_path(struct req *r, const char *tok)
{
    return arena_printf(r->arena, "/pay/%s", tok);
}

static const char *
link_page_url(struct req *r, const char *tok)
{
    return arena_printf(r->arena, "%s/pay/%s", provider_public_base_url(), tok);
}

/* The origin the Pay button may lead to besides ours (its POST is
 * answered with a redirect to the provider's hosted page, which the
 * form-action of the page's CSP must allow), or NULL. */
static const char *
pay_form_target(struct req *r, const struct link *l)
{
    const struct provider_adapter *pa = link_checkout(r, l, 0, NULL);
    return pa != NULL ? pa->checkout_origin(r) : NULL;
}

static int
pay_form(struct req *r, const char *tok, const struct link *l, const char *failure)
{
    struct html_page p;
    html_begin(r, &p, "Make a payment");
    abuf_adds(&p.b, "<h1>Make a payment</h1>");
    if (failure != NULL) {
        abuf_adds(&p.b, "<p class=\"error\" role=\"alert\" id=\"payment-failed\">Your payment"
                        " did not go through: ");
        html_esc(&p.b, failure);
        abuf_adds(&p.b, ". No money has been taken. You can try again.</p>");
    }
    link_details(&p.b, l);
    abuf_printf(&p.b, "<form method=\"post\" action=\"/pay/%s\">"
                      "<input type=\"hidden\" name=\"csrf\" value=\"%s\">"
                      "<button type=\"submit\">%s ", tok, csrf_issue(r),
                failure ? "Try again: pay" : "Pay");
    format_amount(&p.b, l->amount, l->digits, l->currency);
    abuf_adds(&p.b, "</button></form><footer>Payments are processed securely by"
                    " our payment provider.</footer>");
    return html_end(r, &p, 200, pay_form_target(r, l));
}

int
pages_pay_get(struct req *r)
{
    const char         *tok = req_param(r, 0);
    struct link         l = {0};
    struct link_attempt la;
    int                 st;
    if (!token_shape_ok(tok))
        return link_state_page(r, DB_NOT_FOUND, &l);
    if ((st = link_state_page(r, link_load(r, tok, &l), &l)) != 0)
        return st;
    if ((st = link_state_page(r, link_attempt_load(r, &l, &la), &l)) != 0)
        return st;
    const char *exit_ref = req_query(r, "exit");
    if (exit_ref != NULL) {
        /* The payer left the provider's hosted page (its exit_uri names the
         * attempt's reference): the attempt is cancelled there by the
         * engine, after which the link can be paid again. Only the latest
         * attempt, only while the payer has not approved it: an old exit
         * URL (history, another tab) changes nothing. Then on to the page
         * itself, which does not refresh at this URL. */
        if (la.status != NULL && la.reference != NULL && strcmp(exit_ref, la.reference) == 0 &&
            attempt_rank(ATTEMPT_COLLECTION, la.status) <=
                attempt_rank(ATTEMPT_COLLECTION, "PENDING_CUSTOMER_APPROVAL") &&
            attempt_group_of(ATTEMPT_COLLECTION, la.status) == AG_PENDING &&
            link_checkout(r, &l, 0, NULL) != NULL) {
            struct dbq *q = dbq_new(&r->db,
                "UPDATE attempts SET cancel_requested = 1, next_action_at = UTC_TIMESTAMP(6)"
                " WHERE id = ? AND provider_reference = ?"
                " AND status IN ('NEW','CREATED','PENDING_CUSTOMER_APPROVAL')");
            dbq_i64(q, la.id);
            dbq_str(q, exit_ref);
            enum db_rc rc = dbq_exec(q);
            if (rc != DB_OK)
                return link_state_page(r, rc, &l);
        }
        return redirect(r, link_page_path(r, tok));
    }
    if (la.status != NULL &&
        attempt_group_of(ATTEMPT_COLLECTION, la.status) == AG_PENDING) {
        /* Paid on the provider's hosted page: back there while it is open
         * (and the payer has not left it). */
        const struct provider_adapter *pa;
        if (la.reference != NULL && !la.cancel_requested &&
            attempt_rank(ATTEMPT_COLLECTION, la.status) <=
                attempt_rank(ATTEMPT_COLLECTION, "PENDING_CUSTOMER_APPROVAL") &&
            (pa = link_checkout(r, &l, 0, NULL)) != NULL) {
            const char *ref = arena_strdup(r->arena, la.reference);
            const char *url = pa->checkout_url(r, ref, link_page_url(r, tok));
            if (url != NULL)
                return redirect(r, url);
        }
        return processing_page(r, &l);
    }
    if (la.status != NULL && attempt_group_of(ATTEMPT_COLLECTION, la.status) == AG_FAILED)
        return pay_form(r, tok, &l, la.error ? la.error
                                    : strcmp(la.status, "CANCELLED") == 0
                                        ? "the payment was cancelled"
                                        : "your bank declined it");
    return pay_form(r, tok, &l, NULL);
}

/* Pressing Pay makes the payment an attempt for the collection engine
 * (COLLECTION.md §3); no provider is called here. The link's row lock
 * makes a double click or a replayed POST find the attempt in progress
 * (or the link paid) instead of paying twice; after a failure, pressing
 * again is a new attempt with a new key. The browser is sent to the page,
 * which shows "processing" until the provider's answer arrives. */
/* A link of a provider that takes the payment on its hosted page
 * (payment_checkout): that page is opened first, outside any transaction,
 * with the key the attempt will carry (a second press finds the same one).
 * 0 and *key, *res, *url empty when the link is not paid that way or not
 * payable now (the normal path then shows why); else the page status on
 * failure, or 0 with them set. */
static int
checkout_first(struct req *r, const char *tok, const char **key, struct provider_result *res,
               const char **url)
{
    struct link         l = {0};
    struct link_attempt la;
    if (link_load(r, tok, &l) != DB_OK || l.paid || l.expired ||
        link_attempt_load(r, &l, &la) != DB_OK ||
        (la.status != NULL && attempt_group_of(ATTEMPT_COLLECTION, la.status) != AG_FAILED)) {
        db_uow_reset(&r->db);
        return 0;
    }
    int64_t                        count = la.count;
    const char                    *type;
    const struct provider_adapter *pa = link_checkout(r, &l, 1, &type);
    db_uow_reset(&r->db);
    if (pa == NULL)
        return 0;
    *key = provider_call_key(r, "link-payment",
                             count == 0 ? tok : arena_printf(r->arena, "%s\n%" PRId64, tok, count));
    struct provider_money m = {l.amount, l.currency, l.description, *key, l.provider_id, NULL, NULL};
    if (pa->payment_checkout(r, type, &m, link_page_url(r, tok), res, url) != 0)
        return message_page(r, 503, "Payments are unavailable",
                            "Payments cannot be taken at the moment. Please try"
                            " again in a few minutes.");
    return 0;
}

int
pages_pay_post(struct req *r)
{
    const char         *tok = req_param(r, 0);
    struct query        form;
    struct link         l = {0};
    struct link_attempt la;
    struct customer     c;
    struct invoice      inv;
    enum db_rc          rc;
    int                 st;

    if (!token_shape_ok(tok))
        return link_state_page(r, DB_NOT_FOUND, &l);
    if ((st = parse_form_or_page(r, &form)) != 0 ||
        (st = csrf_check_or_page(r, &form)) != 0)
        return st;
    act_for_token_owner(r);
    const char            *hosted_key = NULL, *hosted_url = NULL;
    struct provider_result hosted_res = {0};
    if ((st = checkout_first(r, tok, &hosted_key, &hosted_res, &hosted_url)) != 0)
        return st;
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return link_state_page(r, rc, &l);
    if ((st = link_state_page(r, link_load(r, tok, &l), &l)) != 0)
        return st; /* unknown, expired, or already paid: the receipt again */
    /* The one lock order: the customer, then the invoice; then the link
     * and its attempts are read again under that lock. */
    rc = l.kind ? invoice_lock_visible(r, l.kind, l.invoice_id, &c, &inv)
                : customer_load_visible(r, l.customer_id, 1, &c);
    if (rc != DB_OK)
        return link_state_page(r, rc == DB_NOT_FOUND ? DB_ERROR : rc, &l);
    if ((st = link_state_page(r, link_load(r, tok, &l), &l)) != 0)
        return st;
    if ((st = link_state_page(r, link_attempt_load(r, &l, &la), &l)) != 0)
        return st;
    if (la.status != NULL && attempt_group_of(ATTEMPT_COLLECTION, la.status) != AG_FAILED)
        return redirect(r, arena_printf(r->arena, "/pay/%s", tok)); /* in progress */

    struct dbq *q = dbq_new(&r->db, "SELECT type, status FROM payment_providers WHERE id = ?");
    dbq_i64(q, l.provider_id);
    if ((rc = dbq_one(q)) != DB_OK)
        return link_state_page(r, rc, &l);
    const char *method = dbq_col_str(q, 0);
    if (strcmp(dbq_col_str(q, 1), "ACTIVE") != 0)
        return message_page(r, 503, "Payments are unavailable",
                            "Payments cannot be taken at the moment. Please try"
                            " again later.");

    /* Of the link's invoice or, for a customer target, of the account
     * (spread over the oldest open invoices, normal and adhoc alike). */
    struct attempt a = {
        .kind = ATTEMPT_COLLECTION, .customer_id = c.id, .invoice_kind = l.kind,
        .invoice_id = l.kind ? l.invoice_id : 0, .provider_id = l.provider_id,
        .method = method, .amount = l.amount, .currency_id = c.currency_id,
        .description = l.description, .payment_link_id = l.id, .due = 1,
        /* The first try's key is made from the token alone; a try after a
         * failure is another payment for the provider. */
        .idem_key = provider_call_key(r, "link-payment",
                                      la.count == 0 ? tok
                                                    : arena_printf(r->arena, "%s\n%" PRId64,
                                                                   tok, la.count)),
    };
    if (hosted_url != NULL && strcmp(hosted_key, a.idem_key) == 0)
        a.reference = hosted_res.reference; /* the collector follows it */
    struct attempt_outcome out;
    rc = attempt_advance(&r->db, &c, &a, "NEW", NULL, &out);
    if (rc == DB_CONFLICT) {
        /* The attempt's key is taken: another submission made it first (on
         * a cluster, through another node after this one read the link's
         * attempts): in progress, like a double click. */
        db_tx_rollback(&r->db);
        return redirect(r, arena_printf(r->arena, "/pay/%s", tok));
    }
    if (rc != DB_OK)
        return link_state_page(r, rc, &l);
    if (a.reference != NULL && hosted_url != NULL)
        return redirect(r, hosted_url);
    return redirect(r, arena_printf(r->arena, "/pay/%s", tok));
}

/* ---- /mandate/{token} ---------------------------------------------------------- */

struct flow {
    int64_t     id, site_id, provider_id, customer_id, owner;
    int         expired, completed, provider_active;
    const char *return_url, *exit_url, *owner_name, *site_name, *type, *customer_name;
    int         instant, sync;
    const char *hosted_url; /* the provider's own page (integrated providers) */
};

static enum db_rc
flow_load(struct req *r, const char *tok, int lock, struct flow *f)
{
#define FLOW_SQL                                                                     \
        "SELECT m.id, m.site_id, m.provider_id, s.customer_id, c.contract_owner_id," \
        " m.flow_expires_at < UTC_TIMESTAMP(), m.flow_completed_at IS NOT NULL," \
        " p.status = 'ACTIVE', m.return_url, m.exit_url, co.name, s.site_name, p.type," \
        " c.customer_name, p.instant_bank_payments, p.sync_ibp_with_mandate_creation," \
        " m.redirect_url" \
        " FROM site_payment_mandates m JOIN sites s ON s.id = m.site_id" \
        " JOIN customers c ON c.id = s.customer_id" \
        " JOIN contract_owners co ON co.id = c.contract_owner_id" \
        " JOIN payment_providers p ON p.id = m.provider_id" \
        " WHERE m.flow_token = ?"

    struct dbq *q = dbq_new(&r->db, lock ? FLOW_SQL " FOR UPDATE" : FLOW_SQL);
    dbq_str(q, tok);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    f->id = dbq_col_i64(q, 0);
    f->site_id = dbq_col_i64(q, 1);
    f->provider_id = dbq_col_i64(q, 2);
    f->customer_id = dbq_col_i64(q, 3);
    f->owner = dbq_col_i64(q, 4);
    f->expired = dbq_col_i64(q, 5) != 0;
    f->completed = dbq_col_i64(q, 6) != 0;
    f->provider_active = dbq_col_i64(q, 7) != 0;
    f->return_url = dbq_col_str(q, 8);
    f->exit_url = dbq_col_str(q, 9);
    f->owner_name = dbq_col_str(q, 10);
    f->site_name = dbq_col_str(q, 11);
    f->type = dbq_col_str(q, 12);
    f->customer_name = dbq_col_str(q, 13);
    f->instant = dbq_col_i64(q, 14) != 0;
    f->sync = dbq_col_i64(q, 15) != 0;
    f->hosted_url = dbq_col_str(q, 16);
    return DB_OK;
}

static int
redirect(struct req *r, const char *url)
{
    resp_header(r, "Location", url);
    return message_page(r, 303, "Redirecting", "You are being sent back.");
}

/* Unknown, used, expired or provider unavailable: the page to show. */
static int
flow_state_page(struct req *r, enum db_rc rc, const struct flow *f)
{
    if (rc == DB_NOT_FOUND)
        return message_page(r, 404, "Link not found",
                            "This bank details link is not valid.");
    if (rc != DB_OK)
        return message_page(r, 503, "Please try again",
                            "We cannot set up a Direct Debit at the moment.");
    if (f->completed)
        return message_page(r, 410, "Already completed",
                            "Your Direct Debit has already been set up with this link.");
    if (f->expired)
        return message_page(r, 410, "Link expired",
                            "This link has expired. Please start again from the"
                            " website that sent you here.");
    if (!f->provider_active) {
        if (f->exit_url != NULL)
            return redirect(r, f->exit_url);
        return message_page(r, 503, "Direct Debit unavailable",
                            "Direct Debit set-up is not available at the moment.");
    }
    return 0;
}

static const char *
form_targets(struct req *r, const struct flow *f)
{
    const char *a = html_origin(r->arena, f->return_url);
    const char *b = html_origin(r->arena, f->exit_url);
    if (b == NULL || (a != NULL && strcmp(a, b) == 0))
        return a;
    return arena_printf(r->arena, "%s %s", a ? a : "", b);
}

static int
mandate_form(struct req *r, const char *tok, const struct flow *f, int status,
             const char *error, const char *name)
{
    struct html_page p;
    html_begin(r, &p, "Set up a Direct Debit");
    abuf_adds(&p.b, "<h1>Set up a Direct Debit</h1><dl><dt>Collected by</dt><dd>");
    html_esc(&p.b, f->owner_name);
    abuf_adds(&p.b, "</dd><dt>For</dt><dd>");
    html_esc(&p.b, f->site_name);
    abuf_adds(&p.b, "</dd></dl>");
    if (error != NULL) {
        abuf_adds(&p.b, "<p class=\"error\" role=\"alert\">");
        html_esc(&p.b, error);
        abuf_adds(&p.b, "</p>");
    }
    abuf_printf(&p.b, "<form method=\"post\" action=\"/mandate/%s\" novalidate>"
                      "<input type=\"hidden\" name=\"csrf\" value=\"%s\">",
                tok, csrf_issue(r));
    abuf_adds(&p.b, "<label for=\"name\">Account holder name</label>"
                    "<input id=\"name\" name=\"accountHolderName\" autocomplete=\"name\""
                    " maxlength=\"255\" required value=\"");
    html_esc(&p.b, name);
    abuf_adds(&p.b, "\"><label for=\"sort\">Sort code</label>"
                    "<input id=\"sort\" name=\"sortCode\" inputmode=\"numeric\""
                    " autocomplete=\"off\" placeholder=\"12-34-56\" required>"
                    "<span class=\"hint\">6 digits</span>"
                    "<label for=\"acct\">Account number</label>"
                    "<input id=\"acct\" name=\"accountNumber\" inputmode=\"numeric\""
                    " autocomplete=\"off\" required>"
                    "<span class=\"hint\">8 digits</span>"
                    "<button type=\"submit\">Set up Direct Debit</button></form>");
    return html_end(r, &p, status, form_targets(r, f));
}

/* The instant bank payment made when the mandate was set up: an attempt
 * whose key comes from the flow token (handlers/mandates.c). */
struct flow_payment {
    const char *status, *error, *reference, *currency;
    int64_t     amount;
    int         digits;
};

static enum db_rc
flow_payment_load(struct req *r, const char *tok, struct flow_payment *fp)
{
    struct dbq *q = dbq_new(&r->db,
        "SELECT t.status, t.error_info, t.provider_reference, t.amount, cur.code,"
        " cur.minor_digits FROM attempts t JOIN currencies cur ON cur.id = t.currency_id"
        " WHERE t.idempotency_key = ?");
    dbq_str(q, provider_call_key(r, "mandate-payment", tok));
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK)
        return rc;
    fp->status = dbq_col_str(q, 0);
    fp->error = dbq_col_str(q, 1);
    fp->reference = dbq_col_str(q, 2);
    fp->amount = dbq_col_i64(q, 3);
    fp->currency = dbq_col_str(q, 4);
    fp->digits = (int)dbq_col_i64(q, 5);
    return DB_OK;
}

/* After a set-up with an instant bank payment: "processing" (the page
 * reloads itself) until the provider's answer, then the outcome and the
 * way back to the returnURL. */
static int
flow_payment_page(struct req *r, const struct flow *f, const struct flow_payment *fp)
{
    struct html_page   p;
    enum attempt_group g = attempt_group_of(ATTEMPT_COLLECTION, fp->status);
    if (g == AG_PENDING) {
        resp_header(r, "Refresh", "2");
        html_begin(r, &p, "Processing your payment");
        abuf_adds(&p.b, "<h1 id=\"processing\">Processing your payment</h1><p>Your Direct"
                        " Debit is set up. Your payment is with our payment provider. This"
                        " page updates itself; you can also reload it.</p>");
    } else if (g == AG_COLLECTED) {
        html_begin(r, &p, "Payment received");
        abuf_adds(&p.b, "<h1 class=\"ok\" id=\"payment-received\">Payment received</h1>"
                        "<p>Thank you. Your Direct Debit is set up and your payment has been"
                        " received.</p>");
    } else {
        html_begin(r, &p, "Payment not completed");
        abuf_adds(&p.b, "<h1 id=\"payment-failed\">Payment not completed</h1><p class=\"error\""
                        " role=\"alert\">Your Direct Debit is set up, but the payment did not"
                        " go through: ");
        html_esc(&p.b, fp->error ? fp->error
                                 : g == AG_REVERSED ? "your bank reversed it"
                                                    : "your bank declined it");
        abuf_adds(&p.b, ".</p>");
    }
    abuf_adds(&p.b, "<dl><dt>Collected by</dt><dd>");
    html_esc(&p.b, f->owner_name);
    abuf_adds(&p.b, "</dd><dt>For</dt><dd>");
    html_esc(&p.b, f->site_name);
    abuf_adds(&p.b, "</dd><dt>Amount</dt><dd class=\"amount\">");
    format_amount(&p.b, fp->amount, fp->digits, fp->currency);
    abuf_adds(&p.b, "</dd>");
    if (g == AG_COLLECTED && fp->reference != NULL) {
        abuf_adds(&p.b, "<dt>Reference</dt><dd id=\"payment-reference\">");
        html_esc(&p.b, fp->reference);
        abuf_adds(&p.b, "</dd>");
    }
    abuf_adds(&p.b, "</dl>");
    if (g != AG_PENDING) {
        abuf_adds(&p.b, "<p><a id=\"continue\" href=\"");
        html_esc(&p.b, f->return_url);
        abuf_adds(&p.b, "\">Continue</a></p>");
    }
    return html_end(r, &p, 200, NULL);
}

/* A completed flow whose set-up made an instant bank payment shows that
 * payment (GET), or sends a repeated POST there; 0 otherwise. */
static int
completed_flow_page(struct req *r, const char *tok, const struct flow *f, int post)
{
    struct flow_payment fp;
    if (!f->completed || !f->instant || !f->sync)
        return 0;
    enum db_rc rc = flow_payment_load(r, tok, &fp);
    if (rc == DB_NOT_FOUND)
        return 0;
    if (rc != DB_OK)
        return flow_state_page(r, rc, f);
    return post ? redirect(r, arena_printf(r->arena, "/mandate/%s", tok))
                : flow_payment_page(r, f, &fp);
}

static int record_mandate(struct req *r, const char *tok, struct flow *f,
                          const struct provider_result *res, const char *name,
                          const char *sort, const char *last4);

/*
 * A flow on an integrated provider's own hosted page: bank details never
 * come here. The provider sends the browser back to /mandate/{token} with
 * ?billing_request=<its flow> when done (the mandate is fetched from the
 * provider and recorded) or ?exit=1 when the customer left (on to the site's
 * exitURL); without either, the browser is sent to the hosted page.
 */
static int
hosted_flow(struct req *r, const char *tok, struct flow *f)
{
    const char *done = req_query(r, "billing_request");
    if (req_query(r, "exit") != NULL) {
        if (f->exit_url != NULL)
            return redirect(r, f->exit_url);
        return message_page(r, 200, "Direct Debit not set up",
                            "You left the bank details page before the end.");
    }
    if (done == NULL) {
        if (f->hosted_url != NULL)
            return redirect(r, f->hosted_url);
        return message_page(r, 503, "Please try again",
                            "We cannot set up a Direct Debit at the moment.");
    }
    act_for_token_owner(r);
    struct mandate_details d = {0};
    d.payment_method = f->type;
    d.idempotency_key = provider_call_key(r, "mandate", tok);
    d.flow_token = tok;
    d.flow_reference = done;
    struct provider_result res = {0};
    int prc = provider_adapter(f->type)->mandate_complete(r, &d, &res);
    if (prc == PROVIDER_RETRY)
        return message_page(r, 503, "Please try again",
                            "Your Direct Debit is being confirmed. Reload this page in a"
                            " moment.");
    if (prc != 0 || res.reference == NULL) {
        if (f->exit_url != NULL)
            return redirect(r, f->exit_url);
        return message_page(r, 502, "Direct Debit not set up",
                            "Your bank details could not be confirmed.");
    }
    const char *name = res.account_holder_name ? res.account_holder_name : "";
    const char *ending = res.account_number_ending ? res.account_number_ending : "";
    if (!text_valid(name, strlen(name), 255))
        name = "";
    if (strlen(ending) > 4 || strspn(ending, "0123456789") != strlen(ending))
        ending = "";
    return record_mandate(r, tok, f, &res, name, "", ending);
}

int
pages_mandate_get(struct req *r)
{
    const char *tok = req_param(r, 0);
    struct flow f = {0};
    enum db_rc  rc;
    int         st;
    if (!token_shape_ok(tok))
        return flow_state_page(r, DB_NOT_FOUND, &f);
    if ((rc = flow_load(r, tok, 0, &f)) == DB_OK && (st = completed_flow_page(r, tok, &f, 0)) != 0)
        return st;
    if ((st = flow_state_page(r, rc, &f)) != 0)
        return st;
    if (provider_adapter(f.type) != provider_sandbox_adapter())
        return hosted_flow(r, tok, &f);
    return mandate_form(r, tok, &f, 200, NULL, NULL);
}

/* Keeps the digits of s; NULL unless exactly n digits (spaces and dashes
 * are allowed between them). */
static const char *
digits_only(struct req *r, const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    char  *out = arena_alloc(r->arena, n + 1);
    size_t k = 0;
    for (; *s; s++) {
        if (*s >= '0' && *s <= '9') {
            if (k == n)
                return NULL;
            out[k++] = *s;
        } else if (*s != ' ' && *s != '-') {
            return NULL;
        }
    }
    out[k] = '\0';
    return k == n ? out : NULL;
}

/* Records the mandate the provider answered for flow `tok`, with the flow
 * locked (a second submission or return finds it completed), and sends the
 * browser to the site's returnURL. */
static int
record_mandate(struct req *r, const char *tok, struct flow *f, const struct provider_result *res,
               const char *name, const char *sort, const char *last4)
{
    enum db_rc rc;
    int        st;
    /* Now the writes, with the flow locked: a second submission that got
     * here too (a double click) finds it completed. The provider's answer
     * to the same key and details is the same mandate. */
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return flow_state_page(r, rc, f);
    if ((rc = flow_load(r, tok, 1, f)) == DB_OK && (st = completed_flow_page(r, tok, f, 1)) != 0)
        return st; /* completed meanwhile (a double click): the payment's page */
    if ((st = flow_state_page(r, rc, f)) != 0)
        return st;
    const char *space = strrchr(name, ' ');
    struct dbq *q = dbq_new(&r->db,
        "INSERT INTO provider_mandates (payment_method, mandate_reference,"
        " third_party_customer_reference, contract_owner_id, provider_id, status,"
        " account_holder_name, sort_code, account_number_last4, first_name,"
        " last_name, company_name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
    dbq_str(q, f->type);
    dbq_str(q, res->reference);
    dbq_str(q, res->customer_reference);
    dbq_i64(q, f->owner);
    dbq_i64(q, f->provider_id);
    dbq_str(q, res->status);
    dbq_str(q, name);
    dbq_str(q, sort);
    dbq_str(q, last4);
    if (space != NULL)
        dbq_strn(q, name, (size_t)(space - name));
    else
        dbq_null(q);
    dbq_str(q, space != NULL ? space + 1 : name);
    dbq_str(q, f->customer_name);
    if ((rc = dbq_exec(q)) != DB_OK)
        return flow_state_page(r, rc, f);
    q = dbq_new(&r->db, "UPDATE site_payment_mandates SET mandate_reference = ?,"
                   " third_party_customer_reference = ?,"
                   " flow_completed_at = UTC_TIMESTAMP() WHERE id = ?");
    dbq_str(q, res->reference);
    dbq_str(q, res->customer_reference);
    dbq_i64(q, f->id);
    if ((rc = dbq_exec(q)) != DB_OK)
        return flow_state_page(r, rc, f);
    if ((rc = mandate_site_method(r, f->site_id, f->type)) != DB_OK)
        return flow_state_page(r, rc, f);
    if (f->instant && f->sync &&
        (rc = mandate_instant_payment(r, f->customer_id, f->type, res->reference,
                                      provider_call_key(r, "mandate-payment", tok))) != DB_OK)
        return flow_state_page(r, rc, f);
    /* With an instant bank payment, its page ("processing", then the
     * outcome and a link to the returnURL); else straight back. */
    f->completed = 1;
    if ((st = completed_flow_page(r, tok, f, 1)) != 0)
        return st;
    return redirect(r, f->return_url);
}

int
pages_mandate_post(struct req *r)
{
    const char  *tok = req_param(r, 0);
    struct query form;
    struct flow  f = {0};
    enum db_rc   rc;
    int          st;

    if (!token_shape_ok(tok))
        return flow_state_page(r, DB_NOT_FOUND, &f);
    if ((st = parse_form_or_page(r, &form)) != 0 ||
        (st = csrf_check_or_page(r, &form)) != 0)
        return st;
    act_for_token_owner(r);
    /* Read without a lock: the provider is called before any transaction
     * (COLLECTION.md §4); the flow is locked and checked again after. */
    if ((rc = flow_load(r, tok, 0, &f)) == DB_OK && (st = completed_flow_page(r, tok, &f, 1)) != 0)
        return st; /* a double click: the payment's page */
    if ((st = flow_state_page(r, rc, &f)) != 0)
        return st;
    if (provider_adapter(f.type) != provider_sandbox_adapter())
        return hosted_flow(r, tok, &f); /* bank details are entered there */

    const char *name = query_get(&form, "accountHolderName");
    const char *sort = digits_only(r, query_get(&form, "sortCode"), 6);
    const char *acct = digits_only(r, query_get(&form, "accountNumber"), 8);
    const char *error = NULL;
    if (name == NULL || *name == '\0' || !text_valid(name, strlen(name), 255))
        error = "Enter the name of the account holder.";
    else if (sort == NULL)
        error = "Enter a valid sort code: 6 digits, like 12-34-56.";
    else if (acct == NULL)
        error = "Enter a valid account number: 8 digits.";
    if (error != NULL)
        return mandate_form(r, tok, &f, 422, error,
                            name && text_valid(name, strlen(name), 255) ? name : NULL);

    /* Corrected details after a refusal are another call for the provider. */
    struct mandate_details d = {name, sort, acct, f.type,
                                provider_call_key(r, "mandate",
                                                  arena_printf(r->arena, "%s\n%s\n%s\n%s",
                                                               tok, name, sort, acct)),
                                NULL, NULL};
    struct provider_result res = {0};
    if (provider_adapter(f.type)->mandate_complete(r, &d, &res) != 0 || res.reference == NULL) {
        if (f.exit_url != NULL)
            return redirect(r, f.exit_url);
        return message_page(r, 502, "Direct Debit not set up",
                            "Your bank details could not be confirmed.");
    }
    return record_mandate(r, tok, &f, &res, name, sort, acct + 4);
}
