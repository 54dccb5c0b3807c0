/*
 * Logging: levels, sinks (stderr, file with size rotation, syslog), plain
 * (Patroni's line format) or JSON lines.  Logging never blocks the caller:
 * records go into a bounded queue drained by one logger thread; when the
 * queue is full the record is dropped and counted.
 *
 * Before pgkeel_log_start() (and after pgkeel_log_stop()) records are written
 * synchronously to stderr, so configuration errors are visible at once.
 */
#ifndef PGKEEL_LOG_H
#define PGKEEL_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <pgkeel/host.h>

enum pgkeel_log_format {
	PGKEEL_LOG_PLAIN = 0, /* "2026-11-25 21:04:47,207 INFO: message" */
	PGKEEL_LOG_JSON = 1,  /* {"time":"..","level":"INFO","message":".."} per line */
};

struct pgkeel_log_config {
	enum pgkeel_log_level level;  /* records above it are discarded before formatting */
	enum pgkeel_log_format format;
	const char *dateformat;       /* strftime; NULL = Patroni's "%Y-%m-%d %H:%M:%S,mmm" */
	const char *dir;              /* NULL: stderr; else <dir>/pgkeel.log with rotation */
	int file_num;                 /* rotated files kept (Patroni default 4) */
	int64_t file_size;            /* bytes per file (Patroni default 25000000) */
	int max_queue_size;           /* records buffered (Patroni default 1000) */
	const char *syslog_facility;  /* NULL: no syslog; else "daemon", "local0".. */
	const char *ident;            /* syslog ident / JSON "name"; NULL = "pgkeel" */
};

/* Defaults as Patroni's `log:` section. */
void pgkeel_log_config_defaults(struct pgkeel_log_config *c);

/* Map "DEBUG", "INFO", "WARNING"/"WARN", "ERROR", "CRITICAL"/"FATAL" (any case). */
bool pgkeel_log_level_parse(const char *s, enum pgkeel_log_level *out);
const char *pgkeel_log_level_name(enum pgkeel_log_level level);

/* Start the logger thread with this configuration; false + message on error. */
bool pgkeel_log_start(const struct pgkeel_log_config *c, char *err, size_t errlen);
/* Apply a new configuration (SIGHUP); the old one stays on error. */
bool pgkeel_log_reconfigure(const struct pgkeel_log_config *c, char *err, size_t errlen);
/* Drain the queue, stop the thread, go back to synchronous stderr. */
void pgkeel_log_stop(void);

/* Records dropped because the queue was full, since start. */
uint64_t pgkeel_log_dropped(void);

/* The current threshold (cheap; callers may test before building text). */
enum pgkeel_log_level pgkeel_log_threshold(void);

void pgkeel_log(enum pgkeel_log_level level, const char *fmt, ...) PGKEEL_PRINTF(2, 3);
void pgkeel_vlog(enum pgkeel_log_level level, const char *fmt, va_list ap) PGKEEL_PRINTF(2, 0);

#define log_fatal(...) pgkeel_log(PGKEEL_LOG_FATAL, __VA_ARGS__)
#define log_error(...) pgkeel_log(PGKEEL_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) pgkeel_log(PGKEEL_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) pgkeel_log(PGKEEL_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) pgkeel_log(PGKEEL_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                              \
	do {                                                        \
		if (pgkeel_log_threshold() >= PGKEEL_LOG_DEBUG)     \
			pgkeel_log(PGKEEL_LOG_DEBUG, __VA_ARGS__);  \
	} while (0)

#endif
