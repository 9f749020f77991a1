#!/usr/bin/env python3
"""corpus.py — a deterministic mail corpus for the benchmark.

    bench/corpus.py OUTDIR COUNT [--seed N]

Writes OUTDIR/000000.eml ... (CRLF line ends, lines under 1000 bytes, 7-bit
so any SMTP or LMTP server takes them) and OUTDIR/manifest.json. The same
seed and count always give the same bytes. Size mix (of the whole message):

    60%  2 KB - 8 KB       30%  8 KB - 64 KB
     9%  64 KB - 1 MB       1%  1 MB - 10 MB

Shapes: text/plain (some quoted-printable with accented text),
multipart/alternative (text + HTML), multipart/mixed with a base64
attachment (always for messages above 64 KB). About a fifth of the messages
have RFC 2047 encoded non-ASCII Subject and From. One message in a hundred
contains the word NEEDLE in its text, for the body SEARCH.
"""
import base64
import json
import os
import random
import sys

NEEDLE = "zanzibarquokka"
KB = 1024
MB = 1024 * 1024

WORDS = ("the of and to in is that for it as was with be by on not he this are or his "
         "from at which but have an they you were her she there been one all we their "
         "meeting report budget quarter review draft contract invoice schedule project "
         "deadline customer release server network storage backup policy privacy "
         "mailbox delivery message account password summary agenda minutes proposal "
         "figures attached please find below regards thanks tomorrow friday monday "
         "update version change request approval pending signed office travel").split()
ACCENTED = ("café naïve résumé Zürich Ålesund São Paulo Kraków Ærø Þórsmörk "
            "Straße über Müller Łódź señor jalapeño").split()
NAMES = ["Alice Martin", "Bob Dupont", "Chloé Lefèvre", "Dmitri Ivanov", "Eva Novák",
         "François Girard", "Grete Ødegård", "Hiroshi Sato", "Inés García", "Jürgen Weiß",
         "Kai Müller", "Lena Björk", "Marta Kowalska", "Nuno Gonçalves", "Olga Petrova"]
