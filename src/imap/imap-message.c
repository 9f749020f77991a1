/* imap-message.c — opening a message for FETCH and SEARCH: its sealed
 * metadata part (ENVELOPE, BODYSTRUCTURE, header) or its whole body.
 *
 * Trust boundary: this is where sealed records become plaintext, in memory
 * only, with the session's opener (the account key unlocked at login).
 * Callers wipe what they get (buf_free wipes) and never write it anywhere
 * but the client's connection. A record that fails to open (modified,
 * truncated, not ours) is an error, never partial plaintext. */
#include "imap/imap-private.h"

#include "crypto/seal.h"

#include <event2/buffer.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

int imap_msg_meta(struct imap_session *s, const struct buf *sealed, struct buf *plain_r,
		  const char **error_r)
{
	uint8_t *plain;
	size_t len;

	buf_reset(plain_r);
	if (seal_blob_open(s->opener, sealed->data, sealed->len, &plain, &len, error_r) < 0)
		return -1;
	if (buf_append(plain_r, plain, len) < 0)
		log_fatal("out of memory");
	mem_wipe(plain, len);
	free(plain);
	return 0;
}

static int imap_msg_feed(void *ctx, const uint8_t *data, size_t len)
{
	const char *error;

	return seal_reader_write(ctx, data, len, &error);
}

/* ---- whole bodies, shared with the output buffer ------------------------- */

/* Body buffers of IMAP_PLAIN_CACHE_MIN bytes and more are mapped here and
 * go back to a small cache instead of being unmapped: on this kind of
 * machine (a virtual one) every first write to a 4 KiB page costs a fault
 * of about 14 us, and with 16 clients fetching, those faults took a third
 * of the server's CPU. Buffers of IMAP_PLAIN_HUGE and more are aligned for
 * transparent huge pages (one fault per 2 MiB where the kernel allows
 * them). The cache holds at most IMAP_PLAIN_CACHE_BYTES in
 * IMAP_PLAIN_CACHE_SLOTS buffers, none bigger than IMAP_PLAIN_CACHE_ONE.
 * Smaller buffers are left to malloc, which reuses small blocks well; they
 * are wiped before free(), since malloc hands freed memory to any caller.
 *
 * A mapped buffer is wiped when it leaves the process's use, not after
 * every message: what sat unused for IMAP_PLAIN_CACHE_IDLE_US is wiped and
 * given back to the kernel with MADV_FREE by imap_plain_cache_trim() (the
 * server's timer), which takes the pages when it needs memory; until then
 * the buffer is used again without a fault. In between, a cached buffer
 * holds the plaintext of the last message it carried (its DIRTY bytes),
 * and only the next body written into it, counted by length, ever leaves
 * it. Wiping every body as it was sent cost 5% of the server's CPU in a
 * full fetch. munmap() needs no wipe: the kernel zeroes pages before any
 * other use. The mappings are excluded from core dumps (MADV_DONTDUMP), as
 * libsodium does for keys. */
#define IMAP_PLAIN_CACHE_MIN     (64u << 10)
#define IMAP_PLAIN_HUGE          (2u << 20)
#define IMAP_PLAIN_CACHE_BYTES   (64u << 20)
#define IMAP_PLAIN_CACHE_ONE     (16u << 20)
#define IMAP_PLAIN_CACHE_SLOTS   64
#define IMAP_PLAIN_CACHE_IDLE_US (30 * 1000000)

struct imap_plain_slot {
	uint8_t *data;
	size_t cap;
	size_t dirty; /* leading bytes that may hold plaintext */
	int64_t since_us;
	int lazy; /* wiped and given back with MADV_FREE */
};

struct imap_plain_cache {
	pthread_mutex_t lock;
	size_t count, bytes;
	struct imap_plain_slot slots[IMAP_PLAIN_CACHE_SLOTS];
};

/* A buffer of at least NEED bytes, its size into *CAP_R; NULL when out of
 * memory. */
static uint8_t *imap_plain_alloc(size_t need, size_t *cap_r)
{
	size_t cap = IMAP_PLAIN_CACHE_MIN;
	uint8_t *raw, *d;

	if (need < IMAP_PLAIN_CACHE_MIN) {
		*cap_r = need;
		return malloc(need);
	}
	if (need > SIZE_MAX / 2 - IMAP_PLAIN_HUGE)
		return NULL;
	/* Powers of two below IMAP_PLAIN_HUGE (one buffer fits many
	 * messages), whole huge pages above. */
	while (cap < need && cap < IMAP_PLAIN_HUGE)
		cap *= 2;
	if (cap < need)
		cap = (need + IMAP_PLAIN_HUGE - 1) / IMAP_PLAIN_HUGE * IMAP_PLAIN_HUGE;
	if (cap < IMAP_PLAIN_HUGE) {
		d = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (d == MAP_FAILED)
			return NULL;
		(void)madvise(d, cap, MADV_DONTDUMP);
		*cap_r = cap;
		return d;
	}
	raw = mmap(NULL, cap + IMAP_PLAIN_HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		   -1, 0);
	if (raw == MAP_FAILED)
		return NULL;
	d = (uint8_t *)(((uintptr_t)raw + IMAP_PLAIN_HUGE - 1) & ~(uintptr_t)(IMAP_PLAIN_HUGE - 1));
	if (d > raw)
		munmap(raw, (size_t)(d - raw));
	munmap(d + cap, (size_t)(raw + IMAP_PLAIN_HUGE - d));
	(void)madvise(d, cap, MADV_HUGEPAGE); /* a hint: without it, 4 KiB pages */
	(void)madvise(d, cap, MADV_DONTDUMP);
	*cap_r = cap;
	return d;
}

