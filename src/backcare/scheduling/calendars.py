"""Calendars: iCalendar (RFC 5545) events for appointments, the per-therapist and per-client feeds, and the secret
tokens that open the feeds.

What an event says about an appointment depends on who reads it, and never includes clinical data:
- the client (their feed, and the .ics attached to their confirmations): the service's name and the clinic's name,
  the therapist's name, the clinic's address;
- the therapist (their feed): the client's name only, and the room.

Each appointment has one UID for its whole life, and a SEQUENCE that counts its changes (moves, cancellation,
accepted or expired offers), read from the audit trail, so calendar programs replace the earlier version.

A feed's address is `/calendar/<token>.ics`. The token is 256 random bits; only its SHA-256 is stored. Making a new
token revokes the old one; every creation and revocation is audited (never the token itself).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.models import AuditEvent, Client, Clinic, Role, StaffMember
from backcare.common.rowlock import locked
from backcare.scheduling.models import Appointment, CalendarToken, live_q
from backcare.scheduling.services.availability import clinic_zone

if TYPE_CHECKING:  # icalendar is imported where an event is written, not when the server starts (issue 14)
    from icalendar import Calendar, Event

PRODID = "-//Backcare//Clinic appointments//EN"
FEED_PAST_DAYS = 30
# Audit actions that change an appointment after it was made: each one raises its calendar SEQUENCE by one.
CHANGE_ACTIONS = ("reschedule_appointment", "cancel_appointment", "accept_hold", "decline_hold", "expire_hold")

CLIENT = "client"
THERAPIST = "therapist"


# --- identity and versions of an appointment -------------------------------------------------------------------------


def appointment_uid(appointment: Appointment) -> str:
    """Stable for the appointment's whole life and independent of settings: its id, its clinic, and the moment it was
    made (so two installations do not collide in one person's calendar)."""
    made = appointment.created_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"appointment-{appointment.pk}-{made}@clinic-{appointment.clinic_id}.backcare"


def sequences(appointments: Iterable[Appointment]) -> dict[int, int]:
    """The calendar SEQUENCE of each appointment: how many times it was changed after it was made (one query)."""
    rows = list(appointments)
    if not rows:
        return {}
    counts = (
        AuditEvent.objects.filter(
            client_id__in={a.client_id for a in rows},
            object_type=Appointment._meta.model_name,
            object_id__in=[str(a.pk) for a in rows],
            action__in=CHANGE_ACTIONS,
        )
        .values("object_id")
        .annotate(n=Count("id"))
    )
    found = {int(row["object_id"]): int(row["n"]) for row in counts}
    return {a.pk: found.get(a.pk, 0) for a in rows}


def sequence_of(appointment: Appointment) -> int:
    return sequences([appointment])[appointment.pk]


# --- events ----------------------------------------------------------------------------------------------------------


def clinic_location(clinic: Clinic) -> str:
    address = " ".join(line.strip() for line in clinic.address.splitlines() if line.strip())
    return f"{clinic.name}, {address}" if address else clinic.name


def client_summary(appointment: Appointment) -> str:
    return f"{appointment.service.name} at {appointment.clinic.name}"


def appointment_event(
    appointment: Appointment,
    *,
    audience: str,
    sequence: int,
    local_times: bool,
    now: datetime | None = None,
    cancelled: bool = False,
    attendee: str = "",
) -> Event:
    """One VEVENT for this reader. `local_times` writes DTSTART/DTEND in the clinic's zone (the calendar then needs
    the VTIMEZONE), otherwise in UTC. `attendee` (an email) adds ORGANIZER and ATTENDEE, as invitations need."""
    from icalendar import Event, vCalAddress

    now = now or timezone.now()
    clinic = appointment.clinic
    zone = clinic_zone(clinic) if local_times else UTC
    event = Event()
    event.add("uid", appointment_uid(appointment))
    event.add("dtstamp", now.astimezone(UTC))
    event.add("created", appointment.created_at.astimezone(UTC))
    event.add("sequence", sequence)
    event.add("dtstart", appointment.starts_at.astimezone(zone))
    event.add("dtend", appointment.ends_at.astimezone(zone))
    if audience == THERAPIST:
        event.add("summary", appointment.client.full_name)
        event.add("location", appointment.room.name)
    else:
        event.add("summary", client_summary(appointment))
        event.add("location", clinic_location(clinic))
        lines = [f"With {appointment.therapist.display_name}."]
        if clinic.phone:
            lines.append(f"To cancel or move it, phone {clinic.phone}.")
        event.add("description", " ".join(lines))
    if cancelled or appointment.status in (
        Appointment.Status.CANCELLED,
        Appointment.Status.LATE_CANCELLED,
        Appointment.Status.NO_SHOW,
        Appointment.Status.EXPIRED,
        Appointment.Status.DECLINED,
    ):
        event.add("status", "CANCELLED")
    elif appointment.status == Appointment.Status.HELD:
        event.add("status", "TENTATIVE")
    else:
        event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    if attendee:
        organizer_email = clinic.email or parseaddr(str(settings.DEFAULT_FROM_EMAIL))[1]
        organizer = vCalAddress(f"mailto:{organizer_email}")
        organizer.params["cn"] = clinic.name
        event.add("organizer", organizer)
        guest = vCalAddress(f"mailto:{attendee}")
        guest.params["cn"] = appointment.client.full_name
        guest.params["role"] = "REQ-PARTICIPANT"
        guest.params["partstat"] = "NEEDS-ACTION" if not cancelled else "DECLINED"
        event.add("attendee", guest)
    return event


def new_calendar(name: str = "") -> Calendar:
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if name:
        calendar.add("x-wr-calname", name)
    return calendar


def invitation_ics(appointment: Appointment, *, method: str, sequence: int, attendee: str) -> bytes:
    """The .ics attached to a confirmation: METHOD:REQUEST for a booking or a change, METHOD:CANCEL for a
    cancellation. Times are in UTC, which every calendar program reads the same way."""
    if method not in ("REQUEST", "CANCEL"):
        raise ValueError(f"unknown iTIP method {method!r}")
    calendar = new_calendar()
    calendar.add("method", method)
    calendar.add_component(
        appointment_event(
            appointment,
            audience=CLIENT,
            sequence=sequence,
            local_times=False,
            cancelled=method == "CANCEL",
            attendee=attendee,
        )
    )
    return bytes(calendar.to_ical())


# --- feeds -----------------------------------------------------------------------------------------------------------


def feed_appointments(token: CalendarToken, now: datetime | None = None) -> list[Appointment]:
    """Live appointments of the token's therapist or client, from 30 days ago on."""
    now = now or timezone.now()
    since = now - timedelta(days=FEED_PAST_DAYS)
    qs = Appointment.objects.filter(live_q(now), clinic_id=token.clinic_id, ends_at__gte=since)
    # a token has exactly one owner (the check constraint scheduling_caltoken_one_owner)
    client_id = cast(int, token.client_id)
    qs = qs.filter(therapist_id=token.therapist_id) if token.therapist_id else qs.filter(client_id=client_id)
    return list(qs.select_related("clinic", "client", "therapist", "room", "service").order_by("starts_at", "pk"))


def feed_name(token: CalendarToken) -> str:
    clinic = token.clinic
    if token.therapist is not None:
        return f"{clinic.name}: {token.therapist.display_name}"
    return f"{clinic.name} appointments"


def build_feed(token: CalendarToken, now: datetime | None = None) -> bytes:
    """The whole feed, in the clinic's time zone with its VTIMEZONE (limited to the years the events need)."""
    now = now or timezone.now()
    calendar = new_calendar(feed_name(token))
    zone_name = token.clinic.time_zone
    calendar.add("x-wr-timezone", zone_name)
    appointments = feed_appointments(token, now)
    numbers = sequences(appointments)
    audience = THERAPIST if token.therapist_id else CLIENT
    for appointment in appointments:
        calendar.add_component(
            appointment_event(
                appointment, audience=audience, sequence=numbers[appointment.pk], local_times=True, now=now
            )
        )
    if appointments:
        first = min(a.starts_at for a in appointments).astimezone(UTC).date()
        last = max(a.ends_at for a in appointments).astimezone(UTC).date()
        calendar.add_missing_timezones(first_date=date(first.year - 1, 1, 1), last_date=date(last.year + 2, 1, 1))
    return bytes(calendar.to_ical())


# --- tokens ----------------------------------------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def feed_path(token: str) -> str:
    return reverse("calendar_feed", args=[token])


def feed_url(token: str, request: Any = None) -> str:
    path = feed_path(token)
    return request.build_absolute_uri(path) if request is not None else path


def find_token(token: str) -> CalendarToken | None:
    """The live token row for a token from an address, or None (unknown, revoked, or malformed)."""
    if not token or len(token) > 200:
        return None
    return (
        CalendarToken.objects.select_related("clinic", "therapist", "client")
        .filter(token_hash=token_hash(token), revoked_at__isnull=True)
        .first()
    )


def _check_may_manage(by: Any, *, therapist: StaffMember | None, client: Client | None) -> Any:
    """Therapists: the therapist themselves or the owner. Clients: the client themselves, or the clinic's staff
    (who may see appointments) to give the address to the client."""
    if (therapist is None) == (client is None):
        raise ValueError("give exactly one of therapist and client")
    staff = access.staff_of(by)
    if therapist is not None:
        if therapist.role != Role.THERAPIST:
            raise ValidationError({"therapist": "Calendar feeds are kept for therapists and clients."})
        if staff is None or staff.clinic_id != therapist.clinic_id:
            raise PermissionDenied("Not your clinic.")
        if staff.pk != therapist.pk and staff.role != Role.OWNER:
            raise PermissionDenied("Only the therapist or the clinic owner can manage this calendar address.")
        return staff
    assert client is not None
    if staff is not None:
        if staff.clinic_id != client.clinic_id:
            raise PermissionDenied("Not your clinic.")
        return staff
    own = access.client_of(by)
    if own is None or own.pk != client.pk:
        raise PermissionDenied("Only the client or the clinic's staff can manage this calendar address.")
    return own


def _revoke_live(*, therapist: StaffMember | None, client: Client | None, now: datetime) -> list[int]:
    live = locked(CalendarToken.objects.filter(revoked_at__isnull=True))
    live = live.filter(therapist=therapist) if therapist is not None else live.filter(client=client)
    ids = list(live.values_list("pk", flat=True))
    if ids:
        CalendarToken.objects.filter(pk__in=ids).update(revoked_at=now)
    return ids


@transaction.atomic
def create_token(
    *, by: Any, therapist: StaffMember | None = None, client: Client | None = None, request: Any = None
) -> tuple[CalendarToken, str]:
    """A new secret feed address for this therapist or client; any earlier one stops working at once.

    Returns the row and the token (shown once; only its hash is kept)."""
    _check_may_manage(by, therapist=therapist, client=client)
    now = timezone.now()
    revoked = _revoke_live(therapist=therapist, client=client, now=now)
    token = secrets.token_urlsafe(32)
    # _check_may_manage above refused a call with neither a therapist nor a client
    owner_clinic = therapist.clinic_id if therapist is not None else client.clinic_id  # type: ignore[union-attr]
    row = CalendarToken.objects.create(
        clinic_id=owner_clinic,
        therapist=therapist,
        client=client,
        token_hash=token_hash(token),
        created_at=now,
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    audit.record(
        by,
        "rotate_calendar_token" if revoked else "create_calendar_token",
        client=client,
        obj=row,
        detail={"feed": row.audience, "therapist": therapist.pk if therapist else None, "revoked": revoked},
        request=request,
    )
    return row, token


def rotate_token(
    *, by: Any, therapist: StaffMember | None = None, client: Client | None = None, request: Any = None
) -> tuple[CalendarToken, str]:
    """Regenerate the address: the same as `create_token`, which always revokes the old one."""
    return create_token(by=by, therapist=therapist, client=client, request=request)


@transaction.atomic
def revoke_token(
    *, by: Any, therapist: StaffMember | None = None, client: Client | None = None, request: Any = None
) -> int:
    """Stop the feed address working without making a new one. Returns how many tokens were revoked."""
    _check_may_manage(by, therapist=therapist, client=client)
    revoked = _revoke_live(therapist=therapist, client=client, now=timezone.now())
    if revoked:
        audit.record(
            by,
            "revoke_calendar_token",
            client=client,
            obj=CalendarToken.objects.get(pk=revoked[0]),
            detail={"feed": THERAPIST if therapist else CLIENT, "therapist": therapist.pk if therapist else None},
            request=request,
        )
    return len(revoked)


def live_token(*, therapist: StaffMember | None = None, client: Client | None = None) -> CalendarToken | None:
    qs = CalendarToken.objects.filter(revoked_at__isnull=True)
    qs = qs.filter(therapist=therapist) if therapist is not None else qs.filter(client=client)
    return qs.first()


__all__ = [
    "CHANGE_ACTIONS",
    "appointment_event",
    "appointment_uid",
    "build_feed",
    "create_token",
    "feed_url",
    "find_token",
    "invitation_ics",
    "live_token",
    "revoke_token",
    "rotate_token",
    "sequence_of",
    "sequences",
]
