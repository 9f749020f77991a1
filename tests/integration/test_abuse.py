"""Abuse limits on IMAP: failed-login slow-down and lockout, per client
address and per account; connection caps; the per-session command rate.
Loopback is 127.0.0.0/8, so connecting from 127.0.0.N gives each client an
address of its own. (The SMTP connection caps, error limit and unknown-user
delay are covered in test_smtp.py.)"""
import base64
import signal
import smtplib
import socket
import time

import pytest

from conftest import Server

ALICE = "alice@example.org"
BOB = "bob@example.org"
PW = "correct horse"


class Client:
    def __init__(self, port, source="127.0.0.1", timeout=20):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                          source_address=(source, 0))
        self.f = self.s.makefile("rb")
        self.greeting = self.f.readline()
        self.n = 0

    def cmd(self, text):
        self.n += 1
        tag = "a%d" % self.n
        self.s.sendall(("%s %s\r\n" % (tag, text)).encode())
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError(text)
            if line.startswith(tag.encode() + b" "):
                return line.decode().rstrip("\r\n")

    def login(self, user, pw):
        return self.cmd('LOGIN "%s" "%s"' % (user, pw))

    def timed_login(self, user, pw):
        t = time.monotonic()
        r = self.login(user, pw)
        return r, time.monotonic() - t

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def start(instance, **imap):
    instance.add_user(ALICE)
    instance.add_user(BOB)
    for k, v in imap.items():
        instance.set_option("imap", k, str(v))
    return Server(instance).start()


def stop(server):
    rc = server.stop()
    log = server.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
    assert rc == 0, log[-4000:]


@pytest.mark.serial  # upper time bounds
def test_failure_delay_grows_per_address(instance):
    srv = start(instance, auth_fail_delay_ms=300, auth_fail_lockout=0)
    try:
        c = Client(instance.imap_port, "127.0.0.2")
        times = []
        for i in range(3):
            r, dt = c.timed_login("nobody%d@example.org" % i, "x")
            assert "NO [AUTHENTICATIONFAILED]" in r
            times.append(dt)
        # 1x, 2x, 3x the base delay: each miss from this address costs more.
        assert times[0] >= 0.28 and times[1] >= 0.58 and times[2] >= 0.88, times
        # Another address starts at the base delay.
        r, dt = Client(instance.imap_port, "127.0.0.3").timed_login("nobody@example.org", "x")
        assert "NO" in r and 0.28 <= dt < 0.58, dt
    finally:
        stop(srv)


def test_failure_delay_grows_per_account(instance):
    srv = start(instance, auth_fail_delay_ms=300, auth_fail_lockout=0)
    try:
        times = []
        for i in range(3):
            c = Client(instance.imap_port, "127.0.1.%d" % (i + 1))
            r, dt = c.timed_login(ALICE, "wrong")
            assert "NO [AUTHENTICATIONFAILED]" in r
            times.append(dt)
            c.close()
        # Fresh addresses, but the account's misses add up.
        assert times[2] >= 0.88, times
        # A successful login clears the account's count.
        assert "OK" in Client(instance.imap_port, "127.0.1.9").login(ALICE, PW)
        r, dt = Client(instance.imap_port, "127.0.1.10").timed_login(ALICE, "wrong")
        assert dt < 0.58, dt
    finally:
        stop(srv)


def test_lockout_per_address(instance):
    srv = start(instance, auth_fail_delay_ms=20, auth_fail_lockout=4, auth_fail_window="3s")
    try:
        c = Client(instance.imap_port, "127.0.2.1")
        for i in range(4):
            assert "NO [AUTHENTICATIONFAILED]" in c.login("guess%d@example.org" % i, "x")
        c.close()
        # Locked: even the right password is not looked at from there, on
        # LOGIN and AUTHENTICATE alike.
        c = Client(instance.imap_port, "127.0.2.1")
        assert "NO [UNAVAILABLE]" in c.login(ALICE, PW)
        plain = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + PW.encode()).decode()
        assert "NO [UNAVAILABLE]" in c.cmd("AUTHENTICATE PLAIN " + plain)
        assert "login refused: address locked out" in srv.log_text()
        # Other addresses, and the account itself, are not affected.
        assert "OK" in Client(instance.imap_port, "127.0.2.2").login(ALICE, PW)
        # The lock ends when the window has passed since the last failure.
        time.sleep(3.3)
        assert "OK" in c.login(ALICE, PW)
    finally:
        stop(srv)


