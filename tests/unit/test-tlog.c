/* test-tlog.c — unit tests for the transparency log's formats: RFC 6962 /
 * RFC 9162 hashing and proofs against published vectors, exhaustive proof
 * checks for small trees, speed on a large tree, signed-note vectors from
 * Go's sumdb/note, checkpoints and canonical JSON. The store is tested in
 * test-tlog-store.c.
 *
 * Trust boundary: test code; touches no files. */
#include "crypto/seal.h"
#include "tlog/tlog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef uint8_t hash_t[TLOG_HASH_BYTES];

static void unhex(const char *hex, uint8_t *out, size_t *len_r)
{
	size_t i, n = strlen(hex) / 2;

	for (i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
	if (len_r != NULL)
		*len_r = n;
}

static void assert_hash_hex(const uint8_t *h, const char *hex)
{
	uint8_t want[TLOG_HASH_BYTES];

	unhex(hex, want, NULL);
	assert_memory_equal(h, want, TLOG_HASH_BYTES);
}

/* Certificate Transparency's merkle test vectors (also RFC 6962 test data). */
static const char *const ct_leaves[] = {
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
};
static const char *const ct_roots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};
#define H_96A2  "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
#define H_5F08  "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
#define H_6B47  "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
#define H_BC1A  "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
#define H_CA85  "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
#define H_0EBC  "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
#define H_ROOT2 "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"
#define H_ROOT4 "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"

struct vector {
	uint64_t a, b; /* inclusion: index, size; consistency: old, new */
	const char *proof[4];
};

static const struct vector ct_inclusion[] = {
    {0, 8, {H_96A2, H_5F08, H_6B47}},
    {5, 8, {H_BC1A, H_CA85, H_ROOT4}},
    {2, 3, {H_ROOT2}},
    {6, 7, {H_0EBC, H_ROOT4}},
};

static const struct vector ct_consistency[] = {
    {1, 8, {H_96A2, H_5F08, H_6B47}},
    {2, 8, {H_5F08, H_6B47}},
    {6, 8, {H_0EBC, H_CA85, H_ROOT4}},
    {2, 5, {H_5F08, H_BC1A}},
    {4, 7, {"837dbb152e9b079010717e84e865da4ebc0fa198a806d59d31bf15accef22d0e"}},
};

static struct tlog_tree *ct_tree(void)
{
	struct tlog_tree *t = tlog_tree_new();
	uint8_t data[16], leaf[TLOG_HASH_BYTES];
	size_t i, len;

	for (i = 0; i < N_ELEMENTS(ct_leaves); i++) {
		unhex(ct_leaves[i], data, &len);
		tlog_leaf_hash(data, len, leaf);
		tlog_tree_append(t, leaf);
	}
	return t;
}

static void test_ct_roots(void **state)
{
	struct tlog_tree *t = ct_tree();
	uint8_t root[TLOG_HASH_BYTES];
	const char *error;
	uint64_t n;

	for (n = 0; n <= 8; n++) {
		assert_int_equal(tlog_tree_root(t, n, root, &error), 0);
		assert_hash_hex(root, ct_roots[n]);
	}
	assert_int_equal(tlog_tree_root(t, 9, root, &error), -1);
	tlog_tree_free(&t);
	assert_null(t);
}

static void check_vector_proof(const struct tlog_proof *p, const char *const *want)
{
	size_t i, n = 0;

	while (n < 4 && want[n] != NULL)
		n++;
	assert_int_equal(p->count, n);
	for (i = 0; i < n; i++)
		assert_hash_hex(p->hash[i], want[i]);
}

