"""Large messages are sealed as they stream in: the server's and `sealmail
deliver`'s memory stay bounded whatever the message's size, and what is
stored (body and the metadata computed on the way) is exact."""
import base64
import hashlib
import imaplib
import os
import re
import smtplib
import subprocess

from conftest import Server, is_asan

USER = "alice@example.org"
PW = "correct horse"
MB = 1024 * 1024


def slack(binary):
    """What peak memory may grow by for one large message: a delivery holds
    about 1 MiB of plaintext before it streams, and sealed bytes past the
    store's bound go to a temporary file. Under ASan (libasan is linked in)
    freed memory sits in quarantine (256 MB by default)."""
    return (320 if is_asan(binary) else 24) * MB


def attachment(size, seed):
    out, block = [], hashlib.sha256(seed).digest()
    while sum(map(len, out)) < size:
        block = hashlib.sha256(block).digest()
        out.append(block * 64)
    return b"".join(out)[:size]


def big_message(size, tag):
    """multipart/mixed: a text part, then a base64 attachment of SIZE bytes.
    Returns the message and the attachment part's body (octets, lines)."""
    b64 = base64.encodebytes(attachment(size, tag.encode())).replace(b"\n", b"\r\n")
    head = ("From: Bob <bob@example.net>\r\nTo: %s\r\nSubject: %s\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
            "--b1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nsee attached\r\n"
            "--b1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n" % (USER, tag)).encode()
    # The CRLF before the close delimiter belongs to the delimiter.
    body = b64[:-2]
    return head + body + b"\r\n--b1--\r\n", (len(body), body.count(b"\n"))


def inbox(instance):
    return [m for _, _, m in instance.export(USER)["INBOX"]]


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no " + key)


def attachment_size_in_bodystructure(imap, uid):
    typ, data = imap.uid("FETCH", str(uid), "(BODYSTRUCTURE)")
    assert typ == "OK", data
    text = b"".join(x if isinstance(x, bytes) else b"".join(x) for x in data).decode()
    m = re.search(r'\("APPLICATION" "OCTET-STREAM" \S+ NIL NIL "BASE64" (\d+)', text, re.I)
    assert m, text
    return int(m.group(1))


def test_large_smtp_message_streams_with_bounded_memory(instance):
    instance.set_option("smtp", "max_message_size", "200M")
    instance.add_user(USER)
    srv = Server(instance).start()
    try:
        with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=120) as s:
            s.sendmail("bob@example.net", [USER], b"Subject: warm up\r\n\r\nhello\r\n")
        before = status_kb(srv.pid, "VmHWM")
        msg, (octets, _) = big_message(64 * MB, "streamed")
        with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=300) as s:
            s.sendmail("bob@example.net", [USER], msg)
        grew = status_kb(srv.pid, "VmHWM") - before
        assert grew < slack(instance.bin), "peak memory grew %d MB for a %d MB message" % (
            grew // MB, len(msg) // MB)

        imap = imaplib.IMAP4("127.0.0.1", instance.imap_port)
        imap.login(USER, PW)
        imap.select("INBOX", readonly=True)
        assert attachment_size_in_bodystructure(imap, 2) == octets
        typ, data = imap.uid("FETCH", "2", "(RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK"
        size = int(re.search(rb"RFC822\.SIZE (\d+)", data[0][0]).group(1))
        imap.logout()
    finally:
        srv.stop()
    got = [m for m in inbox(instance) if b"Subject: streamed" in m]
    assert len(got) == 1
    assert got[0].endswith(msg) and len(got[0]) == size


def test_large_local_delivery_streams_with_bounded_memory(instance):
    instance.set_option("smtp", "max_message_size", "200M")
    instance.add_user(USER)
    msg, _ = big_message(48 * MB, "local")
    small = instance.deliver(USER, b"Subject: small\r\n\r\nhi\r\n")
    assert small.returncode == 0, small.stderr
    peaks = []
    for m in (b"Subject: small\r\n\r\nhi\r\n", msg):
        p = subprocess.Popen([instance.bin, "-c", str(instance.conf), "deliver", USER],
                             stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=instance.env)
        p.stdin.write(m)
        p.stdin.close()
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        assert p.returncode == 0, p.stderr.read()
        peaks.append(usage.ru_maxrss * 1024)
    assert peaks[1] - peaks[0] < slack(instance.bin), "deliver peaked %d MB above a small delivery" % (
        (peaks[1] - peaks[0]) // MB)
    got = [m for m in inbox(instance) if b"Subject: local" in m]
    assert got == [msg]


def test_message_just_over_the_streaming_bound_and_refusal_midway(instance, server):
    """Sizes around the point where a delivery starts to stream, and a
    message refused for its size after it started streaming: the server
    answers 552, stores nothing of it, and goes on serving."""
    instance.set_option("smtp", "max_message_size", "3M")
    instance.add_user(USER)
    server.stop()
    server.start()
    sent = []
    for k, size in enumerate((MB - 300, MB, MB + 1, 2 * MB + 7)):
        body = (b"%07d" % k + b"y" * 69 + b"\r\n") * (size // 78 + 1)
        m = b"Subject: edge %d\r\n\r\n" % k + body
        with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=60) as s:
            s.sendmail("bob@example.net", [USER], m)
        sent.append(m)
    too_big = b"Subject: too big\r\n\r\n" + (b"z" * 76 + b"\r\n") * (4 * MB // 78)
    with smtplib.SMTP("127.0.0.1", instance.smtp_port, timeout=60) as s:
        # No SIZE= on MAIL: the limit is only found while the data streams.
        s.ehlo()
        assert s.mail("bob@example.net")[0] == 250
        assert s.rcpt(USER)[0] == 250
        code, _ = s.data(too_big)
        assert code == 552
        assert s.noop()[0] == 250
    got = inbox(instance)
    assert len(got) == len(sent)
    for m in sent:
        assert sum(1 for g in got if g.endswith(m)) == 1
