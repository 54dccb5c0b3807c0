/*
 * pg_slots: which replication slots this node must have, the changes that
 * gets it there, and running them (contract and deviations in pg_slots.h).
 *
 * Read alongside Patroni 3.3's dcs/__init__.py (Cluster._get_members_slots,
 * _get_permanent_slots, _merge_permanent_slots, get_slot_name_on_primary,
 * __permanent_slots, filter_permanent_slots) and postgresql/slots.py
 * (SlotsHandler, including _ensure_logical_slots_replica): the last release
 * before member_slots_ttl, i.e. the pre-4.x rules of the spec.  Copying and
 * readiness of logical slots on replicas are in pg_slots_copy.c.
 */
#include "autoconf.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libpq-fe.h>

#include "json.h"
#include "log.h"
#include "pg_data.h"
#include "pg_slots.h"
#include "pg_slots_copy.h"
#include "pg_query.h"
#include "util.h"

/* ------------------------------------------------------------ small helpers */

const char *pgkeel_slot_type_name(enum pgkeel_slot_type t)
{
	return t == PGKEEL_SLOT_LOGICAL ? "logical" : "physical";
}

const char *pgkeel_slot_op_name(enum pgkeel_slot_op_kind k)
{
	switch (k) {
	case PGKEEL_SLOT_OP_DROP:
		return "drop";
	case PGKEEL_SLOT_OP_DROP_CHANGED:
		return "drop_changed";
	case PGKEEL_SLOT_OP_CREATE:
		return "create";
	case PGKEEL_SLOT_OP_ADVANCE:
		return "advance";
	}
	return "?";
}

