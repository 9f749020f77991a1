/* tlog-merkle.c — RFC 6962 / RFC 9162 Merkle tree hashing, inclusion and
 * consistency proofs.
 *
 * Trust boundary: proof verification takes its inputs (proofs, sizes, roots)
 * from anyone and must reject every proof that does not hold; it never
 * indexes by an attacker-chosen value. Tree construction only sees leaf hashes
 * from our own database. */
#include "tlog/tlog.h"

#include "crypto/seal.h"

#include <stdlib.h>
#include <string.h>

#define TLOG_LEVELS 64

struct tlog_level {
	uint8_t (*hash)[TLOG_HASH_BYTES];
	uint64_t count;
	uint64_t cap;
};

/* level[k].hash[i] is the root of leaves [i * 2^k, (i + 1) * 2^k). */
struct tlog_tree {
	uint64_t size;
	struct tlog_level level[TLOG_LEVELS];
};

void tlog_leaf_hash(const void *data, size_t len, uint8_t out[TLOG_HASH_BYTES])
{
	static const uint8_t prefix = 0x00;
	struct seal_sha256_state st;

	seal_sha256_init(&st);
	seal_sha256_update(&st, &prefix, 1);
	seal_sha256_update(&st, data, len);
	seal_sha256_final(&st, out);
}

void tlog_node_hash(const uint8_t left[TLOG_HASH_BYTES], const uint8_t right[TLOG_HASH_BYTES],
		    uint8_t out[TLOG_HASH_BYTES])
{
	uint8_t in[1 + 2 * TLOG_HASH_BYTES];

	in[0] = 0x01;
	memcpy(in + 1, left, TLOG_HASH_BYTES);
	memcpy(in + 1 + TLOG_HASH_BYTES, right, TLOG_HASH_BYTES);
	seal_sha256(in, sizeof(in), out);
}

/* The largest power of two strictly less than N (N >= 2). */
static uint64_t split_point(uint64_t n)
{
	return (uint64_t)1 << (63 - __builtin_clzll(n - 1));
}

struct tlog_tree *tlog_tree_new(void)
{
	return xcalloc(1, sizeof(struct tlog_tree));
}

void tlog_tree_free(struct tlog_tree **t)
{
	unsigned k;

	if (*t == NULL)
		return;
	for (k = 0; k < TLOG_LEVELS; k++)
		free((*t)->level[k].hash);
	free(*t);
	*t = NULL;
}

uint64_t tlog_tree_size(const struct tlog_tree *t)
{
	return t->size;
}

static void level_push(struct tlog_level *l, const uint8_t hash[TLOG_HASH_BYTES])
{
	if (l->count == l->cap) {
		uint64_t cap = l->cap == 0 ? 64 : l->cap * 2;
		void *p = reallocarray(l->hash, cap, TLOG_HASH_BYTES);

		if (p == NULL)
			log_fatal("tlog: out of memory growing the tree to %llu hashes",
				  (unsigned long long)cap);
		l->hash = p;
		l->cap = cap;
	}
	memcpy(l->hash[l->count++], hash, TLOG_HASH_BYTES);
}

void tlog_tree_append(struct tlog_tree *t, const uint8_t leaf_hash[TLOG_HASH_BYTES])
{
	uint8_t h[TLOG_HASH_BYTES];
	unsigned k;

	level_push(&t->level[0], leaf_hash);
	t->size++;
	for (k = 1; k < TLOG_LEVELS && (t->size >> k) > t->level[k].count; k++) {
		const struct tlog_level *below = &t->level[k - 1];
		uint64_t j = t->level[k].count;

		tlog_node_hash(below->hash[2 * j], below->hash[2 * j + 1], h);
		level_push(&t->level[k], h);
	}
}

