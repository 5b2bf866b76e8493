/*
 * pay-api: parse arguments and configuration, then run one command.
 *   serve     master + prefork FastCGI workers, or one worker on fd 0
 *             when a web server spawned us (spawned mode)
 *   migrate   apply db/schema migrations
 *   load      load a reference-data JSON document in one transaction
 *   generate  write a large consistent data set (benchmarks)
 *   token     print a signed bearer token
 * Start-up problems (bad config, unreadable keys) exit with status 2.
 */
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "collection.h"
#include "collector.h"
#include "config.h"
#include "db.h"
#include "db_load.h"
#include "pipeline.h"
#include "fcgi.h"
#include "handlers.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "provider.h"
#include "router.h"

static struct config cfg;

static void
usage(void)
{
    fprintf(stderr,
            "usage: pay-api [--config FILE] COMMAND\n"
            "  serve\n"
            "  migrate [SCHEMA_DIR]\n"
            "  load FILE.json\n"
            "  generate --customers N --invoices M [--seed S]\n"
            "  token --sub NAME [--scope \"WORD ...\"]"
            " [--contract-owners 1,2] [--ttl SECONDS]\n"
            "    (default scope: every scope word that does not grant all"
            " contract owners)\n"
            "  attempts list [--status S] [--limit N] | show ID | retry ID | cancel ID\n"
            "           | run [--until-idle SECONDS] [--customers 1,2]  (engine passes here)\n"
            "The config file may also be given as PAY_CONFIG; every key can be\n"
            "overridden by PAY_<KEY> (see systemd/pay-api.conf.example).\n");
    exit(2);
}

static const char *
empty_null(const char *s)
{
    return (s != NULL && *s != '\0') ? s : NULL;
}

static void
init_auth(void)
{
    struct auth_settings s = {
        cfg.jwt_alg, empty_null(cfg.jwt_secret), empty_null(cfg.jwt_secret_file),
        empty_null(cfg.jwt_public_key_file), empty_null(cfg.jwt_private_key_file),
        empty_null(cfg.jwt_issuer), empty_null(cfg.jwt_audience),
        routes_scopes, routes_nscopes,
    };
    char err[256];
    if (auth_init(&s, err, sizeof(err)) != 0)
        fatal("%s", err);
}

/* statement_limit: seconds the server may spend on one statement (0 for
 * the bulk commands, whose statements may take long: a migration over a
 * large ledger runs for minutes, so they also wait up to an hour for an
 * answer instead of the API's read timeout). */
static int
open_db(int statement_limit)
{
    struct db_settings s = {
        cfg.db_host, cfg.db_socket, cfg.db_user, cfg.db_password, cfg.db_name,
        cfg.db_port, statement_limit ? cfg.db_timeout : 3600, cfg.db_lock_wait,
        statement_limit, cfg.db_causal_reads,
    };
    return db_open(&s);
}

static void
configure_engine(void)
{
    struct collector_settings cs = {
        .poll_ms = cfg.collector_poll_ms, .lease_ms = cfg.collector_lease_ms,
        .reconcile_ms = cfg.reconcile_ms, .backoff_ms = 1000, .backoff_max_ms = 60000,
        .max_calls = 8, .refund_expiry_days = cfg.refund_expiry_days,
        .autocollect_every_ms = 1000L * cfg.autocollect_interval,
    };
    collector_configure(&cs);
    provider_sandbox_configure(1, cfg.sandbox_step_ms, cfg.sandbox_ca_file);
    provider_set_public_base_url(cfg.public_base_url); /* where its webhooks go */
    webhooks_configure(cfg.webhook_secret);
}

static void
worker_init(void)
{
    if (open_db(cfg.db_timeout) != 0)
        log_warn("worker", "database not reachable yet; will retry per request");
}

static void
worker_fini(void)
{
    db_close();
}

