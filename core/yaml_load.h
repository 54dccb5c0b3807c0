/*
 * YAML to json-c, resolved the way Patroni's loader (PyYAML safe_load, YAML
 * 1.1) resolves it: plain scalars become null (~, null, empty), booleans
 * (yes/no/on/off/true/false in their three spellings), integers (decimal,
 * 0o-less octal such as 0755, 0x hex, 0b binary, underscores, sexagesimal
 * 1:30) and floats; quoted scalars stay strings; `<<` merge keys; anchors and
 * aliases.  Unlike PyYAML, a duplicate key is an error.
 *
 * Every node's position is recorded in `positions` (a json object mapping the
 * dotted path, e.g. "postgresql.authentication.superuser.password" or
 * "bootstrap.pg_hba[1]", to "file:line:col"), so errors can say where.
 * The position of a mapping key itself is recorded as "@<path>".
 */
#ifndef PGKEEL_YAML_LOAD_H
#define PGKEEL_YAML_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

/*
 * Parse one YAML document.  On success *out is the root (NULL for an empty
 * document).  `positions` may be NULL.  On failure returns false with
 * "file:line:col: what" in err.
 */
bool pgkeel_yaml_parse(const char *text, size_t len, const char *filename, json_object **out,
                       json_object *positions, char *err, size_t errlen);

/* Read and parse a file. */
bool pgkeel_yaml_load_file(const char *path, json_object **out, json_object *positions, char *err,
                           size_t errlen);

/* Resolve one plain scalar as YAML 1.1 / PyYAML would (exposed for tests and env parsing). */
json_object *pgkeel_yaml_resolve_plain(const char *s, size_t len);

/* Position of `path` recorded by the parser, or NULL. */
const char *pgkeel_yaml_position(json_object *positions, const char *path);

#endif