void tlog_tree_truncate(struct tlog_tree *t, uint64_t size)
{
	unsigned k;

	if (size > t->size)
		log_panic("tlog_tree_truncate: %llu > %llu", (unsigned long long)size,
			  (unsigned long long)t->size);
	for (k = 0; k < TLOG_LEVELS; k++)
		t->level[k].count = size >> k;
	t->size = size;
}

const uint8_t *tlog_tree_leaf(const struct tlog_tree *t, uint64_t index)
{
	if (index >= t->size)
		log_panic("tlog_tree_leaf: index %llu out of range", (unsigned long long)index);
	return t->level[0].hash[index];
}

/* MTH(D[lo:hi]) for a range that the RFC's recursive split produces: every
 * left child is a complete aligned subtree, found in O(1); only the right
 * spine is recomputed, so this costs O(log n) hashes. */
static void subtree_hash(const struct tlog_tree *t, uint64_t lo, uint64_t hi,
			 uint8_t out[TLOG_HASH_BYTES])
{
	uint64_t n = hi - lo, k;
	uint8_t left[TLOG_HASH_BYTES], right[TLOG_HASH_BYTES];

	if (n == 0) {
		seal_sha256("", 0, out);
		return;
	}
	if ((n & (n - 1)) == 0 && (lo & (n - 1)) == 0) {
		unsigned level = (unsigned)__builtin_ctzll(n);

		memcpy(out, t->level[level].hash[lo >> level], TLOG_HASH_BYTES);
		return;
	}
	k = split_point(n);
	subtree_hash(t, lo, lo + k, left);
	subtree_hash(t, lo + k, hi, right);
	tlog_node_hash(left, right, out);
}

int tlog_tree_root(const struct tlog_tree *t, uint64_t size, uint8_t out[TLOG_HASH_BYTES],
		   const char **error_r)
{
	if (size > t->size) {
		*error_r = str_tfmt("tree size %llu is beyond the log (%llu entries)",
				    (unsigned long long)size, (unsigned long long)t->size);
		return -1;
	}
	subtree_hash(t, 0, size, out);
	return 0;
}

static void proof_reverse(struct tlog_proof *p)
{
	uint8_t tmp[TLOG_HASH_BYTES];
	size_t i;

	for (i = 0; i < p->count / 2; i++) {
		memcpy(tmp, p->hash[i], TLOG_HASH_BYTES);
		memcpy(p->hash[i], p->hash[p->count - 1 - i], TLOG_HASH_BYTES);
		memcpy(p->hash[p->count - 1 - i], tmp, TLOG_HASH_BYTES);
	}
}

int tlog_tree_prove_inclusion(const struct tlog_tree *t, uint64_t index, uint64_t size,
			      struct tlog_proof *proof_r, const char **error_r)
{
	uint64_t lo = 0, hi = size, m = index;

	if (size > t->size || index >= size) {
		*error_r = str_tfmt("no entry %llu in a tree of size %llu (log has %llu)",
				    (unsigned long long)index, (unsigned long long)size,
				    (unsigned long long)t->size);
		return -1;
	}
	/* PATH(m, D[lo:hi]) unrolled top-down; the RFC lists it bottom-up. */
	proof_r->count = 0;
	while (hi - lo > 1) {
		uint64_t k = split_point(hi - lo);

		if (m < k) {
			subtree_hash(t, lo + k, hi, proof_r->hash[proof_r->count++]);
			hi = lo + k;
		} else {
			subtree_hash(t, lo, lo + k, proof_r->hash[proof_r->count++]);
			lo += k;
			m -= k;
		}
	}
	proof_reverse(proof_r);
	return 0;
}

int tlog_tree_prove_consistency(const struct tlog_tree *t, uint64_t old_size, uint64_t new_size,
				struct tlog_proof *proof_r, const char **error_r)
{
	uint64_t lo = 0, hi = new_size, m = old_size;
	int complete = 1;

