/*
 * Unit tests for core/pg_slots.c: the slots a node must have (member slots
 * with nostream / nofailover / replicatefrom, permanent physical and
 * logical slots, names, use_slots, primary vs replica vs standby leader),
 * ignore_slots matchers, and the plan against pg_replication_slots rows.
 * Pure functions only; tests/integration/test_pg_slots.py runs the
 * executor against PostgreSQL 15.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "cluster.h"
#include "config.h"
#include "pg_slots.h"
#include "pg_slots_copy.h"
#include "util.h"

/* ---- building inputs ---- */

/* A snapshot from key/value pairs, NULL-terminated. */
static struct pgkeel_cluster *cluster_of(const char *const *kv)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

	for (size_t i = 0; kv[i] != NULL; i += 2) {
		struct pgkeel_dcs_entry e = {
		    .key = kv[i],
		    .value = kv[i + 1],
		    .value_len = strlen(kv[i + 1]),
		    .version = "1",
		    .modify_version = NULL,
		    .owner = NULL,
		};

		assert_int_equal(pgkeel_cluster_builder_add(b, &e), 0);
	}
	return pgkeel_cluster_builder_finish(b);
}

static json_object *parse(const char *text)
{
	json_object *o = json_tokener_parse(text);

	assert_non_null(o);
	return o;
}

/* One computation, kept for assertions. */
struct run {
	struct pgkeel_cluster *cluster;
	json_object *config;
	json_object *tags;
	struct pgkeel_diag diag;
	struct pgkeel_slots_desired want;
};

static void compute(struct run *r, const char *const *kv, const char *me, enum pgkeel_pg_role role,
                    const char *tags, const char *config, int version)
{
	struct pgkeel_slots_input in;

	memset(r, 0, sizeof(*r));
	r->cluster = cluster_of(kv);
	r->config = parse(config);
	r->tags = tags != NULL ? parse(tags) : NULL;
	pgkeel_diag_init(&r->diag);
	in.cluster = r->cluster;
	in.name = me;
	in.role = role;
	in.tags = r->tags;
	in.config = r->config;
	in.server_version = version;
	pgkeel_slots_compute_desired(&in, &r->want, &r->diag);
}

static void done(struct run *r)
{
	pgkeel_slots_desired_clear(&r->want);
	pgkeel_diag_clear(&r->diag);
	json_object_put(r->config);
	json_object_put(r->tags);
	pgkeel_cluster_unref(r->cluster);
}

/* "name:type" of every desired slot, space separated, in order. */
static void names_of(const struct pgkeel_slots_desired *d, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < d->n; i++) {
		int w = snprintf(buf + off, len - off, "%s%s:%c", i > 0 ? " " : "", d->v[i].name,
		                 d->v[i].type == PGKEEL_SLOT_LOGICAL ? 'L' : 'P');

		assert_true(w > 0 && (size_t)w < len - off);
		off += (size_t)w;
	}
}

static void assert_slots(const struct run *r, const char *expected)
{
	char buf[1024];

	names_of(&r->want, buf, sizeof(buf));
	assert_string_equal(buf, expected);
}

static const char *diag_error(const struct run *r, size_t i)
{
	assert_true(i < pgkeel_diag_errors(&r->diag));
	return json_object_get_string(json_object_array_get_idx(r->diag.errors, i));
}

#define CONFIG_KEY "config", "{}"
#define M(name, extra)                                                                             \
	"members/" name,                                                                           \
	    "{\"conn_url\":\"postgres://h/postgres\",\"api_url\":\"http://h/patroni\","            \
	    "\"state\":\"running\",\"role\":\"replica\",\"version\":\"3.0.2\"" extra "}"

static const char *const PLAIN_CONFIG = "{\"postgresql\":{\"use_slots\":true}}";

/* ---- member slots ---- */

static void test_primary_member_slots(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY, "leader", "pg1", M("pg1", ""), M("pg2", ""), M("pg3", ""),
	    /* nostream: archive only, no slot anywhere */
	    M("pg4", ",\"tags\":{\"nostream\":\"on\"}"),
	    /* cascades from pg2, which is a member: pg2 carries its slot */
	    M("pg5", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    /* asks for me explicitly */
	    M("pg6", ",\"tags\":{\"replicatefrom\":\"pg1\"}"),
	    /* names a member that does not exist: falls back to the primary */
	    M("pg7", ",\"tags\":{\"replicatefrom\":\"gone\"}"),
	    /* nofailover changes nothing for member slots */
	    M("pg8", ",\"tags\":{\"nofailover\":true}"), NULL};
	struct run r;

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, PLAIN_CONFIG, 150004);
	assert_true(r.want.managed);
	assert_false(r.want.paused);
	assert_slots(&r, "pg2:P pg3:P pg6:P pg7:P pg8:P");
	assert_string_equal(r.want.v[0].member, "pg2");
	assert_false(r.want.v[0].permanent);
	assert_int_equal(r.want.v[0].lsn, 0);
	assert_int_equal(pgkeel_diag_errors(&r.diag), 0);
	done(&r);

	/* a standby leader follows the same member rule */
	compute(&r, kv, "pg1", PGKEEL_PG_STANDBY_LEADER, NULL, PLAIN_CONFIG, 150004);
	assert_slots(&r, "pg2:P pg3:P pg6:P pg7:P pg8:P");
	done(&r);
}

static void test_replica_member_slots(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY, "leader", "pg1",
	    /* the leader itself cascades from me: never a slot for the leader */
	    M("pg1", ",\"tags\":{\"replicatefrom\":\"pg2\"}"), M("pg2", ""),
	    M("pg3", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    M("pg4", ",\"tags\":{\"replicatefrom\":\"pg3\"}"),
	    M("pg5", ",\"tags\":{\"replicatefrom\":\"pg2\",\"nostream\":true}"), M("pg6", ""),
	    NULL};
	struct run r;

	(void)state;
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, PLAIN_CONFIG, 150004);
	assert_slots(&r, "pg3:P");
	assert_string_equal(r.want.v[0].member, "pg3");
	done(&r);

	/* pg3 carries pg4 */
	compute(&r, kv, "pg3", PGKEEL_PG_REPLICA, NULL, PLAIN_CONFIG, 150004);
	assert_slots(&r, "pg4:P");
	done(&r);

	/* nobody streams from pg6 */
	compute(&r, kv, "pg6", PGKEEL_PG_REPLICA, NULL, PLAIN_CONFIG, 150004);
	assert_slots(&r, "");
	done(&r);
}

