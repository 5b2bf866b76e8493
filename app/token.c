/*
 * Tokens for capabilities (payment links, mandate flows, CSRF) and request
 * digests (idempotency). Randomness comes only from getrandom(2).
 */
#include "token.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "log.h"

char *
token_random(struct arena *a, size_t nbytes)
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *raw = arena_alloc(a, nbytes);
    size_t         got = 0;
    while (got < nbytes) {
        ssize_t k = getrandom(raw + got, nbytes - got, 0);
        if (k <= 0) {
            log_error("token", "getrandom failed");
            abort();
        }
        got += (size_t)k;
    }
    char  *out = arena_alloc(a, (nbytes * 4 + 2) / 3 + 1);
    size_t o = 0;
    for (size_t i = 0; i < nbytes; i += 3) {
        unsigned v = (unsigned)raw[i] << 16;
        if (i + 1 < nbytes)
            v |= (unsigned)raw[i + 1] << 8;
        if (i + 2 < nbytes)
            v |= raw[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        if (i + 1 < nbytes)
            out[o++] = b64[(v >> 6) & 63];
        if (i + 2 < nbytes)
            out[o++] = b64[v & 63];
    }
    out[o] = '\0';
    return out;
}

char *
token_sha256_hex(struct arena *a, const void *data, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  len = 0;
    EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
    char *hex = arena_alloc(a, 2 * len + 1);
    for (unsigned i = 0; i < len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}

int
token_equal(const char *a, const char *b)
{
    size_t        na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < na && i < nb; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

char *
token_hmac_sha256_hex(struct arena *a, const void *key, size_t keylen, const void *data,
                      size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int  mdlen = 0;
    if (HMAC(EVP_sha256(), key, (int)keylen, data, n, md, &mdlen) == NULL)
        fatal("HMAC-SHA256 failed");
    char *hex = arena_alloc(a, 2 * mdlen + 1);
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return hex;
}
