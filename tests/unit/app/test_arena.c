/*
 * Unit tests for app/arena.c: 16-byte alignment, zeroing, large blocks and
 * many small ones, realloc/strndup/printf, defers (newest first, exactly
 * once, including ones registered by a defer), the footprint returning to
 * the first chunk at reset, the abuf byte buffer, and a 100,000-cycle
 * reset loop whose footprint must stay constant.
 * (arena_alloc_array's overflow check aborts by design and is not tested.)
 */
#include "test.h"

#include "arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096

static int
aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

/* ---- alignment ---- */

static void
test_alignment(void)
{
    struct arena *a = arena_create(CHUNK);
    /* Odd sizes back to back: every block must still start aligned. */
    static const size_t sizes[] = {0, 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 100,
                                   255, 1000, 1023, 1024, 1025, 3000, 5000,
                                   CHUNK, CHUNK + 1, 100000};
    int bad = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
            void *p = arena_alloc(a, sizes[i]);
            if (p == NULL || !aligned16(p)) {
                bad++;
                printf("  size %zu -> %p\n", sizes[i], p);
            }
        }
    }
    CHECK(bad == 0, "arena_alloc returns 16-byte aligned blocks for all sizes");

    bad = 0;
    for (size_t n = 1; n <= 200; n++) {
        if (!aligned16(arena_zalloc(a, n)))
            bad++;
        if (!aligned16(arena_strndup(a, "abcdef", n % 6)))
            bad++;
        if (!aligned16(arena_printf(a, "%zu", n)))
            bad++;
    }
    CHECK(bad == 0, "zalloc, strndup and printf results are 16-byte aligned");

    /* Element types with 16-byte alignment needs work through ARENA_NEW. */
    long double *ld = ARENA_NEW(a, long double, 3);
    ld[0] = 1.5L;
    ld[2] = 2.5L;
    CHECK(aligned16(ld) && ld[0] == 1.5L && ld[2] == 2.5L,
          "ARENA_NEW(long double, 3) is aligned and usable");
    arena_destroy(a);
}

/* ---- zalloc ---- */

static void
test_zalloc(void)
{
    struct arena *a = arena_create(CHUNK);
    /* Dirty the chunk, reset, then zalloc the same area again. */
    for (int i = 0; i < 8; i++)
        memset(arena_alloc(a, 500), 0xAB, 500);
    memset(arena_alloc(a, 3000), 0xCD, 3000); /* a large block */
    arena_reset(a);

    static const size_t sizes[] = {1, 15, 16, 17, 500, 1000, 3000, 20000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        unsigned char *p = arena_zalloc(a, sizes[i]);
        size_t         nz = 0;
        for (size_t k = 0; k < sizes[i]; k++)
            nz += p[k] != 0;
        CHECK(nz == 0, "arena_zalloc(%zu) returns all-zero bytes (%zu non-zero)",
              sizes[i], nz);
        memset(p, 0xEE, sizes[i]); /* dirty again for the next one */
    }
    arena_destroy(a);
}

/* ---- large and many small allocations ---- */

static void
test_large(void)
{
    struct arena *a = arena_create(CHUNK);
    size_t        base = arena_footprint(a);
    CHECK(base >= CHUNK, "footprint of a new arena covers its first chunk (%zu)",
          base);

    /* > chunk/4 takes its own block: footprint grows by at least n. */
    size_t         n = CHUNK / 4 + 1;
    unsigned char *p = arena_alloc(a, n);
    memset(p, 0x5A, n);
    CHECK(arena_footprint(a) >= base + n,
          "a %zu-byte (> chunk/4) block is counted in the footprint (%zu)", n,
          arena_footprint(a));

    /* Several blocks far larger than the chunk, all writable and distinct. */
    enum { NBIG = 5 };
    unsigned char *big[NBIG];
    for (int i = 0; i < NBIG; i++) {
        size_t sz = (size_t)(i + 1) * 100000;
        big[i] = arena_alloc(a, sz);
        memset(big[i], 'a' + i, sz);
    }
    int intact = 1;
    for (int i = 0; i < NBIG; i++) {
        size_t sz = (size_t)(i + 1) * 100000;
        if (big[i][0] != 'a' + i || big[i][sz - 1] != 'a' + i)
            intact = 0;
    }
    CHECK(intact, "large blocks (100 kB .. 500 kB) keep their contents");
    CHECK(p[0] == 0x5A && p[n - 1] == 0x5A,
          "an earlier large block is not overwritten by later ones");
    CHECK(arena_footprint(a) >= base + n + 1500000,
          "footprint counts every large block (%zu)", arena_footprint(a));

    arena_reset(a);
    CHECK(arena_footprint(a) == base,
          "after reset the footprint is the first chunk again (%zu, want %zu)",
          arena_footprint(a), base);
    arena_destroy(a);
}

