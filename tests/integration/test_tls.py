"""TLS policy on every TLS entry point: SMTP STARTTLS, IMAP STARTTLS and
implicit-TLS IMAP. TLS 1.2 and 1.3 are accepted; SSLv3, TLS 1.0 and 1.1 and
suites without forward secrecy are refused by the server. TLS 1.0 and 1.1
are tried with `openssl s_client` at security level 0, so that the client
really offers them and any refusal comes from the server; SSLv3, which
Debian's openssl cannot offer at all, with a hand-made SSLv3 ClientHello.
(test_smtp.py covers the python-client view of SMTP STARTTLS and the
SIGHUP reload on SMTP; the reload, and a failed reload, are checked here
on implicit TLS.)"""
import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess

import pytest

from smtp_helpers import new_cert, tls_context, wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI missing")

ENDPOINTS = ["smtp-starttls", "imap-starttls", "imaps"]


def s_client_args(inst, endpoint):
    if endpoint == "smtp-starttls":
        return ["-connect", "127.0.0.1:%d" % inst.smtp_port, "-starttls", "smtp"]
    if endpoint == "imap-starttls":
        return ["-connect", "127.0.0.1:%d" % inst.imap_port, "-starttls", "imap"]
    return ["-connect", "127.0.0.1:%d" % inst.imaps_port]


def s_client(inst, endpoint, *extra):
    cmd = ["openssl", "s_client"] + s_client_args(inst, endpoint) + list(extra)
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def negotiated(out):
    """The protocol and cipher s_client reports, or None."""
    for line in out.splitlines():
        if line.startswith("New, ") and "(NONE)" not in line:
            parts = line.split(", ")
            return parts[1], parts[2].split("Cipher is ")[-1]
    return None


def python_handshake(inst, endpoint, version):
    """Handshakes with python's ssl pinned to VERSION; returns (version, cipher)."""
    ctx = tls_context()
    ctx.minimum_version = version
    ctx.maximum_version = version
    sock = plain_socket(inst, endpoint)
    tls = ctx.wrap_socket(sock)
    try:
        return tls.version(), tls.cipher()[0]
    finally:
        tls.close()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls12_and_tls13_accepted(instance, server, endpoint, version):
    got, cipher = python_handshake(instance, endpoint, version)
    assert got == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
    # AEAD only; TLS 1.2 suites with ECDHE (forward secrecy).
    assert "GCM" in cipher or "CHACHA20" in cipher, cipher
    if got == "TLSv1.2":
        assert cipher.startswith("ECDHE-"), cipher


def plain_socket(inst, endpoint):
    """A connection to ENDPOINT, after STARTTLS where there is one: the
    next bytes sent are the first of the TLS handshake."""
    port = (inst.imaps_port if endpoint == "imaps" else
            inst.smtp_port if endpoint == "smtp-starttls" else inst.imap_port)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    f = sock.makefile("rb")
    if endpoint == "smtp-starttls":
        assert f.readline().startswith(b"220")
        sock.sendall(b"EHLO client.example\r\n")
        while not f.readline().startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        assert f.readline().startswith(b"220")
    elif endpoint == "imap-starttls":
        assert f.readline().startswith(b"* OK")
        sock.sendall(b"a STARTTLS\r\n")
        assert f.readline().startswith(b"a OK")
    return sock


def sslv3_client_hello():
    """An SSLv3 ClientHello (RFC 6101): version 3.0 in the record and the
    hello, SSLv3 suites (RSA with 3DES, AES, RC4; the renegotiation SCSV),
    no compression, no extensions (SSLv3 has none)."""
    suites = [0x000a, 0x002f, 0x0035, 0x0005, 0x0004, 0x0016, 0x0033, 0x00ff]
    body = (b"\x03\x00" + os.urandom(32) + b"\x00" +
            struct.pack(">H", 2 * len(suites)) + b"".join(struct.pack(">H", c) for c in suites) +
            b"\x01\x00")
    hello = b"\x01" + struct.pack(">I", len(body))[1:] + body
    return b"\x16\x03\x00" + struct.pack(">H", len(hello)) + hello


