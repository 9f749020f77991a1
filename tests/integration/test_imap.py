"""IMAP as a client sees it: python's imaplib (and raw sockets for what
imaplib cannot say) against `sealmail serve`."""
import base64
import imaplib
import re
import smtplib
import socket
import ssl
import time

import pytest

from conftest import scan_at_rest

USER = "alice@example.org"
PW = "correct horse"

SIMPLE = (b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\n"
          b"Subject: hello there\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
          b"Message-ID: <one@example.net>\r\n\r\nplain body zebratoken\r\nline two\r\n")

MULTI = (
    "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>\r\n"
    "To: Alice <alice@example.org>, bob@example.net\r\n"
    "Cc: carol@example.com\r\n"
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=\r\n"
    "Date: Tue, 1 Mar 2022 10:00:00 +0100\r\n"
    "Message-ID: <multi@example.de>\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"XYZ\"\r\n"
    "\r\n"
    "preamble\r\n"
    "--XYZ\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "Sch=C3=B6ne Gr=C3=BC=C3=9Fe, quokkaword\r\n"
    "--XYZ\r\n"
    "Content-Type: application/pdf; name=\"report.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQKJcfsj6IKc2VjcmV0IGF0dGFjaG1lbnQK\r\n"
    "--XYZ--\r\n").encode()


def login(instance, user=USER, pw=PW):
    m = imaplib.IMAP4("127.0.0.1", instance.imap_port)
    m.login(user, pw)
    return m


@pytest.fixture
def alice(instance):
    instance.set_option("imap", "auth_fail_delay_ms", "50")
    instance.add_user(USER)
    assert instance.deliver(USER, SIMPLE).returncode == 0
    assert instance.deliver(USER, MULTI).returncode == 0
    return instance


@pytest.fixture
def srv(alice, server):
    return server


class Raw:
    """A line-level IMAP client for what imaplib does not do."""

    def __init__(self, port, tls=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        self.s = s
        self.f = s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline()

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def cmd(self, text, tag="t1"):
        self.send("%s %s\r\n" % (tag, text) if isinstance(text, str) else
                  tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            l = self.line()
            if not l:
                raise EOFError(b"".join(lines))
            lines.append(l)
            if l.startswith(tag.encode() + b" "):
                return lines

    def close(self):
        self.s.close()


def test_capability_login_logout(srv, alice):
    m = imaplib.IMAP4("127.0.0.1", alice.imap_port)
    assert "AUTH=PLAIN" in m.capabilities and "STARTTLS" in m.capabilities
    assert "IDLE" in m.capabilities and "LITERAL+" in m.capabilities
    with pytest.raises(imaplib.IMAP4.error):
        m.login(USER, "wrong")
    typ, data = m.login(USER, PW)
    assert typ == "OK"
    typ, data = m.capability()
    for cap in (b"UIDPLUS", b"MOVE", b"NAMESPACE", b"UNSELECT", b"SPECIAL-USE", b"CONDSTORE",
                b"LIST-STATUS", b"ENABLE", b"ID"):
        assert cap in data[0]
    assert m.noop()[0] == "OK"
    assert m.logout()[0] == "BYE"


def test_authenticate_plain_and_sasl_ir(srv, alice):
    m = imaplib.IMAP4("127.0.0.1", alice.imap_port)
    typ, _ = m.authenticate("PLAIN", lambda _: ("\0%s\0%s" % (USER, PW)).encode())
    assert typ == "OK"
    m.logout()
    r = Raw(alice.imap_port)
    ir = base64.b64encode(("\0%s\0%s" % (USER, PW)).encode()).decode()
    assert r.cmd("AUTHENTICATE PLAIN " + ir)[-1].startswith(b"t1 OK")
    r.close()
    r = Raw(alice.imap_port)
    r.send("t2 AUTHENTICATE PLAIN\r\n")
    assert r.line().startswith(b"+")
    r.send("*\r\n")
    assert r.until("t2")[-1].startswith(b"t2 BAD")
    r.close()


def test_starttls_and_imaps(srv, alice):
    m = imaplib.IMAP4("127.0.0.1", alice.imap_port)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    m.starttls(ssl_context=ctx)
    m.login(USER, PW)
    assert m.select("INBOX")[1] == [b"2"]
    m.logout()
    m = imaplib.IMAP4_SSL("127.0.0.1", alice.imaps_port, ssl_context=ctx)
    m.login(USER, PW)
    m.logout()


def test_fetch_byte_exact_and_partials(srv, alice):
    m = login(alice)
    m.select("INBOX")
    typ, data = m.fetch("1", "(BODY.PEEK[])")
    assert data[0][1] == SIMPLE
    typ, data = m.fetch("1", "(BODY.PEEK[]<5.10>)")
    assert data[0][0].endswith(b"BODY[]<5> {10}") and data[0][1] == SIMPLE[5:15]
    typ, data = m.fetch("1", "(BODY.PEEK[]<500.10>)")
    assert data[0][0].endswith(b"{0}")
    hdr_end = SIMPLE.index(b"\r\n\r\n") + 4
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER])")
    assert data[0][1] == SIMPLE[:hdr_end]
    typ, data = m.fetch("1", "(BODY.PEEK[TEXT])")
    assert data[0][1] == SIMPLE[hdr_end:]
    typ, data = m.fetch("1", "(RFC822.HEADER)")
    assert data[0][1] == SIMPLE[:hdr_end]
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (subject FROM)])")
    assert data[0][1] == (b"From: Bob <bob@example.net>\r\nSubject: hello there\r\n\r\n")
    typ, data = m.fetch("1", "(BODY.PEEK[HEADER.FIELDS.NOT (Subject From Date Message-ID)])")
    assert data[0][1] == b"To: alice@example.org\r\n\r\n"
    typ, data = m.fetch("1", "(FLAGS)")
    assert b"\\Seen" not in data[0]
    typ, data = m.fetch("1", "(RFC822)")
    assert data[0][1] == SIMPLE and b"\\Seen" in data[1]
    typ, data = m.fetch("1", "(RFC822.SIZE INTERNALDATE UID)")
    assert b"RFC822.SIZE %d" % len(SIMPLE) in data[0]
    assert re.search(rb'INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d \+0000"', data[0])
    typ, data = m.uid("FETCH", "1:*", "(FLAGS)")
    assert len(data) == 2 and b"UID 1" in data[0]


