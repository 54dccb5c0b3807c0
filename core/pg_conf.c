/* placeholder: being written */
#include "autoconf.h"
typedef int pgkeel_placeholder_pg_conf;
