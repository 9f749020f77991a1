/* test-store.c — the store contract, run against every backend in
 * SEALMAIL_TEST_STORES (space separated URIs; default: a fresh fs: store in
 * a temporary folder). Stores hold opaque bytes here: sealing is tested in
 * test-seal.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdatomic.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "store/store.h"

#include <sqlite3.h>
#ifdef HAVE_RADOS
#include <rados/librados.h>
#endif

struct fixture {
	char dir[64];
	char uri[256]; /* of S: a second handle on it is another node */
	struct store *s;
	const struct store_backend *b;
	struct store_account acct;
	struct store_mailbox inbox;
};

static char *store_uri;

#ifdef HAVE_RADOS
/* The value of KEY ("pool=", ...) in the rados URI, into OUT; NULL if absent. */
static const char *uri_get(const char *uri, const char *key, char out[160])
{
	const char *p = strchr(uri, ':');

	while (p != NULL) {
		p++;
		if (strncmp(p, key, strlen(key)) == 0) {
			p += strlen(key);
			snprintf(out, 160, "%.*s", (int)strcspn(p, ","), p);
			return out;
		}
		p = strchr(p, ',');
	}
	return NULL;
}

/* The objects of the rados store URI's namespace whose name starts with
 * PREFIX ("" for all), counted by a client of its own. */
static int rados_objects(const char *uri, const char *prefix)
{
	char pool[160], conf[160], id[160], ns[160];
	rados_list_ctx_t list;
	rados_ioctx_t io;
	rados_t cl;
	const char *entry;
	int n = 0;

	assert_non_null(uri_get(uri, "pool=", pool));
	assert_non_null(uri_get(uri, "conf=", conf));
	assert_non_null(uri_get(uri, "id=", id));
	assert_non_null(uri_get(uri, "namespace=", ns));
	assert_int_equal(rados_create(&cl, id), 0);
	assert_int_equal(rados_conf_read_file(cl, conf), 0);
	assert_int_equal(rados_connect(cl), 0);
	assert_int_equal(rados_ioctx_create(cl, pool, &io), 0);
	rados_ioctx_set_namespace(io, ns);
	assert_int_equal(rados_nobjects_list_open(io, &list), 0);
	while (rados_nobjects_list_next(list, &entry, NULL, NULL) == 0)
		if (strncmp(entry, prefix, strlen(prefix)) == 0)
			n++;
	rados_nobjects_list_close(list);
	rados_ioctx_destroy(io);
	rados_shutdown(cl);
	return n;
}
#endif

/* Objects of F's store (rados: its namespace) whose name starts with PREFIX;
 * -1 when the backend has no such count (fs). */
static int store_objects(const struct fixture *f, const char *prefix)
{
#ifdef HAVE_RADOS
	if (strncmp(f->uri, "rados:", 6) == 0)
		return rados_objects(f->uri, prefix);
#endif
	(void)f;
	(void)prefix;
	return -1;
}

/* The files in F's records/ (fs: records past 1 MiB, one file each) whose
 * name is NAME, or all of them when NAME is NULL; -1 when F is not fs. The
 * size of the last one counted into *SIZE_R when not NULL. */
static int fs_record_files(const struct fixture *f, const char *name, off_t *size_r)
{
	char path[400];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int n = 0;

	if (f->dir[0] == '\0')
		return -1;
	snprintf(path, sizeof(path), "%s/records", f->dir);
	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' || (name != NULL && strcmp(de->d_name, name) != 0))
			continue;
		n++;
		if (size_r != NULL) {
			snprintf(path, sizeof(path), "%s/records/%s", f->dir, de->d_name);
			assert_int_equal(stat(path, &st), 0);
			*size_r = st.st_size;
		}
	}
	closedir(d);
	return n;
}

static int setup(void **state)
{
	static unsigned seq;
	struct fixture *f = calloc(1, sizeof(*f));
	const char *error = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/sealmail-store-XXXXXX");
	if (store_uri == NULL) {
		assert_non_null(mkdtemp(f->dir));
		snprintf(f->uri, sizeof(f->uri), "fs:%s", f->dir);
	} else if (strncmp(store_uri, "rados:", 6) == 0 &&
		   strstr(store_uri, "namespace=") == NULL) {
		/* A namespace of its own: teardown checks that nothing is left. */
		snprintf(f->uri, sizeof(f->uri), "%s,namespace=test-%d-%u-%ld", store_uri,
			 (int)getpid(), ++seq, (long)time(NULL));
		f->dir[0] = '\0';
	} else {
		snprintf(f->uri, sizeof(f->uri), "%s", store_uri);
		f->dir[0] = '\0';
	}
	if (store_open(f->uri, &f->s, &error) < 0)
		fail_msg("store_open(%s): %s", f->uri, error);
	f->b = store_backend_of(f->s);
	store_account_init(&f->acct);
	for (int i = 0; i < STORE_ADDR_HASH_BYTES; i++)
		f->acct.addr_hash[i] = (uint8_t)(rand() & 0xff);
	memset(f->acct.pk, 7, sizeof(f->acct.pk));
	assert_int_equal(buf_append(&f->acct.wrapped_password, "wp", 2), 0);
	assert_int_equal(buf_append(&f->acct.wrapped_recovery, "wr", 2), 0);
	assert_int_equal(f->b->account_create(f->s, &f->acct, &error), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_INBOX, NULL, &f->inbox, &error), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *error;

	assert_int_equal(f->b->account_delete(f->s, f->acct.id, &error), 0);
	store_close(&f->s);
	/* Deleting the account left no object behind (no leaked record). */
	if (store_objects(f, "") > 0)
		fail_msg("%d objects left in %s after the account was deleted",
			 store_objects(f, ""), f->uri);
	if (fs_record_files(f, NULL, NULL) > 0)
		fail_msg("%d record files left in %s after the account was deleted",
			 fs_record_files(f, NULL, NULL), f->dir);
	store_account_clear(&f->acct);
	store_mailbox_clear(&f->inbox);
	if (f->dir[0] != '\0')
		assert_int_equal(fs_remove_tree(f->dir), 0);
	free(f);
	return 0;
}

/* Commits DATA as a new message of MAILBOX_ID: 0 and *UID_R, or -1. */
static int put_to(struct fixture *f, uint64_t mailbox_id, const void *data, size_t len,
		  const char *meta, uint32_t *uid_r)
{
	struct store_record_writer *w = NULL;
	struct store_message m;
	const char *error = NULL;
	int r;

	assert_int_equal(f->b->record_begin(f->s, &w, &error), 0);
	/* In uneven pieces, as a sealing writer emits them. */
	for (size_t off = 0; off < len;) {
		size_t n = len - off < 7919 ? len - off : 7919;

		assert_int_equal(f->b->record_write(w, (const uint8_t *)data + off, n, &error), 0);
		off += n;
	}
	store_message_init(&m);
	m.mailbox_id = mailbox_id;
	m.internal_date = 1700000000;
	m.size = len;
	m.flags = STORE_FLAG_SEEN;
	assert_int_equal(buf_append_str(&m.meta, meta), 0);
	r = store_record_commit_wait(f->s, &w, &m, uid_r, &error);
	store_message_clear(&m);
	return r;
}

static uint32_t put(struct fixture *f, const void *data, size_t len, const char *meta)
{
	uint32_t uid = 0;

	if (put_to(f, f->inbox.id, data, len, meta, &uid) < 0)
		fail_msg("commit failed");
	return uid;
}

/* A second handle on F's store, as another node has: a copy of F with it. */
static void other_node(const struct fixture *f, struct fixture *o)
{
	const char *error = NULL;

	*o = *f;
	if (store_open(f->uri, &o->s, &error) < 0)
		fail_msg("store_open(%s): %s", f->uri, error);
}

struct collect {
	struct buf bytes;
	uint32_t uids[64];
	uint64_t ids[64];
	size_t n;
};

static int collect_bytes(void *ctx, const uint8_t *data, size_t len)
{
	struct collect *c = ctx;

	return buf_append(&c->bytes, data, len);
}

static int collect_msg(void *ctx, const struct store_message *m)
{
	struct collect *c = ctx;

	if (c->n < 64) {
		c->uids[c->n] = m->uid;
		c->ids[c->n] = m->id;
	}
	c->n++;
	return 0;
}