def test_multipart_envelope_bodystructure_sections(srv, alice):
    m = login(alice)
    m.select("INBOX")
    typ, data = m.fetch("2", "(ENVELOPE BODYSTRUCTURE)")
    line = data[0] if isinstance(data[0], bytes) else data[0][0]
    assert b'"Tue, 1 Mar 2022 10:00:00 +0100"' in line
    assert b"<multi@example.de>" in line
    assert b'"mixed"' in line.lower() and b'"application" "pdf"' in line.lower()
    assert b'"report.pdf"' in line
    typ, data = m.fetch("2", "(BODY.PEEK[1])")
    assert data[0][1] == b"Sch=C3=B6ne Gr=C3=BC=C3=9Fe, quokkaword"
    typ, data = m.fetch("2", "(BODY.PEEK[1.MIME])")
    assert data[0][1].startswith(b"Content-Type: text/plain; charset=utf-8\r\n")
    assert data[0][1].endswith(b"\r\n\r\n")
    typ, data = m.fetch("2", "(BODY.PEEK[2])")
    assert base64.b64decode(data[0][1]) == b"%PDF-1.4\n%\xc7\xec\x8f\xa2\nsecret attachment\n"
    typ, data = m.fetch("2", "(BINARY.PEEK[2] BINARY.SIZE[2])")
    assert data[0][1] == b"%PDF-1.4\n%\xc7\xec\x8f\xa2\nsecret attachment\n"
    typ, data = m.fetch("2", "(BINARY.PEEK[1])")
    assert data[0][1] == "Schöne Grüße, quokkaword".encode()
    typ, data = m.fetch("2", "(BODY.PEEK[3])")
    assert typ == "OK"
    typ, data = m.fetch("2", "(BODY.PEEK[])")
    assert data[0][1] == MULTI
    typ, data = m.fetch("1:2", "(BODY)")
    assert typ == "OK"


