"""Password reset by email and password change, for staff and clients alike.

- A reset request answers the same, and takes the same time, whether or not an account has the address: the email
  is built in the request but handed to the mail server in the background (`mail.send_email_soon`).
- Requests are limited per address (RESET_PER_ADDRESS an hour: more are answered the same but send nothing) and
  per client address (RESET_PER_IP an hour: more are refused with 429), counted in the database.
- After a change or a reset, every other session of the user ends: its rows are deleted in one indexed delete
  (backcare.common.sessions keeps each session's user), and Django refuses any session whose password hash no
  longer matches in any case.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.template import loader
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from backcare.clinic import audit
from backcare.clinic.services import ratelimit
from backcare.clinic.services.mail import send_email_soon
from backcare.common.sessions import end_sessions_of

WINDOW = dt.timedelta(hours=1)


def limits() -> tuple[int, int]:
    """(requests per address, requests per client address) in an hour."""
    return int(settings.BACKCARE["RESET_PER_ADDRESS"]), int(settings.BACKCARE["RESET_PER_IP"])


def client_address(request: Any) -> str:
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def ip_allowed(request: Any) -> bool:
    """Count this reset request against the client address's limit; False once it is over."""
    return ratelimit.hit("reset-ip", client_address(request), limit=limits()[1], window=WINDOW)


def reset_link(user: Any, request: Any) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return str(request.build_absolute_uri(reverse("password_reset_confirm", args=[uid, token])))


def request_reset(email: str, users: list[Any], request: Any) -> None:
    """Email a reset link to each active account with this address, unless the address is over its limit. Does the
    same work, and says nothing different, when there is no such account."""
    allowed = ratelimit.hit("reset-address", email, limit=limits()[0], window=WINDOW)
    sent_to = [user.pk for user in users] if allowed else []
    # One event either way (who asked from where, and for which accounts if any), so the work is the same.
    audit.record(
        None, "password_reset_requested", detail={"users": sent_to, "over_limit": not allowed}, request=request
    )
    for user in users if allowed else ():
        context = {"user": user, "link": reset_link(user, request), "minutes": settings.PASSWORD_RESET_TIMEOUT // 60}
        subject = "".join(loader.render_to_string("clinic/password_reset_subject.txt", context).splitlines())
        body = loader.render_to_string("clinic/password_reset_email.txt", context)
        send_email_soon(str(user.email), subject, body, what=f"password reset (user {user.pk})")


def end_other_sessions(user: Any, *, keep: str | None = None) -> int:
    """End every session of this user but `keep` (the current one); the number ended."""
    return end_sessions_of(user.pk, keep=keep)


def password_set(user: Any, request: Any, *, how: str) -> None:
    """After the user's password was changed (`how` "change", the current session kept) or reset: end the other
    sessions and audit it."""
    keep = request.session.session_key if how == "change" else None
    ended = end_other_sessions(user, keep=keep)
    audit.record(user, f"password_{how}", detail={"other_sessions_ended": ended}, request=request)
