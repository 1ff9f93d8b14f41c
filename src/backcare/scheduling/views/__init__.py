"""The scheduling pages: the front-desk calendar (`calendar`), booking, moving, cancelling and whole courses
(`booking`), and the client's own appointments in the portal (`portal`). Each module keeps its own `urlpatterns`;
`backcare.scheduling.urls` joins them.

Shared here: rendering in the clinic's time zone and finding an appointment the user may see. Why the screening stops
a booking, in words fit for whoever is reading, is `backcare.scheduling.gates` (the API words it the same way).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from backcare.clinic import access
from backcare.clinic.models import Client, Clinic, StaffMember
from backcare.clinic.search import client_page
from backcare.common.ids import ascii_id
from backcare.scheduling.gates import (
    client_gate_text,
    client_services,
    replace_gate_error,
    staff_gate_text,
    treatment_gate,
)
from backcare.scheduling.models import Appointment
from backcare.scheduling.services.availability import clinic_zone


def render_local(
    request: HttpRequest, template: str, context: dict[str, Any], clinic: Clinic, status: int = 200
) -> HttpResponse:
    """Render with dates and times shown in the clinic's own time zone."""
    context.setdefault("clinic", clinic)
    context.setdefault("clinic_zone", clinic.time_zone)
    with timezone.override(clinic_zone(clinic)):
        return render(request, template, context, status=status)


JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def safe_json(data: Any, status: int = 200) -> HttpResponse:
    """JSON with <, > and & written as \\u escapes (as `json_script` does): the same data, and never markup, even
    if a browser were made to read the response as a page."""
    text = json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False).translate(JSON_ESCAPES)
    return HttpResponse(text, status=status, content_type="application/json")


def staff_appointment(user: Any, pk: int) -> tuple[StaffMember, Appointment]:
    """An appointment of the staff member's clinic, if they may see its client's contact details (else 404)."""
    staff = access.require_staff(user)
    try:
        appointment = Appointment.objects.select_related("client", "therapist", "room", "service", "clinic").get(
            pk=pk, clinic=staff.clinic
        )
    except Appointment.DoesNotExist:
        raise Http404("No such appointment") from None
    access.get_client(user, appointment.client_id, clinical=False)
    return staff, appointment


def client_appointment(client: Client, pk: int) -> Appointment:
    try:
        return Appointment.objects.select_related("therapist", "room", "service", "clinic").get(pk=pk, client=client)
    except Appointment.DoesNotExist:
        raise Http404("No such appointment") from None


PICKER_PARAMS = ("client", "client_q", "client_page")


def client_picker(request: HttpRequest, clients: QuerySet[Client], value: Any) -> dict[str, Any]:
    """What the page needs to let staff find the client by name instead of a list of every client: the client
    chosen (from `value`, the form's client id, if it is among `clients`), or a search box with one page of matches,
    each a link back to this page with the client chosen. The other query parameters of the page are kept.

    Three bounded queries at most (the chosen client, the count and the page), however many clients there are."""
    chosen_id = ascii_id(str(value.pk if hasattr(value, "pk") else value or ""))
    chosen = clients.filter(pk=chosen_id).first() if chosen_id is not None else None
    query = request.GET.get("client_q", "").strip()[:100]
    kept = [(k, v) for k in request.GET if k not in PICKER_PARAMS for v in request.GET.getlist(k)]
    page = None
    results: list[dict[str, Any]] = []
    if chosen is None and query:
        page = client_page(clients, query, request.GET.get("client_page"))
        results = [{"client": c, "url": "?" + urlencode([*kept, ("client", str(c.pk))])} for c in page.object_list]

    def page_url(number: int) -> str:
        return "?" + urlencode([*kept, ("client_q", query), ("client_page", str(number))])

    return {
        "chosen": chosen,
        "query": query,
        "kept": kept,
        "page": page,
        "results": results,
        "previous_url": page_url(page.previous_page_number()) if page and page.has_previous() else "",
        "next_url": page_url(page.next_page_number()) if page and page.has_next() else "",
        "change_url": "?" + urlencode(kept),
    }


def portal_client(user: Any) -> Client:
    client = access.client_of(user)
    if client is None:
        raise PermissionDenied("These pages are for clients.")
    return client


__all__ = [
    "client_appointment",
    "client_gate_text",
    "client_picker",
    "client_services",
    "portal_client",
    "render_local",
    "replace_gate_error",
    "safe_json",
    "staff_appointment",
    "staff_gate_text",
    "treatment_gate",
]