def test_search(srv, alice):
    m = login(alice)
    m.select("INBOX")
    assert m.search(None, "ALL")[1] == [b"1 2"]
    assert m.search(None, "BODY", "zebratoken")[1] == [b"1"]
    assert m.search(None, "TEXT", "QUOKKAWORD")[1] == [b"2"]
    assert m.search("UTF-8", "BODY", "\"SCHÖNE GRÜSSE\"".encode())[1] == [b"2"]
    assert m.search(None, "SUBJECT", "hello")[1] == [b"1"]
    assert m.search("UTF-8", "SUBJECT", "grüße".encode())[1] == [b"2"]
    assert m.search(None, "FROM", "müller".encode())[1] == [b"2"]
    assert m.search(None, "TO", "bob@example.net")[1] == [b"2"]
    assert m.search(None, "CC", "carol")[1] == [b"2"]
    assert m.search(None, "HEADER", "Message-ID", "multi@")[1] == [b"2"]
    assert m.search(None, "OR", "SUBJECT", "hello", "CC", "carol")[1] == [b"1 2"]
    assert m.search(None, "NOT", "SUBJECT", "hello")[1] == [b"2"]
    assert m.search(None, "(SEEN)")[1] == [b""]
    assert m.search(None, "UNSEEN", "LARGER", "300")[1] == [b"2"]
    assert m.search(None, "SMALLER", "300")[1] == [b"1"]
    assert m.search(None, "SENTBEFORE", "1-Jan-2000")[1] == [b"1"]
    assert m.search(None, "SENTSINCE", "1-Jan-2000")[1] == [b"2"]
    assert m.search(None, "SENTON", "1-Mar-2022")[1] == [b"2"]
    assert m.search(None, "SINCE", "1-Jan-2000", "BEFORE", "1-Jan-2100")[1] == [b"1 2"]
    assert m.search(None, "2")[1] == [b"2"]
    assert m.uid("SEARCH", "UID", "2:*")[1] == [b"2"]
    assert m.search(None, "NEW")[1] == [b""]
    # Index keys mixed with content keys: the index decides where it can.
    assert m.search(None, "2", "BODY", "zebratoken")[1] == [b""]
    assert m.search(None, "1", "BODY", "zebratoken")[1] == [b"1"]
    assert m.search(None, "OR", "2", "BODY", "zebratoken")[1] == [b"1 2"]
    assert m.search(None, "NOT", "1", "TEXT", "QUOKKAWORD")[1] == [b"2"]
    assert m.search(None, "LARGER", "300", "NOT", "BODY", "zebratoken")[1] == [b"2"]
    assert m.uid("SEARCH", "UID", "1", "OR", "SEEN", "BODY", "zebratoken")[1] == [b"1"]
    m.store("1", "+FLAGS", "($Label1)")
    assert m.search(None, "KEYWORD", "$Label1")[1] == [b"1"]
    assert m.search(None, "UNKEYWORD", "$Label1")[1] == [b"2"]
    typ, data = m.search("KOI8-R", "ALL")
    assert typ == "NO"
    with pytest.raises(imaplib.IMAP4.error):
        m.search(None, "FROBNICATE")


def test_store_copy_move_expunge_uidplus(srv, alice):
    m = login(alice)
    m.select("INBOX")
    typ, data = m.store("1", "+FLAGS", r"(\Flagged \Answered)")
    assert b"\\Flagged" in data[0] and b"\\Answered" in data[0]
    typ, data = m.store("1", "-FLAGS", r"(\Answered)")
    assert b"\\Answered" not in data[0]
    typ, data = m.store("1", "FLAGS.SILENT", r"(\Seen)")
    assert data == [None]
    typ, data = m.copy("1:2", "Archive")
    assert typ == "OK"
    assert re.match(rb"\[COPYUID \d+ 1:2 1:2\]", data[0])
    typ, data = m._simple_command("MOVE", "1", "Trash")
    assert typ == "OK"
    assert m.select("INBOX")[1] == [b"1"]
    assert m.status("Archive", "(MESSAGES UNSEEN)")[1][0].endswith(b"(MESSAGES 2 UNSEEN 1)")
    m.select("Archive")
    m.store("1:2", "+FLAGS", r"\Deleted")
    typ, data = m.uid("EXPUNGE", "1")
    assert typ == "OK"
    assert m.select("Archive")[1] == [b"1"]
    assert m.expunge()[1] == [b"1"]
    assert m.select("Archive")[1] == [b"0"]
    typ, data = m.append("Archive", r"(\Seen $Forwarded)", '"07-Feb-1994 21:52:25 -0800"', SIMPLE)
    assert re.match(rb"\[APPENDUID \d+ 3\]", data[0])
    m.select("Archive")
    typ, data = m.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])")
    assert b"$Forwarded" in data[0][0] and b"08-Feb-1994 05:52:25 +0000" in data[0][0]
    assert data[0][1] == SIMPLE
    assert m.close()[0] == "OK"
    assert m.select("Archive", readonly=True)[0] == "OK"
    typ, data = m.store("1", "+FLAGS", r"\Deleted")
    assert typ == "NO"
    assert m.unselect()[0] == "OK"


