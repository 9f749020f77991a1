/* test-tlog-store.c — unit tests for the transparency log's SQLite store:
 * appends, entries, checkpoints and proofs through the public API, several
 * handles on one log, binding to origin and key, and tlog_verify() failing
 * after each kind of edit made directly to the database file.
 *
 * Trust boundary: test code; writes only below a mkdtemp() directory. */
#include "crypto/seal.h"
#include "tlog/tlog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fixture {
	char dir[64];
	char *logdir, *key, *db;
	struct tlog *log;
};

static const char *const origin = "example.org/log";

static int store_setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *error;
	uint64_t i, idx;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test-tlog.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->logdir = fs_path_join(fx->dir, "tlog");
	fx->key = fs_path_join(fx->dir, "keys/log.key");
	fx->db = fs_path_join(fx->logdir, TLOG_DB_NAME);
	assert_int_equal(tlog_keygen(fx->key, &error), 0);
	if (tlog_open(fx->logdir, origin, fx->key, &fx->log, &error) < 0)
		fail_msg("%s", error);
	for (i = 0; i < 10; i++) {
		char tag[16], n[16];
		const char *fields[] = {"account", tag, "n", n, NULL};

		snprintf(tag, sizeof(tag), "tag%llu", (unsigned long long)i);
		snprintf(n, sizeof(n), "%llu", (unsigned long long)i);
		if (tlog_append(fx->log, "test.event", fields, &idx, &error) < 0)
			fail_msg("%s", error);
		assert_int_equal(idx, i);
	}
	*state = fx;
	return 0;
}

static int store_teardown(void **state)
{
	struct fixture *fx = *state;

	tlog_close(&fx->log);
	assert_int_equal(fs_remove_tree(fx->dir), 0);
	free(fx->logdir);
	free(fx->key);
	free(fx->db);
	free(fx);
	return 0;
}

