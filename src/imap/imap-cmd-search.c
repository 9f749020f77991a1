/* imap-cmd-search.c — SEARCH and UID SEARCH: every RFC 3501 key, MODSEQ
 * (RFC 7162), charsets UTF-8 and US-ASCII; ESEARCH results (RFC 4731:
 * RETURN (MIN MAX COUNT ALL), and always after ENABLE IMAP4rev2) and
 * SEARCHRES (RFC 5182: RETURN (SAVE), "$").
 *
 * Trust boundary: keys are parsed into a tree bounded in depth. What is
 * opened depends on the keys: flags, sizes, dates and sets use the index
 * only; header keys open the sealed metadata part (which holds the header);
 * BODY and TEXT decrypt the message. Plaintext is kept for one message at
 * a time and wiped; long searches run in slices. */
#include "imap/imap-search.h"

#include "crypto/seal.h"
#include "mime/mime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define IMAP_SEARCH_DEPTH_MAX 64
#define IMAP_SEARCH_BATCH     64

enum imap_sk {
	SK_ALL,
	SK_NONE,
	SK_AND,
	SK_OR,
	SK_NOT,
	SK_FLAG,
	SK_UNFLAG,
	SK_KEYWORD,
	SK_UNKEYWORD,
	SK_SEQ,
	SK_UID,
	SK_LARGER,
	SK_SMALLER,
	SK_BEFORE,
	SK_ON,
	SK_SINCE,
	SK_SENTBEFORE,
	SK_SENTON,
	SK_SENTSINCE,
	SK_HEADER,
	SK_BODY,
	SK_TEXT,
	SK_MODSEQ,
};

struct imap_skey {
	enum imap_sk type;
	uint32_t flag;
	char *name, *value; /* value case-folded */
	uint64_t num;
	int64_t day;
	struct imap_seqset set;
	struct imap_skey *kids;
	size_t nkids;
};

/* ESEARCH RETURN options (RFC 4731). */
#define IMAP_RET_MIN   (1u << 0)
#define IMAP_RET_MAX   (1u << 1)
#define IMAP_RET_ALL   (1u << 2)
#define IMAP_RET_COUNT (1u << 3)
#define IMAP_RET_SAVE  (1u << 4) /* SEARCHRES (RFC 5182) */

struct imap_search {
	struct imap_skey root;
	int level; /* 0 index, 1 header, 2 body */
	int modseq;
	int esearch;  /* answer with ESEARCH */
	unsigned ret; /* IMAP_RET_* */
	size_t pos;
	uint32_t *hits;
	size_t nhits;
	uint64_t max_modseq;
	struct buf metas[IMAP_SEARCH_BATCH];
	size_t batch_start, batch_len;
	size_t idx[IMAP_SEARCH_BATCH];
	struct seal_reader *reader; /* kept from one body to the next */
	char error[160];            /* of a pool job, logged on the loop */
};

static void imap_skey_free(struct imap_skey *k)
{
	free(k->name);
	if (k->value != NULL)
		mem_wipe(k->value, strlen(k->value));
	free(k->value);
	imap_seqset_free(&k->set);
	for (size_t i = 0; i < k->nkids; i++)
		imap_skey_free(&k->kids[i]);
	free(k->kids);
}

static int imap_search_day(const char *s, int64_t *day_r)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	char mon[4];
	int d, y, n = 0;
	const char *m;
	struct tm tm;

	if (s == NULL || sscanf(s, "%2d-%3[A-Za-z]-%4d%n", &d, mon, &y, &n) != 3 || s[n] != '\0')
		return -1;
	str_lower(mon);
	m = strstr(months, mon);
	if (m == NULL || (m - months) % 3 != 0 || d < 1 || d > 31 || y < 1900)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_mday = d;
	tm.tm_mon = (int)((m - months) / 3);
	tm.tm_year = y - 1900;
	*day_r = (int64_t)timegm(&tm) / 86400;
	return 0;
}

struct imap_sparse {
	struct imap_session *s;
	struct imap_args *args;
	size_t pos;
	int level, modseq;
	const char *error;
};

