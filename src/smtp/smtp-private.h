/* smtp-private.h — the session and server structures shared by the files of smtp/.
 *
 * Trust boundary: as smtp.h. Sessions live on the event-loop thread only;
 * the one thing another thread touches is a session's struct smtp_commit,
 * written by the store thread before it activates the commit event. */
#ifndef SEALMAIL_SMTP_PRIVATE_H
#define SEALMAIL_SMTP_PRIVATE_H

#include "net/net.h"
#include "region/region.h"
#include "smtp/smtp.h"

#define SMTP_ID_BYTES           13    /* 12 hex digits + NUL */
#define SMTP_PULLUP_BYTES       65536 /* input made contiguous at once, at most */
#define SMTP_BODY_INITIAL_BYTES 65536 /* message buffer without SIZE=; doubles */
#define SMTP_HEADER_ROOM_BYTES  4096  /* Return-Path + Received, on top of SIZE */
#define SMTP_OUTPUT_HIGH_BYTES  65536 /* unsent replies before commands wait */

/* Every transition goes through smtp_session_enter_state(). */
enum smtp_state {
	SMTP_STATE_INIT,   /* greeted (or after STARTTLS); waiting for EHLO/HELO */
	SMTP_STATE_HELO,   /* identified; no transaction */
	SMTP_STATE_MAIL,   /* MAIL accepted; waiting for RCPT */
	SMTP_STATE_RCPT,   /* at least one recipient accepted */
	SMTP_STATE_DATA,   /* receiving a DATA body */
	SMTP_STATE_BDAT,   /* receiving the bytes of a BDAT chunk */
	SMTP_STATE_CHUNK,  /* between BDAT chunks (after one without LAST) */
	SMTP_STATE_COMMIT, /* message complete; waiting until it is durable */
	SMTP_STATE_TLS,    /* STARTTLS handshake in progress */
	SMTP_STATE_QUIT,   /* last reply written; closing */
	SMTP_STATE_COUNT
};

#define SMTP_STATE_BIT(st) (1u << (st))

#define SMTP_LOOKUP_THREADS 2

/* A recipient lookup, run on a worker thread: the worker fills in ACCT,
 * RESULT and ERROR, then activates EV; the loop reads them afterwards. */
struct smtp_lookup {
	struct event *ev;
	struct router *router;
	struct smtp_path path;
	struct account *acct;
	int result; /* router_account_find: 1 found, 0 unknown, -1 error */
	char error[160];
};

/* Filled in on a store thread, then read on the loop after the event fires. */
struct smtp_commit {
	struct event *ev;
	int result;
	char error[160];
	struct event *sealed_ev; /* a held-back DATA may go on (delivery_set_pacing) */
};

struct smtp_server {
	struct event_base *base;
	const struct config *cfg;
	struct router *router;
	struct net_tls *tls;
	struct pool *lookups; /* workers for recipient lookups */
	struct smtp_session *sessions;
	unsigned session_count;
	uint8_t id_prefix[2];
	uint32_t id_counter;

	int draining;
	struct event *grace_timer;
	struct event *done_event;
	void (*drained)(void *ctx);
	void *drained_ctx;
};

struct smtp_session {
	struct smtp_session *prev, *next;
	struct smtp_server *server;
	struct net_conn *conn;
	char id[SMTP_ID_BYTES];
	char peer[NET_ADDR_MAX];
	int peer_v6;
	enum smtp_state state;
	struct buf line;
	unsigned errors;
	unsigned transactions;
	char helo[SMTP_DOMAIN_MAX + 1];
	unsigned int esmtp : 1;
	unsigned int waiting : 1;        /* input suspended (lookup, delay) */
	unsigned int lookup_pending : 1; /* a worker holds s->lookup */
	unsigned int conn_lost : 1;      /* client gone while a lookup or commit runs */
	unsigned int in_input : 1;       /* inside smtp_session_input */
	unsigned int output_full : 1;    /* replies pile up: wait for them to drain */
	unsigned int rate_held : 1;      /* s->line waits for the command rate limit */

	/* [smtp] max_commands_per_second: theoretical arrival time of the next
	 * command, and commands held back in a row. */
	int64_t rate_tat_us;
	unsigned rate_strikes;

	/* Recipient lookup and unknown-recipient delay (made on first use). */
	struct smtp_lookup *lookup;
	struct event *delay_timer;
	const char *delayed_reply;

	/* The transaction. */
	struct smtp_mail_params mail;
	struct account **rcpts;
	size_t rcpt_count;
	struct smtp_path first_rcpt; /* for "for <...>" in Received */
	struct delivery *delivery;
	uint64_t received; /* message bytes so far (after unstuffing) */
	struct smtp_dot_decoder dot;
	struct buf *body;       /* the delivery's message buffer; NULL: none */
	int sealing_wait;       /* input paused until the delivery seals more */
	const char *fail_reply; /* set: the message will be refused */
	uint64_t chunk_left;    /* BDAT bytes still to read */
	int chunk_last;
	int chunk_discard;       /* BDAT chunk is read only to be dropped */
	const char *chunk_reply; /* reply after a discarded chunk */
	struct smtp_commit *commit;
};

/* smtp-server.c: life cycle */
void smtp_session_create(struct smtp_server *server, struct net_conn *conn);
void smtp_session_free(struct smtp_session **s);
/* Called by drain: close now if idle; TEMPFAIL also ends transactions. */
void smtp_session_shutdown(struct smtp_session *s, int tempfail);

/* smtp-session.c: the state machine */
void smtp_session_enter_state(struct smtp_session *s, enum smtp_state state);
/* Processes buffered input until it runs out or the session waits. */
void smtp_session_input(struct smtp_session *s);
void smtp_session_reply(struct smtp_session *s, const char *fmt, ...) PRINTF_LIKE(2, 3);
/* A reply that counts as a client error; past [smtp] max_errors the session
 * is closed with 421. */
void smtp_session_reply_error(struct smtp_session *s, const char *reply);
void smtp_session_close(struct smtp_session *s, const char *reply);
/* Forgets the transaction (aborting a delivery that is not committing). */
void smtp_session_reset(struct smtp_session *s);
/* Ends the transaction and returns to HELO (or closes when draining). */
void smtp_session_transaction_done(struct smtp_session *s);
void smtp_session_log(const struct smtp_session *s, enum log_level level, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
const char *smtp_state_name(enum smtp_state state);
/* The lookup event fired on the loop. */
void smtp_session_lookup_done(evutil_socket_t fd, short what, void *arg);

/* smtp-data.c */
/* Starts the delivery (DATA or the first BDAT): 0, or -1 with a reply. */
int smtp_data_begin(struct smtp_session *s, const char **reply_r);
/* Reads DATA / BDAT bytes from the connection; returns when input runs out
 * or the message (or chunk) is complete and answered or committing. */
void smtp_data_input(struct smtp_session *s);
/* BDAT SIZE [LAST] was accepted in the current state: read its bytes. */
void smtp_data_bdat(struct smtp_session *s, uint64_t size, int last, const char *discard_reply);
/* The commit event fired on the loop. */
void smtp_data_commit_done(evutil_socket_t fd, short what, void *arg);
/* The delivery sealed enough of a held-back message: reading goes on. */
void smtp_data_sealed(evutil_socket_t fd, short what, void *arg);

#endif