ATTACH = [("report.pdf", "application/pdf"), ("photo.jpg", "image/jpeg"),
          ("data.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
          ("archive.zip", "application/zip"), ("scan.png", "image/png")]


def pick_size(rng):
    r = rng.random()
    if r < 0.60:
        return rng.randint(2 * KB, 8 * KB)
    if r < 0.90:
        return rng.randint(8 * KB, 64 * KB)
    if r < 0.99:
        return rng.randint(64 * KB, 1 * MB)
    return rng.randint(1 * MB, 10 * MB)


class Text:
    """A pool of pseudo-text lines made once; messages take slices of it."""

    def __init__(self, rng, nbytes=1 * MB):
        lines, total = [], 0
        while total < nbytes:
            n = rng.randint(6, 12)
            line = " ".join(rng.choice(WORDS) for _ in range(n))
            if rng.random() < 0.08:
                line += " " + rng.choice(ACCENTED)
            line = line[0].upper() + line[1:] + "."
            lines.append(line)
            total += len(line.encode()) + 2
        self.lines = lines

    def take(self, rng, nbytes, needle=False):
        out, total = [], 0
        i = rng.randrange(len(self.lines))
        while total < nbytes:
            line = self.lines[i % len(self.lines)]
            out.append(line)
            total += len(line.encode()) + 2
            i += 1
        if needle:
            out.insert(rng.randrange(len(out) + 1), "Reference %s attached." % NEEDLE)
        return out


def qp_line(line):
    """Quoted-printable for one line of text (soft breaks at 76)."""
    out, cur = [], ""
    for ch in line:
        b = ch.encode()
        if ch == "=" or len(b) > 1:
            enc = "".join("=%02X" % c for c in b)
        else:
            enc = ch
        if len(cur) + len(enc) > 75:
            out.append(cur + "=")
            cur = ""
        cur += enc
    if cur.endswith(" "):
        cur = cur[:-1] + "=20"
    out.append(cur)
    return out


def enc_word(s):
    if all(ord(c) < 128 for c in s):
        return s
    return "=?UTF-8?B?%s?=" % base64.b64encode(s.encode()).decode()


def text_part(lines, qp):
    if qp:
        body = []
        for line in lines:
            body.extend(qp_line(line))
        return (["Content-Type: text/plain; charset=UTF-8",
                 "Content-Transfer-Encoding: quoted-printable", ""] + body)
    ascii_lines = [line.encode("ascii", "replace").decode() for line in lines]
    return (["Content-Type: text/plain; charset=us-ascii",
             "Content-Transfer-Encoding: 7bit", ""] + ascii_lines)


def html_part(lines):
    body = ["<html><body>"]
    for line in lines:
        body.extend(qp_line("<p>" + line + "</p>"))
    body.append("</body></html>")
    return (["Content-Type: text/html; charset=UTF-8",
             "Content-Transfer-Encoding: quoted-printable", ""] + body)


def b64_lines(data):
    s = base64.b64encode(data).decode()
    return [s[i:i + 76] for i in range(0, len(s), 76)]


def message(rng, text, i):
    size = pick_size(rng)
    needle = rng.random() < 0.01
    nonascii = rng.random() < 0.2
    if size > 64 * KB:
        shape = "mixed"
    else:
        shape = rng.choices(["plain", "alternative", "mixed"], [0.55, 0.30, 0.15])[0]
    sender = rng.choice(NAMES)
    subject = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))).capitalize()
    if nonascii:
        subject += " " + rng.choice(ACCENTED)
    else:
        sender = sender.encode("ascii", "ignore").decode() or "Sender"
    local = sender.split()[0].lower().encode("ascii", "ignore").decode() or "user"
    day = 1 + i % 28
    hdr = [
        "Return-Path: <%s@sender.example>" % local,
        "Message-ID: <%08d.%d@corpus.example>" % (i, rng.randrange(1 << 30)),
        "Date: Mon, %02d Jan 2024 %02d:%02d:%02d +0000" % (day, i % 24, i % 60, (i * 7) % 60),
        "From: %s <%s@sender.example>" % (enc_word(sender), local),
        "To: Recipient <rcpt@example.org>",
        "Subject: %s" % enc_word(subject),
        "MIME-Version: 1.0",
        "X-Corpus-Index: %d" % i,
    ]
    if rng.random() < 0.3:
        hdr.insert(5, "Cc: %s <cc%d@example.net>" % (enc_word(rng.choice(NAMES)), i % 97))
    head_bytes = sum(len(h) + 2 for h in hdr) + 200
    remaining = max(256, size - head_bytes)
    qp = nonascii or rng.random() < 0.3
    boundary = "=_b%08d_%06x" % (i, rng.randrange(1 << 24))
    if shape == "plain":
        lines = hdr + text_part(text.take(rng, remaining, needle), qp)
    elif shape == "alternative":
        t = text.take(rng, remaining // 2, needle)
        lines = hdr + ['Content-Type: multipart/alternative; boundary="%s"' % boundary, "",
                       "This is a multi-part message in MIME format.", "--" + boundary]
        lines += text_part(t, qp) + ["--" + boundary] + html_part(t[: max(1, len(t) * 2 // 3)])
        lines += ["--" + boundary + "--", ""]
    else:
        tlen = min(remaining // 4, rng.randint(1 * KB, 6 * KB))
        alen = max(64, (remaining - tlen) * 3 // 4)
        name, ctype = rng.choice(ATTACH)
        lines = hdr + ['Content-Type: multipart/mixed; boundary="%s"' % boundary, "",
                       "--" + boundary]
        lines += text_part(text.take(rng, tlen, needle), qp) + ["--" + boundary]
        fname = name if not nonascii else "résumé-" + name
        lines += ['Content-Type: %s; name="%s"' % (ctype, enc_word(fname)),
                  "Content-Transfer-Encoding: base64",
                  'Content-Disposition: attachment; filename="%s"' % enc_word(fname), ""]
        lines += b64_lines(rng.randbytes(alen)) + ["--" + boundary + "--", ""]
    return ("\r\n".join(lines) + "\r\n").encode("ascii"), needle


def generate(outdir, count, seed=20240601):
    man_path = os.path.join(outdir, "manifest.json")
    if os.path.exists(man_path):
        with open(man_path) as f:
            man = json.load(f)
        if man.get("seed") == seed and man.get("count") == count:
            return man
    os.makedirs(outdir, exist_ok=True)
    for name in os.listdir(outdir):  # DATA forms of an older corpus (client.stuffed_file)
        if name.endswith(".dot"):
            os.unlink(os.path.join(outdir, name))
    rng = random.Random(seed)
    text = Text(random.Random(seed ^ 0x5EA1))
    sizes, needles = [], []
    for i in range(count):
        data, needle = message(rng, text, i)
        with open(os.path.join(outdir, "%06d.eml" % i), "wb") as f:
            f.write(data)
        sizes.append(len(data))
        if needle:
            needles.append(i)
    man = {"seed": seed, "count": count, "needle": NEEDLE, "needles": needles,
           "sizes": sizes, "bytes": sum(sizes)}
    with open(man_path + ".tmp", "w") as f:
        json.dump(man, f)
    os.replace(man_path + ".tmp", man_path)
    return man


def main():
    args = sys.argv[1:]
    seed = 20240601
    if "--seed" in args:
        k = args.index("--seed")
        seed = int(args[k + 1])
        del args[k:k + 2]
    if len(args) != 2:
        sys.exit("usage: corpus.py OUTDIR COUNT [--seed N]")
    man = generate(args[0], int(args[1]), seed)
    s = sorted(man["sizes"])
    print("corpus: %d messages, %.1f MB, median %d B, max %d B, %d with the needle"
          % (man["count"], man["bytes"] / MB, s[len(s) // 2], s[-1], len(man["needles"])))


if __name__ == "__main__":
    main()