static void test_slot_names_and_collisions(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,
	                                 "leader",
	                                 "pg1",
	                                 M("pg1", ""),
	                                 M("Pg-2.x@y", ""),
	                                 M("pg_2_xu0064y", ""),
	                                 M("node.a", ""),
	                                 M("node-a", ""),
	                                 M("NODE_A", ""),
	                                 NULL};
	struct run r;

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, PLAIN_CONFIG, 150004);
	assert_slots(&r, "pg_2_xu0064y:P node_a:P");
	/* the first member of a shared name is the one recorded */
	assert_string_equal(r.want.v[0].member, "Pg-2.x@y");
	assert_int_equal(pgkeel_diag_errors(&r.diag), 1);
	assert_string_equal(diag_error(&r, 0),
	                    "Following cluster members share a replication slot name: "
	                    "Pg-2.x@y, pg_2_xu0064y map to pg_2_xu0064y; node.a, node-a, NODE_A "
	                    "map to node_a");
	done(&r);
}

static void test_use_slots_off(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,   "leader",     "pg1",
	                                 M("pg1", ""), M("pg2", ""), NULL};
	static const char *const configs[] = {
	    "{\"postgresql\":{\"use_slots\":false},\"slots\":{\"keep\":{\"type\":\"physical\"}}}",
	    "{\"postgresql\":{\"use_slots\":\"off\"},\"slots\":{\"keep\":null}}",
	    "{\"postgresql\":{\"use_slots\":null},\"slots\":{\"keep\":null}}",
	    "{\"postgresql\":{\"use_slots\":\"maybe\"},\"slots\":{\"keep\":null}}",
	};
	struct run r;

	(void)state;
	for (size_t i = 0; i < PGKEEL_ARRAY_LEN(configs); i++) {
		compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, configs[i], 150004);
		assert_slots(&r, "");
		assert_true(r.want.managed); /* unknown slots are still dropped */
		done(&r);
	}
	/* absent, "on", 1: on */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, "{}", 150004);
	assert_slots(&r, "pg2:P");
	done(&r);
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, "{\"postgresql\":{\"use_slots\":\"on\"}}",
	        150004);
	assert_slots(&r, "pg2:P");
	done(&r);
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, "{\"postgresql\":{\"use_slots\":1}}",
	        150004);
	assert_slots(&r, "pg2:P");
	done(&r);
}

static void test_unmanaged(void **state)
{
	/* no config key: a wiped DCS must not make us drop every slot */
	static const char *const kv[] = {"leader", "pg1", M("pg1", ""), M("pg2", ""), NULL};
	static const char *const kv2[] = {CONFIG_KEY, M("pg1", ""), NULL};
	struct run r;

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, PLAIN_CONFIG, 150004);
	assert_false(r.want.managed);
	done(&r);
	compute(&r, kv2, "pg1", PGKEEL_PG_PRIMARY, NULL, PLAIN_CONFIG, 90600);
	assert_false(r.want.managed);
	done(&r);
	compute(&r, kv2, "pg1", PGKEEL_PG_PRIMARY, NULL, "{\"pause\":\"yes\"}", 150004);
	assert_true(r.want.managed);
	assert_true(r.want.paused);
	done(&r);
}

/* ---- permanent slots ---- */

static const char *const PERM_CONFIG =
    "{\"postgresql\":{\"use_slots\":true},"
    "\"slots\":{\"keep_phys\":{\"type\":\"physical\"},\"plain\":null,\"empty\":{},"
    "\"cdc\":{\"type\":\"logical\",\"database\":\"app\",\"plugin\":\"pgoutput\"},"
    "\"cdc2\":{\"database\":\"app\",\"plugin\":\"test_decoding\"},"
    "\"half\":{\"database\":\"app\"}}}";

static void test_permanent_on_primary(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "status",
	    "{\"optime\":100,\"slots\":{\"keep_phys\":5000,\"cdc\":7000,\"pg2\":1}}",
	    M("pg1", ""),
	    M("pg2", ",\"xlog_location\":4000"),
	    NULL};
	struct run r;
	const struct pgkeel_slot_want *w;

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, PERM_CONFIG, 150004);
	/* "half" has no plugin and no type: physical, as Patroni reads it */
	assert_slots(&r, "pg2:P keep_phys:P plain:P empty:P cdc:L cdc2:L half:P");
	assert_int_equal(pgkeel_diag_errors(&r.diag), 0);
	w = pgkeel_slots_desired_find(&r.want, "keep_phys");
	assert_true(w->permanent);
	assert_null(w->member);
	assert_int_equal(w->lsn, 5000);
	w = pgkeel_slots_desired_find(&r.want, "cdc");
	assert_string_equal(w->database, "app");
	assert_string_equal(w->plugin, "pgoutput");
	assert_int_equal(w->lsn, 7000);
	w = pgkeel_slots_desired_find(&r.want, "cdc2");
	assert_string_equal(w->plugin, "test_decoding");
	assert_int_equal(w->lsn, 0);
	w = pgkeel_slots_desired_find(&r.want, "pg2");
	assert_false(w->permanent);
	assert_null(pgkeel_slots_desired_find(&r.want, "nope"));
	done(&r);

	/* permanent_replication_slots wins over permanent_slots over slots */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL,
	        "{\"slots\":{\"a\":null},\"permanent_slots\":{\"b\":null},"
	        "\"permanent_replication_slots\":{}}",
	        150004);
	assert_slots(&r, "pg2:P b:P");
	done(&r);
}

static void test_permanent_named_like_member(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "status",
	    "{\"optime\":100,\"slots\":{\"pg2\":3000}}",
	    M("pg1", ",\"xlog_location\":9000"),
	    M("pg2", ",\"xlog_location\":4000"),
	    M("pg3", ",\"xlog_location\":6000,\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    NULL};
	static const char *const config =
	    "{\"slots\":{\"pg2\":{\"type\":\"physical\"},\"pg3\":null,"
	    "\"pg1\":{\"type\":\"physical\"},"
	    "\"pg2x\":null}}";
	static const char *const config_logical =
	    "{\"slots\":{\"pg2\":{\"type\":\"logical\",\"database\":\"d\",\"plugin\":\"p\"}}}";
	struct run r;
	const struct pgkeel_slot_want *w;

	(void)state;
	/* physical: merged into the member slot; named like me: skipped */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 150004);
	assert_slots(&r, "pg2:P pg3:P pg2x:P");
	w = pgkeel_slots_desired_find(&r.want, "pg2");
	assert_true(w->permanent);
	assert_string_equal(w->member, "pg2");
	assert_int_equal(w->lsn, 4000); /* max(member xlog_location 4000, status 3000) */
	/* pg3 cascades from pg2, but its permanent slot stays here, kept at its position */
	w = pgkeel_slots_desired_find(&r.want, "pg3");
	assert_true(w->permanent);
	assert_null(w->member);
	assert_int_equal(w->lsn, 6000);
	done(&r);

	/* logical named like a member slot: rejected */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config_logical, 150004);
	assert_slots(&r, "pg2:P");
	assert_false(pgkeel_slots_desired_find(&r.want, "pg2")->permanent);
	assert_int_equal(pgkeel_diag_errors(&r.diag), 1);
	assert_string_equal(diag_error(&r, 0),
	                    "Permanent logical replication slot {'pg2': {'type': 'logical', "
	                    "'database': 'd', 'plugin': 'p'}} is conflicting with physical "
	                    "replication slot for cluster member");
	done(&r);
}

