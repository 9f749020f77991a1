/* daemon-main.c — the serve loop: start-up, signals, graceful stop.
 *
 * Trust boundary: runs with the operator's privileges until the listeners
 * are bound and the TLS key is read, then (as root with [server] user set)
 * drops to that user before opening any store. The process is never
 * dumpable and writes no core file (daemon_no_dumps). Signals are handled on the
 * event loop, never in a signal handler: SIGTERM and SIGINT stop accepting
 * and drain every service ([smtp] shutdown_grace), SIGHUP reloads the TLS
 * certificate and key. Nothing on the loop thread blocks on disk syncs or
 * slow crypto: the store does its syncs on its own threads. */
#include "daemon/daemon-private.h"
#include "crypto/seal.h"
#include "net/net.h"
#include "region/region.h"

#include <errno.h>
#include <event2/thread.h>
#include <grp.h>
#include <malloc.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static const struct daemon_service *const daemon_services[] = {
    &daemon_smtp_service,
    &daemon_imap_service,
    &daemon_legal_service,
};

#define DAEMON_SIGNALS        3
#define DAEMON_MMAP_THRESHOLD (32 * 1024 * 1024)
/* Locked memory for unlocked account keys (a few pages each). */
#define DAEMON_MEMLOCK_BYTES (64u * 1024 * 1024)
static const int daemon_signals[DAEMON_SIGNALS] = {SIGTERM, SIGINT, SIGHUP};

static void daemon_set_log_level(const char *level)
{
	if (strcasecmp(level, "debug") == 0)
		log_set_level(LOG_DEBUG);
	else if (strcasecmp(level, "warn") == 0 || strcasecmp(level, "warning") == 0)
		log_set_level(LOG_WARN);
	else if (strcasecmp(level, "error") == 0)
		log_set_level(LOG_ERROR);
	else
		log_set_level(LOG_INFO);
}

/* No certificate at all is not an error (STARTTLS is then not offered); a
 * certificate that is there but unusable is. */
static int daemon_tls_open(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->cfg;

	if (cfg->tls_cert[0] == '\0' || access(cfg->tls_cert, F_OK) < 0) {
		log_warn("tls: no certificate at '%s': STARTTLS disabled", cfg->tls_cert);
		return 0;
	}
	return net_tls_create(cfg->tls_cert, cfg->tls_key, &d->tls, error_r);
}

/* Unlocked account keys live in this process (sodium_malloc: locked and
 * excluded from core dumps). Also refuse core files and ptrace by other
 * processes of the same user, which would expose the rest of the heap
 * (passwords in flight, opened messages), unless [server] core_dumps asks
 * for them to debug. Called at start and again after setuid(), which resets
 * the dumpable flag. */
static int daemon_no_dumps(const struct config *cfg, const char **error_r)
{
	struct rlimit rl = {0, 0};

	if (cfg->core_dumps != 0) {
		if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) < 0)
			log_warn("cannot make the process dumpable: %s", strerror(errno));
		return 0;
	}
	if (setrlimit(RLIMIT_CORE, &rl) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
		*error_r = str_tfmt("cannot disable core dumps: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Unlocked account keys are in sodium_malloc'd memory, which libsodium
 * mlock()s, silently going without when RLIMIT_MEMLOCK is used up: keys
 * could then reach swap. The limit is raised to DAEMON_MEMLOCK_BYTES while
 * the process may still raise it (as root, before the switch of user; the
 * limit stays with the process), else a warning says how far keys stay
 * locked. */
static void daemon_memlock_limit(void)
{
	struct rlimit rl, want;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= DAEMON_MEMLOCK_BYTES)
		return;
	want.rlim_cur = DAEMON_MEMLOCK_BYTES;
	want.rlim_max = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < DAEMON_MEMLOCK_BYTES
			    ? DAEMON_MEMLOCK_BYTES
			    : rl.rlim_max;
	if (setrlimit(RLIMIT_MEMLOCK, &want) == 0)
		return;
	/* Not root: as far as the hard limit allows. */
	want.rlim_cur = rl.rlim_max;
	want.rlim_max = rl.rlim_max;
	if (rl.rlim_max > rl.rlim_cur && setrlimit(RLIMIT_MEMLOCK, &want) == 0)
		rl.rlim_cur = rl.rlim_max;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < DAEMON_MEMLOCK_BYTES)
		log_warn("RLIMIT_MEMLOCK is %llu kB (below %u kB): account keys beyond it are not "
			 "locked in memory and may be swapped out; raise it (e.g. systemd "
			 "LimitMEMLOCK=)",
			 (unsigned long long)rl.rlim_cur / 1024, DAEMON_MEMLOCK_BYTES / 1024);
}

/* Looked up before anything is bound, so a misspelt user fails the start
   at once instead of after the listeners are open. */
static int daemon_lookup_user(const struct config *cfg, struct passwd **pw_r, const char **error_r)
{
	*pw_r = NULL;
	if (getuid() != 0)
		return 0;
	if (cfg->user == NULL || cfg->user[0] == '\0') {
		log_warn("running as root: set [server] user to drop privileges");
		return 0;
	}
	*pw_r = getpwnam(cfg->user);
	if (*pw_r == NULL) {
		*error_r = str_tfmt("[server] user '%s' does not exist", cfg->user);
		return -1;
	}
	return 0;
}

