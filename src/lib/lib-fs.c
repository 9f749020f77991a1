/* lib-fs.c — file helpers with durable, atomic writes.
 *
 * Trust boundary: paths come from the operator's config; contents written
 * here are keys, certificates and config, never plaintext mail. */
#include "lib/lib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdir_p(const char *dir, mode_t mode)
{
	char *copy = xstrdup(dir), *p;
	int ret = 0;

	for (p = copy + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(copy, mode) < 0 && errno != EEXIST)
			ret = -1;
		*p = '/';
		if (ret < 0)
			goto out;
	}
	if (mkdir(copy, mode) < 0 && errno != EEXIST)
		ret = -1;
out:
	free(copy);
	return ret;
}

int fs_fsync_parent(const char *path)
{
	char *copy = xstrdup(path);
	int fd, ret;

	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return -1;
	ret = fsync(fd);
	close(fd);
	return ret;
}

int fs_write_all(int fd, const void *data, size_t len)
{
	const uint8_t *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	size_t tlen = strlen(path) + 16;
	char *tmp = xmalloc(tlen);
	int fd, ret = -1;

	snprintf(tmp, tlen, "%s.tmp%d", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		goto out;
	if (fs_write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		unlink(tmp);
		goto out;
	}
	ret = fs_fsync_parent(path);
out:
	free(tmp);
	return ret;
}

int fs_read_fd(int fd, struct buf *b, size_t max)
{
	ssize_t n;

	for (;;) {
		if (buf_reserve(b, 65536) < 0)
			return -1;
		n = read(fd, b->data + b->len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > max)
			return -2;
	}
	return 0;
}

int fs_read_all(const char *path, uint8_t **data_r, size_t *len_r)
{
	struct buf b;
	int fd, ret;

	buf_init(&b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ret = fs_read_fd(fd, &b, 64 * 1024 * 1024);
	close(fd);
	if (ret < 0) {
		buf_free(&b);
		return -1;
	}
	buf_cstr(&b);
	*data_r = b.data;
	*len_r = b.len;
	return 0;
}

int fs_remove_tree(const char *path)
{
	struct stat st;
	DIR *dir;
	struct dirent *de;
	int ret = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	dir = opendir(path);
	if (dir == NULL)
		return -1;
	while ((de = readdir(dir)) != NULL) {
		char *child;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		child = fs_path_join(path, de->d_name);
		if (fs_remove_tree(child) < 0)
			ret = -1;
		free(child);
	}
	closedir(dir);
	if (rmdir(path) < 0)
		ret = -1;
	return ret;
}

char *fs_path_join(const char *base, const char *rel)
{
	size_t len;
	char *p;

	if (rel[0] == '/')
		return xstrdup(rel);
	len = strlen(base) + strlen(rel) + 2;
	p = xmalloc(len);
	snprintf(p, len, "%s/%s", base, rel);
	return p;
}
