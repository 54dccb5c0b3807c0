/* Process exit codes, used only at top level (main). */
#ifndef PGKEEL_EXIT_CODES_H
#define PGKEEL_EXIT_CODES_H

#define PGKEEL_EXIT_OK 0
#define PGKEEL_EXIT_FAILURE 1 /* bad config, backend not loadable, startup failure */
#define PGKEEL_EXIT_USAGE 2   /* bad command line */

#endif
