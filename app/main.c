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
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
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
 * the bulk commands, whose statements may take long). */
static int
open_db(int statement_limit)
{
    struct db_settings s = {
        cfg.db_host, cfg.db_socket, cfg.db_user, cfg.db_password, cfg.db_name,
        cfg.db_port, cfg.db_timeout, cfg.db_lock_wait, statement_limit,
    };
    return db_open(&s);
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
    struct master_settings ms = {
        fd, cfg.workers, cfg.max_requests, cfg.shutdown_grace, worker_init, worker_fini,
    };
    int rc;
    if (spawned) {
        log_info("main", "spawned mode: serving the socket on fd 0 in pid %d, no master",
                 (int)getpid());
        rc = master_run_single(&ms);
    } else {
        log_info("main", "serving on %s with %d workers",
                 own_socket ? cfg.socket : "the socket from systemd", cfg.workers);
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
    usage();
}
