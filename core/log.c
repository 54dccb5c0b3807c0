/*
 * Logging: a bounded queue drained by one logger thread.
 *
 * Producers (any thread) test the threshold, format the message into a
 * bounded buffer, copy it to the heap and append it to the ring under a
 * mutex held only for the append; they never touch a file descriptor while
 * the logger thread runs.  The logger thread owns the active sink (stderr or
 * the rotating file, plus syslog) and is the only one writing to it.
 *
 * Configuration changes travel as "pending" sinks, a FIFO list where each
 * sink is tagged with the sequence number of the first record it applies to:
 * every record is written with the sink configured when it was enqueued,
 * however far behind the thread is.  The caller of start/reconfigure opens
 * and validates the new sink, so a bad configuration never reaches the
 * thread and the old one stays in force.
 *
 * Start/reconfigure/stop are meant to be called from one control thread
 * (main); pgkeel_log() and friends from anywhere.
 */
#include "autoconf.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

/* Longest message kept, terminator included; longer ones end with the marker. */
#define LOG_MSG_MAX 4096
#define LOG_TRUNC_MARKER "... [truncated]"
#define LOG_FILE_NAME "pgkeel.log"
#define LOG_DEFAULT_IDENT "pgkeel"
#define LOG_TIME_MAX 256

struct log_record {
	enum pgkeel_log_level level;
	struct timespec ts; /* CLOCK_REALTIME at the pgkeel_log() call */
	char *msg;
};

/* One configuration as the logger thread uses it; only the I/O state changes once active. */
struct log_sink {
	enum pgkeel_log_format format;
	char *dateformat; /* NULL: Patroni's default rendering */
	char *ident;
	char *path;       /* NULL: stderr */
	int fd;           /* -1 with stderr */
	int64_t size;     /* bytes in path, refreshed on activation */
	int file_num;
	int64_t file_size;
	bool use_syslog;
	int facility;
	bool syslog_open;
	bool io_error;    /* an I/O error was reported; cleared by the next success */
	uint64_t seq;     /* while pending: number of the first record it applies to */
	struct log_sink *next; /* while pending: the next configuration */
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool thread_alive; /* a logger thread exists (or is being created) */
	bool running;      /* producers enqueue instead of writing to stderr */
	bool stopping;     /* drain and exit */
	bool paused;       /* test hook: the thread does not dequeue */
	struct log_record *ring;
	size_t ring_cap;
	size_t head;
	size_t count;
	size_t limit; /* max_queue_size; may be below ring_cap after a shrink */
	uint64_t pushed;
	uint64_t popped;
	struct log_sink *pending; /* FIFO of configurations not yet activated */
	uint64_t dropped_reported;
} log_state = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
};

static atomic_int log_threshold = PGKEEL_LOG_INFO;
static _Atomic uint64_t log_dropped;

static const struct {
	const char *name;
	enum pgkeel_log_level level;
} level_aliases[] = {
	{ "DEBUG", PGKEEL_LOG_DEBUG },	   { "INFO", PGKEEL_LOG_INFO },
	{ "WARNING", PGKEEL_LOG_WARNING }, { "WARN", PGKEEL_LOG_WARNING },
	{ "ERROR", PGKEEL_LOG_ERROR },	   { "CRITICAL", PGKEEL_LOG_FATAL },
	{ "FATAL", PGKEEL_LOG_FATAL },
};

static const struct {
	const char *name;
	int facility;
} facilities[] = {
	{ "daemon", LOG_DAEMON }, { "user", LOG_USER },	  { "local0", LOG_LOCAL0 },
	{ "local1", LOG_LOCAL1 }, { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
	{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 }, { "local6", LOG_LOCAL6 },
	{ "local7", LOG_LOCAL7 },
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	/* A truncated error message is still the best we have. */
	(void)pgkeel_vfmt(err, errlen, fmt, ap);
	va_end(ap);
}

void pgkeel_log_config_defaults(struct pgkeel_log_config *c)
{
	memset(c, 0, sizeof(*c));
	c->level = PGKEEL_LOG_INFO;
	c->format = PGKEEL_LOG_PLAIN;
	c->dateformat = NULL;
	c->dir = NULL;
	c->file_num = 4;
	c->file_size = 25000000;
	c->max_queue_size = 1000;
	c->syslog_facility = NULL;
	c->ident = NULL;
}

bool pgkeel_log_level_parse(const char *s, enum pgkeel_log_level *out)
{
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; i < PGKEEL_ARRAY_LEN(level_aliases); i++) {
		if (strcasecmp(s, level_aliases[i].name) == 0) {
			*out = level_aliases[i].level;
			return true;
		}
	}
	return false;
}