def lock_out_alice(instance, srv, net, failures):
    """Fails ALICE's login FAILURES times from NET.1, NET.2, ...; then checks
    that the right password from NET.9 is refused. Returns that client."""
    for i in range(failures):
        c = Client(instance.imap_port, "%s.%d" % (net, i + 1))
        assert "NO [AUTHENTICATIONFAILED]" in c.login(ALICE, "wrong%d" % i)
        c.close()
    # From a fresh address with the right password: refused, answered as
    # a wrong password would be (no account enumeration), no Argon2id.
    c = Client(instance.imap_port, "%s.9" % net)
    assert "NO [AUTHENTICATIONFAILED]" in c.login(ALICE, PW)
    assert "login refused: account locked out" in srv.log_text()
    return c


def test_lockout_per_account(instance):
    srv = start(instance, auth_fail_delay_ms=20, auth_fail_lockout=3, auth_fail_window="3s")
    try:
        c = lock_out_alice(instance, srv, "127.0.3", 3)
        # Other accounts are fine from the same address.
        assert "OK" in c.login(BOB, PW)
        c.close()
        time.sleep(3.3)
        assert "OK" in Client(instance.imap_port, "127.0.3.10").login(ALICE, PW)
    finally:
        stop(srv)


@pytest.mark.parametrize("limit", ["total", "per_ip"])
def test_imap_connection_caps(instance, limit):
    if limit == "total":
        srv = start(instance, max_connections=3, max_connections_per_ip=100)
    else:
        srv = start(instance, max_connections=100, max_connections_per_ip=3)
    try:
        held = [Client(instance.imap_port, "127.0.4.1") for _ in range(3)]
        assert all(h.greeting.startswith(b"* OK") for h in held)
        extra = Client(instance.imap_port, "127.0.4.1")
        assert extra.greeting.startswith(b"* BYE Too many connections"), extra.greeting
        other = Client(instance.imap_port, "127.0.4.2")
        if limit == "total":
            assert other.greeting.startswith(b"* BYE Too many connections")
        else:
            assert other.greeting.startswith(b"* OK"), other.greeting
            other.close()
        held[0].cmd("LOGOUT")
        held[0].close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            c = Client(instance.imap_port, "127.0.4.1")
            if c.greeting.startswith(b"* OK"):
                break
            c.close()
            time.sleep(0.1)
        else:
            pytest.fail("a slot did not come free")
    finally:
        stop(srv)


@pytest.mark.serial  # upper time bounds
def test_command_rate_limit(instance):
    srv = start(instance, max_commands_per_second=20)
    try:
        c = Client(instance.imap_port, "127.0.5.1", timeout=60)
        assert "OK" in c.login(ALICE, PW)
        n = 100
        t = time.monotonic()
        c.s.sendall(b"".join(b"n%d NOOP\r\n" % i for i in range(n)))
        done = 0
        while done < n:
            line = c.f.readline()
            assert line, "connection closed"
            if line.startswith(b"n"):
                assert b" OK" in line, line
                done += 1
        elapsed = time.monotonic() - t
        # A burst of about a second's worth, then 20 a second: >= ~4 s.
        assert elapsed >= 3.0, elapsed
        # Throttling is per session: another session is served at once.
        d = Client(instance.imap_port, "127.0.5.2")
        t = time.monotonic()
        d.login(ALICE, PW)
        for _ in range(5):
            assert "OK" in d.cmd("NOOP")
        assert time.monotonic() - t < 2.0
        # And the throttled session still works.
        assert "OK" in c.cmd("NOOP")
    finally:
        stop(srv)


def test_imap_default_per_address_cap(instance):
    # Without configuration one address gets 50 connections, not all of them.
    srv = start(instance)
    held = []
    try:
        for _ in range(50):
            held.append(Client(instance.imap_port, "127.0.5.9"))
        assert all(h.greeting.startswith(b"* OK") for h in held)
        extra = Client(instance.imap_port, "127.0.5.9")
        assert extra.greeting.startswith(b"* BYE Too many connections"), extra.greeting
        other = Client(instance.imap_port, "127.0.5.10")
        assert other.greeting.startswith(b"* OK"), other.greeting
    finally:
        for h in held:
            h.close()
        stop(srv)


