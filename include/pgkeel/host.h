/*
 * pgkeel/host.h - services the pgkeel host offers to loadable modules.
 *
 * Self-contained on purpose: only <stddef.h>, <stdint.h> and <stdbool.h>.
 * A module may link other versions of json-c, libcurl or libyaml than the
 * host does, so no third-party type ever crosses this boundary.
 *
 * Versioning follows the DCS ABI (see dcs.h): struct pgkeel_host starts with
 * abi_version (major << 16 | minor) and struct_size.  New members are only
 * appended; a module must check struct_size before touching a member that a
 * later minor version added.
 *
 * Threads: every member may be called from any thread, including threads a
 * module owns (a ZooKeeper completion thread, an etcd watch thread).  None
 * of them blocks for long: log() enqueues, post_event() writes an eventfd.
 */
#ifndef PGKEEL_HOST_H
#define PGKEEL_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PGKEEL_ABI_MAKE(major, minor) (((uint32_t)(major) << 16) | (uint32_t)(minor))
#define PGKEEL_ABI_MAJOR_OF(v) ((uint32_t)(v) >> 16)
#define PGKEEL_ABI_MINOR_OF(v) ((uint32_t)(v) & 0xffffu)

#define PGKEEL_HOST_ABI_MAJOR 1
#define PGKEEL_HOST_ABI_MINOR 0
#define PGKEEL_HOST_ABI_VERSION PGKEEL_ABI_MAKE(PGKEEL_HOST_ABI_MAJOR, PGKEEL_HOST_ABI_MINOR)

#if defined(__GNUC__)
#define PGKEEL_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define PGKEEL_MUSTCHECK __attribute__((warn_unused_result))
#else
#define PGKEEL_PRINTF(fmt, args)
#define PGKEEL_MUSTCHECK
#endif

/* Log levels, most severe first (values are part of the ABI). */
enum pgkeel_log_level {
	PGKEEL_LOG_FATAL = 0,
	PGKEEL_LOG_ERROR = 1,
	PGKEEL_LOG_WARNING = 2,
	PGKEEL_LOG_NOTICE = 3,
	PGKEEL_LOG_INFO = 4,
	PGKEEL_LOG_DEBUG = 5,
};

/*
 * Wake-up reasons a module passes to post_event().  The host ORs them into
 * one pending mask and wakes the HA loop once; a reason is a hint, the loop
 * always reloads the whole cluster view.
 */
enum pgkeel_event {
	PGKEEL_EVENT_LEADER = 1u << 0,  /* the leader key changed or vanished */
	PGKEEL_EVENT_CONFIG = 1u << 1,  /* the dynamic config changed */
	PGKEEL_EVENT_STATUS = 1u << 2,  /* leader optime/status changed */
	PGKEEL_EVENT_SESSION = 1u << 3, /* lease/session state changed (lost, expired) */
	PGKEEL_EVENT_OTHER = 1u << 4,   /* anything else worth a new cycle */
};

struct pgkeel_host {
	uint32_t abi_version; /* PGKEEL_HOST_ABI_VERSION of the host */
	uint32_t struct_size; /* sizeof(struct pgkeel_host) in the host */
	void *ctx;            /* opaque, passed back to every member below */

	/* Log one record.  The host adds time and level; the text names its module. */
	void (*log)(void *ctx, enum pgkeel_log_level level, const char *fmt, ...)
		PGKEEL_PRINTF(3, 4);

	/* CLOCK_MONOTONIC in milliseconds: the clock of every deadline. */
	int64_t (*now_monotonic_ms)(void *ctx);

	/* CLOCK_BOOTTIME in milliseconds: keeps counting through suspend. */
	int64_t (*now_boottime_ms)(void *ctx);

	/* Wake the HA loop; `events` is a mask of enum pgkeel_event. */
	void (*post_event)(void *ctx, uint32_t events);
};

#ifdef __cplusplus
}
#endif

#endif /* PGKEEL_HOST_H */