/* The name printed in log lines, as Python's logging spells it. */
const char *pgkeel_log_level_name(enum pgkeel_log_level level)
{
	switch (level) {
	case PGKEEL_LOG_FATAL:
		return "CRITICAL";
	case PGKEEL_LOG_ERROR:
		return "ERROR";
	case PGKEEL_LOG_WARNING:
		return "WARNING";
	case PGKEEL_LOG_NOTICE: /* Python has no NOTICE; keep Patroni parsers happy */
	case PGKEEL_LOG_INFO:
		return "INFO";
	case PGKEEL_LOG_DEBUG:
		return "DEBUG";
	}
	return "UNKNOWN";
}

enum pgkeel_log_level pgkeel_log_threshold(void)
{
	return (enum pgkeel_log_level)atomic_load_explicit(&log_threshold, memory_order_relaxed);
}

uint64_t pgkeel_log_dropped(void)
{
	return atomic_load_explicit(&log_dropped, memory_order_relaxed);
}

static int syslog_priority(enum pgkeel_log_level level)
{
	switch (level) {
	case PGKEEL_LOG_FATAL:
		return LOG_CRIT;
	case PGKEEL_LOG_ERROR:
		return LOG_ERR;
	case PGKEEL_LOG_WARNING:
		return LOG_WARNING;
	case PGKEEL_LOG_NOTICE:
		return LOG_NOTICE;
	case PGKEEL_LOG_INFO:
		return LOG_INFO;
	case PGKEEL_LOG_DEBUG:
		return LOG_DEBUG;
	}
	return LOG_INFO;
}

static bool facility_parse(const char *s, int *out)
{
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(facilities); i++) {
		if (strcasecmp(s, facilities[i].name) == 0) {
			*out = facilities[i].facility;
			return true;
		}
	}
	return false;
}

/*
 * Time rendering.  With a dateformat, strftime() alone as Python's
 * formatTime(datefmt) does (no milliseconds); otherwise Patroni's
 * "YYYY-MM-DD HH:MM:SS,mmm" or, for JSON, ISO 8601 with ms and offset.
 */
