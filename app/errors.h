/*
 * Error catalogue (errors.def) as an enum plus lookups. Only errors.c
 * renders error JSON.
 */
#ifndef PAY_APP_ERRORS_H
#define PAY_APP_ERRORS_H

enum pay_err {
#define PAY_ERR(id, status, code, msg) id,
#include "errors.def"
#undef PAY_ERR
    PAY_E__COUNT
};

struct pay_error {
    int         status;
    const char *code;
    const char *message;
};

/* The catalogue row of e (process-lifetime, never NULL). */
const struct pay_error *errors_get(enum pay_err e);
/* The HTTP reason phrase of a status code ("Bad Request"). */
const char *errors_reason(int status);
/* Per-code counters since start (for /metrics). */
unsigned long errors_count(enum pay_err e);
void errors_counted(enum pay_err e);

#endif
