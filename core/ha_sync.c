/*
 * Synchronous replication on the primary (spec patroni-dcs-and-ha.md §6.1-
 * 6.6, priority mode): candidate selection from pg_stat_replication, the
 * SyncHandler memory (the SSN last seen, the LSN mark, the standbys known to
 * have caught up), the /sync key state machine as released in 4.x without
 * quorum (enable when empty, repair an inconsistent key, SSN checked), and
 * the pre-promotion write.  3.0.2's wire values: `*` for strict mode without
 * a candidate, no `quorum` field.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ha_internal.h"
#include "json.h"
#include "util.h"

/* A list of names (borrowed pointers), used as a case-insensitive set. */
struct names {
	const char **v;
	size_t n, cap;
};

static bool names_has(const struct names *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i], name) == 0)
			return true;
	return false;
}

static void names_add(struct names *l, const char *name)
{
	if (names_has(l, name))
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 8;
		l->v = pgkeel_xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = name;
}

static void names_free(struct names *l)
{
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static bool names_eq(const struct names *a, const struct names *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!names_has(b, a->v[i]))
			return false;
	return true;
}

static void names_copy(struct names *dst, const struct names *src)
{
	dst->n = 0;
	for (size_t i = 0; i < src->n; i++)
		names_add(dst, src->v[i]);
}

/* Python's repr of a list of str: ['a', 'b'] */
static const char *names_repr(struct ha *h, const struct names *l)
{
	struct pgkeel_sbuf b = {0};

	pgkeel_sbuf_putc(&b, '[');
	for (size_t i = 0; i < l->n; i++) {
		if (i > 0)
			pgkeel_sbuf_puts(&b, ", ");
		pgkeel_sbuf_putc(&b, '\'');
		pgkeel_sbuf_puts(&b, l->v[i]);
		pgkeel_sbuf_putc(&b, '\'');
	}
	pgkeel_sbuf_putc(&b, ']');
	return ha_own(h, pgkeel_sbuf_finish(&b));
}

/* ------------------------------------------------------------------------ */
/* synchronous_standby_names: parse (3.0.2's tokenizer) and format */

struct ssn {
	bool star;
	int64_t num;
	struct names members; /* strings owned by the decision */
};

enum tok { T_FIRST, T_ANY, T_IDENT, T_DQUOT, T_STAR, T_NUM, T_COMMA, T_OPEN, T_CLOSE, T_JUNK };

struct token {
	enum tok t;
	const char *p;
	size_t len;
};

static bool ident_start(char c)
{
	return isalpha((unsigned char)c) || c == '_';
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$';
}

/* The regex alternation of Patroni's SYNC_REP_PARSER_RE, first match wins. */
static size_t tokenize(const char *s, struct token *out, size_t max)
{
	size_t n = 0;

	while (*s != '\0' && n < max) {
		struct token t = {.p = s, .len = 1};

		if (isspace((unsigned char)*s)) {
			s++;
			continue;
		}
		if (strncasecmp(s, "first", 5) == 0) {
			t.t = T_FIRST;
			t.len = 5;
		} else if (strncasecmp(s, "any", 3) == 0) {
			t.t = T_ANY;
			t.len = 3;
		} else if (ident_start(*s)) {
			t.t = T_IDENT;
			while (ident_char(s[t.len]))
				t.len++;
		} else if (*s == '"') {
			size_t i = 1;

			t.t = T_JUNK;
			for (;;) {
				if (s[i] == '\0')
					break;
				if (s[i] == '"' && s[i + 1] == '"') {
					i += 2;
				} else if (s[i] == '"') {
					t.t = T_DQUOT;
					t.len = i + 1;
					break;
				} else {
					i++;
				}
			}
		} else if (*s == '*') {
			t.t = T_STAR;
		} else if (isdigit((unsigned char)*s)) {
			t.t = T_NUM;
			while (isdigit((unsigned char)s[t.len]))
				t.len++;
		} else if (*s == ',') {
			t.t = T_COMMA;
		} else if (*s == '(') {
			t.t = T_OPEN;
		} else if (*s == ')') {
			t.t = T_CLOSE;
		} else {
			t.t = T_JUNK;
		}
		out[n++] = t;
		s += t.len;
	}
	return n;
}

