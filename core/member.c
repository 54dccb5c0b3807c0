/*
 * member: see member.h.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "member.h"
#include "util.h"

static const char *estr(const struct pgkeel_config *cfg, const char *path)
{
	json_object *v = pgkeel_json_path(cfg->effective, path);

	return v != NULL && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
	                                                              : NULL;
}

/* postgres://<address>/<postgresql.database> */
static char *pg_url(const struct pgkeel_config *cfg, const char *addr)
{
	const char *db = estr(cfg, "postgresql.database");

	return pgkeel_asprintf("postgres://%s/%s", addr != NULL ? addr : "",
	                       db != NULL && db[0] != '\0' ? db : "postgres");
}

char *pgkeel_member_conn_url(const struct pgkeel_config *cfg)
{
	return pg_url(cfg, estr(cfg, "postgresql.connect_address"));
}

char *pgkeel_member_api_url(const struct pgkeel_config *cfg)
{
	const char *addr = estr(cfg, "restapi.connect_address");
	const char *cert = estr(cfg, "restapi.certfile");

	return pgkeel_asprintf("%s://%s/patroni", cert != NULL && cert[0] != '\0' ? "https" : "http",
	                       addr != NULL ? addr : "");
}

char *pgkeel_member_value(const struct pgkeel_config *cfg, const struct pgkeel_member_facts *f)
{
	struct pgkeel_member_data d;
	char *conn = pgkeel_member_conn_url(cfg), *api = pgkeel_member_api_url(cfg), *out;
	const char *proxy = estr(cfg, "postgresql.proxy_address");
	char *proxy_url = NULL;
	json_object *tags = pgkeel_member_tags_effective(pgkeel_json_path(cfg->local, "tags"),
	                                                 f->disable_sync);

	pgkeel_member_data_init(&d);
	d.conn_url = conn;
	d.api_url = api;
	d.state = f->state;
	d.role = f->role;
	d.version = PGKEEL_MEMBER_VERSION;
	if (proxy != NULL && proxy[0] != '\0') {
		proxy_url = pg_url(cfg, proxy);
		d.proxy_url = proxy_url;
	}
	if (f->leader_checkpoint_pending)
		d.checkpoint_after_promote = PGKEEL_TRI_FALSE;
	d.tags = json_object_object_length(tags) > 0 ? tags : NULL;
	d.pending_restart = f->pending_restart;
	d.xlog_location = f->have_wal ? f->wal_position : -1;
	d.timeline = f->timeline;
	d.scheduled_restart = f->scheduled_restart;
	d.pause = f->paused;
	out = pgkeel_member_data_encode(&d);
	json_object_put(tags);
	free(conn);
	free(api);
	free(proxy_url);
	return out;
}