static void test_account_lookup(void **state)
{
	struct fixture *f = *state;
	struct store_account got;
	uint8_t other[STORE_ADDR_HASH_BYTES] = {0};
	const char *error;

	store_account_init(&got);
	assert_int_equal(f->b->account_get(f->s, f->acct.addr_hash, &got, &error), 1);
	assert_int_equal(got.id, f->acct.id);
	assert_memory_equal(got.pk, f->acct.pk, STORE_PK_BYTES);
	assert_int_equal(got.wrapped_password.len, 2);
	assert_int_equal(f->b->account_get(f->s, other, &got, &error), 0);
	/* A second account with the same hash is refused. */
	assert_int_equal(f->b->account_create(f->s, &f->acct, &error), -1);
	store_account_clear(&got);
}

static void test_mailboxes(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox *boxes = NULL, sent;
	struct buf name;
	size_t n = 0;
	const char *error;

	buf_init(&name);
	memset(&sent, 0, sizeof(sent));
	assert_int_equal(buf_append(&name, "sealed-name", 11), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_SENT, &name, &sent, &error), 0);
	assert_int_not_equal(sent.uidvalidity, f->inbox.uidvalidity);
	assert_int_equal(f->b->mailbox_list(f->s, f->acct.id, &boxes, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_int_equal(boxes[0].role, STORE_ROLE_INBOX);
	assert_int_equal(boxes[1].role, STORE_ROLE_SENT);
	assert_memory_equal(boxes[1].name_sealed.data, "sealed-name", 11);
	store_mailboxes_free(&boxes, n);
	store_mailbox_clear(&sent);
	buf_free(&name);
}

static void test_uids_and_bytes(void **state)
{
	static const size_t sizes[] = {0, 1, 1000, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 5};
	struct fixture *f = *state;
	const char *error;
	struct collect c;

	memset(&c, 0, sizeof(c));
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *data = malloc(sizes[i] + 1);

		for (size_t j = 0; j < sizes[i]; j++)
			data[j] = (uint8_t)(j * 31 + i);
		assert_int_equal(put(f, data, sizes[i], "meta"), i + 1);
		free(data);
	}
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 6);
	for (size_t i = 0; i < 6; i++) {
		struct collect bytes;

		assert_int_equal(c.uids[i], i + 1);
		memset(&bytes, 0, sizeof(bytes));
		buf_init(&bytes.bytes);
		assert_int_equal(f->b->record_read(f->s, c.ids[i], collect_bytes, &bytes, &error),
				 0);
		assert_int_equal(bytes.bytes.len, sizes[i]);
		for (size_t j = 0; j < sizes[i]; j++)
			if (bytes.bytes.data[j] != (uint8_t)(j * 31 + i))
				fail_msg("record %zu differs at byte %zu", i, j);
		buf_free(&bytes.bytes);
	}
	/* uid_min skips earlier messages. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 5, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.uids[0], 5);
}

struct writer_arg {
	struct fixture *f;
	int count;
	uint32_t uids[50];
};

static void *writer_main(void *p)
{
	struct writer_arg *a = p;

	for (int i = 0; i < a->count; i++)
		a->uids[i] = put(a->f, "concurrent", 10, "m");
	return NULL;
}

static void test_concurrent_commits_unique_uids(void **state)
{
	struct fixture *f = *state;
	struct writer_arg args[8];
	pthread_t th[8];
	uint8_t seen[8 * 50 + 1] = {0};

	for (int t = 0; t < 8; t++) {
		args[t].f = f;
		args[t].count = 50;
		assert_int_equal(pthread_create(&th[t], NULL, writer_main, &args[t]), 0);
	}
	for (int t = 0; t < 8; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 8; t++) {
		for (int i = 0; i < 50; i++) {
			uint32_t uid = args[t].uids[i];

			assert_true(uid >= 1 && uid <= 400);
			assert_int_equal(seen[uid], 0);
			seen[uid] = 1;
			if (i > 0)
				assert_true(uid > args[t].uids[i - 1]);
		}
	}
}

/* Record reads from several threads at once (FETCH reads on every pool
 * thread), from rows and from the record file alike, with reads that are
 * aborted half-way or ask for a missing message in between: each gets its
 * own bytes whole. */
#define READ_SIZES 4
static const size_t read_sizes[READ_SIZES] = {100, 40000, 300000, 0};

struct reader_arg {
	struct fixture *f;
	uint64_t ids[READ_SIZES];
	int bad;
};

static int abort_read(void *ctx, const uint8_t *data, size_t len)
{
	return -1;
}

static void *reader_main(void *p)
{
	struct reader_arg *a = p;
	const char *error;

	for (int round = 0; round < 40; round++) {
		for (size_t i = 0; i < READ_SIZES; i++) {
			struct collect c;

			memset(&c, 0, sizeof(c));
			buf_init(&c.bytes);
			if (a->f->b->record_read(a->f->s, a->ids[i], collect_bytes, &c, &error) <
				0 ||
			    c.bytes.len != read_sizes[i])
				a->bad++;
			for (size_t j = 0; j < c.bytes.len; j++)
				if (c.bytes.data[j] != (uint8_t)(j * 7 + i)) {
					a->bad++;
					break;
				}
			buf_free(&c.bytes);
		}
		if (a->f->b->record_read(a->f->s, a->ids[round % 3], abort_read, NULL, &error) !=
			-1 ||
		    a->f->b->record_read(a->f->s, UINT64_MAX / 2, collect_bytes, NULL, &error) !=
			-1)
			a->bad++;
	}
	return NULL;
}

static void test_concurrent_reads(void **state)
{
	struct fixture *f = *state;
	struct reader_arg args[4];
	pthread_t th[4];
	struct collect c;
	const char *error;

	for (size_t i = 0; i < READ_SIZES; i++) {
		uint8_t *data = malloc(read_sizes[i] + 1);

		for (size_t j = 0; j < read_sizes[i]; j++)
			data[j] = (uint8_t)(j * 7 + i);
		put(f, data, read_sizes[i], "m");
		free(data);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, READ_SIZES);
	for (int t = 0; t < 4; t++) {
		args[t].f = f;
		args[t].bad = 0;
		memcpy(args[t].ids, c.ids, sizeof(args[t].ids));
		assert_int_equal(pthread_create(&th[t], NULL, reader_main, &args[t]), 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].bad, 0);
	}
}

static void test_usage(void **state)
{
	struct fixture *f = *state;
	uint64_t msgs = 0, bytes = 0;
	const char *error;

	put(f, "abc", 3, "m");
	put(f, "defg", 4, "m");
	assert_int_equal(f->b->account_usage(f->s, f->acct.id, &msgs, &bytes, &error), 0);
	assert_int_equal(msgs, 2);
	assert_int_equal(bytes, 7);
}

static int collect_changed(void *ctx, const struct store_message *m)
{
	assert_true(m->modseq > 0);
	return collect_msg(ctx, m);
}

static int collect_meta(void *ctx, const struct store_message *m)
{
	struct collect *c = ctx;

	assert_int_equal(buf_append(&c->bytes, m->meta.data, m->meta.len), 0);
	return collect_msg(ctx, m);
}

/* The IMAP side: scans, flags with modseqs, expunge, copy, move, mailbox
 * update and delete. */