static void test_permanent_invalid(void **state)
{
	static const char *const kv[] = {CONFIG_KEY, "leader", "pg1", M("pg1", ""), NULL};
	static const char *const config =
	    "{\"slots\":{\"Upper\":null,\"with-dash\":null,"
	    "\"a123456789012345678901234567890123456789012345678901234567890123\":null,"
	    "\"ok_1\":null,\"num\":5,\"lst\":[1],\"typo\":{\"type\":\"physicl\"},"
	    "\"nolog\":{\"type\":\"logical\",\"database\":\"d\"},"
	    "\"ntype\":{\"type\":null},"
	    "\"a12345678901234567890123456789012345678901234567890123456789012\":null}}";
	struct run r;

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 150004);
	assert_slots(&r,
	             "ok_1:P a12345678901234567890123456789012345678901234567890123456789012:P");
	/* the hint line is reported once (diag keeps distinct lines) */
	assert_int_equal(pgkeel_diag_errors(&r.diag), 9);
	assert_string_equal(diag_error(&r, 0), "Invalid permanent replication slot name 'Upper'");
	assert_string_equal(diag_error(&r, 1), "Slot name may only contain lower case letters, "
	                                       "numbers, and the underscore chars");
	assert_string_equal(diag_error(&r, 2),
	                    "Invalid permanent replication slot name 'with-dash'");
	assert_string_equal(diag_error(&r, 3),
	                    "Invalid permanent replication slot name "
	                    "'a123456789012345678901234567890123456789012345678901234567890123'");
	assert_string_equal(diag_error(&r, 4), "Bad value for slot 'num' in permanent_slots: 5");
	assert_string_equal(diag_error(&r, 5), "Bad value for slot 'lst' in permanent_slots: [1]");
	assert_string_equal(diag_error(&r, 6),
	                    "Bad value for slot 'typo' in permanent_slots: {\"type\":\"physicl\"}");
	assert_string_equal(diag_error(&r, 7), "Bad value for slot 'nolog' in permanent_slots: "
	                                       "{\"type\":\"logical\",\"database\":\"d\"}");
	assert_string_equal(diag_error(&r, 8),
	                    "Bad value for slot 'ntype' in permanent_slots: {\"type\":null}");
	done(&r);

	/* name checks before the value: slot names are also valid slot_name() outputs */
	assert_true(pgkeel_slot_name_valid("a_1"));
	assert_false(pgkeel_slot_name_valid(""));
	assert_false(pgkeel_slot_name_valid(NULL));
	assert_false(pgkeel_slot_name_valid("a b"));
	assert_false(pgkeel_slot_name_valid("é"));
}

static void test_permanent_on_replica(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,   "leader",     "pg1",
	    M("pg1", ""), M("pg2", ""), M("pg3", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    NULL};
	struct run r;

	(void)state;
	/* 11+: physical and logical permanent slots live on replicas too */
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, PERM_CONFIG, 150004);
	assert_slots(&r, "pg3:P keep_phys:P plain:P empty:P cdc:L cdc2:L half:P");
	done(&r);

	/* nofailover: no permanent slot at all, member slots stay */
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, "{\"nofailover\":true}", PERM_CONFIG, 150004);
	assert_slots(&r, "pg3:P");
	done(&r);
	/* failover_priority 0 means nofailover when nofailover is absent */
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, "{\"failover_priority\":0}", PERM_CONFIG, 150004);
	assert_slots(&r, "pg3:P");
	done(&r);
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, "{\"failover_priority\":0,\"nofailover\":false}",
	        PERM_CONFIG, 150004);
	assert_slots(&r, "pg3:P keep_phys:P plain:P empty:P cdc:L cdc2:L half:P");
	done(&r);
	/* also on a primary (Patroni 3.x) */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, "{\"nofailover\":\"yes\"}", PERM_CONFIG, 150004);
	assert_slots(&r, "pg2:P");
	done(&r);

	/* 10: a replica would only get logical slots, which 10 cannot have */
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, PERM_CONFIG, 100020);
	assert_slots(&r, "pg3:P");
	assert_int_equal(pgkeel_diag_errors(&r.diag), 1);
	assert_string_equal(diag_error(&r, 0),
	                    "Permanent logical replication slots supported by Patroni only "
	                    "starting from PostgreSQL 11. Following slots will not be created: "
	                    "['cdc', 'cdc2'].");
	done(&r);
	/* 10 primary: the physical ones */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, PERM_CONFIG, 100020);
	assert_slots(&r, "pg2:P keep_phys:P plain:P empty:P half:P");
	done(&r);
}

static void test_permanent_nostream_and_standby(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,
	                                 "leader",
	                                 "pg1",
	                                 M("pg1", ""),
	                                 M("pg2", ",\"tags\":{\"nostream\":true}"),
	                                 M("pg3", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	                                 M("pg4", ",\"tags\":{\"replicatefrom\":\"pg5\"}"),
	                                 M("pg5", ",\"tags\":{\"replicatefrom\":\"pg4\"}"),
	                                 NULL};
	static const char *const standby =
	    "{\"standby_cluster\":{\"host\":\"10.0.0.1\",\"port\":5432},"
	    "\"slots\":{\"keep_phys\":null,\"cdc\":{\"database\":\"a\",\"plugin\":\"b\"}}}";
	struct run r;

	(void)state;
	/* I do not stream (nostream): only physical permanent slots */
	compute(&r, kv, "pg6", PGKEEL_PG_REPLICA, "{\"nostream\":\"true\"}", PERM_CONFIG, 150004);
	assert_slots(&r, "keep_phys:P plain:P empty:P half:P");
	done(&r);
	/* I cascade from a nostream member: the same */
	compute(&r, kv, "pg3", PGKEEL_PG_REPLICA, "{\"replicatefrom\":\"pg2\"}", PERM_CONFIG,
	        150004);
	assert_slots(&r, "keep_phys:P plain:P empty:P half:P");
	done(&r);
	/* a replicatefrom loop: the same */
	compute(&r, kv, "pg4", PGKEEL_PG_REPLICA, "{\"replicatefrom\":\"pg5\"}", PERM_CONFIG,
	        150004);
	assert_slots(&r, "pg5:P keep_phys:P plain:P empty:P half:P");
	done(&r);
	/* replicatefrom naming myself or nobody: a normal chain */
	compute(&r, kv, "pg7", PGKEEL_PG_REPLICA, "{\"replicatefrom\":\"pg7\"}", PERM_CONFIG,
	        150004);
	assert_slots(&r, "keep_phys:P plain:P empty:P cdc:L cdc2:L half:P");
	done(&r);

	/* standby cluster: physical only; before 11 only on the standby leader */
	/* (pg3, pg4 and pg5 cascade from members, pg2 does not stream) */
	compute(&r, kv, "pg1", PGKEEL_PG_STANDBY_LEADER, NULL, standby, 150004);
	assert_slots(&r, "keep_phys:P");
	done(&r);
	compute(&r, kv, "pg1", PGKEEL_PG_STANDBY_LEADER, NULL, standby, 100020);
	assert_slots(&r, "keep_phys:P");
	done(&r);
	compute(&r, kv, "pg9", PGKEEL_PG_REPLICA, NULL, standby, 100020);
	assert_slots(&r, "");
	done(&r);
	compute(&r, kv, "pg9", PGKEEL_PG_REPLICA, NULL, standby, 150004);
	assert_slots(&r, "keep_phys:P");
	done(&r);
}