def test_mailboxes(srv, alice):
    m = login(alice)
    typ, data = m.list()
    names = b"\n".join(data)
    for role in (b"\\Sent", b"\\Drafts", b"\\Trash", b"\\Junk", b"\\Archive"):
        assert role in names
    assert m.create("Projects/Alpha")[0] == "OK"
    assert m.create("Projects/Alpha")[0] == "NO"
    assert m.create("Reiseführer".encode("utf-7").replace(b"+", b"&").decode())[0] == "OK"
    typ, data = m.list('""', "%")
    assert any(b'"Projects"' in d and b"\\Noselect" in d for d in data)
    assert not any(b"Projects/Alpha" in d for d in data)
    typ, data = m.list("Projects/", "*")
    assert data == [b'(\\HasNoChildren) "/" "Projects/Alpha"']
    typ, data = m.list('""', "Reise*")
    assert data == [b'(\\HasNoChildren) "/" "Reisef&APw-hrer"']
    assert m.rename("Projects/Alpha", "Projects/Beta")[0] == "OK"
    assert m.rename("INBOX", "Other")[0] == "NO"
    assert m.subscribe("Projects/Beta")[0] == "OK"
    assert m.unsubscribe("Sent")[0] == "OK"
    typ, data = m.lsub()
    assert not any(b'"Sent"' in d for d in data) and any(b"Projects/Beta" in d for d in data)
    typ, data = m.status("INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)")
    assert b"MESSAGES 2" in data[0] and b"UIDNEXT 3" in data[0]
    typ, data = m._simple_command("LIST", "(SPECIAL-USE)", '""', '"*"')
    typ, data = m._untagged_response(typ, data, "LIST")
    assert len(data) == 5
    typ, data = m._simple_command("LIST", '""', '"INBOX"', "RETURN", "(STATUS (MESSAGES UNSEEN))")
    typ, data = m._untagged_response(typ, data, "STATUS")
    assert data == [b'"INBOX" (MESSAGES 2 UNSEEN 2)']
    assert m.delete("Projects/Beta")[0] == "OK"
    assert m.delete("INBOX")[0] == "NO"
    assert m.delete("Nope")[0] == "NO"
    for bad in ('"a/../b"', '"../x"', '"a//b"', '"/abs"', '"x&Jjo"', '"&AGEAYgBj-"', "{3+}\r\na\0b"):
        typ, data = m._simple_command("CREATE", bad)
        assert typ in ("NO", "BAD"), bad
    typ, data = m.namespace()
    assert data == [b'(("" "/")) NIL NIL']
    typ, data = m.xatom("ID", '("name" "test")')
    assert typ == "OK"
    typ, data = m._simple_command("ENABLE", "CONDSTORE")
    assert typ == "OK"


def test_two_sessions_see_flags_and_expunges(srv, alice):
    a = login(alice)
    b = login(alice)
    a.select("INBOX")
    b.select("INBOX")
    a.store("1", "+FLAGS", r"(\Flagged)")
    typ, data = b.noop()
    flags = [d for d in b.untagged_responses.get("FETCH", [])]
    assert any(b"\\Flagged" in f for f in flags), b.untagged_responses
    a.store("1", "+FLAGS", r"(\Deleted)")
    a.expunge()
    b.noop()
    assert b.untagged_responses.get("EXPUNGE") == [b"1"], b.untagged_responses
    b.untagged_responses.clear()
    assert b.fetch("1", "(UID)")[1] == [b"1 (UID 2)"]


