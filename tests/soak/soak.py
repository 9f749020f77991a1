#!/usr/bin/python3
"""A bounded loopback load test of `sealmail serve`.

For the given time it runs at once: SMTP senders (messages of 1 kB to
about 200 kB, each with a unique token), IMAP sessions that fetch, verify
bodies, change flags and expunge, IMAP sessions in IDLE waiting for new
mail, and a disruptor that drops connections mid-command, mid-literal
(APPEND, synchronising and LITERAL+), mid-DATA and mid-FETCH. The server's
resident memory is sampled every second.

It fails (exit status 1) if the server dies or exits uncleanly, if a body
fetched during the run or exported at the end differs from what was sent,
if an acknowledged message (SMTP 250 or APPEND OK) that was not expunged
on purpose is missing at the end, if anything not acknowledged was stored,
if a worker thread dies (any exception) or the server answers NO or BAD to
a command of an honest client, if fewer than --min-ops-per-second
operations ran or fewer than --min-verified-per-minute messages were
verified at the end, or if memory grows beyond the bound: peak RSS over
--rss-limit-mb, or the median of the last fifth of the samples more than
--growth-mb above the median of the first fifth after warm-up.

Each mailbox is filled to three quarters of --mailbox-cap before the clock
starts, and an expunge in a mailbox past the cap takes its oldest messages
down to that level again: the store keeps about the same size, so the
server's SQLite page caches (up to 16 MB per concurrent mailbox scan) are
full after warm-up and memory that still grows is a leak, not a growing
mailbox.

    tests/soak/soak.py --minutes 10          # long form, on demand
    tests/soak/soak.py --seconds 75          # short form (CI, test_soak.py)

The binary is $SEALMAIL_BIN or bin/sealmail. A JSON summary goes to stdout.
"""
import argparse
import hashlib
import imaplib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import Instance, Server  # noqa: E402

PW = "correct horse"
SENDER = "soak@remote.example"
USERS = ["u%d@example.org" % i for i in range(4)]
REGIONS = ["eu-ie", "us-east"]
TOKEN_RE = re.compile(rb"X-Soak-Token: (s[0-9a-f]{20})")


class Failure(Exception):
    pass


class State:
    def __init__(self, seed):
        self.lock = threading.Lock()
        self.acked = {}        # token -> (user, sha256 of the message as sent)
        self.expunged = set()  # tokens deliberately deleted
        self.ops = {}
        self.errors = []
        self.expunging = {}     # user -> expunges in progress
        self.last_expunge = {}  # user -> when the last one ended
        self.stop = threading.Event()
        self.seed = seed

    def count(self, what, n=1):
        with self.lock:
            self.ops[what] = self.ops.get(what, 0) + n

    def fail(self, msg):
        with self.lock:
            self.errors.append(msg)
        self.stop.set()


def ok(typ, data, what):
    """An honest client's command must succeed: NO is a failure too."""
    if typ != "OK":
        raise Failure("%s: %s %r" % (what, typ, data))
    return data


def fetch_ok(m, state, user, t0, typ, data, what):
    """FETCH may answer NO [EXPUNGEISSUED] for a message another session
    expunged since T0, when this session's view was last brought up to date
    (RFC 2180 4.1.3, RFC 5530); any other NO fails the run."""
    if typ == "NO" and data and data[-1].startswith(b"[EXPUNGEISSUED]"):
        with state.lock:
            busy = state.expunging.get(user, 0) > 0 or state.last_expunge.get(user, 0) >= t0
        if busy:
            state.count("imap_fetch_no_after_expunge")
            # The FETCH responses for the rest of a range stay queued in
            # imaplib after a NO and would come back with the next FETCH.
            m.untagged_responses.pop("FETCH", None)
            return []
    return ok(typ, data, what)


def guarded(fn):
    """A worker whose death, whatever the exception, fails the run."""
    def run(inst, state, rng):
        try:
            fn(inst, state, rng)
        except BaseException as e:  # noqa: B902 - any death is reported
            state.fail("%s died: %r\n%s" % (fn.__name__, e, traceback.format_exc(limit=4)))
    run.__name__ = fn.__name__
    return run


