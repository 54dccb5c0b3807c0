/*
 * Loading DCS backends: `dcs_<name>.so` from a trusted directory.
 *
 * The directory is opened once and the file is opened relative to it with
 * O_NOFOLLOW, so every check (ownership, mode, ELF magic) applies to the file
 * that is finally handed to dlopen() through /proc/self/fd/N.
 *
 * glibc recognises an already loaded object by the name it was opened under
 * before it looks at the inode, so two different files opened in turn as
 * "/proc/self/fd/5" would silently yield the first one.  The loader remembers
 * which file (device, inode) each /proc/self/fd/N name was used for, and
 * moves the descriptor to a number never used before when N already names
 * another file.  (The inode of a loaded object cannot be reused: it stays
 * mapped, RTLD_NODELETE.)
 *
 * The descriptor is copied into a zero-filled host-sized struct: a member
 * past the backend's struct_size (an older minor) reads as NULL, and a host
 * never reads past the end of a backend's static data.  The copies live for
 * the whole process, like the backends (never dlclose()d); loading the same
 * backend again returns the same copy.
 */
#include "autoconf.h"

#include "dcs_loader.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#ifndef PKGLIBDIR
#error "PKGLIBDIR must be defined by the build"
#endif

#define ELF_MAGIC "\177ELF"
#define ELF_MAGIC_LEN 4

/* The smallest descriptor that still has the whole header. */
#define DESCRIPTOR_HEADER_SIZE offsetof(struct pgkeel_dcs_plugin, init)

struct loaded_backend {
	struct loaded_backend *next;
	const struct pgkeel_dcs_plugin *orig; /* the backend's own descriptor */
	struct pgkeel_dcs_plugin desc;        /* the zero-filled copy handed out */
};

/* A /proc/self/fd/N name dlopen() has seen, and the file it meant. */
struct fd_name {
	struct fd_name *next;
	int fd;
	dev_t dev;
	ino_t ino;
};

/* Guards the three below; dlopen() itself is thread-safe. */
static pthread_mutex_t loader_mutex = PTHREAD_MUTEX_INITIALIZER;
/* Names used so far; never freed (glibc never forgets them either). */
static struct fd_name *loader_fd_names;
/* Above every descriptor number in loader_fd_names. */
static int loader_next_fd;
/* Keeps the descriptor copies reachable for the life of the process. */
static struct loaded_backend *loader_loaded;

static void set_error(char *err, size_t errlen, const char *fmt, ...) PGKEEL_PRINTF(3, 4);

/* Write one line into err: truncation is marked, control characters blanked. */
static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	bool fit;
	char *p;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	fit = pgkeel_vfmt(err, errlen, fmt, ap);
	va_end(ap);
	if (!fit && errlen > 4)
		memcpy(err + errlen - 4, "...", 4);
	for (p = err; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	}
}

const char *pgkeel_dcs_backend_dir(const char *configured)
{
	const char *env;

	if (configured != NULL && configured[0] != '\0')
		return configured;
	env = getenv("PGKEEL_BACKEND_DIR");
	if (env != NULL && env[0] != '\0')
		return env;
	return PKGLIBDIR;
}

static bool valid_backend_name(const char *name)
{
	const char *p;

	if (name == NULL || name[0] == '\0')
		return false;
	for (p = name; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	}
	return true;
}

static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* Open and vet the backend directory; returns an O_PATH fd or -1. */
static int open_backend_dir(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	int dfd;

	dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd == -1) {
		if (errno == ENOENT)
			set_error(err, errlen,
			          "backend directory %s does not exist "
			          "(set backend_dir or PGKEEL_BACKEND_DIR)", dir);
		else if (errno == ENOTDIR)
			set_error(err, errlen, "backend directory %s is not a directory", dir);
		else
			set_error(err, errlen, "backend directory %s: cannot open: %s", dir,
			          strerror(errno));
		return -1;
	}
	if (fstat(dfd, &st) == -1) {
		set_error(err, errlen, "backend directory %s: cannot stat: %s", dir,
		          strerror(errno));
		close(dfd);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		set_error(err, errlen, "backend directory %s is not a directory", dir);
		close(dfd);
		return -1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		set_error(err, errlen,
		          "backend directory %s is writable by group or others; "
		          "refusing to load backends from it", dir);
		close(dfd);
		return -1;
	}
	if (!trusted_owner(st.st_uid)) {
		set_error(err, errlen,
		          "backend directory %s is owned by uid %lu, neither root nor the "
		          "effective user (uid %lu); refusing to load backends from it",
		          dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
		close(dfd);
		return -1;
	}
	return dfd;
}

