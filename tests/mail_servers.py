"""Real mail servers on loopback for the email tests: a private Dovecot (IMAP) and an aiosmtpd recorder.

Dovecot comes from Debian's ``dovecot-imapd`` (``make test`` installs it via ``make mail-servers``);
without it the tests that need it skip with a message. One Dovecot runs per test session in a temp
dir (recipe: ``../shared/specs/test-servers.md``); every test gets its own user, hence its own empty
mailbox. Its processes run as the ``dovecot`` user (imap-login refuses root), so the temp dir is
world-readable and the mail dir belongs to ``dovecot``.

Fixtures: ``tests/gateway/conftest.py`` (``dovecot``, ``mailbox``, ``smtp``); ``smtp_server()`` is the
plain context manager behind ``smtp``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from imapclient import IMAPClient  # type: ignore[import-untyped]

from gateway.redis_conn import free_port

DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)

_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/run
state_dir = {dir}/run
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir
# IDLE learns of new mail through inotify; when a busy CI host has no inotify instances left, Dovecot
# falls back to looking every 30 s, as long as the tests wait. Look every second instead.
mailbox_idle_check_interval = 1 secs
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
# One passwd-file per user: Dovecot re-reads a changed passwd-file only when its mtime moves on, so a
# user appended within the same second as the previous one failed to log in.
passdb {{
  driver = passwd-file
  args = {dir}/users/%u
}}
userdb {{
  driver = passwd-file
  args = {dir}/users/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"""


@dataclass
class Dovecot:
    """A private Dovecot instance; ``add_user`` gives each test its own mailbox."""

    dir: Path
    port: int
    host: str = "127.0.0.1"

    @classmethod
    def start(cls) -> Dovecot:
        if DOVECOT is None:
            pytest.skip("Dovecot not installed: `make mail-servers` (apt-get install dovecot-imapd) enables "
                        "the email channel tests")
        try:
            owner = pwd.getpwnam("dovecot")
        except KeyError:
            pytest.skip("the dovecot system user is missing (reinstall dovecot-imapd)")
        if os.geteuid() != 0 and owner.pw_uid != os.geteuid():
            pytest.skip("a private Dovecot needs root (to run its processes as the dovecot user)")
        root = Path(tempfile.mkdtemp(prefix="huiliu-dovecot-"))
        root.chmod(0o755)  # Dovecot's unprivileged processes must reach the config and the users files
        (root / "run").mkdir()
        (root / "mail").mkdir()
        os.chown(root / "mail", owner.pw_uid, owner.pw_gid)
        (root / "users").mkdir()
        (root / "users").chmod(0o755)
        port = free_port()
        (root / "dovecot.conf").write_text(_CONF.format(dir=root, port=port))
        server = cls(root, port)
        # It daemonizes and its children inherit our descriptors: no pipes, or run() waits forever.
        with (root / "start.log").open("wb") as out:
            proc = subprocess.run([DOVECOT, "-c", str(root / "dovecot.conf")], stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=out, timeout=30, check=False)
        if proc.returncode != 0:
            started = (root / "start.log").read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            pytest.fail(f"dovecot did not start: {started}")
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection((server.host, port), timeout=1):
                return server
            if time.monotonic() > deadline:
                log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
                server.stop()
                pytest.fail(f"dovecot never listened on {port}: {log[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        pid_file = self.dir / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
        shutil.rmtree(self.dir, ignore_errors=True)

    def add_user(self) -> Mailbox:
        owner = pwd.getpwnam("dovecot")
        user, password = f"shop{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        entry = self.dir / "users" / user
        entry.write_text(f"{user}:{{PLAIN}}{password}:{owner.pw_uid}:{owner.pw_gid}::{self.dir}/mail/{user}\n")
        entry.chmod(0o644)
        return Mailbox(self.host, self.port, user, password)


@dataclass
class Mailbox:
    """One test's IMAP account. Helpers are blocking: call them via ``asyncio.to_thread`` in async tests."""

    host: str
    port: int
    user: str
    password: str

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        try:
            client.login(self.user, self.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver a mail the way a mail client stores one (IMAP APPEND)."""
        with self.client() as c:
            if not c.folder_exists(folder):
                c.create_folder(folder)
            c.append(folder, raw)

    def flags(self, folder: str = "INBOX") -> dict[int, tuple[bytes, ...]]:
        with self.client() as c:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            return {uid: tuple(d[b"FLAGS"]) for uid, d in c.fetch(uids, ["FLAGS"]).items()} if uids else {}

    def recreate(self, folder: str) -> None:
        """Delete and recreate a folder: the server gives it a new UIDVALIDITY."""
        with self.client() as c:
            if c.folder_exists(folder):
                c.delete_folder(folder)
            c.create_folder(folder)


@dataclass
class SmtpRecorder:
    """aiosmtpd handler that records every accepted mail; ``refuse`` makes RCPT answer with that reply."""

    mails: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    refuse: str | None = None

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: SmtpRecorder


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on a free loopback port that records what it accepts."""
    recorder = SmtpRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", controller.port, recorder)
    finally:
        controller.stop()
