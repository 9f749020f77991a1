"""FETCH of many large bodies to a client that does not read: the server
prepares output only a bounded distance ahead of the socket, so its memory
stays flat however much was asked for, and every byte still arrives."""
import hashlib
import imaplib
import re
import smtplib
import socket
import sqlite3
import threading
import time

import pytest

USER = "alice@example.org"
PW = "correct horse"
COUNT = 40
BODY_BYTES = 1024 * 1024
RSS_SLACK = 30 * 1024 * 1024


def big_message(i, size=BODY_BYTES):
    """About SIZE bytes of distinct, line-wrapped text for message I."""
    head = ("From: Bob <bob@example.net>\r\nTo: %s\r\nSubject: big %d\r\n"
            "Message-ID: <big%d@example.net>\r\n\r\n" % (USER, i, i)).encode()
    lines, seed, have = [], b"%d" % i, 0
    while have < size:
        seed = hashlib.sha256(seed).digest()
        line = seed.hex().encode() + b"\r\n"
        lines.append(line)
        have += len(line)
    return head + b"".join(lines)


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def read_line(f):
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    return line


def deliver_all(instance, msgs):
    """Delivers MSGS to USER over SMTP, in order (UIDs 1, 2, ...)."""
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=60) as smtp:
        for m in msgs:
            smtp.sendmail("bob@example.net", [USER], m)


def expect_ok(f, tag, count=1):
    """Reads up to COUNT tagged replies with TAG, each of them OK."""
    done = 0
    while done < count:
        line = read_line(f)
        if line.startswith(tag + b" "):
            assert line.startswith(tag + b" OK"), line
            done += 1


def fetch_bodies(f, tag):
    """The responses to a FETCH of BODY[] up to its tagged reply, every one
    a whole body: (the tagged reply, the sequence numbers in the order they
    came, {sequence number: body})."""
    seqs, got = [], {}
    while True:
        line = read_line(f)
        if line.startswith(tag + b" "):
            return line, seqs, got
        m = re.match(rb"\* (\d+) FETCH \(BODY\[\] \{(\d+)\}\r\n$", line)
        assert m, line[:200]
        n, size = int(m.group(1)), int(m.group(2))
        data = f.read(size)
        assert len(data) == size
        assert read_line(f) == b")\r\n"
        seqs.append(n)
        got[n] = data


@pytest.fixture
def big(instance, server):
    instance.add_user(USER)
    msgs = [big_message(i) for i in range(COUNT)]
    deliver_all(instance, msgs)
    return msgs


