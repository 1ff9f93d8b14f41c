"""Calendar feeds: `/calendar/<token>.ics` (no sign-in; the secret address is the key) and the page where a
therapist or a client gets, replaces or stops their own address (`/calendar/subscribe/`).

Included from the project's URLs with `path("", include("backcare.scheduling.feeds"))`.
"""

from __future__ import annotations

import secrets
from typing import TypedDict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import access
from backcare.clinic.models import Client, Role, StaffMember
from backcare.scheduling import calendars

SESSION_NONCES = "calendar_nonces"
SESSION_NEW_TOKEN = "calendar_new_token"


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """The feed of the therapist or client the token belongs to. Unknown or revoked tokens answer 404."""
    row = calendars.find_token(token)
    if row is None:
        raise Http404("No such calendar.")
    if row.therapist is not None and not row.therapist.active:
        raise Http404("No such calendar.")
    response = HttpResponse(calendars.build_feed(row), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = 'inline; filename="appointments.ics"'
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


class _Owner(TypedDict, total=False):
    """Whose feed: the keyword arguments of the calendars functions (exactly one of the two)."""

    therapist: StaffMember
    client: Client


def _whose(request: HttpRequest) -> _Owner:
    """The signed-in therapist's or client's own feed; other roles have no appointments of their own."""
    staff = access.staff_of(request.user)
    if staff is not None:
        if staff.role != Role.THERAPIST:
            raise PermissionDenied("Calendar feeds are for therapists and clients.")
        return {"therapist": staff}
    client = access.client_of(request.user)
    if client is None:
        raise PermissionDenied("This page is not available to your role.")
    return {"client": client}


@login_required
@require_http_methods(["GET", "POST"])
def my_calendar(request: HttpRequest) -> HttpResponse:
    owner = _whose(request)
    if request.method == "POST":
        nonces: list[str] = request.session.get(SESSION_NONCES, [])
        nonce = request.POST.get("nonce", "")
        action = request.POST.get("action", "")
        if nonce not in nonces:
            # Submitted twice (or from an old page): the first submission did the work.
            return redirect("my_calendar")
        request.session[SESSION_NONCES] = [n for n in nonces if n != nonce]
        if action == "new":
            _, token = calendars.create_token(by=request.user, request=request, **owner)
            request.session[SESSION_NEW_TOKEN] = token
            messages.success(request, "Your new calendar address is ready. Any earlier address has stopped working.")
        elif action == "stop":
            if calendars.revoke_token(by=request.user, request=request, **owner):
                messages.success(request, "Your calendar address has stopped working.")
        else:
            messages.error(request, "Choose what to do with your calendar address.")
        return redirect("my_calendar")
    nonce = secrets.token_urlsafe(16)
    request.session[SESSION_NONCES] = [*request.session.get(SESSION_NONCES, [])[-9:], nonce]
    token = request.session.pop(SESSION_NEW_TOKEN, None)
    return render(
        request,
        "scheduling/feeds/my_calendar.html",
        {
            "live": calendars.live_token(**owner),
            "new_url": calendars.feed_url(token, request) if token else "",
            "nonce": nonce,
            "is_therapist": "therapist" in owner,
        },
    )


urlpatterns = [
    path("calendar/subscribe/", my_calendar, name="my_calendar"),
    path("calendar/<str:token>.ics", calendar_feed, name="calendar_feed"),
]
