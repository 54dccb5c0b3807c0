/*
 * member: this node's identity in the DCS (conn_url, api_url) and the value
 * of its `members/<name>` key, as Patroni 3.0.2's Ha.touch_member writes
 * it (spec patroni-dcs-and-ha.md §2.2; wire order and types through
 * pgkeel_member_data_encode).
 */
#ifndef PGKEEL_MEMBER_H
#define PGKEEL_MEMBER_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "config.h"

/* The supervisor version members publish: Patroni's, so that Patroni peers
 * and patronictl 3.0.2 treat us as one of theirs. */
#define PGKEEL_MEMBER_VERSION "3.0.2"

/* postgres://<postgresql.connect_address>/<postgresql.database>; malloc'd. */
char *pgkeel_member_conn_url(const struct pgkeel_config *cfg);
/* http(s)://<restapi.connect_address>/patroni (https with restapi.certfile); malloc'd. */
char *pgkeel_member_api_url(const struct pgkeel_config *cfg);

struct pgkeel_member_facts {
	const char *state;       /* Patroni's postgres state ("running", "starting"...) */
	const char *role;        /* "master", "replica", "standby_leader", "uninitialized",
	                            "demoted" */
	bool leader_checkpoint_pending; /* I lead and the post-promote CHECKPOINT is not done */
	bool pending_restart;
	bool disable_sync;       /* ask to be released as synchronous standby (nosync) */
	bool have_wal;           /* xlog_location below is known */
	int64_t wal_position;
	int64_t timeline;        /* 0: unknown (not written) */
	json_object *scheduled_restart; /* borrowed; NULL: none */
	bool paused;
};

/* The JSON text of members/<name>; malloc'd. */
char *pgkeel_member_value(const struct pgkeel_config *cfg, const struct pgkeel_member_facts *f);

#endif