def test_fetch_large_bodies_to_stalled_reader_is_bounded(instance, server, big):
    s = socket.create_connection(("127.0.0.1", instance.imap_port), timeout=60)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    f = s.makefile("rb")
    assert read_line(f).startswith(b"* OK")
    s.sendall(b"a LOGIN \"%s\" \"%s\"\r\na SELECT INBOX\r\n" % (USER.encode(), PW.encode()))
    expect_ok(f, b"a", 2)
    time.sleep(0.5)
    before = vm_rss(server.pid)
    s.sendall(b"b FETCH 1:* (BODY.PEEK[])\r\n")
    peak = before
    for _ in range(30):  # 3 s of not reading
        time.sleep(0.1)
        peak = max(peak, vm_rss(server.pid))
    assert peak - before < RSS_SLACK, "server grew by %d MB" % ((peak - before) >> 20)

    # Now read everything: each body exactly as delivered (after any trace
    # header the server added), in order.
    tagged, _, got = fetch_bodies(f, b"b")
    assert tagged.startswith(b"b OK"), tagged
    s.close()
    assert sorted(got) == list(range(1, COUNT + 1))
    for i, msg in enumerate(big):
        assert got[i + 1].endswith(msg), "message %d differs" % (i + 1)

    # The same bytes as a fetch of one message at a time.
    c = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    c.login(USER, PW)
    c.select("INBOX", readonly=True)
    for n in (1, COUNT // 2, COUNT):
        typ, data = c.fetch(str(n), "(BODY.PEEK[])")
        assert typ == "OK" and data[0][1] == got[n]
    c.logout()


def test_client_gone_during_large_fetch(instance, server, big):
    """Connections that close while a FETCH is being prepared (a batch on the
    worker pool) or is waiting for its output to drain: the server cleans up
    and keeps serving."""
    for wait in (0.0, 0.05, 0.5, 1.0):
        s = socket.create_connection(("127.0.0.1", instance.imap_port), timeout=30)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        f = s.makefile("rb")
        read_line(f)
        s.sendall(b"a LOGIN \"%s\" \"%s\"\r\na EXAMINE INBOX\r\nb FETCH 1:* BODY.PEEK[]\r\n"
                  % (USER.encode(), PW.encode()))
        time.sleep(wait)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    time.sleep(0.5)
    assert server.alive()
    c = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    c.login(USER, PW)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch(str(COUNT), "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1].endswith(big[-1])
    c.logout()


def test_concurrent_fetches_each_get_their_own_bytes(instance, server):
    """Body buffers are reused from one message to the next (not wiped between),
    and one FETCH opens its bodies on several threads: a client alone, then
    sixteen clients fetching messages from 3 KB to 5 MB at once, three times
    over, each receive exactly the bytes of the messages they asked for, in
    order, never those of a buffer's earlier or later use."""
    instance.add_user(USER)
    sizes = [3000, 70000, 300000, 900000, 2500000, 5200000, 8000, 130000]
    msgs = [big_message(i, n) for i, n in enumerate(sizes)]
    deliver_all(instance, msgs)
    errors = []

    def client(k):
        try:
            c = imaplib.IMAP4("127.0.0.1", instance.imap_port)
            c.login(USER, PW)
            c.select("INBOX", readonly=True)
            for _ in range(3):
                order = list(range(len(msgs)))
                order = order[k % len(order):] + order[:k % len(order)]
                typ, data = c.fetch(",".join(str(n + 1) for n in order), "(BODY.PEEK[])")
                assert typ == "OK"
                got = {}
                seqs = []
                for item in data:
                    if isinstance(item, tuple):
                        seqs.append(int(item[0].split()[0]))
                        got[seqs[-1]] = item[1]
                if seqs != sorted(seqs):  # in mailbox order, whatever the set's
                    errors.append("client %d: responses out of order %s" % (k, seqs))
                for n in range(len(msgs)):
                    if not got.get(n + 1, b"").endswith(msgs[n]):
                        errors.append("client %d: message %d differs" % (k, n + 1))
            c.logout()
        except Exception as e:  # reported below, with the others
            errors.append("client %d: %r" % (k, e))

    client(0)  # alone: the pool is free to help open its bodies
    assert not errors, errors[:5]
    threads = [threading.Thread(target=client, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors[:5]
    assert server.alive()


def test_fetch_with_a_damaged_record(instance, server):
    """A record that no longer opens (bytes of it damaged on disk) in the
    middle of a FETCH whose batches are opened several at a time: every
    other message arrives whole and in mailbox order, the command ends NO,
    the log names the message, and the server keeps serving."""
    instance.add_user(USER)
    sizes = [3000, 900000, 2500000, 40000, 5200000, 8000, 700000, 130000]
    msgs = [big_message(i, n) for i, n in enumerate(sizes)]
    deliver_all(instance, msgs)
    region = instance.region_dir("eu-ie")
    con = sqlite3.connect(str(region / "store.sqlite"))
    off, length = con.execute(
        "SELECT e.off, e.len FROM extents e JOIN messages m ON m.record_id = e.record_id"
        " WHERE m.uid = 4").fetchone()
    con.close()
    with open(region / "records.dat", "r+b") as f:
        f.seek(off + length // 2)
        chunk = f.read(64)
        f.seek(off + length // 2)
        f.write(bytes(b ^ 0xFF for b in chunk))

    for _ in range(2):  # the second time with the body buffers reused
        s = socket.create_connection(("127.0.0.1", instance.imap_port), timeout=60)
        f = s.makefile("rb")
        assert read_line(f).startswith(b"* OK")
        s.sendall(b"a LOGIN \"%s\" \"%s\"\r\na EXAMINE INBOX\r\n" % (USER.encode(), PW.encode()))
        expect_ok(f, b"a", 2)
        s.sendall(b"b FETCH 1:* (BODY.PEEK[])\r\n")
        tagged, seqs, got = fetch_bodies(f, b"b")
        assert tagged.startswith(b"b NO "), tagged
        s.close()
        assert seqs == [1, 2, 3, 5, 6, 7, 8]
        for n in seqs:
            assert got[n].endswith(msgs[n - 1]), "message %d differs" % n
    assert server.alive()
    assert re.search(r"message uid 4: .*\(1 in batch\)", server.log_text())
    c = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    c.login(USER, PW)
    c.select("INBOX", readonly=True)
    typ, data = c.fetch("5", "(BODY.PEEK[])")
    assert typ == "OK" and data[0][1].endswith(msgs[4])
    c.logout()
