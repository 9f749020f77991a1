/* bench-seal.c — measures, on one core, the operations that decide what a
 * sealed message costs: public-key work per message (crypto_box_seal and its
 * open, one key agreement per delivery epoch), opening metadata parts of one
 * epoch with a warm opener, symmetric stream throughput, Argon2id at the
 * interactive limits and the latency of one fdatasync. docs/format.md quotes
 * its figures.
 *
 * Trust boundary: none; random keys and data, a scratch file in the current
 * directory that is removed on exit. It calls libsodium directly to measure
 * the raw primitives next to the seal_ functions built from them.
 *
 * Build and run from the top of the tree:
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -Isrc $(pkg-config --cflags libsodium) \
 *       bench/bench-seal.c src/crypto/seal-util.c src/crypto/seal-key.c \
 *       src/crypto/seal-record.c src/lib/lib-buf.c src/lib/lib-str.c src/lib/lib-log.c \
 *       -o bench-seal $(pkg-config --libs libsodium)
 *   ./bench-seal [seconds per measurement, default 1] */
#include "crypto/seal.h"

#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define META_BLOBS   10000
#define COLD_BLOBS   1000 /* more than the opener caches */
#define META_BYTES   400  /* a typical ENVELOPE + BODYSTRUCTURE */
#define STREAM_BYTES (64u << 20)
#define SYNC_BYTES   4096

static double min_seconds = 1.0;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void row(const char *what, double value, const char *unit)
{
	printf("%-52s %14.1f  %s\n", what, value, unit);
	fflush(stdout);
}

static void die(const char *what)
{
	fprintf(stderr, "bench-seal: %s failed\n", what);
	exit(1);
}

static void bench_box_seal(void)
{
	uint8_t pk[crypto_box_PUBLICKEYBYTES], sk[crypto_box_SECRETKEYBYTES];
	uint8_t key[32], sealed[32 + crypto_box_SEALBYTES], opened[32];
	unsigned long n = 0;
	double t0, t;

	crypto_box_keypair(pk, sk);
	randombytes_buf(key, sizeof(key));
	t0 = now();
	do {
		for (int i = 0; i < 100; i++, n++)
			crypto_box_seal(sealed, key, sizeof(key), pk);
	} while ((t = now() - t0) < min_seconds);
	row("crypto_box_seal (32-byte key, one X25519 + keygen)", n / t, "ops/s");

	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < 100; i++, n++)
			if (crypto_box_seal_open(opened, sealed, sizeof(sealed), pk, sk) != 0)
				die("crypto_box_seal_open");
	} while ((t = now() - t0) < min_seconds);
	row("crypto_box_seal_open (one X25519)", n / t, "ops/s");
	sodium_memzero(sk, sizeof(sk));
}

static void bench_sender_new(const uint8_t *pk)
{
	struct seal_sender *s;
	unsigned long n = 0;
	double t0, t;

	t0 = now();
	do {
		for (int i = 0; i < 100; i++, n++) {
			if (seal_sender_new(pk, &s) < 0)
				die("seal_sender_new");
			seal_sender_free(&s);
		}
	} while ((t = now() - t0) < min_seconds);
	row("seal_sender_new (one delivery epoch: keygen + kx)", n / t, "ops/s");
}

static void bench_meta(const struct seal_keypair *kp)
{
	static uint8_t *blobs[META_BLOBS];
	static size_t lens[META_BLOBS];
	uint8_t meta[META_BYTES], *plain;
	struct seal_opener *o;
	struct seal_sender *s;
	const char *error;
	unsigned long n = 0;
	size_t plain_len;
	double t0, t;

	randombytes_buf(meta, sizeof(meta));
	if (seal_sender_new(seal_keypair_public(kp), &s) < 0)
		die("seal_sender_new");
	t0 = now();
	for (int i = 0; i < META_BLOBS; i++)
		if (seal_blob_seal(s, meta, sizeof(meta), &blobs[i], &lens[i], &error) < 0)
			die("seal_blob_seal");
	t = now() - t0;
	row("seal_blob_seal, 400 B, one epoch", META_BLOBS / t, "ops/s");
	seal_sender_free(&s);

	if (seal_opener_new(kp, &o) < 0)
		die("seal_opener_new");
	/* Warm: the epoch key is derived by the first open and cached. */
	if (seal_blob_open(o, blobs[0], lens[0], &plain, &plain_len, &error) < 0)
		die("seal_blob_open");
	free(plain);
	t0 = now();
	do {
		for (int i = 0; i < META_BLOBS; i++, n++) {
			if (seal_blob_open(o, blobs[i], lens[i], &plain, &plain_len, &error) < 0)
				die("seal_blob_open");
			sodium_memzero(plain, plain_len);
			free(plain);
		}
	} while ((t = now() - t0) < min_seconds);
	row("seal_blob_open, 400 B, one epoch, warm opener", n / t, "ops/s");
	printf("%-52s %14.1f  %s\n", "  = 10,000 ENVELOPE parts opened in",
	       1e3 * META_BLOBS * t / n, "ms");
	seal_opener_free(&o);
	for (int i = 0; i < META_BLOBS; i++)
		free(blobs[i]);

	/* Cold: every part from its own epoch, as if each message carried its
	 * own key agreement; the opener's cache never hits. */
	for (int i = 0; i < COLD_BLOBS; i++) {
		if (seal_sender_new(seal_keypair_public(kp), &s) < 0 ||
		    seal_blob_seal(s, meta, sizeof(meta), &blobs[i], &lens[i], &error) < 0)
			die("seal_blob_seal");
		seal_sender_free(&s);
	}
	if (seal_opener_new(kp, &o) < 0)
		die("seal_opener_new");
	n = 0;
	t0 = now();
	do {
		for (int i = 0; i < COLD_BLOBS; i++, n++) {
			if (seal_blob_open(o, blobs[i], lens[i], &plain, &plain_len, &error) < 0)
				die("seal_blob_open");
			sodium_memzero(plain, plain_len);
			free(plain);
		}
	} while ((t = now() - t0) < min_seconds);
	row("seal_blob_open, 400 B, one epoch per message", n / t, "ops/s");
	printf("%-52s %14.1f  %s\n", "  = 10,000 ENVELOPE parts opened in",
	       1e3 * META_BLOBS * t / n, "ms");
	seal_opener_free(&o);
	for (int i = 0; i < COLD_BLOBS; i++)
		free(blobs[i]);
}

