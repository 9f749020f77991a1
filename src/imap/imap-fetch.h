/* imap-fetch.h — FETCH attributes and body sections (shared by
 * imap-cmd-fetch.c and imap-fetch-section.c).
 *
 * Trust boundary: attribute and section syntax from the client is parsed
 * here into bounded structures; the extraction functions work on plaintext
 * the caller opened and return slices of it, never copies on disk. */
#ifndef SEALMAIL_IMAP_FETCH_H
#define SEALMAIL_IMAP_FETCH_H

#include "imap/imap-private.h"

#define IMAP_SECTION_DEPTH_MAX 32
#define IMAP_FETCH_ITEMS_MAX   64
#define IMAP_HEADER_FIELDS_MAX 100

enum imap_fetch_kind {
	IMAP_FETCH_FLAGS,
	IMAP_FETCH_UID,
	IMAP_FETCH_INTERNALDATE,
	IMAP_FETCH_SIZE,
	IMAP_FETCH_ENVELOPE,
	IMAP_FETCH_BODYSTRUCTURE,
	IMAP_FETCH_BODY,    /* BODY without a section */
	IMAP_FETCH_SECTION, /* BODY[..], BODY.PEEK[..], BINARY[..], RFC822* */
	IMAP_FETCH_BINARY_SIZE,
	IMAP_FETCH_MODSEQ,
};

enum imap_section_part {
	IMAP_SECTION_ALL,
	IMAP_SECTION_HEADER,
	IMAP_SECTION_HEADER_FIELDS,
	IMAP_SECTION_HEADER_FIELDS_NOT,
	IMAP_SECTION_TEXT,
	IMAP_SECTION_MIME,
};

struct imap_fetch_item {
	enum imap_fetch_kind kind;
	int peek, binary;
	char *name; /* as answered: "BODY[HEADER]", "RFC822.TEXT" */
	unsigned path[IMAP_SECTION_DEPTH_MAX];
	size_t depth;
	enum imap_section_part part;
	char **fields;
	size_t field_count;
	int partial;
	uint64_t offset, count;
};

struct imap_fetch_spec {
	struct imap_fetch_item items[IMAP_FETCH_ITEMS_MAX];
	size_t count;
	int need_meta, need_body, sets_seen;
	uint64_t changed_since;
};

/* Parses the attribute argument (a macro, one attribute or a list). */
int imap_fetch_spec_parse(const struct imap_arg *arg, struct imap_fetch_spec *spec,
			  const char **error_r) WARN_UNUSED;
void imap_fetch_spec_free(struct imap_fetch_spec *spec);

/* The bytes of ITEM's section: from the whole message MSG when it is set,
 * else (header-only items of the top level) from the header HDR. Writes the
 * selected bytes into OUT (which may point into MSG/HDR: *DATA_R and *LEN_R) or
 * builds them in SCRATCH. Returns 0, or -1 when the part does not exist
 * (answered as an empty string). */
int imap_fetch_section(const struct imap_fetch_item *item, const uint8_t *msg, size_t msg_len,
		       const uint8_t *hdr, size_t hdr_len, struct buf *scratch,
		       const uint8_t **data_r, size_t *len_r);

#endif