/* parse_sync_standby_names; false (and empty) when it cannot be parsed. */
static bool ssn_parse(struct ha *h, const char *value, struct ssn *out)
{
	struct token tok[256];
	size_t n = tokenize(value, tok, PGKEEL_ARRAY_LEN(tok)), first = 0, last;

	memset(out, 0, sizeof(*out));
	if (n == 0)
		return true;
	if (n >= 3 && (tok[0].t == T_ANY || tok[0].t == T_FIRST) && tok[1].t == T_NUM &&
	    tok[2].t == T_OPEN && tok[n - 1].t == T_CLOSE) {
		out->num = strtoll(tok[1].p, NULL, 10);
		first = 3;
		last = n - 1;
	} else if (n >= 2 && tok[0].t == T_NUM && tok[1].t == T_OPEN && tok[n - 1].t == T_CLOSE) {
		out->num = strtoll(tok[0].p, NULL, 10);
		first = 2;
		last = n - 1;
	} else {
		out->num = 1;
		last = n;
	}
	for (size_t i = first; i < last; i++) {
		const struct token *t = &tok[i];

		if ((i - first) % 2 == 1) {
			if (i + 1 == last || t->t != T_COMMA)
				goto bad;
			continue;
		}
		if (t->t == T_IDENT || t->t == T_FIRST || t->t == T_ANY) {
			names_add(&out->members, ha_own(h, pgkeel_dup_bytes(t->p, t->len)));
		} else if (t->t == T_STAR) {
			names_add(&out->members, "*");
			out->star = true;
		} else if (t->t == T_DQUOT) {
			struct pgkeel_sbuf b = {0};

			for (size_t k = 1; k + 1 < t->len; k++) {
				pgkeel_sbuf_putc(&b, t->p[k]);
				if (t->p[k] == '"')
					k++;
			}
			names_add(&out->members, ha_own(h, pgkeel_sbuf_finish(&b)));
		} else {
			goto bad;
		}
	}
	return true;
bad:
	ha_note(h, true, "Unparseable synchronous_standby_names value '%s'", value);
	names_free(&out->members);
	memset(out, 0, sizeof(*out));
	return false;
}

static bool plain_name(const char *s)
{
	if (!ident_start(*s))
		return false;
	for (const char *p = s + 1; *p != '\0'; p++)
		if (!ident_char(*p))
			return false;
	return strcasecmp(s, "first") != 0 && strcasecmp(s, "any") != 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

char *pgkeel_ha_ssn_format(const char *const *names, size_t n, int server_version)
{
	struct pgkeel_sbuf b = {0};
	const char **sorted;
	bool multi;

	if (n == 0)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], "*") == 0)
			return pgkeel_strdup("*");
	sorted = pgkeel_xcalloc(n, sizeof(*sorted));
	memcpy(sorted, names, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_str);
	multi = n > 1 && (server_version == 0 || server_version >= 90600);
	if (multi)
		pgkeel_sbuf_printf(&b, "%zu (", n);
	else
		n = 1; /* before 9.6 a single name */
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			pgkeel_sbuf_putc(&b, ',');
		if (plain_name(sorted[i])) {
			pgkeel_sbuf_puts(&b, sorted[i]);
			continue;
		}
		pgkeel_sbuf_putc(&b, '"');
		for (const char *p = sorted[i]; *p != '\0'; p++) {
			if (*p == '"')
				pgkeel_sbuf_putc(&b, '"');
			pgkeel_sbuf_putc(&b, *p);
		}
		pgkeel_sbuf_putc(&b, '"');
	}
	if (multi)
		pgkeel_sbuf_putc(&b, ')');
	free(sorted);
	return pgkeel_sbuf_finish(&b);
}

void ha_set_ssn(struct ha *h, const char *const *names, size_t n)
{
	struct pgkeel_ha_effect *e = ha_fx(h, PGKEEL_HA_FX_SET_SSN);

	e->ssn = n == 0 ? "" : ha_own(h, pgkeel_ha_ssn_format(names, n, h->pg->server_version));
}

void ha_set_ssn_user(struct ha *h)
{
	ha_fx(h, PGKEEL_HA_FX_SET_SSN)->ssn = NULL;
}

/* ------------------------------------------------------------------------ */
/* SyncHandler */

static bool ready_has(const struct ha *h, const char *name)
{
	for (size_t i = 0; i < h->st.n_sync_ready; i++)
		if (strcasecmp(h->st.sync_ready[i], name) == 0)
			return true;
	return false;
}

static void ready_add(struct ha *h, const char *name)
{
	if (ready_has(h, name))
		return;
	h->st.sync_ready =
	    pgkeel_xreallocarray(h->st.sync_ready, h->st.n_sync_ready + 1, sizeof(char *));
	h->st.sync_ready[h->st.n_sync_ready++] = pgkeel_strdup(name);
}