static void tamper(const struct fixture *fx, const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static void expect_verify_fails(const struct fixture *fx, const char *why)
{
	const char *error;

	assert_int_equal(tlog_verify(fx->log, &error), -1);
	print_message("%s -> %s\n", why, error);
}

static void test_store_basics(void **state)
{
	struct fixture *fx = *state;
	uint8_t leaf[TLOG_HASH_BYTES], root[TLOG_HASH_BYTES], old_root[TLOG_HASH_BYTES];
	uint8_t pk[32], r2[TLOG_HASH_BYTES];
	struct tlog *log2 = NULL;
	struct tlog_proof p;
	struct buf b;
	const char *error;
	char *vkey, *name, **f;
	uint64_t size, idx;
	struct stat st;

	assert_int_equal(tlog_size(fx->log), 10);
	assert_int_equal(tlog_verify(fx->log, &error), 0);
	assert_int_equal(stat(fx->key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tlog_keygen(fx->key, &error), -1);

	buf_init(&b);
	assert_int_equal(tlog_entry(fx->log, 3, &b, &error), 0);
	assert_int_equal(tlog_json_decode(b.data, b.len, &f, &error), 0);
	assert_string_equal(tlog_json_field(f, "account"), "tag3");
	assert_string_equal(tlog_json_field(f, "type"), "test.event");
	assert_int_equal(strlen(tlog_json_field(f, "time")), 20);
	tlog_json_fields_free(&f);
	assert_int_equal(tlog_entry(fx->log, 10, &b, &error), -1);

	vkey = tlog_verifier_key(fx->log);
	assert_int_equal(tlog_note_parse_verifier(vkey, &name, pk, &error), 0);
	assert_string_equal(name, origin);
	assert_int_equal(tlog_checkpoint(fx->log, &b, &error), 0);
	assert_int_equal(tlog_checkpoint_open(b.data, b.len, origin, pk, &size, root, &error), 0);
	assert_int_equal(size, 10);
	assert_int_equal(tlog_checkpoint_at(fx->log, 4, &b, &error), 0);
	assert_int_equal(tlog_checkpoint_open(b.data, b.len, origin, pk, &size, old_root, &error),
			 0);
	assert_int_equal(size, 4);
	assert_int_equal(tlog_checkpoint_at(fx->log, 11, &b, &error), -1);

	assert_int_equal(tlog_prove_inclusion(fx->log, 3, 10, leaf, r2, &p, &error), 0);
	assert_memory_equal(r2, root, TLOG_HASH_BYTES);
	assert_int_equal(tlog_entry(fx->log, 3, &b, &error), 0);
	tlog_leaf_hash(b.data, b.len, r2);
	assert_memory_equal(leaf, r2, TLOG_HASH_BYTES);
	assert_int_equal(tlog_verify_inclusion(leaf, 3, 10, &p, root), 0);
	assert_int_equal(tlog_prove_consistency(fx->log, 4, 10, r2, leaf, &p, &error), 0);
	assert_int_equal(tlog_verify_consistency(4, 10, old_root, root, &p), 0);
	assert_int_equal(tlog_prove_inclusion(fx->log, 10, 10, leaf, r2, &p, &error), -1);

	/* Reserved and malformed fields. */
	{
		const char *reserved[] = {"time", "x", NULL}, *odd[] = {"k", NULL};

		assert_int_equal(tlog_append(fx->log, "t", reserved, &idx, &error), -1);
		assert_int_equal(tlog_append(fx->log, "t", odd, &idx, &error), -1);
		assert_int_equal(tlog_append(fx->log, "", NULL, &idx, &error), -1);
	}

	/* A second handle (another process) sees appends and appends in turn. */
	assert_int_equal(tlog_open(fx->logdir, origin, fx->key, &log2, &error), 0);
	assert_int_equal(tlog_append(fx->log, "t", NULL, &idx, &error), 0);
	assert_int_equal(idx, 10);
	assert_int_equal(tlog_size(log2), 11);
	assert_int_equal(tlog_append(log2, "t", NULL, &idx, &error), 0);
	assert_int_equal(idx, 11);
	assert_int_equal(tlog_append(fx->log, "t", NULL, &idx, &error), 0);
	assert_int_equal(idx, 12);
	assert_int_equal(tlog_verify(log2, &error), 0);
	tlog_close(&log2);

	/* The log is bound to its origin and key. */
	assert_int_equal(tlog_open(fx->logdir, "example.org/other", fx->key, &log2, &error), -1);
	assert_int_equal(tlog_open(fx->logdir, "bad origin", fx->key, &log2, &error), -1);
	{
		char *key2 = fs_path_join(fx->dir, "keys/other.key");

		assert_int_equal(tlog_keygen(key2, &error), 0);
		assert_int_equal(tlog_open(fx->logdir, origin, key2, &log2, &error), -1);
		assert_int_equal(chmod(key2, 0644), 0);
		assert_int_equal(tlog_open(fx->dir, "x", key2, &log2, &error), -1);
		free(key2);
	}
	assert_null(log2);
	free(vkey);
	free(name);
	buf_free(&b);
}

static void test_tamper_edit_byte(void **state)
{
	tamper(*state, "UPDATE entries SET data = CAST(replace(CAST(data AS TEXT), 'tag3', 'tag4')"
		       " AS BLOB) WHERE idx = 3");
	expect_verify_fails(*state, "one byte edited");
}

static void test_tamper_edit_rehashed(void **state)
{
	struct fixture *fx = *state;
	struct tlog *log2 = NULL;
	uint8_t leaf[TLOG_HASH_BYTES];
	const char *json, *error;
	sqlite3_stmt *st;
	sqlite3 *db;
	uint64_t idx;

	json = "{\"account\":\"tag9\",\"n\":\"3\",\"time\":\"2000-01-01T00:00:00Z\","
	       "\"type\":\"test.event\"}";
	tlog_leaf_hash(json, strlen(json), leaf);
	assert_int_equal(sqlite3_open(fx->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "UPDATE entries SET data = ?1, leaf_hash = ?2 "
					    "WHERE idx = 3",
					    -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_blob(st, 1, json, (int)strlen(json), SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, leaf, sizeof(leaf), SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	expect_verify_fails(fx, "entry replaced with matching leaf hash");
	/* A process that reads the edited leaves refuses to extend the log. */
	assert_int_equal(tlog_open(fx->logdir, origin, fx->key, &log2, &error), 0);
	assert_int_equal(tlog_append(log2, "t", NULL, &idx, &error), -1);
	print_message("append refused: %s\n", error);
	tlog_close(&log2);
}

static void test_tamper_delete_middle(void **state)
{
	tamper(*state, "DELETE FROM entries WHERE idx = 4");
	expect_verify_fails(*state, "middle entry deleted");
}

static void test_tamper_truncate(void **state)
{
	tamper(*state, "DELETE FROM entries WHERE idx >= 8");
	expect_verify_fails(*state, "last entries deleted");
}

static void test_tamper_reorder(void **state)
{
	tamper(*state, "UPDATE entries SET idx = -1 WHERE idx = 2;"
		       "UPDATE entries SET idx = 2 WHERE idx = 5;"
		       "UPDATE entries SET idx = 5 WHERE idx = -1");
	expect_verify_fails(*state, "entries reordered");
}

static void test_tamper_insert(void **state)
{
	tamper(*state, "INSERT INTO entries (idx, data, leaf_hash) SELECT 10, data, leaf_hash "
		       "FROM entries WHERE idx = 9");
	expect_verify_fails(*state, "entry inserted");
}

static void test_tamper_checkpoint(void **state)
{
	tamper(*state, "UPDATE checkpoints SET note = CAST(replace(CAST(note AS TEXT), '\n7\n', "
		       "'\n8\n') AS BLOB) WHERE size = 7");
	expect_verify_fails(*state, "checkpoint edited");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_basics, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_edit_byte, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_edit_rehashed, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_delete_middle, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_truncate, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_reorder, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_insert, store_setup, store_teardown),
	    cmocka_unit_test_setup_teardown(test_tamper_checkpoint, store_setup, store_teardown),
	};

	if (seal_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
