/* fuzz.h — shared by the libFuzzer harnesses in tests/fuzz/.
 *
 * FUZZ_CHECK states an invariant of the code under test; a violation aborts,
 * which libFuzzer reports as a crash with the input that caused it. The
 * fuzz_in reader splits one input into fields for the harnesses that need
 * structure (sizes, offsets, edit lists): reads past the end yield zeros, so
 * every input is usable. */
#ifndef SEALMAIL_FUZZ_H
#define SEALMAIL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_check_failed(__FILE__, __LINE__, #cond);                              \
	} while (0)

__attribute__((noreturn)) static inline void fuzz_check_failed(const char *file, int line,
							       const char *what)
{
	fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
	abort();
}

/* memcmp() that allows NULL for empty ranges (an unused struct buf). */
static inline int fuzz_mem_eq(const void *a, size_t a_len, const void *b, size_t b_len)
{
	return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Writes a seed input, MODE byte first, to DIR/NAME for a harness's
 * corpus; exits on failure. */
static inline void fuzz_write_seed(const char *dir, const char *name, uint8_t mode,
				   const void *data, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(&mode, 1, 1, f) != 1 || fwrite(data, 1, len, f) != len ||
	    fclose(f) != 0) {
		fprintf(stderr, "fuzz: cannot write seed %s\n", path);
		exit(1);
	}
}

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	uint8_t v = 0;

	if (in->left > 0) {
		v = *in->p++;
		in->left--;
	}
	return v;
}

static inline uint32_t fuzz_u16(struct fuzz_in *in)
{
	uint32_t hi = fuzz_u8(in);

	return hi << 8 | fuzz_u8(in);
}

static inline uint32_t fuzz_u32(struct fuzz_in *in)
{
	uint32_t hi = fuzz_u16(in);

	return hi << 16 | fuzz_u16(in);
}

static inline uint64_t fuzz_u64(struct fuzz_in *in)
{
	uint64_t hi = fuzz_u32(in);

	return hi << 32 | fuzz_u32(in);
}

/* Up to N bytes; *LEN_R says how many there were. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *len_r)
{
	const uint8_t *p = in->p;

	if (n > in->left)
		n = in->left;
	in->p += n;
	in->left -= n;
	*len_r = n;
	return p;
}

#endif
