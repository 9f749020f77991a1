"""IMAP4rev2 (RFC 9051), ESEARCH (RFC 4731), BINARY's literal8 (RFC 3516) and
QRESYNC (RFC 7162) as a client sees them, over raw sockets where imaplib
cannot say it."""
import imaplib
import re

import pytest

import test_imap as base

USER = base.USER
PW = base.PW


def msg(n, extra=b""):
    return (b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\n"
            b"Subject: message %d\r\nMessage-ID: <m%d@example.net>\r\n\r\nbody %d\r\n" % (n, n, n)
            + extra)


@pytest.fixture
def alice5(instance):
    """alice with five messages in INBOX (UIDs 1..5)."""
    instance.set_option("imap", "auth_fail_delay_ms", "50")
    instance.add_user(USER)
    for n in range(1, 6):
        assert instance.deliver(USER, msg(n)).returncode == 0
    return instance


@pytest.fixture
def srv5(alice5, server):
    return server


def raw_login(instance):
    r = base.Raw(instance.imap_port)
    lines = r.cmd('LOGIN "%s" "%s"' % (USER, PW), tag="l1")
    assert lines[-1].startswith(b"l1 OK"), lines
    return r


def ok(lines, tag="t1"):
    assert lines[-1].startswith(tag.encode() + b" OK"), lines
    return lines


def untagged(lines, word):
    return [l for l in lines if l.startswith(b"* ") and
            re.match(rb"\* (\d+ )?" + word.encode() + rb"\b", l)]


# ---- capabilities and ENABLE ----------------------------------------------------


def test_capabilities_and_enable(srv5, alice5):
    m = imaplib.IMAP4("127.0.0.1", alice5.imap_port)
    assert "IMAP4REV1" in m.capabilities and "IMAP4REV2" in m.capabilities
    m.login(USER, PW)
    typ, data = m.capability()
    caps = data[0].split()
    for cap in (b"IMAP4rev1", b"IMAP4rev2", b"ESEARCH", b"BINARY", b"QRESYNC", b"CONDSTORE",
                b"STATUS=SIZE"):
        assert cap in caps, cap
    m.logout()

    r = raw_login(alice5)
    lines = ok(r.cmd("ENABLE IMAP4rev2"))
    assert b"* ENABLED IMAP4rev2\r\n" in lines
    lines = ok(r.cmd("ENABLE QRESYNC BOGUS", tag="t2"), tag="t2")
    assert b"* ENABLED QRESYNC\r\n" in lines
    r.close()


# ---- IMAP4rev2 behaviour ---------------------------------------------------------


def test_rev1_unchanged(srv5, alice5):
    r = raw_login(alice5)
    lines = ok(r.cmd("SELECT INBOX"))
    assert b"* 0 RECENT\r\n" in lines
    assert any(b"[UNSEEN 1]" in l for l in lines)
    lines = ok(r.cmd("UID SEARCH ALL", tag="t2"), tag="t2")
    assert b"* SEARCH 1 2 3 4 5\r\n" in lines
    assert not untagged(lines, "ESEARCH")
    r.close()


def test_rev2_select_no_recent(srv5, alice5):
    r = raw_login(alice5)
    ok(r.cmd("ENABLE IMAP4rev2"))
    lines = ok(r.cmd("SELECT INBOX", tag="t2"), tag="t2")
    assert not any(b"RECENT" in l for l in lines), lines
    assert not any(b"UNSEEN" in l for l in lines), lines
    assert b"* 5 EXISTS\r\n" in lines
    assert b'* LIST () "/" "INBOX"\r\n' in lines or b'* LIST () "/" INBOX\r\n' in lines
    # A new message shows up as EXISTS only.
    assert alice5.deliver(USER, msg(6)).returncode == 0
    lines = ok(r.cmd("NOOP", tag="t3"), tag="t3")
    assert b"* 6 EXISTS\r\n" in lines
    assert not any(b"RECENT" in l for l in lines), lines
    lines = ok(r.cmd("FETCH 6 (FLAGS)", tag="t4"), tag="t4")
    assert not any(b"\\Recent" in l for l in lines), lines
    r.close()