static void test_mail_ops(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box, sent;
	struct store_flag_update u;
	struct collect c;
	struct buf name;
	uint32_t uids[3] = {1, 2, 3}, dst[2];
	uint64_t modseq, msgs, bytes;
	const char *error;

	memset(&box, 0, sizeof(box));
	memset(&sent, 0, sizeof(sent));
	buf_init(&name);
	assert_int_equal(put(f, "one", 3, "m1"), 1);
	assert_int_equal(put(f, "two", 3, "m2"), 2);
	assert_int_equal(put(f, "three", 5, "m3"), 3);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_int_equal(box.messages, 3);
	assert_int_equal(box.uidnext, 4);
	modseq = box.highestmodseq;
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id + 1, f->inbox.id, &box, &error), 0);

	/* Index walk without metadata, then with. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    f->b->message_scan(f->s, f->inbox.id, 2, 3, 0, 0, collect_meta, &c, &error), 0);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.bytes.len, 0);
	buf_free(&c.bytes);
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    f->b->message_scan(f->s, f->inbox.id, 1, UINT32_MAX, 0, 1, collect_meta, &c, &error),
	    0);
	assert_int_equal(c.n, 3);
	assert_memory_equal(c.bytes.data, "m1m2m3", 6);
	buf_free(&c.bytes);

	/* Flags: two change, a repeat changes nothing. */
	memset(&u, 0, sizeof(u));
	u.uids = uids;
	u.count = 2;
	u.mode = STORE_FLAGS_ADD;
	u.flags = STORE_FLAG_FLAGGED;
	u.keywords = "$Label1";
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    f->b->message_set_flags(f->s, f->inbox.id, &u, collect_changed, &c, &error), 0);
	assert_int_equal(c.n, 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    f->b->message_set_flags(f->s, f->inbox.id, &u, collect_changed, &c, &error), 0);
	assert_int_equal(c.n, 0);
	/* CONDSTORE: only uid 3 is unchanged since MODSEQ. */
	u.count = 3;
	u.unchanged_since = modseq;
	u.mode = STORE_FLAGS_SET;
	u.flags = STORE_FLAG_SEEN | STORE_FLAG_ANSWERED;
	memset(&c, 0, sizeof(c));
	assert_int_equal(
	    f->b->message_set_flags(f->s, f->inbox.id, &u, collect_changed, &c, &error), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.uids[0], 3);
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_scan(f->s, f->inbox.id, 1, UINT32_MAX, modseq, 0,
					    collect_msg, &c, &error),
			 0);
	assert_int_equal(c.n, 3);

	/* Expunge uid 2; highestmodseq moves. */
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	modseq = box.highestmodseq;
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uids[1], 1, &error), 0);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_true(box.highestmodseq > modseq);
	assert_int_equal(box.messages, 2);

	/* Copy 1 and 3 (2 is gone) into Sent, then move 3. */
	assert_int_equal(buf_append(&name, "sent", 4), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_SENT, &name, &sent, &error), 0);
	uids[1] = 3;
	assert_int_equal(f->b->message_copy(f->s, f->inbox.id, uids, 2, sent.id, 0, dst, &error),
			 0);
	assert_int_equal(dst[0], 1);
	assert_int_equal(dst[1], 2);
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, sent.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 2);
	{
		struct collect rec;

		memset(&rec, 0, sizeof(rec));
		assert_int_equal(f->b->record_read(f->s, c.ids[1], collect_bytes, &rec, &error), 0);
		assert_int_equal(rec.bytes.len, 5);
		assert_memory_equal(rec.bytes.data, "three", 5);
		buf_free(&rec.bytes);
	}
	assert_int_equal(
	    f->b->message_copy(f->s, f->inbox.id, &uids[1], 1, sent.id, 1, dst, &error), 0);
	assert_int_equal(dst[0], 3);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_int_equal(box.messages, 1);
	assert_int_equal(f->b->account_usage(f->s, f->acct.id, &msgs, &bytes, &error), 0);
	assert_int_equal(msgs, 4);
	assert_int_equal(bytes, 3 + 3 + 5 + 5);

	/* Rename and unsubscribe, then delete Sent with its shared records. */
	buf_reset(&name);
	assert_int_equal(buf_append(&name, "renamed", 7), 0);
	assert_int_equal(f->b->mailbox_update(f->s, f->acct.id, sent.id, &name, 0, &error), 0);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, sent.id, &box, &error), 1);
	assert_int_equal(box.subscribed, 0);
	assert_int_equal(box.name_sealed.len, 7);
	assert_int_equal(f->b->mailbox_delete(f->s, f->acct.id, sent.id, &error), 0);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, sent.id, &box, &error), 0);
	/* The inbox's copy of the shared record survives. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 1);
	{
		struct collect rec;

		memset(&rec, 0, sizeof(rec));
		assert_int_equal(f->b->record_read(f->s, c.ids[0], collect_bytes, &rec, &error), 0);
		assert_memory_equal(rec.bytes.data, "one", 3);
		buf_free(&rec.bytes);
	}
	store_mailbox_clear(&box);
	store_mailbox_clear(&sent);
	buf_free(&name);
}

struct node_arg {
	struct fixture f; /* its own store handle: another node */
	uint32_t uids[25];
};

static void *node_main(void *p)
{
	struct node_arg *a = p;

	for (int i = 0; i < 25; i++)
		a->uids[i] = put(&a->f, "n", 1, "m");
	return NULL;
}

/* Writers through separate store handles (as separate nodes would be)
 * still get unique, increasing UIDs and lose nothing. */
static void test_two_handles_unique_uids(void **state)
{
	struct fixture *f = *state;
	struct node_arg args[4];
	pthread_t th[4];
	uint8_t seen[101] = {0};
	const char *error = NULL;
	struct collect c;

	for (int t = 0; t < 4; t++) {
		args[t].f = *f;
		if (t % 2 == 1 && store_open(f->uri, &args[t].f.s, &error) < 0)
			fail_msg("store_open(%s): %s", f->uri, error);
		assert_int_equal(pthread_create(&th[t], NULL, node_main, &args[t]), 0);
	}
	for (int t = 0; t < 4; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < 4; t++) {
		for (int i = 0; i < 25; i++) {
			uint32_t uid = args[t].uids[i];

			assert_true(uid >= 1 && uid <= 100);
			assert_int_equal(seen[uid], 0);
			seen[uid] = 1;
			if (i > 0)
				assert_true(uid > args[t].uids[i - 1]);
		}
		if (t % 2 == 1)
			store_close(&args[t].f.s);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 100);
}

struct collect_gone {
	uint32_t uids[16];
	uint64_t modseqs[16];
	size_t n;
};

static int collect_gone(void *ctx, uint32_t uid, uint64_t modseq)
{
	struct collect_gone *c = ctx;

	if (c->n < 16) {
		c->uids[c->n] = uid;
		c->modseqs[c->n] = modseq;
	}
	c->n++;
	return 0;
}

/* QRESYNC tombstones: an expunge and a move leave (uid, modseq), found by
 * modseq; deleting the mailbox drops them. */
static void test_expunged(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box, other;
	struct collect_gone g;
	struct buf name;
	const char *error = NULL;
	uint32_t uids[3], dst[1];
	uint64_t m0, m1;

	if (f->b->expunged_scan == NULL)
		skip();
	memset(&box, 0, sizeof(box));
	memset(&other, 0, sizeof(other));
	buf_init(&name);
	for (int i = 0; i < 3; i++)
		uids[i] = put(f, "x", 1, "m");
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	m0 = box.highestmodseq;
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uids[1], 1, &error), 0);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	m1 = box.highestmodseq;
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, f->inbox.id, m0, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.uids[0], uids[1]);
	assert_int_equal(g.modseqs[0], m1);
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, f->inbox.id, m1, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 0);
	/* Expunging what is gone already leaves no second tombstone. */
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uids[1], 1, &error), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, f->inbox.id, m1, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 0);

	/* A move leaves one too. */
	assert_int_equal(buf_append(&name, "other", 5), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_NONE, &name, &other, &error), 0);
	assert_int_equal(
	    f->b->message_copy(f->s, f->inbox.id, &uids[2], 1, other.id, 1, dst, &error), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, f->inbox.id, m0, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.uids[0], uids[1]);
	assert_int_equal(g.uids[1], uids[2]);
	assert_true(g.modseqs[1] > m1);

	/* Expunge in OTHER, then delete it: its tombstones go too. */
	assert_int_equal(f->b->message_expunge(f->s, other.id, dst, 1, &error), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, other.id, 0, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 1);
	assert_int_equal(f->b->mailbox_delete(f->s, f->acct.id, other.id, &error), 0);
	memset(&g, 0, sizeof(g));
	assert_int_equal(f->b->expunged_scan(f->s, other.id, 0, collect_gone, &g, &error), 0);
	assert_int_equal(g.n, 0);
	store_mailbox_clear(&box);
	store_mailbox_clear(&other);
	buf_free(&name);
}

/* An fs store of schema version 1 (before tombstones) opens and gains
 * the expunged table. */