/* Releases D, of which the first DIRTY bytes may hold plaintext. */
static void imap_plain_release(uint8_t *d, size_t cap, size_t dirty)
{
	if (cap < IMAP_PLAIN_CACHE_MIN) {
		if (d != NULL)
			mem_wipe(d, dirty);
		free(d);
	} else if (d != NULL) {
		munmap(d, cap);
	}
}

struct imap_plain_cache *imap_plain_cache_new(void)
{
	struct imap_plain_cache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

static void imap_plain_cache_drop(struct imap_plain_cache *c)
{
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->count; i++)
		imap_plain_release(c->slots[i].data, c->slots[i].cap, 0);
	c->count = c->bytes = 0;
	pthread_mutex_unlock(&c->lock);
}

void imap_plain_cache_trim(struct imap_plain_cache *c)
{
	int64_t older_than_us = time_now_us() - IMAP_PLAIN_CACHE_IDLE_US;
	size_t i = 0;

	pthread_mutex_lock(&c->lock);
	while (i < c->count) {
		struct imap_plain_slot *sl = &c->slots[i];

		if (sl->lazy || sl->since_us >= older_than_us) {
			i++;
			continue;
		}
		mem_wipe(sl->data, sl->dirty);
		sl->dirty = 0;
		if (madvise(sl->data, sl->cap, MADV_FREE) == 0) {
			sl->lazy = 1;
			i++;
		} else {
			imap_plain_release(sl->data, sl->cap, 0);
			c->bytes -= sl->cap;
			*sl = c->slots[--c->count];
		}
	}
	pthread_mutex_unlock(&c->lock);
}

