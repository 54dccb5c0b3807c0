/*
 * The process-wide struct pgkeel_host: logging through the core logger, the
 * two clocks, and post_event(), which ORs a wake-up mask into an atomic and
 * writes to an eventfd the HA loop polls.
 *
 * Every member may be called from any thread (backend-owned threads
 * included), so the eventfd is created once under pthread_once and the mask
 * is a lock-free atomic.
 */
#include "autoconf.h"

#include "host.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static int host_event_fd = -1;
static _Atomic uint32_t host_pending;

static void host_log(void *ctx, enum pgkeel_log_level level, const char *fmt, ...)
	PGKEEL_PRINTF(3, 4);
static int64_t host_now_monotonic_ms(void *ctx);
static int64_t host_now_boottime_ms(void *ctx);
static void host_post_event(void *ctx, uint32_t events);

static const struct pgkeel_host host = {
	.abi_version = PGKEEL_HOST_ABI_VERSION,
	.struct_size = sizeof(struct pgkeel_host),
	.ctx = NULL,
	.log = host_log,
	.now_monotonic_ms = host_now_monotonic_ms,
	.now_boottime_ms = host_now_boottime_ms,
	.post_event = host_post_event,
};

static void host_init_once(void)
{
	host_event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (host_event_fd == -1)
		pgkeel_log(PGKEEL_LOG_ERROR, "cannot create the host event fd: %s",
		           strerror(errno));
}

static void host_init(void)
{
	(void)pthread_once(&host_once, host_init_once);
}

/*
 * The backend names itself in its messages, so the text is forwarded as is.
 * A level outside the enum (a buggy backend) is clamped rather than trusted.
 */
static void host_log(void *ctx, enum pgkeel_log_level level, const char *fmt, ...)
{
	va_list ap;

	(void)ctx;
	if (fmt == NULL)
		return;
	if ((int)level < (int)PGKEEL_LOG_FATAL)
		level = PGKEEL_LOG_ERROR;
	else if ((int)level > (int)PGKEEL_LOG_DEBUG)
		level = PGKEEL_LOG_DEBUG;
	va_start(ap, fmt);
	pgkeel_vlog(level, fmt, ap);
	va_end(ap);
}

static int64_t host_now_monotonic_ms(void *ctx)
{
	(void)ctx;
	return pgkeel_now_monotonic_ms();
}

static int64_t host_now_boottime_ms(void *ctx)
{
	(void)ctx;
	return pgkeel_now_boottime_ms();
}

/*
 * The mask is published before the eventfd is written, and take_events
 * drains the eventfd before it takes the mask, so a wake-up is never lost: at
 * worst the loop wakes once more and finds an empty mask.
 */
static void host_post_event(void *ctx, uint32_t events)
{
	static const uint64_t one = 1;
	ssize_t n;

	(void)ctx;
	host_init();
	atomic_fetch_or(&host_pending, events);
	if (host_event_fd == -1)
		return;
	do {
		n = write(host_event_fd, &one, sizeof(one));
	} while (n == -1 && errno == EINTR);
	/* EAGAIN: the counter is saturated, the fd is readable anyway. */
}

const struct pgkeel_host *pgkeel_host_get(void)
{
	host_init();
	if (host_event_fd == -1)
		return NULL;
	return &host;
}

int pgkeel_host_event_fd(void)
{
	host_init();
	return host_event_fd;
}

uint32_t pgkeel_host_take_events(void)
{
	uint64_t count;
	ssize_t n;

	host_init();
	if (host_event_fd != -1) {
		do {
			n = read(host_event_fd, &count, sizeof(count));
		} while (n == -1 && errno == EINTR);
		/* EAGAIN: nothing was pending. */
	}
	return atomic_exchange(&host_pending, 0);
}
