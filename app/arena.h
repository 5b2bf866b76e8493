/*
 * Per-request arena: bump allocation in chunks, a defer list run
 * newest-first at reset, and large blocks on their own malloc.
 * One arena per worker; arena_reset() is called in exactly one place, at
 * the end of each request. Nothing allocated here may be referenced from
 * process-lifetime state. Allocation never returns NULL: on OOM the
 * process logs and aborts (the master respawns the worker).
 */
#ifndef PAY_APP_ARENA_H
#define PAY_APP_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/* Creates an arena whose first chunk (kept across resets) has this size. */
struct arena *arena_create(size_t first_chunk);
/* Frees everything, running pending defers first. */
void arena_destroy(struct arena *a);

/* 16-byte aligned; never NULL. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_zalloc(struct arena *a, size_t n);
/* n * size with an overflow check (aborts on overflow). */
void *arena_alloc_array(struct arena *a, size_t size, size_t n);
/* Grows a block obtained from arena_alloc (copying); old contents kept. */
void *arena_realloc(struct arena *a, void *p, size_t old, size_t n);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* Registers fn(arg) to run at the next reset, newest first. */
void arena_defer(struct arena *a, void (*fn)(void *), void *arg);
/* Runs defers, frees extra chunks and large blocks, keeps the first chunk. */
void arena_reset(struct arena *a);
/* Bytes currently held from malloc (chunks + large blocks), for tests. */
size_t arena_footprint(const struct arena *a);

#define ARENA_NEW(a, T, n) ((T *)arena_alloc_array((a), sizeof(T), (n)))

/* A growable byte buffer living in an arena. */
struct abuf {
    struct arena *a;
    char         *p;
    size_t        len;
    size_t        cap;
};
void abuf_init(struct abuf *b, struct arena *a);
void abuf_add(struct abuf *b, const void *data, size_t n);
void abuf_adds(struct abuf *b, const char *s);
void abuf_printf(struct abuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* NUL-terminated view of the contents (the NUL is not counted in len). */
const char *abuf_str(struct abuf *b);

#endif
