/* imap-search.h — SEARCH keys and the text they compare against.
 *
 * Trust boundary: search keys are client input, parsed into a bounded tree
 * (IMAP_SEARCH_DEPTH_MAX); text helpers return case-folded plaintext of one
 * message that the caller wipes and frees. */
#ifndef SEALMAIL_IMAP_SEARCH_H
#define SEALMAIL_IMAP_SEARCH_H

#include "imap/imap-private.h"

/* Case-folded UTF-8 (invalid sequences replaced); malloc'd. */
char *imap_search_fold(const char *s, size_t len);
/* The decoded values of header fields NAME (every field, "Name: value",
 * when NAME is NULL), one per line, case-folded; *PRESENT_R whether any. */
char *imap_search_header_text(const uint8_t *hdr, size_t len, const char *name, int *present_r);
/* The decoded text of every text part, case-folded. */
char *imap_search_body_text(const uint8_t *msg, size_t len);
/* The Date: header as unix time; -1 if absent or unparsable. */
int imap_search_date_header(const uint8_t *hdr, size_t len, int64_t *t_r);

#endif
