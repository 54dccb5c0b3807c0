/*
 * backends/common: the error detail every backend writes, the checks its
 * init makes on the parameters (texts, order, the znode-name rule) and
 * set_ttl's timings.
 */
#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "dcs_common.h"

static const struct pgkeel_host a_host; /* only its address is looked at */

static struct pgkeel_dcs_params params_ok(void)
{
	struct pgkeel_dcs_params p = {
	    .struct_size = sizeof(p),
	    .namespace_ = "/service/",
	    .scope = "batman",
	    .name = "pg-1",
	    .ttl = 30,
	    .loop_wait = 10,
	    .retry_timeout = 10,
	};

	return p;
}

/* handle_init on p answers INVALID with want, or OK (h filled in) when want is NULL. */
static void expect(const struct pgkeel_dcs_params *p, bool znode_name, const char *want)
{
	struct pgkeel_err err = {0};
	struct dcsc_handle h = {.ttl = -7};
	enum pgkeel_dcs_status st = dcsc_handle_init(&h, "zookeeper", &a_host, p, znode_name, &err);

	if (want == NULL) {
		assert_int_equal(st, PGKEEL_DCS_OK);
		assert_ptr_equal(h.host, &a_host);
		assert_int_equal(h.ctl, (p->flags & PGKEEL_DCS_CTL) != 0);
		assert_int_equal(h.ttl, p->ttl);
		assert_int_equal(h.loop_wait, p->loop_wait);
		assert_int_equal(h.retry_timeout, p->retry_timeout);
		return;
	}
	assert_int_equal(st, PGKEEL_DCS_INVALID);
	assert_int_equal(err.code, PGKEEL_DCS_D_NONE);
	assert_string_equal(err.msg, want);
	assert_int_equal(h.ttl, -7); /* untouched */
}

static void test_check_params(void **state)
{
	struct pgkeel_dcs_params p = params_ok();
	struct pgkeel_err err = {0};
	struct dcsc_handle h;

	(void)state;
	expect(&p, true, NULL);
	assert_int_equal(dcsc_handle_init(&h, "etcd3", NULL, &p, false, &err), PGKEEL_DCS_INVALID);
	assert_string_equal(err.msg, "etcd3: incomplete parameters");
	p.struct_size = offsetof(struct pgkeel_dcs_params, user_agent); /* an older host */
	expect(&p, true, NULL);
	p.struct_size = offsetof(struct pgkeel_dcs_params, options_json);
	expect(&p, true, "zookeeper: incomplete parameters");
	p = params_ok();
	p.scope = NULL;
	expect(&p, false, "zookeeper: incomplete parameters");

	p = params_ok();
	p.name = "a/b";
	expect(&p, false, NULL);
	expect(&p, true, "zookeeper: a member handle needs a name without '/'");
	p.name = "";
	expect(&p, false, NULL);
	expect(&p, true, "zookeeper: a member handle needs a name without '/'");
	p.name = NULL;
	expect(&p, false, "zookeeper: a member handle needs a name");
	p.flags = PGKEEL_DCS_CTL; /* a ctl handle needs none */
	expect(&p, true, NULL);
	p.ttl = 0; /* the name is checked first, the timings last */
	expect(&p, true, "zookeeper: ttl, loop_wait and retry_timeout must be positive");
	p = params_ok();
	p.retry_timeout = -1;
	expect(&p, false, "zookeeper: ttl, loop_wait and retry_timeout must be positive");
}

static void test_set_timing(void **state)
{
	struct dcsc_handle h = {.ttl = 30, .loop_wait = 10, .retry_timeout = 10};
	struct pgkeel_err err = {0};

	(void)state;
	assert_int_equal(dcsc_handle_set_timing(&h, "etcd3", 20, 5, 0, &err), PGKEEL_DCS_INVALID);
	assert_string_equal(err.msg, "etcd3: timings must be positive");
	assert_int_equal(h.ttl, 30);
	assert_int_equal(h.retry_timeout, 10);
	assert_int_equal(dcsc_handle_set_timing(&h, "etcd3", 20, 5, 7, &err), PGKEEL_DCS_OK);
	assert_int_equal(h.ttl, 20);
	assert_int_equal(h.loop_wait, 5);
	assert_int_equal(h.retry_timeout, 7);
}

static void test_set_err(void **state)
{
	struct pgkeel_err err = {0};
	char *long_text = malloc(2 * sizeof(err.msg));
	char *s;

	(void)state;
	dcsc_set_err(NULL, 1, "nothing happens");
	dcsc_set_err(&err, PGKEEL_DCS_D_TIMEOUT, "etcd3: %s", "slow");
	assert_int_equal(err.code, PGKEEL_DCS_D_TIMEOUT);
	assert_string_equal(err.msg, "etcd3: slow");
	assert_non_null(long_text);
	memset(long_text, 'x', 2 * sizeof(err.msg) - 1);
	long_text[2 * sizeof(err.msg) - 1] = '\0';
	dcsc_set_err(&err, PGKEEL_DCS_D_NONE, "%s", long_text);
	assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
	assert_string_equal(err.msg + sizeof(err.msg) - 4, "...");
	free(long_text);

	assert_null(dcsc_strdup(NULL));
	s = dcsc_strdup("a");
	assert_string_equal(s, "a");
	dcsc_set_str(&s, "b");
	assert_string_equal(s, "b");
	dcsc_set_str(&s, NULL);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_check_params),
	    cmocka_unit_test(test_set_timing),
	    cmocka_unit_test(test_set_err),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
