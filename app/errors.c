/*
 * The error catalogue's table and per-code counters. Rendering of error
 * bodies lives in resp.c (resp_error), the one place that writes them.
 */
#include "errors.h"

#include <stddef.h>

static const struct pay_error catalogue[] = {
#define PAY_ERR(id, status, code, msg) {status, code, msg},
#include "errors.def"
#undef PAY_ERR
};

#define PAY_ERR(id, status, code, msg)                                       \
    _Static_assert(status >= 400 && status <= 599, "bad status for " #id);
#include "errors.def"
#undef PAY_ERR

static unsigned long counters[PAY_E__COUNT];

const struct pay_error *
errors_get(enum pay_err e)
{
    if ((int)e < 0 || e >= PAY_E__COUNT)
        e = PAY_E_INTERNAL;
    return &catalogue[e];
}

void
errors_counted(enum pay_err e)
{
    if ((int)e >= 0 && e < PAY_E__COUNT)
        counters[e]++;
}

unsigned long
errors_count(enum pay_err e)
{
    return ((int)e >= 0 && e < PAY_E__COUNT) ? counters[e] : 0;
}

const char *
errors_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default:  return "Unknown";
    }
}