static int imap_skey_parse(struct imap_sparse *p, struct imap_skey *k, unsigned depth);

static const char *imap_sarg(struct imap_sparse *p)
{
	return p->pos < p->args->count ? imap_arg_string(&p->args->list[p->pos++]) : NULL;
}

static int imap_skey_list(struct imap_sparse *p, struct imap_skey *k, const struct imap_arg *list,
			  size_t count, unsigned depth)
{
	struct imap_args sub = {(struct imap_arg *)list, count};
	struct imap_args *saved = p->args;
	size_t saved_pos = p->pos;
	int ret = 0;

	k->type = SK_AND;
	p->args = &sub;
	p->pos = 0;
	while (p->pos < count && ret == 0) {
		k->kids = realloc(k->kids, (k->nkids + 1) * sizeof(*k->kids));
		if (k->kids == NULL)
			log_fatal("out of memory");
		memset(&k->kids[k->nkids], 0, sizeof(*k->kids));
		ret = imap_skey_parse(p, &k->kids[k->nkids++], depth + 1);
	}
	p->args = saved;
	p->pos = saved_pos;
	return ret;
}

static const struct {
	const char *name;
	enum imap_sk type;
	uint32_t flag;
} imap_skeys_flag[] = {
    {"ANSWERED", SK_FLAG, STORE_FLAG_ANSWERED},
    {"DELETED", SK_FLAG, STORE_FLAG_DELETED},
    {"DRAFT", SK_FLAG, STORE_FLAG_DRAFT},
    {"FLAGGED", SK_FLAG, STORE_FLAG_FLAGGED},
    {"SEEN", SK_FLAG, STORE_FLAG_SEEN},
    {"UNANSWERED", SK_UNFLAG, STORE_FLAG_ANSWERED},
    {"UNDELETED", SK_UNFLAG, STORE_FLAG_DELETED},
    {"UNDRAFT", SK_UNFLAG, STORE_FLAG_DRAFT},
    {"UNFLAGGED", SK_UNFLAG, STORE_FLAG_FLAGGED},
    {"UNSEEN", SK_UNFLAG, STORE_FLAG_SEEN},
    {"ALL", SK_ALL, 0},
    {"OLD", SK_ALL, 0},
    {"NEW", SK_NONE, 0},
    {"RECENT", SK_NONE, 0},
};

static const struct {
	const char *name;
	enum imap_sk type;
} imap_skeys_date[] = {
    {"BEFORE", SK_BEFORE},         {"ON", SK_ON},         {"SINCE", SK_SINCE},
    {"SENTBEFORE", SK_SENTBEFORE}, {"SENTON", SK_SENTON}, {"SENTSINCE", SK_SENTSINCE},
};

static int imap_skey_text(struct imap_sparse *p, struct imap_skey *k, enum imap_sk type,
			  const char *name, int level)
{
	const char *v = imap_sarg(p);

	if (v == NULL)
		return -1;
	k->type = type;
	k->name = name != NULL ? xstrdup(name) : NULL;
	k->value = imap_search_fold(v, strlen(v));
	if (level > p->level)
		p->level = level;
	return 0;
}

