"""The transparency log as an outside auditor sees it.

Events are produced by real commands (`sealmail user add`); checkpoints,
the verifier key, entries and proofs come from `sealmail log ...` and are
checked by tests/go/tlogcheck, which uses Go's golang.org/x/mod/sumdb/note
and sumdb/tlog and shares no code with sealmail. Then the SQLite file is
edited behind the server's back and `sealmail log verify` must notice.

Needs: the CLI ($SEALMAIL_BIN, else bin/sealmail), `go` with golang.org/x/mod under
/usr/share/gocode (Debian golang-golang-x-mod-dev). Skips, saying why, when
a piece is missing, except in CI (CI=true), where a missing Go check fails.
"""

import base64
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECKER_SRC = ROOT / "tests" / "go" / "tlogcheck"
GOPATH = "/usr/share/gocode"


def _bin():
    path = os.environ.get("SEALMAIL_BIN") or str(ROOT / "bin" / "sealmail")
    if not os.access(path, os.X_OK):
        pytest.skip("no sealmail binary (set SEALMAIL_BIN): %s" % path)
    return path


class Install:
    """One `sealmail init` directory and a way to run commands against it."""

    def __init__(self, bin_path, base):
        self.bin = bin_path
        self.dir = base / "sm"
        self.conf = self.dir / "sealmail.conf"
        self.env = dict(os.environ)
        # The cheapest Argon2id cost libsodium allows: accounts are made fast.
        self.env["SEALMAIL_ARGON2_OPS"] = "1"
        self.env["SEALMAIL_ARGON2_MEM"] = "8192"
        self.env.pop("SEALMAIL_CONF", None)
        self.users = 0

    def run(self, *args, stdin=None, check=True):
        proc = subprocess.run(
            [self.bin, "-c", str(self.conf), *args],
            input=stdin,
            capture_output=True,
            env=self.env,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                "sealmail %s exited %d: %s"
                % (" ".join(args), proc.returncode, proc.stderr.decode(errors="replace"))
            )
        return proc

    def add_user(self):
        region = ("eu-ie", "us-east")[self.users % 2]
        addr = "user%d@example.org" % self.users
        self.users += 1
        proc = self.run(
            "user", "add", addr, "--region", region, "--password-stdin",
            stdin=b"correct horse battery staple\n", check=False,
        )
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()
            if proc.returncode == 64 or "unknown command" in err or "not built" in err:
                pytest.skip("`sealmail user add` is not available yet: " + err)
            raise AssertionError("user add %s failed (%d): %s" % (addr, proc.returncode, err))

    def log_db(self):
        """DIR/<[log] dir>/log.db, reading the [log] dir key of the config."""
        section, logdir = None, "tlog"
        for line in self.conf.read_text().splitlines():
            line = line.strip()
            if line.startswith("["):
                section = line.strip("[]").strip()
            elif section == "log" and "=" in line and not line.startswith("#"):
                key, value = (s.strip() for s in line.split("=", 1))
                if key == "dir":
                    logdir = value
        return (self.dir / logdir / "log.db") if not os.path.isabs(logdir) else \
            Path(logdir) / "log.db"

    def size(self):
        return len(self.run("log", "show", "--json").stdout.splitlines())


@pytest.fixture
def install(tmp_path):
    inst = Install(_bin(), tmp_path)
    proc = subprocess.run(
        [inst.bin, "init", str(inst.dir), "--domain", "example.org"],
        capture_output=True, env=inst.env, timeout=120,
    )
    if proc.returncode != 0:
        pytest.skip("`sealmail init` is not available yet: "
                    + proc.stderr.decode(errors="replace").strip())
    return inst


@pytest.fixture
def populated(install):
    for _ in range(6):
        install.add_user()
    assert install.size() >= 6
    assert install.run("log", "verify").stdout.decode().strip() == "ok"
    return install