static int
cmd_serve(void)
{
    init_auth();
    router_init(routes_table, routes_count, &pipeline_hooks);
    provider_set_public_base_url(cfg.public_base_url);
    metrics_init(routes_count);
    mysql_library_init(0, NULL, NULL);
    /* Only against the schema this binary was built for (a binary and a
     * schema of different versions count into rows the other does not
     * read). Not checked when the database cannot be reached now:
     * /readyz says so, and the workers retry. */
    if (open_db(cfg.db_timeout) == 0) {
        char why[256];
        int  schema = db_schema_check(PAY_SCHEMA_LATEST, why, sizeof(why));
        db_close();
        if (schema > 0)
            fatal("database schema: %s", why);
    }
    fcgi_init();
    /* The socket comes from systemd (LISTEN_FDS), else from a web server
     * that spawned us with it on fd 0 (mod_fcgid, spawn-fcgi), else we
     * create cfg.socket ourselves. */
    int  fd = fcgi_inherited_socket();
    int  spawned = fd < 0 && fcgi_spawned_socket() == 0;
    int  own_socket = fd < 0 && !spawned;
    char err[256];
    if (spawned)
        fd = 0;
    if (own_socket && (fd = fcgi_listen_unix(cfg.socket, cfg.socket_mode, err, sizeof(err))) < 0)
        fatal("%s", err);
    configure_engine();
    webhooks_configure(cfg.webhook_secret);
    struct master_settings ms = {
        fd, cfg.workers, cfg.max_requests, cfg.shutdown_grace, worker_init, worker_fini,
        cfg.collectors, collector_run,
    };
    int rc;
    if (spawned) {
        log_info("main", "spawned mode: serving the socket on fd 0 in pid %d, no master",
                 (int)getpid());
        rc = master_run_single(&ms);
    } else {
        log_info("main", "serving on %s with %d workers and %d collectors",
                 own_socket ? cfg.socket : "the socket from systemd", cfg.workers,
                 cfg.collectors);
        rc = master_run(&ms);
    }
    if (!spawned)
        close(fd);
    if (own_socket)
        unlink(cfg.socket); /* a stale socket would look like a live server */
    mysql_library_end();
    return rc;
}

/* The migrations installed with the binary (<datadir>/pay-api/schema);
 * a development build that is not installed falls back to its source
 * tree's db/schema. */
static const char *
default_schema_dir(void)
{
#ifdef PAY_SCHEMA_DIR_SOURCE
    struct stat st;
    if (stat(PAY_SCHEMA_DIR_INSTALLED, &st) != 0 && stat(PAY_SCHEMA_DIR_SOURCE, &st) == 0)
        return PAY_SCHEMA_DIR_SOURCE;
#endif
    return PAY_SCHEMA_DIR_INSTALLED;
}

static int
cmd_migrate(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : getenv("PAY_SCHEMA_DIR");
    if (dir == NULL)
        dir = default_schema_dir();
    if (open_db(0) != 0)
        fatal("cannot connect to the database");
    int rc = db_migrate(dir);
    db_close();
    return rc == 0 ? 0 : 1;
}

static int
cmd_load(int argc, char **argv)
{
    if (argc != 2)
        usage();
    if (open_db(0) != 0)
        fatal("cannot connect to the database");
    int rc = db_load_file(argv[1]);
    db_close();
    return rc == 0 ? 0 : 1;
}

static long
num_arg(const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long n = v ? strtol(v, &end, 10) : 0;
    if (v == NULL || errno || *end != '\0' || n < lo || n > hi)
        fatal("%s must be an integer between %ld and %ld", name, lo, hi);
    return n;
}

static int
cmd_generate(int argc, char **argv)
{
    long customers = 0, invoices = 0, seed = 1;
    for (int i = 1; i < argc; i += 2) { /* a flag and its value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--customers") == 0)
            customers = num_arg("--customers", v, 1, 100000000);
        else if (strcmp(argv[i], "--invoices") == 0)
            invoices = num_arg("--invoices", v, 0, 1000000000);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = num_arg("--seed", v, 0, 1L << 30);
        else
            usage();
    }
    if (customers == 0)
        usage();
    if (open_db(0) != 0)
        fatal("cannot connect to the database");
    int rc = db_generate(customers, invoices, (unsigned)seed);
    db_close();
    return rc == 0 ? 0 : 1;
}

static int
cmd_token(int argc, char **argv)
{
    const char *sub = NULL, *scope = NULL, *owners = NULL;
    long        ttl = 3600;
    for (int i = 1; i < argc; i += 2) { /* a flag and its value */
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (strcmp(argv[i], "--sub") == 0)
            sub = v;
        else if (strcmp(argv[i], "--scope") == 0)
            scope = v;
        else if (strcmp(argv[i], "--contract-owners") == 0)
            owners = v;
        else if (strcmp(argv[i], "--ttl") == 0)
            ttl = num_arg("--ttl", v, 1, 10L * 365 * 86400);
        else
            usage();
    }
    if (sub == NULL)
        usage();
    int64_t ids[AUTH_MAX_OWNERS];
    size_t  n = 0;
    if (owners != NULL && *owners != '\0') {
        char *copy = strdup(owners), *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (n == AUTH_MAX_OWNERS)
                fatal("too many contract owners");
            ids[n++] = num_arg("--contract-owners", t, 1, 1L << 62);
        }
        free(copy);
    }
    char scopes[1024] = "";
    for (size_t k = 0; scope == NULL && k < routes_nscopes; k++) {
        if (!routes_scopes[k].all_owners)
            snprintf(scopes + strlen(scopes), sizeof(scopes) - strlen(scopes), "%s%s",
                     scopes[0] ? " " : "", routes_scopes[k].name);
    }
    if (scope == NULL)
        scope = scopes;
    init_auth();
    char  err[256];
    char *tok = auth_issue(sub, scope, ids, n, ttl, time(NULL), err, sizeof(err));
    if (tok == NULL)
        fatal("%s", err);
    printf("%s\n", tok);
    free(tok);
    return 0;
}

