/*
 * pgkeelctl: the read-only commands -- list, topology, history, version --
 * and pgkeel's own `why`.
 */
#include "autoconf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ctl.h"
#include "json.h"
#include "peers.h"
#include "rest_internal.h"

/* ------------------------------------------------------------ list, topology */

static int list_clusters(struct ctl *ctl, const struct ctl_command *cmd, int argc, char **argv,
                         bool topology)
{
	struct ctl_list_opts lo = {.format = topology ? CTL_FMT_TOPOLOGY : CTL_FMT_PRETTY};
	double watch = 0;
	int r, rc = CTL_OK;
	const char *scope;

	while ((r = ctl_getopt(cmd, argc, argv, topology ? "w:W" : "etf:w:W")) != -1) {
		switch (r) {
		case 'e':
			lo.extended = true;
			break;
		case 't':
			lo.timestamp = true;
			break;
		case 'f':
			if (!ctl_format_parse(optarg, &lo.format))
				return ctl_usage_error(cmd, "Invalid value for '--format' / '-f': '%s' is not "
				                            "one of 'pretty', 'tsv', 'json', 'yaml'.",
				                       optarg);
			break;
		case 'w': {
			char *end;

			watch = strtod(optarg, &end);
			if (*end != '\0' || !(watch > 0) || watch > 86400)
				return ctl_usage_error(cmd, "Invalid value for '-w' / '--watch': '%s' is not "
				                            "a valid float.",
				                       optarg);
			break;
		}
		case 'W':
			watch = 2;
			break;
		default:
			return ctl_getopt_exit(r);
		}
	}
	if (optind >= argc && ctl_scope(ctl, NULL) == NULL)
		return CTL_FAIL;
	/* watch: until interrupted, like patronictl -W */
	for (;;) {
		if (watch > 0 && isatty(fileno(ctl->out)))
			fputs("\033[2J\033[1;1H", ctl->out);
		if (lo.timestamp) {
			char ts[64];

			ctl_local_timestamp(ts, sizeof(ts));
			ts[19] = '\0'; /* timestamp(0): seconds */
			fprintf(ctl->out, "%s\n", ts);
		}
		for (int i = optind; i < argc || i == optind; i++) {
			struct pgkeel_cluster *c;

			scope = ctl_scope(ctl, i < argc ? argv[i] : NULL);
			if (scope == NULL || !ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL) {
				rc = CTL_FAIL;
				break;
			}
			ctl_print_cluster(ctl, scope, c, &lo);
			pgkeel_cluster_unref(c);
			if (i >= argc)
				break;
		}
		fflush(ctl->out);
		if (watch <= 0 || rc != CTL_OK)
			return rc;
		{
			struct timespec ts = {.tv_sec = (time_t)watch,
			                      .tv_nsec = (long)((watch - floor(watch)) * 1e9)};

			nanosleep(&ts, NULL);
		}
	}
}

static const struct option list_options[] = {
    {"extended", no_argument, NULL, 'e'}, {"timestamp", no_argument, NULL, 't'},
    {"format", required_argument, NULL, 'f'}, {"watch", required_argument, NULL, 'w'},
    {0},
};

static int run_list(struct ctl *ctl, int argc, char **argv)
{
	return list_clusters(ctl, &ctl_cmd_list, argc, argv, false);
}

const struct ctl_command ctl_cmd_list = {
    .name = "list",
    .run = run_list,
    .args = "[CLUSTER...] [-e] [-t] [-f pretty|tsv|json|yaml] [-W | -w SECONDS]",
    .summary = "List the members of a cluster",
    .options = list_options,
    .help = "  -e, --extended        show every optional column (Pending restart, Scheduled\n"
            "                        restart, Tags)\n"
            "  -t, --timestamp       print the time first\n"
            "  -f, --format FORMAT   pretty (default), tsv, json or yaml\n"
            "  -W                    refresh every 2 seconds until interrupted\n"
            "  -w, --watch SECONDS   refresh every SECONDS until interrupted\n",
};

static const struct option topology_options[] = {
    {"watch", required_argument, NULL, 'w'},
    {0},
};

static int run_topology(struct ctl *ctl, int argc, char **argv)
{
	return list_clusters(ctl, &ctl_cmd_topology, argc, argv, true);
}

