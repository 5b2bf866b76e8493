/*
 * The master never accepts and never touches the database. It waits for
 * signals synchronously (sigtimedwait on a blocked set), so there are no
 * asynchronous handlers in this process at all. Each worker slot has a
 * MAP_SHARED int where the worker writes the route index it is serving,
 * so a crash can be attributed to a route.
 * master_run_single() is the spawned mode: no master, this process is the
 * one worker, and whoever started it (mod_fcgid, spawn-fcgi) supervises.
 */
#include "master.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fcgi.h"
#include "log.h"
#include "metrics.h"
#include "router.h"

struct slot {
    pid_t  pid;
    time_t started;
};

static volatile sig_atomic_t worker_stop;

static void
worker_on_term(int sig)
{
    (void)sig;
    worker_stop = 1;
    fcgi_shutdown_pending();
}

/* The signals of a forked child (worker or collector): SIGTERM and SIGINT
 * set worker_stop (with sa_flags = flags), SIGCHLD and SIGHUP back to their
 * defaults, nothing blocked. */
static void
child_signals(int flags)
{
    struct sigaction sa;
    sigset_t         none;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_on_term;
    sa.sa_flags = flags;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void
worker_main(const struct master_settings *s, volatile int *route_slot)
{
    /* SA_RESTART: a signal must never cut a read short (libfcgi would hand
     * over a request with half its parameters). A worker blocked in
     * accept is woken by the master's poke connections instead. */
    child_signals(SA_RESTART);

    router_current_route = route_slot;
    *route_slot = -1;
    if (s->worker_init != NULL)
        s->worker_init();
    fcgi_serve(s->listen_fd, &worker_stop, s->max_requests);
    if (s->worker_fini != NULL)
        s->worker_fini();
    _exit(0);
}

/* A background child: SIGTERM sets the flag and, without SA_RESTART,
 * cuts its sleeps short. */
static void
collector_main(const struct master_settings *s)
{
    child_signals(0);
    /* Its own name in ps and /proc/PID/comm: operators (and tests) tell
     * it from the workers. */
    prctl(PR_SET_NAME, "pay-collector", 0, 0, 0);
    if (s->worker_init != NULL)
        s->worker_init();
    s->collector_main(&worker_stop);
    if (s->worker_fini != NULL)
        s->worker_fini();
    _exit(0);
}

static pid_t
spawn(const struct master_settings *s, volatile int *route_slot, int collector)
{
    pid_t pid = fork();
    if (pid == 0 && collector)
        collector_main(s);
    if (pid == 0)
        worker_main(s, route_slot);
    if (pid < 0)
        log_error("master", "fork failed: %s", strerror(errno));
    return pid;
}

static int
live_count(const struct slot *slots, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        k += slots[i].pid > 0;
    return k;
}

int
master_run(const struct master_settings *s)
{
    int           nw = s->workers;
    int           n = s->workers + (s->collector_main ? s->collectors : 0);
    struct slot  *slots = calloc((size_t)n, sizeof(*slots));
    volatile int *routes = mmap(NULL, sizeof(int) * (size_t)n,
                                PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sigset_t      set;
    int           fast_deaths = 0, stopping = 0;
    time_t        stop_deadline = 0;
    unsigned      backoff_ms = 0;

    if (slots == NULL || routes == MAP_FAILED)
        fatal("out of memory");
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);

    for (int i = 0; i < n; i++) {
        routes[i] = -1;
        slots[i].pid = spawn(s, &routes[i], i >= nw);
        slots[i].started = time(NULL);
    }
    log_info("master", "started %d workers and %d collectors", nw, n - nw);

    for (;;) {
        struct timespec tmo = {0, 200 * 1000000L};
        siginfo_t       si;
        int             sig = sigtimedwait(&set, &si, &tmo);

        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                log_info("master", "stopping: letting in-flight requests finish");
                stopping = 1;
                stop_deadline = time(NULL) + s->shutdown_grace;
                for (int i = 0; i < n; i++)
                    if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGTERM);
            }
        }
        /* Reap every dead child. */
        int   status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                int clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                if (!clean && !stopping) {
                    const struct route *rt =
                        routes[i] >= 0 ? router_get((size_t)routes[i]) : NULL;
                    log_error("master", "%s %d died (%s %d) while serving %s",
                              i >= nw ? "collector" : "worker", (int)pid,
                              WIFSIGNALED(status) ? "signal" : "exit",
                              WIFSIGNALED(status) ? WTERMSIG(status)
                                                  : WEXITSTATUS(status),
                              rt ? rt->pattern : "no request");
                    metrics_worker_restart();
                    /* Throttle only what looks like a start-up failure: an
                     * early exit or crash, not a kill from outside. */
                    int killed = WIFSIGNALED(status) &&
                                 (WTERMSIG(status) == SIGKILL || WTERMSIG(status) == SIGTERM);
                    if (!killed && time(NULL) - slots[i].started < 2)
                        fast_deaths++;
                    else
                        fast_deaths = 0;
                }
                routes[i] = -1;
            }
        }
        if (stopping) {
            if (live_count(slots, n) == 0)
                break;
            fcgi_poke(s->listen_fd, live_count(slots, nw));
            if (time(NULL) >= stop_deadline) {
                log_warn("master", "grace period over, killing workers");
                for (int i = 0; i < n; i++)
                    if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGKILL);
                stop_deadline = time(NULL) + 5;
            }
            continue;
        }
        if (fast_deaths >= 10) {
            log_error("master", "workers keep dying at start-up; giving up");
            for (int i = 0; i < n; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGKILL);
            while (wait(NULL) > 0)
                ;
            free(slots);
            munmap((void *)routes, sizeof(int) * (size_t)n);
            return 1;
        }
        /* Respawn empty slots, throttled when workers die young. */
        for (int i = 0; i < n; i++) {
            if (slots[i].pid != 0)
                continue;
            if (fast_deaths > 0) {
                backoff_ms = backoff_ms ? backoff_ms * 2 : 100;
                if (backoff_ms > 2000)
                    backoff_ms = 2000;
                struct timespec d = {backoff_ms / 1000, (backoff_ms % 1000) * 1000000L};
                nanosleep(&d, NULL);
            } else {
                backoff_ms = 0;
            }
            slots[i].pid = spawn(s, &routes[i], i >= nw);
            slots[i].started = time(NULL);
        }
    }
    log_info("master", "stopped");
    free(slots);
    munmap((void *)routes, sizeof(int) * (size_t)n);
    return 0;
}

static volatile int single_route = -1;

int
master_run_single(const struct master_settings *s)
{
    struct sigaction sa;
    sigset_t         none;

    memset(&sa, 0, sizeof(sa));
    /* No SA_RESTART here: nobody pokes the socket for us, so SIGTERM must
     * interrupt the accept itself (FCGI_FAIL_ACCEPT_ON_INTR). SIGTERM is
     * blocked while a request is served; a signal that lands while libfcgi
     * reads a request's parameters drops that request (fcgi_serve). */
    sa.sa_handler = worker_on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);      /* a vanished web server: an error, not death */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    router_current_route = &single_route;
    if (s->worker_init != NULL)
        s->worker_init();
    fcgi_serve(s->listen_fd, &worker_stop, s->max_requests);
    if (s->worker_fini != NULL)
        s->worker_fini();
    log_info("master", "spawned worker stopped");
    return 0;
}