def test_rev2_search_is_esearch(srv5, alice5):
    r = raw_login(alice5)
    ok(r.cmd("ENABLE IMAP4rev2"))
    ok(r.cmd("SELECT INBOX", tag="t2"), tag="t2")
    ok(r.cmd("UID STORE 2,4 +FLAGS (\\Flagged)", tag="t3"), tag="t3")

    lines = ok(r.cmd("UID SEARCH ALL", tag="s1"), tag="s1")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s1") UID ALL 1:5\r\n']
    assert not untagged(lines, "SEARCH")

    lines = ok(r.cmd("SEARCH FLAGGED", tag="s2"), tag="s2")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s2") ALL 2,4\r\n']

    lines = ok(r.cmd("UID SEARCH RETURN (MIN MAX COUNT) FLAGGED", tag="s3"), tag="s3")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s3") UID MIN 2 MAX 4 COUNT 2\r\n']

    lines = ok(r.cmd("UID SEARCH RETURN (COUNT ALL) UNFLAGGED", tag="s4"), tag="s4")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s4") UID COUNT 3 ALL 1,3,5\r\n']

    lines = ok(r.cmd("SEARCH RETURN () CHARSET UTF-8 ALL", tag="s5"), tag="s5")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s5") ALL 1:5\r\n']

    # Nothing found: MIN, MAX and ALL are left out, COUNT is 0.
    lines = ok(r.cmd("UID SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT nosuchthing", tag="s6"),
               tag="s6")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s6") UID COUNT 0\r\n']

    # Bad RETURN options.
    for bad in ("SEARCH RETURN (BOGUS) ALL", "SEARCH RETURN MIN ALL", "SEARCH RETURN (MIN)"):
        lines = r.cmd(bad, tag="b1")
        assert lines[-1].startswith(b"b1 BAD"), (bad, lines)
    r.close()


def test_esearch_without_rev2(srv5, alice5):
    r = raw_login(alice5)
    ok(r.cmd("SELECT INBOX"))
    lines = ok(r.cmd("SEARCH RETURN (MIN MAX) 2:4", tag="s1"), tag="s1")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s1") MIN 2 MAX 4\r\n']
    # CONDSTORE: MODSEQ in the ESEARCH answer.
    lines = ok(r.cmd("UID SEARCH RETURN (COUNT) MODSEQ 1", tag="s2"), tag="s2")
    got = untagged(lines, "ESEARCH")
    assert len(got) == 1 and re.match(rb'\* ESEARCH \(TAG "s2"\) UID COUNT 5 MODSEQ \d+\r\n',
                                      got[0]), got
    r.close()


def test_rev2_status_and_list(srv5, alice5):
    r = raw_login(alice5)
    ok(r.cmd("ENABLE IMAP4rev2"))
    ok(r.cmd("SELECT INBOX", tag="t2"), tag="t2")
    ok(r.cmd("STORE 1 +FLAGS (\\Deleted)", tag="t3"), tag="t3")
    lines = ok(r.cmd("STATUS INBOX (MESSAGES DELETED SIZE)", tag="t4"), tag="t4")
    st = untagged(lines, "STATUS")
    assert len(st) == 1 and re.search(rb"MESSAGES 5 DELETED 1 SIZE (\d+)\)", st[0]), st
    size = int(re.search(rb"SIZE (\d+)", st[0]).group(1))
    # The mailbox's size is the sum of its messages' RFC822.SIZE.
    sizes = [int(x) for x in re.findall(rb"RFC822\.SIZE (\d+)",
                                        b"".join(ok(r.cmd("FETCH 1:* (RFC822.SIZE)", tag="t4b"),
                                                    tag="t4b")))]
    assert len(sizes) == 5 and size == sum(sizes) == sum(len(msg(n)) for n in range(1, 6))

    ok(r.cmd('CREATE "Projects/Alpha"', tag="t5"), tag="t5")
    lines = ok(r.cmd('LIST "" "%"', tag="t6"), tag="t6")
    assert b'* LIST (\\NonExistent \\HasChildren) "/" "Projects"\r\n' in lines or \
        b'* LIST (\\NonExistent \\HasChildren) "/" Projects\r\n' in lines, lines
    lines = ok(r.cmd('LIST "" "Projects/*" RETURN (SUBSCRIBED)', tag="t7"), tag="t7")
    assert any(b"\\Subscribed" in l and b"Projects/Alpha" in l for l in lines), lines
    r.close()