static int fs_test_count(sqlite3 *db)
{
	sqlite3_stmt *st;
	int n;

	assert_int_equal(
	    sqlite3_prepare_v2(db, "SELECT messages FROM mailboxes WHERE id = 7", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	n = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return n;
}

static void test_fs_schema_upgrade(void **state)
{
	char dir[64], path[128], uri[96];
	struct store *s = NULL;
	const char *error = NULL;
	sqlite3 *db;
	sqlite3_stmt *st;

	if (store_uri != NULL)
		skip();
	snprintf(dir, sizeof(dir), "/tmp/sealmail-store-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof(uri), "fs:%s", dir);
	snprintf(path, sizeof(path), "%s/store.sqlite", dir);
	assert_int_equal(store_open(uri, &s, &error), 0);
	store_close(&s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* Back to version 1 as it was, with two messages in a mailbox. */
	assert_int_equal(
	    sqlite3_exec(
		db,
		"DROP TABLE expunged; DROP TABLE extents; DROP TABLE files; DROP TABLE wipes;"
		" DROP INDEX messages_modseq;"
		" DROP INDEX messages_view; DROP TRIGGER messages_added;"
		" DROP TRIGGER messages_removed; ALTER TABLE mailboxes DROP COLUMN messages;"
		" INSERT INTO mailboxes(id, account_id, role, uidvalidity, uidnext,"
		" highestmodseq) VALUES (7, 1, 1, 1, 3, 2);"
		" INSERT INTO messages(mailbox_id, uid, record_id, flags, modseq,"
		" internal_date, size, record_size, meta) VALUES"
		" (7, 1, 1, 0, 1, 0, 10, 20, x''), (7, 2, 2, 0, 2, 0, 10, 20, x'');"
		" PRAGMA user_version = 1;",
		NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	if (store_open(uri, &s, &error) < 0)
		fail_msg("reopen: %s", error);
	store_close(&s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	/* The count is computed once, then kept by the triggers. */
	assert_int_equal(fs_test_count(db), 2);
	assert_int_equal(
	    sqlite3_exec(db,
			 "INSERT INTO messages(mailbox_id, uid, record_id, flags, modseq,"
			 " internal_date, size, record_size, meta) VALUES"
			 " (7, 3, 3, 0, 3, 0, 10, 20, x'');"
			 " DELETE FROM messages WHERE mailbox_id = 7 AND uid < 3;",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	assert_int_equal(fs_test_count(db), 1);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM expunged", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 4);
	sqlite3_finalize(st);

	/* From version 2: the tables of record files and pending wipes are
	 * added; from version 3, the second. */
	assert_int_equal(sqlite3_exec(db,
				      "DROP TABLE files; DROP TABLE wipes;"
				      " PRAGMA user_version = 2;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	if (store_open(uri, &s, &error) < 0)
		fail_msg("reopen from version 2: %s", error);
	store_close(&s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM files; SELECT count(*) FROM wipes;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db, "DROP TABLE wipes; PRAGMA user_version = 3;", NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	if (store_open(uri, &s, &error) < 0)
		fail_msg("reopen from version 3: %s", error);
	store_close(&s);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM wipes", NULL, NULL, NULL),
			 SQLITE_OK);
	/* A newer version than this build knows is refused, not changed. */
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 5;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(uri, &s, &error), -1);
	assert_non_null(strstr(error, "unknown schema version 5"));
	assert_int_equal(fs_remove_tree(dir), 0);
}

/* ---- contention between nodes: two store handles, threads racing ---------- */

struct racer {
	struct fixture f; /* its own store handle, or the fixture's */
	uint64_t mailbox_id, dst_id;
	uint32_t first, last, step;
	uint32_t flag;
	const char *keyword;
	int ok, failed, changed;
	uint32_t moved[64];
	atomic_int *stop;
};

static void race(struct racer *r, size_t n, void *(*fn)(void *))
{
	pthread_t th[4];

	assert_true(n <= 4);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fn, &r[i]), 0);
	for (size_t i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void *deliver_main(void *p)
{
	struct racer *r = p;

	while (!atomic_load(r->stop)) {
		uint32_t uid;

		if (put_to(&r->f, r->mailbox_id, "late", 4, "m", &uid) == 0)
			r->ok++;
		else
			r->failed++;
	}
	return NULL;
}

/* A mailbox deleted through one node while another delivers into it: the
 * delete takes every message it races with (their records go too, none
 * leaks), and no delivery after it succeeds into the deleted mailbox. */
static void test_two_handles_delete_races_delivery(void **state)
{
	struct fixture *f = *state;
	struct racer r[3];
	atomic_int stop;
	const char *error = NULL;

	for (int round = 0; round < 6; round++) {
		struct store_mailbox box;
		int before;

		memset(&box, 0, sizeof(box));
		assert_int_equal(
		    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_NONE, NULL, &box, &error), 0);
		atomic_store(&stop, 0);
		for (int t = 0; t < 3; t++) {
			memset(&r[t], 0, sizeof(r[t]));
			other_node(f, &r[t].f);
			r[t].mailbox_id = box.id;
			r[t].stop = &stop;
		}
		{
			pthread_t th[3];

			for (int t = 0; t < 3; t++)
				assert_int_equal(pthread_create(&th[t], NULL, deliver_main, &r[t]),
						 0);
			/* Deliveries are under way when the delete starts. */
			while (r[0].ok + r[1].ok + r[2].ok < 6)
				usleep(1000);
			before = r[0].ok + r[1].ok + r[2].ok;
			if (f->b->mailbox_delete(f->s, f->acct.id, box.id, &error) < 0)
				fail_msg("mailbox_delete: %s", error);
			usleep(20000);
			atomic_store(&stop, 1);
			for (int t = 0; t < 3; t++)
				pthread_join(th[t], NULL);
		}
		assert_true(before >= 6);
		assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, box.id, &box, &error), 0);
		for (int t = 0; t < 3; t++)
			store_close(&r[t].f.s);
		/* Every record delivered into it went with it. */
		if (store_objects(f, "r.") > 0)
			fail_msg("round %d: %d records leaked by the delete", round,
				 store_objects(f, "r."));
		store_mailbox_clear(&box);
	}
	assert_true(store_objects(f, "b.") <= 1);
}

static int count_changed(void *ctx, const struct store_message *m)
{
	(*(int *)ctx)++;
	return 0;
}

static void *flags_main(void *p)
{
	struct racer *r = p;
	const char *error = NULL;

	for (uint32_t uid = r->first; uid <= r->last; uid += r->step) {
		struct store_flag_update u;

		memset(&u, 0, sizeof(u));
		u.uids = &uid;
		u.count = 1;
		u.mode = STORE_FLAGS_ADD;
		u.flags = r->flag;
		u.keywords = r->keyword;
		if (r->f.b->message_set_flags(r->f.s, r->mailbox_id, &u, count_changed, &r->changed,
					      &error) < 0)
			r->failed++;
	}
	return NULL;
}

struct flags_seen {
	uint32_t flags[64];
	char kw[64][32];
	size_t n;
};

static int collect_flags(void *ctx, const struct store_message *m)
{
	struct flags_seen *c = ctx;

	if (m->uid < 64) {
		c->flags[m->uid] = m->flags;
		snprintf(c->kw[m->uid], sizeof(c->kw[m->uid]), "%s",
			 m->keywords != NULL ? m->keywords : "");
	}
	c->n++;
	return 0;
}

/* Two nodes add different flags and keywords to the same messages at once:
 * every message ends with both, each change with a modseq of its own. */
static void test_two_handles_flags_race(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box;
	struct flags_seen seen;
	struct racer r[2];
	uint64_t modseq;
	const char *error = NULL;
	const uint32_t n = 40;

	memset(&box, 0, sizeof(box));
	for (uint32_t i = 0; i < n; i++)
		put(f, "f", 1, "m");
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	modseq = box.highestmodseq;
	memset(r, 0, sizeof(r));
	for (int t = 0; t < 2; t++) {
		other_node(f, &r[t].f);
		r[t].mailbox_id = f->inbox.id;
		r[t].first = 1;
		r[t].last = n;
		r[t].step = 1;
	}
	r[0].flag = STORE_FLAG_FLAGGED;
	r[0].keyword = "$NodeA";
	r[1].flag = STORE_FLAG_ANSWERED;
	r[1].keyword = "$NodeB";
	race(r, 2, flags_main);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(r[t].failed, 0);
		assert_int_equal(r[t].changed, n);
		store_close(&r[t].f.s);
	}
	memset(&seen, 0, sizeof(seen));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_flags, &seen, &error), 0);
	assert_int_equal(seen.n, n);
	for (uint32_t uid = 1; uid <= n; uid++) {
		if ((seen.flags[uid] & (STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED)) !=
			(STORE_FLAG_FLAGGED | STORE_FLAG_ANSWERED) ||
		    strstr(seen.kw[uid], "$NodeA") == NULL ||
		    strstr(seen.kw[uid], "$NodeB") == NULL)
			fail_msg("uid %u lost an update: flags %x keywords '%s'", uid,
				 seen.flags[uid], seen.kw[uid]);
	}
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_int_equal(box.highestmodseq, modseq + 2 * n);
	store_mailbox_clear(&box);
}

static void *expunge_main(void *p)
{
	struct racer *r = p;
	const char *error = NULL;

	for (uint32_t uid = r->first; uid <= r->last; uid += r->step) {
		if (r->f.b->message_expunge(r->f.s, r->mailbox_id, &uid, 1, &error) < 0)
			r->failed++;
		else
			r->ok++;
	}
	return NULL;
}

static void *expunge_or_flag_main(void *p)
{
	struct racer *r = p;

	return r->flag != 0 ? flags_main(p) : expunge_main(p);
}

/* Two nodes expunge the odd and the even messages while a third flags
 * them: nothing survives, every expunge leaves its tombstone, the counts
 * and the records follow. */
static void test_two_handles_expunge_race(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box;
	struct collect_gone g;
	struct collect c;
	struct racer r[3];
	uint64_t msgs = 1, bytes = 1;
	const char *error = NULL;
	const uint32_t n = 30;

	memset(&box, 0, sizeof(box));
	for (uint32_t i = 0; i < n; i++)
		put(f, "expunged", 8, "m");
	memset(r, 0, sizeof(r));
	for (int t = 0; t < 3; t++) {
		other_node(f, &r[t].f);
		r[t].mailbox_id = f->inbox.id;
		r[t].first = t == 1 ? 2 : 1;
		r[t].last = n;
		r[t].step = t == 2 ? 1 : 2;
	}
	r[2].flag = STORE_FLAG_FLAGGED;
	race(r, 3, expunge_or_flag_main);
	for (int t = 0; t < 3; t++) {
		assert_int_equal(r[t].failed, 0);
		store_close(&r[t].f.s);
	}
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 0);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_int_equal(box.messages, 0);
	assert_int_equal(f->b->account_usage(f->s, f->acct.id, &msgs, &bytes, &error), 0);
	assert_int_equal(msgs, 0);
	assert_int_equal(bytes, 0);
	if (f->b->expunged_scan != NULL) {
		memset(&g, 0, sizeof(g));
		assert_int_equal(
		    f->b->expunged_scan(f->s, f->inbox.id, 0, collect_gone, &g, &error), 0);
		assert_int_equal(g.n, n);
	}
	assert_true(store_objects(f, "r.") <= 0);
	store_mailbox_clear(&box);
}

static void *move_main(void *p)
{
	struct racer *r = p;
	const char *error = NULL;

	for (uint32_t uid = r->first; uid <= r->last; uid += r->step) {
		uint32_t dst = 0;

		if (r->f.b->message_copy(r->f.s, r->mailbox_id, &uid, 1, r->dst_id, r->flag, &dst,
					 &error) < 0)
			r->failed++;
		else if (dst != 0)
			r->moved[uid] = dst;
	}
	return NULL;
}

static int collect_record(void *ctx, const struct store_message *m)
{
	struct fixture *f = ((struct fixture **)ctx)[0];
	struct collect *c = ((struct collect **)ctx)[1];
	struct collect rec;
	const char *error = NULL;

	memset(&rec, 0, sizeof(rec));
	assert_int_equal(f->b->record_read(f->s, m->id, collect_bytes, &rec, &error), 0);
	assert_int_equal(rec.bytes.len, 3);
	assert_int_equal(buf_append(&c->bytes, rec.bytes.data, 3), 0);
	buf_free(&rec.bytes);
	return collect_msg(c, m);
}

/* Each message of the copies and moves of DST (uids and bytes). */
static void read_all(struct fixture *f, uint64_t mailbox_id, struct collect *c)
{
	void *ctx[2] = {f, c};
	const char *error = NULL;

	memset(c, 0, sizeof(*c));
	buf_init(&c->bytes);
	assert_int_equal(f->b->message_list(f->s, mailbox_id, 1, collect_record, ctx, &error), 0);
}

/* Two nodes copy the same messages into one mailbox at once (each copy
 * arrives, with its own UID, sharing the record), then both move the same
 * messages: each is moved exactly once. */
static void test_two_handles_copy_move_race(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox dst, moved;
	struct racer r[2];
	struct collect c;
	uint8_t seen[2 * 16 + 1] = {0};
	const char *error = NULL;
	const uint32_t n = 16;

	memset(&dst, 0, sizeof(dst));
	memset(&moved, 0, sizeof(moved));
	for (uint32_t i = 0; i < n; i++) {
		char data[4];

		snprintf(data, sizeof(data), "m%02u", i + 1);
		put(f, data, 3, "m");
	}
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_NONE, NULL, &dst, &error), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_NONE, NULL, &moved, &error), 0);
	memset(r, 0, sizeof(r));
	for (int t = 0; t < 2; t++) {
		other_node(f, &r[t].f);
		r[t].mailbox_id = f->inbox.id;
		r[t].dst_id = dst.id;
		r[t].first = 1;
		r[t].last = n;
		r[t].step = 1;
	}
	race(r, 2, move_main);
	read_all(f, dst.id, &c);
	assert_int_equal(c.n, 2 * n);
	for (size_t i = 0; i < c.n; i++) {
		assert_true(c.uids[i] >= 1 && c.uids[i] <= 2 * n);
		assert_int_equal(seen[c.uids[i]], 0);
		seen[c.uids[i]] = 1;
	}
	buf_free(&c.bytes);

	/* Both move every message of the inbox: each lands once. */
	for (int t = 0; t < 2; t++) {
		memset(r[t].moved, 0, sizeof(r[t].moved));
		r[t].dst_id = moved.id;
		r[t].flag = 1;
	}
	race(r, 2, move_main);
	for (uint32_t uid = 1; uid <= n; uid++)
		if ((r[0].moved[uid] != 0) == (r[1].moved[uid] != 0))
			fail_msg("uid %u moved %d times", uid,
				 (r[0].moved[uid] != 0) + (r[1].moved[uid] != 0));
	read_all(f, moved.id, &c);
	assert_int_equal(c.n, n);
	memset(seen, 0, sizeof(seen));
	for (uint32_t i = 0; i < n; i++) {
		/* "mNN": every message once. */
		uint32_t k = (uint32_t)(c.bytes.data[3 * i + 1] - '0') * 10 +
			     (uint32_t)(c.bytes.data[3 * i + 2] - '0');

		assert_true(k >= 1 && k <= n);
		assert_int_equal(seen[k], 0);
		seen[k] = 1;
	}
	buf_free(&c.bytes);
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 0);
	for (int t = 0; t < 2; t++) {
		assert_int_equal(r[t].failed, 0);
		store_close(&r[t].f.s);
	}
	/* The copies keep the records; deleting both mailboxes frees them. */
	assert_int_equal(f->b->mailbox_delete(f->s, f->acct.id, moved.id, &error), 0);
	read_all(f, dst.id, &c);
	assert_int_equal(c.n, 2 * n);
	buf_free(&c.bytes);
	assert_int_equal(f->b->mailbox_delete(f->s, f->acct.id, dst.id, &error), 0);
	assert_true(store_objects(f, "r.") <= 0);
	store_mailbox_clear(&dst);
	store_mailbox_clear(&moved);
}

