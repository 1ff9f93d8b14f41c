"""A real SMTP server on loopback for the email tests (aiosmtpd), and the `smtp` fixture that points Django at it.

Other test modules import `Inbox`, `smtp_server`, `attachments` and `body_text` from here.
"""

from __future__ import annotations

import email
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.core import mail
from django.test import override_settings


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts (parsed), optionally slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.delay = delay
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)  # hold the SMTP transaction open, so overlapping runs really overlap
        parsed = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(parsed)  # type: ignore[arg-type]
            self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m, rcpt in zip(self.messages, self.recipients, strict=True) if address in rcpt]

    def subjects(self) -> list[str]:
        with self._lock:
            return sorted(str(m["subject"]) for m in self.messages)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def smtp_server(inbox: Inbox | None = None) -> Iterator[tuple[Controller, Inbox]]:
    """A running SMTP server on 127.0.0.1 and a free port, with Django's settings pointing at it."""
    inbox = inbox or Inbox()
    for attempt in range(5):
        port = free_port()
        controller = Controller(inbox, hostname="127.0.0.1", port=port, ready_timeout=10)
        try:
            controller.start()
            break
        except Exception:
            if attempt == 4:
                raise
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
        EMAIL_USE_TLS=False,
        EMAIL_USE_SSL=False,
        EMAIL_TIMEOUT=5,
    ):
        try:
            yield controller, inbox
        finally:
            with suppress(Exception):
                controller.stop()


def attachments(message: EmailMessage, content_type: str = "text/calendar") -> list[Any]:
    return [part for part in message.iter_attachments() if part.get_content_type() == content_type]


def body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None, "the email has no plain-text body"
    return str(part.get_content())


def test_the_test_server_receives_what_django_sends(smtp):
    controller, inbox = smtp
    sent = mail.send_mail("Hello", "Body text", "clinic@x.test", ["someone@x.test"])
    assert sent == 1
    assert [str(m["subject"]) for m in inbox.to("someone@x.test")] == ["Hello"]
    assert "Body text" in body_text(inbox.messages[0])
    controller.stop()
    with pytest.raises(ConnectionRefusedError):
        mail.send_mail("Again", "Body", "clinic@x.test", ["someone@x.test"])
