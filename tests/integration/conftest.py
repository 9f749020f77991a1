"""Shared fixtures: a real sealmail installation in a temporary folder, on free
loopback ports, driven through the real CLI and real network clients.

Fixtures:
  sealmail_bin  path of the binary under test ($SEALMAIL_BIN or bin/sealmail)
  instance      `sealmail init` in a temp dir, ports rewritten to free ones
  server        `sealmail serve` on that instance, stopped by PID at teardown
"""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from loopback import free_port, wait_port  # noqa: F401 (used by the tests too)

ROOT = Path(__file__).resolve().parents[2]

# Fast Argon2id for tests (libsodium's minimum limits); production uses the
# interactive limits.
TEST_ENV = {"SEALMAIL_ARGON2_OPS": "1", "SEALMAIL_ARGON2_MEM": "8192"}


def read_maildir(out):
    """Returns {folder: [(uid, flags, bytes), ...]} for a Maildir++ tree;
    folder "INBOX" is the root, others are their Maildir++ names without the dot."""
    out = Path(out)
    result = {}
    folders = [("INBOX", out)] + [
        (p.name[1:], p) for p in sorted(out.iterdir()) if p.is_dir() and p.name.startswith(".")
    ]
    for name, path in folders:
        msgs = []
        for sub in ("cur", "new"):
            d = path / sub
            if not d.is_dir():
                continue
            for f in d.iterdir():
                m = re.search(r"\.U(\d+)\.", f.name)
                flags = f.name.split(":2,", 1)[1] if ":2," in f.name else ""
                msgs.append((int(m.group(1)) if m else 0, flags, f.read_bytes()))
        msgs.sort()
        result[name] = msgs
    return result


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def mailbox_state(m, box):
    """(UIDVALIDITY, [(uid, sorted flags, bytes)]) of mailbox BOX, read over
    the logged-in imaplib connection M: what must survive an account move."""
    typ, _ = m.select(box)
    assert typ == "OK"
    validity = int(m.response("UIDVALIDITY")[1][0])
    typ, data = m.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
    assert typ == "OK"
    msgs = []
    for item in data:
        if isinstance(item, tuple):
            uid = int(re.search(rb"UID (\d+)", item[0])[1])
            flags = sorted(re.search(rb"FLAGS \(([^)]*)\)", item[0])[1].split())
            msgs.append((uid, flags, item[1]))
    return validity, sorted(msgs)


def scan_at_rest(path, tokens):
    """Reads every byte of every file under PATH (databases, WAL, journals,
    temporary files) and every file name; returns a list of (file, token)
    for each token found."""
    found = []
    tokens = [t.encode() if isinstance(t, str) else t for t in tokens]
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            for t in tokens:
                if t in name.encode():
                    found.append((os.path.join(root, name), t))
        for f in files:
            p = os.path.join(root, f)
            try:
                data = Path(p).read_bytes()
            except OSError:
                continue
            for t in tokens:
                if t in data or t.lower() in data.lower():
                    found.append((p, t))
    return found


def file_states(path):
    """{relative path: (size, sha256 hex)} for every file under PATH, to tell
    exactly which files a step created, changed or removed."""
    import hashlib
    path = Path(path)
    result = {}
    for root, _, files in os.walk(path):
        for f in files:
            p = Path(root) / f
            try:
                data = p.read_bytes()
            except OSError:
                continue
            result[str(p.relative_to(path))] = (len(data), hashlib.sha256(data).hexdigest())
    return result


def changed_files(before, after):
    """The relative paths created, changed or removed between two file_states."""
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def store_commit_stats(log_text):
    """{store folder: (writes, commits)} from the lines the fs store logs when
    it closes after 100 writes or more ("store DIR: N writes in M commits")."""
    stats = {}
    for m in re.finditer(r"store (\S+): (\d+) writes in (\d+) commits", log_text):
        stats[m.group(1)] = (int(m.group(2)), int(m.group(3)))
    return stats


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "serial: measures time, throughput or latency against a bound; "
        "scripts/run-integration runs these alone, after the others")


