/*
 * loop: the HA loop, Patroni's Ha.run_cycle and the scheduling around it
 * (spec patroni-dcs-and-ha.md §5.1): it gathers the facts of a cycle (the
 * cluster from the DCS, the local PostgreSQL through pg_manager, the peers
 * through peers), asks ha.c what to do, performs the requests and the
 * effects, publishes the state the REST API answers from, answers the REST
 * requests queued to it, and waits on one poll: the host's eventfd (backend
 * watch, REST requests, the manager's actions ending), the signalfd, and a
 * timeout that is the next cycle or the lock deadline, whichever is first.
 *
 * Threads: everything here runs on the daemon's main thread.
 */
#ifndef PGKEEL_LOOP_H
#define PGKEEL_LOOP_H

#include <stdbool.h>

#include "config.h"

struct pgkeel_loop_opts {
	struct pgkeel_config *cfg; /* loaded and published; a reference is taken */
	const char *config_path;   /* for SIGHUP */
	bool strict;
	int sigfd; /* SIGHUP, SIGTERM, SIGINT, SIGCHLD (blocked in every thread) */
	/*
	 * The service manager's notifications (sd_notify in the daemon; NULL: none):
	 * "READY=1" once the REST API listens and the DCS answered, "WATCHDOG=1"
	 * after every completed cycle, "STOPPING=1" when the shutdown begins.
	 */
	void (*notify)(const char *state);
};

/* Run until SIGTERM/SIGINT or a fatal condition; returns the exit code. */
int pgkeel_loop_run(const struct pgkeel_loop_opts *opts);

#endif
