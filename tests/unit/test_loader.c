/*
 * Tests of core/dcs_loader.c and core/host.c.
 *
 * Each loader case builds a fresh directory (mkdtemp, 0755), copies one of
 * the test backends built in tests/plugins/.libs into it under the name the
 * case needs, and checks pgkeel_dcs_load's verdict and its one-line message.
 * Nothing here needs root; the one case that does (a foreign owner) skips.
 */
#include "autoconf.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dcs_loader.h"
#include "host.h"
#include "util.h"

#ifndef TEST_BUILDDIR
#error "TEST_BUILDDIR must be defined by the build"
#endif
#ifndef TEST_SRCDIR
#error "TEST_SRCDIR must be defined by the build"
#endif

#define PLUGIN_BUILD_DIR TEST_BUILDDIR "/tests/plugins/.libs"
#define NOT_A_LIBRARY TEST_SRCDIR "/tests/plugins/not-a-library.so.txt"
#define VARIANT_ENV "PGKEEL_TEST_MISSINGOP_VARIANT"

struct test_dir {
	char path[PATH_MAX];
};

/* ------------------------------------------------------------------ */
/* Fixture helpers                                                     */

static int remove_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static bool make_test_dir(struct test_dir *t, const char *parent)
{
	return pgkeel_fmt(t->path, sizeof(t->path), "%s/pgkeel-loader-XXXXXX", parent) &&
	       mkdtemp(t->path) != NULL && chmod(t->path, 0755) == 0;
}

/*
 * Under the build tree first: it must allow exec (it runs the tests), while
 * /tmp may well be mounted noexec, which dlopen() cannot map.
 */
