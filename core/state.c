/*
 * The published state (see state.h): two refcounted parts swapped under one
 * mutex.  The mutex is held only to swap a pointer or to take a reference,
 * never while anything is freed, so a reader waits at most for a few
 * instructions of another thread.
 */
#include "autoconf.h"

#include "state.h"

#include <pthread.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "cluster.h"
#include "pg_query.h"
#include "util.h"

static pthread_mutex_t state_mu = PTHREAD_MUTEX_INITIALIZER;
/* The current parts (struct pgkeel_state_loop *, struct pgkeel_state_pg *). */
static void *cur_loop;
static void *cur_pg;

const char *pgkeel_state_role_name(enum pgkeel_state_role role)
{
	switch (role) {
	case PGKEEL_STATE_ROLE_MASTER:
		return "master";
	case PGKEEL_STATE_ROLE_REPLICA:
		return "replica";
	case PGKEEL_STATE_ROLE_STANDBY_LEADER:
		return "standby_leader";
	case PGKEEL_STATE_ROLE_DEMOTED:
		return "demoted";
	case PGKEEL_STATE_ROLE_PROMOTED:
		return "promoted";
	case PGKEEL_STATE_ROLE_UNINITIALIZED:
		break;
	}
	return "uninitialized";
}

struct pgkeel_state_loop *pgkeel_state_loop_new(void)
{
	struct pgkeel_state_loop *s = pgkeel_xcalloc(1, sizeof(*s));

	s->refs_ = 1;
	return s;
}

struct pgkeel_state_pg *pgkeel_state_pg_new(void)
{
	struct pgkeel_state_pg *s = pgkeel_xcalloc(1, sizeof(*s));

	s->refs_ = 1;
	return s;
}

void pgkeel_state_loop_set_tags(struct pgkeel_state_loop *s, const struct json_object *configured,
                                bool disable_sync)
{
	json_object_put(s->tags);
	json_object_put(s->tags_effective);
	s->tags = pgkeel_member_tags_effective(configured, false);
	s->tags_effective = pgkeel_member_tags_effective(configured, disable_sync);
}

static bool unref_last(int *refs)
{
	return __atomic_sub_fetch(refs, 1, __ATOMIC_ACQ_REL) == 0;
}

void pgkeel_state_loop_unref(struct pgkeel_state_loop *s)
{
	if (s == NULL || !unref_last(&s->refs_))
		return;
	free(s->name);
	free(s->scope);
	pgkeel_cluster_unref(s->cluster);
	free(s->pg_state);
	free(s->sysid);
	json_object_put(s->tags);
	json_object_put(s->tags_effective);
	json_object_put(s->scheduled_restart);
	free(s);
}

void pgkeel_state_pg_unref(struct pgkeel_state_pg *s)
{
	if (s == NULL || !unref_last(&s->refs_))
		return;
	pgkeel_pg_status_free(s->status);
	free(s);
}

/* Put s in *slot; returns what was there (the caller releases it outside the lock). */
static void *swap(void **slot, void *s)
{
	void *old;

	pthread_mutex_lock(&state_mu);
	old = *slot;
	*slot = s;
	pthread_mutex_unlock(&state_mu);
	return old;
}

void pgkeel_state_publish_loop(struct pgkeel_state_loop *s)
{
	pgkeel_state_loop_unref(swap(&cur_loop, s));
}

void pgkeel_state_publish_pg(struct pgkeel_state_pg *s)
{
	pgkeel_state_pg_unref(swap(&cur_pg, s));
}

void pgkeel_state_acquire(struct pgkeel_state_view *v)
{
	pthread_mutex_lock(&state_mu);
	v->loop = (struct pgkeel_state_loop *)cur_loop;
	v->pg = (struct pgkeel_state_pg *)cur_pg;
	if (v->loop != NULL)
		__atomic_add_fetch(&v->loop->refs_, 1, __ATOMIC_RELAXED);
	if (v->pg != NULL)
		__atomic_add_fetch(&v->pg->refs_, 1, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&state_mu);
}

void pgkeel_state_release(struct pgkeel_state_view *v)
{
	pgkeel_state_loop_unref(v->loop);
	pgkeel_state_pg_unref(v->pg);
	v->loop = NULL;
	v->pg = NULL;
}
