/* Provider helpers shared by the handlers (see provider.h). */
#include "provider.h"

#include <string.h>

#include "token.h"

const char *
provider_call_key(struct req *r, const char *what, const char *capability)
{
    const char *basis = capability;
    if (basis == NULL && r->idempotency_key != NULL) /* the body too: a key the
        client reuses for another request after a 5xx is another operation */
        basis = arena_printf(r->arena, "%s\n%s\n%s",
                             r->principal.sub ? r->principal.sub : "", r->idempotency_key,
                             token_sha256_hex(r->arena, r->body ? r->body : "",
                                              r->body_len));
    if (basis == NULL) {
        if (r->call_key == NULL)
            r->call_key = token_random(r->arena, 24);
        basis = r->call_key;
    }
    return arena_printf(r->arena, "pay-api-%s-%s", what,
                        token_sha256_hex(r->arena, basis, strlen(basis)));
}

enum db_rc
provider_find(struct req *r, int64_t owner, const char *type, int64_t *id)
{
    struct dbq *q = dbq_new(&r->db,
        "SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
        " ON o.provider_id = p.id WHERE o.contract_owner_id = ? AND p.type = ?"
        " AND p.status = 'ACTIVE' ORDER BY p.id LIMIT 1");
    dbq_i64(q, owner);
    dbq_str(q, type);
    enum db_rc rc = dbq_one(q);
    *id = rc == DB_OK ? dbq_col_i64(q, 0) : 0;
    return rc;
}