static void
test_many_small(void)
{
    struct arena *a = arena_create(CHUNK);
    size_t        base = arena_footprint(a);
    enum { N = 20000 };
    uint32_t    **v = malloc(N * sizeof(*v));

    for (uint32_t i = 0; i < N; i++) {
        size_t sz = 4 + (i % 7) * 4; /* 4..28 bytes */
        v[i] = arena_alloc(a, sz);
        for (size_t k = 0; k < sz / 4; k++)
            v[i][k] = i * 31u + (uint32_t)k;
    }
    size_t broken = 0, misaligned = 0;
    for (uint32_t i = 0; i < N; i++) {
        size_t sz = 4 + (i % 7) * 4;
        for (size_t k = 0; k < sz / 4; k++)
            if (v[i][k] != i * 31u + (uint32_t)k)
                broken++;
        misaligned += !aligned16(v[i]);
    }
    CHECK(broken == 0, "20,000 small blocks never overlap (%zu words clobbered)",
          broken);
    CHECK(misaligned == 0, "small blocks are all aligned");
    CHECK(arena_footprint(a) > base,
          "many small allocations add chunks to the footprint (%zu > %zu)",
          arena_footprint(a), base);
    /* 20,000 blocks of 16 or 32 bytes: well under 1 MiB of chunks. */
    CHECK(arena_footprint(a) < 1024 * 1024,
          "small blocks are packed into chunks, not one malloc each (%zu)",
          arena_footprint(a));
    arena_reset(a);
    CHECK(arena_footprint(a) == base,
          "reset after many small allocations returns to the first chunk (%zu)",
          arena_footprint(a));
    free(v);
    arena_destroy(a);
}

/* ---- realloc, strndup, printf ---- */

static void
test_realloc(void)
{
    struct arena *a = arena_create(CHUNK);
    struct {
        size_t from, to;
    } cases[] = {
        {0, 10}, {10, 11}, {16, 200}, {200, 1000}, {1000, 2000}, /* into large */
        {2000, 50000}, {50000, 200000}, {300, 300}, {500, 100},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t         from = cases[i].from, to = cases[i].to;
        unsigned char *p = from ? arena_alloc(a, from) : NULL;
        for (size_t k = 0; k < from; k++)
            p[k] = (unsigned char)(k * 7 + i);
        unsigned char *q = arena_realloc(a, p, from, to);
        size_t         keep = from < to ? from : to, diff = 0;
        for (size_t k = 0; k < keep; k++)
            diff += q[k] != (unsigned char)(k * 7 + i);
        CHECK(q != NULL && diff == 0,
              "arena_realloc %zu -> %zu keeps the old contents (%zu differ)", from,
              to, diff);
        CHECK(aligned16(q), "arena_realloc %zu -> %zu result is aligned", from, to);
        memset(q, 0x11, to); /* whole new size is writable */
        if (to <= from)
            CHECK(q == p, "arena_realloc to a size <= old returns the same block");
    }
    arena_destroy(a);
}

static void
test_strings(void)
{
    struct arena *a = arena_create(CHUNK);
    struct {
        const char *s;
        size_t      n;
        const char *want;
    } nd[] = {
        {"hello world", 5, "hello"},
        {"hello", 5, "hello"},
        {"hello", 0, ""},
        {"", 0, ""},
        {"x\0yz", 4, "x"}, /* copies n bytes, NUL-terminated after them */
    };
    for (size_t i = 0; i < sizeof(nd) / sizeof(nd[0]); i++) {
        char *p = arena_strndup(a, nd[i].s, nd[i].n);
        CHECK_STR(p, nd[i].want, "arena_strndup(\"%s\", %zu)", nd[i].s, nd[i].n);
        CHECK(p[nd[i].n] == '\0', "arena_strndup terminates at byte %zu", nd[i].n);
        CHECK(p != nd[i].s, "arena_strndup copies");
    }
    char *bin = arena_strndup(a, "ab\0cd", 5);
    CHECK(memcmp(bin, "ab\0cd", 6) == 0, "arena_strndup copies embedded NULs too");

    /* Long input from a non-terminated buffer (> chunk: large path). */
    char *src = malloc(10000);
    memset(src, 'q', 10000);
    char *p = arena_strndup(a, src, 10000);
    CHECK(strlen(p) == 10000 && p[9999] == 'q', "arena_strndup of 10000 bytes");
    free(src);

    CHECK_STR(arena_strdup(a, "dup me"), "dup me", "arena_strdup");

    struct {
        const char *got, *want;
    } pf[] = {
        {arena_printf(a, "%d-%s-%c", 42, "x", 'z'), "42-x-z"},
        {arena_printf(a, "%s", ""), ""},
        {arena_printf(a, "%05.1f|%-3s|", 2.5, "a"), "002.5|a  |"},
        {arena_printf(a, "%zu %lld", (size_t)18446744073709551615u,
                      (long long)-9223372036854775807LL - 1),
         "18446744073709551615 -9223372036854775808"},
    };
    for (size_t i = 0; i < sizeof(pf) / sizeof(pf[0]); i++)
        CHECK_STR(pf[i].got, pf[i].want, "arena_printf case %zu", i);

    char *big = arena_printf(a, "<%6000s>", "end");
    CHECK(strlen(big) == 6002 && big[0] == '<' && strcmp(big + 5998, "end>") == 0,
          "arena_printf producing 6002 bytes (> chunk) is complete");
    arena_destroy(a);
}

