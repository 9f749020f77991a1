/* fuzz-tlog-proof.c — Merkle trees, and inclusion and consistency proofs
 * checked by tlog_verify_inclusion / tlog_verify_consistency.
 *
 * Trust boundary: proofs, sizes and roots come from whoever asks the log to
 * prove something, and a verifier must accept exactly the proofs that hold.
 * The input gives up to 128 leaves (one byte each, so leaves may repeat) and
 * up to 16 queries. Checked:
 *   - tlog_tree's roots and proofs equal RFC 9162's recursive definitions
 *     (MTH, PATH, SUBPROOF) computed naively here, also after truncating
 *     the tree and appending other leaves;
 *   - out-of-range requests are refused;
 *   - each query takes a correct proof, edits it (flip, drop, repeat, swap,
 *     truncate, shift the index or a size, flip the leaf or a root) and
 *     verifies it: within the tree, the verifier accepts if and only if the
 *     leaf and roots are the tree's for the claimed index and sizes and the
 *     proof is the one correct proof for them (or the claim holds trivially:
 *     equal sizes, size 0, a one-leaf tree). A claim always comes with the
 *     tree's root for the claimed size (or a flipped one): a proof does not
 *     bind the size beyond the shape of its path, a signed checkpoint does,
 *     so claims past the tree's size are exercised but not judged. */
#include "tlog/tlog.h"

#include "crypto/seal.h"

#include "fuzz.h"

#define FUZZ_LEAVES_MAX  128
#define FUZZ_QUERIES_MAX 16

/* The leaf hashes the tree should hold. */
struct fuzz_leaves {
	uint8_t hash[FUZZ_LEAVES_MAX][TLOG_HASH_BYTES];
	size_t n;
};

/* ---- RFC 9162 section 2.1, by the book ---------------------------------------------- */

