/* mime.h — the metadata part of a sealed message, computed with GMime.
 *
 * Trust boundary: input is an untrusted RFC 5322 message (from the network or
 * a local sender). Output is plaintext metadata that the caller seals at once
 * (crypto/) and never writes anywhere unsealed.
 *
 * The metadata is a list of fields, each encoded as
 *   tag (u8) | length (u32, big endian) | bytes
 * in tag order; unknown tags are skipped by readers (forward compatible). */
#ifndef SEALMAIL_MIME_H
#define SEALMAIL_MIME_H

#include "lib/lib.h"

enum mime_field {
	/* IMAP ENVELOPE, exactly as it appears in a FETCH response, e.g.
	 * ("date" "subject" (("name" NIL "mbox" "host")) ... "<message-id>") */
	MIME_FIELD_ENVELOPE = 1,
	/* IMAP BODYSTRUCTURE (with extension data). */
	MIME_FIELD_BODYSTRUCTURE = 2,
	/* IMAP BODY (the non-extensible form). */
	MIME_FIELD_BODY = 3,
	/* The raw header section, up to and including the blank line (the lines
	 * that fit when the header sections pass 1 MiB in all, see below). */
	MIME_FIELD_HEADER = 4,
	/* Decimal count of lines of the whole message (for RFC822.SIZE-like uses). */
	MIME_FIELD_LINES = 5,
};

/* Parses MSG (LEN bytes, CRLF or LF line ends) and appends the metadata fields
 * to OUT: a mime_meta_stream fed MSG at once. A message that makes no sense
 * as MIME still gets metadata (an ENVELOPE of NILs, a text/plain
 * BODYSTRUCTURE); only allocation failure returns -1. */
int mime_meta_build(const uint8_t *msg, size_t len, struct buf *out) WARN_UNUSED;

/* Metadata computed as the message streams in: memory is bounded by the
 * message's header sections (kept up to 1 MiB in all; past that a part is
 * described from the header lines kept, which still gives valid IMAP with
 * exact sizes), the part count and the longest boundary, not by the
 * message's size. */
struct mime_meta_stream;
/* NULL on allocation failure. */
struct mime_meta_stream *mime_meta_stream_new(void);
/* Feeds the next LEN bytes (any split). -1 only on allocation failure, after
 * which the stream only fails. */
int mime_meta_stream_write(struct mime_meta_stream *ms, const uint8_t *data,
			   size_t len) WARN_UNUSED;
/* Appends the metadata fields of everything fed to OUT — byte for byte what
 * mime_meta_build() gives for the whole message. -1 on allocation failure
 * (OUT is then as it was). Call it once; the stream takes no more bytes. */
int mime_meta_stream_finish(struct mime_meta_stream *ms, struct buf *out) WARN_UNUSED;
/* Bytes the stream has allocated, for tests and accounting. */
size_t mime_meta_stream_memory(const struct mime_meta_stream *ms);
/* Wipes (it holds plaintext headers) and frees; sets *MS to NULL. */
void mime_meta_stream_free(struct mime_meta_stream **ms);

/* Finds FIELD in a metadata blob: 1 found (*val_r points into META), 0 absent,
 * -1 malformed. */
int mime_meta_get(const uint8_t *meta, size_t len, enum mime_field field, const uint8_t **val_r,
		  size_t *val_len_r) WARN_UNUSED;

/* Where an IMAP body section lies in a message, for FETCH BODY[section]: the
 * same parse as mime_meta_build(), so the slices have exactly the sizes that
 * BODYSTRUCTURE states. */
struct mime_part_range {
	size_t mime_off; /* [mime_off, body_off): the part's MIME header (.MIME) */
	size_t body_off; /* [body_off, end_off): the part itself */
	size_t end_off;
	/* Set for the whole message and for message/rfc822 parts: the part is
	 * a message whose header is [body_off, text_off) (.HEADER) and whose
	 * text is [text_off, end_off) (.TEXT). */
	int is_message;
	size_t text_off;
};

/* Finds the part numbered PATH[0..DEPTH) in MSG ({1, 2} is section "1.2";
 * DEPTH 0 is the whole message). Returns 1 and fills *R, 0 when there is no
 * such part, -1 on allocation failure. */
int mime_part_find(const uint8_t *msg, size_t len, const unsigned *path, size_t depth,
		   struct mime_part_range *r) WARN_UNUSED;

/* Global GMime set-up; call once from main (idempotent). */
void mime_init(void);

#endif
