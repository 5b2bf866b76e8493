/*
 * Mandates (spec §4.2–§4.4):
 *   /v1/site-payment-mandates          start a mandate set-up flow for a site,
 *                                      or attach a mandate the provider holds
 *   /v1/payment-provider-mandates/…    a mandate as its provider holds it
 *   /v1/instant-bank-payment-for-mandate  instant payments taken on one
 * The flow itself completes on the provider's hosted page (pages.c for the
 * sandbox), which stores the provider mandate and the site's reference.
 */
#include <inttypes.h>
#include <string.h>

#include "api.h"
#include "collection.h"
#include "handlers.h"
#include "list.h"
#include "provider.h"
#include "text.h"
#include "token.h"

/*   field                           SQL                                   type    */
static const struct col mandate_cols[] = {
    {"id",                           "m.id",                               COL_ID},
    {"siteId",                       "m.site_id",                          COL_ID},
    {"returnURL",                    "m.return_url",                       COL_STR},
    {"redirectURL",                  "m.redirect_url",                     COL_STR},
    {"exitURL",                      "m.exit_url",                         COL_STR},
    {"flowToken",                    "m.flow_token",                       COL_STR},
    {"mandateReference",             "m.mandate_reference",                COL_STR},
    {"thirdPartyCustomerReference",  "m.third_party_customer_reference",   COL_STR},
};

/* The tenant on the row (schema 011): a tenant's mandates are one range of
 * mandate_owner in id order, counted from that index alone. */
static const struct resource mandates = {
    "FROM site_payment_mandates m",
    "m.contract_owner_id", NULL, "m.id",
    mandate_cols, sizeof(mandate_cols) / sizeof(mandate_cols[0]),
    NULL, NULL, NULL, "site_payment_mandates", "contract_owner_id", /* mandate_owner */
};

int
site_payment_mandates_list(struct req *r)
{
    static const char *const site[] = {"m.site_id", NULL};
    struct list l;
    int         rc;
    if ((rc = list_begin_or_fail(r, &mandates, &l)) != 0 ||
        (rc = list_filter_or_fail(&l, "siteId", FK_ID, site)) != 0)
        return rc;
    return list_run(&l);
}

int
site_payment_mandates_get(struct req *r)
{
    return resource_get_param(r, &mandates, "site_payment_mandate_id");
}

static int
url_or_fail(struct req *r, const char *name, int required, const char **out)
{
    int st = body_str_or_fail(r, name, required, 255, out);
    if (st == 0 && required && **out == '\0') /* no URL is empty */
        st = req_failf(r, PAY_E_MISSING_FIELD, name, "%s is required", name);
    else if (st == 0 && *out != NULL && !text_url_valid(*out, strlen(*out)))
        st = req_failf(r, PAY_E_INVALID_FIELD, name,
                       "%s must be an absolute http:// or https:// URL", name);
    return st;
}

/* Mandate references are provider identifiers: printable ASCII. */
static int
reference_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Mandate statuses a mandate can be attached in (the public reference's
 * GoCardless rule, applied to every provider). */
static const char *const ATTACHABLE[] = {
    "CREATED", "PENDING_SUBMISSION", "SUBMITTED", "ACTIVE", "REINSTATED",
    "CUSTOMER_APPROVAL_GRANTED", "CUSTOMER_APPROVAL_SKIPPED", NULL};

/*
 * With a mandateReference in the body, the mandate already exists at a
 * provider: one that an integrated provider still serving the site's
 * contract owner holds (provider_mandates). A reference held under several
 * payment methods is told apart by its thirdPartyCustomerReference. The
 * mandate must be in an attachable status, come with its Stripe customer id
 * when it is a Stripe mandate, and not be attached to a site of another
 * customer already (it debits one bank account). Its row stays locked until
 * the end of the transaction, so two attaches of one mandate are serialised.
 * Sets the mandate's provider, type and customer reference. 0, or the
 * failure status.
 */