static void test_ct_proofs(void **state)
{
	struct tlog_tree *t = ct_tree();
	uint8_t r1[TLOG_HASH_BYTES], r2[TLOG_HASH_BYTES];
	struct tlog_proof p;
	const char *error;
	size_t i;

	for (i = 0; i < N_ELEMENTS(ct_inclusion); i++) {
		uint64_t idx = ct_inclusion[i].a, size = ct_inclusion[i].b;

		assert_int_equal(tlog_tree_prove_inclusion(t, idx, size, &p, &error), 0);
		check_vector_proof(&p, ct_inclusion[i].proof);
		assert_int_equal(tlog_tree_root(t, size, r1, &error), 0);
		assert_int_equal(tlog_verify_inclusion(tlog_tree_leaf(t, idx), idx, size, &p, r1),
				 0);
	}
	for (i = 0; i < N_ELEMENTS(ct_consistency); i++) {
		uint64_t m = ct_consistency[i].a, n = ct_consistency[i].b;

		assert_int_equal(tlog_tree_prove_consistency(t, m, n, &p, &error), 0);
		check_vector_proof(&p, ct_consistency[i].proof);
		assert_int_equal(tlog_tree_root(t, m, r1, &error), 0);
		assert_int_equal(tlog_tree_root(t, n, r2, &error), 0);
		assert_int_equal(tlog_verify_consistency(m, n, r1, r2, &p), 0);
	}
	assert_int_equal(tlog_tree_prove_inclusion(t, 8, 8, &p, &error), -1);
	assert_int_equal(tlog_tree_prove_inclusion(t, 0, 9, &p, &error), -1);
	assert_int_equal(tlog_tree_prove_consistency(t, 0, 8, &p, &error), -1);
	assert_int_equal(tlog_tree_prove_consistency(t, 5, 3, &p, &error), -1);
	assert_int_equal(tlog_tree_prove_consistency(t, 3, 9, &p, &error), -1);
	tlog_tree_free(&t);
}

/* RFC 9162 section 2.1.5: seven leaves d0..d6, nodes named a..l. */
static void test_rfc9162_example(void **state)
{
	hash_t leaf[7], g, h, i, k, l, hash0, hash, root;
	struct tlog_tree *t = tlog_tree_new();
	struct tlog_proof p;
	const char *error;
	char d[3] = "d0";
	int n;

	for (n = 0; n < 7; n++) {
		d[1] = (char)('0' + n);
		tlog_leaf_hash(d, 2, leaf[n]);
		tlog_tree_append(t, leaf[n]);
	}
	/* a..f, j are leaf[0..6] */
	tlog_node_hash(leaf[0], leaf[1], g);
	tlog_node_hash(leaf[2], leaf[3], h);
	tlog_node_hash(leaf[4], leaf[5], i);
	tlog_node_hash(g, h, k);
	tlog_node_hash(i, leaf[6], l);
	tlog_node_hash(k, l, hash);
	tlog_node_hash(g, leaf[2], hash0);
	assert_int_equal(tlog_tree_root(t, 7, root, &error), 0);
	assert_memory_equal(root, hash, TLOG_HASH_BYTES);

#define EXPECT(...)                                                                                \
	do {                                                                                       \
		const uint8_t *want_[] = {__VA_ARGS__};                                            \
		assert_int_equal(p.count, N_ELEMENTS(want_));                                      \
		for (size_t x_ = 0; x_ < N_ELEMENTS(want_); x_++)                                  \
			assert_memory_equal(p.hash[x_], want_[x_], TLOG_HASH_BYTES);               \
	} while (0)
	assert_int_equal(tlog_tree_prove_inclusion(t, 0, 7, &p, &error), 0);
	EXPECT(leaf[1], h, l);
	assert_int_equal(tlog_tree_prove_inclusion(t, 3, 7, &p, &error), 0);
	EXPECT(leaf[2], g, l);
	assert_int_equal(tlog_tree_prove_inclusion(t, 4, 7, &p, &error), 0);
	EXPECT(leaf[5], leaf[6], k);
	assert_int_equal(tlog_tree_prove_inclusion(t, 6, 7, &p, &error), 0);
	EXPECT(i, k);
	assert_int_equal(tlog_tree_prove_consistency(t, 3, 7, &p, &error), 0);
	EXPECT(leaf[2], leaf[3], g, l);
	assert_int_equal(tlog_verify_consistency(3, 7, hash0, hash, &p), 0);
	assert_int_equal(tlog_tree_prove_consistency(t, 4, 7, &p, &error), 0);
	EXPECT(l);
	assert_int_equal(tlog_verify_consistency(4, 7, k, hash, &p), 0);
	assert_int_equal(tlog_tree_prove_consistency(t, 6, 7, &p, &error), 0);
	EXPECT(i, leaf[6], k);
#undef EXPECT
	tlog_tree_free(&t);
}