static int setup_dir(void **state)
{
	struct test_dir *t = calloc(1, sizeof(*t));
	const char *tmp = getenv("TMPDIR");

	if (t == NULL)
		return -1;
	if (tmp == NULL || tmp[0] == '\0')
		tmp = "/tmp";
	if (!make_test_dir(t, TEST_BUILDDIR "/tests/unit") && !make_test_dir(t, tmp)) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int teardown_dir(void **state)
{
	struct test_dir *t = *state;

	if (t != NULL) {
		(void)chmod(t->path, 0755);
		(void)nftw(t->path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
		free(t);
	}
	return 0;
}

static void path_in(const struct test_dir *t, const char *name, char *buf, size_t len)
{
	assert_true(pgkeel_fmt(buf, len, "%s/%s", t->path, name));
}

static void copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int in;
	int out;

	in = open(src, O_RDONLY | O_CLOEXEC);
	if (in == -1)
		fail_msg("cannot open %s: %s (build the test backends first)", src,
		         strerror(errno));
	out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_int_not_equal(out, -1);
	while ((n = read(in, buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	assert_int_equal(n, 0);
	assert_int_equal(fchmod(out, mode), 0);
	assert_int_equal(close(out), 0);
	close(in);
}

/* Copy tests/plugins/.libs/dcs_<plugin>.so into the test dir as `as`. */
static void install_plugin(const struct test_dir *t, const char *plugin, const char *as,
                           mode_t mode)
{
	char src[PATH_MAX];
	char dst[PATH_MAX];

	assert_true(pgkeel_fmt(src, sizeof(src), "%s/dcs_%s.so", PLUGIN_BUILD_DIR, plugin));
	path_in(t, as, dst, sizeof(dst));
	copy_file(src, dst, mode);
}

/*
 * The load must fail, leave `out` untouched, and give one line containing
 * every needle (NULL-terminated list).
 */
static void expect_refused(const char *dir, const char *name, ...)
{
	struct pgkeel_dcs_module out;
	struct pgkeel_dcs_module before;
	char err[1024];
	const char *needle;
	va_list ap;

	memset(&out, 0xa5, sizeof(out));
	memcpy(&before, &out, sizeof(out));
	memset(err, 0, sizeof(err));
	assert_false(pgkeel_dcs_load(dir, name, &out, err, sizeof(err)));
	if (getenv("PGKEEL_TEST_VERBOSE") != NULL)
		print_message("refused: %s\n", err);
	assert_memory_equal(&out, &before, sizeof(out));
	assert_true(err[0] != '\0');
	assert_null(strchr(err, '\n'));
	va_start(ap, name);
	while ((needle = va_arg(ap, const char *)) != NULL) {
		if (strstr(err, needle) == NULL) {
			va_end(ap);
			fail_msg("message lacks \"%s\": %s", needle, err);
		}
	}
	va_end(ap);
}

static void expect_loaded(const char *dir, const char *name, struct pgkeel_dcs_module *out)
{
	char err[1024] = "";
	char want[PATH_MAX];

	if (!pgkeel_dcs_load(dir, name, out, err, sizeof(err)))
		fail_msg("loading %s from %s failed: %s", name, dir, err);
	assert_non_null(out->plugin);
	assert_string_equal(out->plugin->name, name);
	assert_true(pgkeel_fmt(want, sizeof(want), "%s/dcs_%s.so", dir, name));
	assert_string_equal(out->path, want);
}

/* ------------------------------------------------------------------ */
/* Backend directory                                                    */

static void test_backend_dir(void **state)
{
	(void)state;
	assert_int_equal(setenv("PGKEEL_BACKEND_DIR", "/from/env", 1), 0);
	assert_string_equal(pgkeel_dcs_backend_dir("/configured"), "/configured");
	assert_string_equal(pgkeel_dcs_backend_dir(""), "/from/env");
	assert_string_equal(pgkeel_dcs_backend_dir(NULL), "/from/env");
	assert_int_equal(setenv("PGKEEL_BACKEND_DIR", "", 1), 0);
	assert_string_equal(pgkeel_dcs_backend_dir(NULL), PKGLIBDIR);
	assert_int_equal(unsetenv("PGKEEL_BACKEND_DIR"), 0);
	assert_string_equal(pgkeel_dcs_backend_dir(""), PKGLIBDIR);
	assert_string_equal(pgkeel_dcs_backend_dir("/configured"), "/configured");
}

/* ------------------------------------------------------------------ */
/* The good backend, end to end                                         */

struct seen_entry {
	char key[64];
	char value[256];
	char version[32];
	bool has_owner;
};

struct seen {
	struct seen_entry e[32];
	size_t n;
};

static int collect(void *arg, const struct pgkeel_dcs_entry *entry)
{
	struct seen *s = arg;
	struct seen_entry *e;

	if (s->n == PGKEEL_ARRAY_LEN(s->e) || entry->value_len >= sizeof(e->value))
		return 1;
	e = &s->e[s->n++];
	assert_true(pgkeel_fmt(e->key, sizeof(e->key), "%s", entry->key));
	memcpy(e->value, entry->value, entry->value_len);
	e->value[entry->value_len] = '\0';
	assert_non_null(entry->version);
	assert_true(pgkeel_fmt(e->version, sizeof(e->version), "%s", entry->version));
	e->has_owner = entry->owner != NULL;
	return 0;
}

static const struct seen_entry *find_seen(const struct seen *s, const char *key)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->e[i].key, key) == 0)
			return &s->e[i];
	}
	return NULL;
}

static void load(const struct pgkeel_dcs_plugin *p, struct pgkeel_dcs *h, int64_t deadline,
                 struct seen *s)
{
	struct pgkeel_err err;

	memset(s, 0, sizeof(*s));
	assert_int_equal(p->load_cluster(h, deadline, collect, s, &err), PGKEEL_DCS_OK);
}

static void init_params(struct pgkeel_dcs_params *p, const char *name, uint32_t flags,
                        const char *options_json)
{
	memset(p, 0, sizeof(*p));
	p->struct_size = sizeof(*p);
	p->flags = flags;
	p->namespace_ = "/service/";
	p->scope = "loadertest";
	p->name = name;
	p->ttl = 30;
	p->loop_wait = 10;
	p->retry_timeout = 10;
	p->options_json = options_json;
	p->user_agent = "pgkeel-test";
}

