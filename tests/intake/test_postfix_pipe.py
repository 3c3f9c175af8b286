"""A real Debian Postfix on loopback delivers through a `pipe` transport into `casemgr intake pipe` (issue 23).

A private Postfix instance (its own config, queue and port under a temporary directory) accepts mail for
support.example.com over SMTP on 127.0.0.1 and hands each message to `casemgr intake pipe`, as the README's
master.cf example does. Needs root (Postfix's master) and the `postfix` Debian package (scripts/test.sh).
"""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from casemgr.bench.serving import free_port
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.runtime import rebuild

ROOT = Path(__file__).resolve().parents[2]
POSTFIX = "/usr/sbin/postfix"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists(POSTFIX) or os.geteuid() != 0,
                       reason="needs the postfix Debian package and root"),
]


def _master_cf(port: int, command: str) -> str:
    # Debian's master.cf, chroot off (a private queue directory has no chroot files), smtpd on our port only.
    lines = []
    for line in Path("/etc/postfix/master.cf").read_text().splitlines():
        f = line.split()
        if line.startswith(("#", " ", "\t")) or len(f) < 8:
            lines.append(line)
            continue
        if f[0] == "smtp" and f[1] == "inet":
            f[0] = f"127.0.0.1:{port}"
        f[4] = "n"
        lines.append(" ".join(f))
    lines.append("casemgr unix - n n - 2 pipe")
    lines.append(f"  flags=Rq user=nobody argv={command}")
    return "\n".join(lines) + "\n"


def _python_for_nobody() -> tuple[str, str]:
    """An interpreter `nobody` may run, and the PYTHONPATH giving it this checkout and our packages.

    A venv whose base interpreter lives under /root (pyenv) is not executable by `nobody`; Debian's python3 of the
    same minor version runs the venv's site-packages (same ABI).
    """
    real = Path(sys.executable).resolve()
    if not str(real).startswith("/root/"):
        return sys.executable, str(ROOT)
    system = "/usr/bin/python3"
    probe = subprocess.run([system, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True,
                           check=False)
    if probe.stdout.strip() != str(tuple(sys.version_info[:2])):
        pytest.skip("no interpreter of this Python version that `nobody` may run")
    site = next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir())
    return system, f"{ROOT}:{site}"


@pytest.fixture
def postfix(fresh_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[int, Path]]:
    # The pipe runs as `nobody`: the database and data dir must be reachable for it (pytest's tmp is 0700).
    shared = Path(tempfile.mkdtemp(prefix="casemgr-postfix-"))
    shared.chmod(0o777)
    data = shared / "data"
    data.mkdir()
    data.chmod(0o777)
    python, path = _python_for_nobody()
    env = [f"PYTHONPATH={path}", f"CASEMGR_DATA_DIR={data}"]
    if get_settings().is_sqlite:
        shutil.copy(fresh_db / "casemgr.sqlite3", data / "casemgr.sqlite3")
        (data / "casemgr.sqlite3").chmod(0o666)
        monkeypatch.setenv("CASEMGR_DATA_DIR", str(data))
    else:
        env.append(f"CASEMGR_DATABASE_URL={get_settings().effective_database_url}")
    rebuild()
    conf, queue = shared / "etc", shared / "queue"
    conf.mkdir()
    port = free_port()
    command = (f"/usr/bin/env {' '.join(env)} {python} -m casemgr.cli intake pipe "
               "--source postfix:${queue_id} --recipient ${recipient}")
    (conf / "master.cf").write_text(_master_cf(port, command))
    (conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {shared}/lib
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.test.invalid
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = support.example.com
transport_maps = inline:{{ support.example.com=casemgr: }}
casemgr_destination_recipient_limit = 1
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = {shared}/maillog
maillog_file_prefixes = {shared}
smtpd_banner = $myhostname ESMTP
biff = no
default_transport = discard:
relay_transport = discard:
smtp_dns_support_level = disabled
""")
    queue.mkdir()
    (shared / "lib").mkdir()
    shutil.chown(shared / "lib", "postfix")
    subprocess.run([POSTFIX, "-c", str(conf), "check"], check=False, capture_output=True, timeout=60)
    start = subprocess.run([POSTFIX, "-c", str(conf), "start"], capture_output=True, text=True, timeout=60)
    try:
        assert start.returncode == 0, _log(shared)
        deadline = time.monotonic() + 30
        while True:
            try:
                smtplib.SMTP("127.0.0.1", port, timeout=5).quit()
                break
            except OSError:
                assert time.monotonic() < deadline, "postfix did not listen"
                time.sleep(0.2)
        yield port, shared
    finally:
        subprocess.run([POSTFIX, "-c", str(conf), "stop"], capture_output=True, timeout=60, check=False)
        shutil.rmtree(shared, ignore_errors=True)


def _log(shared: Path) -> str:
    # Postfix writes its errors to maillog_file (stderr only when run on a terminal).
    return (shared / "maillog").read_text()[-3000:] if (shared / "maillog").exists() else ""


def _inbound(mid: str) -> list[Message]:
    with read_session() as s:
        return list(s.execute(select(Message).where(Message.direction == "inbound", Message.message_id == mid))
                    .scalars())


def test_postfix_delivers_through_the_pipe_transport(postfix: tuple[int, Path], run_jobs) -> None:  # type: ignore[no-untyped-def]
    port, shared = postfix
    good = ("From: Ann Lee <ann@example.org>\r\nTo: support@support.example.com\r\nSubject: Charged twice\r\n"
            "Message-ID: <postfix-1@example.org>\r\n\r\nPlease refund me.\r\n")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        smtp.sendmail("ann@example.org", ["support@support.example.com"], good)
        smtp.sendmail("ann@example.org", ["support@support.example.com"], good)  # the same message again
    deadline = time.monotonic() + 180
    while _log(shared).count("relay=casemgr") < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    log = _log(shared)
    run_jobs()  # the pipe spooled both deliveries; the worker makes the case (and finds the re-delivery)
    stored = _inbound("<postfix-1@example.org>")
    assert len(stored) == 1, log
    assert stored[0].sender == "ann@example.org" and stored[0].channel == "email" and stored[0].case_id is not None
    assert log.count("status=sent (delivered via casemgr service)") == 2, log
    with read_session() as s:
        assert s.execute(select(QuarantinedMessage)).first() is None