/* ---- ignore_slots and the plan ---- */

static struct pgkeel_slot_row row(const char *name, enum pgkeel_slot_type type,
                                  const char *database, const char *plugin, bool active,
                                  int64_t restart_lsn)
{
	struct pgkeel_slot_row r = {
	    .name = (char *)name,
	    .type = type,
	    .database = (char *)database,
	    .plugin = (char *)plugin,
	    .active = active,
	    .restart_lsn = restart_lsn,
	    .xmin = -1,
	    .catalog_xmin = -1,
	    .confirmed_flush_lsn = -1,
	};

	return r;
}

static void test_ignore_slots(void **state)
{
	json_object *ign = parse(
	    "[{\"name\":\"by_name\"},{\"type\":\"logical\",\"database\":\"app\"},"
	    "{\"name\":null,\"plugin\":\"wal2json\"},{\"name\":\"typed\",\"type\":\"physical\"},"
	    "{\"name\":\"\",\"type\":\"physical\"},\"junk\",{\"name\":5}]");
	struct pgkeel_slot_row r;

	(void)state;
	r = row("by_name", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 0);
	assert_true(pgkeel_slots_ignored(ign, &r));
	r = row("any", PGKEEL_SLOT_LOGICAL, "app", "pgoutput", false, 0);
	assert_true(pgkeel_slots_ignored(ign, &r));
	r = row("any", PGKEEL_SLOT_LOGICAL, "other", "pgoutput", false, 0);
	assert_false(pgkeel_slots_ignored(ign, &r));
	r = row("any", PGKEEL_SLOT_LOGICAL, "other", "wal2json", false, 0);
	assert_true(pgkeel_slots_ignored(ign, &r));
	r = row("typed", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 0);
	assert_true(pgkeel_slots_ignored(ign, &r));
	r = row("typed", PGKEEL_SLOT_LOGICAL, "x", "y", false, 0);
	assert_false(pgkeel_slots_ignored(ign, &r));
	/* a name of "" is not "no name": it matches no slot */
	r = row("other", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 0);
	assert_false(pgkeel_slots_ignored(ign, &r));
	assert_false(pgkeel_slots_ignored(NULL, &r));
	json_object_put(ign);
}

/* "kind:name[:detail]" of every op, space separated. */
static void plan_text(const struct pgkeel_slots_plan *p, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n; i++) {
		const struct pgkeel_slot_op *op = &p->ops[i];
		char extra[96] = "";
		int w;

		if (op->kind == PGKEEL_SLOT_OP_ADVANCE)
			snprintf(extra, sizeof(extra), ":%lld>%lld", (long long)op->from_lsn,
			         (long long)op->lsn);
		else if (op->kind == PGKEEL_SLOT_OP_CREATE && op->type == PGKEEL_SLOT_LOGICAL)
			snprintf(extra, sizeof(extra), ":%s/%s%s", op->database, op->plugin,
			         op->after_drop ? "!" : "");
		else if (op->kind == PGKEEL_SLOT_OP_CREATE && op->after_drop)
			snprintf(extra, sizeof(extra), "!");
		w = snprintf(buf + off, len - off, "%s%s:%s%s", i > 0 ? " " : "",
		             pgkeel_slot_op_name(op->kind), op->name, extra);
		assert_true(w > 0 && (size_t)w < len - off);
		off += (size_t)w;
	}
}

static void test_plan_primary(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,
	                                 "leader",
	                                 "pg1",
	                                 "status",
	                                 "{\"optime\":1,\"slots\":{\"keep_phys\":5000}}",
	                                 M("pg1", ""),
	                                 M("pg2", ""),
	                                 M("pg3", ""),
	                                 NULL};
	static const char *const config =
	    "{\"slots\":{\"keep_phys\":null,"
	    "\"cdc\":{\"database\":\"app\",\"plugin\":\"pgoutput\"},"
	    "\"cdc_b\":{\"database\":\"other\",\"plugin\":\"test_decoding\"},"
	    "\"cdc2\":{\"database\":\"app\",\"plugin\":\"test_decoding\"}},"
	    "\"ignore_slots\":[{\"name\":\"debezium\"}]}";
	struct pgkeel_slot_row rows[] = {
	    row("gone_member", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 100),
	    row("busy_unknown", PGKEEL_SLOT_PHYSICAL, NULL, NULL, true, 100),
	    row("debezium", PGKEEL_SLOT_LOGICAL, "app", "pgoutput", false, 100),
	    row("pg2", PGKEEL_SLOT_PHYSICAL, NULL, NULL, true, 100),
	    row("keep_phys", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 4000),
	    /* plugin changed in the configuration: drop and create again */
	    row("cdc", PGKEEL_SLOT_LOGICAL, "app", "wal2json", false, 100),
	};
	struct pgkeel_slots_plan plan;
	struct run r;
	char buf[1024];

	(void)state;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 150004);
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	assert_string_equal(buf, "drop:gone_member drop_changed:cdc create:pg3 "
	                         "advance:keep_phys:4000>5000 create:cdc:app/pgoutput! "
	                         "create:cdc2:app/test_decoding "
	                         "create:cdc_b:other/test_decoding");
	assert_int_equal(plan.n_kept_active, 1);
	assert_string_equal(plan.kept_active[0], "busy_unknown");
	assert_int_equal(plan.n_ignored, 1);
	assert_string_equal(plan.ignored[0], "debezium");
	assert_int_equal(plan.n_copy, 0);
	assert_string_equal(plan.ops[1].old_repr,
	                    "{'type': 'logical', 'database': 'app', 'plugin': 'wal2json'}");
	assert_string_equal(plan.ops[1].new_repr,
	                    "{'type': 'logical', 'database': 'app', 'plugin': 'pgoutput'}");
	pgkeel_slots_plan_clear(&plan);

	/* paused: nothing unknown is dropped; creation goes on */
	r.want.paused = true;
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	assert_string_equal(buf, "drop_changed:cdc create:pg3 advance:keep_phys:4000>5000 "
	                         "create:cdc:app/pgoutput! create:cdc2:app/test_decoding "
	                         "create:cdc_b:other/test_decoding");
	assert_int_equal(plan.n_ignored, 3);
	pgkeel_slots_plan_clear(&plan);

	/* unmanaged: nothing at all */
	r.want.managed = false;
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	assert_int_equal(plan.n, 0);
	assert_int_equal(plan.n_ignored + plan.n_kept_active, 0);
	pgkeel_slots_plan_clear(&plan);
	done(&r);
}

