"""The one door every email of the clinic application leaves by (invitations, password resets).

Callers build the message; `send_email` hands it to the mail server and says whether that worked. Keeping every
send in this one function lets the delivery change (an outbox with retries) without touching its callers.
"""

from __future__ import annotations

import logging
import smtplib

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
