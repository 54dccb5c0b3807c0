/*
 * pgkeelctl: the configuration (ctl mode), the DCS backend as a ctl
 * handle, and cluster loads.
 *
 * --dcs-url as patronictl's parse_dcs: [scheme://]host[:port]; without a
 * scheme the port picks it (2379 etcd3, 2181 zookeeper, 8500 consul), and
 * the DCS sections of the file are replaced by the one the URL gives.
 * patronictl 3.0.2's etcd:// means the v2 API, which pgkeel does not
 * speak: here etcd:// and etcd3:// both mean etcd's v3 API.
 */
#include "autoconf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl.h"
#include "dcs_loader.h"
#include "host.h"
#include "log.h"

static const char *const dcs_sections[] = {"consul",     "etcd", "etcd3",     "exhibitor",
                                           "kubernetes", "raft", "zookeeper", NULL};

/*
 * The overlay for --dcs-url (NULL after printing an error): a null for
 * every DCS section (the merge deletes the file's), then the URL's section,
 * merged over the file's section of the same type (its TLS settings stay).
 */
static json_object *dcs_url_overlay(const char *url)
{
	static const struct {
		const char *scheme;
		const char *section;
		int port;
	} schemes[] = {
	    {"etcd3", "etcd3", 2379}, {"etcd", "etcd3", 2379},     {"zookeeper", "zookeeper", 2181},
	    {"consul", "consul", 8500},
	};
	const char *hostport = url, *sep = strstr(url, "://");
	const char *section = NULL;
	int default_port = 0;
	char host[256], port_s[16] = "";
	json_object *ov, *sec;
	const char *colon;
	size_t hl;

	if (sep != NULL) {
		size_t sl = (size_t)(sep - url);

		for (size_t i = 0; i < PGKEEL_ARRAY_LEN(schemes); i++)
			if (strlen(schemes[i].scheme) == sl && strncmp(url, schemes[i].scheme, sl) == 0) {
				section = schemes[i].section;
				default_port = schemes[i].port;
			}
		if (section == NULL) {
			ctl_error("Unknown dcs scheme: %.*s", (int)sl, url);
			return NULL;
		}
		hostport = sep + 3;
	}
	hl = strcspn(hostport, "/?#");
	colon = memrchr(hostport, ':', hl);
	if (colon != NULL && hostport[0] != '[') {
		pgkeel_fmt(port_s, sizeof(port_s), "%.*s", (int)(hl - (size_t)(colon - hostport) - 1),
		           colon + 1);
		hl = (size_t)(colon - hostport);
	}
	if (hl == 0)
		pgkeel_fmt(host, sizeof(host), "localhost");
	else
		pgkeel_fmt(host, sizeof(host), "%.*s", (int)hl, hostport);
	if (port_s[0] != '\0') {
		int64_t p;

		if (!pgkeel_parse_int64(port_s, &p) || p < 1 || p > 65535) {
			ctl_error("--dcs-url %s: bad port '%s'", url, port_s);
			return NULL;
		}
		if (section == NULL)
			for (size_t i = 0; i < PGKEEL_ARRAY_LEN(schemes); i++)
				if (schemes[i].port == p)
					section = schemes[i].section;
	} else {
		pgkeel_fmt(port_s, sizeof(port_s), "%d", default_port ? default_port : 2379);
	}
	if (section == NULL)
		section = "etcd3";
	ov = json_object_new_object();
	for (int i = 0; dcs_sections[i] != NULL; i++)
		json_object_object_add(ov, dcs_sections[i], NULL);
	sec = json_object_new_object();
	{
		char *hp = pgkeel_asprintf("%s:%s", host, port_s);

		if (strcmp(section, "zookeeper") == 0) {
			json_object *a = json_object_new_array();

			json_object_array_add(a, json_object_new_string(hp));
			json_object_object_add(sec, "hosts", a);
		} else if (strcmp(section, "etcd3") == 0) {
			/* the file's other ways of naming servers give way to the URL */
			json_object_object_add(sec, "hosts", json_object_new_string(hp));
			json_object_object_add(sec, "host", NULL);
			json_object_object_add(sec, "url", NULL);
			json_object_object_add(sec, "srv", NULL);
			json_object_object_add(sec, "srv_suffix", NULL);
		} else {
			json_object_object_add(sec, "host", json_object_new_string(hp));
		}
		free(hp);
	}
	json_object_object_add(ov, section, sec);
	return ov;
}

struct pgkeel_config *ctl_config(struct ctl *ctl)
{
	struct pgkeel_config_opts opts = {.ctl = true, .use_environ = true};
	const char *url = ctl->dcs_url ? ctl->dcs_url : getenv("DCS_URL");
	const char *path = ctl->config_path ? ctl->config_path : getenv("PATRONICTL_CONFIG_FILE");
	char def[4096];
	struct pgkeel_diag d;
	json_object *ov = NULL;