static int
attachable_or_fail(struct req *r, const struct customer *c, const char *ref,
                   const char *given_tpcr, int64_t *provider_id, const char **type,
                   const char **tpcr)
{
    if (!reference_ok(ref))
        return req_failf(r, PAY_E_INVALID_FIELD, "mandateReference",
                         "mandateReference must be 1..64 printable ASCII characters");
    struct dbq *q = dbq_new(&r->db,
        "SELECT m.payment_method, m.provider_id, m.status, m.third_party_customer_reference"
        " FROM provider_mandates m JOIN payment_provider_owners o"
        " ON o.provider_id = m.provider_id AND o.contract_owner_id = m.contract_owner_id"
        " WHERE m.payment_method IN " INTEGRATED_METHODS_SQL " AND m.mandate_reference = ?"
        " AND m.contract_owner_id = ? ORDER BY m.payment_method FOR UPDATE");
    dbq_str(q, ref);
    dbq_i64(q, c->owner);
    enum db_rc  rc = dbq_exec(q);
    int         held = 0, matching = 0;
    const char *status = NULL;
    while (rc == DB_OK && (rc = dbq_fetch(q)) == DB_OK) {
        const char *t = dbq_col_str(q, 3);
        held++;
        if (given_tpcr != NULL && (t == NULL || strcmp(t, given_tpcr) != 0))
            continue;
        matching++;
        *type = arena_strdup(r->arena, dbq_col_str(q, 0));
        *provider_id = dbq_col_i64(q, 1);
        status = arena_strdup(r->arena, dbq_col_str(q, 2));
        *tpcr = t ? arena_strdup(r->arena, t) : NULL;
    }
    if (rc != DB_NOT_FOUND)
        return db_fail(r, rc);
    if (held == 0)
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, "mandateReference",
                         "no payment provider of this site's contract owner holds a"
                         " mandate with this reference");
    if (matching == 0)
        return req_failf(r, PAY_E_INVALID_FIELD, "thirdPartyCustomerReference",
                         "thirdPartyCustomerReference is not the mandate's customer");
    if (matching > 1)
        return req_failf(r, PAY_E_CONFLICT, "mandateReference",
                         "mandates of %d payment methods have this reference; send"
                         " the thirdPartyCustomerReference of the one meant", matching);
    if (given_tpcr == NULL && payment_method_stripe(*type))
        return req_failf(r, PAY_E_MISSING_FIELD, "thirdPartyCustomerReference",
                         "thirdPartyCustomerReference (the Stripe customer id) is"
                         " required for %s mandates", *type);
    if (enum_index(ATTACHABLE, status) < 0)
        return req_failf(r, PAY_E_CONFLICT, "mandateReference",
                         "the mandate is %s; only a CREATED, PENDING_SUBMISSION,"
                         " SUBMITTED, ACTIVE, REINSTATED, CUSTOMER_APPROVAL_GRANTED or"
                         " CUSTOMER_APPROVAL_SKIPPED mandate can be used", status);
    q = dbq_new(&r->db,
        "SELECT COUNT(*) FROM site_payment_mandates spm JOIN sites s ON s.id = spm.site_id"
        " JOIN payment_providers p ON p.id = spm.provider_id"
        " WHERE spm.mandate_reference = ? AND p.type = ? AND s.customer_id <> ?");
    dbq_str(q, ref);
    dbq_str(q, *type);
    dbq_i64(q, c->id);
    if ((rc = dbq_one(q)) != DB_OK)
        return db_fail(r, rc);
    if (dbq_col_i64(q, 0) > 0)
        return req_failf(r, PAY_E_CONFLICT, "mandateReference",
                         "the mandate is attached to a site of another customer");
    return 0;
}