bool pgkeel_slot_name_valid(const char *name)
{
	size_t n = 0;

	if (name == NULL)
		return false;
	for (const char *p = name; *p != '\0'; p++, n++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return n >= 1 && n <= 63;
}

/* Python's parse_bool(str(value)): 1 true, 0 false, -1 neither (absent, null...). */
static int py_bool(json_object *v)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	char buf[32];
	const char *s;

	switch (json_object_get_type(v)) {
	case json_type_boolean:
		return json_object_get_boolean(v) ? 1 : 0;
	case json_type_int:
		if (!pgkeel_fmt(buf, sizeof(buf), "%" PRId64, json_object_get_int64(v)))
			return -1;
		s = buf;
		break;
	case json_type_string:
		s = json_object_get_string(v);
		break;
	default:
		return -1;
	}
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0)
			return 1;
		if (strcasecmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* Python's parse_int for what Patroni stores: an integer or a decimal string. */
static bool py_int(json_object *v, int64_t *out)
{
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	if (json_object_is_type(v, json_type_string)) {
		const char *s = json_object_get_string(v);

		while (*s == ' ' || *s == '\t')
			s++;
		return pgkeel_parse_int64(s, out);
	}
	return false;
}

static json_object *obj_get(const json_object *o, const char *key)
{
	json_object *v = NULL;

	if (o == NULL || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

/* A string member, or NULL (absent, null or another type). */
static const char *obj_str(const json_object *o, const char *key)
{
	json_object *v = obj_get(o, key);

	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Patroni logs these as ERROR; here they are collected for the caller. */
#define diag_err(d, ...)                                                                           \
	do {                                                                                       \
		if ((d) != NULL)                                                                   \
			pgkeel_diag_error((d), __VA_ARGS__);                                       \
	} while (0)

/* Python's repr of a str in a list: 'name' (names here never hold quotes). */
static void put_py_list(struct pgkeel_sbuf *b, char *const *names, size_t n)
{
	pgkeel_sbuf_putc(b, '[');
	for (size_t i = 0; i < n; i++)
		pgkeel_sbuf_printf(b, "%s'%s'", i > 0 ? ", " : "", names[i]);
	pgkeel_sbuf_putc(b, ']');
}

char *pgkeel_slot_repr(enum pgkeel_slot_type type, const char *database, const char *plugin)
{
	if (type == PGKEEL_SLOT_PHYSICAL)
		return pgkeel_strdup("{'type': 'physical'}");
	return pgkeel_asprintf("{'type': 'logical', 'database': '%s', 'plugin': '%s'}",
	                       database ? database : "None", plugin ? plugin : "None");
}

/* -------------------------------------------------------------- tags */

/* Tags.nofailover: the nofailover tag when set, else failover_priority <= 0. */
static bool tags_nofailover(const json_object *tags)
{
	json_object *nf = obj_get(tags, "nofailover");
	int64_t prio;

	if (nf != NULL)
		return pgkeel_json_truthy(nf);
	return py_int(obj_get(tags, "failover_priority"), &prio) && prio <= 0;
}

/* Tags.nostream: parse_bool(tags.nostream) or False. */
static bool tags_nostream(const json_object *tags)
{
	return py_bool(obj_get(tags, "nostream")) == 1;
}

/*
 * Tags.replicatefrom.  *set: the tag is there and not null (Patroni's "is
 * not None"); the name when it is a string (another type equals no name).
 */
static const char *tags_replicatefrom(const json_object *tags, bool *set)
{
	json_object *v = obj_get(tags, "replicatefrom");

	*set = v != NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* ---------------------------------------------------------- desired slots */

static bool role_is_leader(enum pgkeel_pg_role r)
{
	return r == PGKEEL_PG_PRIMARY || r == PGKEEL_PG_STANDBY_LEADER;
}

static bool config_use_slots(json_object *config)
{
	json_object *pg = obj_get(config, "postgresql");
	json_object *v = obj_get(pg, "use_slots");

	if (pg == NULL || !json_object_object_get_ex(pg, "use_slots", NULL))
		return true;
	return py_bool(v) == 1;
}

static bool config_standby_cluster(json_object *config)
{
	json_object *sc = obj_get(config, "standby_cluster");

	return json_object_is_type(sc, json_type_object) &&
	       (pgkeel_json_truthy(obj_get(sc, "host")) ||
	        pgkeel_json_truthy(obj_get(sc, "port")) ||
	        pgkeel_json_truthy(obj_get(sc, "restore_command")));
}

/* The first non-empty of permanent_replication_slots, permanent_slots, slots; NULL if none. */
static json_object *config_permanent(json_object *config)
{
	static const char *const keys[] = {"permanent_replication_slots", "permanent_slots",
	                                   "slots"};

	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(keys); i++) {
		json_object *v = obj_get(config, keys[i]);

		if (pgkeel_json_truthy(v))
			return json_object_is_type(v, json_type_object) ? v : NULL;
	}
	return NULL;
}

bool pgkeel_slots_name_on_primary(const struct pgkeel_cluster *c, const char *name,
                                  const json_object *tags, char out[64])
{
	const char **seen = pgkeel_xcalloc(c->n_members + 1, sizeof(*seen));
	size_t n_seen = 0;
	bool ret = false;

	out[0] = '\0';
	for (;;) {
		const struct pgkeel_member *m;
		const char *rf;
		bool set;

		if (n_seen <= c->n_members)
			seen[n_seen++] = name;
		if (tags_nostream(tags))
			break;
		rf = tags_replicatefrom(tags, &set);
		m = rf != NULL && rf[0] != '\0' && strcmp(rf, name) != 0
		        ? pgkeel_cluster_get_member(c, rf)
		        : NULL;
		if (m == NULL) {
			pgkeel_pg_slot_name(name, out);
			ret = true;
			break;
		}
		{
			bool looped = false;

			for (size_t i = 0; i < n_seen; i++)
				looped = looped || strcmp(seen[i], m->name) == 0;
			if (looped)
				break;
		}
		name = m->name;
		tags = m->d.tags;
	}
	free(seen);
	return ret;
}

static struct pgkeel_slot_want *want_find(struct pgkeel_slots_desired *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++) {
		if (strcmp(d->v[i].name, name) == 0)
			return &d->v[i];
	}
	return NULL;
}

static struct pgkeel_slot_want *want_add(struct pgkeel_slots_desired *d, const char *name)
{
	struct pgkeel_slot_want *w;

	d->v = pgkeel_xreallocarray(d->v, d->n + 1, sizeof(*d->v));
	w = &d->v[d->n++];
	memset(w, 0, sizeof(*w));
	if (!pgkeel_fmt(w->name, sizeof(w->name), "%s", name))
		w->name[sizeof(w->name) - 1] = '\0'; /* callers pass at most 63 chars */
	w->type = PGKEEL_SLOT_PHYSICAL;
	return w;
}

/* Member slots (_get_members_slots), with Patroni's report of shared names. */
static void members_slots(const struct pgkeel_slots_input *in, struct pgkeel_slots_desired *out,
                          struct pgkeel_diag *diag)
{
	const struct pgkeel_cluster *c = in->cluster;
	const char *leader = pgkeel_cluster_leader_name(c);
	/* for each member taken: its slot name, to find collisions afterwards */
	char(*names)[64] = pgkeel_xcalloc(c->n_members + 1, sizeof(*names));
	const char **who = pgkeel_xcalloc(c->n_members + 1, sizeof(*who));
	size_t n = 0;
	bool collision = false;

	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		const char *rf;
		bool set, take;

		if (strcmp(m->name, in->name) == 0 || tags_nostream(m->d.tags))
			continue;
		rf = tags_replicatefrom(m->d.tags, &set);
		if (role_is_leader(in->role))
			take = !set || (rf != NULL && strcmp(rf, in->name) == 0) || rf == NULL ||
			       pgkeel_cluster_get_member(c, rf) == NULL;
		else
			take = rf != NULL && strcmp(rf, in->name) == 0 &&
			       (leader == NULL || strcmp(m->name, leader) != 0);
		if (!take)
			continue;
		pgkeel_pg_slot_name(m->name, names[n]);
		who[n] = m->name;
		if (want_find(out, names[n]) != NULL) {
			collision = true;
		} else {
			struct pgkeel_slot_want *w = want_add(out, names[n]);

			w->member = pgkeel_strdup(m->name);
		}
		n++;
	}
	if (collision) {
		struct pgkeel_sbuf b = {0};
		bool first_group = true;
		char *text;

		/* "a, b map to x; c, d map to y", in order of first appearance */
		for (size_t i = 0; i < n; i++) {
			size_t count = 0;
			bool seen_before = false;

			for (size_t j = 0; j < i; j++)
				seen_before = seen_before || strcmp(names[j], names[i]) == 0;
			for (size_t j = i; j < n; j++)
				count += strcmp(names[j], names[i]) == 0;
			if (seen_before || count < 2)
				continue;
			pgkeel_sbuf_puts(&b, first_group ? "" : "; ");
			first_group = false;
			for (size_t j = i, k = 0; j < n; j++) {
				if (strcmp(names[j], names[i]) == 0)
					pgkeel_sbuf_printf(&b, "%s%s", k++ > 0 ? ", " : "", who[j]);
			}
			pgkeel_sbuf_printf(&b, " map to %s", names[i]);
		}
		text = pgkeel_sbuf_finish(&b);
		diag_err(diag, "Following cluster members share a replication slot name: %s", text);
		free(text);
	}
	free(names);
	free(who);
}

enum perm_kind { PERM_PHYSICAL, PERM_LOGICAL, PERM_BAD };

/* How Patroni reads a permanent slot value (is_physical_slot / is_logical_slot / merge). */
static enum perm_kind perm_classify(json_object *v, const char **database, const char **plugin)
{
	json_object *type;

	*database = *plugin = NULL;
	if (!pgkeel_json_truthy(v))
		return PERM_PHYSICAL;
	if (!json_object_is_type(v, json_type_object))
		return PERM_BAD;
	type = obj_get(v, "type");
	if (json_object_object_get_ex(v, "type", NULL)) {
		const char *t =
		    json_object_is_type(type, json_type_string) ? json_object_get_string(type) : "";

		if (strcmp(t, "physical") == 0)
			return PERM_PHYSICAL;
		if (strcmp(t, "logical") != 0)
			return PERM_BAD;
	} else if (!pgkeel_json_truthy(obj_get(v, "database")) ||
	           !pgkeel_json_truthy(obj_get(v, "plugin"))) {
		return PERM_PHYSICAL;
	}
	if (!pgkeel_json_truthy(obj_get(v, "database")) ||
	    !pgkeel_json_truthy(obj_get(v, "plugin")))
		return PERM_BAD;
	/* Patroni would pass a non-string on to SQL; we do not */
	*database = obj_str(v, "database");
	*plugin = obj_str(v, "plugin");
	return *database != NULL && *plugin != NULL ? PERM_LOGICAL : PERM_BAD;
}

/* max(xlog_location of a member whose slot is `name` (physical), /status.slots[name]) */
static int64_t permanent_lsn(const struct pgkeel_cluster *c, const char *name, bool physical)
{
	int64_t lsn = 0, v;

	if (physical) {
		/* Patroni's dict {slot_name(m): m.lsn}: the last member of that slot name wins */
		int64_t mlsn = 0;

		for (size_t i = 0; i < c->n_members; i++) {
			char sn[64];

			pgkeel_pg_slot_name(c->members[i].name, sn);
			if (strcmp(sn, name) == 0)
				mlsn = c->members[i].d.xlog_location > 0
				           ? c->members[i].d.xlog_location
				           : 0;
		}
		lsn = mlsn;
	}
	if (py_int(obj_get(c->status.slots, name), &v) && v > lsn)
		lsn = v;
	return lsn;
}

/* _get_permanent_slots + _merge_permanent_slots */
static void permanent_slots(const struct pgkeel_slots_input *in, struct pgkeel_slots_desired *out,
                            struct pgkeel_diag *diag)
{
	json_object *perm = config_permanent(in->config);
	bool advance = in->server_version >= PGKEEL_SLOT_ADVANCE_VERSION;
	bool want_physical, want_logical;
	char my_slot[64];
	char **disabled = NULL;
	size_t n_disabled = 0;

	if (perm == NULL || !config_use_slots(in->config) || tags_nofailover(in->tags))
		return;
	if (config_standby_cluster(in->config) ||
	    !pgkeel_slots_name_on_primary(in->cluster, in->name, in->tags, my_slot)) {
		want_physical = advance || in->role == PGKEEL_PG_STANDBY_LEADER;
		want_logical = false;
	} else {
		want_physical = advance || in->role == PGKEEL_PG_PRIMARY;
		want_logical = true;
	}
	pgkeel_pg_slot_name(in->name, my_slot);
	json_object_object_foreach(perm, name, value)
	{
		const char *database, *plugin;
		enum perm_kind kind = perm_classify(value, &database, &plugin);
		struct pgkeel_slot_want *w;

		/* the subset _get_permanent_slots hands to the merge */
		if (kind == PERM_PHYSICAL  ? !want_physical
		    : kind == PERM_LOGICAL ? !want_logical
		                           : !(want_physical && want_logical))
			continue;
		if (!pgkeel_slot_name_valid(name)) {
			diag_err(diag, "Invalid permanent replication slot name '%s'", name);
			diag_err(diag,
			         "Slot name may only contain lower case letters, numbers, and "
			         "the underscore chars");
			continue;
		}
		if (kind == PERM_PHYSICAL) {
			if (strcmp(name, my_slot) == 0)
				continue; /* never a permanent physical slot for myself */
			w = want_find(out, name);
			if (w == NULL)
				w = want_add(out, name);
			w->permanent = true;
			w->lsn = permanent_lsn(in->cluster, name, true);
		} else if (kind == PERM_LOGICAL) {
			if (!advance) {
				disabled = pgkeel_xreallocarray(disabled, n_disabled + 1,
				                                sizeof(*disabled));
				disabled[n_disabled++] = name;
			} else if (want_find(out, name) != NULL) {
				char *repr =
				    pgkeel_slot_repr(PGKEEL_SLOT_LOGICAL, database, plugin);

				diag_err(
				    diag,
				    "Permanent logical replication slot {'%s': %s} is conflicting "
				    "with physical replication slot for cluster member",
				    name, repr);
				free(repr);
			} else {
				w = want_add(out, name);
				w->type = PGKEEL_SLOT_LOGICAL;
				w->database = pgkeel_strdup(database);
				w->plugin = pgkeel_strdup(plugin);
				w->permanent = true;
				w->lsn = permanent_lsn(in->cluster, name, false);
			}
		} else {
			char *text = pgkeel_json_compact(value);

			diag_err(diag, "Bad value for slot '%s' in permanent_slots: %s", name,
			         text);
			free(text);
		}
	}
	if (n_disabled > 0) {
		struct pgkeel_sbuf b = {0};
		char *text;

		put_py_list(&b, disabled, n_disabled);
		text = pgkeel_sbuf_finish(&b);
		diag_err(diag,
		         "Permanent logical replication slots supported by Patroni only starting "
		         "from PostgreSQL 11. Following slots will not be created: %s.",
		         text);
		free(text);
	}
	free(disabled);
}

void pgkeel_slots_compute_desired(const struct pgkeel_slots_input *in,
                                  struct pgkeel_slots_desired *out, struct pgkeel_diag *diag)
{
	memset(out, 0, sizeof(*out));
	out->role = in->role;
	out->server_version = in->server_version;
	out->paused = py_bool(obj_get(in->config, "pause")) == 1;
	out->managed =
	    in->cluster != NULL && in->cluster->config != NULL && in->server_version >= 100000;
	if (in->cluster == NULL || in->name == NULL)
		return;
	if (config_use_slots(in->config))
		members_slots(in, out, diag);
	permanent_slots(in, out, diag);
}

void pgkeel_slots_desired_clear(struct pgkeel_slots_desired *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].database);
		free(d->v[i].plugin);
		free(d->v[i].member);
	}
	free(d->v);
	d->v = NULL;
	d->n = 0;
}