def test_fetch_of_a_message_expunged_elsewhere(srv, alice):
    """A FETCH may not announce an EXPUNGE (RFC 9051 7.5.1), so a message
    another session expunged after this one's view was last updated cannot
    be fetched: the others still are, and the command ends NO
    [EXPUNGEISSUED] (RFC 5530, RFC 2180 4.1.3), not as a server fault. The
    next NOOP reports the expunge."""
    assert alice.deliver(USER, SIMPLE.replace(b"Subject: ", b"Subject: third ")).returncode == 0
    b = Raw(alice.imap_port)
    assert b.cmd("LOGIN %s \"%s\"" % (USER, PW))[-1].startswith(b"t1 OK")
    assert b.cmd("SELECT INBOX")[-1].startswith(b"t1 OK")
    a = login(alice)
    a.select("INBOX")
    a.store("2", "+FLAGS", r"(\Deleted)")
    assert a.expunge()[1] == [b"2"]
    for body in ("BODY.PEEK[]", "ENVELOPE"):
        lines = b.cmd("FETCH 1:3 (UID %s)" % body)
        fetched = [l for l in lines if re.match(rb"\* \d+ FETCH", l)]
        assert [l.split()[1] for l in fetched] == [b"1", b"3"], lines
        assert lines[-1].startswith(b"t1 NO [EXPUNGEISSUED]"), lines
        assert not any(b"EXPUNGE\r\n" in l for l in lines), lines
    lines = b.cmd("NOOP")
    assert b"* 2 EXPUNGE\r\n" in lines and lines[-1].startswith(b"t1 OK"), lines
    assert b.cmd("FETCH 1:2 (UID)")[-1].startswith(b"t1 OK")
    a.logout()
    b.close()
    assert "message uid" not in srv.log_text()   # not logged as a fault


@pytest.mark.serial  # wake-up time bound
def test_idle_wakes_on_smtp_delivery(srv, alice):
    r = Raw(alice.imap_port)
    r.cmd("LOGIN %s \"%s\"" % (USER, PW))
    r.cmd("SELECT INBOX", "t2")
    r.send("t3 IDLE\r\n")
    assert r.line().startswith(b"+")
    start = time.monotonic()
    with smtplib.SMTP("127.0.0.1", alice.smtp_port, timeout=10) as s:
        s.sendmail("bob@example.net", [USER], SIMPLE)
    r.s.settimeout(5)
    l = r.line()
    assert l == b"* 3 EXISTS\r\n", l
    assert time.monotonic() - start < 2.0
    # A delivery from another process (the CLI) is seen by polling.
    assert alice.deliver(USER, SIMPLE).returncode == 0
    assert r.line() == b"* 4 EXISTS\r\n"
    r.send("DONE\r\n")
    assert r.until("t3")[-1].startswith(b"t3 OK")
    r.close()


def test_condstore(srv, alice):
    m = login(alice)
    typ, data = m._simple_command("SELECT", "INBOX", "(CONDSTORE)")
    m.state = "SELECTED"
    assert b"HIGHESTMODSEQ" in b" ".join(m.untagged_responses.get("OK", []))
    typ, data = m.fetch("1:*", "(MODSEQ)")
    ms = max(int(re.search(rb"MODSEQ \((\d+)\)", d).group(1)) for d in data)
    typ, data = m._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % ms, "+FLAGS", r"(\Seen)")
    assert typ == "OK"
    typ, data = m._simple_command("STORE", "1", "(UNCHANGEDSINCE %d)" % ms, "+FLAGS", r"(\Flagged)")
    assert b"MODIFIED 1" in data[0]
    typ, data = m._simple_command("FETCH", "1:*", "(FLAGS)", "(CHANGEDSINCE %d)" % ms)
    typ, data = m._untagged_response(typ, data, "FETCH")
    assert len(data) == 1 and data[0].startswith(b"1 ")


def test_referral_for_other_region(instance):
    instance.set_option("server", "serve_regions", "eu-ie")
    instance.set_option("region us-east", "referral_host", "imap.us.example.org")
    instance.add_user("ursula@example.org", region="us-east")
    from conftest import Server
    s = Server(instance).start()
    try:
        m = imaplib.IMAP4("127.0.0.1", instance.imap_port)
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login("ursula@example.org", PW)
        assert b"REFERRAL imap://ursula%40example.org;AUTH=*@imap.us.example.org/" in \
            str(e.value).encode()
    finally:
        s.stop()


