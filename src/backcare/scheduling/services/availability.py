"""Free slots: from the therapists' weekly hours and absences, the rooms, and ONE fetch of the busy intervals.

A slot is a start time on the step grid of a working-hours block (09:00, 09:15, ... in the clinic's local time) where
the appointment itself fits inside the block and outside any absence, the therapist's and a room's busy interval
(the appointment plus the service's turnover) overlaps nothing live, and the client, when given, is free. The same
rules are what booking checks (`booking.py`), so a slot offered here is a slot booking accepts.

The number of queries does not grow with the range: the service's rooms, the therapists, their hours, their
absences, and the busy intervals are fetched once each.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q

SLOT_STEP_MINUTES = 15
MIN_COURSE_GAP_DAYS = 5


def clinic_zone(clinic: Clinic) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone)


def to_utc(wall: datetime, zone: ZoneInfo) -> datetime | None:
    """A local wall-clock time as UTC; None when the clocks skip it (spring forward). An ambiguous time (autumn)
    means its first occurrence."""
    aware = wall.replace(tzinfo=zone, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) != wall:
        return None
    return utc


def to_utc_lenient(wall: datetime, zone: ZoneInfo) -> datetime:
    """Like `to_utc`, but a skipped time is read with the offset before the change (for the ends of blocks)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_time(moment: datetime, clinic: Clinic) -> datetime:
    return moment.astimezone(clinic_zone(clinic))


