/*
 * A broken backend: ABI 1.x, named "missingop", without load_cluster.
 *
 * The loader tests also use it for the other descriptor defects, selected
 * with PGKEEL_TEST_MISSINGOP_VARIANT when the entry is called:
 *   (unset)    load_cluster is NULL;
 *   null       the entry returns NULL;
 *   short      struct_size does not even cover the header;
 *   truncated  every op is set, but struct_size ends before load_cluster;
 *   noname     the descriptor has no name;
 *   oldminor   complete up to the optional write_leader_optime, which lies
 *              past struct_size (a backend of an older minor): loads, and
 *              the host must see write_leader_optime as NULL.
 * The ops do nothing and answer INVALID; nothing here is ever called by the
 * tests except through the "oldminor" variant's init, which refuses.
 */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pgkeel/dcs.h>

#define VARIANT_ENV "PGKEEL_TEST_MISSINGOP_VARIANT"

static enum pgkeel_dcs_status mo_init(const struct pgkeel_host *host,
                                      const struct pgkeel_dcs_params *params,
                                      struct pgkeel_dcs **out, struct pgkeel_err *err)
{
	(void)host;
	(void)params;
	*out = NULL;
	if (err != NULL) {
		err->code = PGKEEL_DCS_D_NONE;
		(void)snprintf(err->msg, sizeof(err->msg), "missingop: not a real backend");
	}
	return PGKEEL_DCS_INVALID;
}

static void mo_fini(struct pgkeel_dcs *dcs)
{
	(void)dcs;
}

static enum pgkeel_dcs_status mo_load_cluster(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                              pgkeel_dcs_entry_cb cb, void *arg,
                                              struct pgkeel_err *err)
{
	(void)dcs, (void)deadline_ms, (void)cb, (void)arg, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_lease_op(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                          struct pgkeel_dcs_lease *lease, struct pgkeel_err *err)
{
	(void)dcs, (void)deadline_ms, (void)lease, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_update_leader(struct pgkeel_dcs *dcs,
                                               const struct pgkeel_dcs_leader_update *u,
                                               int64_t deadline_ms,
                                               struct pgkeel_dcs_lease *lease,
                                               struct pgkeel_err *err)
{
	(void)dcs, (void)u, (void)deadline_ms, (void)lease, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_delete_leader(struct pgkeel_dcs *dcs, const char *version,
                                               int64_t deadline_ms, struct pgkeel_err *err)
{
	(void)dcs, (void)version, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_write(struct pgkeel_dcs *dcs, const char *json,
                                       int64_t deadline_ms, struct pgkeel_err *err)
{
	(void)dcs, (void)json, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_initialize(struct pgkeel_dcs *dcs, bool create_new,
                                            const char *sysid, int64_t deadline_ms,
                                            struct pgkeel_err *err)
{
	(void)dcs, (void)create_new, (void)sysid, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_simple(struct pgkeel_dcs *dcs, int64_t deadline_ms,
                                        struct pgkeel_err *err)
{
	(void)dcs, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_cas_write(struct pgkeel_dcs *dcs, const char *json,
                                           const char *expect_version, int64_t deadline_ms,
                                           struct pgkeel_err *err)
{
	(void)dcs, (void)json, (void)expect_version, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_write_sync_state(struct pgkeel_dcs *dcs, const char *json,
                                                  const char *expect_version,
                                                  char *new_version, size_t new_version_len,
                                                  int64_t deadline_ms, struct pgkeel_err *err)
{
	(void)dcs, (void)json, (void)expect_version, (void)new_version, (void)new_version_len;
	(void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_set_ttl(struct pgkeel_dcs *dcs, int ttl, int loop_wait,
                                         int retry_timeout, struct pgkeel_err *err)
{
	(void)dcs, (void)ttl, (void)loop_wait, (void)retry_timeout, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_watch(struct pgkeel_dcs *dcs, const char *leader_version,
                                       struct pgkeel_err *err)
{
	(void)dcs, (void)leader_version, (void)err;
	return PGKEEL_DCS_INVALID;
}

static enum pgkeel_dcs_status mo_write_leader_optime(struct pgkeel_dcs *dcs, int64_t lsn,
                                                     int64_t deadline_ms,
                                                     struct pgkeel_err *err)
{
	(void)dcs, (void)lsn, (void)deadline_ms, (void)err;
	return PGKEEL_DCS_INVALID;
}

#define MO_HEADER(size_, name_)                                         \
	.abi_version = PGKEEL_DCS_ABI_VERSION, .struct_size = (size_), \
	.name = (name_), .version = "0.0.0"

#define MO_OPS_BUT_LOAD_CLUSTER                                 \
	.init = mo_init, .fini = mo_fini,                       \
	.attempt_to_acquire_leader = mo_lease_op,               \
	.update_leader = mo_update_leader,                      \
	.take_leader = mo_lease_op,                             \
	.delete_leader = mo_delete_leader,                      \
	.touch_member = mo_write,                               \
	.initialize = mo_initialize,                            \
	.cancel_initialization = mo_simple,                     \
	.set_config = mo_cas_write,                             \
	.set_failover = mo_cas_write,                           \
	.write_sync_state = mo_write_sync_state,                \
	.delete_sync_state = mo_delete_leader,                  \
	.set_history = mo_write,                                \
	.write_status = mo_write,                               \
	.write_failsafe = mo_write,                             \
	.delete_cluster = mo_simple,                            \
	.set_ttl = mo_set_ttl,                                  \
	.watch = mo_watch,                                      \
	.write_leader_optime = mo_write_leader_optime

#define MO_ALL_OPS MO_OPS_BUT_LOAD_CLUSTER, .load_cluster = mo_load_cluster

/* The default: every op but load_cluster. */
static const struct pgkeel_dcs_plugin missingop_plugin = {
	MO_HEADER(sizeof(struct pgkeel_dcs_plugin), "missingop"),
	MO_OPS_BUT_LOAD_CLUSTER,
};

static const struct pgkeel_dcs_plugin short_plugin = {
	MO_HEADER(sizeof(uint32_t) * 2, "missingop"),
	MO_ALL_OPS,
};

static const struct pgkeel_dcs_plugin truncated_plugin = {
	MO_HEADER(offsetof(struct pgkeel_dcs_plugin, load_cluster), "missingop"),
	MO_ALL_OPS,
};

static const struct pgkeel_dcs_plugin noname_plugin = {
	MO_HEADER(sizeof(struct pgkeel_dcs_plugin), NULL),
	MO_ALL_OPS,
};

static const struct pgkeel_dcs_plugin oldminor_plugin = {
	MO_HEADER(offsetof(struct pgkeel_dcs_plugin, write_leader_optime), "missingop"),
	MO_ALL_OPS,
};

PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *
pgkeel_dcs_plugin_entry(void)
{
	const char *v = getenv(VARIANT_ENV);

	if (v == NULL || v[0] == '\0')
		return &missingop_plugin;
	if (strcmp(v, "null") == 0)
		return NULL;
	if (strcmp(v, "short") == 0)
		return &short_plugin;
	if (strcmp(v, "truncated") == 0)
		return &truncated_plugin;
	if (strcmp(v, "noname") == 0)
		return &noname_plugin;
	if (strcmp(v, "oldminor") == 0)
		return &oldminor_plugin;
	return &missingop_plugin;
}
