"""`sealmail serve` as an MX, seen from real SMTP clients (python smtplib,
swaks) and from a raw socket for the hostile cases. Every message is read
back through `sealmail export` and compared byte for byte with what was sent
(after the Return-Path and Received fields the server prepends)."""
import re
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from conftest import changed_files, file_states, scan_at_rest
from smtp_helpers import (Raw, SmtpServer, check_clean_stop, inbox, make_message, new_cert,
                          peer_cert, run_each, smtp_server, strip_trace, tls_context, token,
                          wait_until)

ALICE = "alice@example.org"   # region eu-ie
BOB = "bob@example.org"       # region us-east
SENDER = "sender@remote.example"


@pytest.fixture
def users(instance):
    instance.add_user(ALICE, "eu-ie")
    instance.add_user(BOB, "us-east")
    return instance


@pytest.fixture
def mx(users, smtp_server):
    """An instance with alice (eu-ie) and bob (us-east) and a running server."""
    return users, smtp_server


def smtp(instance):
    return smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=30)


def set_opts(instance, **opts):
    for key, value in opts.items():
        instance.set_option("smtp", key, str(value))


# ---- real clients ---------------------------------------------------------------------


def test_smtplib_plain_roundtrip(mx):
    inst, _ = mx
    t = token()
    msg = make_message(t, extra=b".leading dot\r\n..two dots\r\n.\r\nlast\r\n")
    with smtp(inst) as s:
        assert s.ehlo()[0] == 250
        assert s.has_extn("pipelining") and s.has_extn("size") and s.has_extn("8bitmime")
        assert s.has_extn("enhancedstatuscodes") and s.has_extn("starttls")
        assert s.has_extn("chunking") and s.has_extn("smtputf8")
        assert s.sendmail(SENDER, [ALICE], msg) == {}
    msgs = inbox(inst, ALICE)
    assert len(msgs) == 1
    trace, body = strip_trace(msgs[0])
    assert body == msg
    assert trace.startswith(b"Return-Path: <sender@remote.example>\r\nReceived: from ")
    assert b"by mail.example.org (sealmail) with ESMTP id " in trace
    assert b"for <alice@example.org>;" in trace
    assert re.search(rb"; ?\r?\n?\t?\w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n$", trace)


def test_smtplib_starttls(mx):
    inst, _ = mx
    t = token()
    msg = make_message(t)
    with smtp(inst) as s:
        s.ehlo()
        assert s.starttls(context=tls_context())[0] == 220
        s.ehlo()
        assert not s.has_extn("starttls")
        assert s.sendmail(SENDER, [ALICE], msg) == {}
    trace, body = strip_trace(inbox(inst, ALICE)[0])
    assert body == msg
    assert b"with ESMTPS" in trace and b"TLSv1." in trace


def test_helo_delivery_says_with_smtp(mx):
    """A client that greets with HELO (RFC 5321 4.1.1.1) gets plain SMTP: the
    message is delivered and the Received field says "with SMTP"."""
    inst, _ = mx
    msg = make_message(token())
    with smtp(inst) as s:
        code, _ = s.helo("client.example")
        assert code == 250
        assert s.does_esmtp is False
        assert s.sendmail(SENDER, [ALICE], msg) == {}
    trace, body = strip_trace(inbox(inst, ALICE)[0])
    assert body == msg
    assert b"from client.example ([127.0.0.1])" in trace
    assert b" with SMTP id " in trace, trace
    assert b"ESMTP" not in trace, trace


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_versions_below_1_2_refused(mx):
    inst, _ = mx
    import ssl
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("STARTTLS", 220)
    ctx = tls_context()
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises(ssl.SSLError):
        ctx.wrap_socket(c.sock)
    c.close()


