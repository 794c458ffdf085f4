"""Fixtures of the gateway tests: real mail servers on loopback for the email channel."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from mail_servers import Dovecot, Mailbox, SmtpServer, smtp_server


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """One private Dovecot for the session (skips with a message when Dovecot is not installed)."""
    server = Dovecot.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Mailbox:
    """A fresh IMAP account (an empty INBOX) for this test."""
    return dovecot.add_user()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A recording SMTP server for this test."""
    with smtp_server() as server:
        yield server