const struct pgkeel_slot_want *pgkeel_slots_desired_find(const struct pgkeel_slots_desired *d,
                                                         const char *name)
{
	return want_find((struct pgkeel_slots_desired *)d, name);
}

/* ------------------------------------------------------------------ plan */

void pgkeel_slot_rows_clear(struct pgkeel_slot_rows *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].name);
		free(r->v[i].database);
		free(r->v[i].plugin);
	}
	free(r->v);
	r->v = NULL;
	r->n = 0;
}

/* matcher[a] == slot.get(a), Python style: only a string can equal a string */
static bool matcher_field(json_object *matcher, const char *key, const char *value)
{
	json_object *m = obj_get(matcher, key);

	if (!pgkeel_json_truthy(m))
		return true;
	return json_object_is_type(m, json_type_string) && value != NULL &&
	       strcmp(json_object_get_string(m), value) == 0;
}

bool pgkeel_slots_ignored(json_object *ignore_slots, const struct pgkeel_slot_row *row)
{
	size_t n;

	if (!json_object_is_type(ignore_slots, json_type_array))
		return false;
	n = json_object_array_length(ignore_slots);
	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(ignore_slots, i);
		json_object *name = obj_get(m, "name");

		if (!json_object_is_type(m, json_type_object))
			continue;
		if (name != NULL && !(json_object_is_type(name, json_type_string) &&
		                      strcmp(json_object_get_string(name), row->name) == 0))
			continue;
		if (matcher_field(m, "database", row->database) &&
		    matcher_field(m, "plugin", row->plugin) &&
		    matcher_field(m, "type", pgkeel_slot_type_name(row->type)))
			return true;
	}
	return false;
}

