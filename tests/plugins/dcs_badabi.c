/*
 * A backend built for a DCS ABI major this host does not speak (2.x): the
 * loader must refuse it before it looks at anything past the header.
 */
#include "autoconf.h"

#include <pgkeel/dcs.h>

static const struct pgkeel_dcs_plugin badabi_plugin = {
	.abi_version = PGKEEL_ABI_MAKE(2, 0),
	.struct_size = sizeof(struct pgkeel_dcs_plugin),
	.name = "badabi",
	.version = "2.0.0",
};

PGKEEL_DCS_EXPORT const struct pgkeel_dcs_plugin *
pgkeel_dcs_plugin_entry(void)
{
	return &badabi_plugin;
}
