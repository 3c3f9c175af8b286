"""Intake fixtures: the real intake SMTP server on loopback (the outbound relay sink is tests/conftest.py's)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from casemgr.bench.serving import free_port


@pytest.fixture
def run_mail_jobs() -> Any:
    return _run_mail_jobs


def _run_mail_jobs() -> int:
    """Run queued mail.send jobs through the real worker path (claim + run_claimed); returns how many ran."""
    from sqlalchemy import select

    from casemgr.db import read_session
    from casemgr.intake import outbound  # noqa: F401 - registers the handler
    from casemgr.jobs import service as jobs
    from casemgr.jobs.models import Job

    with read_session() as s:
        ids = list(s.execute(select(Job.id).where(Job.kind == "mail.send", Job.status == "queued")).scalars())
    for job_id in ids:
        from sqlalchemy import update

        from casemgr.clock import now
        from casemgr.db import write_session

        with write_session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(status="running", locked_by="test",
                                                                 locked_until=now(), attempts=Job.attempts + 1))
        assert jobs.run_claimed(job_id, "test") == "done"
    return len(ids)


@pytest.fixture
def shared_eml(shared_data: Any) -> list[Any]:
    return sorted(shared_data("eml").glob("*.eml"))


# ---------------------------------------------------------------- a real Dovecot IMAP server on loopback

DOVECOT = "/usr/sbin/dovecot"
IMAP_USERS = [f"user{i}" for i in range(1, 9)]
IMAP_PASSWORD = "imap-test-password"


@dataclass
class Dovecot:
    host: str
    imap_port: int
    imaps_port: int
    ca_file: str
    root: str


def _dovecot_config(root: str, imap_port: int, imaps_port: int) -> str:
    return f"""
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


@pytest.fixture(scope="module")
def dovecot() -> Iterator[Dovecot]:
    """Dovecot (Debian dovecot-imapd) with passwd-file auth, maildirs and a self-signed cert, all in a temp dir."""
    import os
    import shutil
    import subprocess
    import tempfile
    import time

    if not os.path.exists(DOVECOT):
        pytest.skip("dovecot-imapd is not installed")
    if os.geteuid() != 0:
        pytest.skip("the Dovecot fixture runs the server as root (it drops to the dovecot user)")
    root = tempfile.mkdtemp(prefix="casemgr-dovecot-")
    os.chmod(root, 0o755)
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-keyout", f"{root}/key.pem", "-out", f"{root}/cert.pem", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                       check=True, capture_output=True, timeout=60)
        with open(f"{root}/passwd", "w") as fh:
            for user in IMAP_USERS:
                fh.write(f"{user}:{{PLAIN}}{IMAP_PASSWORD}::::::\n")
        os.makedirs(f"{root}/mail")
        shutil.chown(f"{root}/mail", "dovecot", "dovecot")
        imap_port, imaps_port = free_port(), free_port()
        conf = f"{root}/dovecot.conf"
        with open(conf, "w") as fh:
            fh.write(_dovecot_config(root, imap_port, imaps_port))
        proc = subprocess.Popen([DOVECOT, "-F", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", imaps_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", imap_port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = open(f"{root}/dovecot.log").read() if os.path.exists(f"{root}/dovecot.log") else ""
                    out = proc.stdout.read().decode() if proc.stdout and proc.poll() is not None else ""
                    proc.kill()
                    pytest.fail(f"dovecot did not start: {out}\n{log}")
                time.sleep(0.1)
        try:
            yield Dovecot("127.0.0.1", imap_port, imaps_port, f"{root}/cert.pem", root)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    finally:
        shutil.rmtree(root, ignore_errors=True)
