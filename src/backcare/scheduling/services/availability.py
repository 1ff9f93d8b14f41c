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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BigIntegerField, Exists, Func, OuterRef, Q
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q
from backcare.scheduling.services.holidays import closed_days

SLOT_STEP_MINUTES = 15
MIN_COURSE_GAP_DAYS = 5


def clinic_zone(clinic: Clinic) -> ZoneInfo:
    """`Clinic.zone` (kept for the scheduling code that passes it around)."""
    return clinic.zone


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


class Epoch(Func):
    """A datetime column as whole seconds since 1970-01-01 UTC, computed by the database: rounded down for the start
    of an interval, up (`end=True`) for its end, so an interval never shrinks and, against the whole-second times a
    search tries, overlaps exactly when the stored one does. The search reads hundreds of busy intervals and only
    compares them, so it takes them as integers rather than have each parsed into a timezone-aware datetime (at a
    million appointments that conversion was a quarter of the search's time)."""

    output_field = BigIntegerField()

    def __init__(self, expression: Any, *, end: bool = False) -> None:
        super().__init__(expression)
        self.end = end

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # EXTRACT(EPOCH ...) is an exact numeric.
        template = f"CAST({'CEIL' if self.end else 'FLOOR'}(EXTRACT(EPOCH FROM %(expressions)s)) AS BIGINT)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores an aware datetime on SQLite as UTC text, "YYYY-MM-DD HH:MM:SS" with ".ffffff" only when there
        # are microseconds. julianday() of whole seconds (day 2440587.5 is 1970-01-01) is a double within about
        # 0.05 ms of the truth, so rounding gives the seconds exactly. With microseconds: the whole seconds, plus one
        # for an end. (Cutting the text only when there are microseconds keeps the usual case cheap.)
        x, params = compiler.compile(self.get_source_expressions()[0])

        def seconds(text: str) -> str:
            return f"CAST(ROUND((julianday({text}) - 2440587.5) * 86400) AS INTEGER)"

        sql = (
            f"CASE WHEN length({x}) > 19 THEN {seconds(f'substr({x}, 1, 19)')}{' + 1' if self.end else ''}"
            f" ELSE {seconds(x)} END"
        )
        return sql, [*params, *params, *params]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch(moment: datetime, *, end: bool = False) -> int:
    """An aware datetime in the units of `Epoch` (exactly: rounded down, or up for an `end`)."""
    delta = moment - _EPOCH
    seconds = delta.days * 86400 + delta.seconds
    return seconds + 1 if end and delta.microseconds else seconds


@dataclass(frozen=True)
class Busy:
    """One live appointment as the availability computation sees it (times in `Epoch` seconds)."""

    pk: int
    therapist_id: int
    room_id: int
    client_id: int
    starts_at: int
    ends_at: int
    busy_from: int
    busy_until: int


class Intervals:
    """Sorted half-open intervals in epoch seconds, with a fast overlap test for a datetime range."""

    def __init__(self, items: Iterable[tuple[int, int]]) -> None:
        self.items = sorted(items)
        self.starts = [s for s, _ in self.items]
        self.max_len = max((e - s for s, e in self.items), default=0)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if not self.items:
            return False
        s, e = start.timestamp(), end.timestamp()
        # Only intervals starting before `end` and after `start - longest` can overlap.
        hi = bisect_left(self.starts, e)
        lo = bisect_left(self.starts, s - self.max_len)
        return any(until > s for _, until in self.items[lo:hi])


# No busy interval is longer than this: a service lasts at most 480 minutes with at most 120 minutes of turnover on
# each side (resources.create_service checks it). Bounding busy_from from below lets the (clinic, busy_from) index
# read only the window instead of all earlier history.
MAX_BUSY_SPAN = timedelta(hours=12)
MAX_SPAN_SECONDS = int(MAX_BUSY_SPAN.total_seconds())
# What the searches select: `Busy`'s columns, and a room's busy time. BUSY_AT and ROOM_AT say where busy_from and
# busy_until are in each.
BUSY_FIELDS = (
    "pk", "therapist_id", "room_id", "client_id",
    Epoch("starts_at"), Epoch("ends_at", end=True), Epoch("busy_from"), Epoch("busy_until", end=True),
)  # fmt: skip
BUSY_AT = (6, 7)
ROOM_FIELDS = ("room_id", Epoch("busy_from"), Epoch("busy_until", end=True))
ROOM_AT = (1, 2)


