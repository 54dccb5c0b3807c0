/*
 * The fake watchdog device's protocol, between fake_watchdog_preload.so (in
 * the supervised process) and the fake-watchdog server (the "hardware").
 *
 * The device path is a SOCK_SEQPACKET unix socket the server listens on.
 * The shim turns open() of that path (FAKEWD_DEVICE in the environment)
 * into a connection; the server answers every connection at once with a
 * fakewd_reply (err 0, or EBUSY while another descriptor is open), which
 * open() waits for.  The program's own write()s then travel as they are,
 * one message per write ('1' feeds, 'V' arms the magic close), close() is
 * the end of the connection, and each watchdog ioctl() is one fakewd_req
 * answered by one fakewd_reply.
 */
#ifndef PGKEEL_FAKE_WATCHDOG_H
#define PGKEEL_FAKE_WATCHDOG_H

#include <stdint.h>

#define FAKEWD_MAGIC      "FAKEWD1" /* 8 bytes with the NUL */
#define FAKEWD_ENV_DEVICE "FAKEWD_DEVICE"

struct fakewd_req {
	char magic[8];
	uint32_t request; /* the ioctl number (WDIOC_*) */
	int32_t value;    /* SETTIMEOUT's argument */
};

struct fakewd_reply {
	int32_t err; /* 0, or the errno the call fails with */
	int32_t value;
	uint32_t options; /* GETSUPPORT */
	uint32_t firmware_version;
	char identity[32];
};

#endif
