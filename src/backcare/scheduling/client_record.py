"""The client's appointments on their page (`client_detail`), for every member of staff who opens it: the next ones
and the past ones with their statuses, and the buttons that book for the client (one appointment prefilled with the
client, the sessions of their active course, the waitlist). Appointments are contact data: nothing clinical is shown,
and the reason a booking is stopped is worded for the reader (`gates.staff_gate_text`).

A receiver of `backcare.clinic.selectors.client_record.client_record_sections`, connected in `SchedulingConfig.ready`.
Bounded: at most SHOWN appointments each way, in a fixed number of queries.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone

from backcare.clinic.models import Client, Course
from backcare.scheduling.gates import staff_gate_text, treatment_gate
from backcare.scheduling.models import VISIT_STATUSES, Appointment
from backcare.scheduling.services.availability import clinic_zone

SHOWN = 10
UPCOMING_STATUSES = (*VISIT_STATUSES, Appointment.Status.HELD)
PAST_STATUSES = (
    *VISIT_STATUSES,
    Appointment.Status.NO_SHOW,
    Appointment.Status.CANCELLED,
    Appointment.Status.LATE_CANCELLED,
)


def _rows(appointments: Any, zone: Any) -> list[dict[str, Any]]:
    return [{"appointment": a, "local": a.starts_at.astimezone(zone)} for a in appointments]


def client_appointments(client: Client, user: Any) -> dict[str, Any]:
    """The appointments section of the client's page, as a template and its context."""
    zone = clinic_zone(client.clinic)
    now = timezone.now()
    base = Appointment.objects.filter(client=client).select_related("therapist", "room", "service")
    upcoming = list(
        base.filter(starts_at__gte=now, status__in=UPCOMING_STATUSES).order_by("starts_at", "pk")[: SHOWN + 1]
    )
    past = list(base.filter(starts_at__lt=now, status__in=PAST_STATUSES).order_by("-starts_at", "-pk")[: SHOWN + 1])
    course = client.courses.filter(status=Course.Status.ACTIVE).order_by("-started_at").first()
    gate = treatment_gate(client)
    return {
        "template": "scheduling/includes/client_appointments.html",
        "upcoming": _rows(upcoming[:SHOWN], zone),
        "more_upcoming": len(upcoming) > SHOWN,
        "past": _rows(past[:SHOWN], zone),
        "more_past": len(past) > SHOWN,
        "book_url": reverse("appointment_book") + "?" + urlencode({"client": client.pk}),
        "find_url": reverse("slot_search") + "?" + urlencode({"client": client.pk}),
        "waitlist_url": reverse("staff_waitlist_add") + "?" + urlencode({"client": client.pk}),
        "course_url": reverse("course_booking", args=[course.pk]) if course is not None else "",
        "calendar_url": reverse("calendar"),
        "gate_text": staff_gate_text(user, client, gate),
    }


def client_section(sender: Any, client: Client, user: Any, **kwargs: Any) -> dict[str, Any]:
    """The receiver: the client's appointments under the key "appointments"."""
    return {"appointments": client_appointments(client, user)}


__all__ = ["client_appointments", "client_section"]
