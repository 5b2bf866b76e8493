/*
 * Log lines go to one fd (stderr or an O_APPEND file shared by all
 * processes). Each line is built in a stack buffer and written with one
 * write(2) so lines from different workers never interleave.
 */
#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int            log_fd = 2;
static enum log_level log_max = LOG_INFO;
static char           log_rid[72];

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int
log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    return -1;
}

int
log_open(const char *path, enum log_level level)
{
    log_max = level;
    if (path == NULL || *path == '\0') {
        log_fd = 2;
        return 0;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    if (log_fd > 2)
        close(log_fd);
    log_fd = fd;
    return 0;
}

void
log_set_request_id(const char *id)
{
    if (id == NULL)
        log_rid[0] = '\0';
    else
        snprintf(log_rid, sizeof(log_rid), "%s", id);
}

static void log_vwrite(const char *level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
log_vwrite(const char *level, const char *module, const char *fmt, va_list ap)
{
    char   msg[1024], line[4200];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);

    struct timespec ts;
    struct tm       tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = strftime(line, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s pay-api[%ld] %s: ",
                          ts.tv_nsec / 1000000, level, (long)getpid(), module);
    if (log_rid[0] != '\0')
        n += (size_t)snprintf(line + n, sizeof(line) - n, "req=%s ", log_rid);
    /* Escape everything that is not printable ASCII. */
    for (const unsigned char *p = (const unsigned char *)msg;
         *p != '\0' && n < sizeof(line) - 6; p++) {
        if (*p >= 0x20 && *p < 0x7f && *p != '\\') {
            line[n++] = (char)*p;
        } else {
            n += (size_t)snprintf(line + n, sizeof(line) - n, "\\x%02x", *p);
        }
    }
    line[n++] = '\n';
    ssize_t w = write(log_fd, line, n);
    (void)w;
}

void
log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
{
    if (lvl > log_max)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level_names[lvl], module, fmt, ap);
    va_end(ap);
}

void
fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vwrite("fatal", "main", fmt, ap);
    va_end(ap);
    if (log_fd != 2) {
        va_start(ap, fmt);
        fprintf(stderr, "pay-api: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
    }
    exit(2);
}
