"""Sign-in throttling that stops password guessing without letting anyone lock another person out (OWASP's
Authentication and Credential Stuffing cheat sheets: per-account throttling with a growing but capped delay, per
address limits, and device cookies for clients the user has signed in from before).

- Per account: the first BACKCARE_LOGIN_FAILURES (5) failures cost nothing; after that each try must wait 1, 2, 4, 8
  ... minutes after the last failure, capped at BACKCARE_LOGIN_MAX_DELAY_MINUTES (15). Tries during the wait are
  refused without checking the password and do not count, so nobody can lengthen it; the count is forgotten a day
  after the last failure and on a successful sign-in. This holds however many addresses the guesses come from.
- Per address (django-axes, on the client's address, taken from X-Forwarded-For behind the trusted proxy):
  BACKCARE_LOGIN_ADDRESS_FAILURES (20) failures, on any usernames, lock that address for
  BACKCARE_LOGIN_COOLOFF_MINUTES (15); failing on during the lock does not extend it.
- A device the user has signed in from before carries a signed cookie naming the user. For that user, from that
  device, neither the account's delay nor the address lock applies, so a stranger's guessing never locks the owner
  out of the clinic's own computers. The device has its own count with the same growing delay, in case the cookie
  is stolen; it ends with the password it was issued under, and after BACKCARE_DEVICE_DAYS (90).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from backcare.clinic.models import SignInFailures

DEVICE_COOKIE = "backcare_device"
_SALT = "backcare.signin.device"
FORGET_AFTER = timedelta(days=1)


def free_failures() -> int:
    return int(settings.BACKCARE_LOGIN["FREE_FAILURES"])


def max_delay() -> timedelta:
    return timedelta(minutes=int(settings.BACKCARE_LOGIN["MAX_DELAY_MINUTES"]))


def delay_after(failures: int) -> timedelta:
    """How long a try must wait after the last of `failures` failures: nothing for the first few, then 1, 2, 4 ...
    minutes, never more than the cap."""
    over = failures - free_failures()
    if over < 0:
        return timedelta(0)
    return min(timedelta(minutes=2 ** min(over, 30)), max_delay())


def wait_for(key: str) -> timedelta:
    row = SignInFailures.objects.filter(key=key).first()
    if row is None:
        return timedelta(0)
    now = timezone.now()
    if now - row.last_failure_at > FORGET_AFTER:
        return timedelta(0)
    return max(row.last_failure_at + delay_after(row.failures) - now, timedelta(0))


def count_failure(key: str) -> int:
    """One more failure for `key`, atomically; the count including it."""
    now = timezone.now()
    with transaction.atomic():
        updated = SignInFailures.objects.filter(key=key, last_failure_at__gte=now - FORGET_AFTER).update(
            failures=F("failures") + 1, last_failure_at=now
        )
        if not updated:
            try:
                with transaction.atomic():
                    SignInFailures.objects.update_or_create(key=key, defaults={"failures": 1, "last_failure_at": now})
            except IntegrityError:
                SignInFailures.objects.filter(key=key).update(failures=F("failures") + 1, last_failure_at=now)
    return SignInFailures.objects.get(key=key).failures


def account_key(username: str) -> str:
    return f"account:{username}"


# --- trusted devices -----------------------------------------------------------------------------------------


def _password_mark(user: Any) -> str:
    return salted_hmac(_SALT, user.password, algorithm="sha256").hexdigest()[:16]


def device_cookie_value(user: Any) -> str:
    return signing.dumps({"u": user.pk, "d": secrets.token_urlsafe(12), "p": _password_mark(user)}, salt=_SALT)


def trusted_device(request: HttpRequest | None, username: str | None) -> str | None:
    """The device's id when the request carries a valid device cookie for this username, else None."""
    if request is None or not username:
        return None
    raw = request.COOKIES.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = signing.loads(raw, salt=_SALT, max_age=timedelta(days=int(settings.BACKCARE_LOGIN["DEVICE_DAYS"])))
        user = get_user_model().objects.get(pk=data["u"])
    except (signing.BadSignature, KeyError, TypeError, get_user_model().DoesNotExist):
        return None
    if user.get_username() != username or not constant_time_compare(str(data.get("p")), _password_mark(user)):
        return None
    return str(data["d"])


