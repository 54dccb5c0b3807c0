#include "autoconf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ha_test.h"
#include "util.h"

const struct row ha_rows_sync[] = {
	{ "sync placeholder", NULL, "",
	  "handle_parameter_change follow(pg-2,replica) sync_slots touch_member",
	  "no action. I am (pg-1), a secondary, and following a leader (pg-2)", NULL, NULL },
};

const size_t ha_rows_sync_n = PGKEEL_ARRAY_LEN(ha_rows_sync);
