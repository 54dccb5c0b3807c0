/*
 * zk_session: ZooKeeper sessions and requests for one backend handle.
 *
 * The mt client runs two threads per zhandle (I/O and completions).  Every
 * request here is asynchronous (zoo_a*): the HA thread submits it and waits
 * on the connection's condition variable until its completion has run or the
 * op's deadline has passed.  A request whose deadline passed is abandoned:
 * its completion, whenever it comes (zookeeper_close delivers ZCLOSING to
 * everything pending), frees it.  Completions and watchers touch only the
 * request, the connection's mutex/condition and the host's log/post_event.
 *
 * Sessions.  `cur` is the session ops use; `prev` is an older session kept
 * while it still owns the leader znode (after a ttl change, until
 * update_leader moved the lock to `cur`).  A session that is done with is
 * "retired": the keeper thread closes it (zookeeper_close may block for
 * seconds on a dead server, never on the HA thread) once no op uses it.
 *
 * Liveness.  The mt client keeps a session alive as long as the process
 * runs, whether the HA loop still renews or not.  A lease does not: it
 * lapses when the holder stops renewing, and the core's lock validity is
 * (send time of the last renewal) + (granted TTL).  So a session that owns
 * ephemeral znodes (leader, member) carries `live_until` = the send time of
 * the last op that proved it alive + its negotiated timeout; the keeper
 * closes it when that passes, and its znodes go as an etcd lease's keys
 * would.
 */
#ifndef PGKEEL_ZK_SESSION_H
#define PGKEEL_ZK_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <zookeeper/zookeeper.h>

#include <pgkeel/dcs.h>

#include "zk_proto.h"

enum zk_sess_state {
	ZK_SESS_CONNECTING = 0,
	ZK_SESS_CONNECTED,
	ZK_SESS_DEAD, /* expired, auth failed: unusable */
};

struct zk_conn;

struct zk_sess {
	struct zk_conn *c;
	zhandle_t *zh;
	int64_t id; /* 0 until connected */
	enum zk_sess_state state;
	int asked_ms;   /* the session timeout asked for (ttl) */
	int granted_ms; /* what the server negotiated (0 until connected) */
	int refs;       /* ops using it */
	bool retired;
	bool abandon;         /* close without closeSession: its znodes expire (fini) */
	bool owns_ephemerals; /* leader or member znodes were created under it */
	int64_t live_until;   /* own monotonic ms; meaningful with owns_ephemerals */
	bool warned;          /* the short-timeout warning was given */
	struct zk_sess *next; /* retired list */
};

struct zk_conn {
	const struct pgkeel_host *host;
	const struct zk_options *opts;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC: completions, session changes, keeper */
	struct zk_sess *cur;
	struct zk_sess *prev;
	struct zk_sess *retired;
	bool stop;
	bool reap; /* member handles: close sessions whose renewals stopped */
	pthread_t keeper;
	bool keeper_running;
};

/* ---- requests ---- */

enum zk_kind {
	ZK_GET,
	ZK_CHILDREN,
	ZK_EXISTS,
	ZK_CREATE,
	ZK_SET,
	ZK_DELETE,
	ZK_SYNC,
	ZK_REBIND, /* multi: delete(path, version) + create(path, data, ephemeral) */
};

struct zk_op {
	enum zk_kind kind;
	const char *path;
	const char *data; /* CREATE, SET, REBIND */
	int len;
	int version;    /* SET, DELETE, REBIND: -1 = any */
	bool ephemeral; /* CREATE */
};

struct zk_req {
	struct zk_conn *c;
	enum zk_kind kind;
	bool done;
	bool abandoned;
	bool in_client; /* a completion will run */
	int rc;
	struct Stat stat;
	bool have_stat;
	char *data;   /* GET: NUL-terminated copy */
	int data_len; /* -1: null data */
	char **children;
	int n_children;
	zoo_op_t ops[2];
	zoo_op_result_t results[2];
	struct Stat mstat;
	char pathbuf[8];
};

bool zk_conn_init(struct zk_conn *c, const struct pgkeel_host *host, const struct zk_options *opts,
                  bool reap, struct pgkeel_err *err);
/*
 * Ends every session and joins the keeper.  Sessions in use are abandoned,
 * not closed: the client drops the connection without closeSession, so
 * their znodes expire after the timeout, as when the process dies (the ABI:
 * fini does not release).  Retired sessions are closed.
 */
void zk_conn_fini(struct zk_conn *c);

/*
 * A connected session for an op, with a reference (zk_sess_put).  A session
 * asking another timeout than `timeout_ms` is replaced; if `keep_sid` names
 * it (it holds the leader znode) it becomes `prev` instead of retiring.
 * UNAVAILABLE when none is connected by the deadline.
 */
enum pgkeel_dcs_status zk_sess_get(struct zk_conn *c, int timeout_ms, int64_t keep_sid,
                                   int64_t deadline_own, struct zk_sess **out,
                                   struct pgkeel_err *err);
void zk_sess_put(struct zk_conn *c, struct zk_sess *s);
/* The session retires (closed by the keeper once unused). */
void zk_sess_retire(struct zk_conn *c, struct zk_sess *s);
/* Retire `prev`, or whichever of cur/prev has id `sid`. */
void zk_sess_retire_id(struct zk_conn *c, int64_t sid);
/* Is a session with this id open, connected or reconnecting, and not retired? */
bool zk_sess_alive(struct zk_conn *c, int64_t sid);
/* The op that started at `sent_own` proved `s` alive: it owns ephemerals until then + timeout. */
void zk_sess_renewed(struct zk_conn *c, struct zk_sess *s, int64_t sent_own);
/* The current session, referenced, without waiting or creating (NULL if none). */
struct zk_sess *zk_sess_peek(struct zk_conn *c);

/* Submit (never blocks); the request is returned even when the client refused it. */
struct zk_req *zk_submit(struct zk_conn *c, struct zk_sess *s, const struct zk_op *op);
/* Wait for all `n` (NULL entries skipped) until the deadline; true when all are done. */
bool zk_wait(struct zk_conn *c, struct zk_req **reqs, int n, int64_t deadline_own);
/* Free a done request, abandon one still in flight (its completion frees it). */
void zk_req_finish(struct zk_conn *c, struct zk_req *r);
/* Pace a retry: wait until `until_own` (woken early only to re-check the time). */
void zk_pause(struct zk_conn *c, int64_t until_own);

/*
 * Arm exists-watches on `path` for `s`: the watcher posts `event` when the
 * znode changes; the completion posts it at once when the znode no longer
 * matches what the caller saw (exists, czxid, mzxid).
 */
void zk_arm_watch(struct zk_conn *c, struct zk_sess *s, const char *path, uint32_t event,
                  bool exists, int64_t czxid, int64_t mzxid);

/* Milliseconds on CLOCK_MONOTONIC (the keeper's and the waits' clock). */
int64_t zk_own_now(void);

#endif