# ---- literal8 (BINARY) -----------------------------------------------------------

BINARY_MSG = (b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\n"
              b"Subject: binary\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Content-Transfer-Encoding: binary\r\n\r\n"
              + bytes(range(1, 256)) + b"\r\n\xff\xfe\x80 end\r\n")


def fetch_body(r, uid, tag):
    """UID FETCH BODY.PEEK[] over the raw connection: the literal's bytes."""
    r.send("%s UID FETCH %d (BODY.PEEK[])\r\n" % (tag, uid))
    body = None
    while True:
        l = r.line()
        assert l, "connection closed"
        m = re.search(rb"\{(\d+)\}\r\n$", l)
        if m and body is None:
            body = r.f.read(int(m.group(1)))
            continue
        if l.startswith(tag.encode() + b" "):
            assert l.startswith(tag.encode() + b" OK"), l
            return body


@pytest.mark.parametrize("plus", [False, True])
def test_append_literal8(srv5, alice5, plus):
    r = raw_login(alice5)
    n = len(BINARY_MSG)
    if plus:
        r.send(b"a1 APPEND INBOX (\\Seen) ~{%d+}\r\n" % n + BINARY_MSG + b"\r\n")
    else:
        r.send(b"a1 APPEND INBOX (\\Seen) ~{%d}\r\n" % n)
        assert r.line().startswith(b"+")
        r.send(BINARY_MSG + b"\r\n")
    lines = r.until("a1")
    assert lines[-1].startswith(b"a1 OK"), lines
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", lines[-1]).group(1))
    ok(r.cmd("SELECT INBOX", tag="t2"), tag="t2")
    assert fetch_body(r, uid, "f1") == BINARY_MSG
    r.close()