static void format_time(const char *dateformat, enum pgkeel_log_format format,
			const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;
	time_t sec = ts->tv_sec;
	long ms = ts->tv_nsec / 1000000;
	size_t n;

	buf[0] = '\0';
	if (localtime_r(&sec, &tm) == NULL)
		return;
	if (dateformat != NULL) {
		/* The operator's log.dateformat: a runtime format by design. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		if (strftime(buf, len, dateformat, &tm) == 0)
			buf[0] = '\0';
#pragma GCC diagnostic pop
		return;
	}
	if (format == PGKEEL_LOG_JSON) {
		long off = tm.tm_gmtoff;
		char sign = off < 0 ? '-' : '+';

		if (off < 0)
			off = -off;
		n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
		if (n == 0 || !pgkeel_fmt(buf + n, len - n, ".%03ld%c%02ld:%02ld", ms, sign,
					  off / 3600, (off % 3600) / 60))
			buf[0] = '\0';
		return;
	}
	n = strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
	if (n == 0 || !pgkeel_fmt(buf + n, len - n, ",%03ld", ms))
		buf[0] = '\0';
}

/* writev() the whole vector, resuming after short writes and EINTR. */
static bool write_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n == -1) {
			if (errno == EINTR)
				continue;
			return false;
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return true;
}

/* The synchronous path (no thread, or reporting the logger's own I/O errors). */
static void write_plain_stderr(enum pgkeel_log_level level, const struct timespec *ts,
			       const char *msg)
{
	char when[LOG_TIME_MAX];
	char prefix[LOG_TIME_MAX + 32];
	struct iovec iov[3];

	format_time(NULL, PGKEEL_LOG_PLAIN, ts, when, sizeof(when));
	/* when is bounded well below prefix's size */
	(void)pgkeel_fmt(prefix, sizeof(prefix), "%s %s: ", when, pgkeel_log_level_name(level));
	iov[0].iov_base = prefix;
	iov[0].iov_len = strlen(prefix);
	iov[1].iov_base = (void *)(uintptr_t)msg;
	iov[1].iov_len = strlen(msg);
	iov[2].iov_base = (void *)(uintptr_t)"\n";
	iov[2].iov_len = 1;
	/* Nowhere left to report a failing stderr. */
	(void)write_all(STDERR_FILENO, iov, 3);
}

static void report_io_error(struct log_sink *s, const char *what)
{
	struct timespec now;
	char msg[PATH_MAX + 128];
	int saved = errno;

	if (s->io_error)
		return;
	s->io_error = true;
	clock_gettime(CLOCK_REALTIME, &now);
	errno = saved;
	if (!pgkeel_fmt(msg, sizeof(msg), "log: cannot %s \"%s\": %m", what, s->path))
		(void)pgkeel_fmt(msg, sizeof(msg), "log: cannot %s the log file: %m", what);
	write_plain_stderr(PGKEEL_LOG_ERROR, &now, msg);
}

static void sink_free(struct log_sink *s)
{
	if (s == NULL)
		return;
	if (s->syslog_open)
		closelog();
	if (s->fd != -1)
		close(s->fd);
	free(s->dateformat);
	free(s->ident);
	free(s->path);
	free(s);
}

/* Make s the thread's sink: refresh the file size, open syslog. */
static void sink_activate(struct log_sink *s)
{
	struct stat st;

	if (s->fd != -1)
		s->size = fstat(s->fd, &st) == 0 ? (int64_t)st.st_size : 0;
	if (s->use_syslog) {
		openlog(s->ident, LOG_PID, s->facility);
		s->syslog_open = true;
	}
}

static bool rotated_name(const struct log_sink *s, int n, char *buf, size_t len)
{
	return pgkeel_fmt(buf, len, "%s.%d", s->path, n);
}

/*
 * As Python's RotatingFileHandler: pgkeel.log.(N-1) -> .N ... pgkeel.log ->
 * .1, then a fresh pgkeel.log.  With file_num 0 the file is truncated instead
 * (Python would let it grow for ever).
 */
static void sink_rotate(struct log_sink *s)
{
	char from[PATH_MAX];
	char to[PATH_MAX];
	int i;
	int fd;

	if (s->file_num <= 0) {
		if (ftruncate(s->fd, 0) == -1) {
			report_io_error(s, "truncate");
			return;
		}
		s->size = 0;
		return;
	}
	for (i = s->file_num - 1; i >= 1; i--) {
		if (!rotated_name(s, i, from, sizeof(from)) ||
		    !rotated_name(s, i + 1, to, sizeof(to))) {
			errno = ENAMETOOLONG;
			report_io_error(s, "rotate");
			return;
		}
		if (rename(from, to) == -1 && errno != ENOENT) {
			report_io_error(s, "rotate");
			return;
		}
	}
	if (!rotated_name(s, 1, to, sizeof(to))) {
		errno = ENAMETOOLONG;
		report_io_error(s, "rotate");
		return;
	}
	if (rename(s->path, to) == -1 && errno != ENOENT) {
		report_io_error(s, "rotate");
		return;
	}
	fd = open(s->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (fd == -1) {
		/* Keep appending to the renamed file rather than losing records. */
		report_io_error(s, "reopen");
		return;
	}
	close(s->fd);
	s->fd = fd;
	s->size = 0;
}

static void sink_write(struct log_sink *s, struct iovec *iov, int iovcnt, size_t total,
		       enum pgkeel_log_level level, const struct timespec *ts, const char *msg)
{
	struct stat st;

	if (s->fd == -1) {
		(void)write_all(STDERR_FILENO, iov, iovcnt);
		return;
	}
	if (s->file_size > 0 && s->size > 0 && s->size + (int64_t)total > s->file_size)
		sink_rotate(s);
	if (!write_all(s->fd, iov, iovcnt)) {
		report_io_error(s, "write to");
		write_plain_stderr(level, ts, msg);
		s->size = fstat(s->fd, &st) == 0 ? (int64_t)st.st_size : s->size;
		return;
	}
	s->io_error = false;
	s->size += (int64_t)total;
}

static void sink_emit(struct log_sink *s, enum pgkeel_log_level level, const struct timespec *ts,
		      const char *msg)
{
	char when[LOG_TIME_MAX];
	char prefix[LOG_TIME_MAX + 32];
	struct iovec iov[3];
	const char *level_name = pgkeel_log_level_name(level);

	format_time(s->dateformat, s->format, ts, when, sizeof(when));
	if (s->format == PGKEEL_LOG_JSON) {
		struct json_object *obj = json_object_new_object();
		const char *text;

		if (obj == NULL)
			return;
		json_object_object_add(obj, "time", json_object_new_string(when));
		json_object_object_add(obj, "level", json_object_new_string(level_name));
		json_object_object_add(obj, "name", json_object_new_string(s->ident));
		json_object_object_add(obj, "message", json_object_new_string(msg));
		text = json_object_to_json_string_ext(
			obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (text != NULL) {
			iov[0].iov_base = (void *)(uintptr_t)text;
			iov[0].iov_len = strlen(text);
			iov[1].iov_base = (void *)(uintptr_t)"\n";
			iov[1].iov_len = 1;
			sink_write(s, iov, 2, iov[0].iov_len + 1, level, ts, msg);
		}
		json_object_put(obj);
	} else {
		(void)pgkeel_fmt(prefix, sizeof(prefix), "%s %s: ", when, level_name);
		iov[0].iov_base = prefix;
		iov[0].iov_len = strlen(prefix);
		iov[1].iov_base = (void *)(uintptr_t)msg;
		iov[1].iov_len = strlen(msg);
		iov[2].iov_base = (void *)(uintptr_t)"\n";
		iov[2].iov_len = 1;
		sink_write(s, iov, 3, iov[0].iov_len + iov[1].iov_len + 1, level, ts, msg);
	}
	if (s->syslog_open)
		syslog(syslog_priority(level), "%s", msg);
}

static void emit_dropped(struct log_sink *s, uint64_t n)
{
	struct timespec now;
	char msg[64];

	if (pgkeel_log_threshold() < PGKEEL_LOG_WARNING)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	(void)pgkeel_fmt(msg, sizeof(msg), "%llu log records dropped (queue full)",
			 (unsigned long long)n);
	sink_emit(s, PGKEEL_LOG_WARNING, &now, msg);
}

static void *log_thread_main(void *arg)
{
	struct log_sink *sink = NULL;

	(void)arg;
	pthread_mutex_lock(&log_state.lock);
	for (;;) {
		uint64_t dropped;

		while (!log_state.stopping &&
		       (log_state.paused ||
			(log_state.count == 0 && log_state.pending == NULL &&
			 pgkeel_log_dropped() == log_state.dropped_reported)))
			pthread_cond_wait(&log_state.wake, &log_state.lock);

		if (log_state.pending != NULL && log_state.popped >= log_state.pending->seq) {
			struct log_sink *next = log_state.pending;

			log_state.pending = next->next;
			next->next = NULL;
			pthread_mutex_unlock(&log_state.lock);
			sink_free(sink);
			sink = next;
			sink_activate(sink);
			pthread_mutex_lock(&log_state.lock);
			continue;
		}
		if (log_state.count > 0) {
			struct log_record rec = log_state.ring[log_state.head];

			log_state.ring[log_state.head].msg = NULL;
			log_state.head = (log_state.head + 1) % log_state.ring_cap;
			log_state.count--;
			log_state.popped++;
			pthread_mutex_unlock(&log_state.lock);
			if (sink != NULL) /* always set: the first sink applies from record 0 */
				sink_emit(sink, rec.level, &rec.ts, rec.msg);
			else
				write_plain_stderr(rec.level, &rec.ts, rec.msg);
			free(rec.msg);
			pthread_mutex_lock(&log_state.lock);
			continue;
		}
		/* Caught up: say how much was lost meanwhile. */
		dropped = pgkeel_log_dropped();
		if (dropped != log_state.dropped_reported) {
			uint64_t n = dropped - log_state.dropped_reported;

			log_state.dropped_reported = dropped;
			pthread_mutex_unlock(&log_state.lock);
			if (sink != NULL)
				emit_dropped(sink, n);
			pthread_mutex_lock(&log_state.lock);
			continue;
		}
		if (log_state.stopping)
			break;
	}
	pthread_mutex_unlock(&log_state.lock);
	sink_free(sink);
	return NULL;
}

static bool config_check(const struct pgkeel_log_config *c, int *facility, char *err,
			 size_t errlen)
{
	if ((int)c->level < PGKEEL_LOG_FATAL || (int)c->level > PGKEEL_LOG_DEBUG) {
		set_err(err, errlen, "log.level: invalid level %d", (int)c->level);
		return false;
	}
	if (c->format != PGKEEL_LOG_PLAIN && c->format != PGKEEL_LOG_JSON) {
		set_err(err, errlen, "log.type: invalid format %d", (int)c->format);
		return false;
	}
	if (c->file_num < 0) {
		set_err(err, errlen, "log.file_num: must be >= 0, got %d", c->file_num);
		return false;
	}
	if (c->file_size < 0) {
		set_err(err, errlen, "log.file_size: must be >= 0, got %lld",
			(long long)c->file_size);
		return false;
	}
	if (c->max_queue_size < 1) {
		set_err(err, errlen, "log.max_queue_size: must be >= 1, got %d",
			c->max_queue_size);
		return false;
	}
	if (c->dir != NULL && c->dir[0] == '\0') {
		set_err(err, errlen, "log.dir: empty directory name");
		return false;
	}
	*facility = LOG_USER;
	if (c->syslog_facility != NULL && !facility_parse(c->syslog_facility, facility)) {
		set_err(err, errlen,
			"log.syslog: unknown facility \"%s\" "
			"(expected daemon, user or local0..local7)",
			c->syslog_facility);
		return false;
	}
	return true;
}

/* Validate c and open its file: the thread only ever receives a usable sink. */
static bool sink_create(const struct pgkeel_log_config *c, struct log_sink **out, char *err,
			size_t errlen)
{
	struct log_sink *s;
	int facility;
	char path[PATH_MAX];

	if (!config_check(c, &facility, err, errlen))
		return false;
	s = pgkeel_xcalloc(1, sizeof(*s));
	s->fd = -1;
	s->format = c->format;
	s->dateformat = c->dateformat != NULL ? pgkeel_strdup(c->dateformat) : NULL;
	s->ident = pgkeel_strdup(c->ident != NULL ? c->ident : LOG_DEFAULT_IDENT);
	s->file_num = c->file_num;
	s->file_size = c->file_size;
	s->use_syslog = c->syslog_facility != NULL;
	s->facility = facility;
	if (c->dir != NULL) {
		char rotated[PATH_MAX];

		/* The longest rotated name must fit too, or rotation would fail later. */
		if (!pgkeel_fmt(path, sizeof(path), "%s/%s", c->dir, LOG_FILE_NAME) ||
		    !pgkeel_fmt(rotated, sizeof(rotated), "%s.%d", path, c->file_num)) {
			set_err(err, errlen, "log.dir: path too long: \"%s\"", c->dir);
			sink_free(s);
			return false;
		}
		s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
		if (s->fd == -1) {
			set_err(err, errlen, "log.dir: cannot open log file \"%s\": %m", path);
			sink_free(s);
			return false;
		}
		s->path = pgkeel_strdup(path);
	}
	*out = s;
	return true;
}

/* Resize the ring to hold max(limit, queued) records; called with the lock held. */
static bool ring_resize_locked(size_t limit)
{
	size_t need = limit > log_state.count ? limit : log_state.count;
	struct log_record *ring;
	size_t i;

	if (need == log_state.ring_cap && log_state.ring != NULL) {
		log_state.limit = limit;
		return true;
	}
	ring = calloc(need, sizeof(*ring));
	if (ring == NULL)
		return false;
	for (i = 0; i < log_state.count; i++)
		ring[i] = log_state.ring[(log_state.head + i) % log_state.ring_cap];
	free(log_state.ring);
	log_state.ring = ring;
	log_state.ring_cap = need;
	log_state.head = 0;
	log_state.limit = limit;
	return true;
}

bool pgkeel_log_start(const struct pgkeel_log_config *c, char *err, size_t errlen)
{
	struct log_sink *sink = NULL;
	sigset_t all;
	sigset_t old;
	int rc;

	if (!sink_create(c, &sink, err, errlen))
		return false;

	pthread_mutex_lock(&log_state.lock);
	if (log_state.thread_alive) {
		pthread_mutex_unlock(&log_state.lock);
		sink_free(sink);
		set_err(err, errlen, "log: the logger is already running");
		return false;
	}
	if (!ring_resize_locked((size_t)c->max_queue_size)) {
		pthread_mutex_unlock(&log_state.lock);
		sink_free(sink);
		set_err(err, errlen, "log.max_queue_size: cannot allocate a queue of %d records",
			c->max_queue_size);
		return false;
	}
	log_state.thread_alive = true;
	log_state.stopping = false;
	log_state.pushed = 0;
	log_state.popped = 0;
	sink->seq = 0;
	sink->next = NULL;
	log_state.pending = sink;
	log_state.dropped_reported = 0;
	atomic_store_explicit(&log_dropped, 0, memory_order_relaxed);
	pthread_mutex_unlock(&log_state.lock);

	tzset();
	/* Signals are for the main loop: the logger thread never takes one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&log_state.thread, NULL, log_thread_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	pthread_mutex_lock(&log_state.lock);
	if (rc != 0) {
		log_state.pending = NULL;
		log_state.thread_alive = false;
		pthread_mutex_unlock(&log_state.lock);
		sink_free(sink);
		errno = rc;
		set_err(err, errlen, "log: cannot start the logger thread: %m");
		return false;
	}
	log_state.running = true;
	atomic_store_explicit(&log_threshold, (int)c->level, memory_order_relaxed);
	pthread_mutex_unlock(&log_state.lock);
	return true;
}

/*
 * Queue sink for the records enqueued from now on.  A pending sink that no
 * record will ever use (nothing was enqueued since it was queued) is taken
 * out and returned for the caller to free outside the lock.
 */
static struct log_sink *pending_append_locked(struct log_sink *sink)
{
	struct log_sink **link = &log_state.pending;
	struct log_sink *stale = NULL;

	sink->seq = log_state.pushed;
	sink->next = NULL;
	while (*link != NULL && (*link)->next != NULL)
		link = &(*link)->next;
	if (*link != NULL && (*link)->seq == sink->seq) {
		stale = *link;
		*link = sink;
	} else if (*link != NULL) {
		(*link)->next = sink;
	} else {
		*link = sink;
	}
	return stale;
}

bool pgkeel_log_reconfigure(const struct pgkeel_log_config *c, char *err, size_t errlen)
{
	struct log_sink *sink = NULL;
	struct log_sink *stale;

	if (!sink_create(c, &sink, err, errlen))
		return false;

	pthread_mutex_lock(&log_state.lock);
	if (!log_state.running) {
		pthread_mutex_unlock(&log_state.lock);
		sink_free(sink);
		set_err(err, errlen, "log: the logger is not running");
		return false;
	}
	if (!ring_resize_locked((size_t)c->max_queue_size)) {
		pthread_mutex_unlock(&log_state.lock);
		sink_free(sink);
		set_err(err, errlen, "log.max_queue_size: cannot allocate a queue of %d records",
			c->max_queue_size);
		return false;
	}
	stale = pending_append_locked(sink);
	atomic_store_explicit(&log_threshold, (int)c->level, memory_order_relaxed);
	pthread_cond_signal(&log_state.wake);
	pthread_mutex_unlock(&log_state.lock);
	sink_free(stale);
	return true;
}

void pgkeel_log_stop(void)
{
	pthread_mutex_lock(&log_state.lock);
	if (!log_state.thread_alive || log_state.stopping) {
		pthread_mutex_unlock(&log_state.lock);
		return;
	}
	log_state.running = false;
	log_state.stopping = true;
	pthread_cond_signal(&log_state.wake);
	pthread_mutex_unlock(&log_state.lock);

	pthread_join(log_state.thread, NULL);

	pthread_mutex_lock(&log_state.lock);
	free(log_state.ring);
	log_state.ring = NULL;
	log_state.ring_cap = 0;
	log_state.head = 0;
	log_state.count = 0;
	log_state.limit = 0;
	log_state.stopping = false;
	log_state.paused = false;
	log_state.thread_alive = false;
	pthread_mutex_unlock(&log_state.lock);
}

/* Test-only: hold the logger thread so the queue fills deterministically. */
void pgkeel_log_test_pause(bool paused);

void pgkeel_log_test_pause(bool paused)
{
	pthread_mutex_lock(&log_state.lock);
	log_state.paused = paused;
	pthread_cond_signal(&log_state.wake);
	pthread_mutex_unlock(&log_state.lock);
}

static void format_message(char *buf, size_t len, const char *fmt, va_list ap)
	PGKEEL_PRINTF(3, 0);

static void format_message(char *buf, size_t len, const char *fmt, va_list ap)
{
	static const char marker[] = LOG_TRUNC_MARKER;
	int n = vsnprintf(buf, len, fmt, ap);
	size_t keep;

	if (n < 0) {
		(void)pgkeel_fmt(buf, len, "(unformattable log message: \"%s\")", fmt);
		return;
	}
	if ((size_t)n < len)
		return;
	/* Do not split a UTF-8 sequence: JSON consumers choke on the half. */
	keep = len - sizeof(marker);
	while (keep > 0 && ((unsigned char)buf[keep] & 0xC0) == 0x80)
		keep--;
	memcpy(buf + keep, marker, sizeof(marker));
}

void pgkeel_vlog(enum pgkeel_log_level level, const char *fmt, va_list ap)
{
	int saved_errno = errno;
	struct timespec ts;
	char buf[LOG_MSG_MAX];
	struct log_record *rec;
	char *msg;

	if ((int)level < PGKEEL_LOG_FATAL)
		level = PGKEEL_LOG_FATAL;
	if ((int)level > atomic_load_explicit(&log_threshold, memory_order_relaxed))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	errno = saved_errno; /* for %m */
	format_message(buf, sizeof(buf), fmt, ap);
	msg = strdup(buf);

	pthread_mutex_lock(&log_state.lock);
	if (!log_state.running) {
		pthread_mutex_unlock(&log_state.lock);
		free(msg);
		write_plain_stderr(level, &ts, buf);
		errno = saved_errno;
		return;
	}
	if (msg == NULL || log_state.count >= log_state.limit) {
		atomic_fetch_add_explicit(&log_dropped, 1, memory_order_relaxed);
		pthread_mutex_unlock(&log_state.lock);
		free(msg);
		errno = saved_errno;
		return;
	}
	rec = &log_state.ring[(log_state.head + log_state.count) % log_state.ring_cap];
	rec->level = level;
	rec->ts = ts;
	rec->msg = msg;
	log_state.count++;
	log_state.pushed++;
	pthread_cond_signal(&log_state.wake);
	pthread_mutex_unlock(&log_state.lock);
	errno = saved_errno;
}

void pgkeel_log(enum pgkeel_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pgkeel_vlog(level, fmt, ap);
	va_end(ap);
}
