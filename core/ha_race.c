/*
 * The leader race (spec patroni-dcs-and-ha.md §5.4), is a failover possible
 * (§5.5) and the manual failover / switchover on the leader (§5.6).
 * Peer answers come from PGKEEL_HA_REQ_PROBE; a member is probed at most
 * once per cycle (Patroni probes again in each function of one cycle; the
 * answers within a cycle are the same facts).
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ha_internal.h"
#include "json.h"
#include "util.h"

/* ------------------------------------------------------------------------ */
/* member lists */

void ha_members_add(struct ha_members *l, const char *name, const char *api_url, bool nofailover)
{
	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i].name, name) == 0) {
			/* {m.name: m for m in ...}: the position of the first, the value of the
			 * last */
			l->v[i].api_url = api_url;
			l->v[i].nofailover = nofailover;
			return;
		}
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = pgkeel_xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n].name = name;
	l->v[l->n].api_url = api_url;
	l->v[l->n].nofailover = nofailover;
	l->n++;
}

void ha_members_add_cluster(struct ha_members *l, const struct pgkeel_cluster *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];

		ha_members_add(l, m->name, m->d.api_url,
		               pgkeel_member_tag_truthy(&m->d, "nofailover"));
	}
}

void ha_members_free(struct ha_members *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

static bool has_api_url(const struct ha_member *m)
{
	return m->api_url != NULL && m->api_url[0] != '\0';
}

/* ------------------------------------------------------------------------ */
/* probing */

static const struct pgkeel_ha_peer *peer_answer(const struct ha *h, const char *name)
{
	const struct pgkeel_ha_answers *r = &h->f->r;
	const struct pgkeel_ha_peer *found = NULL;

	for (size_t i = 0; i < r->n_peers; i++)
		if (ha_streq(r->peers[i].name, name))
			found = &r->peers[i];
	return found;
}

const struct pgkeel_ha_peer **ha_probe(struct ha *h, const struct ha_members *l)
{
	const struct pgkeel_ha_peer **out = pgkeel_xcalloc(l->n ? l->n : 1, sizeof(*out));
	struct pgkeel_ha_probe_target *missing = NULL;
	struct pgkeel_ha_request *r;
	size_t n_missing = 0;

	for (size_t i = 0; i < l->n; i++) {
		const struct ha_member *m = &l->v[i];

		if (!has_api_url(m) || ha_streq(m->name, h->s->name))
			continue;
		out[i] = peer_answer(h, m->name);
		if (out[i] != NULL)
			continue;
		if (missing == NULL)
			missing = pgkeel_xcalloc(l->n, sizeof(*missing));
		missing[n_missing].name = m->name;
		missing[n_missing].api_url = m->api_url;
		n_missing++;
	}
	if (n_missing == 0) {
		free(missing);
		return out;
	}
	free(out);
	r = ha_request(h, PGKEEL_HA_REQ_PROBE);
	r->targets = ha_own(h, missing);
	r->n_targets = n_missing;
	return NULL;
}

static const char *limitation(const struct pgkeel_ha_peer *p)
{
	if (!p->reachable)
		return "not reachable";
	if (p->nofailover)
		return "not allowed to promote";
	if (p->watchdog_failed)
		return "not watchdog capable";
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* _is_healthiest_node (§5.4.3, without quorum and failover_priority) */

static bool sync_leader_is(const struct ha *h, const char *name)
{
	return h->c->sync.leader != NULL && name != NULL &&
	       strcasecmp(h->c->sync.leader, name) == 0;
}

static bool is_healthiest_among(struct ha *h, const struct ha_members *members, bool check_lag)
{
	const struct pgkeel_ha_pg *pg = h->pg;
	const struct pgkeel_ha_peer **peers;
	struct ha_members l = {0};
	int64_t my_wal = pg->wal_position;
	bool ret = true;

	if (check_lag && ha_is_lagging(h, my_wal)) {
		ha_note(h, false, "My wal position exceeds maximum replication lag");
		return false;
	}
	if (!ha_is_standby_cluster(h) && h->s->check_timeline) {
		int64_t ctl = ha_cluster_timeline(h);

		if (pg->timeline <= 0) {
			ha_note(h, false, "Can not figure out my timeline");
			return false;
		}
		if (pg->timeline < ctl) {
			ha_note(h, false,
			        "My timeline %lld is behind last known cluster timeline %lld",
			        (long long)pg->timeline, (long long)ctl);
			return false;
		}
	}
	for (size_t i = 0; i < members->n; i++) {
		const struct ha_member *m = &members->v[i];

		if (!ha_streq(m->name, h->s->name) && has_api_url(m) && !m->nofailover)
			ha_members_add(&l, m->name, m->api_url, m->nofailover);
	}
	peers = ha_probe(h, &l);
	if (peers == NULL) {
		ha_members_free(&l);
		return false;
	}
	for (size_t i = 0; i < l.n && ret; i++) {
		const struct pgkeel_ha_peer *p = peers[i];

		if (p == NULL || limitation(p) != NULL)
			continue;
		if (!p->in_recovery) {
			ha_note(h, true, "Primary (%s) is still alive", l.v[i].name);
			ret = false;
		} else if (my_wal < p->wal_position) {
			ha_note(h, false, "Wal position of %s is ahead of my wal position",
			        l.v[i].name);
			/* in sync mode the former leader may still be reachable and ahead of us */
			if (!ha_sync_active(h) || !sync_leader_is(h, l.v[i].name))
				ret = false;
			else
				ha_note(h, false, "Ignoring the former leader being ahead of us");
		}
	}
	free(peers);
	ha_members_free(&l);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* is_failover_possible (§5.5) */

bool ha_is_failover_possible(struct ha *h, int64_t cluster_lsn, bool exclude_candidate)
{
	const struct pgkeel_cluster *c = h->c;
	const struct pgkeel_failover *fo = ha_failover_set(h) ? c->failover : NULL;
	const char *candidate = fo != NULL ? fo->candidate : NULL;
	const struct pgkeel_ha_peer **peers;
	struct ha_members l = {0};
	int64_t ctl = ha_cluster_timeline(h);
	int ok = 0;

	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];

		if (ha_streq(m->name, h->s->name) ||
		    (exclude_candidate && ha_streq(m->name, candidate)) ||
		    pgkeel_member_tag_truthy(&m->d, "nofailover") || m->d.api_url == NULL ||
		    m->d.api_url[0] == '\0')
			continue;
		/* only synchronous standbys (3.0.2 refuses a failover to an async node too) */
		if (ha_sync_active(h) && !pgkeel_sync_matches(&c->sync, m->name, false))
			continue;
		if (!exclude_candidate && candidate != NULL && !ha_streq(m->name, candidate))
			continue;
		ha_members_add(&l, m->name, m->d.api_url, false);
	}
	if (l.n == 0) {
		if (ha_sync_active(h) && candidate != NULL)
			ha_note(h, true,
			        "Failover candidate=%s does not match with sync_standbys=%s",
			        candidate, c->sync.n_standbys > 0 ? c->sync.standbys[0] : "None");
		else
			ha_note(h, true, "manual failover: members list is empty");
		return false;
	}
	peers = ha_probe(h, &l);
	if (peers == NULL) {
		ha_members_free(&l);
		return false;
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct pgkeel_ha_peer *p = peers[i];
		const char *why = p != NULL ? limitation(p) : "not reachable";

		if (why != NULL)
			ha_note(h, false, "Member %s is %s", l.v[i].name, why);
		else if (cluster_lsn > 0 ? p->wal_position < cluster_lsn
		                         : ha_is_lagging(h, p->wal_position))
			ha_note(h, false, "Member %s exceeds maximum replication lag", l.v[i].name);
		else if (h->s->check_timeline && (p->timeline <= 0 || p->timeline < ctl))
			ha_note(h, false,
			        "Timeline %lld of member %s is behind the cluster timeline %lld",
			        (long long)p->timeline, l.v[i].name, (long long)ctl);
		else
			ok++;
	}
	free(peers);
	ha_members_free(&l);
	return ok > 0;
}

/* ------------------------------------------------------------------------ */
/* manual_failover_process_no_leader (§5.4.4) */

enum tri { TRI_FALSE, TRI_TRUE, TRI_NONE };

static enum tri manual_failover_no_leader(struct ha *h)
{
	const struct pgkeel_cluster *c = h->c;
	const struct pgkeel_failover *fo = c->failover;
	const char *me = h->s->name;
	struct ha_members l = {0};
	bool ret;

	if (fo->candidate != NULL) {
		const struct pgkeel_member *m = pgkeel_cluster_get_member(c, fo->candidate);

		if (strcmp(fo->candidate, me) == 0)
			return TRI_TRUE;
		if (h->paused) {
			/* the candidate is gone: only the primary removes the key */
			if (m == NULL && h->is_primary) {
				ha_note(h, true,
				        "manual failover: removing failover key because failover "
				        "candidate is not running");
				ha_fx(h, PGKEEL_HA_FX_SET_FAILOVER)->version = fo->version;
				return TRI_NONE;
			}
			return TRI_FALSE;
		}
		if (ha_sync_mode(h) && !pgkeel_sync_matches(&c->sync, me, true))
			return TRI_FALSE;
		if (m != NULL) {
			const struct pgkeel_ha_peer **peers;
			const char *why;

			ha_members_add(&l, m->name, m->d.api_url,
			               pgkeel_member_tag_truthy(&m->d, "nofailover"));
			peers = ha_probe(h, &l);
			if (peers == NULL) {
				ha_members_free(&l);
				return TRI_FALSE;
			}
			why = peers[0] != NULL ? limitation(peers[0]) : "not reachable";
			free(peers);
			ha_members_free(&l);
			if (why == NULL) {
				ha_note(h, false, "manual failover: to %s, i am %s", fo->candidate,
				        me);
				return TRI_FALSE;
			}
			ha_note(h, true, "manual failover: member %s is %s", fo->candidate, why);
		}
		/* from here on the candidate counts as not given */
	} else if (h->paused) {
		return TRI_FALSE;
	}
	if (fo->leader != NULL && strcmp(fo->leader, me) == 0) {
		/* I was the leader: only if nobody else is healthy */
		bool possible = ha_is_failover_possible(h, 0, fo->candidate != NULL);

		if (h->stop)
			return TRI_FALSE;
		return possible ? TRI_FALSE : TRI_TRUE;
	}
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];

		if (ha_streq(m->name, fo->leader) ||
		    (ha_sync_active(h) && !pgkeel_sync_matches(&c->sync, m->name, false)))
			continue;
		ha_members_add(&l, m->name, m->d.api_url,
		               pgkeel_member_tag_truthy(&m->d, "nofailover"));
	}
	ret = is_healthiest_among(h, &l, false);
	ha_members_free(&l);
	return ret ? TRI_TRUE : TRI_FALSE;
}