def read_records(sock):
    """Everything the server sends until it closes; fails if it keeps the
    connection open (10 s)."""
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except ConnectionResetError:
        pass
    except socket.timeout:
        pytest.fail("the server kept the connection open after %r" % data)
    return data


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_sslv3_refused_by_server(instance, server, endpoint):
    sock = plain_socket(instance, endpoint)
    try:
        sock.sendall(sslv3_client_hello())
        reply = read_records(sock)
    finally:
        sock.close()
    # No ServerHello (a handshake record, type 22): the connection is closed
    # after a fatal alert (type 21), protocol_version (70) or
    # handshake_failure (40), on implicit TLS and after STARTTLS alike.
    assert b"\x16\x03" not in reply, reply.hex()
    assert reply, "no alert"
    assert reply[0] == 21, reply[:16].hex()
    assert len(reply) >= 7 and reply[5] == 2 and reply[6] in (40, 70), reply[:16].hex()
    # The server is unharmed.
    assert negotiated(s_client(instance, endpoint)[1]) is not None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_protocols_refused_by_server(instance, server, endpoint, flag):
    rc, out = s_client(instance, endpoint, flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert "Unknown option" not in out and "unknown option" not in out, out
    assert "no protocols available" not in out, "the client did not offer %s:\n%s" % (flag, out)
    # The ClientHello went out for the old version (s_client names it) ...
    assert "Protocol  : TLSv1" in out or "alert protocol version" in out, out
    # ... and no session came of it.
    assert rc != 0 and negotiated(out) is None, out
    # The server is unharmed.
    assert negotiated(s_client(instance, endpoint)[1]) is not None


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("cipher", ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA"])
def test_weak_tls12_suites_refused(instance, server, endpoint, cipher):
    """Static-RSA key exchange and CBC suites are not on the server's list."""
    rc, out = s_client(instance, endpoint, "-tls1_2", "-cipher", cipher + "@SECLEVEL=0")
    assert rc != 0 and negotiated(out) is None, out


def imaps_peer(instance):
    """The DER certificate the server presents on implicit TLS."""
    with tls_context().wrap_socket(
            socket.create_connection(("127.0.0.1", instance.imaps_port), timeout=10)) as s:
        return s.getpeercert(binary_form=True)


def test_sighup_reloads_certificate_on_imaps(instance, server):
    def peer():
        return imaps_peer(instance)

    before = peer()
    new_cert(instance, "imaps-renewed.example.org")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "TLS certificate and key reloaded" in server.log_text())
    after = peer()
    assert before != after and b"imaps-renewed.example.org" in after
    # And on IMAP STARTTLS, which shares the context.
    rc, out = s_client(instance, "imap-starttls", "-showcerts")
    assert "imaps-renewed.example.org" in out


def test_sighup_with_bad_certificate_keeps_the_old_one(instance, server):
    def peer():
        return imaps_peer(instance)

    before = peer()
    tls = instance.dir / "tls"
    good_cert = (tls / "cert.pem").read_bytes()
    good_key = (tls / "key.pem").read_bytes()
    # 1. Not a certificate at all.
    (tls / "cert.pem").write_bytes(b"-----BEGIN CERTIFICATE-----\ngarbage\n"
                                   b"-----END CERTIFICATE-----\n")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.log_text().count("TLS reload failed") == 1)
    assert "keeping the old certificate" in server.log_text()
    assert peer() == before
    # 2. A valid certificate whose key is not the key file's.
    new_cert(instance, "mismatched.example.org")
    (tls / "key.pem").write_bytes(good_key)
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.log_text().count("TLS reload failed") == 2)
    assert peer() == before
    rc, out = s_client(instance, "smtp-starttls", "-showcerts")
    assert "mismatched.example.org" not in out and negotiated(out) is not None, out
    # 3. Both files missing.
    os.unlink(tls / "cert.pem")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.log_text().count("TLS reload failed") == 3)
    assert peer() == before
    # A good pair again is taken.
    (tls / "cert.pem").write_bytes(good_cert)
    new_cert(instance, "fixed.example.org")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "TLS certificate and key reloaded" in server.log_text())
    assert b"fixed.example.org" in peer()
    assert server.alive()