def test_literal8_nul(srv5, alice5):
    r = raw_login(alice5)
    data = b"From: a@example.net\r\nSubject: nul\r\n\r\nx\x00y\r\n"
    # A literal8 may hold a NUL ...
    r.send(b"a1 APPEND INBOX ~{%d+}\r\n" % len(data) + data + b"\r\n")
    lines = r.until("a1")
    assert lines[-1].startswith(b"a1 OK"), lines
    # ... a normal literal may not (RFC 3501) ...
    r.send(b"a2 APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    lines = r.until("a2")
    assert lines[-1].startswith(b"a2 BAD"), lines
    # ... and a literal8 is for APPEND's message only.
    r.send(b"a3 CREATE ~{3+}\r\nabc\r\n")
    lines = r.until("a3")
    assert lines[-1].startswith(b"a3 BAD"), lines
    r.send(b"a4 APPEND ~{5+}\r\nINBOX {3+}\r\nabc\r\n")
    lines = r.until("a4")
    assert lines[-1].startswith(b"a4 BAD"), lines
    # The session still works.
    ok(r.cmd("NOOP", tag="a5"), tag="a5")
    r.close()


# ---- QRESYNC ------------------------------------------------------------------------


def select_state(lines):
    text = b"".join(lines)
    uv = int(re.search(rb"\[UIDVALIDITY (\d+)\]", text).group(1))
    hm = int(re.search(rb"\[HIGHESTMODSEQ (\d+)\]", text).group(1))
    return uv, hm


def fetches(lines):
    """{uid: (seq, flags, modseq)} of the untagged FETCH FLAGS lines."""
    out = {}
    for l in lines:
        m = re.match(rb"\* (\d+) FETCH \(UID (\d+) FLAGS \(([^)]*)\) MODSEQ \((\d+)\)\)\r\n", l)
        if m:
            out[int(m.group(2))] = (int(m.group(1)), set(m.group(3).split()), int(m.group(4)))
    return out


def qresync_session(instance):
    r = raw_login(instance)
    lines = ok(r.cmd("ENABLE QRESYNC", tag="e1"), tag="e1")
    assert b"* ENABLED QRESYNC\r\n" in lines
    return r


def test_qresync_select(srv5, alice5):
    a = qresync_session(alice5)
    uv, m0 = select_state(ok(a.cmd("SELECT INBOX")))
    ok(a.cmd("UNSELECT", tag="t2"), tag="t2")

    b = raw_login(alice5)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 1 +FLAGS (\\Seen)", tag="t2"), tag="t2")
    ok(b.cmd("UID STORE 4 +FLAGS (\\Flagged)", tag="t3"), tag="t3")
    ok(b.cmd("UID STORE 3,5 +FLAGS (\\Deleted)", tag="t4"), tag="t4")
    lines = ok(b.cmd("EXPUNGE", tag="t5"), tag="t5")
    # B did not enable QRESYNC: classic EXPUNGE responses.
    assert b"* 5 EXPUNGE\r\n" in lines and b"* 3 EXPUNGE\r\n" in lines
    b.close()

    lines = ok(a.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, m0), tag="t3"), tag="t3")
    assert untagged(lines, "VANISHED") == [b"* VANISHED (EARLIER) 3,5\r\n"], lines
    f = fetches(lines)
    assert set(f) == {1, 4}, lines
    assert f[1][0] == 1 and b"\\Seen" in f[1][1] and f[1][2] > m0
    assert f[4][0] == 3 and b"\\Flagged" in f[4][1] and f[4][2] > m0
    # VANISHED (EARLIER) comes before the FETCH responses.
    kinds = [l.split()[2] if l.split()[1].isdigit() else l.split()[1]
             for l in lines if l.startswith(b"* ")]
    assert kinds.index(b"VANISHED") < kinds.index(b"FETCH")
    _, m1 = select_state(lines)
    assert m1 > m0

    # known-uids limits VANISHED; a second SELECT sends the FETCHes again.
    lines = ok(a.cmd("EXAMINE INBOX (QRESYNC (%d %d 1:4))" % (uv, m0), tag="t4"), tag="t4")
    assert untagged(lines, "VANISHED") == [b"* VANISHED (EARLIER) 3\r\n"], lines
    assert set(fetches(lines)) == {1, 4}
    # With seq-match-data too.
    lines = ok(a.cmd("SELECT INBOX (QRESYNC (%d %d 1:5 (1:3 1:3)))" % (uv, m0), tag="t5"),
               tag="t5")
    assert untagged(lines, "VANISHED") == [b"* VANISHED (EARLIER) 3,5\r\n"], lines
    # Up to date: nothing.
    lines = ok(a.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv, m1), tag="t6"), tag="t6")
    assert not untagged(lines, "VANISHED") and not fetches(lines), lines
    # Another UIDVALIDITY: nothing either (the client starts over).
    lines = ok(a.cmd("SELECT INBOX (QRESYNC (%d %d))" % (uv + 1, m0), tag="t7"), tag="t7")
    assert not untagged(lines, "VANISHED") and not fetches(lines), lines
    a.close()