static void bench_stream(void)
{
	crypto_secretstream_xchacha20poly1305_state st;
	uint8_t key[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	uint8_t header[crypto_secretstream_xchacha20poly1305_HEADERBYTES];
	uint8_t *plain = malloc(SEAL_CHUNK_BYTES);
	uint8_t *cipher = malloc(SEAL_CHUNK_BYTES + SEAL_CHUNK_OVERHEAD_BYTES);
	unsigned long long bytes = 0;
	double t0, t;

	if (plain == NULL || cipher == NULL)
		die("malloc");
	randombytes_buf(plain, SEAL_CHUNK_BYTES);
	crypto_secretstream_xchacha20poly1305_keygen(key);
	crypto_secretstream_xchacha20poly1305_init_push(&st, header, key);
	t0 = now();
	do {
		for (int i = 0; i < 64; i++, bytes += SEAL_CHUNK_BYTES)
			crypto_secretstream_xchacha20poly1305_push(
			    &st, cipher, NULL, plain, SEAL_CHUNK_BYTES, NULL, 0,
			    crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
	} while ((t = now() - t0) < min_seconds);
	row("secretstream push, 64 KiB chunks", bytes / t / 1e6, "MB/s");
	sodium_memzero(key, sizeof(key));
	sodium_memzero(&st, sizeof(st));
	free(plain);
	free(cipher);
}

/* AES-256-GCM on 64 KiB chunks with the key schedule computed once, as a
 * version 2 record does: sealing and opening. */
static void bench_gcm(void)
{
	crypto_aead_aes256gcm_state *st;
	uint8_t key[crypto_aead_aes256gcm_KEYBYTES], nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
	uint8_t *plain = malloc(SEAL_CHUNK_BYTES);
	uint8_t *cipher = malloc(SEAL_CHUNK_BYTES + crypto_aead_aes256gcm_ABYTES);
	unsigned long long bytes = 0;
	double t0, t;

	if (!crypto_aead_aes256gcm_is_available()) {
		printf("AES-256-GCM: not available on this CPU\n");
		free(plain);
		free(cipher);
		return;
	}
	st = sodium_malloc(sizeof(*st)); /* 16-byte aligned */
	if (plain == NULL || cipher == NULL || st == NULL)
		die("malloc");
	randombytes_buf(plain, SEAL_CHUNK_BYTES);
	crypto_aead_aes256gcm_keygen(key);
	crypto_aead_aes256gcm_beforenm(st, key);
	t0 = now();
	do {
		for (int i = 0; i < 64; i++, bytes += SEAL_CHUNK_BYTES)
			crypto_aead_aes256gcm_encrypt_afternm(cipher, NULL, plain, SEAL_CHUNK_BYTES,
							      NULL, 0, NULL, nonce, st);
	} while ((t = now() - t0) < min_seconds);
	row("AES-256-GCM seal, 64 KiB chunks", bytes / t / 1e6, "MB/s");
	bytes = 0;
	t0 = now();
	do {
		for (int i = 0; i < 64; i++, bytes += SEAL_CHUNK_BYTES)
			if (crypto_aead_aes256gcm_decrypt_afternm(plain, NULL, NULL, cipher,
								  SEAL_CHUNK_BYTES +
								      crypto_aead_aes256gcm_ABYTES,
								  NULL, 0, nonce, st) != 0)
				die("AES-256-GCM open");
	} while ((t = now() - t0) < min_seconds);
	row("AES-256-GCM open, 64 KiB chunks", bytes / t / 1e6, "MB/s");
	sodium_memzero(key, sizeof(key));
	sodium_free(st);
	free(plain);
	free(cipher);
}

struct counter {
	unsigned long long bytes;
	struct seal_reader *reader;
};

static int sink_count(void *ctx, const uint8_t *data, size_t len)
{
	struct counter *c = ctx;

	c->bytes += len;
	return 0;
}

static int sink_to_reader(void *ctx, const uint8_t *data, size_t len)
{
	struct counter *c = ctx;
	const char *error;

	c->bytes += len;
	return seal_reader_write(c->reader, data, len, &error);
}

/* A whole record through seal_writer and straight into seal_reader, with
 * the body cipher C (ROW names it). */
static void bench_record(const struct seal_keypair *kp, enum seal_record_cipher c,
			 const char *label)
{
	uint8_t *plain = malloc(SEAL_CHUNK_BYTES);
	struct counter sealed = {0}, opened = {0};
	struct seal_writer *w;
	struct seal_sender *s;
	struct seal_opener *o;
	const char *error;
	double t0, t;

	if (plain == NULL)
		die("malloc");
	if (seal_set_record_cipher(c, &error) < 0) {
		printf("%s: %s\n", label, error);
		free(plain);
		return;
	}
	randombytes_buf(plain, SEAL_CHUNK_BYTES);
	if (seal_sender_new(seal_keypair_public(kp), &s) < 0 || seal_opener_new(kp, &o) < 0)
		die("setup");
	if (seal_reader_begin(o, sink_count, &opened, &sealed.reader) < 0)
		die("seal_reader_begin");
	t0 = now();
	if (seal_writer_begin(s, sink_to_reader, &sealed, &w, &error) < 0)
		die("seal_writer_begin");
	for (size_t done = 0; done < STREAM_BYTES; done += SEAL_CHUNK_BYTES)
		if (seal_writer_write(w, plain, SEAL_CHUNK_BYTES, &error) < 0)
			die("seal_writer_write");
	if (seal_writer_finish(w, &error) < 0 || seal_reader_finish(sealed.reader, &error) < 0)
		die("finish");
	t = now() - t0;
	if (opened.bytes != STREAM_BYTES)
		die("record round trip");
	row(label, STREAM_BYTES / t / 1e6, "MB/s");
	seal_writer_free(&w);
	seal_reader_free(&sealed.reader);
	seal_opener_free(&o);
	seal_sender_free(&s);
	free(plain);
}

static void bench_argon2id(void)
{
	uint8_t key[32], salt[crypto_pwhash_SALTBYTES];
	int n = 0;
	double t0, t;

	randombytes_buf(salt, sizeof(salt));
	t0 = now();
	do {
		if (crypto_pwhash(key, sizeof(key), "password", 8, salt,
				  crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
				  crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE,
				  crypto_pwhash_ALG_ARGON2ID13) != 0)
			die("crypto_pwhash");
		n++;
	} while ((t = now() - t0) < min_seconds || n < 3);
	row("Argon2id, interactive limits (2 passes, 64 MiB)", 1e3 * t / n, "ms each");
	sodium_memzero(key, sizeof(key));
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_fdatasync(void)
{
	static double lat[100000];
	char path[] = "./bench-seal.XXXXXX";
	uint8_t block[SYNC_BYTES];
	size_t n = 0;
	double t0, t, total = 0;
	int fd;

	fd = mkstemp(path);
	if (fd < 0)
		die("mkstemp in the current directory");
	randombytes_buf(block, sizeof(block));
	t0 = now();
	do {
		double t1 = now();

		if (write(fd, block, sizeof(block)) != (ssize_t)sizeof(block) || fdatasync(fd) < 0)
			die("write + fdatasync");
		lat[n] = now() - t1;
		total += lat[n++];
	} while ((t = now() - t0) < min_seconds && n < N_ELEMENTS(lat));
	close(fd);
	unlink(path);
	qsort(lat, n, sizeof(lat[0]), cmp_double);
	row("4 KiB append + fdatasync, median", 1e3 * lat[n / 2], "ms");
	row("4 KiB append + fdatasync, 99th percentile", 1e3 * lat[n * 99 / 100], "ms");
	row("4 KiB append + fdatasync, one after another", n / total, "syncs/s");
}

int main(int argc, char **argv)
{
	struct seal_keypair *kp;

	if (argc > 1)
		min_seconds = atof(argv[1]) > 0 ? atof(argv[1]) : 1.0;
	if (seal_init() < 0 || seal_keypair_generate(&kp) < 0)
		die("initialisation");
	printf("%-52s %14s  %s\n", "operation (one core)", "figure", "unit");
	bench_box_seal();
	bench_sender_new(seal_keypair_public(kp));
	bench_meta(kp);
	bench_stream();
	bench_gcm();
	bench_record(kp, SEAL_CIPHER_XCHACHA20POLY1305,
		     "seal_writer + seal_reader, 64 MiB record, version 1");
	bench_record(kp, SEAL_CIPHER_AES256GCM,
		     "seal_writer + seal_reader, 64 MiB record, version 2");
	bench_argon2id();
	bench_fdatasync();
	seal_keypair_free(&kp);
	return 0;
}