static void test_plan_advance_rules(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "status",
	    "{\"optime\":1,\"slots\":{\"a\":5000,\"b\":5000,\"c\":5000,\"d\":5000}}",
	    M("pg1", ""),
	    NULL};
	static const char *const config = "{\"slots\":{\"a\":null,\"b\":null,\"c\":null,"
	                                  "\"d\":null,\"e\":null}}";
	struct pgkeel_slot_row rows[] = {
	    row("a", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 4000), /* advanced */
	    row("b", PGKEEL_SLOT_PHYSICAL, NULL, NULL, true, 4000),  /* active: left */
	    row("c", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, -1),   /* no restart_lsn */
	    row("d", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 6000), /* already ahead */
	    row("e", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 10),   /* no known position */
	};
	struct pgkeel_slots_plan plan;
	struct run r;
	char buf[512];

	(void)state;
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, config, 150004);
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	assert_string_equal(buf, "advance:a:4000>5000");
	pgkeel_slots_plan_clear(&plan);
	done(&r);

	/* before 11 a primary never advances */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 100020);
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	assert_int_equal(plan.n, 0);
	pgkeel_slots_plan_clear(&plan);
	done(&r);
}

static void test_plan_replica(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,   "leader",     "pg1",
	    M("pg1", ""), M("pg2", ""), M("pg3", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    NULL};
	static const char *const config = "{\"slots\":{\"keep\":null,"
	                                  "\"cdc\":{\"database\":\"app\",\"plugin\":\"x\"},"
	                                  "\"cdc2\":{\"database\":\"app\",\"plugin\":\"x\"}}}";
	struct pgkeel_slot_row rows[] = {
	    /* the slot of the leader, left from when pg2 was primary: dropped */
	    row("pg1", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 100),
	    row("cdc2", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	};
	struct pgkeel_slots_plan plan;
	struct run r;
	char buf[512];

	(void)state;
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, config, 150004);
	assert_slots(&r, "pg3:P keep:P cdc:L cdc2:L");
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	/* no position in /status: nothing to copy or advance yet; existing ones stay */
	assert_string_equal(buf, "drop:pg1 create:pg3 create:keep");
	assert_int_equal(plan.n_copy, 0);
	pgkeel_slots_plan_clear(&plan);
	done(&r);
}

