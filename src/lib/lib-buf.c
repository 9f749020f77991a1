/* lib-buf.c — growable byte buffers that wipe themselves when freed.
 *
 * Trust boundary: none; a buffer may briefly hold plaintext mail, which is
 * why every release path wipes the old bytes. */
#include "lib/lib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mem_wipe(void *p, size_t len)
{
	if (p == NULL || len == 0)
		return;
	/* Not a volatile byte loop (one byte a cycle, a tenth of the cost of
	 * a FETCH of large bodies): explicit_bzero is memset that the
	 * compiler may not drop. */
	explicit_bzero(p, len);
}

void buf_init(struct buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->used = 0;
}

/* How many bytes of B's block may have been written. */
static size_t buf_used(const struct buf *b)
{
	size_t used = b->used > b->len + 1 ? b->used : b->len + 1;

	return used < b->cap ? used : b->cap;
}

int buf_reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	uint8_t *p;

	if (extra > SIZE_MAX - b->len - 1)
		return -1;
	need = b->len + extra + 1;
	if (need <= b->cap) {
		if (need > b->used)
			b->used = need;
		return 0;
	}
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	/* Not realloc(): the old block must be wiped before it is released. */
	p = malloc(cap);
	if (p == NULL)
		return -1;
	if (b->data != NULL) {
		memcpy(p, b->data, b->len);
		mem_wipe(b->data, buf_used(b));
		free(b->data);
	}
	b->data = p;
	b->cap = cap;
	b->used = need;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len > 0)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_append_str(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *buf_cstr(struct buf *b)
{
	if (b->data == NULL && buf_reserve(b, 0) < 0)
		return "";
	return (const char *)b->data;
}

void buf_reset(struct buf *b)
{
	if (b->data != NULL) {
		mem_wipe(b->data, buf_used(b));
		b->data[0] = '\0';
		b->used = 1;
	}
	b->len = 0;
}

void buf_free(struct buf *b)
{
	if (b->data != NULL) {
		mem_wipe(b->data, buf_used(b));
		free(b->data);
	}
	buf_init(b);
}