def test_swaks_plain_and_tls(mx, tmp_path):
    inst, _ = mx
    for tls in (False, True):
        t = token()
        msg = make_message(t)
        path = tmp_path / ("msg-%s.eml" % t)
        path.write_bytes(msg)
        args = ["swaks", "--server", "127.0.0.1:%d" % inst.smtp_port, "--from", SENDER,
                "--to", BOB, "--data", str(path), "--helo", "client.example"]
        if tls:
            args.append("--tls")
        r = subprocess.run(args, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stdout.decode(errors="replace")
    msgs = inbox(inst, BOB)
    assert len(msgs) == 2
    for m in msgs:
        trace, body = strip_trace(m)
        assert body.startswith(b"From: Sender <sender@remote.example>\r\n")
        assert b"from client.example ([127.0.0.1])" in trace
    assert b"ESMTPS" in strip_trace(msgs[1])[0]


def test_pipelining_several_transactions_in_one_write(mx):
    inst, _ = mx
    tokens = [token() for _ in range(3)]
    data = "EHLO client.example\r\n"
    for t in tokens:
        data += ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n" % (SENDER, ALICE))
        data += make_message(t).decode() + ".\r\n"
    data += "QUIT\r\n"
    c = Raw(inst.smtp_port)
    c.send(data)
    assert c.reply()[0] == 250
    for _ in tokens:
        assert [c.reply()[0] for _ in range(4)] == [250, 250, 354, 250]
    assert c.reply()[0] == 221
    assert c.is_closed()
    got = [strip_trace(m)[1] for m in inbox(inst, ALICE)]
    assert got == [make_message(t) for t in tokens]


def test_chunking_bdat_pipelined(mx):
    inst, _ = mx
    t = token()
    msg = make_message(t, body_lines=50)
    a, b = msg[:100], msg[100:]
    c = Raw(inst.smtp_port)
    c.send(("EHLO client.example\r\nMAIL FROM:<%s> BODY=8BITMIME\r\nRCPT TO:<%s>\r\n"
            "BDAT %d\r\n" % (SENDER, ALICE, len(a))).encode() + a +
           b"BDAT %d LAST\r\n" % len(b) + b + b"QUIT\r\n")
    assert [c.reply()[0] for _ in range(6)] == [250, 250, 250, 250, 250, 221]
    assert strip_trace(inbox(inst, ALICE)[0])[1] == msg


def test_smtputf8_and_quoted_local_part(mx):
    inst, _ = mx
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<j\u00f6rg@b\u00fccher.example> SMTPUTF8", 250, "2.1.0")
    c.expect('RCPT TO:<"alice"@example.org>', 250, "2.1.5")
    c.expect("DATA", 354)
    c.send(make_message(token()) + b".\r\n")
    assert c.reply()[0] == 250
    c.expect("MAIL FROM:<j\u00f6rg@example.org>", 553, "5.6.7")
    trace = strip_trace(inbox(inst, ALICE)[0])[0]
    assert b"with UTF8SMTP" in trace
    assert "Return-Path: <j\u00f6rg@b\u00fccher.example>".encode() in trace


def test_multi_region_delivery_lands_in_each_home_region_only(mx):
    """Every file under the data folder is hashed before and after each
    delivery: a message changes files only under its recipients' home
    regions, and each recipient's export holds it exactly once."""
    inst, _ = mx
    inst.add_user("carol@example.org", "eu-ie")
    eu, us = "regions/eu-ie/", "regions/us-east/"
    big = make_message(token(), extra=b"".join(b"%078d\r\n" % i for i in range(3000)))

    def changes(rcpts, msg):
        before = file_states(inst.dir)
        with smtp(inst) as s:
            assert s.sendmail(SENDER, rcpts, msg) == {}
        changed = changed_files(before, file_states(inst.dir))
        # The recipient lookups read the account directory; SQLite's readers
        # take their read marks in its shared-memory WAL index. That file
        # holds frame numbers, never data; the directory itself is unchanged.
        return [p for p in changed if p != "directory.sqlite-shm"]

    changed = changes([ALICE], big)
    assert changed and all(p.startswith(eu) for p in changed), changed
    assert "regions/eu-ie/records.dat" in changed, changed
    for msg in (make_message(token()), make_message(token(), extra=big)):
        changed = changes([ALICE, BOB, ALICE], msg)
        assert all(p.startswith(eu) or p.startswith(us) for p in changed), changed
        assert any(p.startswith(eu) for p in changed), changed
        assert any(p.startswith(us) for p in changed), changed
    alice = [strip_trace(m)[1] for m in inbox(inst, ALICE)]
    bob = [strip_trace(m)[1] for m in inbox(inst, BOB)]
    assert len(alice) == 3 and len(bob) == 2
    assert alice[0] == big and alice[1:] == bob
    assert len(set(alice)) == 3 and len(set(bob)) == 2   # each exactly once
    assert inbox(inst, "carol@example.org") == []


def test_100_concurrent_senders(users):
    inst = users
    set_opts(inst, max_connections_per_ip=200, max_connections=300)
    server = SmtpServer(inst).start()
    results, tokens = {}, [token() for _ in range(100)]
    barrier = threading.Barrier(100)

    def send(t):
        try:
            with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=60) as s:
                s.ehlo()
                barrier.wait(timeout=30)
                results[t] = s.sendmail(SENDER, [ALICE if ord(t[-1]) % 2 else BOB],
                                        make_message(t))
        except Exception as e:  # noqa: BLE001 - reported below
            results[t] = e

    run_each(send, tokens, timeout=120)
    check_clean_stop(server)
    assert all(results.get(t) == {} for t in tokens), [r for r in results.values() if r]
    got = inbox(inst, ALICE) + inbox(inst, BOB)
    assert sorted(strip_trace(m)[1] for m in got) == sorted(make_message(t) for t in tokens)