/* _handle_synchronous_standby_names_change: a new value resets the mark. */
static void ssn_seen(struct ha *h, const char *value, int64_t mark, bool force_wal,
                     struct ssn *parsed)
{
	const char *v = value != NULL ? value : "";
	size_t k = 0;

	(void)ssn_parse(h, v, parsed);
	if (strcmp(v, h->st.sync_ssn != NULL ? h->st.sync_ssn : "") == 0)
		return;
	free(h->st.sync_ssn);
	h->st.sync_ssn = pgkeel_strdup(v);
	for (size_t i = 0; i < h->st.n_sync_ready; i++) {
		if (names_has(&parsed->members, h->st.sync_ready[i]))
			h->st.sync_ready[k++] = h->st.sync_ready[i];
		else
			free(h->st.sync_ready[i]);
	}
	h->st.n_sync_ready = k;
	h->st.sync_mark = mark;
	if (force_wal)
		ha_fx(h, PGKEEL_HA_FX_FORCE_WAL);
}

struct replica {
	const char *name;
	const char *sync_state;
	int64_t lsn;
	bool nofailover;
};

struct sync_view {
	struct names active;    /* "picked" */
	struct names confirmed; /* "allow_promote" */
	struct names ssn;       /* names in synchronous_standby_names, none with '*' */
	int64_t numsync;
};

static void sync_view_free(struct sync_view *v)
{
	names_free(&v->active);
	names_free(&v->confirmed);
	names_free(&v->ssn);
}

/* before a (sync_state, lsn) descending, stable */
static bool ahead(const struct replica *a, const struct replica *b)
{
	int c = strcmp(a->sync_state, b->sync_state);

	return c > 0 || (c == 0 && a->lsn > b->lsn);
}

/* current_state(): who should be synchronous, who is confirmed synchronous. */
static void current_state(struct ha *h, const char *ssn_value, int64_t mark, bool force_wal,
                          const struct pgkeel_pg_walsender *rows, size_t n_rows,
                          struct sync_view *out)
{
	const struct pgkeel_ha_settings *s = h->s;
	const char *sc = h->pg->synchronous_commit;
	struct replica *list = pgkeel_xcalloc(n_rows ? n_rows : 1, sizeof(*list));
	struct ssn parsed;
	size_t n = 0;
	int64_t max_lsn = 0, count;

	memset(out, 0, sizeof(*out));
	ssn_seen(h, ssn_value, mark, force_wal, &parsed);
	for (size_t i = 0; i < n_rows; i++) {
		const struct pgkeel_pg_walsender *w = &rows[i];
		const struct pgkeel_member *m = NULL;
		int64_t lsn = sc != NULL && strcmp(sc, "remote_apply") == 0   ? w->replay_lsn
		              : sc != NULL && strcmp(sc, "remote_write") == 0 ? w->write_lsn
		                                                              : w->flush_lsn;
		size_t k;

		if (w->state == NULL || strcmp(w->state, "streaming") != 0 || lsn < 0 ||
		    w->application_name == NULL)
			continue;
		for (size_t j = 0; j < h->c->n_members && m == NULL; j++)
			if (strcasecmp(h->c->members[j].name, w->application_name) == 0)
				m = &h->c->members[j];
		if (m == NULL || m->d.state == NULL || strcmp(m->d.state, "running") != 0 ||
		    pgkeel_member_tag_truthy(&m->d, "nosync") || strcasecmp(m->name, s->name) == 0)
			continue;
		for (k = 0; k < n && strcasecmp(list[k].name, m->name) != 0; k++)
			;
		list[k].name = m->name;
		list[k].sync_state = w->sync_state != NULL ? w->sync_state : "";
		list[k].lsn = lsn;
		list[k].nofailover = pgkeel_member_tag_truthy(&m->d, "nofailover");
		if (k == n)
			n++;
	}
	/* stable: by (sync_state, lsn) descending */
	for (size_t i = 1; i < n; i++) {
		struct replica r = list[i];
		size_t j = i;

		while (j > 0 && ahead(&r, &list[j - 1])) {
			list[j] = list[j - 1];
			j--;
		}
		list[j] = r;
	}
	for (size_t i = 0; i < n; i++) {
		/* a name listed in /sync counts at once; others once caught up with the mark */
		if (!ready_has(h, list[i].name) && names_has(&parsed.members, list[i].name) &&
		    (pgkeel_sync_matches(&h->c->sync, list[i].name, false) ||
		     (strcmp(list[i].sync_state, "sync") == 0 && list[i].lsn >= h->st.sync_mark)))
			ready_add(h, list[i].name);
		if (list[i].lsn > max_lsn)
			max_lsn = list[i].lsn;
	}
	if (n <= 1)
		max_lsn = h->pg->wal_position;
	/* stable: nofailover members last */
	for (size_t i = 1; i < n; i++) {
		struct replica r = list[i];
		size_t j = i;

		while (j > 0 && !r.nofailover && list[j - 1].nofailover) {
			list[j] = list[j - 1];
			j--;
		}
		list[j] = r;
	}
	count = h->pg->server_version > 0 && h->pg->server_version < 90600
	            ? 1
	            : s->synchronous_node_count;
	for (size_t i = 0; i < n; i++) {
		if (s->maximum_lag_on_syncnode <= 0 ||
		    max_lsn - list[i].lsn <= s->maximum_lag_on_syncnode) {
			names_add(&out->active, list[i].name);
			if (strcmp(list[i].sync_state, "sync") == 0 && ready_has(h, list[i].name))
				names_add(&out->confirmed, list[i].name);
			if ((int64_t)out->active.n >= count)
				break;
		}
	}
	if (!parsed.star)
		names_copy(&out->ssn, &parsed.members);
	out->numsync = parsed.num;
	names_free(&parsed.members);
	free(list);
}