def test_qresync_bad_params(srv5, alice5):
    r = raw_login(alice5)
    # Not enabled yet.
    lines = r.cmd("SELECT INBOX (QRESYNC (1 1))", tag="b0")
    assert lines[-1].startswith(b"b0 BAD"), lines
    ok(r.cmd("ENABLE QRESYNC"))
    for i, bad in enumerate([
            "SELECT INBOX (QRESYNC (0 5))", "SELECT INBOX (QRESYNC (1 0))",
            "SELECT INBOX (QRESYNC (1))", "SELECT INBOX (QRESYNC 1 2)",
            "SELECT INBOX (QRESYNC (abc 1))", "SELECT INBOX (QRESYNC (1 1 1:x))",
            "SELECT INBOX (QRESYNC (1 1 1:5 (1:2)))", "SELECT INBOX (QRESYNC (1 1 1:5 (1 2) x))",
            "SELECT INBOX (QRESYNC (1 99999999999999999999))", "SELECT INBOX (QRESYNC)",
            "EXAMINE INBOX (QRESYNC (4294967296 1))", "SELECT INBOX (BOGUS)",
            "SELECT INBOX ()"]):
        tag = "b%d" % (i + 1)
        lines = r.cmd(bad, tag=tag)
        assert lines[-1].startswith(tag.encode() + b" BAD"), (bad, lines)
    uv, m = select_state(ok(r.cmd("SELECT INBOX (CONDSTORE)", tag="s1"), tag="s1"))
    for i, bad in enumerate([
            "FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m,   # not UID FETCH
            "UID FETCH 1:* (FLAGS) (VANISHED)",                  # no CHANGEDSINCE
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE 0 VANISHED)",
            "UID FETCH 1:* (FLAGS) (CHANGEDSINCE x)",
            "UID FETCH 1:* (FLAGS) (BOGUS 1)"]):
        tag = "f%d" % i
        lines = r.cmd(bad, tag=tag)
        assert lines[-1].startswith(tag.encode() + b" BAD"), (bad, lines)
    r.close()
    # VANISHED needs QRESYNC enabled.
    r = raw_login(alice5)
    ok(r.cmd("SELECT INBOX (CONDSTORE)"))
    lines = r.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)", tag="f9")
    assert lines[-1].startswith(b"f9 BAD"), lines
    r.close()


def test_qresync_vanished_instead_of_expunge(srv5, alice5):
    a = qresync_session(alice5)
    ok(a.cmd("SELECT INBOX"))
    b = raw_login(alice5)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 2,3 +FLAGS (\\Deleted)", tag="t2"), tag="t2")
    ok(b.cmd("UID EXPUNGE 2:3", tag="t3"), tag="t3")
    lines = ok(a.cmd("NOOP", tag="t2"), tag="t2")
    assert b"* VANISHED 2:3\r\n" in lines, lines
    assert not untagged(lines, "EXPUNGE"), lines
    # The sequence numbers moved: UID 4 is message 2 now.
    lines = ok(a.cmd("FETCH 2 (UID)", tag="t3"), tag="t3")
    assert b"* 2 FETCH (UID 4)\r\n" in lines, lines
    # Its own EXPUNGE and MOVE are reported as VANISHED too.
    ok(a.cmd("UID STORE 5 +FLAGS (\\Deleted)", tag="t4"), tag="t4")
    lines = ok(a.cmd("EXPUNGE", tag="t5"), tag="t5")
    assert b"* VANISHED 5\r\n" in lines and not untagged(lines, "EXPUNGE"), lines
    lines = ok(a.cmd('UID MOVE 1 "Archive"', tag="t6"), tag="t6")
    assert b"* VANISHED 1\r\n" in lines and not untagged(lines, "EXPUNGE"), lines
    lines = ok(a.cmd("UID SEARCH ALL", tag="t7"), tag="t7")
    assert b"* SEARCH 4\r\n" in lines
    b.close()
    a.close()