def make_message(rng, user):
    token = "s%020x" % rng.getrandbits(80)
    size = rng.choice([1, 2, 4, 8, 16, 64]) * 1024
    if rng.random() < 0.03:
        size = 200 * 1024
    line = ("%s " % token) * 6 + "\r\n"
    body = (line * (size // len(line) + 1)).encode()
    msg = (("From: Soak <%s>\r\nTo: <%s>\r\nSubject: soak %s\r\nX-Soak-Token: %s\r\n"
            "Message-ID: <%s@remote.example>\r\n\r\n") % (SENDER, user, token, token, token)
           ).encode() + body
    return token, msg


def digest(data):
    return hashlib.sha256(data).hexdigest()


def strip_trace(msg):
    """The message as sent: without the Return-Path and Received fields the
    server prepends to SMTP deliveries."""
    if not msg.startswith(b"Return-Path:"):
        return msg
    lines = msg.split(b"\r\n")
    i = 2
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


def check_body(state, data, where):
    m = TOKEN_RE.search(data)
    if m is None:
        state.fail("%s: a message without a soak token" % where)
        return
    token = m.group(1).decode()
    with state.lock:
        known = state.acked.get(token)
    if known is not None and digest(strip_trace(data)) != known[1]:
        state.fail("%s: message %s differs from what was sent" % (where, token))


# ---- workers --------------------------------------------------------------------


def smtp_sender(inst, state, rng):
    while not state.stop.is_set():
        user = rng.choice(USERS)
        token, msg = make_message(rng, user)
        try:
            with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=60) as s:
                for _ in range(rng.randint(1, 3)):
                    s.sendmail(SENDER, [user], msg)
                    with state.lock:
                        state.acked[token] = (user, digest(msg))
                    state.count("smtp_delivered")
                    user = rng.choice(USERS)
                    token, msg = make_message(rng, user)
        except (smtplib.SMTPException, OSError) as e:
            state.count("smtp_errors")
            if not state.stop.is_set() and not isinstance(e, smtplib.SMTPServerDisconnected):
                state.fail("smtp: %r" % e)


def prefill(inst, state, count):
    """COUNT messages into each user's INBOX, as acknowledged mail."""
    rng = random.Random(0)
    with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=60) as s:
        for user in USERS:
            for _ in range(count):
                token, msg = make_message(rng, user)
                s.sendmail(SENDER, [user], msg)
                state.acked[token] = (user, digest(msg))


def imap_login(inst, user):
    m = imaplib.IMAP4("127.0.0.1", inst.imap_port, timeout=60)
    m.login(user, PW)
    return m


def imap_worker(inst, state, rng):
    while not state.stop.is_set():
        user = rng.choice(USERS)
        try:
            m = imap_login(inst, user)
            state.count("imap_logins")
            ok(*m.select("INBOX"), "SELECT")
            for _ in range(rng.randint(5, 40)):
                if state.stop.is_set():
                    break
                imap_op(m, user, state, rng)
            m.logout()
        except (imaplib.IMAP4.error, OSError, EOFError, Failure) as e:
            if not state.stop.is_set():
                state.fail("imap %s: %r" % (user, e))


def imap_uids(m):
    typ, data = m.uid("SEARCH", None, "ALL")
    if typ != "OK":
        raise Failure("SEARCH: %s %s" % (typ, data))
    return data[0].split()