/* compare_slots(desired, existing) */
static bool slot_matches(const struct pgkeel_slot_want *w, const struct pgkeel_slot_row *r)
{
	if (w->type != r->type)
		return false;
	if (w->type == PGKEEL_SLOT_PHYSICAL)
		return true;
	return r->database != NULL && r->plugin != NULL && strcmp(w->database, r->database) == 0 &&
	       strcmp(w->plugin, r->plugin) == 0;
}

static const struct pgkeel_slot_row *row_find(const struct pgkeel_slot_row *rows, size_t n,
                                              const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].name, name) == 0)
			return &rows[i];
	}
	return NULL;
}

static struct pgkeel_slot_op *op_add(struct pgkeel_slots_plan *p, enum pgkeel_slot_op_kind kind,
                                     const char *name)
{
	struct pgkeel_slot_op *op;

	p->ops = pgkeel_xreallocarray(p->ops, p->n + 1, sizeof(*p->ops));
	op = &p->ops[p->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	if (!pgkeel_fmt(op->name, sizeof(op->name), "%s", name))
		op->name[sizeof(op->name) - 1] = '\0';
	return op;
}

static void name_add(char ***list, size_t *n, const char *name)
{
	*list = pgkeel_xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[(*n)++] = pgkeel_strdup(name);
}

static void op_create_logical(struct pgkeel_slots_plan *p, const struct pgkeel_slot_want *w,
                              bool after_drop)
{
	struct pgkeel_slot_op *op = op_add(p, PGKEEL_SLOT_OP_CREATE, w->name);

	op->type = PGKEEL_SLOT_LOGICAL;
	op->database = pgkeel_strdup(w->database);
	op->plugin = pgkeel_strdup(w->plugin);
	op->after_drop = after_drop;
}

/* A logical slot to create (primary) or copy (replica), not handled yet. */
static bool logical_missing(const struct pgkeel_slots_desired *d, size_t i,
                            const struct pgkeel_slot_row *rows, size_t n_rows, const bool *changed,
                            const bool *done)
{
	return d->v[i].type == PGKEEL_SLOT_LOGICAL && !done[i] &&
	       (row_find(rows, n_rows, d->v[i].name) == NULL || changed[i]);
}

/* An existing logical slot of the wanted kind, idle, behind its /status position. */
static bool logical_behind(const struct pgkeel_slot_want *w, const struct pgkeel_slot_row *rows,
                           size_t n_rows, bool changed)
{
	const struct pgkeel_slot_row *r = row_find(rows, n_rows, w->name);

	return w->type == PGKEEL_SLOT_LOGICAL && !changed && r != NULL && !r->active &&
	       w->lsn > 0 && r->confirmed_flush_lsn < w->lsn;
}

/*
 * Logical slots on a replica (_ensure_logical_slots_replica): an existing
 * one is advanced to its /status position when its confirmed_flush_lsn is
 * behind (grouped by database: the advance runs in the slot's database); a
 * missing one with a position is to be copied from the primary; one without
 * a position waits.  A changed one is only dropped here: the next cycle
 * finds it missing.
 */
static void plan_logical_replica(const struct pgkeel_slots_desired *d,
                                 const struct pgkeel_slot_row *rows, size_t n_rows,
                                 const bool *changed, struct pgkeel_slots_plan *out)
{
	bool *done = pgkeel_xcalloc(d->n + 1, sizeof(*done));

	for (size_t i = 0; i < d->n; i++) {
		const struct pgkeel_slot_want *w = &d->v[i];

		if (w->type != PGKEEL_SLOT_LOGICAL || changed[i] || w->lsn <= 0)
			continue;
		if (row_find(rows, n_rows, w->name) == NULL)
			name_add(&out->copy, &out->n_copy, w->name);
	}
	for (size_t i = 0; i < d->n; i++) {
		if (done[i] || !logical_behind(&d->v[i], rows, n_rows, changed[i]))
			continue;
		for (size_t j = i; j < d->n; j++) {
			const struct pgkeel_slot_want *w = &d->v[j];
			const struct pgkeel_slot_row *r;
			struct pgkeel_slot_op *op;

			if (done[j] || !logical_behind(w, rows, n_rows, changed[j]) ||
			    strcmp(w->database, d->v[i].database) != 0)
				continue;
			r = row_find(rows, n_rows, w->name);
			op = op_add(out, PGKEEL_SLOT_OP_ADVANCE, w->name);
			op->type = PGKEEL_SLOT_LOGICAL;
			op->database = pgkeel_strdup(w->database);
			op->lsn = w->lsn;
			op->from_lsn = r->confirmed_flush_lsn;
			done[j] = true;
		}
	}
	free(done);
}

void pgkeel_slots_make_plan(const struct pgkeel_slots_desired *d,
                            const struct pgkeel_slot_row *rows, size_t n_rows, json_object *config,
                            struct pgkeel_slots_plan *out)
{
	json_object *ignore = obj_get(config, "ignore_slots");
	bool *changed, *done;

	memset(out, 0, sizeof(*out));
	if (!d->managed)
		return;
	changed = pgkeel_xcalloc(d->n + 1, sizeof(*changed));
	done = pgkeel_xcalloc(d->n + 1, sizeof(*done));

	/* unknown slots (_drop_incorrect_slots, first loop) */
	for (size_t i = 0; i < n_rows; i++) {
		const struct pgkeel_slot_row *r = &rows[i];

		if (pgkeel_slots_desired_find(d, r->name) != NULL)
			continue;
		if (d->paused || pgkeel_slots_ignored(ignore, r))
			name_add(&out->ignored, &out->n_ignored, r->name);
		else if (r->active)
			name_add(&out->kept_active, &out->n_kept_active, r->name);
		else
			op_add(out, PGKEEL_SLOT_OP_DROP, r->name)->type = r->type;
	}
	/* desired slots whose attributes changed (second loop) */
	for (size_t i = 0; i < d->n; i++) {
		const struct pgkeel_slot_want *w = &d->v[i];
		const struct pgkeel_slot_row *r = row_find(rows, n_rows, w->name);
		struct pgkeel_slot_op *op;

		if (r == NULL || slot_matches(w, r))
			continue;
		changed[i] = true;
		op = op_add(out, PGKEEL_SLOT_OP_DROP_CHANGED, w->name);
		op->type = r->type;
		op->old_repr = pgkeel_slot_repr(r->type, r->database, r->plugin);
		op->new_repr = pgkeel_slot_repr(w->type, w->database, w->plugin);
	}
	/* physical slots: create or advance (_ensure_physical_slots) */
	for (size_t i = 0; i < d->n; i++) {
		const struct pgkeel_slot_want *w = &d->v[i];
		const struct pgkeel_slot_row *r = row_find(rows, n_rows, w->name);

		if (w->type != PGKEEL_SLOT_PHYSICAL)
			continue;
		if (r == NULL || changed[i]) {
			struct pgkeel_slot_op *op = op_add(out, PGKEEL_SLOT_OP_CREATE, w->name);

			op->type = PGKEEL_SLOT_PHYSICAL;
			op->after_drop = changed[i];
		} else if (d->server_version >= PGKEEL_SLOT_ADVANCE_VERSION && w->lsn > 0 &&
		           !r->active && r->restart_lsn >= 0 && w->lsn > r->restart_lsn) {
			struct pgkeel_slot_op *op = op_add(out, PGKEEL_SLOT_OP_ADVANCE, w->name);

			op->type = PGKEEL_SLOT_PHYSICAL;
			op->lsn = w->lsn;
			op->from_lsn = r->restart_lsn;
		}
	}
	/* logical slots: created on the primary, grouped by database */
	if (d->role == PGKEEL_PG_PRIMARY) {
		for (size_t i = 0; i < d->n; i++) {
			const struct pgkeel_slot_want *w = &d->v[i];

			if (!logical_missing(d, i, rows, n_rows, changed, done))
				continue;
			for (size_t j = i; j < d->n; j++) {
				if (logical_missing(d, j, rows, n_rows, changed, done) &&
				    strcmp(d->v[j].database, w->database) == 0) {
					op_create_logical(out, &d->v[j], changed[j]);
					done[j] = true;
				}
			}
		}
	} else {
		plan_logical_replica(d, rows, n_rows, changed, out);
	}
	free(done);
	free(changed);
}

static void names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

void pgkeel_slots_plan_clear(struct pgkeel_slots_plan *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->ops[i].database);
		free(p->ops[i].plugin);
		free(p->ops[i].old_repr);
		free(p->ops[i].new_repr);
	}
	free(p->ops);
	names_free(p->kept_active, p->n_kept_active);
	names_free(p->ignored, p->n_ignored);
	names_free(p->copy, p->n_copy);
	memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------- I/O */

