/*
 * The configuration schema: one row per key pgkeel knows, for the local file
 * (patroni.yml) and for the dynamic configuration (bootstrap.dcs / the DCS
 * `config` key).  The table drives type checks, defaults, unknown-key
 * warnings, reload rules, and the man-page drift check (every path here must
 * be documented in man/pgkeel.yml.5).
 *
 * Paths are dotted.  A segment "*" matches any one key (e.g. the members of
 * postgresql.authentication.* or the per-tool postgresql.bin_name.*).  A row
 * of type MAP lists a section whose sub-keys have rows of their own; FREEMAP
 * is a map whose contents are not checked (parameters, tags, labels...).
 */
#ifndef PGKEEL_CONFIG_SCHEMA_H
#define PGKEEL_CONFIG_SCHEMA_H

#include <stddef.h>

enum pgkeel_ctype {
	PGKEEL_CT_STRING,       /* scalar rendered as text; numbers accepted and stringified */
	PGKEEL_CT_INT,          /* integer; a numeric string is accepted, as Patroni casts */
	PGKEEL_CT_BOOL,         /* YAML 1.1 boolean; "on"/"off"/"true"/"false" strings accepted */
	PGKEEL_CT_NUMBER,       /* int or float */
	PGKEEL_CT_HOSTPORT,     /* "host:port" string */
	PGKEEL_CT_MAP,          /* section with rows of its own */
	PGKEEL_CT_FREEMAP,      /* map, contents not checked */
	PGKEEL_CT_LIST,         /* sequence */
	PGKEEL_CT_STRLIST,      /* sequence, or a comma-separated string */
	PGKEEL_CT_LIST_OR_MAP,  /* e.g. bootstrap.initdb, postgresql.basebackup */
	PGKEEL_CT_SCALAR,       /* any scalar (tags values, parameters) */
	PGKEEL_CT_ANY,
};

enum pgkeel_cflag {
	PGKEEL_CF_REQUIRED = 1u << 0,   /* missing = error */
	PGKEEL_CF_NORELOAD = 1u << 1,   /* SIGHUP keeps the old value, warns */
	PGKEEL_CF_RESTART = 1u << 2,    /* dynamic: change needs a PostgreSQL restart */
	PGKEEL_CF_IGNORED = 1u << 3,    /* accepted but has no effect here (warned) */
	PGKEEL_CF_DEPRECATED = 1u << 4, /* alias of another key (see `alias_of`) */
	PGKEEL_CF_UNSUPPORTED = 1u << 5, /* recognised, refused with a hint */
	PGKEEL_CF_SECRET = 1u << 6,     /* never logged */
	PGKEEL_CF_EXTENSION = 1u << 7,  /* pgkeel-only key, not in Patroni */
};

struct pgkeel_conf_key {
	const char *path;       /* "postgresql.authentication.*.password" */
	enum pgkeel_ctype type;
	const char *def;        /* default as YAML text, NULL = none */
	unsigned flags;         /* enum pgkeel_cflag */
	const char *alias_of;   /* for DEPRECATED rows: the current path */
	const char *doc;        /* one line for --help-config and reviewers */
};

/* Keys of the local file (patroni.yml). */
extern const struct pgkeel_conf_key pgkeel_local_keys[];
extern const size_t pgkeel_local_keys_len;

/* Keys of the dynamic configuration (paths relative to its root). */
extern const struct pgkeel_conf_key pgkeel_dynamic_keys[];
extern const size_t pgkeel_dynamic_keys_len;

/*
 * Patroni-controlled PostgreSQL parameters: never taken from the local file;
 * from the dynamic config only when valid, else the default.
 */
struct pgkeel_controlled_param {
	const char *name;
	const char *def;        /* NULL: computed (listen_addresses, port, cluster_name) */
	int min_version;        /* PostgreSQL version number (90500), 0 = any */
	int max_version;        /* exclusive upper bound, 0 = none */
	/* validation: kind and bound */
	enum { PGKEEL_CP_NEVER, PGKEEL_CP_INT_MIN, PGKEEL_CP_BOOL, PGKEEL_CP_ENUM,
	       PGKEEL_CP_SIZE_MIN_MB } check;
	long long min;          /* INT_MIN / SIZE_MIN_MB bound */
	const char *choices;    /* ENUM: "|hot_standby|replica|logical|" */
};
extern const struct pgkeel_controlled_param pgkeel_controlled_params[];
extern const size_t pgkeel_controlled_params_len;

/* Lookup by exact path, honouring "*" segments; NULL if unknown. */
const struct pgkeel_conf_key *pgkeel_conf_key_find(const struct pgkeel_conf_key *tab,
                                                   size_t len, const char *path);

#endif
