/*
 * fake_watchdog_preload.so: LD_PRELOAD it with FAKEWD_DEVICE=<socket path>
 * and the process sees a Linux watchdog device at that path, served by
 * tests/fakes/fake-watchdog (protocol: fake_watchdog.h).  open(), open64(),
 * openat() and their _2 variants of exactly that path connect to the
 * server; ioctl() on such a descriptor is a request to it; close() forgets
 * the descriptor.  Everything else goes to the C library untouched, so the
 * shim may be inherited by children.  write() needs no help: the socket
 * carries the bytes.
 */
#include "autoconf.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fake_watchdog.h"

#define MAX_FDS 4096
#define SHIM    __attribute__((visibility("default")))

typedef int (*open_fn)(const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*close_fn)(int);
typedef int (*ioctl_fn)(int, unsigned long, ...);

static char device[sizeof(((struct sockaddr_un *)0)->sun_path)];
static bool enabled;
static _Atomic bool fake_fd[MAX_FDS];

static void *next(const char *name)
{
	void *p = dlsym(RTLD_NEXT, name);

	if (p == NULL) {
		fprintf(stderr, "fake_watchdog_preload: no %s\n", name);
		abort();
	}
	return p;
}

/* The C library's function, looked up once (a race only looks it up twice). */
#define REAL(type, name)                                                                           \
	({                                                                                         \
		static type fn_;                                                                   \
		if (fn_ == NULL)                                                                   \
			fn_ = (type)next(name);                                                    \
		fn_;                                                                               \
	})

__attribute__((constructor)) static void shim_init(void)
{
	const char *d = getenv(FAKEWD_ENV_DEVICE);

	if (d != NULL && d[0] != '\0' && strlen(d) < sizeof(device)) {
		memcpy(device, d, strlen(d) + 1);
		enabled = true;
	}
}

static bool is_device(const char *path)
{
	return enabled && path != NULL && strcmp(path, device) == 0;
}

static bool is_fake(int fd)
{
	return fd >= 0 && fd < MAX_FDS && fake_fd[fd];
}

/* open() of the device: connect, wait for the server's answer. */
static int fake_open(int flags)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 5};
	struct fakewd_reply r;
	int fd, e;
	ssize_t n;

	fd = socket(AF_UNIX, SOCK_SEQPACKET | ((flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0), 0);
	if (fd == -1)
		return -1;
	if (fd >= MAX_FDS) {
		REAL(close_fn, "close")(fd);
		errno = EMFILE;
		return -1;
	}
	memcpy(sa.sun_path, device, strlen(device) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == -1)
		goto fail;
	n = recv(fd, &r, sizeof(r), 0);
	if (n != (ssize_t)sizeof(r)) {
		errno = n == -1 ? errno : EIO;
		goto fail;
	}
	if (r.err != 0) {
		errno = r.err;
		goto fail;
	}
	fake_fd[fd] = true;
	return fd;
fail:
	e = errno == ECONNREFUSED ? ENODEV : errno;
	REAL(close_fn, "close")(fd);
	errno = e;
	return -1;
}

static int fake_ioctl(int fd, unsigned long req, void *arg)
{
	struct fakewd_req q;
	struct fakewd_reply r;
	ssize_t n;

	if (req != WDIOC_GETSUPPORT && req != WDIOC_SETTIMEOUT && req != WDIOC_GETTIMEOUT &&
	    req != WDIOC_KEEPALIVE && req != WDIOC_GETTIMELEFT) {
		errno = ENOTTY;
		return -1;
	}
	memset(&q, 0, sizeof(q));
	memcpy(q.magic, FAKEWD_MAGIC, sizeof(q.magic));
	q.request = (uint32_t)req;
	if (req == WDIOC_SETTIMEOUT)
		q.value = *(int *)arg;
	if (send(fd, &q, sizeof(q), MSG_NOSIGNAL) != (ssize_t)sizeof(q))
		return -1;
	n = recv(fd, &r, sizeof(r), 0);
	if (n != (ssize_t)sizeof(r)) {
		errno = n == -1 ? errno : EIO;
		return -1;
	}
	if (r.err != 0) {
		errno = r.err;
		return -1;
	}
	if (req == WDIOC_GETSUPPORT) {
		struct watchdog_info *info = arg;

		memset(info, 0, sizeof(*info));
		info->options = r.options;
		info->firmware_version = r.firmware_version;
		memcpy(info->identity, r.identity, sizeof(info->identity));
	} else if (req != WDIOC_KEEPALIVE) {
		*(int *)arg = r.value;
	}
	return 0;
}

/* The mode open() takes with O_CREAT or O_TMPFILE, from its variadic arguments. */
#define MODE_ARG(flags, mode)                                                                      \
	do {                                                                                       \
		va_list ap_;                                                                       \
		va_start(ap_, flags);                                                              \
		mode = ((flags)&O_CREAT) || ((flags)&O_TMPFILE) == O_TMPFILE                       \
		           ? (mode_t)va_arg(ap_, int)                                              \
		           : 0;                                                                    \
		va_end(ap_);                                                                       \
	} while (0)

/* The *64 names are the same functions on a 64-bit C library: aliases. */
_Static_assert(sizeof(long) == 8, "the *64 aliases need a 64-bit C library");

SHIM int open(const char *path, int flags, ...)
{
	mode_t mode;

	if (is_device(path))
		return fake_open(flags);
	MODE_ARG(flags, mode);
	return REAL(open_fn, "open")(path, flags, mode);
}
SHIM int open64(const char *path, int flags, ...) __attribute__((alias("open")));

SHIM int __open_2(const char *path, int flags);
SHIM int __open_2(const char *path, int flags)
{
	if (is_device(path))
		return fake_open(flags);
	return REAL(open2_fn, "__open_2")(path, flags);
}
SHIM int __open64_2(const char *path, int flags) __attribute__((alias("__open_2")));

SHIM int openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	if (is_device(path) && path[0] == '/')
		return fake_open(flags);
	MODE_ARG(flags, mode);
	return REAL(openat_fn, "openat")(dirfd, path, flags, mode);
}
SHIM int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

SHIM int close(int fd)
{
	if (is_fake(fd))
		fake_fd[fd] = false;
	return REAL(close_fn, "close")(fd);
}

SHIM int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (is_fake(fd))
		return fake_ioctl(fd, req, arg);
	return REAL(ioctl_fn, "ioctl")(fd, req, arg);
}