#define READ_SQL                                                                                   \
	"SELECT slot_name, slot_type, plugin, database, active,"                                   \
	" pg_catalog.pg_wal_lsn_diff(restart_lsn, '0/0')::bigint, xmin::text,"                     \
	" catalog_xmin::text, pg_catalog.pg_wal_lsn_diff(confirmed_flush_lsn, '0/0')::bigint"      \
	" FROM pg_catalog.pg_replication_slots WHERE NOT temporary ORDER BY slot_name"

#define DROP_SQL                                                                                   \
	"WITH slots AS (SELECT slot_name, active FROM pg_catalog.pg_replication_slots"             \
	" WHERE slot_name = $1), dropped AS (SELECT "                                              \
	"pg_catalog.pg_drop_replication_slot(slot_name),"                                          \
	" true AS dropped FROM slots WHERE not active) SELECT active, COALESCE(dropped, false)"    \
	" FROM slots FULL OUTER JOIN dropped ON true"

#define CREATE_PHYSICAL_SQL                                                                        \
	"SELECT pg_catalog.pg_create_physical_replication_slot($1, true) WHERE NOT EXISTS"         \
	" (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical'"             \
	" AND slot_name = $1)"

#define CREATE_LOGICAL_SQL                                                                         \
	"SELECT pg_catalog.pg_create_logical_replication_slot($1, $2) WHERE NOT EXISTS"            \
	" (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_type = 'logical'"              \
	" AND slot_name = $1)"