static bool wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int rc;

	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc == -1 && errno == EINTR);
	return rc == 1 && (pfd.revents & POLLIN) != 0;
}

static void test_mock_loads_and_works(void **state)
{
	struct test_dir *t = *state;
	struct pgkeel_dcs_module mod;
	const struct pgkeel_dcs_plugin *p;
	const struct pgkeel_host *host;
	struct pgkeel_dcs_params params;
	struct pgkeel_dcs_leader_update upd;
	struct pgkeel_dcs_lease lease;
	struct pgkeel_dcs *h1 = NULL;
	struct pgkeel_dcs *h2 = NULL;
	struct pgkeel_dcs *ctl = NULL;
	struct pgkeel_dcs *priv = NULL;
	struct pgkeel_dcs *bad = NULL;
	struct pgkeel_err err;
	const struct seen_entry *e;
	struct seen seen;
	char options[PATH_MAX + 32];
	char store[PATH_MAX];
	char moved[PATH_MAX];
	char config_v1[32];
	char sync_v[32];
	char leader_v[32];
	int64_t deadline;
	uint32_t events;
	int efd;

	install_plugin(t, "mock", "dcs_mock.so", 0755);
	expect_loaded(t->path, "mock", &mod);
	p = mod.plugin;
	assert_int_equal(PGKEEL_ABI_MAJOR_OF(p->abi_version), PGKEEL_DCS_ABI_MAJOR);
	assert_non_null(p->write_leader_optime);

	host = pgkeel_host_get();
	assert_non_null(host);
	efd = pgkeel_host_event_fd();
	assert_true(efd >= 0);
	(void)pgkeel_host_take_events();
	deadline = host->now_monotonic_ms(host->ctx) + 10000;

	path_in(t, "store", store, sizeof(store));
	assert_true(pgkeel_fmt(options, sizeof(options), "{\"store\": \"%s\"}", store));

	/* Two members and a ctl handle sharing one store. */
	init_params(&params, "pg-1", 0, options);
	assert_int_equal(p->init(host, &params, &h1, &err), PGKEEL_DCS_OK);
	init_params(&params, "pg-2", 0, options);
	assert_int_equal(p->init(host, &params, &h2, &err), PGKEEL_DCS_OK);
	init_params(&params, NULL, PGKEEL_DCS_CTL, options);
	assert_int_equal(p->init(host, &params, &ctl, &err), PGKEEL_DCS_OK);
	/* A private store, and the contract checks of init. */
	init_params(&params, "pg-3", 0, "{\"unknown\": [1, {\"a\": \"b\"}], \"x\": null}");
	assert_int_equal(p->init(host, &params, &priv, &err), PGKEEL_DCS_OK);
	init_params(&params, "pg-4", 0, NULL);
	assert_int_equal(p->init(host, &params, &bad, &err), PGKEEL_DCS_INVALID);
	assert_null(bad);
	init_params(&params, "pg-4", 0, "[not an object]");
	assert_int_equal(p->init(host, &params, &bad, &err), PGKEEL_DCS_INVALID);
	assert_null(bad);
	init_params(&params, NULL, 0, "{}");
	assert_int_equal(p->init(host, &params, &bad, &err), PGKEEL_DCS_INVALID);
	assert_null(bad);

	/* Leader lock: create-if-absent. */
	memset(&lease, 0, sizeof(lease));
	lease.struct_size = sizeof(lease);
	assert_int_equal(p->attempt_to_acquire_leader(h1, deadline, &lease, &err), PGKEEL_DCS_OK);
	assert_int_equal(lease.granted_ttl_ms, 30000);
	assert_true(lease.owner[0] != '\0');
	assert_int_equal(p->attempt_to_acquire_leader(h2, deadline, &lease, &err),
	                 PGKEEL_DCS_CONFLICT);
	assert_non_null(strstr(err.msg, "pg-1"));
	assert_int_equal(p->attempt_to_acquire_leader(priv, deadline, &lease, &err), PGKEEL_DCS_OK);

	memset(&upd, 0, sizeof(upd));
	upd.struct_size = sizeof(upd);
	upd.last_lsn = 100;
	assert_int_equal(p->update_leader(h1, &upd, deadline, &lease, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->update_leader(h2, &upd, deadline, &lease, &err), PGKEEL_DCS_CONFLICT);
	assert_int_equal(p->delete_leader(h2, NULL, deadline, &err), PGKEEL_DCS_CONFLICT);

	/* Member keys, initialize. */
	assert_int_equal(p->touch_member(h1, "{\"role\":\"primary\"}", deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->touch_member(h2, "{\"role\":\"replica\"}", deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->initialize(h1, true, "7000000000000000001", deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->initialize(h2, true, "7000000000000000002", deadline, &err),
	                 PGKEEL_DCS_CONFLICT);

	/* Config CAS: unconditional, then on the version read, then stale. */
	assert_int_equal(p->set_config(h1, "{\"ttl\":30}", NULL, deadline, &err), PGKEEL_DCS_OK);
	load(p, ctl, deadline, &seen);
	e = find_seen(&seen, "config");
	assert_non_null(e);
	assert_true(pgkeel_fmt(config_v1, sizeof(config_v1), "%s", e->version));
	assert_int_equal(p->set_config(h2, "{\"ttl\":20}", config_v1, deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->set_config(h1, "{\"ttl\":10}", config_v1, deadline, &err),
	                 PGKEEL_DCS_CONFLICT);
	assert_int_equal(p->set_config(h1, "{\"ttl\":10}", "not-a-version", deadline, &err),
	                 PGKEEL_DCS_INVALID);
	assert_int_equal(p->set_failover(ctl, "{\"leader\":\"pg-1\"}", NULL, deadline, &err),
	                 PGKEEL_DCS_OK);

	/* Sync state CAS with the version it reports. */
	assert_int_equal(p->write_sync_state(h1, "{\"sync_standby\":null}", NULL, sync_v,
	                                     sizeof(sync_v), deadline, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->write_sync_state(h1, "{\"sync_standby\":\"pg-2\"}", sync_v, sync_v,
	                                     sizeof(sync_v), deadline, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->write_sync_state(h1, "{}", "1", NULL, 0, deadline, &err),
	                 PGKEEL_DCS_CONFLICT);
	assert_int_equal(p->delete_sync_state(h1, sync_v, deadline, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->set_history(h1, "[[1,100,\"no reason\"]]", deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->write_failsafe(h1, "{\"pg-1\":\"http://x\"}", deadline, &err),
	                 PGKEEL_DCS_OK);
	assert_int_equal(p->write_leader_optime(h1, 4242, deadline, &err), PGKEEL_DCS_OK);

	/* Everything written comes back through load_cluster, logical keys only. */
	load(p, ctl, deadline, &seen);
	e = find_seen(&seen, "leader");
	assert_non_null(e);
	assert_string_equal(e->value, "pg-1");
	assert_true(e->has_owner);
	assert_true(pgkeel_fmt(leader_v, sizeof(leader_v), "%s", e->version));
	e = find_seen(&seen, "config");
	assert_non_null(e);
	assert_string_equal(e->value, "{\"ttl\":20}");
	assert_false(e->has_owner);
	assert_non_null(e = find_seen(&seen, "members/pg-1"));
	assert_true(e->has_owner);
	assert_non_null(e = find_seen(&seen, "members/pg-2"));
	assert_string_equal(e->value, "{\"role\":\"replica\"}");
	assert_non_null(e = find_seen(&seen, "initialize"));
	assert_string_equal(e->value, "7000000000000000001");
	assert_non_null(e = find_seen(&seen, "status"));
	assert_string_equal(e->value, "{\"optime\":100}");
	assert_non_null(e = find_seen(&seen, "failover"));
	assert_non_null(e = find_seen(&seen, "history"));
	assert_non_null(e = find_seen(&seen, "failsafe"));
	assert_non_null(e = find_seen(&seen, "optime/leader"));
	assert_string_equal(e->value, "4242");
	assert_null(find_seen(&seen, "sync"));
	assert_int_equal(seen.n, 10);

	/* A ctl handle has no lease: the lease-bound ops are INVALID. */
	assert_int_equal(p->attempt_to_acquire_leader(ctl, deadline, &lease, &err),
	                 PGKEEL_DCS_INVALID);
	assert_int_equal(p->update_leader(ctl, &upd, deadline, &lease, &err), PGKEEL_DCS_INVALID);
	assert_int_equal(p->take_leader(ctl, deadline, &lease, &err), PGKEEL_DCS_INVALID);
	assert_int_equal(p->delete_leader(ctl, NULL, deadline, &err), PGKEEL_DCS_INVALID);
	assert_int_equal(p->touch_member(ctl, "{}", deadline, &err), PGKEEL_DCS_INVALID);
	assert_int_equal(p->watch(ctl, NULL, &err), PGKEEL_DCS_INVALID);

	/* A deadline already gone: UNAVAILABLE, never CONFLICT. */
	assert_int_equal(p->set_config(h1, "{}", NULL, host->now_monotonic_ms(host->ctx) - 1, &err),
	                 PGKEEL_DCS_UNAVAILABLE);
	assert_int_equal(err.code, PGKEEL_DCS_D_TIMEOUT);

	/* The watch wakes the host (from the backend's thread) when the leader changes. */
	assert_int_equal(p->watch(h2, leader_v, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->delete_leader(h1, leader_v, deadline, &err), PGKEEL_DCS_OK);
	assert_true(wait_readable(efd, 5000));
	events = pgkeel_host_take_events();
	assert_true((events & PGKEEL_EVENT_LEADER) != 0);
	assert_int_equal(p->attempt_to_acquire_leader(h2, deadline, &lease, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->update_leader(h1, &upd, deadline, &lease, &err), PGKEEL_DCS_CONFLICT);

	/* A TTL change makes a new lease; the leader key stays ours. */
	assert_int_equal(p->set_ttl(h2, 20, 10, 10, &err), PGKEEL_DCS_OK);
	assert_int_equal(p->update_leader(h2, NULL, deadline, &lease, &err), PGKEEL_DCS_OK);
	assert_int_equal(lease.granted_ttl_ms, 20000);

	/* The store unreachable: UNAVAILABLE; back again: OK. */
	path_in(t, "store.away", moved, sizeof(moved));
	assert_int_equal(rename(store, moved), 0);
	assert_int_equal(p->load_cluster(h1, deadline, collect, &seen, &err),
	                 PGKEEL_DCS_UNAVAILABLE);
	assert_int_equal(p->update_leader(h2, NULL, deadline, &lease, &err),
	                 PGKEEL_DCS_UNAVAILABLE);
	assert_int_equal(rename(moved, store), 0);
	load(p, h1, deadline, &seen);

	/* The callback can stop the walk. */
	assert_int_equal(p->load_cluster(h1, deadline, collect,
	                                 &(struct seen){ .n = PGKEEL_ARRAY_LEN(seen.e) }, &err),
	                 PGKEEL_DCS_NOMEM);

	/* delete_cluster (pgkeelctl remove) leaves nothing; a private store is separate. */
	assert_int_equal(p->delete_cluster(ctl, deadline, &err), PGKEEL_DCS_OK);
	load(p, h1, deadline, &seen);
	assert_int_equal(seen.n, 0);
	load(p, priv, deadline, &seen);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.e[0].value, "pg-3");

	p->fini(h1);
	p->fini(h2);
	p->fini(ctl);
	p->fini(priv);
	p->fini(NULL);
}

/* ------------------------------------------------------------------ */
/* Refusals                                                             */

static void test_missing_file(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	path_in(t, "dcs_etcd3.so", path, sizeof(path));
	expect_refused(t->path, "etcd3", path, "no such file", "is the etcd3 backend built",
	               "PGKEEL_BACKEND_DIR", NULL);
}

static void test_missing_dir(void **state)
{
	struct test_dir *t = *state;
	char dir[PATH_MAX];
	char file[PATH_MAX];

	path_in(t, "nonexistent", dir, sizeof(dir));
	expect_refused(dir, "mock", dir, "does not exist", NULL);

	path_in(t, "plain-file", file, sizeof(file));
	copy_file(NOT_A_LIBRARY, file, 0644);
	expect_refused(file, "mock", file, "is not a directory", NULL);
}

static void test_bad_names(void **state)
{
	struct test_dir *t = *state;

	install_plugin(t, "mock", "dcs_mock.so", 0644);
	expect_refused(t->path, "../mock", "invalid DCS backend name", NULL);
	expect_refused(t->path, "Mock", "invalid DCS backend name", NULL);
	expect_refused(t->path, "mo-ck", "invalid DCS backend name", NULL);
	expect_refused(t->path, "mock.so", "invalid DCS backend name", NULL);
	expect_refused(t->path, "", "invalid DCS backend name", NULL);
	expect_refused(t->path, NULL, "invalid DCS backend name", NULL);
}

static void test_not_elf(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	path_in(t, "dcs_text.so", path, sizeof(path));
	copy_file(NOT_A_LIBRARY, path, 0644);
	expect_refused(t->path, "text", path, "is not a shared object", NULL);

	path_in(t, "dcs_empty.so", path, sizeof(path));
	copy_file("/dev/null", path, 0644);
	expect_refused(t->path, "empty", path, "is not a shared object", NULL);
}

static void test_broken_elf(void **state)
{
	struct test_dir *t = *state;
	static const char junk[] = "\177ELF this is no real ELF header at all, just junk bytes";
	char path[PATH_MAX];
	int fd;

	path_in(t, "dcs_junk.so", path, sizeof(path));
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_int_not_equal(fd, -1);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	/* dlerror's text is in the message; the /proc/self/fd name is not. */
	expect_refused(t->path, "junk", path, "cannot be loaded", "ldd", NULL);
}

static void test_no_entry(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "noentry", "dcs_noentry.so", 0755);
	path_in(t, "dcs_noentry.so", path, sizeof(path));
	expect_refused(t->path, "noentry", path,
	               "does not export pgkeel_dcs_plugin_entry (not a pgkeel DCS backend?)", NULL);
}

static void test_foreign_major(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "badabi", "dcs_badabi.so", 0755);
	path_in(t, "dcs_badabi.so", path, sizeof(path));
	expect_refused(t->path, "badabi", path, "was built for DCS ABI 2.x",
	               "this pgkeel speaks 1.x; rebuild the backend", NULL);
}

static void test_missing_op(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "missingop", "dcs_missingop.so", 0755);
	path_in(t, "dcs_missingop.so", path, sizeof(path));
	expect_refused(t->path, "missingop", path, "lacks mandatory operation 'load_cluster'",
	               NULL);
}

/* The other descriptor defects, through dcs_missingop's variants. */
static void test_descriptor_defects(void **state)
{
	struct test_dir *t = *state;
	struct pgkeel_dcs_module mod;
	struct pgkeel_dcs *h = NULL;
	struct pgkeel_err err;
	char path[PATH_MAX];

	install_plugin(t, "missingop", "dcs_missingop.so", 0755);
	path_in(t, "dcs_missingop.so", path, sizeof(path));

	assert_int_equal(setenv(VARIANT_ENV, "null", 1), 0);
	expect_refused(t->path, "missingop", path, "pgkeel_dcs_plugin_entry() returned NULL",
	               NULL);
	assert_int_equal(setenv(VARIANT_ENV, "short", 1), 0);
	expect_refused(t->path, "missingop", path, "struct_size 8 is smaller than its header",
	               NULL);
	assert_int_equal(setenv(VARIANT_ENV, "noname", 1), 0);
	expect_refused(t->path, "missingop", path, "calls itself '(null)', expected 'missingop'",
	               NULL);
	/* Every op is set, but load_cluster lies past struct_size: it does not exist. */
	assert_int_equal(setenv(VARIANT_ENV, "truncated", 1), 0);
	expect_refused(t->path, "missingop", path, "lacks mandatory operation 'load_cluster'",
	               NULL);
	/* An older minor: the optional op past struct_size reads as NULL. */
	assert_int_equal(setenv(VARIANT_ENV, "oldminor", 1), 0);
	expect_loaded(t->path, "missingop", &mod);
	assert_null(mod.plugin->write_leader_optime);
	assert_non_null(mod.plugin->watch);
	assert_int_equal(mod.plugin->struct_size,
	                 offsetof(struct pgkeel_dcs_plugin, write_leader_optime));
	assert_int_equal(mod.plugin->init(pgkeel_host_get(), NULL, &h, &err), PGKEEL_DCS_INVALID);
	assert_null(h);
	assert_int_equal(unsetenv(VARIANT_ENV), 0);
}

static void test_wrong_name(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "mock", "dcs_other.so", 0755);
	path_in(t, "dcs_other.so", path, sizeof(path));
	expect_refused(t->path, "other", path, "calls itself 'mock', expected 'other'", NULL);
}

static void test_writable_file(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "mock", "dcs_mock.so", 0664);
	path_in(t, "dcs_mock.so", path, sizeof(path));
	expect_refused(t->path, "mock", path, "writable by group or others", NULL);
	assert_int_equal(chmod(path, 0646), 0);
	expect_refused(t->path, "mock", path, "writable by group or others", NULL);
}

static void test_writable_dir(void **state)
{
	struct test_dir *t = *state;
	char msg[PATH_MAX + 64];

	install_plugin(t, "mock", "dcs_mock.so", 0755);
	assert_true(pgkeel_fmt(msg, sizeof(msg), "backend directory %s is writable", t->path));
	assert_int_equal(chmod(t->path, 0775), 0);
	expect_refused(t->path, "mock", msg, "refusing to load backends from it", NULL);
	assert_int_equal(chmod(t->path, 0757), 0);
	expect_refused(t->path, "mock", msg, NULL);
	assert_int_equal(chmod(t->path, 01777), 0);
	expect_refused(t->path, "mock", msg, NULL);
}

static void test_symlink(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	install_plugin(t, "mock", "real.so", 0755);
	path_in(t, "dcs_mock.so", path, sizeof(path));
	assert_int_equal(symlink("real.so", path), 0);
	expect_refused(t->path, "mock", path, "symbolic link", NULL);
}

static void test_not_regular(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	path_in(t, "dcs_dir.so", path, sizeof(path));
	assert_int_equal(mkdir(path, 0755), 0);
	expect_refused(t->path, "dir", path, "is not a regular file", NULL);
	/* A FIFO must be refused, not block the open. */
	path_in(t, "dcs_fifo.so", path, sizeof(path));
	assert_int_equal(mkfifo(path, 0644), 0);
	expect_refused(t->path, "fifo", path, "is not a regular file", NULL);
}

static void test_foreign_owner(void **state)
{
	struct test_dir *t = *state;
	char path[PATH_MAX];

	if (geteuid() != 0) {
		skip(); /* only root can give a file away */
		return;
	}
	install_plugin(t, "mock", "dcs_mock.so", 0755);
	path_in(t, "dcs_mock.so", path, sizeof(path));
	assert_int_equal(chown(path, 65534, 65534), 0);
	expect_refused(t->path, "mock", path, "owned by uid 65534", NULL);
	assert_int_equal(chown(path, 0, 0), 0);
	assert_int_equal(chown(t->path, 65534, 65534), 0);
	expect_refused(t->path, "mock", "backend directory", "owned by uid 65534", NULL);
}

/*
 * glibc finds an already loaded object by the name it was opened under, so a
 * second file dlopen()ed as the same /proc/self/fd/N would come back as the
 * first one.  A failed load followed by a good one exercises exactly that.
 */
static void test_fd_name_reuse(void **state)
{
	struct test_dir *t = *state;
	const struct pgkeel_dcs_plugin *first = NULL;
	struct pgkeel_dcs_module mod;
	char path[PATH_MAX];
	int i;

	install_plugin(t, "badabi", "dcs_badabi.so", 0755);
	install_plugin(t, "mock", "dcs_mock.so", 0755);
	for (i = 0; i < 3; i++) {
		path_in(t, "dcs_badabi.so", path, sizeof(path));
		expect_refused(t->path, "badabi", path, "DCS ABI 2.x", NULL);
		expect_loaded(t->path, "mock", &mod);
		assert_non_null(mod.plugin->load_cluster);
		/* The same file loaded again (a reload) gives the same descriptor. */
		if (first == NULL)
			first = mod.plugin;
		assert_ptr_equal(mod.plugin, first);
	}
}

/* ------------------------------------------------------------------ */
/* Host services                                                        */

static void *post_from_thread(void *arg)
{
	const struct pgkeel_host *host = arg;

	host->post_event(host->ctx, PGKEEL_EVENT_LEADER);
	host->post_event(host->ctx, PGKEEL_EVENT_CONFIG | PGKEEL_EVENT_SESSION);
	host->log(host->ctx, PGKEEL_LOG_DEBUG, "test: posted from thread %d", 1);
	return NULL;
}

static void test_host_events(void **state)
{
	const struct pgkeel_host *host = pgkeel_host_get();
	pthread_t th;
	int efd;

	(void)state;
	assert_non_null(host);
	assert_ptr_equal(pgkeel_host_get(), host);
	assert_int_equal(host->abi_version, PGKEEL_HOST_ABI_VERSION);
	assert_int_equal(host->struct_size, sizeof(struct pgkeel_host));
	efd = pgkeel_host_event_fd();
	assert_true(efd >= 0);
	assert_int_equal(pgkeel_host_event_fd(), efd);
	assert_true((fcntl(efd, F_GETFD) & FD_CLOEXEC) != 0);
	assert_true((fcntl(efd, F_GETFL) & O_NONBLOCK) != 0);

	(void)pgkeel_host_take_events();
	assert_false(wait_readable(efd, 0));

	assert_int_equal(pthread_create(&th, NULL, post_from_thread, (void *)host), 0);
	assert_true(wait_readable(efd, 5000));
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(pgkeel_host_take_events(),
	                 PGKEEL_EVENT_LEADER | PGKEEL_EVENT_CONFIG | PGKEEL_EVENT_SESSION);
	assert_false(wait_readable(efd, 0));
	assert_int_equal(pgkeel_host_take_events(), 0);
}

static void test_host_clocks_and_log(void **state)
{
	const struct pgkeel_host *host = pgkeel_host_get();
	int64_t m1;
	int64_t m2;

	(void)state;
	assert_non_null(host);
	m1 = host->now_monotonic_ms(host->ctx);
	m2 = host->now_monotonic_ms(host->ctx);
	assert_true(m1 > 0);
	assert_true(m2 >= m1);
	assert_true(host->now_boottime_ms(host->ctx) >= m1);
	host->log(host->ctx, PGKEEL_LOG_DEBUG, "test: host log %s %d", "works", 42);
	/* A level outside the enum is clamped, not trusted. */
	host->log(host->ctx, (enum pgkeel_log_level)99, "test: clamped level %d", 99);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backend_dir),
		cmocka_unit_test(test_host_events),
		cmocka_unit_test(test_host_clocks_and_log),
		cmocka_unit_test_setup_teardown(test_mock_loads_and_works, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_missing_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_missing_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_bad_names, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_not_elf, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_broken_elf, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_no_entry, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_foreign_major, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_missing_op, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_descriptor_defects, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_wrong_name, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_writable_file, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_writable_dir, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_symlink, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_not_regular, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_foreign_owner, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_fd_name_reuse, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
