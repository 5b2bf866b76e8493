/*
 * Configuration: one `key = value` file plus PAY_<KEY> environment
 * overrides, described by one table of keys (config.c). Process lifetime.
 */
#ifndef PAY_APP_CONFIG_H
#define PAY_APP_CONFIG_H

#include <stddef.h>

struct config {
    const char *socket;
    int         socket_mode;
    int         workers;
    int         max_requests;      /* recycle a worker after this many (0 = never) */
    int         shutdown_grace;    /* seconds in-flight requests get at stop */
    const char *db_host;
    int         db_port;
    const char *db_socket;
    const char *db_user;
    const char *db_password;
    const char *db_name;
    int         db_timeout;        /* read/write timeout, seconds */
    int         db_lock_wait;      /* innodb_lock_wait_timeout, seconds */
    int         db_causal_reads;   /* Galera: wsrep_sync_wait of GET requests */
    const char *jwt_alg;
    const char *jwt_secret;
    const char *jwt_secret_file;
    const char *jwt_public_key_file;
    const char *jwt_private_key_file;
    const char *jwt_issuer;
    const char *jwt_audience;
    const char *public_base_url;   /* required; https:// unless allow_insecure_http */
    int         allow_insecure_http; /* development only: accept an http:// base URL */
    const char *log_level;
    const char *log_file;
    int         collectors;          /* collection engine processes (0 = off) */
    int         collector_poll_ms;   /* idle wait between the engine's passes */
    int         collector_lease_ms;  /* how long a claimed attempt is held */
    int         reconcile_ms;        /* fetch an attempt whose event is this late */
    int         refund_expiry_days;  /* a refund with no ACTIVE provider is cancelled */
    int         autocollect_interval;/* seconds between auto-collect runs */
    int         sandbox_step_ms;     /* the sandbox provider's timeline step */
    const char *sandbox_ca_file;     /* CA of an https:// public_base_url for the sandbox's
                                      * webhooks ("": the system CAs) */
    const char *webhook_secret;      /* master secret of the providers' webhook keys */
    const char *gocardless_credentials; /* file of GoCardless's credentials ("": sandbox) */
    const char *stripe_credentials;     /* file of Stripe's credentials ("": sandbox) */
};

/* Fills c from defaults, then `path` (NULL: none), then the environment.
 * Returns 0, or -1 with a message in err. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);

#endif