def _missing(reason):
    """Skips locally; in CI (CI=true) the independent check must run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("CI=true but the Go check cannot run: " + reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def tlogcheck(tmp_path_factory):
    go = shutil.which("go")
    if go is None:
        _missing("no Go toolchain (Debian package golang-go)")
    if not (Path(GOPATH) / "src/golang.org/x/mod/sumdb/note").is_dir():
        _missing("golang.org/x/mod is not under %s (golang-golang-x-mod-dev)" % GOPATH)
    out = tmp_path_factory.mktemp("go")
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="")
    env.setdefault("GOCACHE", str(out / "cache"))
    exe = out / "tlogcheck"
    proc = subprocess.run([go, "build", "-o", str(exe), "."], cwd=CHECKER_SRC, env=env,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return str(exe)


def _other_vkey(name):
    """A well-formed verifier key for NAME with some other public key."""
    key = b"\x01" + os.urandom(32)
    key_id = hashlib.sha256(name.encode() + b"\n" + key).hexdigest()[:8]
    return "%s+%s+%s" % (name, key_id, base64.b64encode(key).decode())


def _check(tlogcheck, vkey, **files):
    args = [tlogcheck, "-vkey", vkey]
    for flag, paths in files.items():
        for path in paths if isinstance(paths, list) else [paths]:
            args += ["-" + flag, str(path)]
    return subprocess.run(args, capture_output=True, timeout=60)


def test_go_verifies_checkpoints_entries_and_proofs(install, tlogcheck, tmp_path):
    for _ in range(3):
        install.add_user()
    old = install.size()
    vkey = install.run("log", "key").stdout.decode().strip()
    old_cp = tmp_path / "old.note"
    old_cp.write_bytes(install.run("log", "checkpoint").stdout)
    origin, size = old_cp.read_text().split("\n")[:2]
    assert size == str(old)
    # The key is named after the log's origin (C2SP tlog-checkpoint).
    name, key_id, key = vkey.split("+", 2)
    assert name == origin
    assert len(key_id) == 8 and base64.b64decode(key)[0] == 1

    for _ in range(4):
        install.add_user()
    new = install.size()
    assert new > old
    new_cp = tmp_path / "new.note"
    new_cp.write_bytes(install.run("log", "checkpoint").stdout)
    # Checkpoints for every size are kept; a past one is the same bytes.
    assert install.run("log", "checkpoint", "--size", str(old)).stdout == old_cp.read_bytes()
    mid_cp = tmp_path / "mid.note"
    mid_cp.write_bytes(install.run("log", "checkpoint", "--size", "1").stdout)
    entries = tmp_path / "entries.jsonl"
    entries.write_bytes(install.run("log", "show", "--json").stdout)

    inclusion = []
    for index in range(new):
        path = tmp_path / ("incl-%d.json" % index)
        path.write_bytes(install.run("log", "prove-inclusion", str(index)).stdout)
        inclusion.append(path)
    for index in range(old):
        path = tmp_path / ("incl-old-%d.json" % index)
        path.write_bytes(install.run("log", "prove-inclusion", str(index), "--size",
                                     str(old)).stdout)
        inclusion.append(path)
    consistency = []
    for a, b in ((old, new), (1, new), (1, old), (new, new)):
        path = tmp_path / ("cons-%d-%d.json" % (a, b))
        path.write_bytes(install.run("log", "prove-consistency", str(a), str(b)).stdout)
        consistency.append(path)

    proc = _check(tlogcheck, vkey, checkpoint=[old_cp, mid_cp, new_cp], entries=entries,
                  inclusion=inclusion, consistency=consistency)
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"ok: 3 checkpoints, %d entries" % new in proc.stdout

    # The checker is not a rubber stamp: a changed proof hash, a checkpoint
    # under another key and an edited entry are all refused.
    bad = tmp_path / "bad-cons.json"
    text = consistency[0].read_text()
    at = text.index('"proof":["') + len('"proof":["')
    bad.write_text(text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1:])
    proc = _check(tlogcheck, vkey, checkpoint=[old_cp, new_cp], consistency=bad)
    assert proc.returncode != 0
    assert _check(tlogcheck, _other_vkey(name), checkpoint=new_cp).returncode != 0
    edited = tmp_path / "edited.jsonl"
    edited.write_bytes(entries.read_bytes().replace(b"eu-ie", b"eu-if", 1))
    assert _check(tlogcheck, vkey, checkpoint=new_cp, entries=edited).returncode != 0


def test_go_verifies_a_log_with_legal_and_operator_entries(install, tlogcheck, tmp_path):
    install.add_user()  # user0, eu-ie
    install.add_user()  # user1, us-east
    before = install.size()
    before_cp = tmp_path / "before.note"
    before_cp.write_bytes(install.run("log", "checkpoint").stdout)

    def legal(*args):
        return install.run("legal", *args).stdout.decode().strip()

    def file(jur, instrument, account, *extra):
        return legal("file", "--authority", "An Chúirt Uachtarach — Baile Átha Cliath",
                     "--jurisdiction", jur, "--instrument", instrument, "--reference", "R-1",
                     "--scope", "content", "--account", account, *extra)

    legal("decide", file("US", "warrant", "user0@example.org"))
    accepted = file("IE", "court-order", "user0@example.org", "--nondisclosure-until",
                    "2020-01-01")
    legal("decide", accepted)
    bundle = tmp_path / "bundle"
    legal("export", accepted, "--out", str(bundle))
    legal("reject", file("IE", "warrant", "user0@example.org"), "--reason", "overbroad")
    install.run("user", "move", "user1@example.org", "--region", "eu-ie")
    install.run("export", "user1@example.org", "--password-stdin", "--out",
                str(tmp_path / "mail"), stdin=b"correct horse battery staple\n")
    lines = install.run("log", "show", "--json").stdout.splitlines()
    types = {json.loads(line)["type"] for line in lines}
    assert {"legal.received", "legal.decided", "legal.exported", "legal.notified",
            "legal.nondisclosure_expired", "policy.changed", "account.moved",
            "operator.access"} <= types, types

    new = install.size()
    vkey = install.run("log", "key").stdout.decode().strip()
    cp = tmp_path / "new.note"
    cp.write_bytes(install.run("log", "checkpoint").stdout)
    entries = tmp_path / "entries.jsonl"
    entries.write_bytes(b"\n".join(lines) + b"\n")
    inclusion = []
    for index in range(before, new):
        path = tmp_path / ("incl-%d.json" % index)
        path.write_bytes(install.run("log", "prove-inclusion", str(index)).stdout)
        inclusion.append(path)
    cons = tmp_path / "cons.json"
    cons.write_bytes(install.run("log", "prove-consistency", str(before), str(new)).stdout)
    proc = _check(tlogcheck, vkey, checkpoint=[before_cp, cp], entries=entries,
                  inclusion=inclusion, consistency=cons, bundle=bundle / "log.json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"ok: 2 checkpoints, %d entries" % new in proc.stdout
    assert b", 1 bundles" in proc.stdout
    # The bundle's log.json as Go reads it: a changed proof hash, or the entry
    # of another index, is refused.
    text = (bundle / "log.json").read_text()
    at = text.index('"proof":["') + len('"proof":["')
    bad = tmp_path / "bad-log.json"
    bad.write_text(text[:at] + ("B" if text[at] == "A" else "A") + text[at + 1:])
    assert _check(tlogcheck, vkey, bundle=bad).returncode != 0
    moved = json.loads(text)
    moved["index"] -= 1
    bad.write_text(json.dumps(moved))
    assert _check(tlogcheck, vkey, entries=entries, bundle=bad).returncode != 0


def _verify_fails(inst, mutate):
    con = sqlite3.connect(str(inst.log_db()))
    try:
        mutate(con)
        con.commit()
    finally:
        con.close()
    proc = inst.run("log", "verify", check=False)
    assert proc.returncode != 0, "log verify accepted a tampered log"
    assert b"ok" not in proc.stdout
    return proc.stderr.decode()


def test_verify_fails_after_single_byte_edit(populated):
    def edit(con):
        (data,) = con.execute("SELECT data FROM entries WHERE idx = 2").fetchone()
        data = bytearray(data)
        at = data.index(b'"region":"') + len(b'"region":"')
        data[at] ^= 0x01
        con.execute("UPDATE entries SET data = ? WHERE idx = 2", (bytes(data),))

    err = _verify_fails(populated, edit)
    assert "entry 2" in err


def test_verify_fails_after_truncation(populated):
    n = populated.size()
    err = _verify_fails(
        populated, lambda con: con.execute("DELETE FROM entries WHERE idx >= ?", (n - 2,)))
    assert "deleted" in err


def test_verify_fails_after_reordering(populated):
    def swap(con):
        con.execute("UPDATE entries SET idx = -1 WHERE idx = 1")
        con.execute("UPDATE entries SET idx = 1 WHERE idx = 3")
        con.execute("UPDATE entries SET idx = 3 WHERE idx = -1")

    err = _verify_fails(populated, swap)
    assert "reordered" in err


def test_verify_fails_after_deleting_an_entry(populated):
    err = _verify_fails(populated, lambda con: con.execute("DELETE FROM entries WHERE idx = 1"))
    assert "missing" in err


def test_verify_against_a_published_checkpoint_detects_rollback(populated, tmp_path):
    old_cp = tmp_path / "old.note"
    old_cp.write_bytes(populated.run("log", "checkpoint").stdout)
    old = populated.size()
    for _ in range(2):
        populated.add_user()
    published = tmp_path / "published.note"
    published.write_bytes(populated.run("log", "checkpoint").stdout)
    new = populated.size()
    assert new == old + 2
    ok = populated.run("log", "verify", "--checkpoint", str(published))
    assert ok.stdout.decode().strip() == "ok"

    # Roll back: the newest entries and their stored checkpoints go together.
    con = sqlite3.connect(str(populated.log_db()))
    con.execute("DELETE FROM entries WHERE idx >= ?", (old,))
    con.execute("DELETE FROM checkpoints WHERE size > ?", (old,))
    con.commit()
    con.close()
    assert populated.run("log", "verify").stdout.decode().strip() == "ok"
    proc = populated.run("log", "verify", "--checkpoint", str(published), check=False)
    assert proc.returncode != 0 and b"ok" not in proc.stdout
    assert b"rolled back" in proc.stderr
    # An older published checkpoint is still consistent with what is left.
    assert populated.run("log", "verify", "--checkpoint", str(old_cp)).returncode == 0

    # Rewritten to the same size: the root at that size gives it away.
    for _ in range(2):
        populated.add_user()
    assert populated.size() == new
    proc = populated.run("log", "verify", "--checkpoint", str(published), check=False)
    assert proc.returncode != 0 and b"do not match" in proc.stderr

    # A checkpoint that is not this log's, or not signed, is refused.
    forged = tmp_path / "forged.note"
    forged.write_bytes(published.read_bytes().replace(b"\n\n", b"\n\nx", 1)[:-5] + b"AAAA\n")
    proc = populated.run("log", "verify", "--checkpoint", str(forged), check=False)
    assert proc.returncode != 0 and b"published checkpoint" in proc.stderr
    proc = populated.run("log", "verify", "--checkpoint", str(tmp_path / "missing"),
                         check=False)
    assert proc.returncode != 0