static int imap_skey_parse(struct imap_sparse *p, struct imap_skey *k, unsigned depth)
{
	const struct imap_arg *a;
	const char *w, *v;
	char *end;

	if (depth > IMAP_SEARCH_DEPTH_MAX || p->pos >= p->args->count)
		return -1;
	a = &p->args->list[p->pos];
	if (a->type == IMAP_ARG_LIST) {
		p->pos++;
		return a->count == 0 ? -1 : imap_skey_list(p, k, a->list, a->count, depth);
	}
	if ((w = imap_sarg(p)) == NULL)
		return -1;
	for (size_t i = 0; i < N_ELEMENTS(imap_skeys_flag); i++) {
		if (strcasecmp(w, imap_skeys_flag[i].name) == 0) {
			k->type = imap_skeys_flag[i].type;
			k->flag = imap_skeys_flag[i].flag;
			return 0;
		}
	}
	for (size_t i = 0; i < N_ELEMENTS(imap_skeys_date); i++) {
		if (strcasecmp(w, imap_skeys_date[i].name) == 0) {
			k->type = imap_skeys_date[i].type;
			if (k->type >= SK_SENTBEFORE && p->level < 1)
				p->level = 1;
			return imap_search_day(imap_sarg(p), &k->day);
		}
	}
	if (strcasecmp(w, "NOT") == 0 || strcasecmp(w, "OR") == 0) {
		size_t n = w[0] == 'N' || w[0] == 'n' ? 1 : 2;

		k->type = n == 1 ? SK_NOT : SK_OR;
		k->kids = xcalloc(n, sizeof(*k->kids));
		k->nkids = n;
		for (size_t i = 0; i < n; i++)
			if (imap_skey_parse(p, &k->kids[i], depth + 1) < 0)
				return -1;
		return 0;
	}
	if (strcasecmp(w, "KEYWORD") == 0 || strcasecmp(w, "UNKEYWORD") == 0) {
		k->type = w[0] == 'K' || w[0] == 'k' ? SK_KEYWORD : SK_UNKEYWORD;
		v = imap_sarg(p);
		k->name = v != NULL ? xstrdup(v) : NULL;
		return v != NULL ? 0 : -1;
	}
	if (strcasecmp(w, "LARGER") == 0 || strcasecmp(w, "SMALLER") == 0 ||
	    strcasecmp(w, "MODSEQ") == 0) {
		k->type = w[0] == 'L' || w[0] == 'l'   ? SK_LARGER
			  : w[0] == 'S' || w[0] == 's' ? SK_SMALLER
						       : SK_MODSEQ;
		if (k->type == SK_MODSEQ) {
			p->modseq = 1;
			/* Optional entry name and type (RFC 7162 3.1.5). */
			if (p->pos + 2 < p->args->count &&
			    p->args->list[p->pos].type == IMAP_ARG_STRING)
				p->pos += 2;
		}
		v = imap_sarg(p);
		if (v == NULL || v[0] < '0' || v[0] > '9')
			return -1;
		k->num = strtoull(v, &end, 10);
		return *end == '\0' ? 0 : -1;
	}
	if (strcasecmp(w, "UID") == 0) {
		k->type = SK_UID;
		v = imap_sarg(p);
		if (v == NULL)
			return -1;
		if (strcmp(v, "$") == 0) {
			imap_view_saved_set(p->s, 1, &k->set);
			return 0;
		}
		return imap_seqset_parse(
		    v, p->s->view->count ? p->s->view->msgs[p->s->view->count - 1].uid : 1, &k->set,
		    &p->error);
	}
	if (strcasecmp(w, "FROM") == 0 || strcasecmp(w, "TO") == 0 || strcasecmp(w, "CC") == 0 ||
	    strcasecmp(w, "BCC") == 0 || strcasecmp(w, "SUBJECT") == 0)
		return imap_skey_text(p, k, SK_HEADER, w, 1);
	if (strcasecmp(w, "HEADER") == 0) {
		v = imap_sarg(p);
		return v == NULL ? -1 : imap_skey_text(p, k, SK_HEADER, v, 1);
	}
	if (strcasecmp(w, "BODY") == 0)
		return imap_skey_text(p, k, SK_BODY, NULL, 2);
	if (strcasecmp(w, "TEXT") == 0)
		return imap_skey_text(p, k, SK_TEXT, NULL, 2);
	/* A sequence set. */
	k->type = SK_SEQ;
	if (strcmp(w, "$") == 0) {
		imap_view_saved_set(p->s, 0, &k->set);
		return 0;
	}
	if (imap_seqset_parse(w, (uint32_t)p->s->view->count, &k->set, &p->error) < 0) {
		if (p->s->view->count == 0 && strchr(w, '*') != NULL) {
			k->type = SK_NONE;
			return 0;
		}
		return -1;
	}
	return 0;
}

/* ---- evaluation ----------------------------------------------------------- */

struct imap_seval {
	const struct imap_msg *m;
	uint32_t seq;
	const uint8_t *hdr;
	size_t hdr_len;
	const uint8_t *body;
	size_t body_len;
	char *body_text;   /* lazily, folded */
	char *all_headers; /* lazily, folded */
};

