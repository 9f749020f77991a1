/* fuzz-imap-search.c — SEARCH keys: imap_search_return, the CHARSET
 * prefix and imap_skey_parse of imap-cmd-search.c, then the evaluation of
 * the parsed keys (imap_skey_index, imap_skey_match) against a small view.
 *
 * Trust boundary: the keys come from a logged-in IMAP client with a mailbox
 * selected. imap-cmd-search.c is compiled into this harness (its parser is
 * static); the rest of the IMAP module is linked as usual.
 *
 * Input: the first byte sets the view (how many messages, which saved
 * result "$" holds); the rest is the argument text of SEARCH as it would
 * follow "tag SEARCH ". Checked besides memory safety and leaks:
 *   - the parsed tree is no deeper than IMAP_SEARCH_DEPTH_MAX (+1 for the
 *     root), NOT has one child and OR two, text keys hold a value;
 *   - the level (index / header / body) covers every key in the tree;
 *   - when the index alone decides a key for a message (imap_skey_index
 *     answers 0 or 1), the full match on that message agrees. */
#include "../../src/imap/imap-cmd-search.c"

#include "fuzz.h"

#define FUZZ_VIEW_MAX 8

static const char fuzz_msg[] = "From: Alice <alice@example.org>\r\n"
			       "To: bob@example.net\r\n"
			       "Subject: =?UTF-8?Q?caf=C3=A9?= report\r\n"
			       "Date: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
			       "X-Tag: one\r\n"
			       "\r\n"
			       "Hello Bob,\r\nthe quarterly numbers are in.\r\n";

/* Depth of K's tree; checks the shape of every node. */
static unsigned check_tree(const struct imap_skey *k, int level)
{
	unsigned depth = 0;

	switch (k->type) {
	case SK_NOT:
		FUZZ_CHECK(k->nkids == 1);
		break;
	case SK_OR:
		FUZZ_CHECK(k->nkids == 2);
		break;
	case SK_AND:
		break;
	case SK_HEADER:
		FUZZ_CHECK(k->value != NULL && k->name != NULL && level >= 1);
		break;
	case SK_BODY:
	case SK_TEXT:
		FUZZ_CHECK(k->value != NULL && level >= 2);
		break;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		FUZZ_CHECK(level >= 1);
		break;
	case SK_KEYWORD:
	case SK_UNKEYWORD:
		FUZZ_CHECK(k->name != NULL);
		break;
	default:
		FUZZ_CHECK(k->nkids == 0);
		break;
	}
	for (size_t i = 0; i < k->nkids; i++) {
		unsigned d = check_tree(&k->kids[i], level);

		if (d > depth)
			depth = d;
	}
	return depth + 1;
}

static void fuzz_match(const struct imap_skey *root, const struct imap_view *v)
{
	for (size_t i = 0; i < v->count; i++) {
		struct imap_seval e;
		int idx, full;

		memset(&e, 0, sizeof(e));
		e.m = &v->msgs[i];
		e.seq = (uint32_t)i + 1;
		e.hdr = (const uint8_t *)fuzz_msg;
		e.hdr_len = (size_t)(strstr(fuzz_msg, "\r\n\r\n") + 4 - fuzz_msg);
		e.body = (const uint8_t *)fuzz_msg;
		e.body_len = sizeof(fuzz_msg) - 1;
		idx = imap_skey_index(root, &e);
		full = imap_skey_match(root, &e);
		FUZZ_CHECK(idx == -1 || idx == (full != 0));
		free(e.body_text);
		free(e.all_headers);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	mime_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct imap_msg msgs[FUZZ_VIEW_MAX];
	struct imap_view view;
	struct imap_session s;
	struct imap_args args;
	struct imap_sparse p;
	struct imap_skey root;
	const char *error = NULL;
	unsigned ret = 0;
	uint8_t shape;
	int esearch, failed = 0;

	if (size == 0)
		return 0;
	shape = data[0];
	memset(&view, 0, sizeof(view));
	memset(msgs, 0, sizeof(msgs));
	view.count = shape % (FUZZ_VIEW_MAX + 1);
	view.msgs = msgs;
	for (size_t i = 0; i < view.count; i++) {
		msgs[i].uid = (uint32_t)(i * 3 + 1 + (shape >> 4));
		msgs[i].flags = (uint32_t)(shape >> i) & 0x1f;
		msgs[i].modseq = i + 1;
		msgs[i].internal_date = 1772528400 + (int64_t)i * 86400;
		msgs[i].size = 100 * (i + 1);
		msgs[i].keywords = i % 2 ? "$Junk one" : NULL;
	}
	memset(&s, 0, sizeof(s));
	s.view = &view;
	s.uid_cmd = shape & 1;
	if (view.count > 0) {
		uint32_t saved[2] = {msgs[0].uid, msgs[view.count - 1].uid + (shape & 2)};

		imap_view_save(&s, saved, saved[0] == saved[1] ? 1 : 2);
	}

	if (imap_args_parse(data + 1, size - 1, &args, &error) < 0) {
		FUZZ_CHECK(error != NULL);
		imap_args_free(&args);
		imap_view_save(&s, NULL, 0);
		return 0;
	}
	memset(&p, 0, sizeof(p));
	p.s = &s;
	p.args = &args;
	esearch = imap_search_return(&args, &p.pos, &ret);
	FUZZ_CHECK(esearch >= -1 && esearch <= 1);
	if (esearch < 0)
		goto out;
	FUZZ_CHECK(esearch == 0 ? ret == 0 : ret != 0);
	if (args.count >= p.pos + 2 && imap_arg_is_atom(&args.list[p.pos], "CHARSET"))
		p.pos += 2;
	memset(&root, 0, sizeof(root));
	root.type = SK_AND;
	while (p.pos < args.count) {
		size_t before = p.pos;

		root.kids = realloc(root.kids, (root.nkids + 1) * sizeof(*root.kids));
		FUZZ_CHECK(root.kids != NULL);
		memset(&root.kids[root.nkids], 0, sizeof(*root.kids));
		if (imap_skey_parse(&p, &root.kids[root.nkids++], 0) < 0) {
			failed = 1;
			break;
		}
		/* Every key consumes at least one argument. */
		FUZZ_CHECK(p.pos > before && p.pos <= args.count);
	}
	if (!failed && root.nkids > 0) {
		FUZZ_CHECK(check_tree(&root, p.level) <= IMAP_SEARCH_DEPTH_MAX + 2);
		fuzz_match(&root, &view);
	}
	imap_skey_free(&root);
out:
	imap_args_free(&args);
	imap_view_save(&s, NULL, 0);
	return 0;
}
