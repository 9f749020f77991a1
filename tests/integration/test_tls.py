"""TLS policy on every TLS entry point: SMTP STARTTLS, IMAP STARTTLS and
implicit-TLS IMAP. TLS 1.2 and 1.3 are accepted; SSLv3, TLS 1.0 and 1.1 and
suites without forward secrecy are refused by the server. The old versions
are tried with `openssl s_client` at security level 0, so that the client
really offers them and any refusal comes from the server. (test_smtp.py
covers the python-client view of SMTP STARTTLS and the SIGHUP reload on
SMTP; the reload is checked here on implicit TLS.)"""
import shutil
import signal
import socket
import ssl
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
    sock = socket.create_connection(("127.0.0.1", inst.imaps_port if endpoint == "imaps" else
                                     inst.smtp_port if endpoint == "smtp-starttls" else
                                     inst.imap_port), timeout=10)
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


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("flag", ["-ssl3", "-tls1", "-tls1_1"])
def test_old_protocols_refused_by_server(instance, server, endpoint, flag):
    rc, out = s_client(instance, endpoint, flag, "-cipher", "DEFAULT@SECLEVEL=0")
    if "Unknown option" in out or "unknown option" in out:
        pytest.skip("this openssl cannot offer %s at all" % flag)
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


def test_sighup_reloads_certificate_on_imaps(instance, server):
    def peer():
        with tls_context().wrap_socket(
                socket.create_connection(("127.0.0.1", instance.imaps_port), timeout=10)) as s:
            return s.getpeercert(binary_form=True)

    before = peer()
    new_cert(instance, "imaps-renewed.example.org")
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: "TLS certificate and key reloaded" in server.log_text())
    after = peer()
    assert before != after and b"imaps-renewed.example.org" in after
    # And on IMAP STARTTLS, which shares the context.
    rc, out = s_client(instance, "imap-starttls", "-showcerts")
    assert "imaps-renewed.example.org" in out