static int imap_skey_match(const struct imap_skey *k, struct imap_seval *e)
{
	int64_t day = e->m->internal_date / 86400, t;
	int present, r;
	char *text;

	switch (k->type) {
	case SK_ALL:
		return 1;
	case SK_NONE:
		return 0;
	case SK_AND:
		for (size_t i = 0; i < k->nkids; i++)
			if (!imap_skey_match(&k->kids[i], e))
				return 0;
		return 1;
	case SK_OR:
		return imap_skey_match(&k->kids[0], e) || imap_skey_match(&k->kids[1], e);
	case SK_NOT:
		return !imap_skey_match(&k->kids[0], e);
	case SK_FLAG:
		return (e->m->flags & k->flag) != 0;
	case SK_UNFLAG:
		return (e->m->flags & k->flag) == 0;
	case SK_KEYWORD:
		return store_keywords_has(e->m->keywords, k->name, strlen(k->name));
	case SK_UNKEYWORD:
		return !store_keywords_has(e->m->keywords, k->name, strlen(k->name));
	case SK_SEQ:
		return imap_seqset_contains(&k->set, e->seq);
	case SK_UID:
		return imap_seqset_contains(&k->set, e->m->uid);
	case SK_LARGER:
		return e->m->size > k->num;
	case SK_SMALLER:
		return e->m->size < k->num;
	case SK_MODSEQ:
		return e->m->modseq >= k->num;
	case SK_BEFORE:
		return day < k->day;
	case SK_ON:
		return day == k->day;
	case SK_SINCE:
		return day >= k->day;
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		if (imap_search_date_header(e->hdr, e->hdr_len, &t) < 0)
			return 0;
		day = t / 86400;
		return k->type == SK_SENTBEFORE ? day < k->day
		       : k->type == SK_SENTON   ? day == k->day
						: day >= k->day;
	case SK_HEADER:
		text = imap_search_header_text(e->hdr, e->hdr_len, k->name, &present);
		r = present && strstr(text, k->value) != NULL;
		mem_wipe(text, strlen(text));
		free(text);
		return r;
	case SK_TEXT:
		if (e->all_headers == NULL)
			e->all_headers =
			    imap_search_header_text(e->hdr, e->hdr_len, NULL, &present);
		if (strstr(e->all_headers, k->value) != NULL)
			return 1;
		/* fall through */
	case SK_BODY:
		if (e->body_text == NULL)
			e->body_text = imap_search_body_text(e->body, e->body_len);
		return strstr(e->body_text, k->value) != NULL;
	}
	return 0;
}

static void imap_search_free(struct imap_search *q)
{
	imap_skey_free(&q->root);
	for (size_t i = 0; i < IMAP_SEARCH_BATCH; i++)
		buf_free(&q->metas[i]);
	seal_reader_free(&q->reader);
	free(q->hits);
	free(q);
}

static int imap_search_meta_cb(void *ctx, size_t index, const struct store_message *m)
{
	struct imap_search *q = ctx;

	for (size_t k = 0; k < q->batch_len; k++) {
		if (q->idx[k] == index) {
			buf_reset(&q->metas[k]);
			if (buf_append(&q->metas[k], m->meta.data, m->meta.len) < 0)
				log_fatal("out of memory");
		}
	}
	return 0;
}

/* Decides K from the index alone (flags, sizes, dates, UIDs, modseqs):
 * 1 or 0, or -1 when the answer needs the message's headers or body. */
