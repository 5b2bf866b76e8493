/*
 * Unguessable tokens and digests: random bytes from the kernel CSPRNG
 * (getrandom) as base64url, and SHA-256 as lowercase hex. Everything
 * returned lives in the arena.
 */
#ifndef PAY_APP_TOKEN_H
#define PAY_APP_TOKEN_H

#include <stddef.h>

#include "arena.h"

/* nbytes random bytes as unpadded base64url (43 chars for 32 bytes).
 * Aborts if the kernel cannot supply randomness. */
char *token_random(struct arena *a, size_t nbytes);
/* SHA-256 of data[0..n) as 64 lowercase hex characters. */
char *token_sha256_hex(struct arena *a, const void *data, size_t n);
/* HMAC-SHA256 of data[0..n) with key as 64 lowercase hex characters. */
char *token_hmac_sha256_hex(struct arena *a, const void *key, size_t keylen,
                            const void *data, size_t n);
/* 1 if a and b are equal, in time independent of where they differ. */
int token_equal(const char *a, const char *b);

#endif
