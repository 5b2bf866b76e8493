/* Provider helpers shared by the handlers (see provider.h). */
#include "provider.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider_stripe.h"
#include "token.h"

const char *
provider_call_key(struct req *r, const char *what, const char *capability)
{
    const char *basis = capability;
    if (basis == NULL && r->idempotency_key != NULL) /* the body too: a key the
        client reuses for another request after a 5xx is another operation */
        basis = arena_printf(r->arena, "%s\n%s\n%s",
                             r->principal.sub ? r->principal.sub : "", r->idempotency_key,
                             token_sha256_hex(r->arena, r->body ? r->body : "",
                                              r->body_len));
    if (basis == NULL) {
        if (r->call_key == NULL)
            r->call_key = token_random(r->arena, 24);
        basis = r->call_key;
    }
    return arena_printf(r->arena, "pay-api-%s-%s", what,
                        token_sha256_hex(r->arena, basis, strlen(basis)));
}

enum db_rc
provider_find(struct req *r, int64_t owner, const char *type, int64_t *id)
{
    struct dbq *q = dbq_new(&r->db,
        "SELECT p.id FROM payment_providers p JOIN payment_provider_owners o"
        " ON o.provider_id = p.id WHERE o.contract_owner_id = ? AND p.type = ?"
        " AND p.status = 'ACTIVE' ORDER BY p.id LIMIT 1");
    dbq_i64(q, owner);
    dbq_str(q, type);
    enum db_rc rc = dbq_one(q);
    *id = rc == DB_OK ? dbq_col_i64(q, 0) : 0;
    return rc;
}


/*
 * Credentials of the integrated providers (provider.h): read once at start,
 * kept for the process's life, never logged (error messages name the key
 * and the line, never a value).
 */
struct cred_slot {
    const char                 *name;
    int                         loaded;
    struct provider_credentials c;
};
static struct cred_slot creds[] = {{"gocardless", 0, {0}}, {"stripe", 0, {0}}};

static struct cred_slot *
cred_slot(const char *name)
{
    for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++)
        if (name != NULL && strcmp(creds[i].name, name) == 0)
            return &creds[i];
    return NULL;
}

const struct provider_credentials *
provider_credentials(const char *name)
{
    struct cred_slot *s = cred_slot(name);
    return s != NULL && s->loaded ? &s->c : NULL;
}

static char *
cred_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int
cred_parse(FILE *f, const char *path, struct provider_credentials *c, char *err, size_t errlen)
{
    static const char *const names[] = {"api_key", "webhook_secret", "environment",
                                        "base_url", "ca_file"};
    const char **slots[] = {&c->api_key, &c->webhook_secret, &c->environment, &c->base_url,
                            &c->ca_file};
    char line[4096];
    int  lineno = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line too long", path, lineno);
            return -1;
        }
        char *s = cred_trim(line);
        if (*s == '\0' || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            snprintf(err, errlen, "%s:%d: expected key = value", path, lineno);
            return -1;
        }
        *eq = '\0';
        char  *key = cred_trim(s), *value = cred_trim(eq + 1);
        size_t k = 0;
        while (k < 5 && strcmp(names[k], key) != 0)
            k++;
        if (k == 5) {
            snprintf(err, errlen, "%s:%d: unknown key \"%.40s\" (api_key, webhook_secret,"
                     " environment, base_url, ca_file)", path, lineno, key);
            return -1;
        }
        if (*slots[k] != NULL) {
            snprintf(err, errlen, "%s:%d: %s given twice", path, lineno, key);
            return -1;
        }
        if (*value == '\0' || strpbrk(value, " \t") != NULL) {
            snprintf(err, errlen, "%s:%d: %s must be one non-empty word", path, lineno, key);
            return -1;
        }
        if ((*slots[k] = strdup(value)) == NULL) {
            snprintf(err, errlen, "%s: out of memory", path);
            return -1;
        }
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    for (size_t k = 0; k < 3; k++)
        if (*slots[k] == NULL) {
            snprintf(err, errlen, "%s: %s is missing", path, names[k]);
            return -1;
        }
    if (strcmp(c->environment, "live") != 0 && strcmp(c->environment, "sandbox") != 0) {
        snprintf(err, errlen, "%s: environment must be live or sandbox", path);
        return -1;
    }
    if (c->base_url != NULL) {
        size_t n = strlen(c->base_url);
        if (strncmp(c->base_url, "https://", 8) != 0 || n == 8 || c->base_url[8] == '/') {
            snprintf(err, errlen, "%s: base_url must be an https:// URL with a host", path);
            return -1;
        }
        if (c->base_url[n - 1] == '/')
            ((char *)c->base_url)[n - 1] = '\0';
    }
    if (c->ca_file != NULL && access(c->ca_file, R_OK) != 0) {
        snprintf(err, errlen, "%s: ca_file %.200s: %s", path, c->ca_file, strerror(errno));
        return -1;
    }
    return 0;
}

static void
cred_free(struct provider_credentials *c)
{
    free((char *)c->api_key);
    free((char *)c->webhook_secret);
    free((char *)c->environment);
    free((char *)c->base_url);
    free((char *)c->ca_file);
    memset(c, 0, sizeof(*c));
}

int
provider_credentials_load(const char *name, const char *path, char *err, size_t errlen)
{
    struct cred_slot *s = cred_slot(name);
    if (s == NULL) {
        snprintf(err, errlen, "no provider credentials named %.40s", name ? name : "(null)");
        return -1;
    }
    cred_free(&s->c);
    s->loaded = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot read %s credentials %s: %s", name, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        snprintf(err, errlen, "%s credentials %s must be a regular file readable by the"
                 " service user only (chmod 600; its mode is %03o)", name, path,
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    int rc = cred_parse(f, path, &s->c, err, errlen);
    fclose(f);
    if (rc != 0) {
        cred_free(&s->c);
        return -1;
    }
    s->loaded = 1;
    return 0;
}

/*
 * Integrated adapters by PaymentMethod type: used when their credentials
 * are configured; every other type (and these without credentials) is
 * served by the sandbox.
 */
static const struct {
    const char *type;
    const char *credentials;
    const struct provider_adapter *(*adapter)(void);
} integrated[] = {
    {"STRIPE", "stripe", provider_stripe_adapter},
    {"STRIPE_CARD", "stripe", provider_stripe_adapter},
    {"STRIPE_DD", "stripe", provider_stripe_adapter},
    {"GO_CARDLESS", "gocardless", provider_gocardless_adapter},
    {"GC_INSTANT_BANK_PAYMENTS", "gocardless", provider_gocardless_ibp_adapter},
    {NULL, NULL, NULL},
};

const struct provider_adapter *
provider_adapter(const char *type)
{
    for (size_t i = 0; type != NULL && integrated[i].type != NULL; i++)
        if (strcmp(integrated[i].type, type) == 0 &&
            provider_credentials(integrated[i].credentials) != NULL)
            return integrated[i].adapter();
    return provider_sandbox_adapter();
}
