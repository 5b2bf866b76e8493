/*
 * fuzz_money: app/money.c (money_parse, money_parse_decimal, money_format).
 *
 * Input: first byte = digits ('0'..'9' means that number, so '5'..'9' are
 * out of range; any other byte b gives b % 7 - 1, i.e. -1..5), the rest is
 * the number text. If the input has at least 9 bytes, its last 8 bytes are
 * also read as an int64_t for money_format.
 * Invariants:
 *  - money_parse agrees with an independent reference (a string-based
 *    decimal point shift written from money.h: grammar, value-based
 *    scaling, MONEY_ERANGE before MONEY_EPRECISION, *out untouched on
 *    error); money_parse_decimal likewise (no exponent, C string).
 *  - Round trip: a parsed value formats (money_format) and parses back to
 *    the same value with both parsers.
 *  - money_format writes exactly the reference text for any int64_t
 *    (INT64_MIN included), returns its length, refuses a buffer one byte
 *    too small (leaving ""), and refuses digits outside 0..4.
 */
#include "fuzz_common.h"

#include <inttypes.h>

#include "money.h"

#define SENTINEL INT64_C(0x5A5A5A5A5A5A5A5A)

static int
is_dig(char c)
{
    return c >= '0' && c <= '9';
}

/* Reference: shift the decimal point of the digit string, then look at the
 * integer and fraction parts as strings. */
static int
ref_money(const char *s, size_t len, int digits, int allow_exp, int64_t *out)
{
    size_t i = 0, ib, ie, fb = 0, fe = 0;
    int    neg = 0;
    long long e = 0;

    if (digits < 0 || digits > 4)
        return MONEY_ESYNTAX;
    if (i < len && s[i] == '-')
        neg = 1, i++;
    ib = i;
    if (i < len && s[i] == '0')
        i++;
    else if (i < len && s[i] >= '1' && s[i] <= '9')
        while (i < len && is_dig(s[i]))
            i++;
    else
        return MONEY_ESYNTAX;
    ie = i;
    if (i < len && s[i] == '.') {
        fb = ++i;
        while (i < len && is_dig(s[i]))
            i++;
        fe = i;
        if (fe == fb)
            return MONEY_ESYNTAX;
    }
    if (allow_exp && i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i >= len || !is_dig(s[i]))
            return MONEY_ESYNTAX;
        for (; i < len && is_dig(s[i]); i++)
            if (e < 1000000000LL)
                e = e * 10 + (s[i] - '0');
        if (eneg)
            e = -e;
    }
    if (i != len)
        return MONEY_ESYNTAX;

    /* D = integer digits + fraction digits; the point sits after `point`
     * digits; scaling to minor units moves it by e + digits. */
    size_t nd = (ie - ib) + (fe - fb);
    char  *D = malloc(nd + 1);
    memcpy(D, s + ib, ie - ib);
    memcpy(D + (ie - ib), s + fb, fe - fb);
    D[nd] = '\0';
    long long point = (long long)(ie - ib) + e + digits;
    size_t    lead = 0;
    while (lead < nd && D[lead] == '0')
        lead++, point--;
    if (lead == nd) {
        free(D);
        *out = 0;
        return 0;
    }
    const char *d = D + lead;
    size_t      n = nd - lead;
    int         rc;
    if (point > 16) {
        rc = MONEY_ERANGE; /* >= 10^16 minor units */
    } else if (point <= 0) {
        rc = MONEY_EPRECISION; /* 0.xxx minor units, xxx non-zero */
    } else {
        uint64_t ip = 0;
        for (long long k = 0; k < point; k++)
            ip = ip * 10 + (uint64_t)((size_t)k < n ? d[k] - '0' : 0);
        int frac = 0;
        for (size_t k = (size_t)point; k < n; k++)
            frac |= d[k] != '0';
        if (ip > (uint64_t)MONEY_MAX_MINOR ||
            (ip == (uint64_t)MONEY_MAX_MINOR && frac))
            rc = MONEY_ERANGE;
        else if (frac)
            rc = MONEY_EPRECISION;
        else {
            rc = 0;
            *out = neg ? -(int64_t)ip : (int64_t)ip;
        }
    }
    free(D);
    return rc;
}

/* Reference formatting through 128-bit arithmetic. */
static void
ref_format(int64_t v, int digits, char *buf, size_t cap)
{
    static const unsigned p10[] = {1, 10, 100, 1000, 10000};
    __int128          w = v;
    unsigned __int128 mag = w < 0 ? (unsigned __int128)(-w) : (unsigned __int128)w;
    uint64_t          ip = (uint64_t)(mag / p10[digits]);
    unsigned          fp = (unsigned)(mag % p10[digits]);
    if (digits == 0)
        snprintf(buf, cap, "%s%" PRIu64, v < 0 ? "-" : "", ip);
    else
        snprintf(buf, cap, "%s%" PRIu64 ".%0*u", v < 0 ? "-" : "", ip, digits, fp);
}

