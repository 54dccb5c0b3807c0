/*
 * The host services handed to modules (struct pgkeel_host): logging through
 * the core logger, the two clocks, and post_event, which ORs a wake-up mask
 * and signals an eventfd the HA loop polls.
 */
#ifndef PGKEEL_CORE_HOST_H
#define PGKEEL_CORE_HOST_H

#include <stdint.h>

#include <pgkeel/host.h>

/* The process-wide host; creates its eventfd on first use (NULL on failure). */
const struct pgkeel_host *pgkeel_host_get(void);
/* The fd that becomes readable after post_event; -1 if none. */
int pgkeel_host_event_fd(void);
/* Return and clear the pending event mask (also drains the eventfd). */
uint32_t pgkeel_host_take_events(void);

#endif