def test_lockout_survives_address_flood(instance):
    # An account's lockout must not be forgotten because failures from many
    # fresh addresses filled the failure table (1024 entries each).
    srv = start(instance, auth_fail_delay_ms=0, auth_fail_lockout=3, auth_fail_window="5m")
    try:
        lock_out_alice(instance, srv, "127.0.6", 3).close()
        locked = srv.log_text().count("login refused: account locked out")
        assert locked == 1
        # 1100 fresh addresses, one failure each (unknown accounts: no
        # Argon2id, so this is quick).
        for i in range(1100):
            src = "127.9.%d.%d" % (i // 250, i % 250 + 1)
            c = Client(instance.imap_port, src)
            assert c.greeting.startswith(b"* OK"), c.greeting
            assert "NO [AUTHENTICATIONFAILED]" in c.login("nobody%d@example.org" % i, "x")
            c.close()
        # Still locked, from yet another address, with the right password.
        c = Client(instance.imap_port, "127.0.6.10")
        assert "NO [AUTHENTICATIONFAILED]" in c.login(ALICE, PW)
        c.close()
        assert srv.log_text().count("login refused: account locked out") == locked + 1
        # Other accounts are not affected.
        assert "OK" in Client(instance.imap_port, "127.0.6.11").login(BOB, PW)
    finally:
        stop(srv)


class SmtpClient:
    def __init__(self, port, source="127.0.0.1", timeout=30):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                          source_address=(source, 0))
        self.f = self.s.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        """One reply (multi-line joined); b"" when the connection closed."""
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                return b"".join(lines)
            lines.append(line)
            if len(line) < 4 or line[3:4] != b"-":
                return b"".join(lines)

    def cmd(self, text):
        self.s.sendall(text.encode() + b"\r\n")
        return self.reply()

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def smtp_start(instance, **smtp):
    instance.add_user(ALICE)
    for k, v in smtp.items():
        instance.set_option("smtp", k, str(v))
    return Server(instance).start()


@pytest.mark.serial  # upper time bounds
def test_smtp_command_rate_limit(instance):
    srv = smtp_start(instance, max_commands_per_second=20, max_errors=0)
    try:
        c = SmtpClient(instance.smtp_port, "127.0.7.1")
        assert c.greeting.startswith(b"220"), c.greeting
        assert c.cmd("EHLO client.example").startswith(b"250")
        # A burst of about a second's worth, then 20 a second: 60 NOOPs take
        # about 2 s, and every one is answered.
        t = time.monotonic()
        c.s.sendall(b"NOOP\r\n" * 60)
        for i in range(60):
            r = c.reply()
            assert r.startswith(b"250"), (i, r)
        elapsed = time.monotonic() - t
        assert elapsed >= 1.5, elapsed
        # Per session: another client is answered at once meanwhile.
        d = SmtpClient(instance.smtp_port, "127.0.7.2")
        t = time.monotonic()
        assert d.cmd("EHLO other.example").startswith(b"250")
        for _ in range(5):
            assert d.cmd("NOOP").startswith(b"250")
        assert time.monotonic() - t < 1.0
        # A client that never slows down is dropped with 421 4.7.0 after
        # 5 seconds' worth (100) of commands held back in a row (those of
        # the first batch count: it never slowed down either).
        t = time.monotonic()
        c.s.sendall(b"NOOP\r\n" * 400)
        answered = 0
        while True:
            r = c.reply()
            assert r, "closed without 421"
            if not r.startswith(b"250"):
                break
            answered += 1
        assert r.startswith(b"421 4.7.0"), r
        assert 40 <= answered < 400, answered
        assert c.reply() == b"", "the connection stays open after 421"
        assert time.monotonic() - t >= 2.0
        assert "command rate limit exceeded" in srv.log_text()
        # The other session still works.
        assert d.cmd("NOOP").startswith(b"250")
        assert d.cmd("QUIT").startswith(b"221")
    finally:
        stop(srv)


@pytest.mark.serial  # upper time bounds
def test_smtp_rate_limit_spares_mail_transactions(instance):
    # MAIL, RCPT and DATA are not rate limited: one connection delivers
    # 30 messages (90 such commands) at 2 commands a second in well under
    # the 45 s the limit would take; NOOPs are still held back.
    srv = smtp_start(instance, max_commands_per_second=2)
    try:
        with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=30) as s:
            s.ehlo()
            t = time.monotonic()
            for i in range(30):
                s.sendmail("bob@example.net", [ALICE], b"Subject: %d\r\n\r\nhi\r\n" % i)
            assert time.monotonic() - t < 10, time.monotonic() - t
            t = time.monotonic()
            for _ in range(6):
                assert s.noop()[0] == 250
            assert time.monotonic() - t >= 1.0, time.monotonic() - t
    finally:
        stop(srv)
    assert len(instance.export(ALICE)["INBOX"]) == 30


def test_smtp_shutdown_reaches_a_throttled_session(instance):
    # A session whose command waits for the rate limit when the server is
    # told to stop is closed with 421 4.3.2 at once, not after the grace.
    srv = smtp_start(instance, max_commands_per_second=1, shutdown_grace="30s")
    try:
        c = SmtpClient(instance.smtp_port, "127.0.7.3")
        assert c.cmd("EHLO client.example").startswith(b"250")
        c.s.sendall(b"NOOP\r\n" * 5)
        assert c.reply().startswith(b"250")  # the burst's last token
        t = time.monotonic()
        srv.signal(signal.SIGTERM)
        replies = []
        while True:
            r = c.reply()
            if not r:
                break
            replies.append(r)
        assert replies and replies[-1].startswith(b"421 4.3.2"), replies
        assert time.monotonic() - t < 5.0
        assert srv.proc.wait(timeout=10) == 0
    finally:
        stop(srv)
