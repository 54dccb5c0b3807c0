/*
 * pgkeelctl switchover / failover (spec patroni-interfaces.md §2.2), as
 * patronictl 3.0.2's _do_failover_or_switchover():
 *
 *   1. print "Current cluster topology" and the table;
 *   2. client-side checks, in patronictl's order and words: a switchover
 *      needs a leader; --leader must be the leader; the candidates are the
 *      members other than the leader not tagged nofailover; a failover needs
 *      a candidate; candidate != leader; the candidate must be one of them;
 *      a scheduled switchover is refused in pause.  Without --force the
 *      leader, the candidate and (switchover) the time are asked for, then
 *      a confirmation;
 *   3. POST /switchover (or /failover) to the leader's REST API (the
 *      candidate's when there is no leader) with patronictl's body
 *      {"leader": L, "candidate": C, "scheduled_at": T} (null when not
 *      given); a 501 "Server does not support this operation" answer to a
 *      switchover is retried as /failover; when no member answers, the
 *      `failover` key is written directly ("Could not switchover using
 *      Patroni api, falling back to DCS").
 *
 * `failover --leader L` is a switchover, as in patronictl.
 *
 * Beyond patronictl: an immediate switchover or failover then waits, with a
 * dot per second, until the DCS shows the new leader (the candidate when
 * one was given, else any member other than the old leader) holding the
 * lock with its member key saying role master and state running, for at
 * most ttl + 2 * loop_wait + primary_start_timeout seconds (capped at 15
 * minutes); then it prints the cluster and exits 0, or exits 1 saying what
 * the DCS shows.  An answer other than 200/202 exits 1.  A scheduled
 * switchover does not wait.  Every REST call has a timeout.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "cmd_ops.h"
#include "ctl.h"
#include "json.h"


#define WAIT_CAP_S 900

struct so_args {
	const char *scope;
	const char *leader;
	const char *candidate;
	const char *scheduled;
	bool force;
};

/* Members' names are compared as Python strings: NULL is None. */
static bool same(const char *a, const char *b)
{
	return a != NULL && b != NULL && strcmp(a, b) == 0;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------ waiting */

struct new_leader {
	const char *old;       /* the leader before (NULL: none) */
	const char *candidate; /* NULL or "": any member but the old leader */
};

static bool leader_role(const char *role)
{
	return same(role, "master") || same(role, "primary") || same(role, "standby_leader");
}

/* The DCS shows the new leader holding the lock, running as leader. */
static bool new_leader_running(const struct pgkeel_cluster *c, void *arg)
{
	const struct new_leader *w = arg;
	const char *name = pgkeel_cluster_leader_name(c);
	const struct pgkeel_member *m;

	if (name == NULL || name[0] == '\0')
		return false;
	if (w->candidate != NULL && w->candidate[0] != '\0' ? !same(name, w->candidate)
	                                                    : same(name, w->old))
		return false;
	m = c->leader->member;
	return m != NULL && same(m->d.state, "running") && leader_role(m->d.role);
}

static int wait_new_leader(struct ctl *ctl, const char *scope, const struct pgkeel_cluster *c0,
                           const char *action, const char *old, const char *candidate)
{
	struct new_leader w = {.old = old, .candidate = candidate};
	int timeout = ctl_ops_config_int(ctl, c0, "ttl", NULL, 30) + 2 * ctl_loop_wait(ctl, c0) +
	              ctl_ops_config_int(ctl, c0, "primary_start_timeout", "master_start_timeout",
	                                 300);
	struct pgkeel_cluster *c;
	bool met;
	int rc;

	if (timeout > WAIT_CAP_S)
		timeout = WAIT_CAP_S;
	fprintf(ctl->out, "Waiting for %s to become the running leader (at most %d s)\n",
	        candidate != NULL && candidate[0] != '\0' ? candidate : "a new member", timeout);
	fflush(ctl->out);
	c = ctl_wait(ctl, timeout, true, new_leader_running, &w, &met);
	if (c == NULL)
		return ctl_error("the DCS did not answer while waiting for the %s", action);
	ctl_ops_print_table(ctl, scope, c);
	if (met) {
		rc = CTL_OK;
	} else {
		const char *now = pgkeel_cluster_leader_name(c);

		rc = ctl_error("%s not completed after %d s: the DCS shows %s%s%s", action, timeout,
		               now ? "leader " : "no leader", now ? now : "",
		               now && (c->leader->member == NULL ||
		                       !same(c->leader->member->d.state, "running"))
		                   ? " (not running yet)"
		                   : "");
	}
	pgkeel_cluster_unref(c);
	return rc;
}

/* ------------------------------------------------------------ the command */

/* {"leader": L, "candidate": C, "scheduled_at": T}, Python's spacing, null for none. */
static char *request_body(const char *leader, const char *candidate, const char *scheduled_at)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_puts(&b, "{\"leader\": ");
	pgkeel_json_put_cstring(&b, leader);
	pgkeel_sbuf_puts(&b, ", \"candidate\": ");
	pgkeel_json_put_cstring(&b, candidate);
	pgkeel_sbuf_puts(&b, ", \"scheduled_at\": ");
	pgkeel_json_put_cstring(&b, scheduled_at);
	pgkeel_sbuf_puts(&b, "}");
	return pgkeel_sbuf_finish(&b);
}

