/*
 * Child processes: the one way pgkeel starts a program (the postmaster,
 * initdb, pg_basebackup, pg_rewind, pg_ctl, callbacks, custom scripts).
 *
 * What every child gets, whatever the daemon's own state:
 * - argv executed directly, no shell.  argv[0] containing a '/' is used as
 *   is (relative to the child's working directory); otherwise it is searched
 *   in the PATH of the child's environment, as execvp() does (but a file
 *   without a #! line is not handed to /bin/sh).
 * - an environment copied from the daemon's with every PATRONI_* and
 *   PGKEEL_* variable removed (they carry DCS and REST secrets), then the
 *   caller's overrides applied.
 * - stdin from /dev/null; stdout and stderr as the spec says.
 * - its own session and process group (setsid), so that pgid == pid and
 *   signals sent to the group reach whatever the command forked.
 * - an empty signal mask and the default disposition for every signal (the
 *   daemon blocks SIGHUP/SIGTERM/SIGINT/SIGCHLD for its signalfd and ignores
 *   SIGPIPE; none of that is inherited).
 * - no descriptor other than 0, 1, 2: everything else is closed at exec,
 *   whether or not whoever opened it asked for O_CLOEXEC.
 * - optionally other credentials (uid, gid, supplementary groups), switched
 *   before the working directory and output files are opened, so those are
 *   checked with the child's rights (as `su -c 'cd dir && cmd >> file'`).
 *
 * A failure before the program runs (not found, not executable, chdir or
 * setuid refused, output file not writable) is reported by
 * pgkeel_child_spawn() itself, through a close-on-exec pipe: false, errno
 * set to the cause (ENOENT, EACCES...) and a message naming the step.  It
 * never shows up as an exit code.
 *
 * Reaping: a child is reaped exactly once, by pgkeel_child_poll() or
 * pgkeel_child_wait() (or the functions built on them), and its pid is not
 * used after that (a recycled pid is never signalled).  Nothing else in the
 * process may wait for "any child" (waitpid(-1), wait()) or set SIGCHLD to
 * SIG_IGN; SIGCHLD is only a wake-up.  A child that does not die within
 * PGKEEL_CHILD_KILL_GRACE_MS of SIGKILL (uninterruptible sleep) is handed to
 * an internal list and reaped later by pgkeel_child_reap_abandoned(), which
 * every spawn also calls.
 *
 * Deadlines are absolute CLOCK_MONOTONIC milliseconds
 * (pgkeel_now_monotonic_ms()); PGKEEL_CHILD_NO_DEADLINE waits for ever.
 * Functions that kill at a deadline may return up to
 * PGKEEL_CHILD_KILL_GRACE_MS after it, the time SIGKILL needs to act.
 *
 * Threads: a handle belongs to one thread at a time; different handles may
 * be used from different threads.  Spawning reads environ: no thread may
 * call setenv()/unsetenv() meanwhile (pgkeel only does so at start-up).
 */
#ifndef PGKEEL_CHILD_H
#define PGKEEL_CHILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pgkeel/host.h>

#define PGKEEL_CHILD_NO_DEADLINE   INT64_MAX
#define PGKEEL_CHILD_KILL_GRACE_MS 100
#define PGKEEL_CHILD_MAX_GROUPS    64

/* Where the child's stdout or stderr goes. */
enum pgkeel_child_out_mode {
	PGKEEL_CHILD_OUT_NULL = 0, /* /dev/null (the default of a zeroed spec) */
	PGKEEL_CHILD_OUT_INHERIT,  /* the daemon's own fd 1 (stdout) or 2 (stderr) */
	PGKEEL_CHILD_OUT_FD,       /* a descriptor the caller owns and keeps open */
	PGKEEL_CHILD_OUT_FILE,     /* path opened O_WRONLY|O_CREAT|O_APPEND, mode 0600 */
	PGKEEL_CHILD_OUT_PIPE,     /* a new pipe; its read end is returned in the handle */
	PGKEEL_CHILD_OUT_STDOUT,   /* stderr only: wherever stdout goes (2>&1) */
};

