"""The day's appointments, for the "Today" page: a therapist's own, or the whole clinic's for the front desk and the
owner, each with the status changes the reader may make and what it still needs.

What an appointment needs is clinical, so it is worked out only for clients whose record the reader may open (never
for the front desk): the intake to review, a physician's clearance still to record, the pre-session health update
(a course session without a fresh one), and the session note (the visit has ended and has no note). Everything is
read in a fixed number of queries however many appointments the day has (tests/clinic/test_today.py holds it so):
the appointments, the clinical clients among them, their latest screening and intake, those screenings, their
clearances, and which health updates a session has used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db.models import OuterRef, Q, Subquery
from django.urls import reverse

from backcare.clinic import access
from backcare.clinic.models import Clearance, Client, Intake, Role, Screening, StaffMember, TreatmentSession
from backcare.clinic.services import clearances as clearance_scope
from backcare.clinic.services.sessions import HEALTH_UPDATE_VALID, NOTE_DUE
from backcare.scheduling.models import CANCELLED_STATUSES, Appointment, live_q
from backcare.scheduling.services import status as status_service
from backcare.scheduling.services.availability import clinic_zone, day_bounds

S = Appointment.Status
OPEN_VISIT = (S.BOOKED, S.ARRIVED, S.IN_TREATMENT)


@dataclass
class Need:
    kind: str  # intake | clearance | health_update | note
    text: str
    url: str


@dataclass
class DayRow:
    appointment: Appointment
    starts: datetime
    ends: datetime
    clinical: bool
    moves: list[tuple[str, str]] = field(default_factory=list)  # (status, button label)
    needs: list[Need] = field(default_factory=list)


def _latest(model: Any, order: tuple[str, ...], value: str) -> Subquery:
    return Subquery(model.objects.filter(client=OuterRef("pk")).order_by(*order).values(value)[:1])


def _needs(rows: list[DayRow], now: datetime) -> None:
    clients = {r.appointment.client_id for r in rows if r.clinical}
    if not clients:
        return
    latest = {
        c["pk"]: c
        for c in Client.objects.filter(pk__in=clients)
        .annotate(
            screening_id=_latest(Screening, ("-created_at", "-id"), "id"),
            intake_status=_latest(Intake, ("-started_at", "-id"), "status"),
        )
        .values("pk", "screening_id", "intake_status")
    }
    screenings = {
        s.client_id: s
        for s in Screening.objects.filter(pk__in=[c["screening_id"] for c in latest.values() if c["screening_id"]])
    }
    clearances: dict[int, list[Clearance]] = {}
    waiting = [cid for cid, s in screenings.items() if s.needs_clearance]
    if waiting:
        for clearance in Clearance.objects.filter(client_id__in=waiting).select_related("screening"):
            clearances.setdefault(clearance.client_id, []).append(clearance)
    fresh = [
        s.pk
        for s in screenings.values()
        if s.kind == Screening.Kind.PRE_SESSION and now - s.created_at <= HEALTH_UPDATE_VALID
    ]
    used = set(
        TreatmentSession.objects.filter(health_update_id__in=fresh).values_list("health_update_id", flat=True)
        if fresh
        else []
    )
    for row in rows:
        if not row.clinical:
            continue
        a = row.appointment
        state: Mapping[str, object] = latest.get(a.client_id, {})
        screening = screenings.get(a.client_id)
        record = reverse("client_detail", args=[a.client_id])
        if state.get("intake_status") == Intake.Status.SUBMITTED:
            row.needs.append(Need("intake", "Intake to review", reverse("intake_review", args=[a.client_id])))
        if (
            screening is not None
            and screening.needs_clearance
            and clearance_scope.pending(screening, clearances.get(a.client_id, [])).rules
        ):
            url = reverse("clearance_create", args=[a.client_id, screening.pk])
            row.needs.append(Need("clearance", "Clearance needed", url))
        if a.service.assessment or a.session_id is not None or a.status in (*CANCELLED_STATUSES, S.NO_SHOW, S.HELD):
            continue
        has_fresh = screening is not None and screening.pk in fresh and screening.pk not in used
        if a.status in OPEN_VISIT and not has_fresh:
            row.needs.append(Need("health_update", "Health update due", record))
        if a.ends_at <= now:
            row.needs.append(Need("note", NOTE_DUE, reverse("appointment_detail", args=[a.pk])))


def day_rows(user: Any, staff: StaffMember, day: date, now: datetime) -> list[DayRow]:
    """The day's appointments the reader sees, in time order, with their buttons and needs."""
    zone = clinic_zone(staff.clinic)
    lo, hi = day_bounds(day, day, zone)
    shown = live_q(now) | Q(status__in=(*CANCELLED_STATUSES, S.NO_SHOW))
    qs = Appointment.objects.filter(shown, clinic=staff.clinic, starts_at__gte=lo, starts_at__lt=hi)
    if staff.role == Role.THERAPIST:
        qs = qs.filter(therapist=staff)
    appointments = list(
        qs.select_related("clinic", "client", "therapist", "room", "service").order_by("starts_at", "pk")
    )
    clinical = access.clinical_ids_among(user, [a.client for a in appointments])
    rows = []
    for a in appointments:
        row = DayRow(a, a.starts_at.astimezone(zone), a.ends_at.astimezone(zone), a.client_id in clinical)
        row.moves = [
            (new, status_service.BUTTONS[new])
            for new in status_service.moves_for(a, staff=staff, clinical=row.clinical, now=now)
        ]
        rows.append(row)
    _needs(rows, now)
    return rows