/*
 * The POST to `m` (NULL: none to ask).  Returns 1 when it was accepted
 * (200/202, the answer printed), 0 when it was refused (printed), -1 when
 * nothing answered.
 */
static int post_request(struct ctl *ctl, const struct pgkeel_member *m, const char *action,
                        const char *title, const char *body, int64_t timeout_ms)
{
	struct ctl_reply rep;
	char ts[64];
	int res;

	if (m == NULL)
		return -1;
	if (!ctl_request(ctl, m, "POST", strcmp(action, "switchover") == 0 ? "/switchover"
	                                                                   : "/failover",
	                 body, timeout_ms, &rep)) {
		fprintf(stderr, "Warning: %s: %s\n", m->name, rep.error);
		ctl_reply_free(&rep);
		return -1;
	}
	/* probably an old server without /switchover */
	if (rep.code == 501 && strcmp(action, "switchover") == 0 &&
	    strstr(rep.body, "Server does not support this operation") != NULL) {
		ctl_reply_free(&rep);
		if (!ctl_request(ctl, m, "POST", "/failover", body, timeout_ms, &rep)) {
			fprintf(stderr, "Warning: %s: %s\n", m->name, rep.error);
			ctl_reply_free(&rep);
			return -1;
		}
	}
	if (rep.code == 200 || rep.code == 202) {
		ctl_local_timestamp(ts, sizeof(ts));
		fprintf(ctl->out, "%s %s\n", ts, rep.body);
		res = 1;
	} else {
		fprintf(ctl->out, "%s failed, details: %ld, %s\n", title, rep.code, rep.body);
		res = 0;
	}
	ctl_reply_free(&rep);
	return res;
}

/* Write the failover key as Patroni's dcs.manual_failover() (no CAS). */
static int dcs_fallback(struct ctl *ctl, const char *action, const char *leader,
                        const char *candidate, const char *scheduled_at)
{
	char *json = pgkeel_failover_encode(leader, candidate, scheduled_at);
	struct pgkeel_err err = {0};
	enum pgkeel_dcs_status st;
	char ts[64];

	ctl_local_timestamp(ts, sizeof(ts));
	fprintf(ctl->out, "%s Could not %s using Patroni api, falling back to DCS\n", ts, action);
	st = ctl->plugin->set_failover(ctl->dcs, json, NULL, ctl_deadline(), &err);
	free(json);
	if (st != PGKEEL_DCS_OK)
		return ctl_dcs_error("writing the failover key", st, &err);
	return CTL_OK;
}

