/*
 * config internals shared by config.c and config_effective.c; not for use
 * elsewhere (the interface is config.h).  Named pgkeel_cfg_*.
 */
#ifndef PGKEEL_CONFIG_INTERNAL_H
#define PGKEEL_CONFIG_INTERNAL_H

#include <stdbool.h>

#include <json-c/json.h>

/* A deep copy (NULL for NULL); aborts when out of memory. */
json_object *pgkeel_cfg_jcopy(json_object *o);
/* One of Patroni's boolean words (on/off, true/false, yes/no, 1/0), any case? */
bool pgkeel_cfg_str_is_bool(const char *s);

#endif