def test_qresync_uid_fetch_vanished(srv5, alice5):
    a = qresync_session(alice5)
    uv, m0 = select_state(ok(a.cmd("SELECT INBOX")))
    b = raw_login(alice5)
    ok(b.cmd("SELECT INBOX"))
    ok(b.cmd("UID STORE 2 +FLAGS (\\Answered)", tag="t2"), tag="t2")
    ok(b.cmd("UID STORE 4,5 +FLAGS (\\Deleted)", tag="t3"), tag="t3")
    ok(b.cmd("UID EXPUNGE 4:5", tag="t4"), tag="t4")
    b.close()
    lines = ok(a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)" % m0, tag="f1"),
               tag="f1")
    # The expunges may also be reported by the sync after the command; the
    # VANISHED (EARLIER) answer names exactly 4 and 5.
    assert b"* VANISHED (EARLIER) 4:5\r\n" in lines, lines
    f = fetches(lines)
    assert set(f) == {2} and b"\\Answered" in f[2][1], lines
    # Limited to the set asked for.
    lines = ok(a.cmd("UID FETCH 1:4 (FLAGS) (VANISHED CHANGEDSINCE %d)" % m0, tag="f2"),
               tag="f2")
    assert untagged(lines, "VANISHED") == [b"* VANISHED (EARLIER) 4\r\n"], lines
    # CHANGEDSINCE alone (CONDSTORE) sends no VANISHED.
    lines = ok(a.cmd("UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d)" % m0, tag="f3"), tag="f3")
    assert not untagged(lines, "VANISHED"), lines
    a.close()


# ---- SEARCHRES -------------------------------------------------------------------------


def fetched_uids(lines):
    return sorted(int(m.group(1)) for l in lines
                  for m in [re.match(rb"\* \d+ FETCH \(UID (\d+)\)\r\n", l)] if m)


def test_searchres(srv5, alice5):
    r = raw_login(alice5)
    caps = b"".join(ok(r.cmd("CAPABILITY", tag="c1"), tag="c1"))
    assert b" SEARCHRES" in caps
    ok(r.cmd("SELECT INBOX"))
    ok(r.cmd("UID STORE 2,4,5 +FLAGS (\\Flagged)", tag="t2"), tag="t2")
    # SAVE alone: no SEARCH or ESEARCH response.
    lines = ok(r.cmd("UID SEARCH RETURN (SAVE) FLAGGED", tag="s1"), tag="s1")
    assert not untagged(lines, "ESEARCH") and not untagged(lines, "SEARCH"), lines
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f1"), tag="f1")) == [2, 4, 5]
    assert fetched_uids(ok(r.cmd("FETCH $ (UID)", tag="f2"), tag="f2")) == [2, 4, 5]
    lines = ok(r.cmd("SEARCH $ UNSEEN", tag="s2"), tag="s2")
    assert b"* SEARCH 2 4 5\r\n" in lines, lines
    lines = ok(r.cmd("UID SEARCH NOT UID $", tag="s3"), tag="s3")
    assert b"* SEARCH 1 3\r\n" in lines, lines
    # With other options the answer comes too; MIN and MAX alone save only those.
    lines = ok(r.cmd("UID SEARCH RETURN (SAVE MIN MAX) FLAGGED", tag="s4"), tag="s4")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s4") UID MIN 2 MAX 5\r\n']
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f3"), tag="f3")) == [2, 5]
    lines = ok(r.cmd("SEARCH RETURN (SAVE COUNT) 1:3", tag="s5"), tag="s5")
    assert untagged(lines, "ESEARCH") == [b'* ESEARCH (TAG "s5") COUNT 3\r\n']
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f4"), tag="f4")) == [1, 2, 3]
    # Expunged messages leave the saved result.
    ok(r.cmd("UID STORE 2 +FLAGS (\\Deleted)", tag="t3"), tag="t3")
    ok(r.cmd("UID EXPUNGE 2", tag="t4"), tag="t4")
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f5"), tag="f5")) == [1, 3]
    # A failed SEARCH ... RETURN (SAVE) empties it; so does a new SELECT.
    lines = r.cmd("SEARCH RETURN (SAVE) BOGUSKEY", tag="s6")
    assert lines[-1].startswith(b"s6 BAD"), lines
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f6"), tag="f6")) == []
    ok(r.cmd("UID SEARCH RETURN (SAVE) ALL", tag="s7"), tag="s7")
    ok(r.cmd("SELECT INBOX", tag="t5"), tag="t5")
    assert fetched_uids(ok(r.cmd("UID FETCH $ (UID)", tag="f7"), tag="f7")) == []
    r.close()