/* ---- the rest of the vtable ------------------------------------------------- */

struct chunks {
	uint64_t len;
	size_t calls;
	int bad;
};

static int check_chunk(void *ctx, const uint8_t *data, size_t len)
{
	struct chunks *c = ctx;

	for (size_t i = 0; i < len; i++)
		if (data[i] != (uint8_t)((c->len + i) * 131 >> 3))
			c->bad = 1;
	c->len += len;
	c->calls++;
	return 0;
}

/* A record over several write flushes and read chunks (the rados backend
 * writes every 4 MiB and reads 4 MiB at a time), and a writer aborted after
 * it has flushed leaves nothing behind. */
static void test_large_record(void **state)
{
	static const size_t size = 9 * 1024 * 1024 + 3;
	struct fixture *f = *state;
	struct store_record_writer *w = NULL;
	struct chunks c = {0, 0, 0};
	const char *error = NULL;
	uint8_t *data = malloc(size);
	struct collect list;
	int records;

	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i * 131 >> 3);
	assert_int_equal(put(f, data, size, "big"), 1);
	memset(&list, 0, sizeof(list));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &list, &error), 0);
	assert_int_equal(list.n, 1);
	assert_int_equal(f->b->record_read(f->s, list.ids[0], check_chunk, &c, &error), 0);
	assert_int_equal(c.len, size);
	assert_int_equal(c.bad, 0);
	if (store_objects(f, "") >= 0)
		assert_true(c.calls >= 3);
	/* fs: written once, as a file of its own, of the record's size. */
	if (fs_record_files(f, NULL, NULL) >= 0) {
		off_t fsize = 0;

		assert_int_equal(fs_record_files(f, NULL, &fsize), 1);
		assert_int_equal(fsize, size);
	}

	records = store_objects(f, "r.");
	assert_int_equal(f->b->record_begin(f->s, &w, &error), 0);
	for (size_t off = 0; off < 5 * 1024 * 1024; off += 65536)
		assert_int_equal(f->b->record_write(w, data + off, 65536, &error), 0);
	/* Flushed: the record exists before its commit. */
	if (records >= 0)
		assert_int_equal(store_objects(f, "r."), records + 1);
	f->b->record_abort(&w);
	assert_null(w);
	assert_int_equal(store_objects(f, "r."), records);
	if (fs_record_files(f, NULL, NULL) >= 0) {
		uint32_t uid = 1;

		assert_int_equal(fs_record_files(f, NULL, NULL), 1);
		assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uid, 1, &error), 0);
		assert_int_equal(fs_record_files(f, NULL, NULL), 0);
	}
	free(data);
}