/* ------------------------------------------------------------------------ */
/* the sync key */

enum pgkeel_ha_outcome ha_write_sync(struct ha *h, const char *const *standbys, size_t n,
                                     const char *version, const char **new_version)
{
	const struct pgkeel_ha_answers *r = &h->f->r;
	struct pgkeel_ha_request *req;
	const char **copy;

	if (new_version != NULL)
		*new_version = NULL;
	if (h->n_sync_writes < r->n_sync_writes) {
		const struct pgkeel_ha_sync_write *w = &r->sync_writes[h->n_sync_writes++];

		if (new_version != NULL)
			*new_version = w->version;
		/* Patroni's backends turn DCS errors of this write into a failed write */
		return w->outcome == PGKEEL_HA_OK ? PGKEEL_HA_OK : PGKEEL_HA_FAIL;
	}
	if (r->n_sync_writes >= PGKEEL_HA_MAX_SYNC_WRITES)
		return PGKEEL_HA_FAIL;
	req = ha_request(h, PGKEEL_HA_REQ_WRITE_SYNC);
	req->sync_leader = h->s->name;
	copy = ha_own(h, pgkeel_xcalloc(n ? n : 1, sizeof(*copy)));
	for (size_t i = 0; i < n; i++)
		copy[i] = standbys[i];
	if (n > 1)
		qsort(copy, n, sizeof(*copy), cmp_str);
	req->sync_standbys = copy;
	req->n_sync_standbys = n;
	req->sync_version = version;
	return PGKEEL_HA_PENDING;
}

/* disable_synchronous_replication */
static void sync_disable(struct ha *h)
{
	if (h->c->sync.leader != NULL) {
		ha_fx(h, PGKEEL_HA_FX_DELETE_SYNC)->version = h->c->sync.version;
		ha_note(h, false, "Disabled synchronous replication");
	}
	ha_set_ssn_user(h);
}

bool ha_sync_prepromote(struct ha *h)
{
	static const char *const star[] = {"*"};

	if (!ha_sync_mode(h)) {
		sync_disable(h);
		return true;
	}
	/* ourselves as the source of truth; standbys are found in the next cycles */
	if (ha_write_sync(h, NULL, 0, h->c->sync.version, NULL) != PGKEEL_HA_OK)
		return false;
	ha_set_ssn(h, star, h->s->synchronous_mode_strict ? 1 : 0);
	return true;
}