def test_bad_input_never_crashes(srv, alice):
    r = Raw(alice.imap_port)
    cases = [
        b"t1 NOOP (", b"t1 LOGIN \"unterminated", b"t1 LOGIN ((((a", b"t1 FETCH",
        b"t1 SELECT INBOX", b"t1 LOGIN a {-1}", b"t1 LOGIN a {99999999999999999999}",
        b"t1 LOGIN a {12x}", b")))", b"\0\0\0", b"t1 NOOP " + b"(" * 500, b"t1 CAPABILITY extra",
        b"t1 AUTHENTICATE PLAIN !!!notbase64", b"+ abc", b"*", b"t1 UID",
        b"t1 UID FETCH 1 FLAGS",
    ]
    for c in cases:
        r.send(c + b"\r\n")
        l = r.line()
        while l.startswith(b"+ ") and not l.startswith(b"+ OK"):
            l = r.line()
        assert l.startswith(b"t1 BAD") or l.startswith(b"* BAD") or l.startswith(b"t1 NO"), (c, l)
    assert r.cmd("LOGIN %s \"%s\"" % (USER, PW))[-1].startswith(b"t1 OK")
    r.cmd("SELECT INBOX")
    for c in [b"FETCH 0 FLAGS", b"FETCH 1:99 FLAGS", b"FETCH 1,,2 FLAGS", b"FETCH a:b FLAGS",
              b"FETCH 1 (FLAGS", b"FETCH 1 BODY[1.2.3.4.5.0]", b"FETCH 1 BODY[HEADER.FIELDS]",
              b"FETCH 4294967296 FLAGS", b"STORE 1 +FLAGS (\\Bogus)", b"SEARCH (((ALL",
              b"SEARCH " + b"NOT " * 200 + b"ALL", b"FETCH 1 BODY[]<-1.5>",
              b"SELECT \"\"", b"COPY 1 \"a\0b\"", b"STATUS INBOX (BOGUS)",
              b"APPEND INBOX", b"APPEND INBOX (\\Seen) {0+}\r\n"]:
        lines = r.cmd(c)
        assert re.match(rb"t1 (BAD|NO)", lines[-1]), (c, lines)
    # A literal announced but never sent: the connection just waits (and
    # times out in production); a new connection still works.
    r.send(b"t9 APPEND INBOX {100}\r\n")
    assert r.line().startswith(b"+")
    r.close()
    r = Raw(alice.imap_port)
    r.send(b"t1 APPEND INBOX {999999999999}\r\n")
    assert re.match(rb"t1 (BAD|NO)", r.line())
    r.close()
    m = login(alice)
    assert m.select("INBOX")[1] == [b"2"]
    m.logout()


def test_limits_configurable(instance):
    instance.add_user(USER)
    instance.set_option("imap", "max_unauth_commands", "3")
    instance.set_option("imap", "max_line", "200")
    from conftest import Server
    s = Server(instance).start()
    try:
        r = Raw(instance.imap_port)
        r.send(b"t1 NOOP " + b"x" * 300 + b"\r\n")
        assert r.line().startswith(b"* BAD")
        for _ in range(3):
            r.cmd("NOOP")
        r.send(b"t1 NOOP\r\n")
        assert r.line().startswith(b"* BYE")
        r.close()
    finally:
        s.stop()


def test_append_sealed_at_rest(srv, alice):
    m = login(alice)
    msg = (b"From: x@example.net\r\nSubject: ultrasecretsubjectword\r\n\r\n"
           b"plaintextbodysentinel\r\n")
    assert m.append("INBOX", None, None, msg)[0] == "OK"
    assert m.create("Hiddenmailboxname")[0] == "OK"
    m.select("INBOX")
    assert m.search(None, "BODY", "plaintextbodysentinel")[1] == [b"3"]
    assert m.fetch("3", "(BODY.PEEK[])")[1][0][1] == msg
    m.store("1", "+FLAGS", r"\Deleted")
    m.expunge()
    m.logout()
    found = scan_at_rest(alice.dir, ["ultrasecretsubjectword", "plaintextbodysentinel",
                                     "Hiddenmailboxname", "zebratoken", "quokkaword"])
    assert found == []