struct reader_race {
	struct fixture *f;
	uint64_t ids[12];
	size_t sizes[12];
	atomic_int stop;
	int reads, gone, bad;
	char error[200];
};

/* Reads every message again and again: each read gets the whole record,
 * exactly, or fails as gone; never zeros, part of it or another error. */
static void *reader_race_main(void *p)
{
	struct reader_race *rr = p;

	while (!atomic_load(&rr->stop)) {
		for (size_t i = 0; i < 12; i++) {
			struct chunks c = {0, 0, 0};
			const char *error = NULL;

			if (rr->f->b->record_read(rr->f->s, rr->ids[i], check_chunk, &c, &error) ==
			    0) {
				rr->reads++;
				if (c.bad || c.len != rr->sizes[i])
					rr->bad++;
			} else if (error == store_error_gone) {
				rr->gone++;
			} else if (rr->error[0] == '\0') {
				snprintf(rr->error, sizeof(rr->error), "%s", error);
			}
		}
	}
	return NULL;
}

/* Messages expunged while another thread reads them (records of every
 * kind: rows, records.dat, files of their own): no read sees a record
 * being wiped. */
static void test_reads_race_expunges(void **state)
{
	static const size_t kinds[] = {20000, 300 * 1024, 1536 * 1024};
	struct reader_race rr;
	struct fixture *f = *state;
	const char *error = NULL;
	struct collect list;
	uint8_t *data = malloc(2 * 1024 * 1024);
	pthread_t th;

	memset(&rr, 0, sizeof(rr));
	rr.f = f;
	for (size_t i = 0; i < 2 * 1024 * 1024; i++)
		data[i] = (uint8_t)(i * 131 >> 3);
	for (size_t i = 0; i < 12; i++) {
		rr.sizes[i] = kinds[i % 3] + i;
		put(f, data, rr.sizes[i], "r");
	}
	memset(&list, 0, sizeof(list));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &list, &error), 0);
	assert_int_equal(list.n, 12);
	memcpy(rr.ids, list.ids, sizeof(rr.ids));
	assert_int_equal(pthread_create(&th, NULL, reader_race_main, &rr), 0);
	for (uint32_t uid = 1; uid <= 12; uid++) {
		usleep(20000);
		assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uid, 1, &error), 0);
	}
	usleep(20000);
	atomic_store(&rr.stop, 1);
	pthread_join(th, NULL);
	free(data);
	if (rr.error[0] != '\0')
		fail_msg("a read failed: %s", rr.error);
	assert_int_equal(rr.bad, 0);
	assert_true(rr.reads > 12 && rr.gone >= 12);
}

/* fs: a file in records/ that no row names (a batch linked it and never
 * committed; a freed one whose removal failed) is removed when the store
 * is next opened, and anything else there is left alone; files shared by
 * copies stay until the last copy goes. */
static void test_fs_record_files(void **state)
{
	static const size_t sizes[] = {2 * 1024 * 1024, 3 * 1024 * 1024 + 1};
	struct fixture *f = *state;
	const char *error = NULL;
	struct collect list;
	char path[160];
	uint32_t uids[2], copied;
	FILE *fp;

	if (f->dir[0] == '\0')
		skip();
	for (size_t i = 0; i < 2; i++) {
		uint8_t *data = malloc(sizes[i]);

		memset(data, 'a' + (int)i, sizes[i]);
		uids[i] = put(f, data, sizes[i], "m");
		free(data);
	}
	assert_int_equal(fs_record_files(f, NULL, NULL), 2);
	store_close(&f->s);
	snprintf(path, sizeof(path), "%s/records/00000000000000ab", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fputs("ciphertext of a batch that never committed", fp);
	fclose(fp);
	snprintf(path, sizeof(path), "%s/records/notes.txt", f->dir);
	assert_non_null(fp = fopen(path, "w"));
	fclose(fp);
	if (store_open(f->uri, &f->s, &error) < 0)
		fail_msg("reopen: %s", error);
	assert_int_equal(fs_record_files(f, "00000000000000ab", NULL), 0);
	assert_int_equal(fs_record_files(f, "notes.txt", NULL), 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(fs_record_files(f, NULL, NULL), 2);

	/* Both still read back whole. */
	memset(&list, 0, sizeof(list));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &list, &error), 0);
	assert_int_equal(list.n, 2);
	for (size_t i = 0; i < 2; i++) {
		struct collect c;

		memset(&c, 0, sizeof(c));
		assert_int_equal(f->b->record_read(f->s, list.ids[i], collect_bytes, &c, &error),
				 0);
		assert_int_equal(c.bytes.len, sizes[i]);
		assert_int_equal(c.bytes.data[0], 'a' + (int)i);
		assert_int_equal(c.bytes.data[sizes[i] - 1], 'a' + (int)i);
		buf_free(&c.bytes);
	}

	/* A copy shares the record: the file goes with the last reference. */
	assert_int_equal(
	    f->b->message_copy(f->s, f->inbox.id, &uids[1], 1, f->inbox.id, 0, &copied, &error), 0);
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, uids, 2, &error), 0);
	assert_int_equal(fs_record_files(f, NULL, NULL), 1);
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &copied, 1, &error), 0);
	assert_int_equal(fs_record_files(f, NULL, NULL), 0);
}

/* How many of records.dat's LEN bytes at OFF are not zero. */
static size_t fs_data_nonzero(const struct fixture *f, uint64_t off, uint64_t len)
{
	char path[160];
	uint8_t *b = malloc(len);
	size_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/records.dat", f->dir);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(pread(fd, b, len, (off_t)off), (ssize_t)len);
	close(fd);
	for (size_t i = 0; i < len; i++)
		n += b[i] != 0;
	free(b);
	return n;
}