static int imap_skey_index(const struct imap_skey *k, struct imap_seval *e)
{
	int a, b, unknown = 0;

	switch (k->type) {
	case SK_HEADER:
	case SK_BODY:
	case SK_TEXT:
	case SK_SENTBEFORE:
	case SK_SENTON:
	case SK_SENTSINCE:
		return -1;
	case SK_AND:
		for (size_t i = 0; i < k->nkids; i++) {
			a = imap_skey_index(&k->kids[i], e);
			if (a == 0)
				return 0;
			unknown |= a < 0;
		}
		return unknown ? -1 : 1;
	case SK_OR:
		a = imap_skey_index(&k->kids[0], e);
		if (a == 1)
			return 1;
		b = imap_skey_index(&k->kids[1], e);
		if (b == 1)
			return 1;
		return a == 0 && b == 0 ? 0 : -1;
	case SK_NOT:
		a = imap_skey_index(&k->kids[0], e);
		return a < 0 ? -1 : !a;
	default:
		return imap_skey_match(k, e);
	}
}

static void imap_search_hit(struct imap_session *s, struct imap_search *q, const struct imap_msg *m,
			    uint32_t seq)
{
	q->hits[q->nhits++] = s->uid_cmd ? m->uid : seq;
	if (m->modseq > q->max_modseq)
		q->max_modseq = m->modseq;
}

static void imap_search_one(struct imap_session *s, struct imap_search *q, size_t k)
{
	const struct imap_msg *m = &s->view->msgs[q->idx[k]];
	struct imap_plain *body = NULL;
	struct imap_seval e;
	struct buf meta;
	const char *error;

	memset(&e, 0, sizeof(e));
	buf_init(&meta);
	e.m = m;
	e.seq = (uint32_t)q->idx[k] + 1;
	e.hdr = (const uint8_t *)"";
	e.body = (const uint8_t *)"";
	/* Nothing is opened for a message the index alone decides. */
	switch (imap_skey_index(&q->root, &e)) {
	case 1:
		imap_search_hit(s, q, m, e.seq);
		/* fall through */
	case 0:
		return;
	}
	if (q->level >= 1 && q->metas[k].len > 0 &&
	    imap_msg_meta(s, &q->metas[k], &meta, &error) == 0 &&
	    mime_meta_get(meta.data, meta.len, MIME_FIELD_HEADER, &e.hdr, &e.hdr_len) != 1)
		e.hdr = (const uint8_t *)"";
	if (q->level >= 2 && imap_msg_plain(s, m, &q->reader, &body, &error) == 0) {
		e.body = body->data;
		e.body_len = body->len;
	}
	if (imap_skey_match(&q->root, &e))
		imap_search_hit(s, q, m, e.seq);
	if (e.body_text != NULL)
		mem_wipe(e.body_text, strlen(e.body_text));
	if (e.all_headers != NULL)
		mem_wipe(e.all_headers, strlen(e.all_headers));
	free(e.body_text);
	free(e.all_headers);
	buf_free(&meta);
	imap_plain_unref(&body);
}

/* The next batch of messages, their sealed metadata when the keys need
 * it, and each one decided. On a pool thread when anything is opened: it
 * reads the view (unchanged during a command) and writes only Q. */
static void imap_search_batch(struct imap_session *s, struct imap_search *q)
{
	const char *error;

	q->batch_len = 0;
	while (q->batch_len < IMAP_SEARCH_BATCH && q->pos < s->view->count)
		q->idx[q->batch_len++] = q->pos++;
	if (q->level >= 1) {
		for (size_t k = 0; k < q->batch_len; k++)
			buf_reset(&q->metas[k]);
		if (imap_msg_scan_meta(s, q->idx, q->batch_len, imap_search_meta_cb, q, &error) < 0)
			if (q->error[0] == '\0')
				snprintf(q->error, sizeof(q->error), "%s", error);
	}
	for (size_t k = 0; k < q->batch_len; k++)
		imap_search_one(s, q, k);
}

static void imap_search_cont(struct imap_session *s);

/* Batches for about IMAP_SLICE_US, so that jobs of other sessions (and
 * logins) get a turn on the pool. */
static void imap_search_job(void *ctx)
{
	struct imap_session *s = ctx;
	struct imap_search *q = s->cont_ctx;
	int64_t start = time_now_us();

	do
		imap_search_batch(s, q);
	while (q->pos < s->view->count && time_now_us() - start <= IMAP_SLICE_US);
}

