/*
 * The HTTP policy around every handler, as router hooks: Idempotency-Key
 * claim/replay before it, a re-run after a transaction conflict while the
 * database's retry budget lasts, and commit/rollback plus storing the
 * idempotent response after it (in the same transaction as the work, so a
 * stored response exists exactly when the work committed).
 */
#ifndef PAY_HANDLERS_PIPELINE_H
#define PAY_HANDLERS_PIPELINE_H

#include "router.h"

extern const struct router_hooks pipeline_hooks;

#endif
