/* placeholder */
#ifndef PGKEEL_PG_CONF_H
#define PGKEEL_PG_CONF_H
#endif