const struct ctl_command ctl_cmd_topology = {
    .name = "topology",
    .run = run_topology,
    .args = "[CLUSTER...] [-W | -w SECONDS]",
    .summary = "Show the members as a tree: replicas under the member they replicate from",
    .options = topology_options,
    .help = "  -W                    refresh every 2 seconds until interrupted\n"
            "  -w, --watch SECONDS   refresh every SECONDS until interrupted\n",
};

/* ------------------------------------------------------------ history */

static const struct option history_options[] = {
    {"format", required_argument, NULL, 'f'},
    {0},
};

static int run_history(struct ctl *ctl, int argc, char **argv)
{
	static const char *const headers[] = {"TL", "LSN", "Reason", "Timestamp", "New Leader"};
	static const char align[] = {'r', 'r', 'l', 'l', 'l'};
	enum ctl_format fmt = CTL_FMT_PRETTY;
	struct pgkeel_cluster *c;
	json_object *lines = NULL, *elements;
	const char *scope;
	char ***cells;
	size_t n = 0;
	int r;
	char err[128];

	while ((r = ctl_getopt(&ctl_cmd_history, argc, argv, "f:")) != -1) {
		if (r == 'f' && ctl_format_parse(optarg, &fmt))
			continue;
		if (r == 'f')
			return ctl_usage_error(&ctl_cmd_history,
			                       "Invalid value for '--format' / '-f': '%s'", optarg);
		return ctl_getopt_exit(r);
	}
	if (optind + 1 < argc)
		return ctl_usage_error(&ctl_cmd_history, "Got unexpected extra argument (%s)",
		                       argv[optind + 1]);
	scope = ctl_scope(ctl, optind < argc ? argv[optind] : NULL);
	if (scope == NULL || !ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	if (c->history != NULL && c->history->raw != NULL &&
	    (!pgkeel_json_parse(c->history->raw, strlen(c->history->raw), &lines, err,
	                        sizeof(err)) ||
	     !json_object_is_type(lines, json_type_array))) {
		json_object_put(lines);
		lines = NULL;
	}
	n = lines ? json_object_array_length(lines) : 0;
	cells = pgkeel_xcalloc(n + 1, sizeof(*cells));
	elements = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		json_object *line = json_object_array_get_idx(lines, i), *el = json_object_new_object();

		cells[i] = pgkeel_xcalloc(6, sizeof(char *));
		for (size_t k = 0; k < 5; k++) {
			json_object *v = json_object_is_type(line, json_type_array) &&
			                         k < json_object_array_length(line)
			                     ? json_object_array_get_idx(line, k)
			                     : NULL;

			if (v == NULL)
				cells[i][k] = pgkeel_strdup("");
			else if (json_object_is_type(v, json_type_string))
				cells[i][k] = pgkeel_strdup(json_object_get_string(v));
			else
				cells[i][k] = pgkeel_rest_py_str(v);
			json_object_object_add(el, headers[k],
			                       v ? json_object_get(v) : json_object_new_string(""));
		}
		json_object_array_add(elements, el);
	}
	if (fmt == CTL_FMT_JSON || fmt == CTL_FMT_YAML) {
		char *s = fmt == CTL_FMT_JSON ? pgkeel_json_spaced(elements)
		                              : ctl_yaml_dump(elements, false);

		fprintf(ctl->out, "%s\n", s);
		free(s);
	} else {
		ctl_print_table(ctl, headers, align, 5, cells, n, fmt);
	}
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < 5; k++)
			free(cells[i][k]);
		free(cells[i]);
	}
	free(cells);
	json_object_put(elements);
	json_object_put(lines);
	pgkeel_cluster_unref(c);
	return CTL_OK;
}

const struct ctl_command ctl_cmd_history = {
    .name = "history",
    .run = run_history,
    .args = "[CLUSTER] [-f pretty|tsv|json|yaml]",
    .summary = "Show the history of failovers and switchovers",
    .options = history_options,
    .help = "  -f, --format FORMAT   pretty (default), tsv, json or yaml\n",
};

/* ------------------------------------------------------------ version */

/* patronictl's format_pg_version */
static void pg_version_text(int64_t v, char *buf, size_t len)
{
	if (v < 100000)
		pgkeel_fmt(buf, len, "%lld.%lld.%lld", (long long)(v / 10000),
		           (long long)(v / 100 % 100), (long long)(v % 100));
	else
		pgkeel_fmt(buf, len, "%lld.%lld", (long long)(v / 10000), (long long)(v % 10000));
}

