/*
 * POST /v1/payment-provider-payment-link (spec §4.11): a link a customer
 * follows to pay an invoice, an adhoc invoice or their account. The token
 * is 256 bits from the kernel CSPRNG; only its SHA-256 is stored, so the
 * database alone cannot be used to pay. Valid for 30 days, usable once.
 */
#include <inttypes.h>
#include <string.h>

#include "api.h"
#include "handlers.h"
#include "provider.h"
#include "text.h"
#include "token.h"


/* A plain sanity check of an e-mail address: local@domain.tld, printable,
 * no spaces; the provider is where it would really be verified. */
static int
email_valid(const char *s)
{
    const char *at = strchr(s, '@');
    size_t      n = strlen(s);
    if (n < 3 || n > 254 || at == NULL || at == s || strchr(at + 1, '@') ||
        strchr(at + 1, '.') == NULL || at[1] == '.' || s[n - 1] == '.')
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
            strchr("<>\"'(),;:\\[]", *s))
            return 0;
    return 1;
}

int
payment_links_create(struct req *r)
{
    static const char *const fields[] = {
        "paymentProviderId", "amountInMajorCurrency", "description", "emailAddress",
        "invoiceId", "adhocInvoiceId", "customerId", NULL};
    const char     *amount_text, *description, *email;
    int64_t         provider_id, target[3] = {0, 0, 0}, amount;
    int             has[3], st;
    struct customer c;
    struct invoice  inv;
    enum db_rc      rc;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "paymentProviderId", 1, &provider_id, NULL)) != 0 ||
        (st = body_number_or_fail(r, "amountInMajorCurrency", &amount_text)) != 0 ||
        (st = body_str_or_fail(r, "description", 1, 255, &description)) != 0 ||
        (st = body_str_or_fail(r, "emailAddress", 0, 254, &email)) != 0 ||
        (st = body_id_or_fail(r, "invoiceId", 0, &target[0], &has[0])) != 0 ||
        (st = body_id_or_fail(r, "adhocInvoiceId", 0, &target[1], &has[1])) != 0 ||
        (st = body_id_or_fail(r, "customerId", 0, &target[2], &has[2])) != 0)
        return st;
    if (has[0] + has[1] + has[2] != 1)
        return req_failf(r, PAY_E_INVALID_FIELD, NULL,
                         "give exactly one of invoiceId, adhocInvoiceId and customerId");
    if (email != NULL && !email_valid(email))
        return req_failf(r, PAY_E_INVALID_FIELD, "emailAddress",
                         "emailAddress is not a valid e-mail address");

    int kind = has[0] ? INVOICE_NORMAL : has[1] ? INVOICE_ADHOC : 0;
    const char *target_field = has[0] ? "invoiceId" : has[1] ? "adhocInvoiceId" : "customerId";
    if ((rc = db_tx_begin(&r->db)) != DB_OK)
        return db_fail(r, rc);
    rc = kind ? invoice_lock_visible(r, kind, target[kind - 1], &c, &inv)
              : customer_load_visible(r, target[2], 0, &c);
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, target_field, "unknown %s",
                         target_field);
    if (rc != DB_OK)
        return db_fail(r, rc);

    struct dbq *q = dbq_new(&r->db,
        "SELECT p.type FROM payment_providers p JOIN payment_provider_owners o"
        " ON o.provider_id = p.id WHERE p.id = ? AND o.contract_owner_id = ?"
        " AND p.status = 'ACTIVE'");
    dbq_i64(q, provider_id);
    dbq_i64(q, c.owner);
    rc = dbq_one(q);
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_INVALID_FIELD, "paymentProviderId",
                         "paymentProviderId must be an ACTIVE provider of the"
                         " target's contract owner");
    if (rc != DB_OK)
        return db_fail(r, rc);
    /* The page collects the money through the provider: a manual method
     * (CHEQUE, BACS…) cannot, and its payments are only MANUALLY_PAID. */
    if (!payment_method_integrated(dbq_col_str(q, 0)))
        return req_failf(r, PAY_E_INVALID_FIELD, "paymentProviderId",
                         "paymentProviderId must be a provider that collects"
                         " payments (GO_CARDLESS, STRIPE, FINASTRA…), not %s",
                         dbq_col_str(q, 0));
    if ((st = body_money_or_fail(r, "amountInMajorCurrency", amount_text, c.digits, 1,
                                 100000 * minor_per_major(c.digits), 0, &amount)) != 0)
        return st;

    const char *tok = token_random(r->arena, 32);
    q = dbq_new(&r->db,
        "INSERT INTO payment_links (token_hash, provider_id, contract_owner_id,"
        " customer_id, invoice_kind, invoice_id, target_customer, amount, currency_id,"
        " description, email_address, expires_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?, UTC_TIMESTAMP() + INTERVAL 30 DAY)");
    dbq_str(q, token_sha256_hex(r->arena, tok, strlen(tok)));
    dbq_i64(q, provider_id);
    dbq_i64(q, c.owner);
    dbq_i64(q, c.id);
    if (kind) {
        dbq_i64(q, kind);
        dbq_i64(q, inv.id);
    } else {
        dbq_null(q);
        dbq_null(q);
    }
    dbq_i64(q, kind == 0);
    dbq_i64(q, amount);
    dbq_i64(q, c.currency_id);
    dbq_str(q, description);
    dbq_str(q, email);
    if ((rc = dbq_exec(q)) != DB_OK)
        return db_fail(r, rc);
    int64_t id = dbq_insert_id(q);

    /* The created resource is the link itself: Location is its URL. */
    const char *link = arena_printf(r->arena, "%s/pay/%s", provider_public_base_url(), tok);
    resp_header(r, "Location", link);
    struct json_gen *g = resp_json(r, 201);
    json_map_open(g);
    json_key(g, "id");
    json_i64(g, id);
    json_key(g, "paymentProviderId");
    json_i64(g, provider_id);
    json_key(g, "amountInMajorCurrency");
    json_money(g, amount, c.digits);
    json_key(g, "currencyId");
    json_i64(g, c.currency_id);
    json_key(g, "description");
    json_str(g, description);
    json_key(g, "emailAddress");
    json_str(g, email);
    static const char *const names[] = {"invoiceId", "adhocInvoiceId", "customerId"};
    for (int i = 0; i < 3; i++) {
        json_key(g, names[i]);
        if (has[i])
            json_i64(g, target[i]);
        else
            json_null(g);
    }
    json_key(g, "paymentLink");
    json_str(g, link);
    json_map_close(g);
    return 201;
}
