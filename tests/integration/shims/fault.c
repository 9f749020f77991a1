/* fault.c — an LD_PRELOAD shim for the fault tests: while the file named by
 * $SEALMAIL_FAULT_TRIGGER exists, calls on files whose path contains
 * $SEALMAIL_FAULT_PATH fail with EIO, as a dying disk's would. SQLite and
 * the store reach these through the dynamic linker.
 *
 * $SEALMAIL_FAULT_OPS chooses what fails: "syncs" (fsync, fdatasync only:
 * writes reach the page cache but are never known to be on stable storage,
 * as on a disk that loses its write cache) or, by default, writes,
 * truncations and syncs alike. Every failed call appends one byte to
 * $SEALMAIL_FAULT_TRIGGER.count, so a test can tell the shim was reached.
 *
 * Build: cc -shared -fPIC -o fault.so fault.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int faulty(int fd, int is_sync)
{
	const char *path = getenv("SEALMAIL_FAULT_PATH");
	const char *trigger = getenv("SEALMAIL_FAULT_TRIGGER");
	const char *ops = getenv("SEALMAIL_FAULT_OPS");
	char link[64], target[4096], count[4200];
	ssize_t n;
	int cfd;

	if (path == NULL || trigger == NULL || access(trigger, F_OK) != 0)
		return 0;
	if (!is_sync && ops != NULL && strcmp(ops, "syncs") == 0)
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

#define WRAP(ret, name, params, args, fd, is_sync)                                                 \
	ret name params                                                                            \
	{                                                                                          \
		static ret(*real) params;                                                          \
		if (real == NULL)                                                                  \
			real = (ret(*) params)dlsym(RTLD_NEXT, #name);                             \
		if (faulty(fd, is_sync))                                                           \
			return -1;                                                                 \
		return real args;                                                                  \
	}

WRAP(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n), fd, 0)
WRAP(ssize_t, pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), fd, 0)
WRAP(ssize_t, pwrite64, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o), fd, 0)
WRAP(int, ftruncate, (int fd, off_t len), (fd, len), fd, 0)
WRAP(int, ftruncate64, (int fd, off_t len), (fd, len), fd, 0)
WRAP(int, fsync, (int fd), (fd), fd, 1)
WRAP(int, fdatasync, (int fd), (fd), fd, 1)
