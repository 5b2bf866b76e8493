/*
 * The providers' credentials files (handlers/provider.c): a good file is
 * read; a file readable or writable by group or others, a missing file, a
 * malformed line, an unknown or repeated key, a missing required key or a
 * bad value are refused with a message that never quotes a secret; with no
 * credentials every type keeps the sandbox adapter.
 */
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "provider.h"

static char dir[] = "/tmp/pay-test-creds-XXXXXX";

static const char *
write_file(const char *name, const char *text, mode_t mode)
{
    static char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return path;
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    return path;
}

static int
load(const char *text, mode_t mode, char *err, size_t errlen)
{
    err[0] = '\0';
    return provider_credentials_load("gocardless", write_file("creds", text, mode), err, errlen);
}

int
main(void)
{
    if (mkdtemp(dir) == NULL)
        return 1;
    char err[512];
    CHECK(provider_credentials("gocardless") == NULL, "nothing configured: NULL");
    CHECK(provider_adapter("GO_CARDLESS") == provider_sandbox_adapter(),
          "no credentials: the sandbox serves GO_CARDLESS");

    const char *good = "# GoCardless\n"
                       "api_key = sandbox_TOKEN_1\n"
                       "webhook_secret=whsec-xyz\n"
                       "\n"
                       "environment = sandbox\n"
                       "base_url = https://127.0.0.1:8443/\n"
                       "ca_file = /dev/null\n";
    CHECK(load(good, 0600, err, sizeof(err)) == 0, "a good file loads (%s)", err);
    const struct provider_credentials *c = provider_credentials("gocardless");
    CHECK(c != NULL, "then it is configured");
    if (c != NULL) {
        CHECK_STR(c->api_key, "sandbox_TOKEN_1", "api_key");
        CHECK_STR(c->webhook_secret, "whsec-xyz", "webhook_secret");
        CHECK_STR(c->environment, "sandbox", "environment");
        CHECK_STR(c->base_url, "https://127.0.0.1:8443", "base_url without its trailing slash");
        CHECK_STR(c->ca_file, "/dev/null", "ca_file");
    }
    CHECK(provider_credentials("stripe") == NULL, "stripe still not configured");
    CHECK(provider_credentials("other") == NULL, "an unknown name: NULL");
    CHECK(provider_adapter("STRIPE") == provider_sandbox_adapter(), "STRIPE: the sandbox");
    CHECK(provider_adapter("FINASTRA") == provider_sandbox_adapter(), "FINASTRA: the sandbox");
    CHECK(load("api_key = a\nwebhook_secret = b\nenvironment = live\n", 0400, err,
               sizeof(err)) == 0, "minimal, mode 0400 (%s)", err);

    static const struct {
        const char *text;
        mode_t      mode;
        const char *why;
    } bad[] = {
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n", 0640, "mode"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n", 0604, "mode"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n", 0620, "mode"},
        {"api_key s3cret\nwebhook_secret = s3cret\nenvironment = live\n", 0600, "key = value"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\ncolour = s3cret\n",
         0600, "unknown key"},
        {"api_key = s3cret\napi_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n",
         0600, "twice"},
        {"webhook_secret = s3cret\nenvironment = live\n", 0600, "api_key is missing"},
        {"api_key = s3cret\nenvironment = live\n", 0600, "webhook_secret is missing"},
        {"api_key = s3cret\nwebhook_secret = s3cret\n", 0600, "environment is missing"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = test\n", 0600,
         "live or sandbox"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n"
         "base_url = http://127.0.0.1/\n", 0600, "https://"},
        {"api_key = s3cret\nwebhook_secret = s3cret\nenvironment = live\n"
         "ca_file = /nonexistent/ca.pem\n", 0600, "ca_file"},
        {"api_key = \nwebhook_secret = s3cret\nenvironment = live\n", 0600, "non-empty"},
        {"api_key = s3 cret\nwebhook_secret = s3cret\nenvironment = live\n", 0600, "one"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK(load(bad[i].text, bad[i].mode, err, sizeof(err)) == -1, "bad file %zu refused", i);
        CHECK(strstr(err, bad[i].why) != NULL, "bad file %zu: says \"%s\" (%s)", i, bad[i].why,
              err);
        CHECK(strstr(err, "s3cret") == NULL, "bad file %zu: no secret in the message", i);
        CHECK(provider_credentials("gocardless") == NULL, "bad file %zu: not configured", i);
    }
    CHECK(provider_credentials_load("gocardless", "/nonexistent/creds", err, sizeof(err)) == -1,
          "a missing file is refused");
    CHECK(provider_credentials_load("gocardless", dir, err, sizeof(err)) == -1,
          "a directory is refused");
    CHECK(provider_credentials_load("paypal", write_file("p", good, 0600), err,
                                    sizeof(err)) == -1, "an unknown provider name is refused");
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("cannot remove %s\n", dir);
    return TEST_DONE();
}
