/*
 * Unit tests for the error catalogue (app/errors.def, errors.c): every
 * entry has a 4xx/5xx status, an UPPER_SNAKE code and a message; codes are
 * unique; the table behind errors_get matches errors.def row for row;
 * errors_reason knows every status the catalogue (and the handlers' success
 * paths) use; out-of-range lookups and the per-code counters are safe.
 */
#include "test.h"

#include "errors.h"

#include <ctype.h>
#include <string.h>

/* errors.def expanded here too, independently of errors.c. */
static const struct {
    enum pay_err id;
    const char  *name;
    int          status;
    const char  *code;
    const char  *message;
} def[] = {
#define PAY_ERR(id, status, code, msg) {id, #id, status, code, msg},
#include "errors.def"
#undef PAY_ERR
};
#define NDEF (sizeof(def) / sizeof(def[0]))

static int
upper_snake(const char *s)
{
    if (s == NULL || !isupper((unsigned char)s[0]))
        return 0;
    for (const char *p = s; *p; p++) {
        if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return 0;
        if (*p == '_' && (p[1] == '_' || p[1] == '\0'))
            return 0;
    }
    return 1;
}

static void
test_entries(void)
{
    CHECK(NDEF == PAY_E__COUNT, "the enum has one value per errors.def row (%zu/%d)",
          NDEF, (int)PAY_E__COUNT);
    CHECK(NDEF >= 10, "the catalogue is not empty (%zu rows)", NDEF);

    for (size_t i = 0; i < NDEF; i++) {
        const struct pay_error *e = errors_get(def[i].id);
        const char             *n = def[i].name;
        CHECK((int)def[i].id == (int)i, "%s is enum value %zu", n, i);
        CHECK(e != NULL, "%s: errors_get is not NULL", n);
        if (e == NULL)
            continue;
        CHECK(e->status == def[i].status, "%s: status from errors.def (%d)", n,
              e->status);
        CHECK_STR(e->code, def[i].code, "%s: code from errors.def", n);
        CHECK_STR(e->message, def[i].message, "%s: message from errors.def", n);
        CHECK(e->status >= 400 && e->status <= 599, "%s: status %d is 4xx/5xx", n,
              e->status);
        CHECK(upper_snake(e->code), "%s: code \"%s\" is UPPER_SNAKE", n, e->code);
        CHECK(e->message != NULL && strlen(e->message) >= 5,
              "%s: has a message", n);
        CHECK(e->message && isupper((unsigned char)e->message[0]),
              "%s: message starts with a capital (\"%s\")", n, e->message);
        CHECK(e->message && e->message[strlen(e->message) - 1] != ' ' &&
                  e->message[strlen(e->message) - 1] != '.',
              "%s: message has no trailing space or period", n);
        CHECK(strncmp(n, "PAY_E_", 6) == 0, "%s: id has the PAY_E_ prefix", n);
        const char *reason = errors_reason(e->status);
        CHECK(reason != NULL && strcmp(reason, "Unknown") != 0,
              "%s: errors_reason knows status %d (%s)", n, e->status,
              reason ? reason : "(null)");
    }
}

static void
test_unique(void)
{
    for (size_t i = 0; i < NDEF; i++)
        for (size_t j = i + 1; j < NDEF; j++) {
            CHECK(strcmp(def[i].code, def[j].code) != 0, "codes are unique: %s and %s",
                  def[i].name, def[j].name);
            CHECK(strcmp(def[i].name, def[j].name) != 0, "ids are unique: %s",
                  def[i].name);
        }
}

