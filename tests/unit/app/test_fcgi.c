/*
 * fcgi_spawned_socket: spawned mode is chosen only when fd 0 is a listening
 * socket (what mod_fcgid and spawn-fcgi hand over), never for /dev/null (the
 * stdin of systemd and tests/stack.sh), a pipe, or a connected socket.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "fcgi.h"
#include "test.h"

static void
as_stdin(int fd)
{
    dup2(fd, 0);
    close(fd);
}

int
main(void)
{
    int saved = dup(0);

    as_stdin(open("/dev/null", O_RDONLY));
    CHECK(fcgi_spawned_socket() == -1, "/dev/null on fd 0 is not spawned mode");

    int p[2];
    if (pipe(p) == 0) {
        as_stdin(p[0]);
        close(p[1]);
        CHECK(fcgi_spawned_socket() == -1, "a pipe on fd 0 is not spawned mode");
    }

    int sp[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0) {
        as_stdin(sp[0]);
        close(sp[1]);
        CHECK(fcgi_spawned_socket() == -1, "a connected socket on fd 0 is not spawned mode");
    }

    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    CHECK(s >= 0, "socket");
    as_stdin(s);
    CHECK(fcgi_spawned_socket() == -1, "an unbound, not listening socket is not spawned mode");

    char path[] = "/tmp/pay-test-fcgi-XXXXXX";
    int  tmp = mkstemp(path);
    CHECK(tmp >= 0, "mkstemp");
    close(tmp);
    unlink(path);
    char err[256];
    int  l = fcgi_listen_unix(path, 0600, err, sizeof(err));
    CHECK(l >= 0, "fcgi_listen_unix: %s", err);
    if (l >= 0) {
        as_stdin(l);
        CHECK(fcgi_spawned_socket() == 0, "a listening socket on fd 0 is spawned mode");
        unlink(path);
    }

    dup2(saved, 0);
    close(saved);
    return TEST_DONE();
}