/* pay-api attempts ...: what operators see and steer of the engine. */
static int
cmd_attempts(int argc, char **argv)
{
    if (argc < 2)
        usage();
    if (open_db(cfg.db_timeout) != 0)
        fatal("cannot connect to the database");
    configure_engine();
    struct arena *a = arena_create(1 << 16);
    const char   *sub = argv[1];
    int           rc = 0;
    if (strcmp(sub, "run") == 0) {
        long until = -1;
        for (int i = 2; i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--until-idle") == 0)
                until = num_arg("--until-idle", argv[i + 1], 0, 3600);
            else if (strcmp(argv[i], "--customers") == 0 &&
                     strspn(argv[i + 1], "0123456789,") == strlen(argv[i + 1])) {
                collector_only_customers(argv[i + 1]);
                provider_sandbox_deliver_only(argv[i + 1]);
            }
            else
                usage();
        }
        time_t end = time(NULL) + (until > 0 ? until : 0);
        int    total = 0, n;
        /* Pending mandates first: one that became ACTIVE is collected on. */
        (void)collector_mandates(a, 64);
        (void)collector_autocollect(a);
        if (collector_fold_counts(a) < 0)
            fprintf(stderr, "attempts run: folding the owner counters failed\n");
        do {
            do {
                while ((n = collector_pass(a, 64)) > 0)
                    total += n;
                struct req r;
                req_init(&r, a);
                db_uow_init(&r.db, a);
                int w = n < 0 ? 0 : provider_sandbox_deliver(&r, 64);
                arena_reset(a);
                if (w <= 0)
                    break;
            } while (1);
            if (n < 0) {
                rc = 1;
                break;
            }
            /* With --until-idle: wait while attempts are still expected to
             * become due soon (their provider's next step). */
            struct db_uow u;
            db_uow_init(&u, a);
            /* Attempts due soon, and the sandbox's webhooks about them. */
            struct dbq *q = dbq_new(&u, "SELECT COUNT(*) FROM attempts t WHERE (? = '' OR"
                                        " FIND_IN_SET(t.customer_id, ?)) AND ((t.next_action_at"
                                        " IS NOT NULL AND t.next_action_at < UTC_TIMESTAMP(6)"
                                        " + INTERVAL 30 SECOND) OR EXISTS (SELECT 1 FROM"
                                        " sandbox_webhooks w WHERE w.reference ="
                                        " t.provider_reference AND w.sent_at IS NULL AND"
                                        " w.due_at < UTC_TIMESTAMP(6) + INTERVAL 30 SECOND))");
            const char *only = "";
            for (int i = 2; i + 1 < argc; i += 2)
                if (strcmp(argv[i], "--customers") == 0)
                    only = argv[i + 1];
            dbq_str(q, only);
            dbq_str(q, only);
            int pending = dbq_one(q) == DB_OK ? (int)dbq_col_i64(q, 0) : 0;
            db_uow_reset(&u);
            arena_reset(a);
            if (until <= 0 || pending == 0 || time(NULL) >= end)
                break;
            struct timespec d = {0, 100 * 1000000L};
            nanosleep(&d, NULL);
        } while (1);
        printf("%d\n", total);
    } else if (strcmp(sub, "list") == 0 || strcmp(sub, "show") == 0) {
        const char *status = NULL;
        long        limit = 50, id = 0;
        if (strcmp(sub, "show") == 0) {
            if (argc != 3)
                usage();
            id = num_arg("ID", argv[2], 1, 1L << 62);
        }
        for (int i = 2; strcmp(sub, "list") == 0 && i + 1 < argc; i += 2) {
            if (strcmp(argv[i], "--status") == 0)
                status = argv[i + 1];
            else if (strcmp(argv[i], "--limit") == 0)
                limit = num_arg("--limit", argv[i + 1], 1, 100000);
            else
                usage();
        }
        struct db_uow u;
        db_uow_init(&u, a);
        struct dbq *q = dbq_new(&u,
            "SELECT id, IF(kind = 1, 'collection', 'refund'), customer_id,"
            " COALESCE(CONCAT(IF(invoice_kind = 2, 'adhoc ', 'invoice '), invoice_id), 'account'),"
            " COALESCE(refund_id, ''), COALESCE(provider_id, ''), payment_method, amount,"
            " status, COALESCE(provider_reference, ''), calls,"
            " COALESCE(DATE_FORMAT(next_action_at, '%Y-%m-%dT%H:%i:%sZ'), ''),"
            " COALESCE(error_info, ''), idempotency_key, cancel_requested,"
            " DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ') FROM attempts"
            " WHERE (? = 0 OR id = ?) AND (? IS NULL OR status = ?)"
            " ORDER BY id DESC LIMIT ?");
        dbq_i64(q, id);
        dbq_i64(q, id);
        dbq_str(q, status);
        dbq_str(q, status);
        dbq_i64(q, id ? 1 : limit);
        enum db_rc dr = dbq_exec(q);
        int        rows = 0;
        if (id == 0)
            printf("id\tkind\tcustomer\tfor\tmethod\tamount\tstatus\treference\tcalls"
                   "\tnext_action_at\terror\n");
        while (dr == DB_OK && (dr = dbq_fetch(q)) == DB_OK) {
            rows++;
            if (id == 0) {
                printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dbq_col_str(q, 0),
                       dbq_col_str(q, 1), dbq_col_str(q, 2), dbq_col_str(q, 3),
                       dbq_col_str(q, 6), dbq_col_str(q, 7), dbq_col_str(q, 8),
                       dbq_col_str(q, 9), dbq_col_str(q, 10), dbq_col_str(q, 11),
                       dbq_col_str(q, 12));
                continue;
            }
            static const char *const names[] = {
                "id", "kind", "customer", "for", "refund", "provider", "method",
                "amount (minor units)", "status", "provider reference", "calls",
                "next action at", "error", "idempotency key", "cancel requested", "created at"};
            for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++)
                printf("%-22s %s\n", names[k], dbq_col_str(q, k));
        }
        db_uow_reset(&u);
        if (dr != DB_NOT_FOUND || (id != 0 && rows == 0)) {
            fprintf(stderr, "pay-api: %s\n", rows == 0 && id ? "no such attempt"
                                                           : "database unavailable");
            rc = 1;
        }
    } else if ((strcmp(sub, "retry") == 0 || strcmp(sub, "cancel") == 0) && argc == 3) {
        int64_t id = num_arg("ID", argv[2], 1, 1L << 62);
        int     r = sub[0] == 'r' ? collector_retry(a, id)
                                  : collector_cancel(a, id, "cancelled by an operator");
        if (r != DB_OK) {
            fprintf(stderr, "pay-api: %s\n", r == DB_NOT_FOUND ? "no such attempt"
                                             : r == DB_CONFLICT ? "the provider holds this refund"
                                                                : "database unavailable");
            rc = 1;
        } else {
            printf("attempt %" PRId64 ": %s\n", id, sub[0] == 'r' ? "due now" : "cancel requested");
        }
    } else {
        usage();
    }
    arena_destroy(a);
    db_close();
    return rc;
}

