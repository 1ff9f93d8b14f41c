"""Password-reset emails, the one kind that does not go through the outbox (backcare.common.outbox).

A reset link is a live credential: it is sent straight to the mail server, in the background so the answer takes
the same time whether or not an account has the address, and never stored. When the mail server is down the email
is lost and logged, and the person asks again; every other email (invitations, confirmations, reminders, offers)
is queued in the outbox in the transaction that caused it and retried until it goes.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)


def send_email(to: str, subject: str, body: str, *, what: str) -> bool:
    """Send a plain-text email to one address. False, logged with `what` (never the body, which may hold a secret
    link), when the mail server cannot be reached or refuses it."""
    try:
        EmailMessage(subject, body, None, [to]).send()
    except (OSError, smtplib.SMTPException):
        logger.exception("%s email could not be sent", what)
        return False
    return True


_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="backcare-mail")
_pending: set[Future[bool]] = set()
_lock = threading.Lock()


def send_email_soon(to: str, subject: str, body: str, *, what: str) -> None:
    """`send_email` in the background: the caller's answer then takes the same time whether or not an email went
    out (a password reset must not tell whether an account has the address)."""
    future = _pool.submit(send_email, to, subject, body, what=what)
    with _lock:
        _pending.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future[bool]) -> None:
    with _lock:
        _pending.discard(future)


def wait_for_sent(timeout: float = 30) -> None:
    """Wait until every email handed to `send_email_soon` has been tried (tests, and a clean shutdown)."""
    with _lock:
        pending = list(_pending)
    wait(pending, timeout=timeout)
