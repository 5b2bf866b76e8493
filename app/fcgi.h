/*
 * The FastCGI adapter: the only file that includes fcgiapp.h. Opens or
 * inherits the listening socket and runs a worker's accept loop, turning
 * each FastCGI request into a struct req for router_dispatch().
 */
#ifndef PAY_APP_FCGI_H
#define PAY_APP_FCGI_H

#include <signal.h>

/* Call once in the master before forking. */
void fcgi_init(void);
/* The socket passed by systemd (LISTEN_FDS/LISTEN_PID), or -1. Clears
 * the variables so children do not see them. */
int fcgi_inherited_socket(void);
/* 0 when fd 0 is a listening socket, i.e. a web server (mod_fcgid,
 * spawn-fcgi) started this process the FastCGI way with the socket as
 * stdin (the test of libfcgi's FCGX_IsCGI); -1 otherwise. */
int fcgi_spawned_socket(void);
/* Creates a listening unix socket at path with this mode. Refuses to
 * replace a socket another live process is serving. -1 with err set. */
int fcgi_listen_unix(const char *path, int mode, char *err, size_t errlen);

/* Accept loop of one worker: serves requests on fd until *stop is set or
 * max_requests (0 = unlimited) were served. Blocks SIGTERM/SIGINT while a
 * request is being served so it completes. */
void fcgi_serve(int fd, volatile sig_atomic_t *stop, long max_requests);
/* Tells libfcgi to stop accepting (from a signal handler). */
void fcgi_shutdown_pending(void);
/* Connects to the listening socket n times and hangs up at once: each
 * empty connection wakes one worker blocked in accept, which then sees
 * the shutdown flag. Used instead of interrupting workers with signals,
 * which would cut a request's parameter read short. */
void fcgi_poke(int listen_fd, int n);

#endif
