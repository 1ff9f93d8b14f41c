"""Log a user out after the configured idle time (30 minutes by default), and hold a signed-in staff member at the
second step of signing in until they pass it."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve

LAST_SEEN = "backcare_last_seen"


class IdleTimeoutMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last = request.session.get(LAST_SEEN)
            if last is not None and now - float(last) > settings.SESSION_IDLE_SECONDS:
                logout(request)
                messages.info(request, "You were signed out after a period of inactivity.")
            else:
                request.session[LAST_SEEN] = now
        return self.get_response(request)


# Pages a signed-in user may open before the second step: the code step, the app set-up (only for a user who has no
# app yet), the recovery codes shown right after it, and signing out.
_BEFORE_SECOND_FACTOR = {"two_factor_verify", "logout"}
_BEFORE_ENROLMENT = {"two_factor_setup", "two_factor_recovery_codes", "logout"}


class SecondFactorMiddleware:
    """After the password, a staff member who has an authenticator app, every owner, and all staff of a clinic that
    requires it must pass the second step (backcare.clinic.services.two_factor) before any other page: with an app
    they are sent to the code step, without one (when it is required) to setting one up. Portal clients are not
    asked. The check runs on every request, so a session signed in another way (the admin's sign-in, a session
    from before the rule was turned on, an app that the owner reset) is held at the same step."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        held = self._held_at(request)
        if held is not None:
            return held
        return self.get_response(request)

    def _held_at(self, request: HttpRequest) -> HttpResponse | None:
        from backcare.clinic.access import staff_of
        from backcare.clinic.services import two_factor

        user = request.user
        # django-otp's OTPMiddleware, before this one, gives the user is_verified (hence ignore[attr-defined])
        if not user.is_authenticated or user.is_verified():  # type: ignore[attr-defined]
            return None
        staff = staff_of(user)
        if staff is None and not user.is_staff:  # portal clients; an admin user with an app is held too
            return None
        name = _url_name(request)
        if two_factor.has_app(user):
            if name in _BEFORE_SECOND_FACTOR:
                return None
            return redirect_to_login(request.get_full_path(), "two_factor_verify")
        if not two_factor.required_for(staff) or name in _BEFORE_ENROLMENT:
            return None
        return redirect("two_factor_setup")


def _url_name(request: HttpRequest) -> str | None:
    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None
