"""The short form of the soak test (tests/soak/soak.py): about a minute of
mixed SMTP deliveries, IMAP sessions (IDLE, fetches, flag changes,
expunges) and connections dropped mid-command and mid-literal, then every
acknowledged message checked. SEALMAIL_SOAK_SECONDS changes the length;
the long form is `tests/soak/soak.py --minutes N`."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "soak"))
import soak  # noqa: E402
from conftest import is_asan  # noqa: E402


@pytest.mark.serial  # minimum throughput
def test_soak_short(sealmail_bin, capsys):
    seconds = os.environ.get("SEALMAIL_SOAK_SECONDS", "60")
    args = ["--seconds", seconds, "--seed", os.environ.get("SEALMAIL_SOAK_SEED", "1")]
    if is_asan(sealmail_bin):
        # The sanitizer's quarantine and shadow memory: looser bounds, less
        # load, and it runs several times slower.
        args += ["--rss-limit-mb", "2048", "--growth-mb", "512", "--senders", "2", "--imap", "2",
                 "--min-ops-per-second", "5", "--min-verified-per-minute", "60"]
    os.environ["SEALMAIL_BIN"] = str(sealmail_bin)
    rc = soak.main(args)
    out = capsys.readouterr().out
    assert rc == 0, out