def imap_op(m, user, state, rng):
    r = rng.random()
    # The session's view of the mailbox is brought up to date when UID
    # SEARCH starts, and FETCH may not send EXPUNGE (RFC 9051 7.5.1): an
    # expunge elsewhere that ends after this moment may make a FETCH below
    # answer NO, even if it ended before that FETCH was sent.
    t0 = time.monotonic()
    uids = imap_uids(m)
    if not uids:
        ok(*m.noop(), "NOOP")
        return
    uid = rng.choice(uids)
    if r < 0.35:
        data = fetch_ok(m, state, user, t0, *m.uid("FETCH", uid, "(UID BODY.PEEK[])"),
                        "UID FETCH BODY")
        for d in data:
            if isinstance(d, tuple):
                check_body(state, d[1], "fetch %s uid %s" % (user, uid.decode()))
        state.count("imap_fetch_body")
    elif r < 0.55:
        fetch_ok(m, state, user, t0, *m.fetch("1:*", "(UID FLAGS RFC822.SIZE ENVELOPE)"),
                 "FETCH ENVELOPE")
        state.count("imap_fetch_envelope")
    elif r < 0.8:
        flag = rng.choice(["\\Seen", "\\Flagged", "\\Answered", "$Soak"])
        ok(*m.uid("STORE", uid, rng.choice(["+FLAGS", "-FLAGS"]), "(%s)" % flag), "UID STORE")
        state.count("imap_store")
    elif r < 0.9 and len(uids) > 20:
        # One message, or past the cap the oldest down to three quarters of
        # it (UIDs below the last one SEARCH found are never new).
        if len(uids) > state.cap:
            uid = b"%s:%s" % (uids[0], uids[len(uids) - state.cap * 3 // 4 - 1])
        # Learn the tokens before deleting, so the end check knows they are
        # gone on purpose.
        data = fetch_ok(m, state, user, t0,
                        *m.uid("FETCH", uid, "(BODY.PEEK[HEADER.FIELDS (X-SOAK-TOKEN)])"),
                        "UID FETCH HEADER.FIELDS")
        found = [TOKEN_RE.search(d[1]) for d in data if isinstance(d, tuple)]
        if not found or None in found:
            return
        with state.lock:
            state.expunged.update(f.group(1).decode() for f in found)
            state.expunging[user] = state.expunging.get(user, 0) + 1
        try:
            ok(*m.uid("STORE", uid, "+FLAGS", "(\\Deleted)"), "UID STORE \\Deleted")
            ok(*m.expunge(), "EXPUNGE")
        finally:
            with state.lock:
                state.expunging[user] -= 1
                state.last_expunge[user] = time.monotonic()
        state.count("imap_expunge")
    elif r < 0.95:
        token, msg = make_message(rng, user)
        ok(*m.append("INBOX", "(\\Seen)", None, msg), "APPEND")
        with state.lock:
            state.acked[token] = (user, digest(msg))
        state.count("imap_append")
    else:
        ok(*m.uid("SEARCH", None, "FLAGGED"), "UID SEARCH FLAGGED")
        state.count("imap_search")


class Lines:
    """Lines from a socket, with a per-read timeout that loses nothing."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def readline(self, timeout=60):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def until(self, prefix):
        while True:
            line = self.readline()
            if line is None:
                raise Failure("no reply starting %r" % prefix)
            if line.startswith(prefix):
                return line


def idle_worker(inst, state, rng):
    while not state.stop.is_set():
        user = rng.choice(USERS)
        try:
            s = socket.create_connection(("127.0.0.1", inst.imap_port), timeout=60)
            f = Lines(s)
            f.readline()
            s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PW.encode()))
            if b"OK" not in f.until(b"a "):
                raise Failure("login failed")
            s.sendall(b"b SELECT INBOX\r\n")
            if b"OK" not in f.until(b"b "):
                raise Failure("SELECT did not end with OK")
            for _ in range(rng.randint(1, 5)):
                s.sendall(b"c IDLE\r\n")
                f.until(b"+")
                line = f.readline(rng.uniform(0.5, 4))
                if line is not None and (b"EXISTS" in line or b"EXPUNGE" in line):
                    state.count("idle_wakeups")
                s.sendall(b"DONE\r\n")
                if b"OK" not in f.until(b"c "):
                    raise Failure("IDLE did not end with OK")
                state.count("idle_rounds")
            s.sendall(b"z LOGOUT\r\n")
            f.until(b"z ")
            s.close()
        except (OSError, EOFError, Failure) as e:
            if not state.stop.is_set():
                state.fail("idle %s: %r" % (user, e))


def disrupt_once(inst, state, rng):
    user = rng.choice(USERS)
    kind = rng.choice(["imap_half_line", "imap_mid_literal", "imap_mid_literal_plus",
                       "imap_mid_fetch", "imap_mid_login", "smtp_half_line", "smtp_mid_data",
                       "smtp_mid_bdat"])
    port = inst.smtp_port if kind.startswith("smtp") else inst.imap_port
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    try:
        f.readline()
        if kind == "imap_half_line":
            s.sendall(b"x1 UID FETCH 1:* (FLA")
        elif kind == "imap_mid_login":
            s.sendall(b'x1 LOGIN "%s" "%s"\r\n' % (user.encode(), PW.encode()))
        elif kind.startswith("imap_"):
            s.sendall(b'a LOGIN "%s" "%s"\r\n' % (user.encode(), PW.encode()))
            while not f.readline().startswith(b"a "):
                pass
            if kind == "imap_mid_fetch":
                s.sendall(b"b SELECT INBOX\r\nc FETCH 1:* (BODY.PEEK[])\r\n")
                f.readline()
            else:
                n = rng.randint(1000, 300000)
                plus = kind.endswith("plus")
                s.sendall(b"b APPEND INBOX {%d%s}\r\n" % (n, b"+" if plus else b""))
                if not plus and not f.readline().startswith(b"+"):
                    raise Failure("no continuation for APPEND")
                s.sendall(b"X-Soak-Token: never\r\n" + b"y" * rng.randint(0, n // 2))
        elif kind == "smtp_half_line":
            s.sendall(b"EHLO half.example\r\nMAIL FROM:<a@remote.exa")
        else:
            s.sendall(b"EHLO mid.example\r\n")
            while not f.readline().startswith(b"250 "):
                pass
            s.sendall(b"MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (SENDER.encode(), user.encode()))
            f.readline()
            f.readline()
            if kind == "smtp_mid_data":
                s.sendall(b"DATA\r\n")
                f.readline()
                s.sendall(b"Subject: never\r\n\r\n" + b"z" * rng.randint(0, 100000))
            else:
                s.sendall(b"BDAT 50000\r\nSubject: never\r\n\r\n" + b"z" * rng.randint(0, 40000))
        time.sleep(rng.uniform(0, 0.05))
    finally:
        # An abortive close now and then (RST instead of FIN).
        if rng.random() < 0.3:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    state.count("disconnects_" + kind)


def disruptor(inst, state, rng):
    while not state.stop.is_set():
        try:
            disrupt_once(inst, state, rng)
        except (OSError, EOFError, Failure) as e:
            if not state.stop.is_set():
                state.fail("disruptor: %r" % e)
        time.sleep(rng.uniform(0.02, 0.2))


def rss_kb(pid):
    for line in Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# ---- the run ----------------------------------------------------------------------


def run(args):
    binary = Path(os.environ.get("SEALMAIL_BIN", ROOT / "bin" / "sealmail"))
    work = Path(tempfile.mkdtemp(prefix="sealmail-soak-"))
    inst = Instance(binary, work / "data")
    inst.set_option("imap", "auth_fail_delay_ms", "10")
    inst.set_option("server", "log_level", "warn")
    for i, user in enumerate(USERS):
        inst.add_user(user, REGIONS[i % len(REGIONS)], PW)
    server = Server(inst).start()
    state = State(args.seed)
    state.cap = args.mailbox_cap
    prefill(inst, state, args.mailbox_cap * 3 // 4)
    master = random.Random(args.seed)
    plan = ([smtp_sender] * args.senders + [imap_worker] * args.imap +
            [idle_worker] * args.idle + [disruptor])
    threads = [threading.Thread(target=guarded(fn), args=(inst, state, random.Random(master.random())),
                                daemon=True) for fn in plan]
    start = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    while time.monotonic() - start < args.seconds and not state.stop.is_set():
        time.sleep(1)
        if not server.alive():
            state.fail("server died: %s" % server.proc.returncode)
            break
        samples.append((time.monotonic() - start, rss_kb(server.pid)))
    state.stop.set()
    for t in threads:
        t.join(timeout=90)
        if t.is_alive():
            state.fail("a worker did not stop: %s" % t.name)
    duration = time.monotonic() - start
    rc = server.stop(timeout=60)
    log = server.log_text()
    if rc != 0:
        state.fail("server exited with %s" % rc)
    if "AddressSanitizer" in log or "runtime error" in log or "LeakSanitizer" in log:
        state.fail("sanitizer report in the server log")

    # Every acknowledged message that was not expunged, intact; nothing else.
    verified = missing = unknown = 0
    by_user = {}
    for token, (user, h) in state.acked.items():
        by_user.setdefault(user, {})[token] = h
    for user in USERS:
        out = work / ("export-" + user)
        r = inst.run(["export", user, "--password-stdin", "--out", str(out)], input=PW + "\n",
                     timeout=600)
        if r.returncode != 0:
            state.fail("export %s: %s" % (user, r.stderr))
            continue
        seen = {}
        for p in out.rglob("*"):
            if p.is_file() and ("/cur/" in str(p) or "/new/" in str(p)):
                data = p.read_bytes()
                m = TOKEN_RE.search(data)
                if m is None:
                    unknown += 1
                    continue
                seen[m.group(1).decode()] = digest(strip_trace(data))
        for token, h in by_user.get(user, {}).items():
            if token in seen:
                if seen[token] != h:
                    state.fail("%s: message %s damaged" % (user, token))
                else:
                    verified += 1
            elif token not in state.expunged:
                missing += 1
        unknown += sum(1 for t in seen if t not in by_user.get(user, {}))
    if missing:
        state.fail("%d acknowledged messages missing" % missing)
    if unknown:
        state.fail("%d stored messages were never acknowledged" % unknown)

    rss = [kb for _, kb in samples]
    warm = [kb for t, kb in samples if t >= min(10, args.seconds / 4)]
    peak = max(rss) if rss else 0
    first = statistics.median(warm[:max(1, len(warm) // 5)]) if warm else 0
    last = statistics.median(warm[-max(1, len(warm) // 5):]) if warm else 0
    if peak > args.rss_limit_mb * 1024:
        state.fail("peak RSS %d MB over the %d MB bound" % (peak // 1024, args.rss_limit_mb))
    if last - first > args.growth_mb * 1024:
        state.fail("RSS grew %d MB (bound %d MB)" % ((last - first) // 1024, args.growth_mb))
    # A run that did next to nothing proves nothing.
    total = sum(state.ops.values())
    want_ops = int(args.min_ops_per_second * duration)
    # What the capped mailboxes can hold at most, at the end.
    want_verified = min(int(args.min_verified_per_minute * duration / 60),
                        args.mailbox_cap * len(USERS) // 2)
    if total < want_ops:
        state.fail("only %d operations (minimum %d)" % (total, want_ops))
    if verified < want_verified:
        state.fail("only %d messages verified at the end (minimum %d)" % (verified, want_verified))
    for what in ("smtp_delivered", "imap_fetch_body", "imap_store", "imap_append", "idle_rounds"):
        if state.ops.get(what, 0) == 0 and duration >= 30:
            state.fail("no %s at all" % what)
    summary = {
        "seconds": round(duration, 1),
        "seed": args.seed,
        "operations": dict(sorted(state.ops.items())),
        "operations_total": sum(state.ops.values()),
        "acknowledged": len(state.acked),
        "expunged": len(state.expunged),
        "verified_at_end": verified,
        "rss_peak_mb": round(peak / 1024, 1),
        "rss_after_warmup_mb": round(first / 1024, 1),
        "rss_at_end_mb": round(last / 1024, 1),
        "bounds": {"rss_limit_mb": args.rss_limit_mb, "growth_mb": args.growth_mb,
                   "min_operations": want_ops, "min_verified": want_verified},
        "errors": state.errors[:20],
        "data": str(work),
    }
    if not state.errors and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
        summary["data"] = None
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, help="run time in minutes")
    ap.add_argument("--seconds", type=float, default=75, help="run time in seconds (default 75)")
    ap.add_argument("--senders", type=int, default=3, help="SMTP sender threads")
    ap.add_argument("--imap", type=int, default=3, help="IMAP fetch/flag/expunge threads")
    ap.add_argument("--idle", type=int, default=2, help="IMAP IDLE threads")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    # Measured on a release build: peak about 42 MB, growth about 2 MB.
    ap.add_argument("--rss-limit-mb", type=int, default=128, help="peak RSS bound (default 128)")
    ap.add_argument("--growth-mb", type=int, default=16,
                    help="bound on RSS growth from warm-up to the end (default 16)")
    ap.add_argument("--min-ops-per-second", type=float, default=40,
                    help="fail below this many operations a second (default 40)")
    ap.add_argument("--min-verified-per-minute", type=float, default=600,
                    help="fail below this many messages verified at the end, per minute "
                    "of run (default 600)")
    ap.add_argument("--mailbox-cap", type=int, default=800,
                    help="messages per mailbox past which an expunge takes the oldest down "
                    "to three quarters of it (default 800)")
    ap.add_argument("--keep", action="store_true", help="keep the data folder")
    args = ap.parse_args(argv)
    if args.minutes is not None:
        args.seconds = args.minutes * 60
    summary = run(args)
    print(json.dumps(summary, indent=2))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