def fetch_busy(clinic_id: int, lo: datetime, hi: datetime, *, now: datetime, exclude: int | None = None) -> list[Busy]:
    """THE one query for busy intervals: every live appointment of the clinic touching [lo, hi)."""
    qs = Appointment.objects.filter(
        live_q(now), clinic_id=clinic_id, busy_from__lt=hi, busy_from__gt=lo - MAX_BUSY_SPAN, busy_until__gt=lo
    ).order_by()
    if exclude is not None:
        qs = qs.exclude(pk=exclude)
    rows = qs.values_list(*BUSY_FIELDS)
    return [Busy(*row) for row in rows]


class BusyQuery:
    """The busy-interval query for one filter (`who`: a therapist, a client, or a clinic and maybe some of its rooms)
    and one set of columns, compiled by Django once and then run for any windows: the live appointments that touch
    each window, one UNION ALL part per window, so each part seeks its own index range (an OR of ranges would make
    SQLite read all the clinic's rows). The partial indexes cover every column it reads (see the model).

    Building and compiling a Django query costs about 0.5 ms a part on the benchmark machine, more than the database
    takes to answer it, and a course search runs the same few shapes again and again. So the SQL comes from the ORM
    (the same `live_q`, the same lookups), with four marker datetimes where the values go; `run` puts the real ones in
    their places. `busy_query` keeps the compiled shapes; tests check the answers against the plain ORM query."""

    MARKS = tuple(datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=i) for i in range(4))  # now, hi, lo - span, lo

    def __init__(self, alias: str, who: Q, fields: tuple[Any, ...]) -> None:
        now, hi, floor, lo = self.MARKS
        qs = (
            Appointment.objects.using(alias)
            .filter(live_q(now), who, busy_from__lt=hi, busy_from__gt=floor, busy_until__gt=lo)
            .order_by()
            .values_list(*fields)
        )
        self.alias = alias
        self.sql, params = qs.query.get_compiler(using=alias).as_sql()
        adapt = connections[alias].ops.adapt_datetimefield_value
        marks: dict[object, int] = {adapt(m): i for i, m in enumerate(self.MARKS)}
        # Each parameter: the index of the mark it stands for, or None for a fixed value (an id, a status).
        self.slots = [marks.get(v) if isinstance(v, (str, datetime)) else None for v in params]
        self.fixed = list(params)
        if sorted(i for i in self.slots if i is not None) != [0, 1, 2, 3]:
            raise RuntimeError(f"the busy query's parameters were not where expected: {params!r}")

    def params(self, now: datetime, lo: datetime, hi: datetime) -> list[Any]:
        adapt = connections[self.alias].ops.adapt_datetimefield_value
        values = [adapt(now), adapt(hi), adapt(lo - MAX_BUSY_SPAN), adapt(lo)]
        return [v if i is None else values[i] for v, i in zip(self.fixed, self.slots, strict=True)]

    @staticmethod
    def run(parts: Sequence[tuple[BusyQuery, datetime, datetime]], now: datetime) -> list[tuple[Any, ...]]:
        """One query: each part's rows for its window [lo, hi), as tuples of its columns."""
        if not parts:
            return []
        alias = parts[0][0].alias
        sql = " UNION ALL ".join(query.sql for query, _, _ in parts)
        params = [p for query, lo, hi in parts for p in query.params(now, lo, hi)]
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]


@lru_cache(maxsize=256)
def busy_query(who: Q, fields: tuple[Any, ...], using: str = DEFAULT_DB_ALIAS) -> BusyQuery:
    """The compiled busy query for this filter and these columns (at most 256 are kept). Filter on the therapist
    or the client alone (each has its own index), or on the clinic (`Q(clinic_id=...)`, with rooms if wanted)."""
    return BusyQuery(using, who, fields)


