/*
 * A valid shared object that exports a function, but not
 * pgkeel_dcs_plugin_entry: the loader must say it is not a pgkeel backend.
 */
#include "autoconf.h"

__attribute__((visibility("default"))) int pgkeel_test_noentry_answer(void);

__attribute__((visibility("default"))) int pgkeel_test_noentry_answer(void)
{
	return 42;
}
