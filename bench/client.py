"""client.py — the load generator used for both servers (stdlib asyncio).

The same code drives sealmail and the peer, so that client overhead is equal:
SMTP (sealmail) and LMTP (the peer) differ only in the greeting verb and in
LMTP's one reply per recipient after DATA. Ingest pipelines MAIL, RCPT and
DATA in one write when the server announces PIPELINING (RFC 2920) and gives
SIZE= when it announces SIZE (RFC 1870), as Postfix's smtp and lmtp clients
do, and otherwise waits for each reply.
"""
import asyncio
import collections
import os
import re
import time

LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
CHUNK = 1 << 20


class ProtocolError(Exception):
    pass


def stuffed(data):
    """DATA body: dot-stuffed, CRLF-terminated, with the end marker."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\r\n.", b"\r\n..")
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def stuffed_file(path):
    """PATH's DATA form, made once beside it (PATH minus .eml plus .dot), so
    that dot-stuffing is not part of the timed client work: the client sends
    a prepared message, as Postfix's smtp-source does."""
    out = re.sub(r"\.eml$", "", path) + ".dot"
    if not os.path.exists(out):
        with open(path, "rb") as f:
            data = stuffed(f.read())
        with open(out + ".tmp", "wb") as f:
            f.write(data)
        os.replace(out + ".tmp", out)
    return out


async def _reply(reader):
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ProtocolError("connection closed")
        lines.append(line)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), lines


async def _expect(reader, ok=(250,), what=""):
    code, lines = await _reply(reader)
    if code not in ok:
        raise ProtocolError("%s: %r" % (what, b"".join(lines)[:300]))
    return code, lines


# ---------------------------------------------------------------- ingest


async def ingest(host, port, lmtp, paths, recipients, concurrency, sender="bench@sender.example"):
    """Delivers every file in PATHS (message i to recipients[i % len]) over
    CONCURRENCY connections. Returns a dict: seconds, messages, bytes and the
    completion time of each message (relative to the start)."""
    queue = list(range(len(paths)))
    queue.reverse()
    dots = [stuffed_file(p) for p in paths]
    sizes = [os.path.getsize(p) for p in paths]
    done = []
    nbytes = [0]
    pipelined = []
    t0 = time.monotonic()

    async def worker():
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        await _expect(reader, (220,), "greeting")
        writer.write((b"LHLO" if lmtp else b"EHLO") + b" bench.client\r\n")
        _, caps = await _expect(reader, (250,), "hello")
        ext = [line[4:].strip().upper() for line in caps]
        pipelining = b"PIPELINING" in ext
        pipelined.append(pipelining)
        # SIZE= on MAIL when the server announces SIZE (RFC 1870), as Postfix does.
        with_size = any(e == b"SIZE" or e.startswith(b"SIZE ") for e in ext)
        while queue:
            i = queue.pop()
            with open(dots[i], "rb") as f:
                data = f.read()
            mail = b"MAIL FROM:<%s>%s\r\n" % (
                sender.encode(), b" SIZE=%d" % sizes[i] if with_size else b"")
            rcpt = b"RCPT TO:<%s>\r\n" % recipients[i % len(recipients)].encode()
            if pipelining:
                writer.write(mail + rcpt + b"DATA\r\n")
            else:
                writer.write(mail)
            await _expect(reader, (250,), "MAIL")
            if not pipelining:
                writer.write(rcpt)
            await _expect(reader, (250, 251), "RCPT")
            if not pipelining:
                writer.write(b"DATA\r\n")
            await _expect(reader, (354,), "DATA")
            writer.write(data)
            await writer.drain()
            await _expect(reader, (250,), "end of data")  # LMTP: one recipient, one reply
            nbytes[0] += sizes[i]
            done.append(time.monotonic() - t0)
        writer.write(b"QUIT\r\n")
        try:
            await asyncio.wait_for(_reply(reader), 5)
        except Exception:
            pass
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"seconds": time.monotonic() - t0, "messages": len(done), "bytes": nbytes[0],
            "done": done, "pipelining": all(pipelined)}


# ---------------------------------------------------------------- IMAP


def quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# One receive buffer for every IMAP connection of the process: asyncio
# calls get_buffer(), recv_into() and buffer_updated() back to back on one
# thread, so the bytes are parsed before the next connection's read.
_RECV = memoryview(bytearray(CHUNK))


class _ImapStream(asyncio.BufferedProtocol):
    """Splits what the server sends into lines; literals are counted and
    dropped where they arrive, never copied (a Python client that copies
    every byte of a fast server's FETCH is a measurable share of the CPU of
    the machine both share). The line that announces a literal, and the
    line that follows it, are both returned."""

    def __init__(self):
        self.lines = collections.deque()
        self.partial = b""
        self.literal = 0
        self.literal_bytes = 0
        self.closed = False
        self.waiter = None
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        return _RECV

    def buffer_updated(self, nbytes):
        i, buf = 0, _RECV.obj
        while i < nbytes:
            if self.literal:
                k = min(self.literal, nbytes - i)
                self.literal -= k
                self.literal_bytes += k
                i += k
                continue
            j = buf.find(b"\n", i, nbytes)
            if j < 0:
                self.partial += bytes(_RECV[i:nbytes])
                break
            line = self.partial + bytes(_RECV[i:j + 1])
            self.partial = b""
            i = j + 1
            m = LITERAL.search(line)
            if m:
                self.literal = int(m.group(1))
            self.lines.append(line)
        self._wake()

    def connection_lost(self, exc):
        self.closed = True
        self._wake()

    def _wake(self):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def line(self):
        while not self.lines:
            if self.closed:
                raise ProtocolError("connection closed")
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
            self.waiter = None
        return self.lines.popleft()