/* The integer SQL yields on F's store.sqlite, opened beside the store. */
static int64_t fs_sql_int(const struct fixture *f, const char *sql)
{
	char path[160];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t v;

	snprintf(path, sizeof(path), "%s/store.sqlite", f->dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* A record freed by a committed delete whose wipe never ran (a crash, a
 * failing disk) is wiped at the next open, and so is what a crash left
 * after the last record; records.dat keeps its size (an offset is never
 * given out twice). A wipe that ran leaves no row behind. */
static void test_fs_pending_wipes(void **state)
{
	struct fixture *f = *state;
	const char *error = NULL;
	uint8_t *data = malloc(40 * 1024), junk[5000];
	char path[160], sql[256];
	struct collect c;
	uint32_t uids[2];
	int64_t off, len, rec;
	struct stat stt;
	int fd;

	if (f->dir[0] == '\0')
		skip();
	for (int i = 0; i < 2; i++) {
		memset(data, 'k' + i, 40 * 1024);
		uids[i] = put(f, data, 40 * 1024, "m");
	}
	free(data);
	/* What the delete of the first commits; then no wipe (done beside the
	 * open handle, so that the next open is not alone). */
	snprintf(sql, sizeof(sql),
		 "SELECT e.%%s FROM messages m JOIN extents e ON e.record_id = m.record_id"
		 " WHERE m.mailbox_id = %llu AND m.uid = %u",
		 (unsigned long long)f->inbox.id, uids[0]);
	{
		char q[300];

		snprintf(q, sizeof(q), sql, "off");
		off = fs_sql_int(f, q);
		snprintf(q, sizeof(q), sql, "len");
		len = fs_sql_int(f, q);
		snprintf(q, sizeof(q), sql, "record_id");
		rec = fs_sql_int(f, q);
	}
	assert_true(len >= 40 * 1024);
	assert_int_equal(fs_data_nonzero(f, (uint64_t)off, (uint64_t)len), (size_t)len);
	snprintf(sql, sizeof(sql),
		 "DELETE FROM messages WHERE record_id = %lld;"
		 " DELETE FROM extents WHERE record_id = %lld; DELETE FROM records WHERE id = %lld;"
		 " INSERT INTO wipes(off, len) VALUES (%lld, %lld);",
		 (long long)rec, (long long)rec, (long long)rec, (long long)off, (long long)len);
	{
		sqlite3 *db;

		snprintf(path, sizeof(path), "%s/store.sqlite", f->dir);
		assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
		assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(db);
	}
	/* While another handle is open (its wiper may be at work), an open
	 * leaves the listed extent to it... */
	{
		struct fixture o = *f;

		if (store_open(f->uri, &o.s, &error) < 0)
			fail_msg("second open: %s", error);
		assert_int_equal(fs_data_nonzero(f, (uint64_t)off, (uint64_t)len), (size_t)len);
		assert_int_equal(fs_sql_int(f, "SELECT count(*) FROM wipes"), 1);
		store_close(&o.s);
		store_close(&f->s);
	}
	/* ...and the next one alone does it (below). And bytes of a batch
	 * that never committed, after the last record. */
	snprintf(path, sizeof(path), "%s/records.dat", f->dir);
	assert_true((fd = open(path, O_WRONLY | O_APPEND)) >= 0);
	memset(junk, 'j', sizeof(junk));
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	assert_int_equal(fstat(fd, &stt), 0);
	close(fd);

	if (store_open(f->uri, &f->s, &error) < 0)
		fail_msg("reopen: %s", error);
	assert_int_equal(fs_data_nonzero(f, (uint64_t)off, (uint64_t)len), 0);
	assert_int_equal(fs_data_nonzero(f, (uint64_t)stt.st_size - sizeof(junk), sizeof(junk)), 0);
	assert_int_equal(fs_sql_int(f, "SELECT count(*) FROM wipes"), 0);
	{
		struct stat now;

		assert_int_equal(stat(path, &now), 0);
		assert_int_equal(now.st_size, stt.st_size);
	}
	/* The other record is whole. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(f->b->message_list(f->s, f->inbox.id, 1, collect_msg, &c, &error), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(f->b->record_read(f->s, c.ids[0], collect_bytes, &c, &error), 0);
	assert_int_equal(c.bytes.len, 40 * 1024);
	assert_int_equal(c.bytes.data[0], 'l');
	assert_int_equal(c.bytes.data[40 * 1024 - 1], 'l');
	buf_free(&c.bytes);

	/* An expunge whose wipe runs: zeroed, and its row gone once closed. */
	snprintf(sql, sizeof(sql),
		 "SELECT e.off FROM messages m JOIN extents e ON e.record_id = m.record_id"
		 " WHERE m.mailbox_id = %llu AND m.uid = %u",
		 (unsigned long long)f->inbox.id, uids[1]);
	off = fs_sql_int(f, sql);
	assert_int_equal(f->b->message_expunge(f->s, f->inbox.id, &uids[1], 1, &error), 0);
	store_close(&f->s);
	assert_int_equal(fs_data_nonzero(f, (uint64_t)off, 40 * 1024), 0);
	assert_int_equal(fs_sql_int(f, "SELECT count(*) FROM wipes"), 0);
	if (store_open(f->uri, &f->s, &error) < 0)
		fail_msg("reopen: %s", error);
}

/* How many whole pages of PATH's LEN bytes at OFF are in the page cache. */
static size_t fs_cached_pages(const char *path, uint64_t off, uint64_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	uint64_t first = (off + (uint64_t)page - 1) / (uint64_t)page;
	uint64_t end = (off + len) / (uint64_t)page;
	unsigned char *vec;
	size_t n = 0;
	void *map;
	int fd;

	if (end <= first)
		return 0;
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	map = mmap(NULL, (size_t)((end - first) * (uint64_t)page), PROT_READ, MAP_SHARED, fd,
		   (off_t)(first * (uint64_t)page));
	assert_true(map != MAP_FAILED);
	vec = malloc((size_t)(end - first));
	assert_int_equal(mincore(map, (size_t)((end - first) * (uint64_t)page), vec), 0);
	for (uint64_t i = 0; i < end - first; i++)
		n += vec[i] & 1;
	free(vec);
	munmap(map, (size_t)((end - first) * (uint64_t)page));
	close(fd);
	return n;
}

/* A record leaves the page cache once it is durable, in records.dat and
 * in a file of its own (fs_cache_drop), and still reads back whole. */
static void test_fs_written_records_uncached(void **state)
{
	static const size_t sizes[] = {200 * 1024, 3 * 1024 * 1024};
	struct fixture *f = *state;
	const char *error = NULL;
	char path[400], sql[256], name[17];
	struct collect c;
	uint32_t uid;

	if (f->dir[0] == '\0')
		skip();
	/* tmpfs has no other copy to fall back on: it keeps every page. */
	{
		struct statfs sfs;

		assert_int_equal(statfs(f->dir, &sfs), 0);
		if (sfs.f_type == TMPFS_MAGIC)
			skip();
	}
	for (size_t i = 0; i < 2; i++) {
		uint8_t *data = malloc(sizes[i]);

		memset(data, 'p' + (int)i, sizes[i]);
		uid = put(f, data, sizes[i], "m");
		free(data);
		if (i == 0) {
			int64_t off, len;

			snprintf(sql, sizeof(sql),
				 "SELECT e.off FROM messages m JOIN extents e ON e.record_id ="
				 " m.record_id WHERE m.mailbox_id = %llu AND m.uid = %u",
				 (unsigned long long)f->inbox.id, uid);
			off = fs_sql_int(f, sql);
			snprintf(sql, sizeof(sql),
				 "SELECT e.len FROM messages m JOIN extents e ON e.record_id ="
				 " m.record_id WHERE m.mailbox_id = %llu AND m.uid = %u",
				 (unsigned long long)f->inbox.id, uid);
			len = fs_sql_int(f, sql);
			snprintf(path, sizeof(path), "%s/records.dat", f->dir);
			assert_int_equal(fs_cached_pages(path, (uint64_t)off, (uint64_t)len), 0);
		} else {
			snprintf(sql, sizeof(sql),
				 "SELECT f.name FROM messages m JOIN files f ON f.record_id ="
				 " m.record_id WHERE m.mailbox_id = %llu AND m.uid = %u",
				 (unsigned long long)f->inbox.id, uid);
			snprintf(name, sizeof(name), "%016llx",
				 (unsigned long long)fs_sql_int(f, sql));
			snprintf(path, sizeof(path), "%s/records/%s", f->dir, name);
			assert_true(sizes[i] / 4096 > 100);
			assert_int_equal(fs_cached_pages(path, 0, sizes[i]), 0);
		}
		memset(&c, 0, sizeof(c));
		assert_int_equal(
		    f->b->message_list(f->s, f->inbox.id, uid, collect_msg, &c, &error), 0);
		assert_int_equal(c.n, 1);
		assert_int_equal(f->b->record_read(f->s, c.ids[0], collect_bytes, &c, &error), 0);
		assert_int_equal(c.bytes.len, sizes[i]);
		assert_int_equal(c.bytes.data[sizes[i] - 1], 'p' + (int)i);
		buf_free(&c.bytes);
	}
}

struct heard {
	pthread_mutex_t lock;
	uint64_t account_id, mailbox_id;
	int calls;
};

static void heard_change(void *ctx, uint64_t account_id, uint64_t mailbox_id)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->account_id = account_id;
	h->mailbox_id = mailbox_id;
	h->calls++;
	pthread_mutex_unlock(&h->lock);
}

/* Calls seen within MS milliseconds (returns as soon as there is one). */
static int heard_wait(struct heard *h, int ms)
{
	int calls = 0;

	for (int i = 0; i < ms / 10 && calls == 0; i++) {
		usleep(10000);
		pthread_mutex_lock(&h->lock);
		calls = h->calls;
		pthread_mutex_unlock(&h->lock);
	}
	return calls;
}

/* A change posted by one node reaches the watcher on another within a
 * second; a node does not hear its own; after unwatch nothing arrives. */
static void test_change_watch(void **state)
{
	struct fixture *f = *state, o;
	struct store_watch *w = NULL;
	struct heard h = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
	const char *error = NULL;

	if (f->b->change_watch == NULL)
		skip();
	other_node(f, &o);
	assert_int_equal(f->b->change_watch(f->s, f->acct.id, heard_change, &h, &w, &error), 0);
	o.b->change_notify(o.s, f->acct.id, 4242);
	assert_int_equal(heard_wait(&h, 1000), 1);
	assert_int_equal(h.account_id, f->acct.id);
	assert_int_equal(h.mailbox_id, 4242);
	h.calls = 0;
	f->b->change_notify(f->s, f->acct.id, 77);
	assert_int_equal(heard_wait(&h, 300), 0);
	f->b->change_unwatch(f->s, &w);
	assert_null(w);
	o.b->change_notify(o.s, f->acct.id, 4243);
	assert_int_equal(heard_wait(&h, 300), 0);
	store_close(&o.s);
}

static void test_account_set_wrapped(void **state)
{
	struct fixture *f = *state;
	struct store_account got;
	struct buf wp, wr;
	const char *error = NULL;

	buf_init(&wp);
	buf_init(&wr);
	store_account_init(&got);
	assert_int_equal(buf_append(&wp, "new-password-wrap", 17), 0);
	assert_int_equal(buf_append(&wr, "new-recovery", 12), 0);
	assert_int_equal(f->b->account_set_wrapped(f->s, f->acct.id, &wp, &wr, &error), 0);
	assert_int_equal(f->b->account_get(f->s, f->acct.addr_hash, &got, &error), 1);
	assert_int_equal(got.wrapped_password.len, 17);
	assert_memory_equal(got.wrapped_password.data, "new-password-wrap", 17);
	assert_int_equal(got.wrapped_recovery.len, 12);
	assert_memory_equal(got.wrapped_recovery.data, "new-recovery", 12);
	assert_memory_equal(got.pk, f->acct.pk, STORE_PK_BYTES);
	/* No such account: an error, nothing created. */
	assert_int_equal(f->b->account_set_wrapped(f->s, f->acct.id ^ 0x5a5a, &wp, &wr, &error),
			 -1);
	store_account_clear(&got);
	buf_free(&wp);
	buf_free(&wr);
}

/* Moving an account in: a mailbox takes the UIDVALIDITY it had, and its
 * next UID and highest modseq are raised (never lowered), so a message
 * copied over keeps its UID. */
static void test_mailbox_set_uids(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox box;
	const char *error = NULL;

	memset(&box, 0, sizeof(box));
	assert_non_null(f->b->mailbox_set_uids);
	assert_int_equal(f->b->mailbox_set_uids(f->s, f->inbox.id, 12345, 100, 500, &error), 0);
	assert_int_equal(put(f, "moved", 5, "m"), 100);
	assert_int_equal(f->b->mailbox_set_uids(f->s, f->inbox.id, 12345, 50, 20, &error), 0);
	assert_int_equal(put(f, "next", 4, "m"), 101);
	assert_int_equal(f->b->mailbox_get(f->s, f->acct.id, f->inbox.id, &box, &error), 1);
	assert_int_equal(box.uidvalidity, 12345);
	assert_int_equal(box.uidnext, 102);
	assert_true(box.highestmodseq > 500);
	assert_int_equal(box.messages, 2);
	store_mailbox_clear(&box);
	assert_int_equal(f->b->mailbox_set_uids(f->s, 0x7ffffff0, 1, 1, 1, &error), -1);
}

static void test_mailbox_get_role(void **state)
{
	struct fixture *f = *state;
	struct store_mailbox sent, trash, got;
	const char *error = NULL;

	memset(&sent, 0, sizeof(sent));
	memset(&trash, 0, sizeof(trash));
	memset(&got, 0, sizeof(got));
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_SENT, NULL, &sent, &error), 0);
	assert_int_equal(
	    f->b->mailbox_create(f->s, f->acct.id, STORE_ROLE_TRASH, NULL, &trash, &error), 0);
	assert_int_equal(f->b->mailbox_get_role(f->s, f->acct.id, STORE_ROLE_INBOX, &got, &error),
			 1);
	assert_int_equal(got.id, f->inbox.id);
	assert_int_equal(got.role, STORE_ROLE_INBOX);
	assert_int_equal(f->b->mailbox_get_role(f->s, f->acct.id, STORE_ROLE_SENT, &got, &error),
			 1);
	assert_int_equal(got.id, sent.id);
	assert_int_equal(f->b->mailbox_get_role(f->s, f->acct.id, STORE_ROLE_TRASH, &got, &error),
			 1);
	assert_int_equal(got.id, trash.id);
	assert_int_equal(f->b->mailbox_get_role(f->s, f->acct.id, STORE_ROLE_DRAFTS, &got, &error),
			 0);
	/* Another account's roles are not ours. */
	assert_int_equal(
	    f->b->mailbox_get_role(f->s, f->acct.id + 1, STORE_ROLE_INBOX, &got, &error), 0);
	assert_int_equal(f->b->mailbox_delete(f->s, f->acct.id, sent.id, &error), 0);
	assert_int_equal(f->b->mailbox_get_role(f->s, f->acct.id, STORE_ROLE_SENT, &got, &error),
			 0);
	store_mailbox_clear(&sent);
	store_mailbox_clear(&trash);
	store_mailbox_clear(&got);
}