/* Open and vet the backend file itself; returns a read-only fd or -1. */
static int open_backend_file(int dfd, const char *fname, const char *path, const char *name,
                             struct stat *st, char *err, size_t errlen)
{
	unsigned char magic[ELF_MAGIC_LEN];
	ssize_t n;
	int fd;

	/* O_NONBLOCK: a FIFO planted under the name must not hang the open. */
	fd = openat(dfd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd == -1) {
		if (errno == ENOENT)
			set_error(err, errlen,
			          "DCS backend %s: no such file (is the %s backend built and "
			          "installed? set backend_dir or PGKEEL_BACKEND_DIR)", path, name);
		else if (errno == ELOOP)
			set_error(err, errlen,
			          "DCS backend %s is a symbolic link; refusing to load it "
			          "(install the file itself)", path);
		else
			set_error(err, errlen, "DCS backend %s: cannot open: %s", path,
			          strerror(errno));
		return -1;
	}
	if (fstat(fd, st) == -1) {
		set_error(err, errlen, "DCS backend %s: cannot stat: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st->st_mode)) {
		set_error(err, errlen, "DCS backend %s is not a regular file", path);
		goto fail;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		set_error(err, errlen,
		          "DCS backend %s is writable by group or others; refusing to load it",
		          path);
		goto fail;
	}
	if (!trusted_owner(st->st_uid)) {
		set_error(err, errlen,
		          "DCS backend %s is owned by uid %lu, neither root nor the effective "
		          "user (uid %lu); refusing to load it",
		          path, (unsigned long)st->st_uid, (unsigned long)geteuid());
		goto fail;
	}
	do {
		n = pread(fd, magic, sizeof(magic), 0);
	} while (n == -1 && errno == EINTR);
	if (n == -1) {
		set_error(err, errlen, "DCS backend %s: cannot read: %s", path, strerror(errno));
		goto fail;
	}
	if ((size_t)n != sizeof(magic) || memcmp(magic, ELF_MAGIC, ELF_MAGIC_LEN) != 0) {
		set_error(err, errlen, "DCS backend %s is not a shared object", path);
		goto fail;
	}
	return fd;

fail:
	close(fd);
	return -1;
}

/*
 * The descriptor number to dlopen() `fd` (the file `st`) under: fd itself if
 * /proc/self/fd/<fd> was never used or was used for this very file, else a
 * duplicate numbered above every name used so far.  -1 with errno on error.
 * Called with loader_mutex held.
 */
static int pick_fd_name(int fd, const struct stat *st)
{
	struct fd_name *fn;
	int lfd = fd;

	for (fn = loader_fd_names; fn != NULL; fn = fn->next) {
		if (fn->fd == fd)
			break;
	}
	if (fn != NULL && fn->dev == st->st_dev && fn->ino == st->st_ino)
		return fd;
	if (fn != NULL) {
		lfd = fcntl(fd, F_DUPFD_CLOEXEC, loader_next_fd);
		if (lfd == -1)
			return -1;
	}
	fn = calloc(1, sizeof(*fn));
	if (fn == NULL) {
		if (lfd != fd)
			close(lfd);
		errno = ENOMEM;
		return -1;
	}
	fn->fd = lfd;
	fn->dev = st->st_dev;
	fn->ino = st->st_ino;
	fn->next = loader_fd_names;
	loader_fd_names = fn;
	if (lfd >= loader_next_fd)
		loader_next_fd = lfd + 1;
	return lfd;
}

/*
 * dlopen() the vetted file through /proc/self/fd/N (see the top of the
 * file).  Called with loader_mutex held.
 */
static void *dlopen_fd(int fd, const struct stat *st, const char *path, char *err,
                       size_t errlen)
{
	char procpath[64];
	const char *why;
	size_t plen;
	void *handle;
	int lfd;

	lfd = pick_fd_name(fd, st);
	if (lfd == -1) {
		set_error(err, errlen, "DCS backend %s: cannot duplicate its descriptor: %s",
		          path, strerror(errno));
		return NULL;
	}
	if (!pgkeel_fmt(procpath, sizeof(procpath), "/proc/self/fd/%d", lfd)) {
		set_error(err, errlen, "DCS backend %s: descriptor path too long", path);
		if (lfd != fd)
			close(lfd);
		return NULL;
	}
	(void)dlerror();
	handle = dlopen(procpath, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
	if (handle == NULL) {
		why = dlerror();
		if (why == NULL)
			why = "unknown dlopen error";
		/* dlerror names the /proc path; the real one is already in the message. */
		plen = strlen(procpath);
		if (strncmp(why, procpath, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
			why += plen + 2;
		set_error(err, errlen,
		          "DCS backend %s cannot be loaded: %s (check its library dependencies "
		          "with ldd)", path, why);
	}
	if (lfd != fd)
		close(lfd);
	return handle;
}

/* Every mandatory operation must be present in the (zero-filled) copy. */
static bool check_mandatory_ops(const struct pgkeel_dcs_plugin *p, const char *path, char *err,
                                size_t errlen)
{
	const struct {
		const char *name;
		bool present;
	} ops[] = {
		{ "init", p->init != NULL },
		{ "fini", p->fini != NULL },
		{ "load_cluster", p->load_cluster != NULL },
		{ "attempt_to_acquire_leader", p->attempt_to_acquire_leader != NULL },
		{ "update_leader", p->update_leader != NULL },
		{ "take_leader", p->take_leader != NULL },
		{ "delete_leader", p->delete_leader != NULL },
		{ "touch_member", p->touch_member != NULL },
		{ "initialize", p->initialize != NULL },
		{ "cancel_initialization", p->cancel_initialization != NULL },
		{ "set_config", p->set_config != NULL },
		{ "set_failover", p->set_failover != NULL },
		{ "write_sync_state", p->write_sync_state != NULL },
		{ "delete_sync_state", p->delete_sync_state != NULL },
		{ "set_history", p->set_history != NULL },
		{ "write_status", p->write_status != NULL },
		{ "write_failsafe", p->write_failsafe != NULL },
		{ "delete_cluster", p->delete_cluster != NULL },
		{ "set_ttl", p->set_ttl != NULL },
		{ "watch", p->watch != NULL },
		/* write_leader_optime is optional. */
	};
	size_t i;

	for (i = 0; i < PGKEEL_ARRAY_LEN(ops); i++) {
		if (!ops[i].present) {
			set_error(err, errlen, "DCS backend %s lacks mandatory operation '%s'",
			          path, ops[i].name);
			return false;
		}
	}
	return true;
}

/* Validate the descriptor the entry returned; on success a lasting copy. */
static struct loaded_backend *check_descriptor(const struct pgkeel_dcs_plugin *d,
                                               const char *path, const char *name,
                                               char *err, size_t errlen)
{
	struct loaded_backend *lb;
	size_t n;

	if (d == NULL) {
		set_error(err, errlen, "DCS backend %s: %s() returned NULL", path,
		          PGKEEL_DCS_ENTRY_SYMBOL);
		return NULL;
	}
	if (PGKEEL_ABI_MAJOR_OF(d->abi_version) != PGKEEL_DCS_ABI_MAJOR) {
		set_error(err, errlen,
		          "DCS backend %s was built for DCS ABI %lu.x, this pgkeel speaks %d.x; "
		          "rebuild the backend", path,
		          (unsigned long)PGKEEL_ABI_MAJOR_OF(d->abi_version), PGKEEL_DCS_ABI_MAJOR);
		return NULL;
	}
	if (d->struct_size < DESCRIPTOR_HEADER_SIZE) {
		set_error(err, errlen,
		          "DCS backend %s: descriptor struct_size %lu is smaller than its header "
		          "(%zu bytes); the backend is broken", path, (unsigned long)d->struct_size,
		          (size_t)DESCRIPTOR_HEADER_SIZE);
		return NULL;
	}
	if (d->name == NULL || strcmp(d->name, name) != 0) {
		set_error(err, errlen, "DCS backend %s calls itself '%s', expected '%s'", path,
		          d->name != NULL ? d->name : "(null)", name);
		return NULL;
	}

	/* The same backend loaded again (a reload): the same copy. */
	for (lb = loader_loaded; lb != NULL; lb = lb->next) {
		if (lb->orig == d && lb->desc.struct_size == d->struct_size)
			return lb;
	}
	lb = calloc(1, sizeof(*lb));
	if (lb == NULL) {
		set_error(err, errlen, "DCS backend %s: out of memory", path);
		return NULL;
	}
	lb->orig = d;
	n = d->struct_size < sizeof(lb->desc) ? d->struct_size : sizeof(lb->desc);
	memcpy(&lb->desc, d, n);
	if (!check_mandatory_ops(&lb->desc, path, err, errlen)) {
		free(lb);
		return NULL;
	}
	lb->next = loader_loaded;
	loader_loaded = lb;
	return lb;
}

bool pgkeel_dcs_load(const char *dir, const char *name, struct pgkeel_dcs_module *out,
                     char *err, size_t errlen)
{
	char fname[NAME_MAX + 1];
	char path[PATH_MAX];
	pgkeel_dcs_entry_fn entry;
	struct loaded_backend *lb = NULL;
	struct stat st;
	void *handle;
	void *sym;
	int dfd;
	int fd;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (out == NULL) {
		set_error(err, errlen, "no place to store the loaded DCS backend");
		return false;
	}
	if (!valid_backend_name(name)) {
		set_error(err, errlen,
		          "invalid DCS backend name '%s': only a-z, 0-9 and '_' are allowed",
		          name != NULL ? name : "(null)");
		return false;
	}
	if (dir == NULL || dir[0] == '\0') {
		set_error(err, errlen, "no backend directory given for the %s backend", name);
		return false;
	}
	if (!pgkeel_fmt(fname, sizeof(fname), "dcs_%s.so", name) ||
	    !pgkeel_fmt(path, sizeof(path), "%s%sdcs_%s.so", dir,
	                dir[strlen(dir) - 1] == '/' ? "" : "/", name)) {
		set_error(err, errlen, "path of the %s backend under %s is too long", name, dir);
		return false;
	}

	dfd = open_backend_dir(dir, err, errlen);
	if (dfd == -1)
		return false;
	fd = open_backend_file(dfd, fname, path, name, &st, err, errlen);
	close(dfd);
	if (fd == -1)
		return false;

	if (pthread_mutex_lock(&loader_mutex) != 0) {
		set_error(err, errlen, "DCS backend %s: cannot lock the loader", path);
		close(fd);
		return false;
	}
	handle = dlopen_fd(fd, &st, path, err, errlen);
	close(fd);
	if (handle == NULL)
		goto out;

	(void)dlerror();
	sym = dlsym(handle, PGKEEL_DCS_ENTRY_SYMBOL);
	if (sym == NULL) {
		set_error(err, errlen,
		          "DCS backend %s does not export %s (not a pgkeel DCS backend?)", path,
		          PGKEEL_DCS_ENTRY_SYMBOL);
		goto out;
	}
	_Static_assert(sizeof(entry) == sizeof(sym), "function and data pointers differ");
	memcpy(&entry, &sym, sizeof(entry));

	lb = check_descriptor(entry(), path, name, err, errlen);
	if (lb == NULL)
		goto out;

	out->plugin = &lb->desc;
	memcpy(out->path, path, strlen(path) + 1);
out:
	(void)pthread_mutex_unlock(&loader_mutex);
	/* Never dlclose(): RTLD_NODELETE keeps a failed object mapped anyway. */
	return lb != NULL;
}