# ---- limits, each with its reply ---------------------------------------------------


def test_sequence_and_syntax_errors(users):
    inst = users
    set_opts(inst, max_errors=100)
    server = SmtpServer(inst).start()
    c = Raw(inst.smtp_port)
    assert c.greeting[0] == 220 and "ESMTP" in c.greeting[1][0]
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
    c.expect("EHLO", 501, "5.5.4")
    c.expect("EHLO client.example", 250)
    c.expect("RCPT TO:<%s>" % ALICE, 503, "5.5.1")
    c.expect("DATA", 503, "5.5.1")
    c.expect("FOO bar", 500, "5.5.2")
    c.expect("MAIL FROM:%s" % SENDER, 501, "5.5.4")
    c.expect("MAIL FROM:<bad address@x>", 501, "5.1.7")
    c.expect("MAIL FROM:<%s> FOO=BAR" % SENDER, 555, "5.5.4")
    c.expect("MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
    c.expect("RCPT TO:<a b>", 501, "5.1.3")
    c.expect("RCPT TO:<someone@elsewhere.example>", 550, "5.7.1")
    c.expect("DATA", 554, "5.5.1")
    c.expect("RSET extra", 501, "5.5.4")
    c.expect("RSET", 250, "2.0.0")
    c.expect("NOOP", 250)
    c.expect("HELP", 214)
    c.expect("VRFY %s" % ALICE, 252)
    c.expect("VRFY nobody@example.org", 252)
    c.expect("QUIT", 221)
    assert c.is_closed()
    check_clean_stop(server)


@pytest.mark.serial  # upper time bound
def test_unknown_recipient_550_after_delay(mx):
    inst, _ = mx
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<>", 250)
    start = time.monotonic()
    c.expect("RCPT TO:<nobody@example.org>", 550, "5.1.1")
    assert time.monotonic() - start >= 0.4
    start = time.monotonic()
    c.expect("RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    assert time.monotonic() - start < 0.4


def test_command_line_too_long(mx):
    inst, _ = mx
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("NOOP " + "x" * 505, 250)      # 512 bytes with CRLF: allowed
    c.expect("NOOP " + "x" * 506, 500, "5.5.2")
    c.expect("NOOP", 250)


def test_text_line_too_long(mx):
    inst, _ = mx
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    for length, code in ((998, 250), (999, 500)):
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: long\r\n\r\n" + b"y" * length + b"\r\n.\r\n")
        got, text = c.reply()
        assert got == code, text
        if code == 500:
            assert text[0].startswith("5.5.2")
    assert len(inbox(inst, ALICE)) == 1


def test_message_size_limit(users):
    inst = users
    set_opts(inst, max_message_size="10k")
    server = SmtpServer(inst).start()
    c = Raw(inst.smtp_port)
    ehlo = c.expect("EHLO client.example", 250)
    assert "SIZE 10240" in ehlo
    c.expect("MAIL FROM:<%s> SIZE=20000" % SENDER, 552, "5.3.4")
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: big\r\n\r\n" + b"z" * 70 + b"\r\n" * 1 + (b"z" * 70 + b"\r\n") * 200 +
           b".\r\n")
    got, text = c.reply()
    assert got == 552 and text[0].startswith("5.3.4")
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.send(b"BDAT 20000 LAST\r\n" + b"q" * 20000)
    got, text = c.reply()
    assert got == 552 and text[0].startswith("5.3.4")
    c.expect("NOOP", 250)
    check_clean_stop(server)
    assert inbox(inst, ALICE) == []


def test_recipient_limit(users):
    inst = users
    set_opts(inst, max_recipients=2)
    server = SmtpServer(inst).start()
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("RCPT TO:<%s>" % BOB, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 452, "4.5.3")
    c.expect("DATA", 354)
    c.send(make_message(token()) + b".\r\n")
    assert c.reply()[0] == 250
    check_clean_stop(server)
    assert len(inbox(inst, ALICE)) == 1 and len(inbox(inst, BOB)) == 1


@pytest.mark.parametrize("limit", ["total", "per_ip"])
def test_connection_limits(users, limit):
    inst = users
    if limit == "total":
        set_opts(inst, max_connections=3, max_connections_per_ip=100)
    else:
        set_opts(inst, max_connections=100, max_connections_per_ip=3)
    server = SmtpServer(inst).start()
    held = [Raw(inst.smtp_port) for _ in range(3)]
    extra = Raw(inst.smtp_port)
    assert extra.greeting[0] == 421 and extra.greeting[1][0].startswith("4.7.0")
    assert extra.is_closed()
    held[0].expect("QUIT", 221)
    assert held[0].is_closed()
    assert wait_until(lambda: Raw(inst.smtp_port).greeting[0] == 220, timeout=5)
    check_clean_stop(server)


def test_command_and_data_timeouts(users):
    inst = users
    set_opts(inst, timeout_command="1s", timeout_data="2s")
    server = SmtpServer(inst).start()
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    start = time.monotonic()
    got, text = c.reply()
    assert got == 421 and text[0].startswith("4.4.2") and "Timeout" in text[0]
    assert 0.8 < time.monotonic() - start < 5
    assert c.is_closed()
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: slow\r\n\r\npartial")
    start = time.monotonic()
    assert c.reply()[0] == 421
    assert 1.5 < time.monotonic() - start < 6
    check_clean_stop(server)
    assert inbox(inst, ALICE) == []


def test_too_many_errors_disconnects(users):
    inst = users
    set_opts(inst, max_errors=3)
    server = SmtpServer(inst).start()
    c = Raw(inst.smtp_port)
    c.expect("BOGUS", 500)
    c.expect("BOGUS", 500)
    c.send("BOGUS\r\n")
    assert c.reply()[0] == 500
    got, text = c.reply()
    assert got == 421 and text[0].startswith("4.7.0")
    assert c.is_closed()
    check_clean_stop(server)


# ---- hostile input ---------------------------------------------------------------


def test_hostile_input_leaves_server_serving(mx):
    inst, server = mx
    first = make_message(token())
    with smtp(inst) as s:
        s.sendmail(SENDER, [ALICE], first)

    def session():
        c = Raw(inst.smtp_port)
        c.expect("EHLO client.example", 250)
        return c

    # binary garbage and NULs as commands
    c = session()
    c.send(bytes(range(256)) * 8 + b"\r\nNO\0OP\r\n")
    assert c.is_closed(timeout=5) or c.reply()[0] in (500, 421)
    # a 1 MB line, as a command and inside DATA
    c = session()
    c.send(b"NOOP " + b"a" * (1 << 20) + b"\r\n")
    assert c.reply() == (500, ["5.5.2 Line too long"])
    c.expect("NOOP", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.expect("DATA", 354)
    c.send(b"Subject: x\r\n\r\n" + b"b" * (1 << 20) + b"\r\n.\r\n")
    assert c.reply()[0] == 500
    # bare LF, lone CR, NUL inside DATA: refused whole; "\n.\n" does not end it
    for body, code in ((b"a\n.\nMAIL FROM:<x@y>\n", 550), (b"a\rb\r\n", 550),
                       (b"nul\0here\r\n", 550)):
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: x\r\n\r\n" + body + b"\r\n.\r\n")
        got, text = c.reply()
        assert got == code and text[0].startswith("5.6.0"), text
    c.expect("NOOP", 250)
    # STARTTLS with a command pipelined behind it: the command is discarded
    c = session()
    c.send("STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    assert c.reply()[0] == 220
    c.starttls()
    c.expect("MAIL FROM:<%s>" % SENDER, 503, "5.5.1")   # no EHLO after TLS yet
    c.close()
    # clients vanishing mid-DATA and mid-BDAT
    for _ in range(5):
        c = session()
        c.expect("MAIL FROM:<%s>" % SENDER, 250)
        c.expect("RCPT TO:<%s>" % ALICE, 250)
        c.expect("DATA", 354)
        c.send(b"Subject: vanished\r\n\r\nhalf a mess")
        c.close()
    c = session()
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    c.expect("RCPT TO:<%s>" % ALICE, 250)
    c.send(b"BDAT 1000\r\nonly some")
    c.close()
    # still serving; nothing half-delivered; the first message intact
    second = make_message(token())
    with smtp(inst) as s:
        assert s.sendmail(SENDER, [ALICE], second) == {}
    assert server.alive()
    assert [strip_trace(m)[1] for m in inbox(inst, ALICE)] == [first, second]


def test_pipelining_without_reading_stays_bounded(mx):
    inst, server = mx

    def rss_kb():
        status = open("/proc/%d/status" % server.pid).read()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))

    before = rss_kb()
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.sock.settimeout(3)
    sent, chunk = 0, b"NOOP\r\n" * 10000
    try:
        while sent < 64 << 20:
            c.sock.sendall(chunk)
            sent += len(chunk)
    except socket.timeout:
        pass
    assert sent < 64 << 20, "the server kept reading commands it could not answer"
    assert rss_kb() - before < 32 << 10
    c.close()
    Raw(inst.smtp_port).expect("EHLO client.example", 250)


# ---- signals, crashes, logs, data at rest ------------------------------------------


def test_sigterm_lets_transactions_finish(users):
    inst = users
    set_opts(inst, shutdown_grace="5s")
    server = SmtpServer(inst).start()
    idle = Raw(inst.smtp_port)
    idle.expect("EHLO client.example", 250)
    busy = Raw(inst.smtp_port)
    busy.expect("EHLO client.example", 250)
    busy.expect("MAIL FROM:<%s>" % SENDER, 250)
    busy.expect("RCPT TO:<%s>" % ALICE, 250)
    busy.expect("DATA", 354)
    msg = make_message(token())
    busy.send(msg[:30])
    server.signal(signal.SIGTERM)
    got, text = idle.reply()
    assert got == 421 and text[0].startswith("4.3.2")
    assert idle.is_closed()
    with pytest.raises(ConnectionRefusedError):   # no longer accepting
        socket.create_connection(("127.0.0.1", inst.smtp_port), timeout=5)
    time.sleep(0.5)
    busy.send(msg[30:] + b".\r\n")
    assert busy.reply()[0] == 250
    assert busy.reply()[0] == 421
    assert server.proc.wait(timeout=10) == 0
    assert [strip_trace(m)[1] for m in inbox(inst, ALICE)] == [msg]


def test_sigterm_tempfails_after_grace(users):
    inst = users
    set_opts(inst, shutdown_grace="1s")
    server = SmtpServer(inst).start()
    busy = Raw(inst.smtp_port)
    busy.expect("EHLO client.example", 250)
    busy.expect("MAIL FROM:<%s>" % SENDER, 250)
    busy.expect("RCPT TO:<%s>" % ALICE, 250)
    busy.expect("DATA", 354)
    busy.send(b"Subject: never finished\r\n\r\n")
    start = time.monotonic()
    server.signal(signal.SIGTERM)
    got, text = busy.reply()
    assert got == 451 and text[0].startswith("4.3.2")
    assert 0.8 < time.monotonic() - start < 5
    assert server.proc.wait(timeout=10) == 0
    assert inbox(inst, ALICE) == []


def test_sighup_reloads_certificate(mx):
    inst, server = mx
    before = peer_cert(inst.smtp_port)
    new_cert(inst)
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "TLS certificate and key reloaded" in server.log_text())
    after = peer_cert(inst.smtp_port)
    assert before != after and b"renewed.example.org" in after