#define ADVANCE_SQL "SELECT pg_catalog.pg_replication_slot_advance($1, $2)"

int64_t pgkeel_slots_cell_int(const struct pg_result *res, int row, int col)
{
	int64_t v;

	if (PQgetisnull(res, row, col) || !pgkeel_parse_int64(PQgetvalue(res, row, col), &v))
		return -1;
	return v;
}

static char *cell_str(PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : pgkeel_strdup(PQgetvalue(res, row, col));
}

bool pgkeel_slots_read(struct pgkeel_pg *pg, int64_t deadline_ms, struct pgkeel_slot_rows *out)
{
	struct pgkeel_pg_err err;
	PGresult *res = NULL;
	int n;

	memset(out, 0, sizeof(*out));
	if (pgkeel_pg_exec(pg, READ_SQL, 0, NULL, deadline_ms, &res, &err) != PGKEEL_PG_OK) {
		log_error("Failed to read replication slots: %s", err.msg);
		return false;
	}
	n = PQntuples(res);
	if (PQnfields(res) != 9) {
		log_error("Failed to read replication slots: unexpected answer");
		PQclear(res);
		return false;
	}
	out->v = pgkeel_xcalloc((size_t)n + 1, sizeof(*out->v));
	for (int i = 0; i < n; i++) {
		struct pgkeel_slot_row *r = &out->v[out->n];

		if (PQgetisnull(res, i, 0))
			continue;
		r->name = pgkeel_strdup(PQgetvalue(res, i, 0));
		r->type = strcmp(PQgetvalue(res, i, 1), "logical") == 0 ? PGKEEL_SLOT_LOGICAL
		                                                        : PGKEEL_SLOT_PHYSICAL;
		r->plugin = cell_str(res, i, 2);
		r->database = cell_str(res, i, 3);
		r->active = !PQgetisnull(res, i, 4) && strcmp(PQgetvalue(res, i, 4), "t") == 0;
		r->restart_lsn = pgkeel_slots_cell_int(res, i, 5);
		r->xmin = pgkeel_slots_cell_int(res, i, 6);
		r->catalog_xmin = pgkeel_slots_cell_int(res, i, 7);
		r->confirmed_flush_lsn = pgkeel_slots_cell_int(res, i, 8);
		out->n++;
	}
	PQclear(res);
	return true;
}

/* A statement failed: SQL errors let the plan go on, a lost connection stops it. */
static bool go_on_after(const struct pgkeel_pg_err *err)
{
	return err->rc == PGKEEL_PG_SQL;
}

/* The drop statement: *active, *dropped as Patroni's drop_replication_slot. */
static enum pgkeel_pg_rc drop_slot(struct pgkeel_pg *pg, const char *name, int64_t deadline_ms,
                                   bool *active, bool *dropped, struct pgkeel_pg_err *err)
{
	const char *params[1] = {name};
	PGresult *res = NULL;
	enum pgkeel_pg_rc rc = pgkeel_pg_exec(pg, DROP_SQL, 1, params, deadline_ms, &res, err);

	*active = *dropped = false;
	if (rc != PGKEEL_PG_OK)
		return rc;
	if (PQntuples(res) == 1 && PQnfields(res) == 2) {
		*active = !PQgetisnull(res, 0, 0) && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
		*dropped = !PQgetisnull(res, 0, 1) && strcmp(PQgetvalue(res, 0, 1), "t") == 0;
	}
	PQclear(res);
	return rc;
}

static enum pgkeel_pg_rc exec_simple(struct pgkeel_pg *pg, const char *sql, int nparams,
                                     const char *const *params, int64_t deadline_ms,
                                     struct pgkeel_pg_err *err)
{
	PGresult *res = NULL;
	enum pgkeel_pg_rc rc = pgkeel_pg_exec(pg, sql, nparams, params, deadline_ms, &res, err);

	if (rc == PGKEEL_PG_OK)
		PQclear(res);
	return rc;
}

struct apply_state {
	struct pgkeel_pg *pg;
	const struct pgkeel_pg_params *params;
	int64_t deadline_ms;
	struct pgkeel_slots_result *res;
	struct pgkeel_pg *db_pg; /* connection to db_name for logical slots */
	char *db_name;
	bool stop;        /* connection lost or deadline passed: skip the rest */
	char dropped[64]; /* the last DROP_CHANGED that succeeded */
};

static struct pgkeel_pg *db_connection(struct apply_state *st, const char *database)
{
	struct pgkeel_pg_params p;

	if (st->db_pg != NULL && strcmp(st->db_name, database) == 0)
		return st->db_pg;
	pgkeel_pg_free(st->db_pg);
	free(st->db_name);
	st->db_pg = NULL;
	st->db_name = NULL;
	if (st->params == NULL)
		return NULL;
	p = *st->params;
	p.dbname = database;
	p.replication = false;
	st->db_pg = pgkeel_pg_new(&p);
	st->db_name = pgkeel_strdup(database);
	return st->db_pg;
}

