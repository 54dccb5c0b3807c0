/*
 * pgkeelctl: JSON values as YAML, the way patronictl prints them
 * (yaml.safe_dump(data, default_flow_style=..., allow_unicode=True,
 * width=200)): keys sorted, block or flow style.  libyaml's emitter does the
 * layout (PyYAML's emitter is a port of it); what PyYAML adds is the choice
 * of quoting: a string whose plain form would read back as something else
 * (true, 1, 0755, null, "") is single-quoted.
 */
#include "autoconf.h"

#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

#include "ctl.h"
#include "json.h"
#include "yaml_load.h"

struct out {
	struct pgkeel_sbuf b;
};

static int on_write(void *arg, unsigned char *buf, size_t size)
{
	pgkeel_sbuf_put(&((struct out *)arg)->b, (const char *)buf, size);
	return 1;
}

static bool scalar(yaml_emitter_t *e, const char *tag, const char *s, yaml_scalar_style_t style)
{
	yaml_event_t ev;

	if (!yaml_scalar_event_initialize(&ev, NULL, (yaml_char_t *)tag, (yaml_char_t *)s,
	                                  (int)strlen(s), 1, 1, style))
		return false;
	return yaml_emitter_emit(e, &ev) != 0;
}

/*
 * PyYAML's implicit resolvers that pgkeel's loader leaves as strings (it
 * keeps timestamps as text, as the configuration wants them): timestamp,
 * merge (<<) and value (=).  A plain scalar matching one is quoted.
 */
static bool pyyaml_special(const char *s)
{
	static const char *const timestamp =
	    "^([0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt]|[ \t]+)[0-9]{1,2}"
	    ":[0-9]{2}:[0-9]{2}(\\.[0-9]*)?([ \t]*(Z|[-+][0-9]{1,2}(:[0-9]{2})?))?)$";
	regex_t re;
	bool m;

	if (strcmp(s, "<<") == 0 || strcmp(s, "=") == 0)
		return true;
	if (s[0] < '0' || s[0] > '9')
		return false;
	if (regcomp(&re, timestamp, REG_EXTENDED | REG_NOSUB) != 0)
		return false;
	m = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

/* Would this plain text read back as a string equal to itself? */
static bool plain_is_string(const char *s)
{
	json_object *v;
	bool ok;

	if (pyyaml_special(s))
		return false;
	v = pgkeel_yaml_resolve_plain(s, strlen(s));
	ok = json_object_is_type(v, json_type_string);
	json_object_put(v);
	return ok;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool emit(yaml_emitter_t *e, const struct json_object *v, bool flow)
{
	yaml_event_t ev;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return scalar(e, YAML_NULL_TAG, "null", YAML_PLAIN_SCALAR_STYLE);
	case json_type_boolean:
		return scalar(e, YAML_BOOL_TAG, json_object_get_boolean(v) ? "true" : "false",
		              YAML_PLAIN_SCALAR_STYLE);
	case json_type_int:
	case json_type_double:
		return scalar(e, YAML_INT_TAG,
		              json_object_to_json_string_ext((struct json_object *)v,
		                                             JSON_C_TO_STRING_PLAIN),
		              YAML_PLAIN_SCALAR_STYLE);
	case json_type_string: {
		const char *s = json_object_get_string((struct json_object *)v);

		return scalar(e, YAML_STR_TAG, s,
		              plain_is_string(s) && s[0] != '\0' ? YAML_ANY_SCALAR_STYLE
		                                                 : YAML_SINGLE_QUOTED_SCALAR_STYLE);
	}
	case json_type_array: {
		size_t n = json_object_array_length(v);

		if (!yaml_sequence_start_event_initialize(
		        &ev, NULL, (yaml_char_t *)YAML_SEQ_TAG, 1,
		        flow || n == 0 ? YAML_FLOW_SEQUENCE_STYLE : YAML_BLOCK_SEQUENCE_STYLE) ||
		    !yaml_emitter_emit(e, &ev))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!emit(e, json_object_array_get_idx(v, i), flow))
				return false;
		return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
	}
	case json_type_object: {
		size_t n = (size_t)json_object_object_length(v), i = 0;
		const char **keys = pgkeel_xcalloc(n ? n : 1, sizeof(*keys));
		bool ok = true;

		json_object_object_foreach((struct json_object *)v, k, unused)
		{
			(void)unused;
			keys[i++] = k;
		}
		qsort(keys, n, sizeof(*keys), by_key);
		ok = yaml_mapping_start_event_initialize(
		         &ev, NULL, (yaml_char_t *)YAML_MAP_TAG, 1,
		         flow || n == 0 ? YAML_FLOW_MAPPING_STYLE : YAML_BLOCK_MAPPING_STYLE) &&
		     yaml_emitter_emit(e, &ev);
		for (i = 0; ok && i < n; i++) {
			json_object *val = NULL;

			json_object_object_get_ex((struct json_object *)v, keys[i], &val);
			ok = scalar(e, YAML_STR_TAG, keys[i],
			            plain_is_string(keys[i]) && keys[i][0] != '\0'
			                ? YAML_ANY_SCALAR_STYLE
			                : YAML_SINGLE_QUOTED_SCALAR_STYLE) &&
			     emit(e, val, flow);
		}
		free(keys);
		return ok && yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
	}
	}
	return false;
}

char *ctl_yaml_dump(const struct json_object *v, bool flow)
{
	yaml_emitter_t e;
	yaml_event_t ev;
	struct out o = {{0}};
	bool ok;

	if (!yaml_emitter_initialize(&e))
		pgkeel_oom();
	yaml_emitter_set_output(&e, on_write, &o);
	yaml_emitter_set_unicode(&e, 1);
	yaml_emitter_set_width(&e, 200);
	ok = yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) &&
	     yaml_emitter_emit(&e, &ev) &&
	     yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) &&
	     yaml_emitter_emit(&e, &ev) && emit(&e, v, flow) &&
	     yaml_document_end_event_initialize(&ev, 1) && yaml_emitter_emit(&e, &ev) &&
	     yaml_stream_end_event_initialize(&ev) && yaml_emitter_emit(&e, &ev) &&
	     yaml_emitter_flush(&e);
	yaml_emitter_delete(&e);
	if (!ok) {
		free(o.b.p);
		return pgkeel_strdup("");
	}
	return pgkeel_sbuf_finish(&o.b);
}
