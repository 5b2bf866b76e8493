/*
 * Prefork process model. The master owns the listening socket, forks the
 * workers, respawns those that die (throttled; logging the route a dead
 * worker was serving) and on SIGTERM/SIGINT stops them gracefully.
 */
#ifndef PAY_APP_MASTER_H
#define PAY_APP_MASTER_H

#include <signal.h>

struct master_settings {
    int  listen_fd;
    int  workers;
    long max_requests;    /* per worker before recycling; 0 = never */
    int  shutdown_grace;  /* seconds before SIGKILL at stop */
    void (*worker_init)(void); /* runs in each worker after fork (DB connect) */
    void (*worker_fini)(void); /* runs in each worker before exit */
    /* Background children (the collection engine), respawned like workers;
     * 0 = none. Each runs worker_init, then main until *stop, then
     * worker_fini. */
    int  collectors;
    void (*collector_main)(volatile sig_atomic_t *stop);
};

/* Runs until stopped; returns the process exit status (0 after a clean
 * stop, 1 when workers keep dying at start-up). */
int master_run(const struct master_settings *s);

/* Spawned mode: serves listen_fd in this very process, one request at a
 * time, without a master (the web server or spawn-fcgi that started us
 * owns the process count and the restarts; workers is ignored). Returns
 * the exit status after SIGTERM/SIGINT or max_requests. */
int master_run_single(const struct master_settings *s);

#endif