/* ------------------------------------------------------------------------ */
/* is_healthiest_node (§5.4.2) */

bool ha_is_healthiest_node(struct ha *h)
{
	const struct pgkeel_ha_settings *s = h->s;
	const struct pgkeel_cluster *c = h->c;
	const struct pgkeel_ha_pg *pg = h->pg;
	struct ha_members all = {0}, l = {0};
	bool ret;

	if (h->st.released_key_ms > 0 && h->f->now_ms - h->st.released_key_ms < s->ttl * 1000) {
		ha_note(h, false,
		        "backoff: skip leader race after pre_promote script failure and "
		        "releasing the lock voluntarily");
		return false;
	}
	if (h->paused && !s->nofailover && ha_failover_set(h) &&
	    c->failover->scheduled_at == NULL) {
		enum tri t = manual_failover_no_leader(h);

		if (h->stop)
			return false;
		if (t != TRI_NONE)
			return t == TRI_TRUE;
	}
	if (h->pg_state == PGKEEL_PGCTL_STARTING)
		return false;
	if (h->is_primary) {
		int64_t ctl = ha_cluster_timeline(h);

		if (h->paused)
			return c->initialize == NULL || c->initialize[0] == '\0' ||
			       ha_streq(pg->sysid, c->initialize);
		/* [>=3.1.0] a stalled old primary must not retake the lock after a promotion */
		if (pg->timeline < ctl) {
			ha_note(h, true,
			        "My timeline %lld is behind last known cluster timeline %lld",
			        (long long)pg->timeline, (long long)ctl);
			return false;
		}
		return true;
	}
	if (h->paused || s->nofailover)
		return false;
	if (ha_failover_set(h)) {
		/* a switchover in sync mode: only the synchronous nodes and the old leader race */
		if (c->failover->leader != NULL && ha_sync_active(h) &&
		    !pgkeel_sync_matches(&c->sync, s->name, true))
			return false;
		return manual_failover_no_leader(h) == TRI_TRUE && !h->stop;
	}
	if (!h->f->watchdog_healthy) {
		ha_note(h, true, "Watchdog device is not usable");
		return false;
	}
	ha_members_add_cluster(&all, h->f->old_cluster);
	if (s->failsafe_mode && c->failsafe != NULL) {
		const struct pgkeel_failsafe *fs = c->failsafe;

		/* a node missing from a non-empty failsafe key never becomes the leader */
		if (fs->n_entries > 0 && pgkeel_failsafe_get(fs, s->name) == NULL) {
			ha_members_free(&all);
			return false;
		}
		for (size_t i = 0; i < fs->n_entries; i++)
			ha_members_add(&all, fs->entries[i].name, fs->entries[i].api_url, false);
	}
	ha_members_add_cluster(&all, c);
	if (ha_sync_active(h)) {
		if (!pgkeel_sync_matches(&c->sync, s->name, true)) {
			ha_members_free(&all);
			return false;
		}
		for (size_t i = 0; i < all.n; i++)
			if (pgkeel_sync_matches(&c->sync, all.v[i].name, true))
				ha_members_add(&l, all.v[i].name, all.v[i].api_url,
				               all.v[i].nofailover);
		ret = is_healthiest_among(h, &l, true);
	} else {
		ret = is_healthiest_among(h, &all, true);
	}
	ha_members_free(&all);
	ha_members_free(&l);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* process_manual_failover_from_leader (§5.6) */

const char *ha_manual_failover_from_leader(struct ha *h)
{
	const struct pgkeel_failover *fo;
	const char *me = h->s->name;
	bool cleanup;

	if (!ha_failover_set(h) || (h->paused && !h->is_primary))
		return NULL;
	fo = h->c->failover;
	if (fo->scheduled_at != NULL &&
	    !ha_scheduled_due(h, "failover", fo->scheduled_at, &cleanup)) {
		if (cleanup)
			ha_fx(h, PGKEEL_HA_FX_SET_FAILOVER)->version = fo->version;
		return NULL;
	}
	if (fo->leader == NULL || strcmp(fo->leader, me) == 0) {
		if (fo->candidate == NULL || strcmp(fo->candidate, me) != 0) {
			if (fo->candidate == NULL && h->paused) {
				ha_note(h, true,
				        "Failover is possible only to a specific candidate in a "
				        "paused state");
			} else {
				bool possible = ha_is_failover_possible(h, 0, false);

				HA_CHECK(h);
				if (possible) {
					ha_demote(h, PGKEEL_DEMOTE_GRACEFUL,
					          "manual failover: demote");
					return "manual failover: demoting myself";
				}
				ha_note(h, true,
				        "manual failover: no healthy members found, failover is "
				        "not possible");
			}
		} else {
			ha_note(h, true,
			        "manual failover: I am already the leader, no need to failover");
		}
	} else {
		ha_note(h, true, "manual failover: leader name does not match: %s != %s",
		        fo->leader, me);
	}
	ha_note(h, false, "Cleaning up failover key");
	ha_fx(h, PGKEEL_HA_FX_SET_FAILOVER)->version = fo->version;
	return NULL;
}
