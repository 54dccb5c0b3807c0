/*
 * history: the `history` key a leader maintains (spec patroni-dcs-and-ha.md
 * §5.8; Patroni 3.0.2 Ha.update_cluster_history and Postgresql.get_history).
 *
 * On timeline 1 the key is "[]".  On a later timeline T it is rewritten when
 * it is empty, or its last line is not for T-1, or that line lacks the new
 * leader's name: from pg_wal/<T as %08X>.history (lines "tli<TAB>lsn<TAB>
 * reason"), the last max_timelines_history lines (0: all), each line
 * carrying over the promotion time and new leader recorded in the old key
 * for the same timeline and LSN, and the line for T-1 stamped with the
 * file's modification time (ISO-8601 in the local zone, microseconds when
 * not zero) and my name.  Pure: the caller reads the file.
 */
#ifndef PGKEEL_HISTORY_H
#define PGKEEL_HISTORY_H

#include <stdbool.h>
#include <stdint.h>

#include "cluster.h"

/*
 * The new value of `history`, malloc'd, or NULL when nothing is to be
 * written.  old: the key as loaded (NULL: absent).  file_text: the history
 * file of `timeline` (NULL: not readable -- then nothing is written unless
 * timeline is 1).  mtime_s/mtime_us: the file's modification time.
 */
char *pgkeel_history_update(const struct pgkeel_history *old, int64_t timeline,
                            const char *file_text, int64_t mtime_s, int64_t mtime_us,
                            const char *my_name, int64_t max_timelines_history);

/* Does the leader need to look at its history file? (the rewrite condition) */
bool pgkeel_history_needs_update(const struct pgkeel_history *old, int64_t timeline);

/* Python's datetime.fromtimestamp(t, local zone).isoformat() into buf. */
void pgkeel_history_isotime(int64_t sec, int64_t usec, char *buf, size_t len);

#endif