/* ---- defers ---- */

static char dlog[256];
static size_t dlen;
static struct arena *dA;

static void
d_mark(void *arg)
{
    if (dlen < sizeof(dlog) - 1)
        dlog[dlen++] = *(const char *)arg;
    dlog[dlen] = '\0';
}

/* A defer that registers two more (they must run in the same reset). */
static void
d_spawn(void *arg)
{
    d_mark(arg);
    arena_defer(dA, d_mark, "x");
    arena_defer(dA, d_mark, "y");
}

static void
d_free(void *arg)
{
    free(arg);
    dlog[dlen++] = 'F';
    dlog[dlen] = '\0';
}

static void
test_defers(void)
{
    struct arena *a = arena_create(CHUNK);
    dA = a;

    dlen = 0;
    dlog[0] = '\0';
    arena_defer(a, d_mark, "1");
    arena_defer(a, d_mark, "2");
    arena_defer(a, d_mark, "3");
    CHECK(dlen == 0, "defers do not run when registered");
    arena_reset(a);
    CHECK_STR(dlog, "321", "defers run newest-first at reset");
    arena_reset(a);
    CHECK_STR(dlog, "321", "defers run exactly once (second reset runs none)");

    dlen = 0;
    dlog[0] = '\0';
    arena_defer(a, d_mark, "a");
    arena_defer(a, d_spawn, "s");
    arena_defer(a, d_mark, "b");
    arena_reset(a);
    /* b, then s (which registers x, y: newest first y, x), then a. */
    CHECK_STR(dlog, "bsyxa", "defers registered by a defer also run in that reset");
    arena_reset(a);
    CHECK_STR(dlog, "bsyxa", "nothing is left over for the next reset");

    /* Defers interleaved with allocations and large blocks. */
    dlen = 0;
    dlog[0] = '\0';
    for (int i = 0; i < 50; i++) {
        arena_alloc(a, 2000);
        arena_defer(a, d_mark, "k");
    }
    arena_defer(a, d_free, malloc(64)); /* a foreign resource */
    arena_reset(a);
    CHECK(dlen == 51 && dlog[0] == 'F' && strspn(dlog + 1, "k") == 50,
          "51 defers across chunks all run once, newest first (%zu ran)", dlen);

    /* arena_destroy runs pending defers. */
    dlen = 0;
    dlog[0] = '\0';
    arena_defer(a, d_mark, "d");
    arena_defer(a, d_free, malloc(16));
    arena_destroy(a);
    CHECK_STR(dlog, "Fd", "arena_destroy runs the pending defers");
}

/* ---- footprint ---- */

static void
test_footprint(void)
{
    struct arena *a = arena_create(CHUNK);
    size_t        base = arena_footprint(a);
    arena_reset(a);
    CHECK(arena_footprint(a) == base, "reset of an empty arena keeps the footprint");

    for (int i = 0; i < 100; i++)
        arena_alloc(a, 900); /* several extra chunks */
    CHECK(arena_footprint(a) > base, "extra chunks raise the footprint (%zu)",
          arena_footprint(a));
    arena_reset(a);
    CHECK(arena_footprint(a) == base,
          "reset frees extra chunks: footprint back to the first chunk (%zu)",
          arena_footprint(a));

    /* The first chunk is reused: same address for the first allocation. */
    void *p1 = arena_alloc(a, 64);
    arena_reset(a);
    void *p2 = arena_alloc(a, 64);
#ifndef PAY_ARENA_DEBUG
    CHECK(p1 == p2, "the first chunk is kept and reused across resets");
#else
    CHECK(p1 != NULL && p2 != NULL, "allocation after reset works (debug mode)");
#endif
    arena_destroy(a);

    struct arena *tiny = arena_create(0);
    char         *s = arena_strdup(tiny, "works");
    CHECK_STR(s, "works", "an arena created with size 0 still allocates");
    CHECK(arena_footprint(tiny) > 0, "and has a non-zero footprint");
    arena_destroy(tiny);
}

