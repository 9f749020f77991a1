/* seal-private.h — layouts shared by the files of crypto/ only.
 *
 * Trust boundary: holds the definition of the account keypair so that the
 * opener (seal-record.c) can copy the secret half into its own secure memory.
 * No file outside src/crypto/ may include it. */
#ifndef SEALMAIL_SEAL_PRIVATE_H
#define SEALMAIL_SEAL_PRIVATE_H

#include "crypto/seal.h"

#define SEAL_SK_BYTES 32

/* Picks the body cipher of new records when none was set (seal_init()). */
void seal_record_init(void);

/* Allocated whole with sodium_malloc() and kept read-only after creation. */
struct seal_keypair {
	uint8_t pk[SEAL_PK_BYTES];
	uint8_t sk[SEAL_SK_BYTES];
};

#endif
