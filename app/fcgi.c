/*
 * libfcgi glue. Notes on libfcgi 2.4.2 (see DEPS.md): FCGX_Accept_r
 * returns -errno; FCGX_FPrintF is not libc printf, so we only ever use
 * FCGX_PutStr; FCGX_OpenSocket exits on error and unlinks blindly, so we
 * create the socket ourselves; params are valid only until FCGX_Finish_r;
 * nginx must not use fastcgi_keep_conn (a kept connection pins a worker).
 */
#include "fcgi.h"

#include <errno.h>
#include <fcgiapp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "arena.h"
#include "log.h"
#include "router.h"

void
fcgi_init(void)
{
    FCGX_Init();
}

void
fcgi_shutdown_pending(void)
{
    FCGX_ShutdownPending();
}

int
fcgi_inherited_socket(void)
{
    const char *pid = getenv("LISTEN_PID");
    const char *fds = getenv("LISTEN_FDS");
    int         fd = -1;
    if (pid != NULL && fds != NULL && atol(pid) == (long)getpid() &&
        atoi(fds) >= 1)
        fd = 3;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    return fd;
}

int
fcgi_spawned_socket(void)
{
    int       listening = 0;
    socklen_t len = sizeof(listening);
    if (getsockopt(0, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0)
        return -1;                      /* not a socket: /dev/null, a tty */
    return listening ? 0 : -1;
}

int
fcgi_listen_unix(const char *path, int mode, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path)) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* A stale socket file may be replaced; a live one may not. */
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        snprintf(err, errlen, "%s is in use by another running instance", path);
        return -1;
    }
    close(fd);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    mode_t old = umask(0777 & ~(mode_t)mode);
    int    rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc != 0 || chmod(path, (mode_t)mode) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void
fcgi_poke(int listen_fd, int n)
{
    struct sockaddr_un sa;
    socklen_t          len = sizeof(sa);
    memset(&sa, 0, sizeof(sa));
    if (getsockname(listen_fd, (struct sockaddr *)&sa, &len) != 0 ||
        sa.sun_family != AF_UNIX)
        return;
    for (int i = 0; i < n; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return;
        if (connect(fd, (struct sockaddr *)&sa, len) != 0 && errno != EAGAIN) {
            close(fd);
            return;
        }
        close(fd);
    }
}

/* ---- struct req <-> FastCGI request ------------------------------------ */

static const char *
src_env(void *ctx, const char *name)
{
    FCGX_Request *fr = ctx;
    return FCGX_GetParam(name, fr->envp);
}

static long
src_read(void *ctx, char *buf, size_t n)
{
    FCGX_Request *fr = ctx;
    size_t        got = 0;
    while (got < n) {
        size_t want = n - got > 65536 ? 65536 : n - got;
        int    k = FCGX_GetStr(buf + got, (int)want, fr->in);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return (long)got;
}

static int
sink_write(void *ctx, const char *p, size_t n)
{
    FCGX_Request *fr = ctx;
    while (n > 0) {
        int chunk = n > 65536 ? 65536 : (int)n;
        if (FCGX_PutStr(p, chunk, fr->out) != chunk)
            return -1;
        p += chunk;
        n -= (size_t)chunk;
    }
    return 0;
}

void
fcgi_serve(int fd, volatile sig_atomic_t *stop, long max_requests)
{
    FCGX_Request  fr;
    struct arena *a = arena_create(64 * 1024);
    sigset_t      term;
    long          served = 0;

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    if (FCGX_InitRequest(&fr, fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
        fatal("FCGX_InitRequest failed");
    while (!*stop && (max_requests == 0 || served < max_requests)) {
        int rc = FCGX_Accept_r(&fr);
        if (rc < 0) {
            if (rc == -EINTR && !*stop)
                continue;
            if (!*stop)
                log_error("fcgi", "accept failed: %d", rc);
            break;
        }
        /* Let this request finish even if SIGTERM arrives now. */
        sigprocmask(SIG_BLOCK, &term, NULL);
        if (FCGX_GetError(fr.in) != 0) {
            /* A signal interrupted the parameter read inside the accept:
             * libfcgi returns the request with the parameters so far.
             * Never act on a truncated request; nginx answers 502 (JSON
             * 503) and the client retries. */
            log_warn("fcgi", "request parameters cut short (errno %d); dropped",
                     FCGX_GetError(fr.in));
            FCGX_Finish_r(&fr);
            arena_reset(a);
            sigprocmask(SIG_UNBLOCK, &term, NULL);
            continue;
        }
        struct req r;
        req_init(&r, a);
        r.src.env = src_env;
        r.src.read = src_read;
        r.src.ctx = &fr;
        r.out.write = sink_write;
        r.out.ctx = &fr;
        router_dispatch(&r);
        FCGX_Finish_r(&fr);
        arena_reset(a);
        served++;
        sigprocmask(SIG_UNBLOCK, &term, NULL);
    }
    FCGX_Free(&fr, 1);
    arena_destroy(a);
}