/* Every test but the fs upgrade runs on a fresh account with an INBOX. */
#define STORE_TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    STORE_TEST(test_account_lookup),
	    STORE_TEST(test_mailboxes),
	    STORE_TEST(test_uids_and_bytes),
	    STORE_TEST(test_concurrent_commits_unique_uids),
	    STORE_TEST(test_concurrent_reads),
	    STORE_TEST(test_usage),
	    STORE_TEST(test_mail_ops),
	    STORE_TEST(test_expunged),
	    cmocka_unit_test(test_fs_schema_upgrade),
	    STORE_TEST(test_fs_record_files),
	    STORE_TEST(test_fs_pending_wipes),
	    STORE_TEST(test_fs_written_records_uncached),
	    STORE_TEST(test_reads_race_expunges),
	    STORE_TEST(test_two_handles_unique_uids),
	    STORE_TEST(test_two_handles_delete_races_delivery),
	    STORE_TEST(test_two_handles_flags_race),
	    STORE_TEST(test_two_handles_expunge_race),
	    STORE_TEST(test_two_handles_copy_move_race),
	    STORE_TEST(test_large_record),
	    STORE_TEST(test_change_watch),
	    STORE_TEST(test_account_set_wrapped),
	    STORE_TEST(test_mailbox_get_role),
	    STORE_TEST(test_mailbox_set_uids),
	};
	const char *env = getenv("SEALMAIL_TEST_STORES");
	char *list, *tok, *save = NULL;
	int failed = 0;

	/* A store shared by several runs must not see the same account twice. */
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	if (env == NULL || env[0] == '\0')
		return cmocka_run_group_tests_name("store fs", tests, NULL, NULL);
	list = strdup(env);
	for (tok = strtok_r(list, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
		store_uri = strcmp(tok, "fs") == 0 ? NULL : tok;
		failed += cmocka_run_group_tests_name(tok, tests, NULL, NULL);
	}
	free(list);
	return failed;
}