def rcpt_reply(inst, address):
    c = Raw(inst.smtp_port)
    c.expect("EHLO client.example", 250)
    c.expect("MAIL FROM:<%s>" % SENDER, 250)
    got, text = c.cmd("RCPT TO:<%s>" % address)
    c.close()
    return got, text[-1][:5]


def test_account_changes_reach_a_running_server(mx):
    """Accounts added or deleted with the CLI while the server runs: the
    server looks every recipient up in the account directory afresh (it
    caches no account list), so RCPT sees a change at once, without a
    signal; SIGHUP (which reloads the certificates) keeps it so."""
    inst, server = mx
    carol, dave = "carol@example.org", "dave@example.org"
    assert rcpt_reply(inst, carol) == (550, "5.1.1")
    # No signal: the next RCPT already sees the change.
    inst.add_user(carol, "us-east")
    assert inst.run(["user", "delete", BOB]).returncode == 0
    assert rcpt_reply(inst, carol) == (250, "2.1.5")
    assert rcpt_reply(inst, BOB) == (550, "5.1.1")
    # With SIGHUP.
    inst.add_user(dave, "eu-ie")
    assert inst.run(["user", "delete", carol]).returncode == 0
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "SIGHUP" in server.log_text())
    assert rcpt_reply(inst, dave) == (250, "2.1.5")
    assert rcpt_reply(inst, carol) == (550, "5.1.1")
    assert rcpt_reply(inst, BOB) == (550, "5.1.1")
    assert rcpt_reply(inst, ALICE) == (250, "2.1.5")
    # The new account really receives; a re-added address starts empty.
    msg = make_message(token())
    with smtp(inst) as s:
        assert s.sendmail(SENDER, [dave], msg) == {}
    assert [strip_trace(m)[1] for m in inbox(inst, dave)] == [msg]
    inst.add_user(BOB, "eu-ie")
    assert rcpt_reply(inst, BOB) == (250, "2.1.5")
    assert inbox(inst, BOB) == []
    assert server.alive()