static void apply_drop(struct apply_state *st, const struct pgkeel_slot_op *op)
{
	struct pgkeel_pg_err err;
	bool active, dropped;

	if (op->kind == PGKEEL_SLOT_OP_DROP_CHANGED)
		log_info("Trying to drop replication slot '%s' because value is changing from %s "
		         "to %s",
		         op->name, op->old_repr, op->new_repr);
	if (drop_slot(st->pg, op->name, st->deadline_ms, &active, &dropped, &err) != PGKEEL_PG_OK) {
		log_error("Failed to drop replication slot '%s': %s", op->name, err.msg);
		st->res->failed++;
		st->stop = !go_on_after(&err);
		return;
	}
	if (op->kind == PGKEEL_SLOT_OP_DROP_CHANGED) {
		if (!active && dropped) {
			st->res->dropped++;
			if (!pgkeel_fmt(st->dropped, sizeof(st->dropped), "%s", op->name))
				st->dropped[0] = '\0';
		} else {
			log_error("Failed to drop replication slot '%s'", op->name);
			st->res->failed++;
		}
	} else if (dropped) {
		log_info("Dropped unknown replication slot '%s'", op->name);
		st->res->dropped++;
	} else if (active) {
		log_debug("Unable to drop unknown replication slot '%s', slot is still active",
		          op->name);
	} else {
		log_error("Failed to drop replication slot '%s'", op->name);
		st->res->failed++;
	}
}

static void apply_create(struct apply_state *st, const struct pgkeel_slot_op *op)
{
	struct pgkeel_pg_err err;
	const char *params[2] = {op->name, op->plugin};

	if (op->after_drop && strcmp(st->dropped, op->name) != 0) {
		st->res->skipped++; /* the old slot is still there */
		return;
	}
	if (op->type == PGKEEL_SLOT_PHYSICAL) {
		log_info("Trying to create physical replication slot '%s'", op->name);
		if (exec_simple(st->pg, CREATE_PHYSICAL_SQL, 1, params, st->deadline_ms, &err) !=
		    PGKEEL_PG_OK) {
			log_error("Failed to create physical replication slot '%s': %s", op->name,
			          err.msg);
			st->res->failed++;
			st->stop = !go_on_after(&err);
			return;
		}
	} else {
		struct pgkeel_pg *db = db_connection(st, op->database);

		log_info("Trying to create logical replication slot '%s' database='%s' plugin='%s'",
		         op->name, op->database, op->plugin);
		if (db == NULL) {
			log_error("Failed to create logical replication slot '%s' plugin='%s': no "
			          "connection parameters for database %s",
			          op->name, op->plugin, op->database);
			st->res->failed++;
			return;
		}
		if (exec_simple(db, CREATE_LOGICAL_SQL, 2, params, st->deadline_ms, &err) !=
		    PGKEEL_PG_OK) {
			log_error("Failed to create logical replication slot '%s' plugin='%s': %s",
			          op->name, op->plugin, err.msg);
			st->res->failed++;
			/* another database may still be reachable; only time stops us */
			return;
		}
	}
	st->res->created++;
}

static void apply_advance(struct apply_state *st, const struct pgkeel_slot_op *op)
{
	struct pgkeel_pg_err err;
	struct pgkeel_pg *pg = st->pg;
	char lsn[32];
	const char *params[2] = {op->name, lsn};

	pgkeel_lsn_format(op->lsn, lsn, sizeof(lsn));
	if (op->type == PGKEEL_SLOT_LOGICAL) {
		/* a logical slot is advanced from its own database */
		pg = db_connection(st, op->database);
		if (pg == NULL) {
			log_error("Failed to advance logical replication slot '%s': no connection "
			          "parameters for database %s",
			          op->name, op->database);
			st->res->failed++;
			return;
		}
	}
	if (exec_simple(pg, ADVANCE_SQL, 2, params, st->deadline_ms, &err) != PGKEEL_PG_OK) {
		if (op->type == PGKEEL_SLOT_PHYSICAL) {
			log_error("Error while advancing replication slot %s to position '%s': %s",
			          op->name, lsn, err.msg);
			st->stop = !go_on_after(&err);
		} else {
			log_error("Failed to advance logical replication slot '%s': %s", op->name,
			          err.msg);
			/* the WAL it needs is gone: only a fresh copy helps (Patroni) */
			if (strcmp(err.sqlstate, "58P01") == 0)
				name_add(&st->res->copy, &st->res->n_copy, op->name);
		}
		st->res->failed++;
		return;
	}
	log_debug("advanced replication slot %s to %s", op->name, lsn);
	st->res->advanced++;
}

void pgkeel_slots_apply(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params,
                        const struct pgkeel_slots_plan *plan, int64_t deadline_ms,
                        struct pgkeel_slots_result *res)
{
	struct apply_state st = {
	    .pg = pg, .params = params, .deadline_ms = deadline_ms, .res = res};
	unsigned skipped_before = res->skipped;

	for (size_t i = 0; i < plan->n_kept_active; i++)
		log_debug("Unable to drop unknown replication slot '%s', slot is still active",
		          plan->kept_active[i]);
	for (size_t i = 0; i < plan->n_copy; i++)
		name_add(&res->copy, &res->n_copy, plan->copy[i]);
	for (size_t i = 0; i < plan->n; i++) {
		const struct pgkeel_slot_op *op = &plan->ops[i];

		if (st.stop || pgkeel_now_monotonic_ms() >= deadline_ms) {
			st.stop = true;
			res->skipped++;
			continue;
		}
		switch (op->kind) {
		case PGKEEL_SLOT_OP_DROP:
		case PGKEEL_SLOT_OP_DROP_CHANGED:
			apply_drop(&st, op);
			break;
		case PGKEEL_SLOT_OP_CREATE:
			apply_create(&st, op);
			break;
		case PGKEEL_SLOT_OP_ADVANCE:
			apply_advance(&st, op);
			break;
		}
	}
	if (res->skipped > skipped_before && st.stop)
		log_warning("replication slot changes not finished: %u left for the next cycle",
		            res->skipped - skipped_before);
	pgkeel_pg_free(st.db_pg);
	free(st.db_name);
}

void pgkeel_slots_result_clear(struct pgkeel_slots_result *res)
{
	if (res == NULL)
		return;
	names_free(res->copy, res->n_copy);
	pgkeel_slot_rows_clear(&res->rows);
	memset(res, 0, sizeof(*res));
}

