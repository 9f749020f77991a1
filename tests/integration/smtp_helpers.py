"""Helpers for the SMTP tests: a server fixture that waits for the SMTP port
only, a raw line-level SMTP client for the hostile cases, and functions to
read delivered messages back and take the trace header fields off them."""
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import uuid

import pytest

from conftest import Instance, Server, wait_port


class SmtpServer(Server):
    """`sealmail serve`, ready as soon as SMTP listens (IMAP need not exist)."""

    def start(self, wait=True):
        super().start(wait=False)
        if wait:
            wait_port(self.instance.smtp_port, proc=self.proc)
        return self


def check_clean_stop(server):
    rc = server.stop()
    log = server.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
    assert rc in (0, None, -signal.SIGKILL), "server exited with %s\n%s" % (rc, log[-4000:])


@pytest.fixture
def smtp_server(instance):
    s = SmtpServer(instance).start()
    yield s
    check_clean_stop(s)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Raw:
    """A line-level SMTP client that sends exactly the bytes it is given."""

    def __init__(self, port, timeout=10.0, greet=True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.greeting = self.reply() if greet else None

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def reply(self):
        """One reply: (code, [text of each line])."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            line, self.buf = self.buf.split(b"\r\n", 1)
            text = line.decode(errors="replace")
            lines.append(text[4:])
            if len(text) < 4 or text[3] != "-":
                return int(text[:3]), lines

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def expect(self, line, code, enhanced=None):
        got, text = self.cmd(line)
        assert got == code, "%r: %s %s" % (line, got, text)
        if enhanced is not None:
            assert text[-1].startswith(enhanced), "%r: %s %s" % (line, got, text)
        return text

    def starttls(self):
        self.sock = tls_context().wrap_socket(self.sock)
        self.buf = b""

    def is_closed(self, timeout=5.0):
        """True once the server has closed the connection (pending replies
        are read and dropped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def inbox(instance, address, password="correct horse"):
    """The messages in ADDRESS's INBOX, as bytes, in UID order."""
    return [m[2] for m in instance.export(address, password).get("INBOX", [])]


def strip_trace(msg):
    """Splits a delivered message into (trace fields, the message as sent):
    the Return-Path and Received fields the server prepends, with their
    continuation lines."""
    lines = msg.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: <"), msg[:200]
    assert lines[1].startswith(b"Received: from "), msg[:200]
    i = 2
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[:i]) + b"\r\n", b"\r\n".join(lines[i:])


def make_message(token, body_lines=3, extra=b""):
    return (b"From: Sender <sender@remote.example>\r\n"
            b"To: someone@example.org\r\n"
            b"Subject: subject-" + token.encode() + b"\r\n"
            b"Message-ID: <" + token.encode() + b"@remote.example>\r\n"
            b"\r\n" + b"".join(b"body %d of %s\r\n" % (i, token.encode())
                              for i in range(body_lines)) + extra)


def new_cert(instance, name="renewed.example.org"):
    """Writes a fresh self-signed certificate and key over the instance's."""
    tls = instance.dir / "tls"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", "/CN=" + name, "-keyout", str(tls / "key.pem.new"),
                    "-out", str(tls / "cert.pem.new")], check=True, capture_output=True)
    os.replace(tls / "key.pem.new", tls / "key.pem")
    os.replace(tls / "cert.pem.new", tls / "cert.pem")


def peer_cert(port):
    """The DER certificate the server presents after STARTTLS."""
    c = Raw(port)
    c.expect("EHLO client.example", 250)
    c.expect("STARTTLS", 220)
    c.starttls()
    der = c.sock.getpeercert(binary_form=True)
    c.close()
    return der


def token():
    """A unique word to find a message by (in a body, a Subject, a From)."""
    return "tok" + uuid.uuid4().hex[:16]


def run_each(fn, args, timeout):
    """Runs FN(arg) for every ARG at once, one thread each, and waits for all
    (at most TIMEOUT seconds for each). FN reports its own results."""
    threads = [threading.Thread(target=fn, args=(a,)) for a in args]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=timeout)


def wait_until(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


__all__ = ["Instance", "SmtpServer", "check_clean_stop", "smtp_server", "tls_context", "Raw",
           "inbox", "strip_trace", "make_message", "new_cert", "peer_cert", "wait_until"]