def throttle_key(request: HttpRequest | None, username: str) -> str:
    """What this try is counted against: the trusted device, or else the account."""
    device = trusted_device(request, username)
    return f"device:{device}" if device else account_key(username)


# --- hooks: an authentication backend placed first, signal receivers, axes' callables, a middleware ------------


class SignInGuardBackend:
    """Refuses a try while its account (or trusted device) must wait; authenticates nobody itself."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, **kwargs: Any) -> None:
        if request is None or not username:
            return None
        wait = wait_for(throttle_key(request, username))
        if wait > timedelta(0):
            refuse(request, wait)
            raise PermissionDenied("this account must wait before the next try")
        if not AxesProxyHandler.is_allowed(request, {"username": username}):
            # axes' backend, next, refuses it for the address lock; the password is not tried, so not counted.
            # (These request attributes, here and below, are ours and axes': HttpRequest does not declare them.)
            request.backcare_not_tried = True  # type: ignore[attr-defined]
        return None

    def get_user(self, user_id: int) -> Any:
        """Sessions that name this backend (it comes first, so `force_login` and a login without a backend use it)
        resolve their user as Django's model backend does."""
        return ModelBackend().get_user(user_id)


def refuse(request: HttpRequest, wait: timedelta) -> None:
    """Answer this request with the lockout page (axes' middleware renders it through lockout_response)."""
    # request attributes that HttpRequest does not declare: read by the lockout page and axes
    request.backcare_signin_wait = wait  # type: ignore[attr-defined]
    request.backcare_not_tried = True  # type: ignore[attr-defined]
    request.axes_locked_out = True  # type: ignore[attr-defined]


def on_failure(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    if request is None or getattr(request, "backcare_not_tried", False):
        return  # refused during a wait or an address lock: not a guess at the password, not counted
    username = str(credentials.get("username") or "")
    if not username:
        return
    key = throttle_key(request, username)
    wait = delay_after(count_failure(key))
    if wait > timedelta(0):
        # as in refuse()
        request.backcare_signin_wait = wait  # type: ignore[attr-defined]
        request.axes_locked_out = True  # type: ignore[attr-defined]


def on_success(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if request is None:
        return
    username = user.get_username()
    SignInFailures.objects.filter(key=throttle_key(request, username)).delete()
    SignInFailures.objects.filter(key=account_key(username)).delete()
    request.backcare_trust_device = user  # type: ignore[attr-defined]  # for TrustDeviceMiddleware


def connect() -> None:
    # After axes' own receivers (axes is earlier in INSTALLED_APPS): axes records the address's failure first.
    user_login_failed.connect(on_failure, dispatch_uid="backcare-signin-failure")
    user_logged_in.connect(on_success, dispatch_uid="backcare-signin-success")


def axes_whitelisted(request: HttpRequest, credentials: dict[str, Any] | None) -> bool:
    """AXES_WHITELIST_CALLABLE: the address lock does not apply to a user on their own trusted device."""
    return trusted_device(request, str((credentials or {}).get("username") or "")) is not None


def client_address(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the connection's address, which `backcare serve` behind the trusted proxy has already
    taken from X-Forwarded-For; no header is read here, so no client can choose its own address."""
    return request.META.get("REMOTE_ADDR")


def lockout_response(request: HttpRequest, original: HttpResponse | None, credentials: Any = None) -> HttpResponse:
    wait = getattr(request, "backcare_signin_wait", None)
    if wait is None:
        wait = timedelta(minutes=int(settings.BACKCARE_LOGIN["COOLOFF_MINUTES"]))
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    context = {"wait_minutes": minutes}
    response = render(request, "clinic/locked_out.html", context, status=429)
    response["Retry-After"] = str(math.ceil(wait.total_seconds()))
    return response


class TrustDeviceMiddleware:
    """After a successful sign-in, give the browser the device cookie that lets it sign in during an attack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        user = getattr(request, "backcare_trust_device", None)
        if user is not None:
            response.set_cookie(
                DEVICE_COOKIE,
                device_cookie_value(user),
                max_age=int(settings.BACKCARE_LOGIN["DEVICE_DAYS"]) * 86400,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