static size_t ref_split(size_t n)
{
	size_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void ref_mth(const struct fuzz_leaves *d, size_t lo, size_t hi, uint8_t out[TLOG_HASH_BYTES])
{
	uint8_t l[TLOG_HASH_BYTES], r[TLOG_HASH_BYTES];
	size_t k;

	if (hi == lo) {
		seal_sha256("", 0, out);
		return;
	}
	if (hi - lo == 1) {
		memcpy(out, d->hash[lo], TLOG_HASH_BYTES);
		return;
	}
	k = ref_split(hi - lo);
	ref_mth(d, lo, lo + k, l);
	ref_mth(d, lo + k, hi, r);
	tlog_node_hash(l, r, out);
}

static void ref_push(struct tlog_proof *p, const struct fuzz_leaves *d, size_t lo, size_t hi)
{
	FUZZ_CHECK(p->count < TLOG_PROOF_MAX);
	ref_mth(d, lo, hi, p->hash[p->count++]);
}

/* PATH(m, D[lo:hi]) */
static void ref_path(const struct fuzz_leaves *d, size_t m, size_t lo, size_t hi,
		     struct tlog_proof *p)
{
	size_t k;

	if (hi - lo <= 1)
		return;
	k = ref_split(hi - lo);
	if (m < k) {
		ref_path(d, m, lo, lo + k, p);
		ref_push(p, d, lo + k, hi);
	} else {
		ref_path(d, m - k, lo + k, hi, p);
		ref_push(p, d, lo, lo + k);
	}
}

/* SUBPROOF(m, D[lo:hi], b) */
static void ref_subproof(const struct fuzz_leaves *d, size_t m, size_t lo, size_t hi, int b,
			 struct tlog_proof *p)
{
	size_t k;

	if (m == hi - lo) {
		if (!b)
			ref_push(p, d, lo, hi);
		return;
	}
	k = ref_split(hi - lo);
	if (m <= k) {
		ref_subproof(d, m, lo, lo + k, b, p);
		ref_push(p, d, lo + k, hi);
	} else {
		ref_subproof(d, m - k, lo + k, hi, 0, p);
		ref_push(p, d, lo, lo + k);
	}
}

static int proof_eq(const struct tlog_proof *a, const struct tlog_proof *b)
{
	return a->count == b->count &&
	       (a->count == 0 || memcmp(a->hash, b->hash, a->count * TLOG_HASH_BYTES) == 0);
}

/* ---- the tree against the reference ------------------------------------------------ */

static void check_tree(const struct tlog_tree *t, const struct fuzz_leaves *d)
{
	uint8_t root[TLOG_HASH_BYTES], want[TLOG_HASH_BYTES];
	const char *error = NULL;

	FUZZ_CHECK(tlog_tree_size(t) == d->n);
	for (size_t i = 0; i < d->n; i++)
		FUZZ_CHECK(memcmp(tlog_tree_leaf(t, i), d->hash[i], TLOG_HASH_BYTES) == 0);
	/* Every size near the ends and around each power of two. */
	for (size_t size = 0; size <= d->n; size++) {
		int pow2_near = ((size - 1) & size) == 0 || ((size + 1) & size) == 0;

		if (size > 4 && size + 4 < d->n && !pow2_near)
			continue;
		FUZZ_CHECK(tlog_tree_root(t, size, root, &error) == 0);
		ref_mth(d, 0, size, want);
		FUZZ_CHECK(memcmp(root, want, TLOG_HASH_BYTES) == 0);
	}
	FUZZ_CHECK(tlog_tree_root(t, d->n + 1, root, &error) < 0 && error != NULL);
}

/* The tree's proof must be the reference proof; out of range, an error. */
static int tree_inclusion(const struct tlog_tree *t, const struct fuzz_leaves *d, uint64_t index,
			  uint64_t size, struct tlog_proof *p)
{
	struct tlog_proof want = {0};
	const char *error = NULL;

	if (index >= size || size > d->n) {
		FUZZ_CHECK(tlog_tree_prove_inclusion(t, index, size, p, &error) < 0 &&
			   error != NULL);
		return -1;
	}
	FUZZ_CHECK(tlog_tree_prove_inclusion(t, index, size, p, &error) == 0);
	ref_path(d, (size_t)index, 0, (size_t)size, &want);
	FUZZ_CHECK(proof_eq(p, &want));
	return 0;
}

static int tree_consistency(const struct tlog_tree *t, const struct fuzz_leaves *d,
			    uint64_t old_size, uint64_t new_size, struct tlog_proof *p)
{
	struct tlog_proof want = {0};
	const char *error = NULL;

	if (old_size == 0 || old_size > new_size || new_size > d->n) {
		FUZZ_CHECK(tlog_tree_prove_consistency(t, old_size, new_size, p, &error) < 0 &&
			   error != NULL);
		return -1;
	}
	FUZZ_CHECK(tlog_tree_prove_consistency(t, old_size, new_size, p, &error) == 0);
	if (old_size < new_size)
		ref_subproof(d, (size_t)old_size, 0, (size_t)new_size, 1, &want);
	FUZZ_CHECK(proof_eq(p, &want));
	return 0;
}

/* ---- queries -------------------------------------------------------------------------- */

enum fuzz_edit {
	EDIT_NONE,
	EDIT_FLIP,
	EDIT_DROP,
	EDIT_REPEAT,
	EDIT_SWAP,
	EDIT_TRUNCATE,
	EDIT_A_DOWN, /* index, or the old size */
	EDIT_A_UP,
	EDIT_B_DOWN, /* size, or the new size */
	EDIT_B_UP,
	EDIT_FLIP_LEAF, /* or the old root */
	EDIT_FLIP_ROOT, /* or the new root */
	EDIT_APPEND_ROOT,
	EDIT_COUNT
};

struct fuzz_claim {
	uint64_t a, b; /* index and size, or old and new size */
	int flip_a, flip_b;
	struct tlog_proof proof;
};

static void edit_claim(struct fuzz_claim *c, uint8_t op, uint8_t arg, const uint8_t *some_root)
{
	struct tlog_proof *p = &c->proof;
	size_t i = p->count ? arg % p->count : 0;
	uint8_t tmp[TLOG_HASH_BYTES];

	switch ((enum fuzz_edit)(op % EDIT_COUNT)) {
	case EDIT_NONE:
		break;
	case EDIT_FLIP:
		if (p->count > 0)
			p->hash[i][arg % TLOG_HASH_BYTES] ^= (uint8_t)(1u << (arg % 8));
		break;
	case EDIT_DROP:
		if (p->count > 0) {
			memmove(p->hash[i], p->hash[i + 1], (p->count - i - 1) * TLOG_HASH_BYTES);
			p->count--;
		}
		break;
	case EDIT_REPEAT:
		if (p->count > 0 && p->count < TLOG_PROOF_MAX) {
			memmove(p->hash[i + 1], p->hash[i], (p->count - i) * TLOG_HASH_BYTES);
			p->count++;
		}
		break;
	case EDIT_SWAP:
		if (p->count > 1) {
			size_t j = (i + 1) % p->count;

			memcpy(tmp, p->hash[i], TLOG_HASH_BYTES);
			memcpy(p->hash[i], p->hash[j], TLOG_HASH_BYTES);
			memcpy(p->hash[j], tmp, TLOG_HASH_BYTES);
		}
		break;
	case EDIT_TRUNCATE:
		p->count = p->count ? arg % p->count : 0;
		break;
	case EDIT_A_DOWN:
		c->a -= 1 + arg % 4;
		break;
	case EDIT_A_UP:
		c->a += 1 + arg % 4;
		break;
	case EDIT_B_DOWN:
		c->b -= 1 + arg % 4;
		break;
	case EDIT_B_UP:
		c->b += 1 + arg % 4;
		break;
	case EDIT_FLIP_LEAF:
		c->flip_a = 1 + arg;
		break;
	case EDIT_FLIP_ROOT:
		c->flip_b = 1 + arg;
		break;
	case EDIT_APPEND_ROOT:
		/* a real node hash at the end of the path */
		if (p->count < TLOG_PROOF_MAX)
			memcpy(p->hash[p->count++], some_root, TLOG_HASH_BYTES);
		break;
	case EDIT_COUNT:
		break;
	}
}

static void flip(uint8_t h[TLOG_HASH_BYTES], int how)
{
	if (how != 0)
		h[(how - 1) % TLOG_HASH_BYTES] ^= (uint8_t)(1u << ((how - 1) % 8));
}

/* The root the claim gives for SIZE: the tree's, or past the tree the
 * largest it has (such claims cannot be judged here: a proof does not bind
 * the size beyond the shape of its path, the signed checkpoint does). */
static void claim_root(const struct fuzz_leaves *d, uint64_t size, int how,
		       uint8_t out[TLOG_HASH_BYTES])
{
	ref_mth(d, 0, size <= d->n ? (size_t)size : d->n, out);
	flip(out, how);
}

static void query_inclusion(const struct tlog_tree *t, const struct fuzz_leaves *d,
			    struct fuzz_in *in)
{
	struct fuzz_claim c = {0};
	struct tlog_proof want;
	uint8_t leaf[TLOG_HASH_BYTES], root[TLOG_HASH_BYTES], some[TLOG_HASH_BYTES];
	int ok;

	c.b = fuzz_u8(in) % (d->n + 2);
	c.a = c.b ? fuzz_u8(in) % c.b : fuzz_u8(in);
	if (tree_inclusion(t, d, c.a, c.b, &c.proof) < 0)
		c.proof.count = fuzz_u8(in) % 4; /* whatever: stale contents */
	ref_mth(d, 0, d->n, some);
	for (unsigned k = fuzz_u8(in) % 4; k > 0; k--) {
		uint8_t op = fuzz_u8(in);

		edit_claim(&c, op, fuzz_u8(in), some);
	}
	if (c.a < d->n)
		memcpy(leaf, d->hash[c.a], TLOG_HASH_BYTES);
	else
		memcpy(leaf, d->hash[d->n ? d->n - 1 : 0], TLOG_HASH_BYTES);
	flip(leaf, c.flip_a);
	claim_root(d, c.b, c.flip_b, root);
	ok = tlog_verify_inclusion(leaf, c.a, c.b, &c.proof, root) == 0;
	if (c.a >= c.b)
		FUZZ_CHECK(!ok);
	else if (c.b == 1) /* a one-leaf tree: the root is the leaf */
		FUZZ_CHECK(ok == (c.proof.count == 0 && memcmp(leaf, root, TLOG_HASH_BYTES) == 0));
	else if (c.b <= d->n)
		FUZZ_CHECK(ok ==
			   (!c.flip_a && !c.flip_b && tree_inclusion(t, d, c.a, c.b, &want) == 0 &&
			    proof_eq(&want, &c.proof)));
}

static void query_consistency(const struct tlog_tree *t, const struct fuzz_leaves *d,
			      struct fuzz_in *in)
{
	struct fuzz_claim c = {0};
	struct tlog_proof want = {0};
	uint8_t old_root[TLOG_HASH_BYTES], new_root[TLOG_HASH_BYTES], some[TLOG_HASH_BYTES];
	uint8_t empty[TLOG_HASH_BYTES];
	int ok;

	c.b = fuzz_u8(in) % (d->n + 2);
	c.a = fuzz_u8(in) % (c.b + 2);
	if (tree_consistency(t, d, c.a, c.b, &c.proof) < 0)
		c.proof.count = 0;
	ref_mth(d, 0, d->n, some);
	for (unsigned k = fuzz_u8(in) % 4; k > 0; k--) {
		uint8_t op = fuzz_u8(in);

		edit_claim(&c, op, fuzz_u8(in), some);
	}
	claim_root(d, c.a, c.flip_a, old_root);
	claim_root(d, c.b, c.flip_b, new_root);
	seal_sha256("", 0, empty);
	ok = tlog_verify_consistency(c.a, c.b, old_root, new_root, &c.proof) == 0;
	if (c.a > c.b) {
		FUZZ_CHECK(!ok);
	} else if (c.a == c.b) {
		FUZZ_CHECK(
		    ok == (c.proof.count == 0 && memcmp(old_root, new_root, TLOG_HASH_BYTES) == 0));
	} else if (c.a == 0) {
		FUZZ_CHECK(ok ==
			   (c.proof.count == 0 && memcmp(old_root, empty, TLOG_HASH_BYTES) == 0));
	} else if (c.b <= d->n) {
		FUZZ_CHECK(tree_consistency(t, d, c.a, c.b, &want) == 0);
		FUZZ_CHECK(ok == (!c.flip_a && !c.flip_b && proof_eq(&want, &c.proof)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct fuzz_leaves d;
	struct tlog_tree *t = tlog_tree_new();
	size_t n = fuzz_u8(&in) % (FUZZ_LEAVES_MAX + 1), keep, more;
	unsigned queries;

	d.n = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = fuzz_u8(&in);

		tlog_leaf_hash(&b, 1, d.hash[d.n++]);
		tlog_tree_append(t, d.hash[i]);
	}
	check_tree(t, &d);
	/* Truncate, then grow again with other leaves. */
	keep = d.n ? fuzz_u8(&in) % (d.n + 1) : 0;
	tlog_tree_truncate(t, keep);
	d.n = keep;
	check_tree(t, &d);
	more = fuzz_u8(&in) % (FUZZ_LEAVES_MAX - d.n + 1);
	for (size_t i = 0; i < more; i++) {
		uint8_t b[2] = {0xff, fuzz_u8(&in)};

		tlog_leaf_hash(b, 2, d.hash[d.n]);
		tlog_tree_append(t, d.hash[d.n++]);
	}
	check_tree(t, &d);

	queries = fuzz_u8(&in) % (FUZZ_QUERIES_MAX + 1);
	for (unsigned q = 0; q < queries; q++) {
		if (fuzz_u8(&in) & 1)
			query_consistency(t, &d, &in);
		else if (d.n > 0)
			query_inclusion(t, &d, &in);
	}
	tlog_tree_free(&t);
	FUZZ_CHECK(t == NULL);
	return 0;
}
