/*
 * Logging: one line per event, "ts level pay-api[pid] module: req=ID text".
 * Messages are escaped before writing (control bytes and non-ASCII become
 * \xNN), so client data can never forge or break log lines.
 */
#ifndef PAY_APP_LOG_H
#define PAY_APP_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* Opens the log (path NULL or "" = stderr). Returns 0 or -1. */
int log_open(const char *path, enum log_level level);
/* Parses "error|warn|info|debug"; -1 if unknown. */
int log_level_parse(const char *s);
/* Sets the request id printed on following lines (NULL clears it). */
void log_set_request_id(const char *id);
void log_msg(enum log_level lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...)  log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...)  log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...) log_msg(LOG_DEBUG, mod, __VA_ARGS__)

/* Logs and exits with status 2 (start-up errors only). */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
