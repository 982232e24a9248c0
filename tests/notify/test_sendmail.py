"""``transport = "sendmail"``: a notice handed to Postfix's sendmail reaches a mailbox."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailwarden.notify import Notifier
from notify.helpers import EICAR, config, decided, message
from support.postfix import PostfixInstance, wait_until
from support.tools import missing


def _free() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixInstance]:
    if not Path("/usr/sbin/sendmail").exists() or not Path("/usr/sbin/postfix").exists():
        missing("postfix is not installed (apt-get install postfix)")
    if os.geteuid() != 0:
        missing("a private Postfix instance needs root")
    root = Path(tempfile.mkdtemp(prefix="mwns-"))
    root.chmod(0o755)
    names = ("smtp", "filtered_lmtp", "proxied", "reinject", "filter", "lmtp_filter", "proxy")
    pf = PostfixInstance.create(
        root / "postfix", **{f"{n}_port": _free() for n in names}, relay_port=_free()
    )
    pf.start()
    try:
        yield pf
    finally:
        pf.stop()


def test_notices_through_postfix_sendmail(
    tmp_path: Path, postfix: PostfixInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Postfix's sendmail finds the private instance through MAIL_CONFIG
    monkeypatch.setenv("MAIL_CONFIG", str(postfix.config_dir))
    extra = '[policy]\ninfected = "quarantine"\n[notify]\ntransport = "sendmail"\n'
    extra += 'admin = ["alice@test.example"]\nrecipient_categories = []\n'
    cfg = config(tmp_path, extra)
    notifier = Notifier.from_config(cfg, host="gw.test.example")
    assert notifier is not None
    msg = message()
    assert notifier.submit(msg, EICAR, decided(cfg, msg, EICAR), quarantine_id=None) == 1
    assert notifier.flush(60)
    assert notifier.counts["sent"] == 1, notifier.counts

    def arrived() -> bool:
        return any("Eicar-Test-Signature" in str(m["Subject"]) for m in postfix.mailbox("alice"))

    wait_until(arrived, 60, "the notice in alice's mailbox")
    notice = next(m for m in postfix.mailbox("alice") if "Eicar" in str(m["Subject"]))
    assert notice["Auto-Submitted"] == "auto-generated"
    assert notice["Return-Path"] == "<>"  # the null envelope sender, as delivered
