/*
 * Per-request arena (see arena.h). Chunks are a singly linked list; the
 * first one survives resets so a steady-state worker does no malloc for
 * ordinary requests. Allocations larger than a quarter of the chunk size
 * get their own malloc block, listed and freed at reset. With
 * PAY_ARENA_DEBUG every allocation is a separate malloc so ASan and
 * valgrind see overflows exactly.
 */
#include "arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 16
#define ALIGN_UP(n) (((n) + (ALIGN - 1)) & ~(size_t)(ALIGN - 1))

struct chunk {
    struct chunk *next;
    size_t        size; /* usable bytes after the header */
    size_t        used;
    _Alignas(16) unsigned char data[];
};

struct large {
    struct large *next;
    size_t        size;
    _Alignas(16) unsigned char data[];
};

struct defer {
    struct defer *next;
    void (*fn)(void *);
    void *arg;
};

struct arena {
    struct chunk *first;
    struct chunk *cur;
    struct large *large;
    struct defer *defers;
    size_t        chunk_size;
    size_t        footprint;
};

static void
oom(size_t n)
{
    fprintf(stderr, "pay-api[fatal] out of memory allocating %zu bytes\n", n);
    abort();
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n);
    if (p == NULL)
        oom(n);
    return p;
}

static struct chunk *
chunk_new(size_t size)
{
    struct chunk *c = xmalloc(sizeof(*c) + size);
    c->next = NULL;
    c->size = size;
    c->used = 0;
    return c;
}

struct arena *
arena_create(size_t first_chunk)
{
    struct arena *a = xmalloc(sizeof(*a));
    if (first_chunk < 1024)
        first_chunk = 1024;
    a->chunk_size = first_chunk;
    a->first = a->cur = chunk_new(first_chunk);
    a->large = NULL;
    a->defers = NULL;
    a->footprint = first_chunk;
    return a;
}

static void *
large_alloc(struct arena *a, size_t n)
{
    if (n > SIZE_MAX - sizeof(struct large))
        oom(n);
    struct large *l = xmalloc(sizeof(*l) + n);
    l->next = a->large;
    l->size = n;
    a->large = l;
    a->footprint += n;
    return l->data;
}

void *
arena_alloc(struct arena *a, size_t n)
{
    if (n == 0)
        n = 1;
#ifdef PAY_ARENA_DEBUG
    return large_alloc(a, n);
#else
    if (n > a->chunk_size / 4)
        return large_alloc(a, n);
    n = ALIGN_UP(n);
    if (a->cur->size - a->cur->used < n) {
        if (a->cur->next == NULL) {
            a->cur->next = chunk_new(a->chunk_size);
            a->footprint += a->chunk_size;
        }
        a->cur = a->cur->next;
    }
    void *p = a->cur->data + a->cur->used;
    a->cur->used += n;
    return p;
#endif
}

void *
arena_zalloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

void *
arena_alloc_array(struct arena *a, size_t size, size_t n)
{
    if (size != 0 && n > SIZE_MAX / size)
        oom(SIZE_MAX);
    return arena_alloc(a, size * n);
}

void *
arena_realloc(struct arena *a, void *p, size_t old, size_t n)
{
    if (n <= old && p != NULL)
        return p;
    void *q = arena_alloc(a, n);
    if (p != NULL && old > 0)
        memcpy(q, p, old);
    return q;
}

char *
arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

char *
arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *p = arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vprintf(a, fmt, ap);
    va_end(ap);
    return p;
}

void
arena_defer(struct arena *a, void (*fn)(void *), void *arg)
{
    struct defer *d = arena_alloc(a, sizeof(*d));
    d->fn = fn;
    d->arg = arg;
    d->next = a->defers;
    a->defers = d;
}

static void
run_defers(struct arena *a)
{
    /* A defer may register further defers; loop until none are left. */
    while (a->defers != NULL) {
        struct defer *d = a->defers;
        a->defers = d->next;
        d->fn(d->arg);
    }
}

void
arena_reset(struct arena *a)
{
    run_defers(a);
    while (a->large != NULL) {
        struct large *l = a->large;
        a->large = l->next;
        free(l);
    }
    struct chunk *c = a->first->next;
    while (c != NULL) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->cur = a->first;
    a->footprint = a->chunk_size;
}

void
arena_destroy(struct arena *a)
{
    if (a == NULL)
        return;
    arena_reset(a);
    free(a->first);
    free(a);
}

size_t
arena_footprint(const struct arena *a)
{
    return a->footprint;
}

void
abuf_init(struct abuf *b, struct arena *a)
{
    b->a = a;
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void
abuf_add(struct abuf *b, const void *data, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap - b->len < n + 1)
            cap *= 2;
        b->p = arena_realloc(b->a, b->p, b->len, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void
abuf_adds(struct abuf *b, const char *s)
{
    abuf_add(b, s, strlen(s));
}

void
abuf_printf(struct abuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = arena_vprintf(b->a, fmt, ap);
    va_end(ap);
    abuf_adds(b, s);
}

const char *
abuf_str(struct abuf *b)
{
    if (b->p == NULL)
        abuf_add(b, "", 0);
    return b->p;
}