static void test_plan_replica_logical(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "status",
	    "{\"optime\":1,\"slots\":{\"cdc\":5000,\"cdc2\":5000,\"cdc3\":5000,\"busy\":5000,"
	    "\"ahead\":5000,\"moved\":5000,\"other_db\":5000}}",
	    M("pg1", ""),
	    M("pg2", ""),
	    NULL};
	static const char *const config =
	    "{\"slots\":{\"cdc\":{\"database\":\"app\",\"plugin\":\"x\"},"
	    "\"other_db\":{\"database\":\"b\",\"plugin\":\"x\"},"
	    "\"cdc2\":{\"database\":\"app\",\"plugin\":\"x\"},"
	    "\"cdc3\":{\"database\":\"app\",\"plugin\":\"x\"},"
	    "\"busy\":{\"database\":\"app\",\"plugin\":\"x\"},"
	    "\"ahead\":{\"database\":\"app\",\"plugin\":\"x\"},"
	    "\"moved\":{\"database\":\"app\",\"plugin\":\"y\"},"
	    "\"nopos\":{\"database\":\"app\",\"plugin\":\"x\"}}}";
	struct pgkeel_slot_row rows[] = {
	    row("cdc", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    row("other_db", PGKEEL_SLOT_LOGICAL, "b", "x", false, 100),
	    row("cdc3", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    row("busy", PGKEEL_SLOT_LOGICAL, "app", "x", true, 100),
	    row("ahead", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    /* the plugin changed: dropped now, copied by a later cycle */
	    row("moved", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    row("gone", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	};
	struct pgkeel_slots_plan plan;
	struct run r;
	char buf[512];

	(void)state;
	rows[0].confirmed_flush_lsn = 4000;
	rows[1].confirmed_flush_lsn = 4000;
	rows[2].confirmed_flush_lsn = 4500;
	rows[3].confirmed_flush_lsn = 4000;
	rows[4].confirmed_flush_lsn = 5000; /* already there */
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, config, 150004);
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	/* advances grouped by database: cdc, cdc3 (app), then other_db (b) */
	assert_string_equal(buf, "drop:gone drop_changed:moved advance:cdc:4000>5000 "
	                         "advance:cdc3:4500>5000 advance:other_db:4000>5000");
	assert_int_equal(plan.ops[2].type, PGKEEL_SLOT_LOGICAL);
	assert_string_equal(plan.ops[2].database, "app");
	assert_string_equal(plan.ops[4].database, "b");
	/* cdc2 is missing and has a position: copy; nopos has none: wait */
	assert_int_equal(plan.n_copy, 1);
	assert_string_equal(plan.copy[0], "cdc2");
	pgkeel_slots_plan_clear(&plan);
	done(&r);

	/* the same slots on the primary: created there, never advanced */
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 150004);
	pgkeel_slots_make_plan(&r.want, rows, PGKEEL_ARRAY_LEN(rows), r.config, &plan);
	plan_text(&plan, buf, sizeof(buf));
	assert_string_equal(buf, "drop:gone drop_changed:moved create:pg2 create:cdc2:app/x "
	                         "create:moved:app/y! create:nopos:app/x");
	assert_int_equal(plan.n_copy, 0);
	pgkeel_slots_plan_clear(&plan);
	done(&r);
}

static void test_name_on_primary(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,
	                                 "leader",
	                                 "pg1",
	                                 M("pg1", ""),
	                                 M("pg-2", ""),
	                                 M("pg3", ",\"tags\":{\"replicatefrom\":\"pg-2\"}"),
	                                 M("pg4", ",\"tags\":{\"replicatefrom\":\"pg5\"}"),
	                                 M("pg5", ",\"tags\":{\"replicatefrom\":\"pg4\"}"),
	                                 M("pg6", ",\"tags\":{\"nostream\":true}"),
	                                 NULL};
	struct pgkeel_cluster *c = cluster_of(kv);
	json_object *tags = parse("{\"replicatefrom\":\"pg3\"}");
	char slot[64];

	(void)state;
	/* pg7 cascades from pg3, which cascades from pg-2: pg-2's slot carries it */
	assert_true(pgkeel_slots_name_on_primary(c, "pg7", tags, slot));
	assert_string_equal(slot, "pg_2");
	assert_true(pgkeel_slots_name_on_primary(c, "pg-2", NULL, slot));
	assert_string_equal(slot, "pg_2");
	/* a loop, a nostream member */
	assert_false(pgkeel_slots_name_on_primary(
	    c, "pg4", pgkeel_cluster_get_member(c, "pg4")->d.tags, slot));
	assert_false(pgkeel_slots_name_on_primary(
	    c, "pg6", pgkeel_cluster_get_member(c, "pg6")->d.tags, slot));
	json_object_put(tags);
	pgkeel_cluster_unref(c);
}

static void test_status_slots(void **state)
{
	static const char *const kv[] = {CONFIG_KEY,   "leader",     "pg1",
	                                 M("pg1", ""), M("pg2", ""), NULL};
	static const char *const config = "{\"slots\":{\"keep\":null,\"pg1\":null,\"absent\":null,"
	                                  "\"cdc\":{\"database\":\"app\",\"plugin\":\"x\"},"
	                                  "\"moved\":{\"database\":\"app\",\"plugin\":\"y\"},"
	                                  "\"pg2\":{\"database\":\"app\",\"plugin\":\"x\"}}}";
	struct pgkeel_slot_row rows[] = {
	    row("keep", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 100),
	    row("cdc", PGKEEL_SLOT_LOGICAL, "app", "x", true, 150),
	    row("moved", PGKEEL_SLOT_LOGICAL, "app", "x", false, 150),
	    row("pg2", PGKEEL_SLOT_LOGICAL, "app", "x", false, 150),
	    row("pg1", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 10),
	    row("member_only", PGKEEL_SLOT_PHYSICAL, NULL, NULL, false, 10),
	};
	struct pgkeel_slots_input in;
	struct run r;
	json_object *st;

	(void)state;
	rows[1].confirmed_flush_lsn = 200;
	rows[2].confirmed_flush_lsn = 200;
	rows[3].confirmed_flush_lsn = 200;
	compute(&r, kv, "pg1", PGKEEL_PG_PRIMARY, NULL, config, 150004);
	memset(&in, 0, sizeof(in));
	in.cluster = r.cluster;
	in.name = "pg1";
	in.role = PGKEEL_PG_PRIMARY;
	in.config = r.config;
	in.server_version = 150004;
	/* keep at restart_lsn, cdc at confirmed_flush_lsn, my own permanent slot at
	 * the WAL position; not: a changed slot, a logical slot named like a
	 * member's, a slot that is not permanent */
	st = pgkeel_slots_status(&in, rows, PGKEEL_ARRAY_LEN(rows), 5000);
	assert_string_equal(json_object_to_json_string_ext(st, JSON_C_TO_STRING_PLAIN),
	                    "{\"keep\":100,\"cdc\":200,\"pg1\":5000}");
	json_object_put(st);
	in.server_version = 100020;
	st = pgkeel_slots_status(&in, rows, PGKEEL_ARRAY_LEN(rows), 5000);
	assert_int_equal(json_object_object_length(st), 0);
	json_object_put(st);
	done(&r);
}

static void test_hot_standby_feedback(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY, "leader", "pg1", M("pg1", ""), M("pg2", ""),
	    /* pg3 cascades from pg2 and may fail over; pg4 from pg3 may not */
	    M("pg3", ",\"tags\":{\"replicatefrom\":\"pg2\"}"),
	    M("pg4", ",\"tags\":{\"replicatefrom\":\"pg3\",\"nofailover\":true}"), NULL};
	static const char *const logical =
	    "{\"slots\":{\"cdc\":{\"database\":\"a\",\"plugin\":\"x\"}}}";
	static const char *const physical = "{\"slots\":{\"keep\":null}}";
	struct pgkeel_slots_input in;
	struct run r;
	json_object *nofailover = parse("{\"nofailover\":true}");

	(void)state;
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, logical, 150004);
	memset(&in, 0, sizeof(in));
	in.cluster = r.cluster;
	in.name = "pg4";
	in.role = PGKEEL_PG_REPLICA;
	in.config = r.config;
	in.server_version = 150004;
	in.tags = nofailover;
	/* pg4: nofailover, no permanent slots, nobody cascades from it */
	assert_false(pgkeel_slots_need_hot_standby_feedback(&in));
	/* pg2: itself; a nofailover pg2 still feeds pg3, which has them */
	in.name = "pg2";
	assert_true(pgkeel_slots_need_hot_standby_feedback(&in));
	in.tags = NULL;
	assert_true(pgkeel_slots_need_hot_standby_feedback(&in));
	/* before 11, or without logical permanent slots: no */
	in.server_version = 100020;
	assert_false(pgkeel_slots_need_hot_standby_feedback(&in));
	done(&r);
	compute(&r, kv, "pg2", PGKEEL_PG_REPLICA, NULL, physical, 150004);
	in.cluster = r.cluster;
	in.config = r.config;
	in.server_version = 150004;
	assert_false(pgkeel_slots_need_hot_standby_feedback(&in));
	done(&r);
	json_object_put(nofailover);
}

/* ---- pg_slots_copy: leader connection, state file, install, readiness ---- */