def test_kill9_loses_no_acknowledged_message(users):
    inst = users
    set_opts(inst, max_connections_per_ip=100)
    server = SmtpServer(inst).start()
    acked, stop = [], threading.Event()
    lock = threading.Lock()

    def sender():
        while not stop.is_set():
            t = token()
            try:
                with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=10) as s:
                    if s.sendmail(SENDER, [ALICE, BOB], make_message(t, body_lines=40)) == {}:
                        with lock:
                            acked.append(t)
            except Exception:  # noqa: BLE001 - the server is being killed
                return

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for th in threads:
        th.start()
    assert wait_until(lambda: len(acked) >= 20, timeout=60)
    server.kill9()
    stop.set()
    for th in threads:
        th.join(timeout=30)
    server.start()
    with smtp(inst) as s:
        assert s.sendmail(SENDER, [ALICE], make_message(token())) == {}
    check_clean_stop(server)
    sent = {make_message(t, body_lines=40) for t in acked}
    for who in (ALICE, BOB):
        got = [strip_trace(m)[1] for m in inbox(inst, who)]
        for m in got:   # nothing half-written: every stored message is whole
            t = re.search(rb"Subject: subject-(tok[0-9a-f]+)", m).group(1).decode()
            assert m in (make_message(t, body_lines=40), make_message(t)), m[:200]
        assert sent <= set(got), "acknowledged messages missing"