static void imap_search_job_done(struct imap_session *s, void *ctx)
{
	struct imap_search *q = s->cont_ctx;

	if (!s->dead && q->error[0] != '\0')
		imap_session_log(s, LOG_ERROR, "search: %s", q->error);
	q->error[0] = '\0';
	imap_search_cont(s);
}

/* "* ESEARCH (TAG "t") UID MIN 1 MAX 9 COUNT 4 ALL 1:3,9 MODSEQ 7"; the
 * hits are in ascending order. MIN, MAX and ALL are left out when nothing
 * matched (RFC 4731 3.1). */
static void imap_esearch_reply(struct imap_session *s, const struct imap_search *q)
{
	struct buf line;
	int ret = 0;

	buf_init(&line);
	ret |= buf_printf(&line, "* ESEARCH (TAG \"%s\")%s", s->tag, s->uid_cmd ? " UID" : "");
	if (q->nhits > 0 && (q->ret & IMAP_RET_MIN))
		ret |= buf_printf(&line, " MIN %u", q->hits[0]);
	if (q->nhits > 0 && (q->ret & IMAP_RET_MAX))
		ret |= buf_printf(&line, " MAX %u", q->hits[q->nhits - 1]);
	if (q->ret & IMAP_RET_COUNT)
		ret |= buf_printf(&line, " COUNT %zu", q->nhits);
	if (q->nhits > 0 && (q->ret & IMAP_RET_ALL)) {
		ret |= buf_append_str(&line, " ALL ");
		ret |= imap_seqset_format(q->hits, q->nhits, &line);
	}
	if (q->modseq && q->nhits > 0)
		ret |= buf_printf(&line, " MODSEQ %llu", (unsigned long long)q->max_modseq);
	if (ret != 0)
		log_fatal("out of memory");
	imap_reply(s, "%s", buf_cstr(&line));
	buf_free(&line);
}

/* RFC 5182 2.1: SAVE keeps the result as UIDs; with MIN and/or MAX but
 * neither ALL nor COUNT, only those. */
static void imap_search_save(struct imap_session *s, const struct imap_search *q)
{
	uint32_t *uids = xcalloc(q->nhits ? q->nhits : 1, sizeof(*uids));
	size_t n = 0;
	int only =
	    (q->ret & (IMAP_RET_MIN | IMAP_RET_MAX)) && !(q->ret & (IMAP_RET_ALL | IMAP_RET_COUNT));

	for (size_t i = 0; i < q->nhits; i++) {
		if (only && !((i == 0 && (q->ret & IMAP_RET_MIN)) ||
			      (i == q->nhits - 1 && (q->ret & IMAP_RET_MAX))))
			continue;
		uids[n++] = s->uid_cmd ? q->hits[i] : s->view->msgs[q->hits[i] - 1].uid;
	}
	imap_view_save(s, uids, n);
	free(uids);
}

/* "RETURN (opts)" at the start of the arguments: 1 parsed (POS advanced),
 * 0 absent, -1 invalid. */
static int imap_search_return(const struct imap_args *args, size_t *pos, unsigned *ret_r)
{
	static const struct {
		const char *name;
		unsigned bit;
	} opts[] = {{"MIN", IMAP_RET_MIN},
		    {"MAX", IMAP_RET_MAX},
		    {"ALL", IMAP_RET_ALL},
		    {"COUNT", IMAP_RET_COUNT},
		    {"SAVE", IMAP_RET_SAVE}};
	const struct imap_arg *list;

	*ret_r = 0;
	if (*pos >= args->count || !imap_arg_is_atom(&args->list[*pos], "RETURN"))
		return 0;
	if (*pos + 1 >= args->count || args->list[*pos + 1].type != IMAP_ARG_LIST)
		return -1;
	list = &args->list[*pos + 1];
	for (size_t i = 0; i < list->count; i++) {
		size_t j;

		for (j = 0; j < N_ELEMENTS(opts); j++)
			if (imap_arg_is_atom(&list->list[i], opts[j].name))
				break;
		if (j == N_ELEMENTS(opts))
			return -1;
		*ret_r |= opts[j].bit;
	}
	/* "RETURN ()" is "RETURN (ALL)". */
	if (*ret_r == 0)
		*ret_r = IMAP_RET_ALL;
	*pos += 2;
	return 1;
}