static void test_leader_conn(void **state)
{
	static const char *const kv[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "members/pg1",
	    "{\"conn_url\":\"postgres://10.0.0.1:5433/postgres\",\"api_url\":\"http://h/patroni\","
	    "\"state\":\"running\",\"role\":\"master\",\"version\":\"3.0.2\"}",
	    NULL};
	static const char *const kv_kwargs[] = {
	    CONFIG_KEY,
	    "leader",
	    "pg1",
	    "members/pg1",
	    "{\"conn_url\":\"postgres://10.0.0.1:5433/postgres\",\"api_url\":\"http://h/patroni\","
	    "\"conn_kwargs\":{\"host\":\"/run/pg\",\"port\":6000,\"dbname\":\"x\"},"
	    "\"state\":\"running\",\"role\":\"master\",\"version\":\"3.0.2\"}",
	    NULL};
	static const char *const kv_none[] = {CONFIG_KEY, M("pg1", ""), NULL};
	struct pgkeel_cluster *c = cluster_of(kv), *ck = cluster_of(kv_kwargs),
	                      *cn = cluster_of(kv_none);
	json_object *config =
	    parse("{\"postgresql\":{\"database\":\"appdb\",\"authentication\":{"
	          "\"superuser\":{\"username\":\"su\",\"password\":\"s3cret\"},"
	          "\"rewind\":{\"username\":\"rw\",\"password\":\"pw\",\"sslmode\":\"require\","
	          "\"channel_binding\":null}}}}");
	struct pgkeel_slots_leader_conn conn;
	char err[128];

	(void)state;
	/* 11+: the rewind user, its other keys as libpq keywords (nulls dropped) */
	assert_true(pgkeel_slots_leader_conn_init(&conn, c, config, 150004, err, sizeof(err)));
	assert_string_equal(conn.params.host, "10.0.0.1");
	assert_int_equal(conn.params.port, 5433);
	assert_string_equal(conn.params.dbname, "appdb");
	assert_string_equal(conn.params.user, "rw");
	assert_string_equal(conn.params.password, "pw");
	assert_int_equal(conn.params.n_extra, 1);
	assert_string_equal(conn.params.extra_keys[0], "sslmode");
	assert_string_equal(conn.params.extra_values[0], "require");
	assert_string_equal(conn.leader, "pg1");
	pgkeel_slots_leader_conn_clear(&conn);
	/* before 11: the superuser */
	assert_true(pgkeel_slots_leader_conn_init(&conn, c, config, 100020, err, sizeof(err)));
	assert_string_equal(conn.params.user, "su");
	assert_int_equal(conn.params.n_extra, 0);
	pgkeel_slots_leader_conn_clear(&conn);
	/* conn_kwargs win over conn_url; dbname is still postgresql.database */
	assert_true(pgkeel_slots_leader_conn_init(&conn, ck, config, 150004, err, sizeof(err)));
	assert_string_equal(conn.params.host, "/run/pg");
	assert_int_equal(conn.params.port, 6000);
	assert_string_equal(conn.params.dbname, "appdb");
	pgkeel_slots_leader_conn_clear(&conn);
	/* no leader */
	assert_false(pgkeel_slots_leader_conn_init(&conn, cn, config, 150004, err, sizeof(err)));
	assert_string_equal(err, "no leader");
	pgkeel_slots_leader_conn_clear(&conn);
	json_object_put(config);
	/* no configuration at all: postgres, no user */
	assert_true(pgkeel_slots_leader_conn_init(&conn, c, NULL, 150004, err, sizeof(err)));
	assert_string_equal(conn.params.dbname, "postgres");
	assert_null(conn.params.user);
	pgkeel_slots_leader_conn_clear(&conn);
	pgkeel_cluster_unref(c);
	pgkeel_cluster_unref(ck);
	pgkeel_cluster_unref(cn);
}

/* A state file as PostgreSQL 15 writes it (the fields past the name left zero). */
#define STATE_LEN 200
static void make_state(unsigned char *buf, const char *name)
{
	uint32_t magic = PGKEEL_SLOT_STATE_MAGIC, version = 2, length = STATE_LEN - 16, crc;

	memset(buf, 0, STATE_LEN);
	memcpy(buf, &magic, 4);
	memcpy(buf + 8, &version, 4);
	memcpy(buf + 12, &length, 4);
	memcpy(buf + 16, name, strlen(name));
	crc = pgkeel_crc32c(buf + 8, STATE_LEN - 8);
	memcpy(buf + 4, &crc, 4);
}

static void test_state_check(void **state)
{
	unsigned char buf[STATE_LEN];
	char why[128];

	(void)state;
	/* the standard check value of CRC-32C */
	assert_int_equal(pgkeel_crc32c("123456789", 9), 0xE3069283u);
	assert_int_equal(pgkeel_crc32c("", 0), 0);
	make_state(buf, "cdc");
	assert_true(pgkeel_slot_state_check("cdc", buf, sizeof(buf), why, sizeof(why)));
	/* another slot's file */
	assert_false(pgkeel_slot_state_check("cd", buf, sizeof(buf), why, sizeof(why)));
	assert_string_equal(why, "the file is not the state of slot cd");
	assert_false(pgkeel_slot_state_check("cdc2", buf, sizeof(buf), why, sizeof(why)));
	/* truncated */
	assert_false(pgkeel_slot_state_check("cdc", buf, sizeof(buf) - 1, why, sizeof(why)));
	assert_non_null(strstr(why, "does not match the file size"));
	assert_false(pgkeel_slot_state_check("cdc", buf, 20, why, sizeof(why)));
	assert_false(pgkeel_slot_state_check("cdc", NULL, 0, why, sizeof(why)));
	/* one flipped bit */
	buf[100] ^= 4;
	assert_false(pgkeel_slot_state_check("cdc", buf, sizeof(buf), why, sizeof(why)));
	assert_string_equal(why, "checksum mismatch");
	buf[100] ^= 4;
	buf[0] ^= 1;
	assert_false(pgkeel_slot_state_check("cdc", buf, sizeof(buf), why, sizeof(why)));
	assert_non_null(strstr(why, "wrong magic number"));
}

static char *path_in(const char *dir, const char *rel)
{
	return pgkeel_asprintf("%s/%s", dir, rel);
}

static bool file_has(const char *path, const unsigned char *data, size_t len)
{
	unsigned char got[STATE_LEN + 1];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return false;
	n = fread(got, 1, sizeof(got), f);
	fclose(f);
	return n == len && memcmp(got, data, len) == 0;
}