def therapists_for(clinic_id: int, needed: set[str], therapist: StaffMember | int | None = None) -> list[StaffMember]:
    """The clinic's active therapists qualified for every technique `needed` (only `therapist`, when given)."""
    qs = StaffMember.objects.filter(clinic_id=clinic_id, role=Role.THERAPIST, active=True)
    if therapist is not None:
        qs = qs.filter(pk=therapist if isinstance(therapist, int) else therapist.pk)
    return [t for t in qs if not missing_techniques(t, needed)]


def suitable_rooms_for(service: Service) -> list[Room]:
    """The active rooms a service can use: those on its own list, or every room of the clinic when its list is
    empty. (A service whose listed rooms are all closed gets none, rather than any room.) One query."""
    listed = Service.rooms.through.objects.filter(service_id=service.pk, room_id=OuterRef("pk"))
    rooms = list(
        Room.objects.filter(clinic_id=service.clinic_id).annotate(listed=Exists(listed)).order_by("name", "pk")
    )
    if any(r.listed for r in rooms):
        rooms = [r for r in rooms if r.listed]
    return [r for r in rooms if r.active]


class _Grid:
    """Everything a search needs except the busy intervals: the zone, the rooms, the therapists with their weekly
    hours and absences in the range. `starts` walks one therapist's step grid on one local day."""

    def __init__(
        self, service: Service, therapists: list[StaffMember], lo: datetime, hi: datetime, now: datetime, step: int
    ) -> None:
        self.service = service
        self.zone = clinic_zone(service.clinic)
        self.rooms = suitable_rooms_for(service) if therapists else []
        self.therapists = therapists
        self.now = now
        self.step = timedelta(minutes=step)
        ids = [t.pk for t in therapists]
        self.hours: dict[int, dict[int, list[WorkingHours]]] = defaultdict(lambda: defaultdict(list))
        absences: dict[int, list[tuple[int, int]]] = defaultdict(list)
        if therapists and self.rooms:
            for block in WorkingHours.objects.filter(therapist_id__in=ids).order_by("starts"):
                self.hours[block.therapist_id][block.weekday].append(block)
            for a in Absence.objects.filter(therapist_id__in=ids, starts_at__lt=hi, ends_at__gt=lo):
                absences[a.therapist_id].append((epoch(a.starts_at), epoch(a.ends_at, end=True)))
        self.away = {pk: Intervals(absences[pk]) for pk in ids}
        # Public holidays the owner has not opened: no time is offered on them (`services.holidays`).
        self.closed: dict[date, str] = {}
        if therapists and self.rooms:
            first, last = lo.astimezone(self.zone).date(), (hi - timedelta(microseconds=1)).astimezone(self.zone).date()
            self.closed = closed_days(service.clinic, first, last)

    def starts(self, therapist_id: int, day: date) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) in UTC of each time the service fits in the therapist's hours that day, in the future and
        outside their absences, earliest first."""
        service, zone, away = self.service, self.zone, self.away[therapist_id]
        if day in self.closed:
            return
        start: datetime | None
        for block in self.hours[therapist_id].get(day.weekday(), ()):
            _, window_end = block_window(day, block, zone)
            wall = datetime.combine(day, block.starts)
            last = datetime.combine(day, block.ends)
            first = to_utc(wall, zone)
            if first is not None and window_end - first == last - wall:
                # The clocks do not change during the block (the usual case): the grid steps the same in UTC.
                start = first
                while start < window_end:
                    end = start + service.duration
                    if end > window_end:
                        break
                    if start > self.now and not away.overlaps(start, end):
                        yield start, end
                    start += self.step
                continue
            while wall < last:
                start = to_utc(wall, zone)
                wall += self.step
                if start is None or start <= self.now:
                    continue
                end = start + service.duration
                if end > window_end:
                    break
                if not away.overlaps(start, end):
                    yield start, end

    def room_for(self, start: datetime, end: datetime, occupied: Occupancy) -> Room | None:
        """The first suitable room free for the slot and its turnover."""
        busy_from, busy_until = start - self.service.before, end + self.service.after
        return next((r for r in self.rooms if not occupied.room(r.pk).overlaps(busy_from, busy_until)), None)

    def slot(self, therapist: StaffMember, start: datetime, end: datetime, occupied: Occupancy) -> Slot | None:
        """The slot when therapist, client and a room are free (absences and hours are `starts`'s business)."""
        if occupied.client.overlaps(start, end):
            return None
        if occupied.therapist(therapist.pk).overlaps(start - self.service.before, end + self.service.after):
            return None
        room = self.room_for(start, end, occupied)
        return Slot(start, end, therapist, room, self.service) if room is not None else None


class Occupancy:
    """Busy intervals grouped by therapist and by room (appointment plus turnover), and the client's own
    appointments (without turnover: the client only needs to be free for the visit itself)."""

    EMPTY = Intervals(())

    def __init__(self, rows: Iterable[Busy], client_id: int | None) -> None:
        by_therapist: dict[int, list[tuple[int, int]]] = defaultdict(list)
        by_room: dict[int, list[tuple[int, int]]] = defaultdict(list)
        mine: list[tuple[int, int]] = []
        for b in rows:
            by_therapist[b.therapist_id].append((b.busy_from, b.busy_until))
            by_room[b.room_id].append((b.busy_from, b.busy_until))
            if client_id is not None and b.client_id == client_id:
                mine.append((b.starts_at, b.ends_at))
        self._therapists = {k: Intervals(v) for k, v in by_therapist.items()}
        self._rooms = {k: Intervals(v) for k, v in by_room.items()}
        self.client = Intervals(mine)

    @classmethod
    def of_rooms(cls, rows: Iterable[tuple[int, int, int]]) -> Occupancy:
        """Only the rooms' busy intervals, from (room_id, busy_from, busy_until) rows (`ROOM_FIELDS`)."""
        by_room: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for room_id, busy_from, busy_until in rows:
            by_room[room_id].append((busy_from, busy_until))
        made = cls((), None)
        made._rooms = {k: Intervals(v) for k, v in by_room.items()}
        return made

    def therapist(self, pk: int) -> Intervals:
        return self._therapists.get(pk, self.EMPTY)

    def room(self, pk: int) -> Intervals:
        return self._rooms.get(pk, self.EMPTY)


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
    if date_to < date_from:
        return []
    zone = clinic_zone(service.clinic)
    lo, hi = day_bounds(date_from, date_to, zone)
    therapists = therapists_for(service.clinic_id, required_techniques(service, course, technique), therapist)
    grid = _Grid(service, therapists, lo, hi, now, step_minutes)
    if not grid.rooms:
        return []
    margin = service.before + service.after + timedelta(days=1)
    busy = fetch_busy(service.clinic_id, lo - margin, hi + margin, now=now, exclude=exclude.pk if exclude else None)
    occupied = Occupancy(busy, client.pk if client is not None else None)
    slots: list[Slot] = []
    for t in therapists:
        day = date_from
        while day <= date_to:
            for start, end in grid.starts(t.pk, day):
                slot = grid.slot(t, start, end, occupied)
                if slot is not None:
                    slots.append(slot)
            day += timedelta(days=1)
    slots.sort(key=lambda s: (s.starts_at, s.therapist.display_name, s.therapist_id))
    return slots


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
    course's therapist when possible (first: all sessions with them; else, day by day, the first day anyone is
    free, with the course's therapist when they are free that day). Raises ValidationError when they do not fit.

    Session i goes on the first day from `start + i * spacing` (and at least `min_gap_days` after the previous
    session) with a free slot, at that day's earliest free time. The search stops at the first such day, so it
    looks at a few days rather than computing every slot of the course's weeks (see docs/benchmarks.md): a bounded
    handful of queries, each reading one therapist's or one day's busy intervals."""
    n = sessions if sessions is not None else course.sessions_planned
    last = start + timedelta(days=course.weeks * 7 - 1)
    if (n - 1) * min_gap_days > (last - start).days:
        raise ValidationError(f"{n} sessions at least {min_gap_days} days apart do not fit in {course.weeks} weeks.")
    search = _CourseSearch(course, service, start, last, n, min_gap_days, now or timezone.now())
    plan = search.with_course_therapist() if course.therapist_id else None
    if plan is None:
        plan = search.with_anyone()
    if plan is None:
        raise ValidationError(
            f"Not enough free times for {n} sessions at least {min_gap_days} days apart between "
            f"{start:%d %b} and {last:%d %b %Y}. Try a later start or fewer sessions."
        )
    return plan


class _CourseSearch:
    """The day-by-day search behind `suggest_course`."""

    def __init__(
        self, course: Course, service: Service, first: date, last: date, n: int, min_gap: int, now: datetime
    ) -> None:
        self.course, self.service, self.first, self.last, self.n, self.now = course, service, first, last, n, now
        self.min_gap = timedelta(days=min_gap)
        self.spacing = timedelta(days=course_spacing(course, n, min_gap))
        self.zone = clinic_zone(service.clinic)
        self.lo, self.hi = day_bounds(first, last, self.zone)
        self.needed = required_techniques(service, course)
        self.margin = service.before + service.after

    def greedy(self, pick_on: Callable[[date], Slot | None]) -> list[Slot] | None:
        """Each session on the first day from its bound that `pick_on` finds a slot on."""
        chosen: list[Slot] = []
        previous: date | None = None
        for i in range(self.n):
            day = self.first + i * self.spacing
            if previous is not None:
                day = max(day, previous + self.min_gap)
            pick = None
            while day <= self.last and (pick := pick_on(day)) is None:
                day += timedelta(days=1)
            if pick is None:
                return None
            chosen.append(pick)
            previous = day
        return chosen

    def day_window(self, first: date, last: date | None = None) -> tuple[datetime, datetime]:
        """The UTC window whose busy intervals can touch a slot on the local days `first`..`last`."""
        lo, hi = day_bounds(first, last or first, self.zone)
        return lo - self.margin, hi + self.margin

    def with_course_therapist(self) -> list[Slot] | None:
        """All sessions with the course's therapist. Their busy times and the client's over the whole range come
        in one query; rooms are asked about only for the days a session could go on (one query for the days a
        first pass picks; more only when the rooms turn out to be taken on those days)."""
        therapists = therapists_for(self.service.clinic_id, self.needed, self.course.therapist_id)
        if not therapists:
            return None
        therapist = therapists[0]
        grid = _Grid(self.service, therapists, self.lo, self.hi, self.now, SLOT_STEP_MINUTES)
        if not grid.rooms:
            return None
        whole = (self.lo - self.margin, self.hi + self.margin)
        own = BusyQuery.run(
            [
                (busy_query(Q(therapist_id=therapist.pk), BUSY_FIELDS), *whole),
                (busy_query(Q(client_id=self.course.client_id), BUSY_FIELDS), *whole),
            ],
            self.now,
        )
        mine = Occupancy((Busy(*row) for row in own), self.course.client_id)
        free_starts: dict[date, list[tuple[datetime, datetime]]] = {}

        def candidates(day: date) -> list[tuple[datetime, datetime]]:
            if day not in free_starts:
                free_starts[day] = [
                    (s, e)
                    for s, e in grid.starts(therapist.pk, day)
                    if not mine.client.overlaps(s, e)
                    and not mine.therapist(therapist.pk).overlaps(s - self.service.before, e + self.service.after)
                ]
            return free_starts[day]

        def without_rooms(day: date) -> Slot | None:
            found = candidates(day)
            return Slot(found[0][0], found[0][1], therapist, grid.rooms[0], self.service) if found else None

        in_rooms = busy_query(Q(clinic_id=self.service.clinic_id, room_id__in=[r.pk for r in grid.rooms]), ROOM_FIELDS)
        rooms = _DayRuns(self, in_rooms, ROOM_AT, Occupancy.of_rooms)

        def asked_about(day: date) -> tuple[datetime, datetime]:
            # Rooms are only asked about for this day's candidate times (earliest first): their busy span.
            found = candidates(day)
            return found[0][0] - self.service.before, found[-1][1] + self.service.after

        rooms.prefetch([s.local(self.zone).date() for s in self.greedy(without_rooms) or []], asked_about)

        def with_room(day: date) -> Slot | None:
            for s, e in candidates(day):
                room = grid.room_for(s, e, rooms[day])
                if room is not None:
                    return Slot(s, e, therapist, room, self.service)
            return None

        return self.greedy(with_room)

    def with_anyone(self) -> list[Slot] | None:
        """Every qualified therapist; the clinic's whole days (therapists, rooms and the client at once) fetched a
        run of days at a time; on each day the course's therapist when free, otherwise the earliest slot."""
        # Only therapists who can open the client's record: a course session needs it (the booking checks it too).
        client = self.course.client
        may_open = {client.therapist_id, *client.shared_with.values_list("pk", flat=True)}
        therapists = [t for t in therapists_for(self.service.clinic_id, self.needed) if t.pk in may_open]
        grid = _Grid(self.service, therapists, self.lo, self.hi, self.now, SLOT_STEP_MINUTES)
        if not grid.rooms:
            return None
        preferred = [t for t in therapists if t.pk == self.course.therapist_id]
        others = sorted(
            (t for t in therapists if t.pk != self.course.therapist_id), key=lambda t: (t.display_name, t.pk)
        )
        client_id = self.course.client_id
        days = _DayRuns(
            self,
            busy_query(Q(clinic_id=self.service.clinic_id), BUSY_FIELDS),
            BUSY_AT,
            lambda rows: Occupancy((Busy(*r) for r in rows), client_id),
        )

        def first_slot(therapist: StaffMember, day: date, occupied: Occupancy) -> Slot | None:
            return next(
                (slot for s, e in grid.starts(therapist.pk, day) if (slot := grid.slot(therapist, s, e, occupied))),
                None,
            )

        def pick_on(day: date) -> Slot | None:
            if day in grid.closed or not any(grid.hours[t.pk].get(day.weekday()) for t in therapists):
                return None  # nobody works that day, or it is a closed holiday: no need to ask the database
            occupied = days[day]
            for t in preferred:
                if (slot := first_slot(t, day, occupied)) is not None:
                    return slot
            found = [slot for t in others if (slot := first_slot(t, day, occupied)) is not None]
            return min(found, key=lambda s: (s.starts_at, s.therapist.display_name, s.therapist_id), default=None)

        return self.greedy(pick_on)


class _DayRuns:
    """Busy intervals per local day, fetched for a run of days at a time: one day, then the next two, four, ...
    so a search that stops at once makes one query, and one that has to walk far a few more (logarithmic in the
    days walked, never one per day). `prefetch` fetches chosen days in one query."""

    def __init__(
        self,
        search: _CourseSearch,
        query: BusyQuery,
        at: tuple[int, int],
        make: Callable[[list[Any]], Occupancy],
    ) -> None:
        self.search, self.query, self.make = search, query, make
        self.at, self.until = at
        self.days: dict[date, Occupancy] = {}
        self.run = 1

    def __getitem__(self, day: date) -> Occupancy:
        if day not in self.days:
            last = min(day + timedelta(days=self.run - 1), self.search.last)
            self.run *= 2
            self._fetch([d for d in _dates(day, last) if d not in self.days], [self.search.day_window(day, last)])
        return self.days[day]

    def prefetch(self, days: Sequence[date], window: Callable[[date], tuple[datetime, datetime]] | None = None) -> None:
        """Fetch these days in one query; `window(day)` may narrow a day to the part of it that will be asked
        about (it must lie inside the day's own window)."""
        wanted = sorted(set(days) - set(self.days))
        if wanted:
            self._fetch(wanted, [(window or self.search.day_window)(d) for d in wanted])

    def _fetch(self, days: list[date], windows: list[tuple[datetime, datetime]]) -> None:
        rows = BusyQuery.run([(self.query, lo, hi) for lo, hi in windows], self.search.now)
        rows.sort(key=lambda r: r[self.at])
        starts = [r[self.at] for r in rows]
        for d in days:
            lo, hi = (epoch(m) for m in self.search.day_window(d))
            # A busy interval touching [lo, hi) starts before hi, and at most MAX_BUSY_SPAN before lo.
            near = rows[bisect_left(starts, lo - MAX_SPAN_SECONDS) : bisect_left(starts, hi)]
            self.days[d] = self.make([r for r in near if r[self.until] > lo])


def _dates(first: date, last: date) -> Iterator[date]:
    while first <= last:
        yield first
        first += timedelta(days=1)


def slot_summary(slot: Slot, zone: ZoneInfo) -> dict[str, Any]:
    local = slot.local(zone)
    return {
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
        "therapist": slot.therapist.display_name,
        "room": slot.room.name,
    }