	if (old_size == 0 || old_size > new_size || new_size > t->size) {
		*error_r = str_tfmt("no consistency proof from size %llu to %llu (log has %llu)",
				    (unsigned long long)old_size, (unsigned long long)new_size,
				    (unsigned long long)t->size);
		return -1;
	}
	proof_r->count = 0;
	if (old_size == new_size)
		return 0;
	/* SUBPROOF(m, D[lo:hi], b) unrolled top-down, then reversed. */
	while (m != hi - lo) {
		uint64_t k = split_point(hi - lo);

		if (m <= k) {
			subtree_hash(t, lo + k, hi, proof_r->hash[proof_r->count++]);
			hi = lo + k;
		} else {
			subtree_hash(t, lo, lo + k, proof_r->hash[proof_r->count++]);
			lo += k;
			m -= k;
			complete = 0;
		}
	}
	if (!complete)
		subtree_hash(t, lo, hi, proof_r->hash[proof_r->count++]);
	proof_reverse(proof_r);
	return 0;
}

int tlog_verify_inclusion(const uint8_t leaf[TLOG_HASH_BYTES], uint64_t index, uint64_t size,
			  const struct tlog_proof *proof, const uint8_t root[TLOG_HASH_BYTES])
{
	uint8_t r[TLOG_HASH_BYTES];
	uint64_t fn = index, sn;
	size_t i;

	if (index >= size || proof->count > TLOG_PROOF_MAX)
		return -1;
	sn = size - 1;
	memcpy(r, leaf, TLOG_HASH_BYTES);
	for (i = 0; i < proof->count; i++) {
		if (sn == 0)
			return -1;
		if ((fn & 1) != 0 || fn == sn) {
			tlog_node_hash(proof->hash[i], r, r);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			tlog_node_hash(r, proof->hash[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, TLOG_HASH_BYTES) == 0 ? 0 : -1;
}

int tlog_verify_consistency(uint64_t old_size, uint64_t new_size,
			    const uint8_t old_root[TLOG_HASH_BYTES],
			    const uint8_t new_root[TLOG_HASH_BYTES], const struct tlog_proof *proof)
{
	uint8_t fr[TLOG_HASH_BYTES], sr[TLOG_HASH_BYTES];
	uint64_t fn, sn;
	size_t i, start;

	if (old_size > new_size || proof->count > TLOG_PROOF_MAX)
		return -1;
	if (old_size == new_size) {
		return proof->count == 0 && memcmp(old_root, new_root, TLOG_HASH_BYTES) == 0 ? 0
											     : -1;
	}
	if (old_size == 0) {
		uint8_t empty[TLOG_HASH_BYTES];

		seal_sha256("", 0, empty);
		return proof->count == 0 && memcmp(old_root, empty, TLOG_HASH_BYTES) == 0 ? 0 : -1;
	}
	if (proof->count == 0)
		return -1;
	/* When the old size is a power of two, the old root is the implicit
	 * first element of the path. */
	if ((old_size & (old_size - 1)) == 0) {
		memcpy(fr, old_root, TLOG_HASH_BYTES);
		start = 0;
	} else {
		memcpy(fr, proof->hash[0], TLOG_HASH_BYTES);
		start = 1;
	}
	memcpy(sr, fr, TLOG_HASH_BYTES);
	fn = old_size - 1;
	sn = new_size - 1;
	while ((fn & 1) != 0) {
		fn >>= 1;
		sn >>= 1;
	}
	for (i = start; i < proof->count; i++) {
		const uint8_t *c = proof->hash[i];

		if (sn == 0)
			return -1;
		if ((fn & 1) != 0 || fn == sn) {
			tlog_node_hash(c, fr, fr);
			tlog_node_hash(c, sr, sr);
			while ((fn & 1) == 0 && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			tlog_node_hash(sr, c, sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0 || memcmp(fr, old_root, TLOG_HASH_BYTES) != 0 ||
	    memcmp(sr, new_root, TLOG_HASH_BYTES) != 0)
		return -1;
	return 0;
}