int
main(int argc, char **argv)
{
    const char *path = getenv("PAY_CONFIG");
    int         i = 1;
    if (argc > 2 && strcmp(argv[1], "--config") == 0) {
        path = argv[2];
        i = 3;
    }
    if (i >= argc)
        usage();
    char err[512];
    if (config_load(&cfg, path, err, sizeof(err)) != 0) {
        fprintf(stderr, "pay-api: %s\n", err);
        return 2;
    }
    /* The providers' credentials: read once, here; a bad file stops the start. */
    const char *cred_files[][2] = {{"gocardless", cfg.gocardless_credentials},
                                   {"stripe", cfg.stripe_credentials}};
    for (size_t k = 0; k < 2; k++)
        if (*cred_files[k][1] &&
            provider_credentials_load(cred_files[k][0], cred_files[k][1], err,
                                      sizeof(err)) != 0) {
            fprintf(stderr, "pay-api: %s\n", err);
            return 2;
        }
    const char *cmd = argv[i];
    if (strcmp(cmd, "serve") == 0 &&
        log_open(cfg.log_file, (enum log_level)log_level_parse(cfg.log_level)) != 0) {
        fprintf(stderr, "pay-api: cannot open log_file %s: %s\n", cfg.log_file,
                strerror(errno));
        return 2;
    }
    argc -= i;
    argv += i;
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve();
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc, argv);
    if (strcmp(cmd, "load") == 0)
        return cmd_load(argc, argv);
    if (strcmp(cmd, "generate") == 0)
        return cmd_generate(argc, argv);
    if (strcmp(cmd, "token") == 0)
        return cmd_token(argc, argv);
    if (strcmp(cmd, "attempts") == 0)
        return cmd_attempts(argc, argv);
    usage();
}
