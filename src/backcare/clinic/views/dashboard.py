"""Dashboards, one address with content by role: the therapist's clients today and alerts, the owner's counts and
the whole clinic's alerts, the front desk's client list (contact details only). Clients go to their portal.

What each shows is read by `backcare.clinic.selectors.dashboard`, one page at a time (`?after=<client id>` for the
next page of alerts), and each view writes one audit event naming the clients shown.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse

from backcare.clinic import access, audit
from backcare.clinic.models import Role
from backcare.clinic.selectors import dashboard as selector
from backcare.clinic.services import sessions as session_service

FRONT_DESK_LIMIT = 300


def _cursor(request: HttpRequest) -> int | None:
    value = request.GET.get("after", "")
    return int(value) if value.isascii() and value.isdigit() else None


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if access.role_of(request.user) == "client":
        return redirect("portal")
    staff = access.require_staff(request.user)
    context: dict[str, Any] = {"staff": staff, **selector.sections(staff)}
    if staff.role == Role.FRONT_DESK:
        clients = access.clients_for(request.user).select_related("therapist").order_by("last_name", "first_name")
        listed = list(clients[: FRONT_DESK_LIMIT + 1])
        context.update(contacts=listed[:FRONT_DESK_LIMIT], more=len(listed) > FRONT_DESK_LIMIT)
        return render(request, "clinic/dashboard.html", context)

    scope = access.clinical_clients_for(request.user)
    context.update(notes_due=session_service.notes_due(staff), note_due_text=session_service.NOTE_DUE)
    cursor = _cursor(request)
    page = selector.alert_page(scope, cursor)
    context.update(
        alerts=page.alerts,
        later_page=cursor is not None,
        first_url=reverse("dashboard"),
        more_url=f"{reverse('dashboard')}?after={page.next_after}" if page.next_after else "",
    )
    shown = [a.client for a in page.alerts] + [s.course.client for s in context["notes_due"]]
    if staff.role == Role.OWNER:
        context["counts"] = selector.owner_counts(staff)
    else:
        context["today"], context["today_more"] = selector.todays_clients(scope, staff)
        shown += [r["client"] for r in context["today"]]
    audit.viewed_page(request, shown, "dashboard", after=cursor)
    return render(request, "clinic/dashboard.html", context)


urlpatterns = [path("dashboard/", dashboard, name="dashboard")]