int
site_payment_mandates_create(struct req *r)
{
    static const char *const fields[] = {"siteId", "returnURL", "redirectURL",
                                         "exitURL", "mandateReference",
                                         "thirdPartyCustomerReference", NULL};
    const char     *return_url, *redirect_url, *exit_url, *ref, *tpcr;
    int64_t         site_id;
    struct customer c;
    enum db_rc      rc;
    int             st;

    if ((st = body_object_or_fail(r, fields)) != 0 ||
        (st = body_id_or_fail(r, "siteId", 1, &site_id, NULL)) != 0 ||
        (st = url_or_fail(r, "returnURL", 1, &return_url)) != 0 ||
        (st = url_or_fail(r, "redirectURL", 0, &redirect_url)) != 0 ||
        (st = url_or_fail(r, "exitURL", 0, &exit_url)) != 0 ||
        (st = body_str_or_fail(r, "mandateReference", 0, 64, &ref)) != 0 ||
        (st = body_str_or_fail(r, "thirdPartyCustomerReference", 0, 100, &tpcr)) != 0)
        return st;
    if (tpcr != NULL && *tpcr == '\0')
        tpcr = NULL;
    if (tpcr != NULL && ref == NULL)
        return req_failf(r, PAY_E_INVALID_FIELD, "thirdPartyCustomerReference",
                         "thirdPartyCustomerReference is only accepted with a"
                         " mandateReference");
    /* Attaching locks and writes in one transaction; a flow asks the
     * provider for its hosted page first, outside any transaction
     * (COLLECTION.md §4), and opens it only to write the flow. */
    if (ref != NULL && (rc = db_tx_begin(&r->db)) != DB_OK)
        return db_fail(r, rc);
    struct dbq *q = dbq_new(&r->db, "SELECT customer_id FROM sites WHERE id = ?");
    dbq_i64(q, site_id);
    rc = dbq_one(q);
    if (rc == DB_OK)
        rc = customer_load_visible(r, dbq_col_i64(q, 0), 0, &c);
    if (rc == DB_NOT_FOUND)
        return req_failf(r, PAY_E_UNKNOWN_REFERENCE, "siteId", "unknown siteId");
    if (rc != DB_OK)
        return db_fail(r, rc);

    /* A mandate that exists already is attached at once: no flow to go
     * through (redirectURL null, the flow token already used), and the
     * site's payment method becomes the mandate's, as a completed flow
     * would make it. */
    int64_t     provider_id = 0;
    const char *type = NULL, *tok = token_random(r->arena, 32), *hosted = NULL;
    if (ref != NULL) {
        if ((st = attachable_or_fail(r, &c, ref, tpcr, &provider_id, &type, &tpcr)) != 0)
            return st;
        if ((rc = mandate_site_method(r, site_id, type)) != DB_OK)
            return db_fail(r, rc);
    } else {
        /* The provider collecting Direct Debits for the contract owner: an
         * integrated provider serving it, ACTIVE ones first. An INACTIVE one
         * still gets a flow: its page sends the customer to exitURL. */
        q = dbq_new(&r->db,
            "SELECT p.id, p.type FROM payment_providers p JOIN payment_provider_owners o"
            " ON o.provider_id = p.id WHERE o.contract_owner_id = ? AND p.type IN "
            INTEGRATED_METHODS_SQL " ORDER BY p.status = 'ACTIVE' DESC, p.id LIMIT 1");
        dbq_i64(q, c.owner);
        rc = dbq_one(q);
        if (rc == DB_NOT_FOUND)
            return req_failf(r, PAY_E_CONFLICT, "siteId",
                             "no payment provider collects Direct Debits for this"
                             " site's contract owner");
        if (rc != DB_OK)
            return db_fail(r, rc);
        provider_id = dbq_col_i64(q, 0);
        type = dbq_col_str(q, 1);
        hosted = provider_adapter(type)->mandate_flow_start(r, tok);
        if (hosted == NULL)
            return req_failf(r, PAY_E_UNAVAILABLE, NULL, "the payment provider cannot start"
                             " a mandate set-up at the moment; try again later");
        if ((rc = db_tx_begin(&r->db)) != DB_OK)
            return db_fail(r, rc);
    }
    q = dbq_new(&r->db,
        "INSERT INTO site_payment_mandates (site_id, contract_owner_id, provider_id,"
        " return_url, redirect_url, exit_url, flow_token, flow_expires_at,"
        " flow_completed_at, mandate_reference, third_party_customer_reference)"
        " VALUES (?, (SELECT c.contract_owner_id FROM sites s JOIN customers c"
        " ON c.id = s.customer_id WHERE s.id = ?), ?,?,?,?,?,"
        " UTC_TIMESTAMP() + INTERVAL 1 HOUR, IF(? IS NULL, NULL, UTC_TIMESTAMP()), ?, ?)");
    dbq_i64(q, site_id);
    dbq_i64(q, site_id);
    dbq_i64(q, provider_id);
    dbq_str(q, return_url);
    dbq_str(q, hosted);
    dbq_str(q, exit_url);
    dbq_str(q, tok);
    dbq_str(q, ref);
    dbq_str(q, ref);
    dbq_str(q, tpcr);
    if ((rc = dbq_exec(q)) != DB_OK)
        return db_fail(r, rc);
    int64_t id = dbq_insert_id(q);
    resp_header(r, "Location", arena_printf(r->arena, "/v1/site-payment-mandates/%" PRId64, id));
    st = resource_get(r, &mandates, id);
    return st == 200 ? 201 : st;
}