class Imap:
    """A minimal IMAP client: commands in sequence, literals in responses
    are counted, not kept."""

    def __init__(self):
        self.stream = None
        self.n = 0

    async def connect(self, host, port):
        _, self.stream = await asyncio.get_running_loop().create_connection(
            _ImapStream, host, port)
        line = await self.stream.line()
        if not line.startswith(b"* OK"):
            raise ProtocolError("greeting %r" % line)
        return self

    def _send(self, data):
        self.stream.transport.write(data)

    async def command(self, text, raw=None):
        """Sends TEXT; returns (responses, literal bytes, untagged lines
        kept when RAW, tagged line). Raises unless the status is OK."""
        self.n += 1
        tag = b"b%d" % self.n
        lit0 = self.stream.literal_bytes
        self._send(tag + b" " + text.encode() + b"\r\n")
        responses = 0
        kept = []
        while True:
            line = await self.stream.line()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise ProtocolError("%s -> %r" % (text[:60], line[:300]))
                return responses, self.stream.literal_bytes - lit0, kept, line
            if line.startswith(b"* "):
                responses += 1
                if raw is not None and raw in line:
                    kept.append(line)

    async def login(self, user, password):
        await self.command("LOGIN %s %s" % (quote(user), quote(password)))
        return self

    async def append(self, mailbox, data):
        """APPEND with a non-synchronising literal (LITERAL+)."""
        self.n += 1
        tag = b"b%d" % self.n
        self._send(tag + b" APPEND %s {%d+}\r\n" % (quote(mailbox).encode(), len(data))
                   + data + b"\r\n")
        while True:
            line = await self.stream.line()
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].startswith(b"OK"):
                    raise ProtocolError("APPEND -> %r" % line[:300])
                return

    async def idle(self):
        self.n += 1
        self._send(b"b%d IDLE\r\n" % self.n)
        while True:
            line = await self.stream.line()
            if line.startswith(b"+"):
                return
            if line.startswith(b"b%d " % self.n):
                raise ProtocolError("IDLE -> %r" % line)

    def close(self):
        if self.stream is not None:
            self.stream.transport.close()
            self.stream = None

    async def logout(self):
        try:
            await asyncio.wait_for(self.command("LOGOUT"), 5)
        except Exception:
            pass
        self.close()


async def read_op(host, port, user, password, mailbox, command, clients, raw=None):
    """CLIENTS connections log in, EXAMINE MAILBOX, then all run COMMAND at
    once. COMMAND is a string, or a list of one string per client. Returns
    the wall time of the command phase and what came back."""
    commands = command if isinstance(command, list) else [command] * clients
    sessions = []
    for _ in range(clients):
        s = await (await Imap().connect(host, port)).login(user, password)
        await s.command("EXAMINE %s" % quote(mailbox))
        sessions.append(s)
    t0 = time.monotonic()
    results = await asyncio.gather(*(s.command(c, raw) for s, c in zip(sessions, commands)))
    seconds = time.monotonic() - t0
    for s in sessions:
        await s.logout()
    return {"seconds": seconds, "responses": sum(r[0] for r in results),
            "literal_bytes": sum(r[1] for r in results), "kept": [k for r in results for k in r[2]]}


async def logins(host, port, users, password, total, concurrency, hold=False, on_start=None):
    """TOTAL connect+LOGIN+LOGOUT cycles over USERS on CONCURRENCY
    connections. With HOLD, one session per user stays logged in meanwhile
    (the account is already unlocked: a warm login). ON_START() is called
    once the held sessions are open, just before the timed part."""
    held = []
    if hold:
        for u in users:
            held.append(await (await Imap().connect(host, port)).login(u, password))
    if on_start is not None:
        on_start()
    count = [0]
    lat = []
    t0 = time.monotonic()

    async def worker(k):
        while count[0] < total:
            i = count[0]
            count[0] += 1
            t = time.monotonic()
            s = await Imap().connect(host, port)
            await s.login(users[i % len(users)], password)
            lat.append(time.monotonic() - t)
            await s.logout()

    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    seconds = time.monotonic() - t0
    for s in held:
        await s.logout()
    lat.sort()
    return {"seconds": seconds, "logins": total, "per_second": total / seconds,
            "p50_ms": 1000 * lat[len(lat) // 2], "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


async def idle_open(host, port, users, password, count, concurrency=64):
    """Opens COUNT connections spread over USERS, each logged in, INBOX
    selected and in IDLE. Returns the sessions (close with idle_close)."""
    sessions = []
    nxt = [0]

    async def worker():
        while nxt[0] < count:
            i = nxt[0]
            nxt[0] += 1
            s = await Imap().connect(host, port)
            await s.login(users[i % len(users)], password)
            await s.command("SELECT INBOX")
            await s.idle()
            sessions.append(s)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sessions


async def idle_close(sessions):
    for s in sessions:
        s.close()
    await asyncio.sleep(0.5)


def run(coro):
    return asyncio.run(coro)


if __name__ == "__main__":
    print("client.py is a library for bench/bench.py", file=os.sys.stderr)