static const struct option no_options[] = {{0}};

static int run_version(struct ctl *ctl, int argc, char **argv)
{
	struct pgkeel_cluster *c;
	const char *scope;
	int r;

	while ((r = ctl_getopt(&ctl_cmd_version, argc, argv, "")) != -1)
		return ctl_getopt_exit(r);
	fprintf(ctl->out, "pgkeelctl version %s\n", PACKAGE_VERSION);
	if (optind >= argc)
		return CTL_OK;
	fprintf(ctl->out, "\n");
	scope = argv[optind];
	if (!ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		struct ctl_reply rep;
		bool wanted = optind + 1 >= argc;
		json_object *doc = NULL;
		char err[128];

		for (int j = optind + 1; j < argc && !wanted; j++)
			wanted = strcmp(argv[j], m->name) == 0;
		if (!wanted || m->d.api_url == NULL || m->d.api_url[0] == '\0')
			continue;
		if (!ctl_request(ctl, m, "GET", NULL, NULL, 5000, &rep)) {
			fprintf(ctl->out, "%s: failed to get version: %s\n", m->name, rep.error);
		} else if (!pgkeel_json_parse(rep.body, rep.body_len, &doc, err, sizeof(err)) ||
		           !json_object_is_type(doc, json_type_object)) {
			fprintf(ctl->out, "%s: failed to get version: %s\n", m->name,
			        doc ? "not a JSON object" : err);
		} else {
			json_object *pat = NULL, *ver = NULL, *sv = NULL, *own = NULL;
			char pg[32] = "";

			json_object_object_get_ex(doc, "patroni", &pat);
			if (pat != NULL)
				json_object_object_get_ex(pat, "version", &ver);
			json_object_object_get_ex(doc, "server_version", &sv);
			json_object_object_get_ex(doc, "pgkeel_version", &own);
			if (sv != NULL && json_object_get_int64(sv) > 0)
				pg_version_text(json_object_get_int64(sv), pg, sizeof(pg));
			fprintf(ctl->out, "%s: Patroni %s%s%s", m->name,
			        ver ? json_object_get_string(ver) : "None", pg[0] ? " PostgreSQL " : "", pg);
			if (own != NULL)
				fprintf(ctl->out, " (pgkeel %s)", json_object_get_string(own));
			fputc('\n', ctl->out);
		}
		json_object_put(doc);
		ctl_reply_free(&rep);
	}
	pgkeel_cluster_unref(c);
	return CTL_OK;
}

const struct ctl_command ctl_cmd_version = {
    .name = "version",
    .run = run_version,
    .args = "[CLUSTER [MEMBER...]]",
    .summary = "Print pgkeelctl's version, and the members' versions with CLUSTER",
    .options = no_options,
    .help = "",
};

/* ------------------------------------------------------------ why */

/*
 * Why a member can or cannot take over, from what the members publish: the
 * DCS (member keys, leader, sync, config, status) and each member's GET
 * /patroni.  The rules are Patroni's: a member is a failover candidate when
 * it runs, is not tagged nofailover, answers its REST API, is not past
 * maximum_lag_on_failover behind the leader's last known position, is on
 * the cluster's timeline, and -- in synchronous mode -- is a synchronous
 * standby.  Pause stops automatic failover for everybody.
 */
struct why_facts {
	const struct pgkeel_cluster *c;
	int64_t max_lag;
	bool sync_mode, paused;
	int64_t cluster_tl;
};

static bool config_bool(const struct pgkeel_cluster *c, const char *k)
{
	json_object *v = NULL;

	if (c->config == NULL || !c->config->valid)
		return false;
	json_object_object_get_ex(c->config->data, k, &v);
	return pgkeel_json_truthy(v);
}