def test_logs_and_data_at_rest_hold_no_plaintext(mx):
    inst, server = mx
    tokens = [token() for _ in range(3)]
    with smtp(inst) as s:
        for t in tokens:
            assert s.sendmail(SENDER, [ALICE, BOB], make_message(t)) == {}
        s.ehlo()
        s.starttls(context=tls_context())
        s.ehlo()
        t = token()
        tokens.append(t)
        assert s.sendmail(SENDER, [ALICE], make_message(t)) == {}
    # Large messages too (sealed into records.dat, or past 1 MiB into a file
    # of their own in records/), with tokens in the body, the Subject and From.
    for size in (40 << 10, 300 << 10, 1500 << 10):
        body, subj, frm = token(), token(), token()
        tokens += [body, subj, frm]
        big = (b"From: " + frm.encode() + b" <" + frm.encode() + b"@remote.example>\r\n"
               b"To: alice@example.org\r\nSubject: " + subj.encode() + b"\r\n\r\n" +
               b"".join(b"%s line %07d\r\n" % (body.encode(), i)
                        for i in range(size // 32)))
        with smtp(inst) as s:
            assert s.sendmail(SENDER, [ALICE, BOB], big) == {}
    Raw(inst.smtp_port).expect("EHLO client.example", 250)
    for region in ("eu-ie", "us-east"):
        assert (inst.region_dir(region) / "records.dat").stat().st_size > 300 << 10
        assert [p.stat().st_size > 1500 << 10
                for p in (inst.region_dir(region) / "records").iterdir()] == [True]
    log = server.log_text()
    for line in log.splitlines():
        if " smtp " in line and "[127.0.0.1]" not in line:
            assert "smtp:" in line, line   # server-wide lines, not a session's
    assert re.search(r"smtp [0-9a-f]{12} \[127\.0\.0\.1\]: connect", log)
    assert "stored" in log
    for needle in tokens + [ALICE, BOB, SENDER, "subject-"]:
        assert needle not in log, needle
    assert scan_at_rest(inst.dir, tokens) == []