struct pgkeel_child_out {
	enum pgkeel_child_out_mode mode;
	int fd;           /* PGKEEL_CHILD_OUT_FD */
	const char *path; /* PGKEEL_CHILD_OUT_FILE */
};

/* Credentials for a child; fill with pgkeel_child_user_lookup(). */
struct pgkeel_child_user {
	uid_t uid;
	gid_t gid;
	int ngroups; /* supplementary groups, the primary group included */
	gid_t groups[PGKEEL_CHILD_MAX_GROUPS];
};

/* What to start.  Zero-initialise, then set argv and whatever else is needed. */
struct pgkeel_child_spec {
	const char *const *argv; /* NULL-terminated; argv[0] is the program */
	const char *cwd;         /* NULL: the daemon's working directory */
	/*
	 * NULL-terminated overrides applied to the scrubbed environment:
	 * "NAME=value" sets or replaces, a bare "NAME" removes.  May be NULL.
	 */
	const char *const *env;
	struct pgkeel_child_out out;          /* stdout */
	struct pgkeel_child_out err;          /* stderr */
	const struct pgkeel_child_user *user; /* NULL: the daemon's own credentials */
	const char *name;                     /* for messages; NULL: base name of argv[0] */
};

/*
 * A started child.  Initialise with PGKEEL_CHILD_INIT (or
 * pgkeel_child_init()), which is an empty handle every function accepts.
 */
struct pgkeel_child {
	pid_t pid;     /* also its session and process group id; 0 when empty */
	int pidfd;     /* becomes readable (POLLIN) when the child exits; -1 without pidfd */
	int out_fd;    /* read end of the stdout pipe (O_NONBLOCK|O_CLOEXEC), else -1 */
	int err_fd;    /* read end of the stderr pipe, else -1 */
	bool reaped;   /* wstatus is valid; pid must not be used any more */
	int wstatus;   /* waitpid() status; -1 when it was lost (reaped by someone else) */
	char name[64]; /* for messages */
};

/* clang-format off */
#define PGKEEL_CHILD_INIT {0, -1, -1, -1, false, 0, ""}
/* clang-format on */

enum pgkeel_child_state {
	PGKEEL_CHILD_RUNNING, /* alive (or exited but not collectable yet) */
	PGKEEL_CHILD_EXITED,  /* reaped: wstatus is valid (an empty handle is EXITED too) */
};

enum pgkeel_child_stop_result {
	PGKEEL_CHILD_STOPPED, /* exited after the first signal, before the deadline */
	PGKEEL_CHILD_KILLED,  /* still running at the deadline: the group got SIGKILL */
	PGKEEL_CHILD_STUCK,   /* not gone even PGKEEL_CHILD_KILL_GRACE_MS after SIGKILL */
};

enum pgkeel_child_result {
	PGKEEL_CHILD_OK,      /* ran to completion: look at wstatus */
	PGKEEL_CHILD_TIMEOUT, /* still running at the deadline: killed, output is partial */
	PGKEEL_CHILD_FAILED,  /* could not be started: err says why, errno the cause */
};

/* What pgkeel_child_capture() collected. */
struct pgkeel_child_output {
	char *data; /* NUL-terminated stdout (at most max_bytes of it); never NULL after capture */
	size_t len; /* bytes in data */
	bool truncated; /* the command wrote more; the rest was read and dropped */
	int wstatus;    /* as pgkeel_child.wstatus; valid with PGKEEL_CHILD_OK */
};

/* Resolve a user name to uid, primary gid and supplementary groups. */
bool pgkeel_child_user_lookup(const char *name, struct pgkeel_child_user *out, char *err,
                              size_t errlen) PGKEEL_MUSTCHECK;

void pgkeel_child_init(struct pgkeel_child *c);

