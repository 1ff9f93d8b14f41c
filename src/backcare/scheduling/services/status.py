"""An appointment through the day: booked, arrived, in treatment, completed; or a no-show.

Each change is one transaction: the appointment's row is locked (``SELECT ... FOR UPDATE``; on SQLite the
IMMEDIATE transaction holds the write lock), the move is checked against `TRANSITIONS` and against who is asking,
the row is written, the audit event recorded with the client, and `appointment_status_changed` sent, all inside it:
a receiver that raises (billing, above scheduling) rolls the change back. Cancelling (early or late) stays with
`booking.cancel_appointment`, and the waitlist's offers with `waitlist`; they send the same signal (`announce`).

Who may move an appointment (the permission matrix holds the pages to this):
- arrived and no-show: the front desk, the owner, and the appointment's own therapist;
- in treatment and completed: the appointment's therapist or the owner, and only if they may open the client's
  clinical record (they write the session note). The front desk never does.

When: arrived and in treatment from the start of the appointment's day (in the clinic's zone); no-show and completed
once the appointment has begun. Every status keeps the time it had or frees it (see `LIVE_STATUSES`), so no change
here needs the booking guard of `backcare.scheduling.locking`.

The session note: `start_note` moves the appointment to in treatment when the therapist opens the note from it (the
hard stops of `treatment_gate` still refuse), and `link_session`, called as the clinic records a session
(`backcare.clinic.signals.session_recorded`), links the note to the appointment and completes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.models import Course, Role, StaffMember, TreatmentSession
from backcare.clinic.services.screening import treatment_gate
from backcare.common.rowlock import locked
from backcare.scheduling.models import Appointment, as_dict
from backcare.scheduling.services.availability import clinic_zone, day_bounds
from backcare.scheduling.signals import appointment_status_changed

S = Appointment.Status
# What each status may become through this service (cancelling is `booking.cancel_appointment`'s).
TRANSITIONS: dict[str, frozenset[str]] = {
    S.BOOKED: frozenset({S.ARRIVED, S.IN_TREATMENT, S.NO_SHOW}),
    S.ARRIVED: frozenset({S.IN_TREATMENT, S.COMPLETED}),
    S.IN_TREATMENT: frozenset({S.COMPLETED}),
}
DESK_MOVES = frozenset({S.ARRIVED, S.NO_SHOW})
CLINICAL_MOVES = frozenset({S.IN_TREATMENT, S.COMPLETED})
BUTTONS: dict[str, str] = {
    S.ARRIVED: "Arrived",
    S.NO_SHOW: "Did not come",
    S.IN_TREATMENT: "Start the session note",
    S.COMPLETED: "Completed",
}
# How far back a completed visit without a note still takes the note recorded for its client.
NOTE_LATE_DAYS = 7


def announce(appointment: Appointment, old: str, by: Any) -> None:
    """Send `appointment_status_changed` for a change just saved, inside its transaction."""
    if old == appointment.status:
        return
    user = by if getattr(by, "is_authenticated", False) else None
    appointment_status_changed.send(
        sender=Appointment, appointment=appointment, old=old, new=appointment.status, by=user
    )


def _day_started(appointment: Appointment, now: datetime) -> bool:
    zone = clinic_zone(appointment.clinic)
    return appointment.starts_at.astimezone(zone).date() <= now.astimezone(zone).date()


def refusal(appointment: Appointment, new: str, *, staff: StaffMember | None, clinical: bool, now: datetime) -> str:
    """Why this member of staff may not move the appointment to `new` now ("" when they may). `clinical`: whether
    they may open the client's clinical record."""
    if staff is None or staff.clinic_id != appointment.clinic_id:
        return "Only the clinic's staff change an appointment's status."
    if new not in TRANSITIONS.get(appointment.status, frozenset()):
        return (
            f"An appointment that is {appointment.get_status_display().lower()} cannot become {S(new).label.lower()}."
        )
    own = staff.pk == appointment.therapist_id
    if new in DESK_MOVES and not (own or staff.role in (Role.OWNER, Role.FRONT_DESK)):
        return "Only the front desk, the owner or the appointment's therapist can do that."
    if new in CLINICAL_MOVES and not ((own or staff.role == Role.OWNER) and clinical):
        return "Only the appointment's therapist (or the owner) who can open the client's record can do that."
    if new in (S.ARRIVED, S.IN_TREATMENT) and not _day_started(appointment, now):
        when = appointment.starts_at.astimezone(clinic_zone(appointment.clinic))
        return f"This appointment is on {when:%a %d %b}: that can be recorded on the day."
    if new in (S.NO_SHOW, S.COMPLETED) and appointment.starts_at > now:
        return "This appointment has not begun yet."
    return ""


def moves_for(appointment: Appointment, *, staff: StaffMember | None, clinical: bool, now: datetime) -> list[str]:
    """The statuses this member of staff may move the appointment to now (the page's buttons)."""
    return [
        new
        for new in (S.ARRIVED, S.IN_TREATMENT, S.COMPLETED, S.NO_SHOW)
        if not refusal(appointment, new, staff=staff, clinical=clinical, now=now)
    ]


def _locked(appointment: Appointment) -> Appointment:
    return locked(Appointment.objects.select_related("clinic", "client", "therapist", "service")).get(pk=appointment.pk)


