/*
 * JSON Patch (RFC 6902) over the arena JSON trees of json.h, with JSON
 * Pointer (RFC 6901) paths. Pure code: no I/O, no DB, no HTTP. Everything
 * it returns lives in the caller's arena; the input document and the
 * patch are never modified, so a failed patch leaves nothing behind.
 */
#ifndef PAY_APP_JSONPATCH_H
#define PAY_APP_JSONPATCH_H

#include <stddef.h>

#include "arena.h"
#include "json.h"

/* Most nodes one jsonpatch_apply may create (the working copy of the
 * document plus every value added or copied). `copy` can double a
 * document per operation, so without a budget a 64 KiB patch could ask
 * for more memory than exists. */
#define JSONPATCH_MAX_NODES 100000

enum jsonpatch_rc {
    JSONPATCH_OK = 0,
    JSONPATCH_E_INVALID, /* malformed patch: not an array of operation
                            objects, unknown op, missing or ill-typed
                            path/from/value, bad pointer syntax, move into
                            a child, result too large or too deep (400) */
    JSONPATCH_E_PATH,    /* a pointer does not resolve: missing member,
                            index out of range or not an index, traversal
                            through a scalar (400) */
    JSONPATCH_E_TEST     /* a `test` operation found a different value (409) */
};

/* Where and why a patch failed. */
struct jsonpatch_error {
    enum jsonpatch_rc rc;
    size_t            op;      /* index of the failing operation */
    const char       *member;  /* "op", "path", "from", "value", or NULL
                                  when the patch itself is not an array */
    const char       *message; /* client-safe sentence (arena); input is
                                  echoed through text_echo, 64 bytes max */
};

/*
 * Applies patch (a JSON array of operation objects) to doc and sets *out
 * to the patched document, a fresh deep copy sharing nothing with doc or
 * patch. Operations run in order on that copy; the first failure stops
 * the patch and *out is left NULL, so the result is all or nothing.
 * Semantics (RFC 6902 §4): add (object member added or replaced; array
 * element inserted at 0..n or appended with "-"; "" replaces the whole
 * document), remove (the target must exist; removing "" is refused),
 * replace (the target must exist), move (from must exist and must not be
 * a proper prefix of path; from == path is a no-op), copy (a deep copy),
 * test (JSON equality: numbers compared by value, e.g. 1 == 1.0 == 1e0,
 * object members in any order, arrays in order). Members of an operation
 * other than op/path/from/value are ignored, as the RFC requires.
 * The result never nests deeper than JSON_MAX_DEPTH containers and never
 * takes more than JSONPATCH_MAX_NODES nodes (JSONPATCH_E_INVALID).
 * Returns JSONPATCH_OK, or the failure kind with *err filled (err may be
 * NULL).
 */
enum jsonpatch_rc jsonpatch_apply(struct arena *a, const struct json_value *doc,
                                  const struct json_value *patch,
                                  struct json_value **out,
                                  struct jsonpatch_error *err);

/*
 * Splits an RFC 6901 pointer into unescaped reference tokens ("~1" is
 * '/', "~0" is '~'; the arena copies are NUL-terminated). "" gives no
 * tokens (the whole document). Returns 0, or -1 for a pointer that does
 * not start with '/' or has '~' not followed by '0' or '1'.
 */
int jsonpatch_pointer_parse(struct arena *a, const char *ptr,
                            const char ***tokens, size_t *ntokens);

/*
 * The value ptr points at inside doc, or NULL (unresolvable or malformed
 * pointer). Array tokens must be "0" or [1-9][0-9]* below the length.
 */
const struct json_value *jsonpatch_get(struct arena *a,
                                       const struct json_value *doc,
                                       const char *ptr);

/*
 * 1 if a and b are equal JSON values per RFC 6902 §4.6, else 0. Numbers
 * are compared by decimal value from their text, never through double
 * (exponents beyond 10^17 fall back to comparing the text).
 */
int jsonpatch_equal(const struct json_value *a, const struct json_value *b);

/* A deep copy of v in arena a (strings and keys copied too). */
struct json_value *jsonpatch_copy(struct arena *a, const struct json_value *v);

#endif