int
provider_mandates_get(struct req *r)
{
    const char *method = req_param(r, 0), *ref = req_param(r, 1);
    const char *tpcr = req_query(r, "thirdPartyCustomerReference");
    int64_t     owner = 0;
    int         has_owner, st;

    if (enum_index(PAYMENT_METHODS, method) < 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, "paymentMethod",
                         "paymentMethod is not a PaymentMethod");
    if (!reference_ok(ref))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "mandateReference",
                         "mandateReference must be 1..64 printable ASCII characters");
    if ((st = req_query_id_or_fail(r, "contractOwnerId", 0, &owner, &has_owner)) != 0)
        return st;
    if (tpcr != NULL && *tpcr == '\0')
        tpcr = NULL; /* empty = absent */
    if (tpcr != NULL && !text_valid(tpcr, strlen(tpcr), 100))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "thirdPartyCustomerReference",
                         "thirdPartyCustomerReference must be at most 100 characters");
    if (tpcr == NULL && payment_method_stripe(method))
        return req_failf(r, PAY_E_MISSING_PARAMETER, "thirdPartyCustomerReference",
                         "thirdPartyCustomerReference is required for %s mandates",
                         method);
    /* Only a Stripe mandate is told apart by its customer id; for the
     * other methods the optional value never hides a mandate. */
    if (!payment_method_stripe(method))
        tpcr = NULL;
    if ((st = req_query_all_known_or_fail(r)) != 0)
        return st;

    struct dbq *q = dbq_new(&r->db,
        "SELECT mandate_reference, third_party_customer_reference,"
        " DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ'), email_address, first_name,"
        " last_name, company_name, address_line1, address_line2, address_line3, city,"
        " region, postcode, country_code, telephone_number, status, contract_owner_id"
        " FROM provider_mandates WHERE payment_method = ? AND mandate_reference = ?"
        " AND (? = 0 OR contract_owner_id = ?)"
        " AND (? IS NULL OR third_party_customer_reference = ?)");
    dbq_str(q, method);
    dbq_str(q, ref);
    dbq_i64(q, owner);
    dbq_i64(q, owner);
    dbq_str(q, tpcr);
    dbq_str(q, tpcr);
    enum db_rc rc = dbq_one(q);
    if (rc == DB_OK && !auth_owner_allowed(&r->principal, dbq_col_i64(q, 16)))
        rc = DB_NOT_FOUND;
    if (rc != DB_OK)
        return db_fail(r, rc);
    static const char *const names[] = {
        "mandateReference", "thirdPartyCustomerReference", "createdAt", "emailAddress",
        "firstName", "lastName", "companyName", "addressLine1", "addressLine2",
        "addressLine3", "city", "region", "postcode", "countryCode",
        "telephoneNumber", "status"};
    struct json_gen *g = resp_json(r, 200);
    json_map_open(g);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        json_key(g, names[i]);
        json_str(g, dbq_col_str(q, i));
    }
    json_map_close(g);
    return 200;
}

