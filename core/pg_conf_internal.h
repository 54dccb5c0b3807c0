/*
 * pg_conf internals shared by pg_conf.c and pg_conf_classify.c; not for
 * use elsewhere (the interface is pg_conf.h).  Named pgkeel_pgc_*.
 */
#ifndef PGKEEL_PG_CONF_INTERNAL_H
#define PGKEEL_PG_CONF_INTERNAL_H

#include <stdbool.h>

#include <json-c/json.h>

/* pg_conf.c: Python's case-insensitive parameter dictionaries. */

/* The key of obj equal to name ignoring case, or NULL. */
const char *pgkeel_pgc_ci_key(json_object *obj, const char *name);
bool pgkeel_pgc_ci_has(json_object *obj, const char *name);
/* The value under name ignoring case (NULL also for JSON null). */
json_object *pgkeel_pgc_ci_get(json_object *obj, const char *name);
void pgkeel_pgc_ci_del(json_object *obj, const char *name);
/* A deep copy (values owned by the copy). */
json_object *pgkeel_pgc_jdup(json_object *v);
/* Is name one of the recovery parameters (validator.py's table)? */
bool pgkeel_pgc_is_recovery_param(const char *name);

/* pg_conf_classify.c: Patroni's utils.py. */

/* str.strip(): a copy without leading and trailing whitespace. */
char *pgkeel_pgc_strip_dup(const char *s);
/* Patroni's parse_int(value, base_unit). */
bool pgkeel_pgc_py_parse_int(const char *value, const char *base_unit, double *out);
/* Patroni's parse_bool: 1 true, 0 false, -1 neither. */
int pgkeel_pgc_py_parse_bool(const char *s);

#endif
