/*
 * Typed readers of the request's JSON body (r->json), for handlers: each
 * *_or_fail records a catalogue error naming the field and returns its
 * HTTP status, or 0. null means absent everywhere.
 */
#ifndef PAY_APP_BODY_H
#define PAY_APP_BODY_H

#include <stddef.h>
#include <stdint.h>

#include "req.h"

/* The body must be a JSON object whose keys are all in allowed[], except
 * keys whose value is null (null means absent). */
int body_object_or_fail(struct req *r, const char *const *allowed);
/* Positive integer id field. *present (may be NULL) tells if it was there. */
int body_id_or_fail(struct req *r, const char *name, int required, int64_t *out,
                    int *present);
/* String field: valid UTF-8, no control characters, <= max_chars; ""
 * is a value (required means present, not non-empty). */
int body_str_or_fail(struct req *r, const char *name, int required,
                     size_t max_chars, const char **out);
/* String field that must be one of vals[]. */
int body_enum_or_fail(struct req *r, const char *name, int required,
                      const char *const *vals, const char **out);
/* Raw number text of a required money field (checked later, once the
 * currency's digits are known, by body_money_or_fail). */
int body_number_or_fail(struct req *r, const char *name, const char **text);
/* Money: `text` from body_number_or_fail, parsed with the currency's digits
 * and checked against [lo, hi] minor units (and != 0 unless allow_zero). */
int body_money_or_fail(struct req *r, const char *name, const char *text,
                       int digits, int64_t lo, int64_t hi, int allow_zero,
                       int64_t *out);
/* Minor units as major-unit text with the currency's decimals ("10.50"),
 * in the request's arena, for messages. */
const char *money_text(struct req *r, int64_t minor, int digits);

#endif
