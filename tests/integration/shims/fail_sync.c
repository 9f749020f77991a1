/* fail_sync.c — an LD_PRELOAD shim for the durability tests: while the file
 * named by $SEALMAIL_SYNC_FAIL_TRIGGER exists, fsync and fdatasync on files
 * whose path contains $SEALMAIL_SYNC_FAIL_PATH fail with EIO, as a disk that
 * loses the write cache would make them. Writes still succeed, so the bytes
 * reach the page cache but are never known to be on stable storage: a
 * server that acknowledges such a write breaks its durability promise.
 *
 * Every failed call is counted in $SEALMAIL_SYNC_FAIL_TRIGGER.count (one
 * byte appended per call), so a test can tell that the shim was reached.
 *
 * Build: cc -shared -fPIC -o fail_sync.so fail_sync.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int sync_fails(int fd)
{
	const char *path = getenv("SEALMAIL_SYNC_FAIL_PATH");
	const char *trigger = getenv("SEALMAIL_SYNC_FAIL_TRIGGER");
	char link[64], target[4096], count[4200];
	ssize_t n;
	int cfd;

	if (path == NULL || trigger == NULL || access(trigger, F_OK) != 0)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = 0;
	if (strstr(target, path) == NULL)
		return 0;
	snprintf(count, sizeof(count), "%s.count", trigger);
	cfd = open(count, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (cfd >= 0) {
		if (write(cfd, "x", 1) < 0) {
			/* only a counter */
		}
		close(cfd);
	}
	errno = EIO;
	return 1;
}

#define WRAP_SYNC(name)                                                                            \
	int name(int fd)                                                                           \
	{                                                                                          \
		static int (*real)(int);                                                           \
		if (real == NULL)                                                                  \
			real = (int (*)(int))dlsym(RTLD_NEXT, #name);                              \
		if (sync_fails(fd))                                                                \
			return -1;                                                                 \
		return real(fd);                                                                   \
	}

WRAP_SYNC(fsync)
WRAP_SYNC(fdatasync)
