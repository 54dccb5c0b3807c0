/*
 * Builders shared by the REST unit tests (test_rest.c, test_rest_api.c):
 * a cluster snapshot from DCS key/value pairs, a JSON value from text.
 * Included by one test program each; everything here is static.
 */
#ifndef PGKEEL_REST_TEST_H
#define PGKEEL_REST_TEST_H

#include <string.h>

#include <json-c/json.h>

#include "cluster.h"
#include "json.h"

/* kv: key, value, key, value, ..., NULL; every entry at version "1". */
static struct pgkeel_cluster *cluster_of(const char *const *kv)
{
	struct pgkeel_cluster_builder *b = pgkeel_cluster_builder_new();

	for (size_t i = 0; kv[i] != NULL; i += 2) {
		struct pgkeel_dcs_entry e = {.key = kv[i],
		                             .value = kv[i + 1],
		                             .value_len = strlen(kv[i + 1]),
		                             .version = "1"};

		(void)pgkeel_cluster_builder_add(b, &e);
	}
	return pgkeel_cluster_builder_finish(b);
}

/* The parsed value (the test fails when text is not JSON). */
static struct json_object *json_of(const char *text)
{
	struct json_object *o = NULL;
	char err[128];

	assert_true(pgkeel_json_parse(text, strlen(text), &o, err, sizeof(err)));
	return o;
}

#endif
