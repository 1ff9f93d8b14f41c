"""The one door every email of the clinic application leaves by (invitations, password resets).

Callers build the message; `send_email` hands it to the mail server and says whether that worked. Keeping every
send in this one function lets the delivery change (an outbox with retries) without touching its callers.
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