/* A straightforward MTH over an array, as the RFC writes it. */
static void naive_root(const hash_t *leaves, uint64_t n, uint8_t out[TLOG_HASH_BYTES])
{
	uint8_t l[TLOG_HASH_BYTES], r[TLOG_HASH_BYTES];
	uint64_t k = 1;

	if (n == 0) {
		seal_sha256("", 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], TLOG_HASH_BYTES);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	naive_root(leaves, k, l);
	naive_root(leaves + k, n - k, r);
	tlog_node_hash(l, r, out);
}

#define SMALL_MAX 64

static void test_all_small_trees(void **state)
{
	static hash_t leaves[SMALL_MAX], roots[SMALL_MAX + 1];
	struct tlog_tree *t = tlog_tree_new();
	struct tlog_proof p, bad;
	uint64_t n, m, i;
	const char *error;
	size_t j;

	for (i = 0; i < SMALL_MAX; i++) {
		uint8_t data[2] = {(uint8_t)i, (uint8_t)(i * 7)};

		tlog_leaf_hash(data, sizeof(data), leaves[i]);
		tlog_tree_append(t, leaves[i]);
	}
	for (n = 0; n <= SMALL_MAX; n++) {
		uint8_t root[TLOG_HASH_BYTES];

		naive_root(leaves, n, roots[n]);
		assert_int_equal(tlog_tree_root(t, n, root, &error), 0);
		assert_memory_equal(root, roots[n], TLOG_HASH_BYTES);
	}
	for (n = 1; n <= SMALL_MAX; n++) {
		for (i = 0; i < n; i++) {
			assert_int_equal(tlog_tree_prove_inclusion(t, i, n, &p, &error), 0);
			assert_int_equal(tlog_verify_inclusion(leaves[i], i, n, &p, roots[n]), 0);
			/* Wrong leaf, index, root; every flipped bit; cut or padded. */
			assert_int_equal(
			    tlog_verify_inclusion(leaves[(i + 1) % SMALL_MAX], i, n, &p, roots[n]),
			    -1);
			if (i + 1 < n)
				assert_int_equal(
				    tlog_verify_inclusion(leaves[i], i + 1, n, &p, roots[n]), -1);
			if (i > 0)
				assert_int_equal(
				    tlog_verify_inclusion(leaves[i], i - 1, n, &p, roots[n]), -1);
			assert_int_equal(tlog_verify_inclusion(leaves[i], n, n, &p, roots[n]), -1);
			if (n < SMALL_MAX)
				assert_int_equal(
				    tlog_verify_inclusion(leaves[i], i, n + 1, &p, roots[n + 1]),
				    -1);
			for (j = 0; j < p.count; j++) {
				bad = p;
				bad.hash[j][j % TLOG_HASH_BYTES] ^= 0x01;
				assert_int_equal(
				    tlog_verify_inclusion(leaves[i], i, n, &bad, roots[n]), -1);
			}
			if (p.count > 0) {
				bad = p;
				bad.count--;
				assert_int_equal(
				    tlog_verify_inclusion(leaves[i], i, n, &bad, roots[n]), -1);
			}
			bad = p;
			memset(bad.hash[bad.count++], 0xab, TLOG_HASH_BYTES);
			assert_int_equal(tlog_verify_inclusion(leaves[i], i, n, &bad, roots[n]),
					 -1);
		}
		for (m = 1; m <= n; m++) {
			assert_int_equal(tlog_tree_prove_consistency(t, m, n, &p, &error), 0);
			assert_int_equal(tlog_verify_consistency(m, n, roots[m], roots[n], &p), 0);
			if (m == n) {
				assert_int_equal(p.count, 0);
				continue;
			}
			assert_int_equal(tlog_verify_consistency(m, n, roots[m - 1], roots[n], &p),
					 -1);
			assert_int_equal(tlog_verify_consistency(m, n, roots[m], roots[n - 1], &p),
					 -1);
			assert_int_equal(tlog_verify_consistency(n, m, roots[n], roots[m], &p), -1);
			for (j = 0; j < p.count; j++) {
				bad = p;
				bad.hash[j][31 - j % TLOG_HASH_BYTES] ^= 0x80;
				assert_int_equal(
				    tlog_verify_consistency(m, n, roots[m], roots[n], &bad), -1);
			}
			bad = p;
			bad.count--;
			assert_int_equal(tlog_verify_consistency(m, n, roots[m], roots[n], &bad),
					 -1);
			bad = p;
			memset(bad.hash[bad.count++], 0xcd, TLOG_HASH_BYTES);
			assert_int_equal(tlog_verify_consistency(m, n, roots[m], roots[n], &bad),
					 -1);
		}
		/* From the empty tree: an empty proof and the empty root. */
		p.count = 0;
		assert_int_equal(tlog_verify_consistency(0, n, roots[0], roots[n], &p), 0);
		assert_int_equal(tlog_verify_consistency(0, n, roots[1], roots[n], &p), -1);
		p.count = 1;
		assert_int_equal(tlog_verify_consistency(0, n, roots[0], roots[n], &p), -1);
		assert_int_equal(tlog_verify_consistency(n, n, roots[n], roots[n], &p), -1);
	}
	tlog_tree_free(&t);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* 100k leaves: roots and proofs must cost milliseconds, not a pass over the
 * leaves, and still agree with the naive recursion. */
static void test_large_tree(void **state)
{
	enum { N = 100000, PROOFS = 2000 };
	hash_t *leaves = xcalloc(N, sizeof(hash_t));
	uint8_t root[TLOG_HASH_BYTES], old_root[TLOG_HASH_BYTES], want[TLOG_HASH_BYTES];
	struct tlog_tree *t = tlog_tree_new();
	struct tlog_proof p;
	const char *error;
	double t0, elapsed;
	uint64_t i;

	for (i = 0; i < N; i++) {
		tlog_leaf_hash(&i, sizeof(i), leaves[i]);
		tlog_tree_append(t, leaves[i]);
	}
	naive_root(leaves, N, want);
	assert_int_equal(tlog_tree_root(t, N, root, &error), 0);
	assert_memory_equal(root, want, TLOG_HASH_BYTES);
	naive_root(leaves, 77777, want);
	assert_int_equal(tlog_tree_root(t, 77777, root, &error), 0);
	assert_memory_equal(root, want, TLOG_HASH_BYTES);

	t0 = now_ms();
	for (i = 0; i < PROOFS; i++) {
		uint64_t size = N - i * 37, idx = (i * 7919) % size, old = 1 + (i * 104729) % size;

		assert_int_equal(tlog_tree_root(t, size, root, &error), 0);
		assert_int_equal(tlog_tree_prove_inclusion(t, idx, size, &p, &error), 0);
		assert_int_equal(tlog_verify_inclusion(leaves[idx], idx, size, &p, root), 0);
		assert_int_equal(tlog_tree_root(t, old, old_root, &error), 0);
		assert_int_equal(tlog_tree_prove_consistency(t, old, size, &p, &error), 0);
		assert_int_equal(tlog_verify_consistency(old, size, old_root, root, &p), 0);
	}
	elapsed = now_ms() - t0;
	print_message("%d root+inclusion+consistency rounds on %d leaves: %.1f ms (%.3f ms each)\n",
		      PROOFS, N, elapsed, elapsed / PROOFS);
	assert_true(elapsed / PROOFS < 5.0);

	tlog_tree_truncate(t, 1000);
	naive_root(leaves, 1000, want);
	assert_int_equal(tlog_tree_root(t, 1000, root, &error), 0);
	assert_memory_equal(root, want, TLOG_HASH_BYTES);
	assert_int_equal(tlog_tree_root(t, 1001, root, &error), -1);
	tlog_tree_free(&t);
	free(leaves);
}

/* Go's golang.org/x/mod/sumdb/note example (note/example_test.go). */
static const char go_vkey[] = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
static const char go_skey_b64[] = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
static const char go_text[] = "If you think cryptography is the answer to your problem,\n"
			      "then you don't know what your problem is.\n";
static const char go_note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvq"
    "fqdngotpRZb6KE6RyyBwJnAM=\n";

static void test_note_go_vector(void **state)
{
	uint8_t pk[32], gpk[32], sk[64], *seed;
	size_t seed_len, text_len;
	const char *error;
	struct buf note;
	char *name, *vkey, *bad;

	assert_int_equal(tlog_note_parse_verifier(go_vkey, &name, pk, &error), 0);
	assert_string_equal(name, "PeterNeumann");
	assert_int_equal(tlog_note_key_id(name, pk), 0xc74f20a3);
	vkey = tlog_note_verifier_key(name, pk);
	assert_string_equal(vkey, go_vkey);
	free(vkey);

	assert_int_equal(tlog_note_open(go_note, strlen(go_note), name, pk, &text_len, &error), 0);
	assert_int_equal(text_len, strlen(go_text));
	bad = xstrdup(go_note);
	bad[3] ^= 0x20;
	assert_int_equal(tlog_note_open(bad, strlen(bad), name, pk, &text_len, &error), -1);
	free(bad);

	/* Same key from Go's private key string: signing gives Go's bytes. */
	assert_int_equal(seal_base64_decode(go_skey_b64, &seed, &seed_len), 0);
	assert_int_equal(seed_len, 33);
	assert_int_equal(seed[0], 0x01);
	assert_int_equal(crypto_sign_seed_keypair(gpk, sk, seed + 1), 0);
	assert_memory_equal(gpk, pk, 32);
	buf_init(&note);
	assert_int_equal(tlog_note_sign(go_text, strlen(go_text), name, sk, &note, &error), 0);
	assert_int_equal(note.len, strlen(go_note));
	assert_memory_equal(note.data, go_note, note.len);
	buf_free(&note);
	free(seed);
	free(name);

	assert_int_equal(tlog_note_parse_verifier("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfs"
						  "Vkmqq/LDE4izWy10TW",
						  &name, pk, &error),
			 -1);
	assert_int_equal(tlog_note_parse_verifier("PeterNeumann+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfs",
						  &name, pk, &error),
			 -1);
	assert_int_equal(tlog_note_parse_verifier("PeterNeumann", &name, pk, &error), -1);
}

static void test_note_roundtrip(void **state)
{
	uint8_t pk[32], sk[64], pk2[32], sk2[64], root[TLOG_HASH_BYTES], root2[TLOG_HASH_BYTES];
	const char *origin = "example.org/log", *error;
	struct buf text, note, other;
	uint64_t size;
	size_t text_len;
	char *bad;

	seal_sign_keypair(pk, sk);
	seal_sign_keypair(pk2, sk2);
	memset(root, 0x5a, sizeof(root));
	buf_init(&text);
	buf_init(&note);
	buf_init(&other);
	assert_int_equal(tlog_checkpoint_format(origin, 42, root, &text), 0);
	assert_int_equal(tlog_note_sign(text.data, text.len, origin, sk, &note, &error), 0);
	assert_int_equal(
	    tlog_checkpoint_open(note.data, note.len, origin, pk, &size, root2, &error), 0);
	assert_int_equal(size, 42);
	assert_memory_equal(root, root2, TLOG_HASH_BYTES);
	/* Another key can't open it; another origin can't either. */
	assert_int_equal(
	    tlog_checkpoint_open(note.data, note.len, origin, pk2, &size, root2, &error), -1);
	assert_int_equal(tlog_checkpoint_open(note.data, note.len, "example.org/other", pk, &size,
					      root2, &error),
			 -1);
	/* A cosignature by an unknown key (a witness) is ignored. */
	assert_int_equal(
	    tlog_note_sign(text.data, text.len, "witness.example", sk2, &other, &error), 0);
	assert_int_equal(buf_append(&note, strstr((char *)other.data, "\n\n") + 2,
				    other.len - (size_t)(strstr((char *)other.data, "\n\n") + 2 -
							 (char *)other.data)),
			 0);
	assert_int_equal(tlog_note_open(note.data, note.len, origin, pk, &text_len, &error), 0);
	assert_int_equal(text_len, text.len);
	assert_int_equal(
	    tlog_note_open(note.data, note.len, "witness.example", pk2, &text_len, &error), 0);
	/* Any change to the text or signature is rejected. */
	bad = xstrdup((char *)note.data);
	bad[text.len - 3] ^= 0x01;
	assert_int_equal(tlog_note_open(bad, strlen(bad), origin, pk, &text_len, &error), -1);
	free(bad);
	bad = xstrdup((char *)note.data);
	bad[text.len + 30] = bad[text.len + 30] == 'A' ? 'B' : 'A';
	assert_int_equal(tlog_note_open(bad, strlen(bad), origin, pk, &text_len, &error), -1);
	free(bad);
	/* Malformed: no blank line, no trailing newline, bad dash, control char. */
	assert_int_equal(tlog_note_open(text.data, text.len, origin, pk, &text_len, &error), -1);
	assert_int_equal(tlog_note_open(note.data, note.len - 1, origin, pk, &text_len, &error),
			 -1);
	bad = xstrdup((char *)note.data);
	bad[text.len + 1] = '-';
	assert_int_equal(tlog_note_open(bad, strlen(bad), origin, pk, &text_len, &error), -1);
	bad[text.len + 1] = '\xe2';
	bad[0] = '\x01';
	assert_int_equal(tlog_note_open(bad, strlen(bad), origin, pk, &text_len, &error), -1);
	free(bad);
	/* Text that a note cannot carry. */
	assert_int_equal(tlog_note_sign("a\n\nb\n", 5, origin, sk, &other, &error), -1);
	assert_int_equal(tlog_note_sign("no newline", 10, origin, sk, &other, &error), -1);
	assert_int_equal(tlog_note_sign("a\n", 2, "bad name", sk, &other, &error), -1);
	assert_int_equal(tlog_note_sign("a\n", 2, "bad+name", sk, &other, &error), -1);
	buf_free(&text);
	buf_free(&note);
	buf_free(&other);
}

static void test_checkpoint_parse(void **state)
{
	static const char root_b64[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
	static const struct {
		const char *text;
		int ok;
		uint64_t size;
	} cases[] = {
	    {"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 1, 0},
	    {"o\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 1,
	     UINT64_MAX},
	    {"o\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n", 1, 7},
	    {"o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0, 0},
	    {"o\n07\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0, 0},
	    {"o\n+7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0, 0},
	    {"o\n\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0, 0},
	    {"o\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n", 0, 0},
	    {"o\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS\n", 0, 0},
	    {"o\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 0, 0},
	    {"o\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", 0, 0},
	    {"p\n7\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0, 0},
	    {"o\n7\n", 0, 0},
	};
	uint8_t root[TLOG_HASH_BYTES], *want;
	const char *error;
	uint64_t size;
	size_t i, len;

	assert_int_equal(seal_base64_decode(root_b64, &want, &len), 0);
	for (i = 0; i < N_ELEMENTS(cases); i++) {
		int r = tlog_checkpoint_parse(cases[i].text, strlen(cases[i].text), "o", &size,
					      root, &error);

		if (r != (cases[i].ok ? 0 : -1))
			fail_msg("case %zu: %s", i, cases[i].ok ? error : "accepted");
		if (cases[i].ok) {
			assert_int_equal(size, cases[i].size);
			assert_memory_equal(root, want, TLOG_HASH_BYTES);
		}
	}
	free(want);
}

static void test_json(void **state)
{
	const char *fields[] = {"b", "2", "\xc3\xa4", "x", "a", "q\"\\\x01\n\x7f", "A", "", NULL};
	const char *dup[] = {"a", "1", "a", "2", NULL};
	const char *badutf[] = {"a", "\xc0\xaf", NULL};
	const char *bad[] = {
	    "",
	    "{",
	    "[]",
	    "{\"a\":1}",
	    "{\"a\":\"1\",\"a\":\"2\"}",
	    "{\"a\":\"1\"}x",
	    "{\"a\":\"\\u0000\"}",
	    "{\"a\":\"\\ud800\"}",
	    "{\"a\":\"\\x\"}",
	    "{\"a\":\"\x01\"}",
	    "{\"a\":\"1\",}",
	    "{\"a\"}",
	};
	const char *spaced = " { \"k\" : \"\\ud83d\\ude00\\/\\t\" } ", *error;
	struct buf out;
	char **f = NULL;
	size_t i;

	buf_init(&out);
	assert_int_equal(tlog_json_encode(fields, &out, &error), 0);
	assert_string_equal(buf_cstr(&out), "{\"A\":\"\",\"a\":\"q\\\"\\\\\\u0001\\u000a\x7f\","
					    "\"b\":\"2\",\"\xc3\xa4\":\"x\"}");
	assert_int_equal(tlog_json_decode(out.data, out.len, &f, &error), 0);
	assert_string_equal(tlog_json_field(f, "a"), "q\"\\\x01\n\x7f");
	assert_string_equal(tlog_json_field(f, "\xc3\xa4"), "x");
	assert_string_equal(tlog_json_field(f, "A"), "");
	assert_null(tlog_json_field(f, "c"));
	tlog_json_fields_free(&f);
	assert_null(f);
	buf_reset(&out);
	assert_int_equal(tlog_json_encode(dup, &out, &error), -1);
	buf_reset(&out);
	assert_int_equal(tlog_json_encode(badutf, &out, &error), -1);
	buf_free(&out);

	assert_int_equal(tlog_json_decode(spaced, strlen(spaced), &f, &error), 0);
	assert_string_equal(tlog_json_field(f, "k"), "\xf0\x9f\x98\x80/\t");
	tlog_json_fields_free(&f);
	assert_int_equal(tlog_json_decode("{}", 2, &f, &error), 0);
	assert_null(f[0]);
	tlog_json_fields_free(&f);
	for (i = 0; i < N_ELEMENTS(bad); i++) {
		if (tlog_json_decode(bad[i], strlen(bad[i]), &f, &error) == 0)
			fail_msg("accepted %s", bad[i]);
		assert_null(f);
	}
}

/* Documents around entries: numbers and lists of strings too; entries stay
 * strict. */
static void test_json_doc(void **state)
{
	static const struct {
		const char *json;
		const char *key, *value; /* NULL value: must be refused */
	} cases[] = {
	    {"{\"index\":17}", "index", "17"},
	    {"{\"index\":0}", "index", "0"},
	    {"{\"proof\":[\"YQ==\", \"Yg==\"]}", "proof", "YQ== Yg=="},
	    {"{\"proof\":[]}", "proof", ""},
	    {"{\"s\":\"a b\"}", "s", "a b"},
	    {"{\"index\":017}", "index", NULL},
	    {"{\"index\":-1}", "index", NULL},
	    {"{\"index\":123456789012345678901}", "index", NULL},
	    {"{\"proof\":[\"a b\"]}", "proof", NULL},
	    {"{\"proof\":[\"\"]}", "proof", NULL},
	    {"{\"proof\":[\"a\",]}", "proof", NULL},
	    {"{\"proof\":[1]}", "proof", NULL},
	    {"{\"proof\":[[\"a\"]]}", "proof", NULL},
	    {"{\"proof\":[\"a\"}", "proof", NULL},
	};
	const char *error;
	char **f = NULL;

	(void)state;
	for (size_t i = 0; i < N_ELEMENTS(cases); i++) {
		int r = tlog_json_decode_doc(cases[i].json, strlen(cases[i].json), &f, &error);

		if (cases[i].value == NULL) {
			if (r == 0)
				fail_msg("accepted %s", cases[i].json);
			continue;
		}
		if (r != 0)
			fail_msg("refused %s: %s", cases[i].json, error);
		assert_string_equal(tlog_json_field(f, cases[i].key), cases[i].value);
		tlog_json_fields_free(&f);
		/* An entry is strings only. */
		if (strchr(cases[i].json, '[') != NULL || strstr(cases[i].json, "\":\"") == NULL) {
			assert_int_not_equal(
			    tlog_json_decode(cases[i].json, strlen(cases[i].json), &f, &error), 0);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ct_roots),
	    cmocka_unit_test(test_ct_proofs),
	    cmocka_unit_test(test_rfc9162_example),
	    cmocka_unit_test(test_all_small_trees),
	    cmocka_unit_test(test_large_tree),
	    cmocka_unit_test(test_note_go_vector),
	    cmocka_unit_test(test_note_roundtrip),
	    cmocka_unit_test(test_checkpoint_parse),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_json_doc),
	};

	if (seal_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