void imap_plain_cache_free(struct imap_plain_cache **cp)
{
	struct imap_plain_cache *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	imap_plain_cache_drop(c);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* A buffer of at least NEED bytes into *CAP_R: the smallest cached one that
 * fits, else a new one. *DIRTY_R: how many of its leading bytes may hold an
 * earlier message. */
static uint8_t *imap_plain_cache_get(struct imap_plain_cache *c, size_t need, size_t *cap_r,
				     size_t *dirty_r)
{
	size_t best = SIZE_MAX;
	uint8_t *d = NULL;

	if (need >= IMAP_PLAIN_CACHE_MIN) {
		pthread_mutex_lock(&c->lock);
		for (size_t i = 0; i < c->count; i++)
			if (c->slots[i].cap >= need &&
			    (best == SIZE_MAX || c->slots[i].cap < c->slots[best].cap))
				best = i;
		if (best != SIZE_MAX) {
			d = c->slots[best].data;
			*cap_r = c->slots[best].cap;
			*dirty_r = c->slots[best].dirty;
			c->bytes -= c->slots[best].cap;
			c->slots[best] = c->slots[--c->count];
		}
		pthread_mutex_unlock(&c->lock);
	}
	if (d != NULL)
		return d;
	*dirty_r = 0;
	return imap_plain_alloc(need, cap_r);
}

/* Keeps D, whose first DIRTY bytes may hold plaintext, for the next
 * message, or releases it. */
static void imap_plain_cache_put(struct imap_plain_cache *c, uint8_t *d, size_t cap, size_t dirty)
{
	if (cap >= IMAP_PLAIN_CACHE_MIN && cap <= IMAP_PLAIN_CACHE_ONE) {
		pthread_mutex_lock(&c->lock);
		if (c->count < IMAP_PLAIN_CACHE_SLOTS && c->bytes + cap <= IMAP_PLAIN_CACHE_BYTES) {
			c->slots[c->count++] =
			    (struct imap_plain_slot){d, cap, dirty, time_now_us(), 0};
			c->bytes += cap;
			d = NULL;
		}
		pthread_mutex_unlock(&c->lock);
	}
	imap_plain_release(d, cap, dirty);
}

/* The bytes of P's buffer that may hold plaintext: this message's, the NUL
 * after it, and what an earlier message left beyond them. */
static size_t imap_plain_dirty(const struct imap_plain *p)
{
	return p->len + 1 > p->dirty ? p->len + 1 : p->dirty;
}

static int imap_plain_grow(struct imap_plain *p, size_t need)
{
	size_t cap, dirty;
	uint8_t *d;

	if (need > SIZE_MAX / 2)
		return -1;
	/* Not realloc(): a malloc'd block must be wiped before it is freed. */
	d = imap_plain_cache_get(p->cache, p->cap * 2 > need ? p->cap * 2 : need, &cap, &dirty);
	if (d == NULL)
		return -1;
	memcpy(d, p->data, p->len);
	imap_plain_cache_put(p->cache, p->data, p->cap, imap_plain_dirty(p));
	p->data = d;
	p->cap = cap;
	p->dirty = dirty;
	return 0;
}

/* Chunks are opened straight into the body's buffer (seal_reader_set_dest):
 * the sink only counts what arrived there. */
static uint8_t *imap_plain_dest(void *ctx, size_t n)
{
	struct imap_plain *p = ctx;

	if (n >= p->cap - p->len && imap_plain_grow(p, p->len + n + 1) < 0)
		return NULL;
	return p->data + p->len;
}

static int imap_plain_sink(void *ctx, const uint8_t *data, size_t len)
{
	struct imap_plain *p = ctx;

	if (data != p->data + p->len || len >= p->cap - p->len)
		return -1;
	p->len += len;
	p->data[p->len] = '\0';
	return 0;
}

void imap_plain_ref(struct imap_plain *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
}

void imap_plain_unref(struct imap_plain **pp)
{
	struct imap_plain *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	imap_plain_cache_put(p->cache, p->data, p->cap, imap_plain_dirty(p));
	free(p);
}

static void imap_plain_evbuffer_cleanup(const void *data, size_t len, void *extra)
{
	struct imap_plain *p = extra;

	imap_plain_unref(&p);
}

void imap_plain_add(struct evbuffer *ev, struct imap_plain *p, const uint8_t *data, size_t len)
{
	if (len == 0)
		return;
	imap_plain_ref(p);
	if (evbuffer_add_reference(ev, data, len, imap_plain_evbuffer_cleanup, p) < 0)
		log_fatal("out of memory");
}

int imap_msg_plain(struct imap_session *s, const struct imap_msg *m, struct seal_reader **reader,
		   struct imap_plain **p_r, const char **error_r)
{
	struct imap_plain *p = xcalloc(1, sizeof(*p));
	int ret = -1;

	atomic_init(&p->refs, 1);
	p->cache = s->server->plain_cache;
	p->data = imap_plain_cache_get(p->cache, (size_t)m->size + 1, &p->cap, &p->dirty);
	if (p->data == NULL)
		log_fatal("out of memory");
	p->data[0] = '\0';
	*p_r = NULL;
	if (*reader != NULL) {
		seal_reader_reset(*reader, imap_plain_sink, p);
	} else if (seal_reader_begin(s->opener, imap_plain_sink, p, reader) < 0) {
		*error_r = "cannot open the record";
		goto out;
	}
	seal_reader_set_dest(*reader, imap_plain_dest);
	if (s->store->backend->record_read(s->store, m->id, imap_msg_feed, *reader, error_r) < 0 ||
	    seal_reader_finish(*reader, error_r) < 0)
		goto out;
	ret = 0;
out:
	if (*reader != NULL)
		seal_reader_reset(*reader, NULL, NULL);
	if (ret < 0)
		imap_plain_unref(&p);
	*p_r = p;
	return ret;
}

struct imap_meta_scan {
	struct imap_session *s;
	const size_t *idx;
	size_t count, pos;
	int (*fn)(void *ctx, size_t index, const struct store_message *m);
	void *ctx;
};

static int imap_meta_scan_cb(void *ctx, const struct store_message *m)
{
	struct imap_meta_scan *c = ctx;
	const struct imap_view *v = c->s->view;

	while (c->pos < c->count && v->msgs[c->idx[c->pos]].uid < m->uid)
		c->pos++;
	if (c->pos >= c->count)
		return 1;
	if (v->msgs[c->idx[c->pos]].uid != m->uid)
		return 0;
	return c->fn(c->ctx, c->idx[c->pos++], m);
}

int imap_msg_scan_meta(struct imap_session *s, const size_t *idx, size_t count,
		       int (*fn)(void *ctx, size_t index, const struct store_message *m), void *ctx,
		       const char **error_r)
{
	struct imap_meta_scan c = {s, idx, count, 0, fn, ctx};
	const struct imap_view *v = s->view;

	if (count == 0)
		return 0;
	return s->store->backend->message_scan(s->store, v->id, v->msgs[idx[0]].uid,
					       v->msgs[idx[count - 1]].uid, 0, 1, imap_meta_scan_cb,
					       &c, error_r);
}