/* The rows the pipeline itself depends on. */
static void
test_known(void)
{
    static const struct {
        enum pay_err e;
        int          status;
        const char  *code;
    } known[] = {
        {PAY_E_BAD_REQUEST, 400, "BAD_REQUEST"},
        {PAY_E_INVALID_JSON, 400, "INVALID_JSON"},
        {PAY_E_UNKNOWN_PARAMETER, 400, "UNKNOWN_PARAMETER"},
        {PAY_E_INVALID_PARAMETER, 400, "INVALID_PARAMETER"},
        {PAY_E_UNAUTHENTICATED, 401, "UNAUTHENTICATED"},
        {PAY_E_FORBIDDEN, 403, "FORBIDDEN"},
        {PAY_E_INSUFFICIENT_SCOPE, 403, "INSUFFICIENT_SCOPE"},
        {PAY_E_NOT_FOUND, 404, "NOT_FOUND"},
        {PAY_E_METHOD, 405, "METHOD_NOT_ALLOWED"},
        {PAY_E_TOO_LARGE, 413, "BODY_TOO_LARGE"},
        {PAY_E_MEDIA_TYPE, 415, "UNSUPPORTED_MEDIA_TYPE"},
        {PAY_E_INTERNAL, 500, "INTERNAL_ERROR"},
        {PAY_E_UNAVAILABLE, 503, "UNAVAILABLE"},
    };
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        const struct pay_error *e = errors_get(known[i].e);
        CHECK(e->status == known[i].status, "%s answers %d (got %d)", known[i].code,
              known[i].status, e->status);
        CHECK_STR(e->code, known[i].code, "code of enum value %d", (int)known[i].e);
    }
    /* 5xx messages are shown to clients verbatim: keep them generic. */
    for (size_t i = 0; i < NDEF; i++)
        if (def[i].status >= 500)
            CHECK(strstr(def[i].message, "SQL") == NULL &&
                      strstr(def[i].message, "%") == NULL,
                  "%s: 5xx message is generic", def[i].name);
}

static void
test_reason(void)
{
    static const struct {
        int         status;
        const char *reason;
    } reasons[] = {
        {200, "OK"},
        {201, "Created"},
        {204, "No Content"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {413, "Payload Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Entity"},
        {500, "Internal Server Error"},
        {503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
        CHECK_STR(errors_reason(reasons[i].status), reasons[i].reason,
                  "errors_reason(%d)", reasons[i].status);
    /* Unlisted statuses still give a usable phrase. */
    static const int odd[] = {0, -1, 99, 299, 418, 599, 600, 1000};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        const char *r = errors_reason(odd[i]);
        CHECK(r != NULL && r[0] != '\0' && strchr(r, '\r') == NULL &&
                  strchr(r, '\n') == NULL,
              "errors_reason(%d) is a non-empty single-line phrase", odd[i]);
    }
}

static void
test_bounds_and_counters(void)
{
    const struct pay_error *internal = errors_get(PAY_E_INTERNAL);
    CHECK(errors_get(PAY_E__COUNT) == internal,
          "errors_get past the end falls back to INTERNAL_ERROR");
    CHECK(errors_get((enum pay_err)-1) == internal,
          "errors_get of a negative value falls back to INTERNAL_ERROR");
    CHECK(errors_get((enum pay_err)100000) == internal,
          "errors_get of a huge value falls back to INTERNAL_ERROR");

    unsigned long before_nf = errors_count(PAY_E_NOT_FOUND);
    unsigned long before_json = errors_count(PAY_E_INVALID_JSON);
    for (int i = 0; i < 3; i++)
        errors_counted(PAY_E_NOT_FOUND);
    errors_counted(PAY_E_INVALID_JSON);
    CHECK(errors_count(PAY_E_NOT_FOUND) == before_nf + 3,
          "errors_counted increments its own code (%lu)", errors_count(PAY_E_NOT_FOUND));
    CHECK(errors_count(PAY_E_INVALID_JSON) == before_json + 1,
          "other codes count separately");
    errors_counted(PAY_E__COUNT);
    errors_counted((enum pay_err)-1);
    CHECK(errors_count(PAY_E__COUNT) == 0 && errors_count((enum pay_err)-1) == 0,
          "out-of-range codes are ignored by the counters");
    CHECK(errors_count(PAY_E_NOT_FOUND) == before_nf + 3,
          "out-of-range counting does not disturb real codes");
}

int
main(void)
{
    test_entries();
    test_unique();
    test_known();
    test_reason();
    test_bounds_and_counters();
    return TEST_DONE();
}