int
instant_bank_payments_list(struct req *r)
{
    const char *ref = req_query(r, "mandateReference");
    const char *method = req_query(r, "paymentMethod");
    int         st;
    if (ref == NULL)
        return req_failf(r, PAY_E_MISSING_PARAMETER, "mandateReference",
                         "mandateReference is required");
    if (method == NULL)
        return req_failf(r, PAY_E_MISSING_PARAMETER, "paymentMethod",
                         "paymentMethod is required");
    if (enum_index(PAYMENT_METHODS, method) < 0)
        return req_failf(r, PAY_E_INVALID_PARAMETER, "paymentMethod",
                         "paymentMethod is not a PaymentMethod");
    if (!reference_ok(ref))
        return req_failf(r, PAY_E_INVALID_PARAMETER, "mandateReference",
                         "mandateReference must be 1..64 printable ASCII characters");
    if ((st = req_query_all_known_or_fail(r)) != 0)
        return st;

    struct dbq *q = dbq_new(&r->db,
        "SELECT m.contract_owner_id FROM provider_mandates m"
        " WHERE m.payment_method = ? AND m.mandate_reference = ?");
    dbq_str(q, method);
    dbq_str(q, ref);
    enum db_rc rc = dbq_one(q);
    if (rc != DB_OK && rc != DB_NOT_FOUND)
        return db_fail(r, rc);
    /* The contract is "200 array": an unknown mandate, or another
     * tenant's, has no instant payments the caller may see. */
    int visible = rc == DB_OK && auth_owner_allowed(&r->principal, dbq_col_i64(q, 0));
    rc = DB_NOT_FOUND;
    if (visible) {
        q = dbq_new(&r->db,
            "SELECT b.mandate_reference, b.amount, cur.minor_digits, b.description,"
            " b.payment_method, b.reference,"
            " DATE_FORMAT(b.creation_date, '%Y-%m-%dT%H:%i:%sZ')"
            " FROM instant_bank_payments b JOIN currencies cur ON cur.id = b.currency_id"
            " WHERE b.payment_method = ? AND b.mandate_reference = ? ORDER BY b.id LIMIT 1000");
        dbq_str(q, method);
        dbq_str(q, ref);
        if ((rc = dbq_exec(q)) != DB_OK)
            return db_fail(r, rc);
    }
    struct json_gen *g = resp_json_stream(r, 200);
    json_array_open(g);
    while (visible && (rc = dbq_fetch(q)) == DB_OK) {
        json_map_open(g);
        json_key(g, "mandateReference");
        json_str(g, dbq_col_str(q, 0));
        json_key(g, "amountInMajorCurrency");
        json_money(g, dbq_col_i64(q, 1), (int)dbq_col_i64(q, 2));
        json_key(g, "description");
        json_str(g, dbq_col_str(q, 3));
        json_key(g, "paymentMethod");
        json_str(g, dbq_col_str(q, 4));
        json_key(g, "reference");
        json_str(g, dbq_col_str(q, 5));
        json_key(g, "creationDate");
        json_str(g, dbq_col_str(q, 6));
        json_map_close(g);
    }
    json_array_close(g);
    return rc == DB_NOT_FOUND ? 200 : req_fail(r, PAY_E_UNAVAILABLE, NULL);
}

enum db_rc
mandate_site_method(struct req *r, int64_t site_id, const char *method)
{
    struct dbq *q = dbq_new(&r->db, "UPDATE sites SET payment_method = ? WHERE id = ?");
    dbq_str(q, method);
    dbq_i64(q, site_id);
    return dbq_exec(q);
}

enum db_rc
mandate_instant_payment(struct req *r, int64_t customer_id, const char *method,
                        const char *mandate_reference, const char *idempotency_key)
{
    struct customer c;
    enum db_rc      rc = customer_load_visible(r, customer_id, 1, &c);
    if (rc != DB_OK)
        return rc;
    if (c.balance >= 0)
        return DB_OK; /* nothing owed */
    /* An account-level attempt for the collection engine (no provider is
     * called here): what it collects pays the oldest open invoices, normal
     * and adhoc alike (COLLECTION.md §2-§3). The instant bank payment is
     * listed at once; its reference is the provider's, once submitted. */
    struct attempt a = {
        .kind = ATTEMPT_COLLECTION, .customer_id = c.id, .method = method,
        .mandate_reference = mandate_reference, .amount = -c.balance,
        .currency_id = c.currency_id,
        .description = "Instant bank payment on mandate creation",
        .idem_key = idempotency_key, .due = 1,
    };
    if ((rc = provider_find(r, c.owner, method, &a.provider_id)) != DB_OK &&
        rc != DB_NOT_FOUND)
        return rc;
    struct attempt_outcome out;
    if ((rc = attempt_advance(&r->db, &c, &a, "NEW", NULL, &out)) != DB_OK)
        return rc;
    struct dbq *q = dbq_new(&r->db,
        "INSERT INTO instant_bank_payments (payment_method, mandate_reference, amount,"
        " currency_id, description, reference, creation_date, attempt_id)"
        " VALUES (?,?,?,?,?,NULL,UTC_TIMESTAMP(),?)");
    dbq_str(q, method);
    dbq_str(q, mandate_reference);
    dbq_i64(q, a.amount);
    dbq_i64(q, c.currency_id);
    dbq_str(q, "Instant bank payment on mandate creation");
    dbq_i64(q, a.id);
    return dbq_exec(q);
}