/* Keys the index decides run on the loop at once; keys that open headers
 * or bodies run on the worker pool, off the loop. */
static void imap_search_cont(struct imap_session *s)
{
	struct imap_search *q = s->cont_ctx;
	const struct imap_view *v = s->view;

	if (s->dead) {
		s->cont_ctx = NULL;
		imap_search_free(q);
		return;
	}
	if (q->pos < v->count && q->level >= 1) {
		imap_session_job(s, imap_search_job, imap_search_job_done, s);
		return;
	}
	while (q->pos < v->count)
		imap_search_batch(s, q);
	if (q->ret & IMAP_RET_SAVE)
		imap_search_save(s, q);
	if (q->esearch) {
		/* SAVE alone: no ESEARCH response (RFC 5182 2.1). */
		if (q->ret != IMAP_RET_SAVE)
			imap_esearch_reply(s, q);
	} else {
		struct buf line;

		buf_init(&line);
		if (buf_append_str(&line, "* SEARCH") < 0)
			log_fatal("out of memory");
		for (size_t i = 0; i < q->nhits; i++)
			if (buf_printf(&line, " %u", q->hits[i]) < 0)
				log_fatal("out of memory");
		if (q->modseq && q->nhits > 0 &&
		    buf_printf(&line, " (MODSEQ %llu)", (unsigned long long)q->max_modseq) < 0)
			log_fatal("out of memory");
		imap_reply(s, "%s", buf_cstr(&line));
		buf_free(&line);
	}
	s->cont_ctx = NULL;
	imap_search_free(q);
	imap_cmd_finish(s, "OK", "SEARCH completed");
}

void imap_cmd_search(struct imap_session *s, struct imap_args *args)
{
	struct imap_sparse p = {s, args, 0, 0, 0, NULL};
	struct imap_search *q;
	unsigned ret;
	int esearch;

	esearch = imap_search_return(args, &p.pos, &ret);
	if (esearch < 0) {
		imap_cmd_finish(s, "BAD", "Usage: SEARCH RETURN ([MIN] [MAX] [COUNT] [ALL]) keys");
		return;
	}
	if (s->rev2 && !esearch) {
		/* IMAP4rev2: SEARCH is answered with ESEARCH, ALL by default. */
		esearch = 1;
		ret = IMAP_RET_ALL;
	}
	if (args->count >= p.pos + 2 && imap_arg_is_atom(&args->list[p.pos], "CHARSET")) {
		const char *cs = imap_arg_string(&args->list[p.pos + 1]);

		if (cs == NULL ||
		    (strcasecmp(cs, "UTF-8") != 0 && strcasecmp(cs, "US-ASCII") != 0)) {
			imap_cmd_finish(s, "NO",
					"[BADCHARSET (UTF-8 US-ASCII)] Unsupported charset");
			return;
		}
		p.pos += 2;
	}
	if (p.pos >= args->count) {
		imap_cmd_finish(s, "BAD", "Missing search keys");
		return;
	}
	q = xcalloc(1, sizeof(*q));
	q->root.type = SK_AND;
	while (p.pos < args->count) {
		struct imap_skey *kids = realloc(q->root.kids, (q->root.nkids + 1) * sizeof(*kids));

		if (kids == NULL)
			log_fatal("out of memory");
		q->root.kids = kids;
		memset(&kids[q->root.nkids], 0, sizeof(*kids));
		if (imap_skey_parse(&p, &kids[q->root.nkids++], 0) < 0) {
			if (ret & IMAP_RET_SAVE)
				imap_view_save(s, NULL, 0); /* RFC 5182 2.1 */
			imap_search_free(q);
			imap_cmd_finish(s, "BAD", "Invalid search key");
			return;
		}
	}
	q->level = p.level;
	q->modseq = p.modseq;
	q->esearch = esearch;
	q->ret = ret;
	q->hits = xcalloc(s->view->count + 1, sizeof(*q->hits));
	s->cont_ctx = q;
	imap_search_cont(s);
}