/*
 * Start a child as described above.  On success fills *c (which must be
 * empty) and returns true once the program has been executed.  On failure
 * returns false, sets errno to the cause and writes one line into err,
 * e.g. "cannot start pg_ctl: exec /usr/lib/postgresql/15/bin/pg_ctl: No such
 * file or directory"; nothing is left running and *c stays empty.
 */
bool pgkeel_child_spawn(const struct pgkeel_child_spec *spec, struct pgkeel_child *c, char *err,
                        size_t errlen) PGKEEL_MUSTCHECK;

/* Has it exited?  Never blocks; reaps the child when it has. */
enum pgkeel_child_state pgkeel_child_poll(struct pgkeel_child *c);

/* Wait until the child exits (reaped) or the deadline passes (RUNNING). */
enum pgkeel_child_state pgkeel_child_wait(struct pgkeel_child *c, int64_t deadline_ms);

/*
 * Send sig to the child's whole process group.  False (errno ESRCH) once the
 * child has been reaped: the group id may belong to someone else by then.
 */
bool pgkeel_child_signal(struct pgkeel_child *c, int sig);

/*
 * Stop with escalation: send sig to the group, wait for the child until
 * deadline_ms, then SIGKILL the group.  Once the child has exited, whatever
 * is left of its group is SIGKILLed too, then the child is reaped.  With
 * sig = SIGKILL and deadline = now this is "kill it now".  Returns by
 * deadline_ms + PGKEEL_CHILD_KILL_GRACE_MS; on STUCK the handle stays
 * unreaped (poll it later, or free it).
 */
enum pgkeel_child_stop_result pgkeel_child_stop(struct pgkeel_child *c, int sig,
                                                int64_t deadline_ms);

/*
 * Release a handle: a child still running has its group SIGKILLed and is
 * reaped (or left to pgkeel_child_reap_abandoned()); pipes and the pidfd are
 * closed.  The handle is empty afterwards.
 */
void pgkeel_child_free(struct pgkeel_child *c);

/* The exit code (0..255) of a reaped child that exited; -1 otherwise. */
int pgkeel_child_exit_code(const struct pgkeel_child *c);
/* True when the child was reaped and exited with code 0. */
bool pgkeel_child_succeeded(const struct pgkeel_child *c);
/* "exited with code 1", "killed by signal 9 (SIGKILL)", "exit status unknown"... */
void pgkeel_child_describe(int wstatus, char *buf, size_t len);

/*
 * Run a short command to completion and collect its stdout (the spec's out
 * is replaced by a pipe; its err is used as given).  At most max_bytes are
 * kept.  At the deadline the command's group is killed and TIMEOUT returned
 * with the output read so far.  Free *out with pgkeel_child_output_free()
 * whatever the result.
 */
enum pgkeel_child_result pgkeel_child_capture(const struct pgkeel_child_spec *spec,
                                              int64_t deadline_ms, size_t max_bytes,
                                              struct pgkeel_child_output *out, char *err,
                                              size_t errlen);
void pgkeel_child_output_free(struct pgkeel_child_output *out);

/*
 * A slot runs one command at a time (Patroni's callback rule): starting a
 * new command SIGKILLs the process group of the previous one if it is still
 * running.  on_reload and the role-change callbacks use separate slots.
 */
struct pgkeel_child_slot {
	struct pgkeel_child child; /* the current or last command */
	unsigned replaced;         /* commands killed because a new one started */
};

void pgkeel_child_slot_init(struct pgkeel_child_slot *s);
bool pgkeel_child_slot_start(struct pgkeel_child_slot *s, const struct pgkeel_child_spec *spec,
                             char *err, size_t errlen) PGKEEL_MUSTCHECK;
/* True while the slot's command runs (reaps it when it has exited). */
bool pgkeel_child_slot_busy(struct pgkeel_child_slot *s);
/* Kill whatever runs in the slot and release it. */
void pgkeel_child_slot_free(struct pgkeel_child_slot *s);

/* Try to reap children given up on after SIGKILL; returns how many remain. */
size_t pgkeel_child_reap_abandoned(void);

#endif