void ha_process_sync(struct ha *h)
{
	const struct pgkeel_ha_resample *rs = &h->f->r.resample;
	const struct pgkeel_sync *sync = &h->c->sync;
	const char *version = sync->version, *nv;
	struct names voters = {0}, common = {0}, picked = {0}, allow = {0};
	struct sync_view cs;
	enum pgkeel_ha_outcome o;
	bool star = false;

	if (!ha_sync_mode(h)) {
		sync_disable(h);
		return;
	}
	memset(&cs, 0, sizeof(cs));
	if (sync->leader == NULL) {
		/* [>=3.1.1] enable it explicitly, or it never becomes active without replicas */
		o = ha_write_sync(h, NULL, 0, version, &nv);
		if (o != PGKEEL_HA_OK) {
			if (o == PGKEEL_HA_FAIL)
				ha_note(h, true, "Updating sync state failed");
			return;
		}
		ha_note(h, false, "Enabled synchronous replication");
		version = nv;
	} else {
		for (size_t i = 0; i < sync->n_standbys; i++)
			names_add(&voters, sync->standbys[i]);
	}
	current_state(h, h->pg->synchronous_standby_names, h->pg->wal_position, true,
	              h->pg->walsenders, h->pg->n_walsenders, &cs);
	names_copy(&picked, &cs.active);
	names_copy(&allow, &cs.confirmed);

	if (sync->leader != NULL && strcmp(sync->leader, h->s->name) != 0) {
		/* [>=4.1.1] the key names another leader (a renamed node) */
		ha_note(h, true,
		        "Inconsistent state of /sync key detected, leader = %s doesn't match "
		        "%s, updating synchronous replication key",
		        sync->leader, h->s->name);
		o = ha_write_sync(h, NULL, 0, version, &nv);
		if (o != PGKEEL_HA_OK) {
			if (o == PGKEEL_HA_FAIL)
				ha_note(h, true, "Updating sync state failed");
			goto out;
		}
		version = nv;
		voters.n = 0;
	}
	if (names_eq(&picked, &voters) && !names_eq(&voters, &allow)) {
		/* [>=3.1.2] the key names a standby PostgreSQL does not confirm */
		ha_note(h, true,
		        "Inconsistent state between synchronous_standby_names = %s and /sync "
		        "= %s key detected, updating synchronous replication key...",
		        names_repr(h, &allow), names_repr(h, &voters));
		o = ha_write_sync(h, allow.v, allow.n, version, &nv);
		if (o != PGKEEL_HA_OK) {
			if (o == PGKEEL_HA_FAIL)
				ha_note(h, true, "Updating sync state failed");
			goto out;
		}
		version = nv;
		names_copy(&voters, &allow);
	}
	/* [>=4.0.6] done only when PostgreSQL has exactly this value too */
	if (names_eq(&picked, &voters) && names_eq(&voters, &cs.ssn) &&
	    cs.numsync == (int64_t)picked.n)
		goto out;

	/* remove from /sync first: keep only the names still confirmed */
	for (size_t i = 0; i < voters.n; i++)
		if (names_has(&allow, voters.v[i]))
			names_add(&common, voters.v[i]);
	if (!names_eq(&common, &voters)) {
		ha_note(h, false, "Updating synchronous privilege temporarily from %s to %s",
		        names_repr(h, &voters), names_repr(h, &common));
		o = ha_write_sync(h, common.v, common.n, version, &nv);
		if (o != PGKEEL_HA_OK) {
			if (o == PGKEEL_HA_FAIL)
				ha_note(h, false,
				        "Synchronous replication key updated by someone else.");
			goto out;
		}
		version = nv;
	}
	if (h->s->synchronous_mode_strict && picked.n == 0) {
		names_add(&picked, "*");
		star = true;
		ha_note(h, true, "No standbys available!");
	}
	ha_note(h, false, "Assigning synchronous standby status to %s", names_repr(h, &picked));
	if (picked.n > 0 && !star && !names_eq(&allow, &picked)) {
		/* set it, give PostgreSQL 2 s, see who is synchronous now */
		if (!rs->done) {
			ha_request(h, PGKEEL_HA_REQ_SYNC_RESAMPLE)->ssn = ha_own(
			    h, pgkeel_ha_ssn_format(picked.v, picked.n, h->pg->server_version));
			goto out;
		}
		sync_view_free(&cs);
		current_state(h, rs->ssn, rs->mark, false, rs->walsenders, rs->n_walsenders, &cs);
		names_copy(&allow, &cs.confirmed);
	} else {
		ha_set_ssn(h, picked.v, picked.n);
	}
	/* then add to /sync what PostgreSQL confirms */
	if (allow.n > 0 && !names_eq(&allow, &common)) {
		o = ha_write_sync(h, allow.v, allow.n, version, &nv);
		if (o == PGKEEL_HA_OK)
			ha_note(h, false, "Synchronous standby status assigned to %s",
			        names_repr(h, &allow));
		else if (o == PGKEEL_HA_FAIL)
			ha_note(h, false, "Synchronous replication key updated by someone else");
	}
out:
	sync_view_free(&cs);
	names_free(&voters);
	names_free(&common);
	names_free(&picked);
	names_free(&allow);
}