static void test_install(void **state)
{
	char tmpl[] = "/tmp/pgkeel-slots-XXXXXX";
	char *dir = mkdtemp(tmpl), *p;
	unsigned char a[STATE_LEN], b[STATE_LEN];
	struct pgkeel_slot_copy v[2];
	struct pgkeel_slot_copies copies = {.v = v, .n = 2};
	struct pgkeel_slots_logical logical;
	struct stat st;
	char err[256];
	FILE *f;

	(void)state;
	assert_non_null(dir);
	make_state(a, "cdc");
	make_state(b, "other");
	memset(v, 0, sizeof(v));
	(void)pgkeel_fmt(v[0].name, sizeof(v[0].name), "cdc");
	v[0].state = a;
	v[0].state_len = sizeof(a);
	(void)pgkeel_fmt(v[1].name, sizeof(v[1].name), "other");
	v[1].state = b;
	v[1].state_len = sizeof(b);
	pgkeel_slots_logical_init(&logical);
	logical.recheck = false;

	/* not a data directory: no pg_replslot */
	assert_false(pgkeel_slots_copy_install(dir, &copies, &logical, err, sizeof(err)));
	assert_non_null(strstr(err, "pg_replslot"));

	/* an old copy of cdc, a leftover temporary directory, group access */
	assert_int_equal(chmod(dir, 0750), 0);
	p = path_in(dir, "pg_replslot");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = path_in(dir, "pg_replslot/cdc");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = path_in(dir, "pg_replslot/cdc/state");
	f = fopen(p, "w");
	assert_non_null(f);
	fputs("old", f);
	fclose(f);
	free(p);
	p = path_in(dir, "pg_replslot/other.tmp");
	assert_int_equal(mkdir(p, 0700), 0);
	free(p);
	p = path_in(dir, "pg_replslot/other.tmp/state");
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	free(p);

	assert_true(pgkeel_slots_copy_install(dir, &copies, &logical, err, sizeof(err)));
	p = path_in(dir, "pg_replslot/cdc/state");
	assert_true(file_has(p, a, sizeof(a)));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0640);
	free(p);
	p = path_in(dir, "pg_replslot/other");
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0750);
	free(p);
	p = path_in(dir, "pg_replslot/other/state");
	assert_true(file_has(p, b, sizeof(b)));
	free(p);
	p = path_in(dir, "pg_replslot/other.tmp");
	assert_int_equal(stat(p, &st), -1);
	free(p);
	assert_int_equal(logical.n_pending, 2);
	assert_true(pgkeel_slots_logical_is_pending(&logical, "cdc"));
	assert_false(logical.pending[0].known);

	/* a bad state file or name: refused before anything is touched */
	b[60] ^= 1;
	assert_false(pgkeel_slots_copy_install(dir, &copies, NULL, err, sizeof(err)));
	assert_string_equal(err, "slot other: checksum mismatch");
	b[60] ^= 1;
	(void)pgkeel_fmt(v[1].name, sizeof(v[1].name), "../x");
	assert_false(pgkeel_slots_copy_install(dir, &copies, NULL, err, sizeof(err)));
	assert_string_equal(err, "invalid replication slot name '../x'");
	copies.n = 0;
	assert_true(pgkeel_slots_copy_install(dir, &copies, NULL, err, sizeof(err)));

	pgkeel_slots_logical_clear(&logical);
	p = pgkeel_asprintf("rm -rf '%s'", dir);
	assert_int_equal(system(p), 0);
	free(p);
}

static void test_readiness(void **state)
{
	struct pgkeel_slots_logical l;
	struct pgkeel_slot_row rows[] = {
	    row("a", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    row("b", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	    row("c", PGKEEL_SLOT_LOGICAL, "app", "x", false, 100),
	};

	(void)state;
	rows[0].catalog_xmin = 900;
	rows[1].catalog_xmin = 700;
	rows[2].catalog_xmin = 900;
	pgkeel_slots_logical_init(&l);
	assert_true(l.recheck);
	pgkeel_slots_logical_add(&l, "a");
	pgkeel_slots_logical_add(&l, "b");
	pgkeel_slots_logical_add(&l, "c");
	pgkeel_slots_logical_add(&l, "gone");
	pgkeel_slots_logical_add(&l, "a"); /* once */
	assert_int_equal(l.n_pending, 4);

	/* nothing known from the primary: only the vanished slot goes */
	pgkeel_slots_logical_ready(&l, rows, PGKEEL_ARRAY_LEN(rows), false, -1);
	assert_int_equal(l.n_pending, 3);
	assert_false(pgkeel_slots_logical_is_pending(&l, "gone"));

	/* primary xmins known: a 800, b 800, c unknown (not on the primary) */
	l.pending[0].known = l.pending[1].known = true;
	l.pending[0].primary_xmin = 800;
	l.pending[1].primary_xmin = 800;
	/* the physical slot has no catalog_xmin yet: nothing is ready */
	pgkeel_slots_logical_ready(&l, rows, PGKEEL_ARRAY_LEN(rows), true, -1);
	assert_int_equal(l.n_pending, 3);
	/* physical 750: below a's primary xmin */
	pgkeel_slots_logical_ready(&l, rows, PGKEEL_ARRAY_LEN(rows), true, 750);
	assert_int_equal(l.n_pending, 3);
	/* 850: 800 <= 850 <= 900 makes a ready; b's local 700 is behind */
	pgkeel_slots_logical_ready(&l, rows, PGKEEL_ARRAY_LEN(rows), true, 850);
	assert_int_equal(l.n_pending, 2);
	assert_false(pgkeel_slots_logical_is_pending(&l, "a"));
	assert_true(pgkeel_slots_logical_is_pending(&l, "b"));
	assert_true(pgkeel_slots_logical_is_pending(&l, "c"));
	/* b advanced locally */
	rows[1].catalog_xmin = 860;
	pgkeel_slots_logical_ready(&l, rows, PGKEEL_ARRAY_LEN(rows), true, 850);
	assert_int_equal(l.n_pending, 1);
	assert_string_equal(l.pending[0].name, "c");

	pgkeel_slots_logical_on_promote(&l);
	assert_int_equal(l.n_pending, 0);
	assert_false(l.recheck);
	pgkeel_slots_logical_recheck(&l);
	assert_true(l.recheck);
	pgkeel_slots_logical_add(&l, "a");
	pgkeel_slots_logical_forget(&l);
	assert_int_equal(l.n_pending, 0);
	assert_false(l.recheck);
	pgkeel_slots_logical_clear(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_primary_member_slots),
	    cmocka_unit_test(test_replica_member_slots),
	    cmocka_unit_test(test_slot_names_and_collisions),
	    cmocka_unit_test(test_use_slots_off),
	    cmocka_unit_test(test_unmanaged),
	    cmocka_unit_test(test_permanent_on_primary),
	    cmocka_unit_test(test_permanent_named_like_member),
	    cmocka_unit_test(test_permanent_invalid),
	    cmocka_unit_test(test_permanent_on_replica),
	    cmocka_unit_test(test_permanent_nostream_and_standby),
	    cmocka_unit_test(test_ignore_slots),
	    cmocka_unit_test(test_plan_primary),
	    cmocka_unit_test(test_plan_advance_rules),
	    cmocka_unit_test(test_plan_replica),
	    cmocka_unit_test(test_plan_replica_logical),
	    cmocka_unit_test(test_name_on_primary),
	    cmocka_unit_test(test_status_slots),
	    cmocka_unit_test(test_hot_standby_feedback),
	    cmocka_unit_test(test_leader_conn),
	    cmocka_unit_test(test_state_check),
	    cmocka_unit_test(test_install),
	    cmocka_unit_test(test_readiness),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