class Instance:
    def __init__(self, binary, path, domain="example.org"):
        self.bin = str(binary)
        self.dir = Path(path)
        self.domain = domain
        self.conf = self.dir / "sealmail.conf"
        self.env = dict(os.environ, **TEST_ENV)
        self.env.pop("SEALMAIL_CONF", None)
        r = self.run(["init", str(self.dir), "--domain", domain], config=False)
        assert r.returncode == 0, r.stderr
        self.smtp_port = free_port()
        self.imap_port = free_port()
        self.imaps_port = free_port()
        text = self.conf.read_text()
        text = text.replace("127.0.0.1:2525", "127.0.0.1:%d" % self.smtp_port)
        text = text.replace("127.0.0.1:1143", "127.0.0.1:%d" % self.imap_port)
        text = text.replace("127.0.0.1:1993", "127.0.0.1:%d" % self.imaps_port)
        self.conf.write_text(text)

    def set_option(self, section, key, value):
        """Sets KEY in [SECTION] of the config (adding the line)."""
        lines = self.conf.read_text().splitlines()
        out, in_sec, done = [], False, False
        for line in lines:
            if line.startswith("["):
                if in_sec and not done:
                    out.append("%s = %s" % (key, value))
                    done = True
                in_sec = line.strip() == "[%s]" % section
            elif in_sec and re.match(r"\s*%s\s*=" % re.escape(key), line):
                line = "%s = %s" % (key, value)
                done = True
            out.append(line)
        if not done:
            if not in_sec:
                out.append("[%s]" % section)
            out.append("%s = %s" % (key, value))
        self.conf.write_text("\n".join(out) + "\n")

    def run(self, args, input=None, config=True, timeout=120):
        cmd = [self.bin] + (["-c", str(self.conf)] if config else []) + list(args)
        if isinstance(input, str):
            input = input.encode()
        r = subprocess.run(cmd, input=input, capture_output=True, env=self.env, timeout=timeout)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        return r

    def add_user(self, address, region="eu-ie", password="correct horse"):
        r = self.run(["user", "add", address, "--region", region, "--password-stdin"],
                     input=password + "\n")
        assert r.returncode == 0, r.stderr
        m = re.search(r"([A-Z2-7]{4}(?:-[A-Z2-7]{4}){7})", r.stdout)
        assert m, r.stdout
        return m.group(1)

    def deliver(self, addresses, message):
        if isinstance(addresses, str):
            addresses = [addresses]
        return self.run(["deliver"] + list(addresses), input=message)

    def export(self, address, password="correct horse", out=None):
        out = Path(out) if out else self.dir.parent / ("export-%d" % time.monotonic_ns())
        r = self.run(["export", address, "--password-stdin", "--out", str(out)],
                     input=password + "\n")
        assert r.returncode == 0, r.stderr
        return read_maildir(out)

    def region_dir(self, name):
        return self.dir / "regions" / name


class Server:
    def __init__(self, instance):
        self.instance = instance
        self.proc = None
        self.log = instance.dir.parent / "server.log"

    def start(self, wait=True):
        logf = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.instance.bin, "-c", str(self.instance.conf), "serve"],
            stdout=logf, stderr=subprocess.STDOUT, env=self.instance.env)
        logf.close()
        if wait:
            wait_port(self.instance.smtp_port, proc=self.proc)
            wait_port(self.instance.imap_port, proc=self.proc)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill9(self):
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def is_asan(binary):
    """Whether BINARY is a sanitizer build: it links libasan dynamically, so
    the runtime's entry point is among its imports."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


@pytest.fixture(scope="session")
def sealmail_bin():
    b = Path(os.environ.get("SEALMAIL_BIN", ROOT / "bin" / "sealmail"))
    assert b.exists(), "build sealmail first (make)"
    return b


@pytest.fixture
def instance(sealmail_bin, tmp_path):
    return Instance(sealmail_bin, tmp_path / "data")


@pytest.fixture
def server(instance):
    s = Server(instance).start()
    yield s
    rc = s.stop()
    # A clean stop, and no sanitizer report in the log.
    log = s.log_text()
    assert "AddressSanitizer" not in log and "runtime error" not in log, log[-4000:]
    assert rc in (0, None, -signal.SIGKILL), "server exited with %s\n%s" % (rc, log[-4000:])