bool pgkeel_slots_sync(struct pgkeel_pg *pg, const struct pgkeel_pg_params *params,
                       const struct pgkeel_slots_input *in, struct pgkeel_slots_logical *logical,
                       int64_t deadline_ms, struct pgkeel_slots_result *res)
{
	struct pgkeel_slot_rows rows;
	struct pgkeel_slots_desired want;
	struct pgkeel_slots_plan plan;
	struct pgkeel_diag diag;

	memset(res, 0, sizeof(*res));
	pgkeel_diag_init(&diag);
	pgkeel_slots_compute_desired(in, &want, &diag);
	if (!want.managed) {
		pgkeel_slots_desired_clear(&want);
		pgkeel_diag_clear(&diag);
		res->read_ok = true;
		return true;
	}
	pgkeel_diag_log(&diag);
	pgkeel_diag_clear(&diag);
	if (!pgkeel_slots_read(pg, deadline_ms, &rows)) {
		pgkeel_slots_desired_clear(&want);
		return false;
	}
	res->read_ok = true;
	/* Patroni checks readiness before it advances or asks for copies */
	if (logical != NULL && in->role == PGKEEL_PG_PRIMARY)
		pgkeel_slots_logical_forget(logical);
	else if (logical != NULL)
		(void)pgkeel_slots_check_readiness(logical, pg, in, rows.v, rows.n, deadline_ms);
	pgkeel_slots_make_plan(&want, rows.v, rows.n, in->config, &plan);
	pgkeel_slots_apply(pg, params, &plan, deadline_ms, res);
	pgkeel_slots_plan_clear(&plan);
	pgkeel_slots_desired_clear(&want);
	res->rows = rows;
	return res->failed == 0;
}

/* _has_permanent_logical_slots: would `name` as a replica want a logical slot? */
static bool wants_logical(const struct pgkeel_slots_input *in, const char *name, json_object *tags)
{
	struct pgkeel_slots_input as = *in;
	struct pgkeel_slots_desired d;
	bool ret = false;

	as.name = name;
	as.tags = tags;
	as.role = PGKEEL_PG_REPLICA;
	pgkeel_slots_compute_desired(&as, &d, NULL);
	for (size_t i = 0; i < d.n; i++)
		ret = ret || d.v[i].type == PGKEEL_SLOT_LOGICAL;
	pgkeel_slots_desired_clear(&d);
	return ret;
}

/* should_enforce_hot_standby_feedback, the recursion bounded by the member count */
static bool hsf_needed(const struct pgkeel_slots_input *in, const char *name, json_object *tags,
                       size_t depth)
{
	const struct pgkeel_cluster *c = in->cluster;
	const char *leader = pgkeel_cluster_leader_name(c);

	if (wants_logical(in, name, tags))
		return true;
	if (!config_use_slots(in->config) || depth >= c->n_members)
		return false;
	for (size_t i = 0; i < c->n_members; i++) {
		const struct pgkeel_member *m = &c->members[i];
		bool set;
		const char *rf = tags_replicatefrom(m->d.tags, &set);

		if (rf != NULL && strcmp(rf, name) == 0 &&
		    (leader == NULL || strcmp(m->name, leader) != 0) &&
		    hsf_needed(in, m->name, (json_object *)m->d.tags, depth + 1))
			return true;
	}
	return false;
}

bool pgkeel_slots_need_hot_standby_feedback(const struct pgkeel_slots_input *in)
{
	if (in->cluster == NULL || in->cluster->config == NULL || in->name == NULL ||
	    in->server_version < PGKEEL_SLOT_ADVANCE_VERSION || config_standby_cluster(in->config))
		return false;
	return hsf_needed(in, in->name, in->tags, 0);
}

json_object *pgkeel_slots_status(const struct pgkeel_slots_input *in,
                                 const struct pgkeel_slot_row *rows, size_t n_rows,
                                 int64_t last_lsn)
{
	/* the permanent slots of RemoteMember('', {}) as a replica */
	struct pgkeel_slots_input any = {.cluster = in->cluster,
	                                 .name = "",
	                                 .role = PGKEEL_PG_REPLICA,
	                                 .tags = NULL,
	                                 .config = in->config,
	                                 .server_version = in->server_version};
	struct pgkeel_slots_desired perm;
	json_object *out = json_object_new_object();
	char mine[64];

	if (in->cluster == NULL || in->server_version < PGKEEL_SLOT_ADVANCE_VERSION)
		return out;
	pgkeel_slots_compute_desired(&any, &perm, NULL);
	pgkeel_pg_slot_name(in->name != NULL ? in->name : "", mine);
	for (size_t i = 0; i < n_rows; i++) {
		const struct pgkeel_slot_want *w = pgkeel_slots_desired_find(&perm, rows[i].name);
		int64_t pos;
		bool member_slot = false;

		if (w == NULL || !w->permanent || !slot_matches(w, &rows[i]) ||
		    strcmp(rows[i].name, mine) == 0)
			continue;
		for (size_t j = 0; j < in->cluster->n_members; j++) {
			char sn[64];

			pgkeel_pg_slot_name(in->cluster->members[j].name, sn);
			member_slot = member_slot || strcmp(sn, rows[i].name) == 0;
		}
		if (w->type == PGKEEL_SLOT_LOGICAL && member_slot)
			continue;
		pos = w->type == PGKEEL_SLOT_LOGICAL ? rows[i].confirmed_flush_lsn
		                                     : rows[i].restart_lsn;
		if (pos >= 0)
			json_object_object_add(out, rows[i].name, json_object_new_int64(pos));
	}
	{
		const struct pgkeel_slot_want *w = pgkeel_slots_desired_find(&perm, mine);

		if (w != NULL && w->permanent && w->type == PGKEEL_SLOT_PHYSICAL && last_lsn >= 0)
			json_object_object_add(out, mine, json_object_new_int64(last_lsn));
	}
	pgkeel_slots_desired_clear(&perm);
	return out;
}