def _write(
    appointment: Appointment,
    new: str,
    *,
    by: Any,
    now: datetime,
    request: Any,
    session: TreatmentSession | None = None,
) -> Appointment:
    old = appointment.status
    appointment.status = new
    appointment.status_changed_at = now
    fields = ["status", "status_changed_at"]
    if session is not None:
        appointment.session = session
        fields.append("session")
    appointment.save(update_fields=fields)
    detail: dict[str, Any] = {**as_dict(appointment), "old": old, "new": new}
    if session is not None:
        detail["session"] = session.pk
    audit.record(by, "appointment_status", client=appointment.client, obj=appointment, detail=detail, request=request)
    announce(appointment, old, by)
    return appointment


@transaction.atomic
def change_status(appointment: Appointment, new: str, *, by: Any, request: Any = None) -> Appointment:
    """Move the appointment to `new` (arrived, in_treatment, completed or no_show), if `by` may, now."""
    if new not in BUTTONS:
        raise ValidationError({"status": "Choose arrived, in treatment, completed or did not come."})
    staff = access.staff_of(by)
    if staff is None:
        raise PermissionDenied("Only the clinic's staff change an appointment's status.")
    if staff.clinic_id != appointment.clinic_id:
        raise PermissionDenied("This clinic's appointments are not yours to change.")
    appointment = _locked(appointment)
    now = timezone.now()
    clinical = new in CLINICAL_MOVES and access.can_see_clinical(by, appointment.client)
    why = refusal(appointment, new, staff=staff, clinical=clinical, now=now)
    if why:
        allowed_kind = new in TRANSITIONS.get(appointment.status, frozenset())
        if allowed_kind and why.startswith("Only"):
            raise PermissionDenied(why)
        raise ValidationError({"status": why})
    return _write(appointment, new, by=by, now=now, request=request)


def course_for_note(appointment: Appointment) -> Course | None:
    """The course a note written for this appointment goes to: its own, or the client's course in progress."""
    if appointment.course_id is not None:
        course = Course.objects.filter(pk=appointment.course_id, status=Course.Status.ACTIVE).first()
        if course is not None:
            return course
    return (
        Course.objects.filter(client_id=appointment.client_id, status=Course.Status.ACTIVE)
        .order_by("-started_at", "-pk")
        .first()
    )


def start_note(appointment: Appointment, *, by: Any, request: Any = None) -> Course:
    """The therapist opens the session note from the appointment: the course it goes to is returned, and a booked
    or arrived appointment moves to in treatment. Refused (ValidationError) while a hard stop holds: no course in
    progress, or the screening, clearance or consent stopping treatment (`treatment_gate`)."""
    with transaction.atomic():
        appointment = _locked(appointment)
        staff = access.staff_of(by)
        if staff is None or not access.can_see_clinical(by, appointment.client):
            raise PermissionDenied("Only a therapist who can open the client's record writes the session note.")
        if appointment.session_id is not None:
            raise ValidationError("This appointment has its session note already.")
        course = course_for_note(appointment)
        if course is None:
            raise ValidationError(
                f"{appointment.client.full_name} has no course in progress: start one from the client's record "
                "before writing a session note."
            )
        gate = treatment_gate(appointment.client)
        if not gate.allowed:
            raise ValidationError(gate.reason)
        if appointment.status in (S.BOOKED, S.ARRIVED):
            now = timezone.now()
            why = refusal(appointment, S.IN_TREATMENT, staff=staff, clinical=True, now=now)
            if why:
                raise ValidationError(why)
            _write(appointment, S.IN_TREATMENT, by=by, now=now, request=request)
        elif appointment.status not in (S.IN_TREATMENT, S.COMPLETED):
            raise ValidationError(
                f"This appointment is {appointment.get_status_display().lower()}: there is no session to write."
            )
    return course


def appointment_for_note(session: TreatmentSession, now: datetime) -> Appointment | None:
    """The appointment a just-recorded note belongs to: the client's appointment in treatment (the note was started
    from it), else one that arrived today, else a recent completed one that has no note yet. Locked."""
    course = session.course
    base = locked(
        Appointment.objects.select_related("clinic", "client", "service").filter(
            Q(course__isnull=True) | Q(course_id=course.pk), client_id=course.client_id, session__isnull=True
        )
    )
    found = base.filter(status=S.IN_TREATMENT).order_by("-starts_at", "-pk").first()
    if found is not None:
        return found
    today = now.astimezone(clinic_zone(course.client.clinic)).date()
    lo, hi = day_bounds(today, today, clinic_zone(course.client.clinic))
    found = base.filter(status=S.ARRIVED, starts_at__gte=lo, starts_at__lt=hi).order_by("-starts_at", "-pk").first()
    if found is not None:
        return found
    return (
        base.filter(status=S.COMPLETED, starts_at__lte=now, starts_at__gte=now - timedelta(days=NOTE_LATE_DAYS))
        .order_by("-starts_at", "-pk")
        .first()
    )


def link_session(session: TreatmentSession, *, by: Any, request: Any = None) -> Appointment | None:
    """Link the note to its appointment and complete the appointment (in the session's transaction)."""
    now = timezone.now()
    appointment = appointment_for_note(session, now)
    if appointment is None:
        return None
    if appointment.status == S.COMPLETED:
        appointment.session = session
        appointment.save(update_fields=["session"])
        audit.record(
            by,
            "appointment_note",
            client=appointment.client,
            obj=appointment,
            detail={"session": session.pk},
            request=request,
        )
        return appointment
    return _write(appointment, S.COMPLETED, by=by, now=now, request=request, session=session)


def on_session_recorded(
    sender: Any, session: TreatmentSession, staff: StaffMember, request: Any = None, **_: Any
) -> None:
    link_session(session, by=staff.user, request=request)


__all__ = [
    "BUTTONS",
    "TRANSITIONS",
    "announce",
    "change_status",
    "course_for_note",
    "link_session",
    "moves_for",
    "refusal",
    "start_note",
]