/* ---- abuf ---- */

static void
test_abuf(void)
{
    struct arena *a = arena_create(CHUNK);
    struct abuf   b;

    abuf_init(&b, a);
    const char *e = abuf_str(&b);
    CHECK(e != NULL && e[0] == '\0' && b.len == 0, "abuf_str of an empty buffer is \"\"");

    abuf_init(&b, a);
    for (int i = 0; i < 20000; i++)
        abuf_add(&b, &"0123456789"[i % 10], 1);
    CHECK(b.len == 20000, "abuf grows to 20000 bytes one at a time (len %zu)", b.len);
    CHECK(b.cap > b.len, "abuf keeps room for the NUL (cap %zu)", b.cap);
    size_t bad = 0;
    for (int i = 0; i < 20000; i++)
        bad += b.p[i] != "0123456789"[i % 10];
    CHECK(bad == 0, "abuf contents survive every growth (%zu wrong)", bad);
    const char *s = abuf_str(&b);
    CHECK(s[20000] == '\0' && strlen(s) == 20000, "abuf_str is NUL-terminated");

    abuf_init(&b, a);
    abuf_adds(&b, "id=");
    abuf_printf(&b, "%d,%s", 7, "seven");
    abuf_add(&b, "", 0);
    abuf_adds(&b, "");
    CHECK_STR(abuf_str(&b), "id=7,seven", "abuf_adds + abuf_printf");
    CHECK(b.len == 10, "abuf len excludes the NUL (%zu)", b.len);

    abuf_init(&b, a);
    abuf_add(&b, "a\0b", 3);
    CHECK(b.len == 3 && memcmp(abuf_str(&b), "a\0b", 4) == 0,
          "abuf_add keeps binary data with NULs");

    /* One big add past the initial capacity. */
    abuf_init(&b, a);
    char big[5000];
    memset(big, 'z', sizeof(big));
    abuf_adds(&b, "<");
    abuf_add(&b, big, sizeof(big));
    abuf_adds(&b, ">");
    CHECK(b.len == 5002 && abuf_str(&b)[0] == '<' && abuf_str(&b)[5001] == '>' &&
              abuf_str(&b)[2500] == 'z',
          "abuf_add of 5000 bytes at once");

    abuf_init(&b, a);
    abuf_printf(&b, "%3000s|", "x");
    CHECK(b.len == 3001 && abuf_str(&b)[3000] == '|', "abuf_printf beyond 256 bytes");
    arena_destroy(a);
}

/* ---- steady state ---- */

static int defers_ran;

static void
d_count(void *arg)
{
    (void)arg;
    defers_ran++;
}

static void
test_cycles(void)
{
    struct arena *a = arena_create(CHUNK);
    size_t        base = arena_footprint(a);
    size_t        changed = 0;
    enum { CYCLES = 100000 };

    for (int i = 0; i < CYCLES; i++) {
        /* A request's worth: small allocations, an extra chunk sometimes,
         * a large block sometimes, a defer, and a buffer. */
        for (int k = 0; k < 20; k++)
            arena_alloc(a, 8 + (size_t)((i + k) % 64));
        if (i % 10 == 0)
            arena_alloc(a, 2000);
        if (i % 7 == 0)
            for (int k = 0; k < 8; k++)
                arena_alloc(a, 800);
        arena_defer(a, d_count, NULL);
        struct abuf b;
        abuf_init(&b, a);
        abuf_printf(&b, "cycle %d", i);
        arena_reset(a);
        if (arena_footprint(a) != base)
            changed++;
    }
    CHECK(changed == 0, "100,000 reset cycles: footprint constant at %zu (%zu differed)",
          base, changed);
    CHECK(defers_ran == CYCLES, "each cycle's defer ran exactly once (%d)", defers_ran);
    arena_destroy(a);
}

int
main(void)
{
    test_alignment();
    test_zalloc();
    test_large();
    test_many_small();
    test_realloc();
    test_strings();
    test_defers();
    test_footprint();
    test_abuf();
    test_cycles();
    return TEST_DONE();
}