static int do_failover_or_switchover(struct ctl *ctl, const char *action, struct so_args *a)
{
	const char *title = strcmp(action, "switchover") == 0 ? "Switchover" : "Failover";
	bool switchover = strcmp(action, "switchover") == 0;
	struct pgkeel_cluster *c = NULL, *after;
	char *leader = NULL, *candidate = NULL, *scheduled = NULL, *sched_at = NULL, *body = NULL;
	const char **names = NULL;
	const struct pgkeel_member *target;
	size_t n_names = 0;
	const char *scope;
	char question[1024];
	int rc = CTL_FAIL, posted, loop_wait;

	scope = ctl_scope(ctl, a->scope);
	if (scope == NULL || !ctl_dcs(ctl, scope) || (c = ctl_load(ctl)) == NULL)
		return CTL_FAIL;
	fprintf(ctl->out, "Current cluster topology\n");
	ctl_ops_print_table(ctl, scope, c);

	if (switchover && pgkeel_cluster_is_unlocked(c)) {
		rc = ctl_error("This cluster has no leader");
		goto out;
	}
	if (a->leader != NULL) {
		leader = pgkeel_strdup(a->leader);
	} else if (a->force || !switchover) {
		const char *l = pgkeel_cluster_leader_name(c);

		leader = l != NULL && l[0] != '\0' ? pgkeel_strdup(l) : NULL;
	} else {
		/* patronictl 3.0.2 always says "Primary" here (its standby check never matches) */
		leader = ctl_prompt(ctl, "Primary", pgkeel_cluster_leader_name(c));
		if (leader == NULL) {
			rc = ctl_ops_aborted();
			goto out;
		}
	}
	if (leader != NULL && c->leader != NULL && !same(c->leader->name, leader)) {
		rc = ctl_error("Member %s is not the leader of cluster %s", leader, scope);
		goto out;
	}

	/* candidates: not the leader, not tagged nofailover; sorted */
	names = pgkeel_xcalloc(c->n_members + 1, sizeof(*names));
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];

		if (!same(m->name, leader) && !pgkeel_member_tag_truthy(&m->d, "nofailover"))
			names[n_names++] = m->name;
	}
	qsort(names, n_names, sizeof(*names), cmp_names);
	if (n_names == 0) {
		rc = ctl_error("No candidates found to %s to", action);
		goto out;
	}

	if (a->candidate != NULL) {
		candidate = pgkeel_strdup(a->candidate);
	} else if (!a->force) {
		struct pgkeel_sbuf q = {0};

		pgkeel_sbuf_puts(&q, "Candidate [");
		for (size_t i = 0; i < n_names; i++) { /* Python's str() of a list of names */
			pgkeel_sbuf_puts(&q, i ? "', '" : "'");
			pgkeel_sbuf_puts(&q, names[i]);
		}
		pgkeel_sbuf_puts(&q, "']");
		candidate = ctl_prompt(ctl, q.p, "");
		free(q.p);
		if (candidate == NULL) {
			rc = ctl_ops_aborted();
			goto out;
		}
	}
	if (!switchover && (candidate == NULL || candidate[0] == '\0')) {
		rc = ctl_error("Failover could be performed only to a specific candidate");
		goto out;
	}
	if (same(candidate, leader)) {
		rc = ctl_error("%s target and source are the same.", title);
		goto out;
	}
	if (candidate != NULL && candidate[0] != '\0') {
		bool known = false;

		for (size_t i = 0; i < n_names && !known; i++)
			known = strcmp(names[i], candidate) == 0;
		if (!known) {
			rc = ctl_error("Member %s does not exist in cluster %s", candidate, scope);
			goto out;
		}
	}

	if (switchover) {
		if (a->scheduled != NULL) {
			scheduled = pgkeel_strdup(a->scheduled);
		} else if (!a->force &&
		           (scheduled = ctl_ops_ask_when(ctl, "switchover", " ) ")) == NULL) {
			rc = ctl_ops_aborted();
			goto out;
		}
		if (scheduled != NULL && scheduled[0] != '\0' &&
		    !ctl_parse_schedule(scheduled, &sched_at))
			goto out;
		if (sched_at != NULL && ctl_ops_paused(c)) {
			rc = ctl_error("Can't schedule switchover in the paused state");
			goto out;
		}
	}

	if (!a->force) {
		char demote[512] = "";

		if (leader != NULL)
			pgkeel_fmt(demote, sizeof(demote), ", demoting current leader %s", leader);
		if (sched_at != NULL)
			pgkeel_fmt(question, sizeof(question),
			           "Are you sure you want to schedule %s of cluster %s at %s%s?", action,
			           scope, sched_at, demote);
		else
			pgkeel_fmt(question, sizeof(question), "Are you sure you want to %s cluster %s%s?",
			           action, scope, demote);
		if (!ctl_confirm(ctl, false, question)) {
			rc = ctl_error("Aborting %s%s", sched_at != NULL ? "scheduled " : "", action);
			goto out;
		}
	}

	body = request_body(leader, candidate, sched_at);
	target = c->leader != NULL ? c->leader->member
	                           : pgkeel_cluster_get_member(c, candidate ? candidate : "");
	/* the member itself waits up to 2 * max(10, loop_wait) s for the new leader */
	loop_wait = ctl_loop_wait(ctl, c);
	posted = post_request(ctl, target, action, title,
	                      body, (int64_t)(2 * (loop_wait > 10 ? loop_wait : 10) + 15) * 1000);
	if (posted == 0)
		goto out;
	if (posted < 0 && dcs_fallback(ctl, action, leader, candidate, sched_at) != CTL_OK)
		goto out;
	if (sched_at != NULL) {
		after = ctl_load(ctl);
		if (after != NULL)
			ctl_ops_print_table(ctl, scope, after);
		pgkeel_cluster_unref(after);
		rc = CTL_OK;
		goto out;
	}
	rc = wait_new_leader(ctl, scope, c, action, leader, candidate);