def hhmm(moment: datetime, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%H:%M")


def day_bounds(first: date, last: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants from the start of `first` to the end of `last`, local dates in the zone."""
    return (
        to_utc_lenient(datetime.combine(first, time.min), zone),
        to_utc_lenient(datetime.combine(last + timedelta(days=1), time.min), zone),
    )


def block_window(day: date, block: WorkingHours, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return (
        to_utc_lenient(datetime.combine(day, block.starts), zone),
        to_utc_lenient(datetime.combine(day, block.ends), zone),
    )


def required_techniques(service: Service, course: Course | None = None, technique: str | None = None) -> set[str]:
    needed = set(service.techniques or [])
    if course is not None:
        needed.update(course.techniques or [])
    if technique:
        needed.add(technique)
    return needed


def missing_techniques(therapist: StaffMember, needed: Iterable[str]) -> list[str]:
    held = set(therapist.qualified_techniques or [])
    return sorted(t for t in needed if t not in held)


def technique_names(codes: Iterable[str]) -> str:
    return ", ".join(TECHNIQUES.get(c, c) for c in codes)


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    ends_at: datetime
    therapist: StaffMember = field(compare=False)
    room: Room = field(compare=False)
    service: Service = field(compare=False)

    @property
    def therapist_id(self) -> int:
        return int(self.therapist.pk)

    @property
    def room_id(self) -> int:
        return int(self.room.pk)

    def local(self, zone: ZoneInfo) -> datetime:
        return self.starts_at.astimezone(zone)

    def __repr__(self) -> str:
        return f"Slot({self.starts_at.isoformat()}, therapist={self.therapist_id}, room={self.room_id})"


@dataclass(frozen=True)
class Busy:
    """One live appointment as the availability computation sees it."""

    pk: int
    therapist_id: int
    room_id: int
    client_id: int
    starts_at: datetime
    ends_at: datetime
    busy_from: datetime
    busy_until: datetime


class Intervals:
    """Sorted half-open intervals with a fast overlap test."""

    def __init__(self, items: Iterable[tuple[datetime, datetime]]) -> None:
        self.items = sorted(items)
        self.starts = [s for s, _ in self.items]
        self.max_len = max((e - s for s, e in self.items), default=timedelta(0))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        # Only intervals starting before `end` and after `start - longest` can overlap.
        hi = bisect_left(self.starts, end)
        lo = bisect_left(self.starts, start - self.max_len)
        return any(e > start for _, e in self.items[lo:hi])


# No busy interval is longer than this: a service lasts at most 480 minutes with at most 120 minutes of turnover on
# each side (resources.create_service checks it). Bounding busy_from from below lets the (clinic, busy_from) index
# read only the window instead of all earlier history.
MAX_BUSY_SPAN = timedelta(hours=12)


def fetch_busy(clinic_id: int, lo: datetime, hi: datetime, *, now: datetime, exclude: int | None = None) -> list[Busy]:
    """THE one query for busy intervals: every live appointment of the clinic touching [lo, hi)."""
    qs = Appointment.objects.filter(
        live_q(now), clinic_id=clinic_id, busy_from__lt=hi, busy_from__gt=lo - MAX_BUSY_SPAN, busy_until__gt=lo
    ).order_by()
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    rows = qs.values_list(
        "pk", "therapist_id", "room_id", "client_id", "starts_at", "ends_at", "busy_from", "busy_until"
    )
    return [Busy(*row) for row in rows]


def therapists_for(clinic_id: int, needed: set[str], therapist: StaffMember | None = None) -> list[StaffMember]:
    qs = StaffMember.objects.filter(clinic_id=clinic_id, role=Role.THERAPIST, active=True)
    if therapist is not None:
        qs = qs.filter(pk=therapist.pk)
    return [t for t in qs if not missing_techniques(t, needed)]


def find_slots(
    service: Service,
    date_from: date,
    date_to: date,
    *,
    therapist: StaffMember | None = None,
    technique: str | None = None,
    client: Client | None = None,
    course: Course | None = None,
    exclude: Appointment | None = None,
    now: datetime | None = None,
    step_minutes: int = SLOT_STEP_MINUTES,
) -> list[Slot]:
    """Free slots for `service` on the local dates `date_from`..`date_to` (inclusive), earliest first.

    Optionally only with `therapist`, only therapists qualified for `technique` (and always for the service's and
    the course's techniques), only times the `client` is free; `exclude` ignores one appointment (the one being
    moved)."""
    now = now or timezone.now()
    clinic = Clinic.objects.get(pk=service.clinic_id)
    zone = clinic_zone(clinic)
    if date_to < date_from:
        return []
    lo, hi = day_bounds(date_from, date_to, zone)
    therapists = therapists_for(clinic.pk, required_techniques(service, course, technique), therapist)
    if not therapists:
        return []
    rooms = suitable_rooms_for(service)
    if not rooms:
        return []
    ids = [t.pk for t in therapists]
    hours: dict[int, dict[int, list[WorkingHours]]] = defaultdict(lambda: defaultdict(list))
    for block in WorkingHours.objects.filter(therapist_id__in=ids):
        hours[block.therapist_id][block.weekday].append(block)
    absences: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for a in Absence.objects.filter(therapist_id__in=ids, starts_at__lt=hi, ends_at__gt=lo):
        absences[a.therapist_id].append((a.starts_at, a.ends_at))
    margin = service.before + service.after + timedelta(days=1)
    busy = fetch_busy(clinic.pk, lo - margin, hi + margin, now=now, exclude=exclude.pk if exclude else None)
    by_therapist: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    by_room: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    mine: list[tuple[datetime, datetime]] = []
    for b in busy:
        by_therapist[b.therapist_id].append((b.busy_from, b.busy_until))
        by_room[b.room_id].append((b.busy_from, b.busy_until))
        if client is not None and b.client_id == client.pk:
            mine.append((b.starts_at, b.ends_at))
    room_busy = {r.pk: Intervals(by_room[r.pk]) for r in rooms}
    client_busy = Intervals(mine)
    step = timedelta(minutes=step_minutes)
    slots: list[Slot] = []
    for t in therapists:
        t_busy = Intervals(by_therapist[t.pk])
        t_away = Intervals(absences[t.pk])
        day = date_from
        while day <= date_to:
            for block in sorted(hours[t.pk][day.weekday()], key=lambda b: b.starts):
                _, window_end = block_window(day, block, zone)
                wall = datetime.combine(day, block.starts)
                last = datetime.combine(day, block.ends)
                while wall < last:
                    start = to_utc(wall, zone)
                    wall += step
                    if start is None or start <= now:
                        continue
                    end = start + service.duration
                    if end > window_end:
                        break
                    if t_away.overlaps(start, end) or client_busy.overlaps(start, end):
                        continue
                    busy_from, busy_until = start - service.before, end + service.after
                    if t_busy.overlaps(busy_from, busy_until):
                        continue
                    room = next((r for r in rooms if not room_busy[r.pk].overlaps(busy_from, busy_until)), None)
                    if room is None:
                        continue
                    slots.append(Slot(start, end, t, room, service))
            day += timedelta(days=1)
    slots.sort(key=lambda s: (s.starts_at, s.therapist.display_name, s.therapist_id))
    return slots


def suitable_rooms_for(service: Service) -> list[Room]:
    """The rooms a service can use: its own list, or every active room of the clinic when the list is empty."""
    own = list(service.rooms.filter(active=True)) if service.pk else []
    if own:
        return sorted(own, key=lambda r: (r.name, r.pk))
    return list(Room.objects.filter(clinic_id=service.clinic_id, active=True).order_by("name", "pk"))


def course_spacing(course: Course, sessions: int, min_gap_days: int) -> int:
    return max(min_gap_days, (course.weeks * 7) // max(sessions, 1))


def suggest_course(
    course: Course,
    service: Service,
    start: date,
    *,
    sessions: int | None = None,
    min_gap_days: int = MIN_COURSE_GAP_DAYS,
    now: datetime | None = None,
) -> list[Slot]:
    """Slots for the course's sessions, spread across its weeks and at least `min_gap_days` apart, with the
    course's therapist when possible (first: all sessions with them; else each session with them where they are
    free that day, otherwise another qualified therapist). Raises ValidationError when the sessions do not fit."""
    n = sessions if sessions is not None else course.sessions_planned
    last = start + timedelta(days=course.weeks * 7 - 1)
    spacing = course_spacing(course, n, min_gap_days)
    if (n - 1) * min_gap_days > (last - start).days:
        raise ValidationError(f"{n} sessions at least {min_gap_days} days apart do not fit in {course.weeks} weeks.")
    slots = find_slots(service, start, last, client=course.client, course=course, now=now)
    clinic = Clinic.objects.get(pk=service.clinic_id)
    zone = clinic_zone(clinic)
    preferred = course.therapist_id
    plan = _pick(slots, n, start, spacing, min_gap_days, zone, only=preferred) if preferred else None
    if plan is None:
        plan = _pick(slots, n, start, spacing, min_gap_days, zone, prefer=preferred)
    if plan is None:
        raise ValidationError(
            f"Not enough free times for {n} sessions at least {min_gap_days} days apart between "
            f"{start:%d %b} and {last:%d %b %Y}. Try a later start or fewer sessions."
        )
    return plan


def _pick(
    slots: Sequence[Slot],
    n: int,
    start: date,
    spacing: int,
    min_gap: int,
    zone: ZoneInfo,
    *,
    only: int | None = None,
    prefer: int | None = None,
) -> list[Slot] | None:
    by_day: dict[date, list[Slot]] = defaultdict(list)
    for s in slots:
        if only is None or s.therapist_id == only:
            by_day[s.local(zone).date()].append(s)
    days = sorted(by_day)
    chosen: list[Slot] = []
    previous: date | None = None
    for i in range(n):
        bound = start + timedelta(days=i * spacing)
        if previous is not None:
            bound = max(bound, previous + timedelta(days=min_gap))
        day = next((d for d in days if d >= bound), None)
        if day is None:
            return None
        options = by_day[day]
        pick = next((s for s in options if s.therapist_id == prefer), options[0]) if prefer else options[0]
        chosen.append(pick)
        previous = day
    return chosen


def slot_summary(slot: Slot, zone: ZoneInfo) -> dict[str, Any]:
    local = slot.local(zone)
    return {
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "therapist": slot.therapist.display_name,
        "room": slot.room.name,
    }