	if (ctl->cfg != NULL)
		return ctl->cfg;
	if (url != NULL && url[0] == '\0')
		url = NULL;
	if (path == NULL || path[0] == '\0') {
		const char *home = getenv("HOME");

		pgkeel_fmt(def, sizeof(def), "%s/.config/patroni/patronictl.yaml",
		           home ? home : "");
		/* the default file may be missing (patronictl tolerates it) */
		path = access(def, R_OK) == 0 ? def : NULL;
	} else if (access(path, R_OK) != 0) {
		ctl_error("Provided config file %s not existing or no read rights. Check the "
		          "-c/--config-file parameter",
		          path);
		return NULL;
	}
	if (url != NULL && (ov = dcs_url_overlay(url)) == NULL)
		return NULL;
	opts.overlay = ov;
	pgkeel_diag_init(&d);
	ctl->cfg = pgkeel_config_load(path, &opts, &d);
	for (size_t i = 0; i < pgkeel_diag_warnings(&d); i++)
		fprintf(stderr, "warning: %s\n",
		        json_object_get_string(json_object_array_get_idx(d.warnings, i)));
	for (size_t i = 0; i < pgkeel_diag_errors(&d); i++)
		ctl_error("%s", json_object_get_string(json_object_array_get_idx(d.errors, i)));
	pgkeel_diag_clear(&d);
	json_object_put(ov);
	return ctl->cfg;
}

const char *ctl_scope(struct ctl *ctl, const char *given)
{
	struct pgkeel_config *c;

	if (given != NULL && given[0] != '\0')
		return given;
	c = ctl_config(ctl);
	if (c == NULL)
		return NULL;
	if (c->scope == NULL || c->scope[0] == '\0') {
		ctl_error("no cluster name: give CLUSTER or set scope in the configuration");
		return NULL;
	}
	return c->scope;
}

int64_t ctl_deadline(void)
{
	return pgkeel_now_monotonic_ms() + CTL_DCS_TIMEOUT_MS;
}

static void close_dcs(struct ctl *ctl)
{
	if (ctl->dcs != NULL)
		ctl->plugin->fini(ctl->dcs);
	ctl->dcs = NULL;
	free(ctl->dcs_scope);
	ctl->dcs_scope = NULL;
}

bool ctl_dcs(struct ctl *ctl, const char *scope)
{
	struct pgkeel_config *c = ctl_config(ctl);
	struct pgkeel_dcs_module mod;
	struct pgkeel_dcs_params params;
	struct pgkeel_err err = {0};
	char msg[1024];

	if (c == NULL)
		return false;
	if (ctl->dcs != NULL && strcmp(ctl->dcs_scope, scope) == 0)
		return true;
	close_dcs(ctl);
	if (c->dcs_type == NULL) {
		ctl_error("no DCS section in the configuration (or give --dcs-url)");
		return false;
	}
	if (!pgkeel_dcs_load(pgkeel_dcs_backend_dir(c->backend_dir), c->dcs_type, &mod, msg,
	                     sizeof(msg))) {
		ctl_error("%s", msg);
		return false;
	}
	params = (struct pgkeel_dcs_params){
	    .struct_size = sizeof(params),
	    .flags = PGKEEL_DCS_CTL,
	    .namespace_ = c->namespace_,
	    .scope = scope,
	    .name = NULL,
	    .ttl = c->ttl,
	    .loop_wait = c->loop_wait,
	    .retry_timeout = c->retry_timeout,
	    .options_json = c->dcs_options_json ? c->dcs_options_json : "{}",
	    .user_agent = "pgkeelctl/" PACKAGE_VERSION,
	};
	ctl->plugin = mod.plugin;
	if (mod.plugin->init(pgkeel_host_get(), &params, &ctl->dcs, &err) != PGKEEL_DCS_OK) {
		ctl->dcs = NULL;
		ctl_error("DCS backend %s: %s", c->dcs_type, err.msg[0] ? err.msg : "cannot initialise");
		return false;
	}
	ctl->dcs_scope = pgkeel_strdup(scope);
	return true;
}

void ctl_close(struct ctl *ctl)
{
	close_dcs(ctl);
	ctl_http_close(ctl);
	pgkeel_config_unref(ctl->cfg);
	ctl->cfg = NULL;
}

int ctl_dcs_error(const char *what, enum pgkeel_dcs_status st, const struct pgkeel_err *err)
{
	static const char *const names[] = {"ok", "conflict", "DCS unavailable", "invalid request",
	                                    "out of memory"};
	const char *name = (unsigned)st < PGKEEL_ARRAY_LEN(names) ? names[st] : "error";

	if (err != NULL && err->msg[0] != '\0')
		return ctl_error("%s: %s (%s)", what, name, err->msg);
	return ctl_error("%s: %s", what, name);
}

struct pgkeel_cluster *ctl_load(struct ctl *ctl)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();
	struct pgkeel_err err = {0};
	enum pgkeel_dcs_status st;

	st = ctl->plugin->load_cluster(ctl->dcs, ctl_deadline(), pgkeel_cluster_builder_add, b, &err);
	if (st != PGKEEL_DCS_OK) {
		pgkeel_cluster_builder_free(b);
		ctl_dcs_error("reading the cluster from the DCS", st, &err);
		return NULL;
	}
	return pgkeel_cluster_builder_finish(b);
}

int ctl_loop_wait(struct ctl *ctl, const struct pgkeel_cluster *c)
{
	if (c != NULL && c->config != NULL && c->config->valid) {
		json_object *v = pgkeel_json_path(c->config->data, "loop_wait");

		if (v != NULL && json_object_get_int(v) > 0)
			return json_object_get_int(v);
	}
	return ctl->cfg != NULL && ctl->cfg->loop_wait > 0 ? ctl->cfg->loop_wait : 10;
}