/* Print the reasons; returns true when the member can be promoted. */
static bool why_member(struct ctl *ctl, const struct why_facts *f, const struct pgkeel_member *m)
{
	const char *leader = pgkeel_cluster_leader_name(f->c);
	struct pgkeel_peer_status st = {0};
	struct ctl_reply rep;
	int reasons = 0;

	if (leader != NULL && strcmp(leader, m->name) == 0) {
		fprintf(ctl->out, "%s: the leader (holds the leader key)\n", m->name);
		return false;
	}
	fprintf(ctl->out, "%s:\n", m->name);
#define WHY(...)                                  \
	do {                                          \
		fprintf(ctl->out, "  - " __VA_ARGS__);    \
		fputc('\n', ctl->out);                    \
		reasons++;                                \
	} while (0)
	if (f->paused)
		WHY("the cluster is paused: no automatic failover (a manual one is still possible)");
	if (pgkeel_member_tag_truthy(&m->d, "nofailover"))
		WHY("tagged nofailover");
	if (m->d.state == NULL || strcmp(m->d.state, "running") != 0)
		WHY("PostgreSQL is %s, not running", m->d.state ? m->d.state : "in an unknown state");
	if (m->d.xlog_location < 0)
		WHY("publishes no WAL position");
	else if (f->c->status.last_lsn > 0 &&
	         pgkeel_peer_is_lagging(f->c->status.last_lsn, m->d.xlog_location, f->max_lag))
		WHY("lags %lld bytes behind the leader's last known position (maximum_lag_on_failover "
		    "is %lld)",
		    (long long)(f->c->status.last_lsn - m->d.xlog_location), (long long)f->max_lag);
	if (f->cluster_tl > 0 && m->d.timeline > 0 && m->d.timeline != f->cluster_tl)
		WHY("on timeline %lld, the cluster is on timeline %lld", (long long)m->d.timeline,
		    (long long)f->cluster_tl);
	if (f->sync_mode && !pgkeel_sync_matches(&f->c->sync, m->name, false))
		WHY("not a synchronous standby (synchronous_mode is on)");
	if (ctl_request(ctl, m, "GET", NULL, NULL, 3000, &rep)) {
		if (!pgkeel_peer_status_parse(rep.body, rep.body_len, &st))
			WHY("REST API answers, but not with a usable status (%s)", st.error);
		else if (st.watchdog_failed)
			WHY("its watchdog failed (not watchdog capable)");
		pgkeel_peer_status_clear(&st);
	} else {
		WHY("REST API not reachable (%s)", rep.error);
	}
	ctl_reply_free(&rep);
#undef WHY
	if (reasons == 0)
		fprintf(ctl->out, "  can be promoted\n");
	return reasons == 0;
}

static int run_why(struct ctl *ctl, int argc, char **argv)
{
	struct pgkeel_cluster *c;
	struct why_facts f = {0};
	const char *scope;
	const struct pgkeel_member **sel;
	int r, n, first;

	while ((r = ctl_getopt(&ctl_cmd_why, argc, argv, "")) != -1)
		return ctl_getopt_exit(r);
	/* why [CLUSTER] MEMBER...: the first operand is a cluster only when it is not a member */
	first = optind;
	scope = ctl_scope(ctl, NULL);
	if (argc - optind >= 2) {
		scope = argv[optind];
		first = optind + 1;
	}
	if (scope == NULL && argc - optind == 1)
		return CTL_FAIL;
	if (scope == NULL || !ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	n = ctl_select_members(c, argv + first, argc - first, CTL_ROLE_ANY, &sel);
	if (n < 0) {
		pgkeel_cluster_unref(c);
		return CTL_FAIL;
	}
	f.c = c;
	f.max_lag = 1048576;
	if (c->config != NULL && c->config->valid) {
		json_object *v = pgkeel_json_path(c->config->data, "maximum_lag_on_failover");

		if (v != NULL)
			f.max_lag = json_object_get_int64(v);
	}
	f.sync_mode = config_bool(c, "synchronous_mode");
	f.paused = config_bool(c, "pause");
	f.cluster_tl = pgkeel_cluster_timeline(c);
	if (c->leader == NULL || c->leader->name[0] == '\0')
		fprintf(ctl->out, "cluster %s has no leader\n", scope);
	for (int i = 0; i < n; i++)
		(void)why_member(ctl, &f, sel[i]);
	free(sel);
	pgkeel_cluster_unref(c);
	return CTL_OK;
}

const struct ctl_command ctl_cmd_why = {
    .name = "why",
    .run = run_why,
    .args = "[CLUSTER] [MEMBER...]",
    .summary = "Tell why members can or cannot be promoted by a failover",
    .options = no_options,
    .help = "",
};