static void
check_format(int64_t v)
{
    char buf[MONEY_FMT_MAX], want[64], small[MONEY_FMT_MAX];

    for (int d = 0; d <= 4; d++) {
        int n = money_format(v, d, buf, sizeof(buf));
        ref_format(v, d, want, sizeof(want));
        FUZZ_CHECK(n >= 0 && (size_t)n == strlen(buf) && strcmp(buf, want) == 0,
                   "money_format(%" PRId64 ", %d) = %d '%s', want '%s'", v, d,
                   n, n >= 0 ? buf : "", want);
        memset(small, 'x', sizeof(small));
        FUZZ_CHECK(money_format(v, d, small, (size_t)n) == -1 && (n == 0 || small[0] == '\0'),
                   "money_format accepted a buffer of %d bytes", n);
        FUZZ_CHECK(money_format(v, d, small, (size_t)n + 1) == n &&
                   strcmp(small, want) == 0, "exact-size buffer");

        int64_t back = SENTINEL;
        int     rc = money_parse_decimal(buf, d, &back);
        int64_t lim = MONEY_MAX_MINOR;
        if (v >= -lim && v <= lim)
            FUZZ_CHECK(rc == 0 && back == v, "format/parse round trip of %"
                       PRId64 " (%d digits): rc %d, got %" PRId64, v, d, rc, back);
        else
            FUZZ_CHECK(rc == MONEY_ERANGE && back == SENTINEL,
                       "out-of-range %" PRId64 " parsed back: rc %d", v, rc);
    }
    FUZZ_CHECK(money_format(v, -1, buf, sizeof(buf)) == -1 && buf[0] == '\0', "digits -1");
    FUZZ_CHECK(money_format(v, 5, buf, sizeof(buf)) == -1 && buf[0] == '\0', "digits 5");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once) {
        static const int64_t edges[] = {
            0, 1, -1, 9, 10, 99, 100, MONEY_MAX_MINOR, -MONEY_MAX_MINOR,
            MONEY_MAX_MINOR + 1, -MONEY_MAX_MINOR - 1, INT64_MAX, INT64_MIN,
            INT64_MIN + 1};
        for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
            check_format(edges[i]);
        once = 1;
    }
    if (size == 0)
        return 0;

    int digits = (data[0] >= '0' && data[0] <= '9') ? data[0] - '0'
                                                     : (int)(data[0] % 7) - 1;
    const char *s = (const char *)data + 1;
    size_t      len = size - 1;

    /* money_parse on the raw bytes (a JSON number's text) */
    int64_t got = SENTINEL, want = SENTINEL;
    int     rc = money_parse(s, len, digits, &got);
    int     rrc = ref_money(s, len, digits, 1, &want);
    FUZZ_CHECK(rc == rrc && got == want,
               "money_parse('%.*s', %d) = %d/%" PRId64 ", reference %d/%" PRId64,
               (int)(len > 200 ? 200 : len), s, digits, rc, got, rrc, want);
    if (rc == 0) {
        FUZZ_CHECK(got >= -MONEY_MAX_MINOR && got <= MONEY_MAX_MINOR, "range");
        char buf[MONEY_FMT_MAX];
        int  n = money_format(got, digits, buf, sizeof(buf));
        FUZZ_CHECK(n > 0, "format of a parsed value failed");
        int64_t again = SENTINEL, again2 = SENTINEL;
        FUZZ_CHECK(money_parse(buf, (size_t)n, digits, &again) == 0 && again == got,
                   "money_parse round trip via '%s'", buf);
        FUZZ_CHECK(money_parse_decimal(buf, digits, &again2) == 0 && again2 == got,
                   "money_parse_decimal round trip via '%s'", buf);
    }

    /* money_parse_decimal on the same text as a C string (query value) */
    struct arena *a = fuzz_arena();
    char         *cs = fuzz_cstr(a, (const uint8_t *)s, len);
    got = want = SENTINEL;
    rc = money_parse_decimal(cs, digits, &got);
    rrc = ref_money(cs, strlen(cs), digits, 0, &want);
    FUZZ_CHECK(rc == rrc && got == want,
               "money_parse_decimal('%.200s', %d) = %d/%" PRId64
               ", reference %d/%" PRId64, cs, digits, rc, got, rrc, want);
    FUZZ_CHECK(money_parse_decimal(NULL, 2, &got) == MONEY_ESYNTAX, "NULL");
    arena_reset(a);

    if (size >= 9) {
        int64_t v;
        memcpy(&v, data + size - 8, 8);
        check_format(v);
    }
    return 0;
}
