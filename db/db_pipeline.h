/*
 * The pipeline hooks the database layer supplies to the router:
 * Idempotency-Key claim/replay before a handler, and commit/rollback plus
 * storing the idempotent response after it (in the same transaction as
 * the work, so a stored response exists exactly when the work committed).
 */
#ifndef PAY_DB_DB_PIPELINE_H
#define PAY_DB_DB_PIPELINE_H

#include "router.h"

extern const struct router_hooks db_pipeline_hooks;

#endif