out:
	free(body);
	free(names);
	free(sched_at);
	free(scheduled);
	free(candidate);
	free(leader);
	pgkeel_cluster_unref(c);
	return rc;
}

/* ------------------------------------------------------------ options */

enum { OPT_LEADER = 0x101, OPT_CANDIDATE, OPT_SCHEDULED, OPT_FORCE };

static const struct option switchover_options[] = {
    {"leader", required_argument, NULL, OPT_LEADER},
    {"primary", required_argument, NULL, OPT_LEADER},
    {"master", required_argument, NULL, OPT_LEADER},
    {"candidate", required_argument, NULL, OPT_CANDIDATE},
    {"scheduled", required_argument, NULL, OPT_SCHEDULED},
    {"force", no_argument, NULL, OPT_FORCE},
    {0},
};

static const struct option failover_options[] = {
    {"leader", required_argument, NULL, OPT_LEADER},
    {"primary", required_argument, NULL, OPT_LEADER},
    {"master", required_argument, NULL, OPT_LEADER},
    {"candidate", required_argument, NULL, OPT_CANDIDATE},
    {"force", no_argument, NULL, OPT_FORCE},
    {0},
};

static int parse(const struct ctl_command *cmd, int argc, char **argv, struct so_args *a)
{
	int r;

	while ((r = ctl_getopt(cmd, argc, argv, "")) != -1) {
		switch (r) {
		case OPT_LEADER:
			a->leader = optarg;
			break;
		case OPT_CANDIDATE:
			a->candidate = optarg;
			break;
		case OPT_SCHEDULED:
			a->scheduled = optarg;
			break;
		case OPT_FORCE:
			a->force = true;
			break;
		default:
			return ctl_getopt_exit(r);
		}
	}
	if (argc - optind > 1)
		return ctl_usage_error(cmd, "Got unexpected extra argument (%s)", argv[optind + 1]);
	a->scope = optind < argc ? argv[optind] : NULL;
	return -1;
}

static int run_switchover(struct ctl *ctl, int argc, char **argv)
{
	struct so_args a = {0};
	int r = parse(&ctl_cmd_switchover, argc, argv, &a);

	return r >= 0 ? r : do_failover_or_switchover(ctl, "switchover", &a);
}

static int run_failover(struct ctl *ctl, int argc, char **argv)
{
	struct so_args a = {0};
	int r = parse(&ctl_cmd_failover, argc, argv, &a);

	if (r >= 0)
		return r;
	/* patronictl: a failover from a named leader is a switchover */
	return do_failover_or_switchover(ctl, a.leader != NULL ? "switchover" : "failover", &a);
}

const struct ctl_command ctl_cmd_switchover = {
    .name = "switchover",
    .run = run_switchover,
    .args = "[CLUSTER] [--leader NAME] [--candidate NAME] [--scheduled TIME] [--force]",
    .summary = "Switchover to a replica",
    .options = switchover_options,
    .help = "  --leader, --primary, --master NAME\n"
            "                    The name of the current leader\n"
            "  --candidate NAME  The name of the candidate\n"
            "  --scheduled TIME  Timestamp of a scheduled switchover in unambiguous format\n"
            "                    (e.g. ISO 8601), or now\n"
            "  --force           Do not ask for confirmation at any point\n",
};

const struct ctl_command ctl_cmd_failover = {
    .name = "failover",
    .run = run_failover,
    .args = "[CLUSTER] [--leader NAME] [--candidate NAME] [--force]",
    .summary = "Failover to a replica",
    .options = failover_options,
    .help = "  --leader, --primary, --master NAME\n"
            "                    The name of the current leader (makes it a switchover)\n"
            "  --candidate NAME  The name of the candidate\n"
            "  --force           Do not ask for confirmation at any point\n",
};