static int daemon_drop_privileges(const struct passwd *pw, const char **error_r)
{
	if (pw == NULL)
		return 0;
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		*error_r = str_tfmt("cannot switch to user '%s': %s", pw->pw_name, strerror(errno));
		return -1;
	}
	log_info("running as user %s", pw->pw_name);
	return 0;
}

void daemon_service_drained(void *ctx)
{
	struct daemon *d = ctx;

	if (d->draining > 0 && --d->draining == 0)
		event_base_loopexit(d->base, NULL);
}

static void daemon_stop(struct daemon *d, const char *why)
{
	if (d->stopping) {
		log_info("%s: already stopping", why);
		return;
	}
	d->stopping = 1;
	log_info("%s: stopping (no new connections)", why);
	for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
		daemon_services[i]->stop_accepting(d);
	d->draining = N_ELEMENTS(daemon_services);
	for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
		daemon_services[i]->drain(d);
}

static void daemon_reload(struct daemon *d)
{
	const char *error = NULL;

	/* The router keeps no cache that could go stale; certificates do. */
	if (d->tls == NULL) {
		if (daemon_tls_open(d, &error) < 0)
			log_error("SIGHUP: TLS not loaded: %s", error);
		else if (d->tls != NULL)
			log_warn("SIGHUP: certificate found; STARTTLS is offered to new sessions "
				 "after a restart");
		net_tls_free(&d->tls);
		return;
	}
	if (net_tls_reload(d->tls, &error) < 0)
		log_error("SIGHUP: TLS reload failed, keeping the old certificate: %s", error);
	else
		log_info("SIGHUP: TLS certificate and key reloaded");
}

static void daemon_signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	if (sig == SIGHUP)
		daemon_reload(d);
	else
		daemon_stop(d, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void daemon_cleanup(struct daemon *d, struct event **sigs)
{
	for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
		daemon_services[i]->free(d);
	for (size_t i = 0; i < DAEMON_SIGNALS; i++)
		if (sigs[i] != NULL)
			event_free(sigs[i]);
	router_close(&d->router);
	net_tls_free(&d->tls);
	if (d->base != NULL)
		event_base_free(d->base);
}

int daemon_run(const struct config *cfg, const char **error_r)
{
	struct daemon d = {.cfg = cfg};
	struct event *sigs[DAEMON_SIGNALS] = {NULL};
	struct passwd pw_copy, *pw = NULL;
	int ret = -1;

	daemon_set_log_level(cfg->log_level);
	if (daemon_no_dumps(cfg, error_r) < 0 || daemon_lookup_user(cfg, &pw, error_r) < 0)
		return -1;
	if (pw != NULL) {
		/* getpwnam()'s buffer is reused by later lookups (initgroups). */
		pw_copy = *pw;
		pw_copy.pw_name = (char *)cfg->user;
		pw = &pw_copy;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Every message passes through buffers of its own size. Served from
	 * fresh mmap()s, each costs page faults, an munmap() and a TLB shootdown
	 * on the other core; from the heap, the pages are reused. Free memory
	 * above 32 MiB at the heap's top goes back to the system: with 128 MiB
	 * the bench's peak at 64 connections was 159 MB instead of 83 MB, for
	 * no measurable gain in speed. */
	mallopt(M_MMAP_THRESHOLD, DAEMON_MMAP_THRESHOLD);
	mallopt(M_TRIM_THRESHOLD, DAEMON_MMAP_THRESHOLD);
	/* Store threads hand results back with event_active(). */
	if (evthread_use_pthreads() < 0) {
		*error_r = "libevent: no thread support";
		return -1;
	}
	d.base = event_base_new();
	if (d.base == NULL) {
		*error_r = "cannot create the event loop";
		return -1;
	}
	for (size_t i = 0; i < DAEMON_SIGNALS; i++) {
		sigs[i] = evsignal_new(d.base, daemon_signals[i], daemon_signal_cb, &d);
		if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) < 0) {
			*error_r = "cannot install signal handlers";
			goto out;
		}
	}
	if (daemon_tls_open(&d, error_r) < 0)
		goto out;
	for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
		if (daemon_services[i]->listen(&d, error_r) < 0)
			goto out;
	daemon_memlock_limit();
	if (daemon_drop_privileges(pw, error_r) < 0 || daemon_no_dumps(cfg, error_r) < 0)
		goto out;
	if (router_open(cfg, &d.router, error_r) < 0)
		goto out;
	for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
		if (daemon_services[i]->start(&d, error_r) < 0)
			goto out;
	log_info("sealmail started as %s (pid %d; new records sealed with %s)", cfg->hostname,
		 (int)getpid(), seal_record_cipher_name());
	if (event_base_dispatch(d.base) < 0) {
		*error_r = "event loop failed";
		goto out;
	}
	log_info("sealmail stopped");
	ret = 0;
out:
	if (ret < 0 && d.stopping == 0) {
		/* Failed start-up: no session exists yet. */
		for (size_t i = 0; i < N_ELEMENTS(daemon_services); i++)
			daemon_services[i]->stop_accepting(&d);
	}
	daemon_cleanup(&d, sigs);
	return ret;
}
