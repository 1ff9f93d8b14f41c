"""A chain-sized calendar for load tests and benchmarks: `build_scale(...)`.

It writes straight to the tables in batches (`bulk_create` for the small ones; COPY on PostgreSQL and a prepared
INSERT on SQLite for clients and appointments), with no audit events and no per-row checks, so a million appointments
take minutes, not hours. The data are nevertheless valid, so the booking rules and PostgreSQL's
exclusion constraints hold:

- the clinic opens Monday to Saturday, 08:00-20:00 local time; each therapist works an early (08:00-14:00) or a
  late (14:00-20:00) shift five days a week, with a few absences (a holiday week and sick days each year);
- every appointment fills one one-hour cell of that grid (busy time, turnover included). In a cell, each therapist,
  room and client is in at most one live appointment, and a therapist is only booked on a shift they work and are
  not away, so nothing live overlaps;
- live (booked) appointments fill at most `occupancy` of the cells' capacity (the smaller of the therapists on shift
  and the rooms). The rest of the requested rows are history that no longer takes time: cancelled appointments, and
  offers that expired or were declined. 50 therapists and 20 rooms cannot hold a million live one-hour visits in two
  years (about 150,000 fit), so at that size most rows are such history, which is exactly what the availability
  search must skip.

The same seed gives the same rows (names, times, people), apart from database ids and creation times.
"""

from __future__ import annotations

import math
import random
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, Role, Screening, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours

OPEN_DAYS = range(6)  # Monday to Saturday
SHIFTS = ((time(8), time(14)), (time(14), time(20)))
CELL = timedelta(hours=1)
BATCH = 5_000
TIME_ZONE = "Europe/London"
FIRST_NAMES = (
    "Alex", "Sam", "Jo", "Chris", "Pat", "Robin", "Kim", "Lee", "Morgan", "Jamie", "Taylor", "Jordan", "Casey",
    "Avery", "Riley", "Quinn", "Dana", "Rowan", "Sasha", "Noor", "Amira", "Ines", "Mateo", "Yusuf", "Mei", "Ola",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel", "Robinson", "Wright",
    "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood", "Jackson", "Clarke", "Khan", "Ali",
)  # fmt: skip
# Status of the rows beyond the live capacity, with weights: mostly cancellations, some offers that lapsed.
HISTORY = ((Appointment.Status.CANCELLED, 85), (Appointment.Status.EXPIRED, 8), (Appointment.Status.DECLINED, 7))
# A plain intake (lower back, moderate pain, nothing to flag): the benchmark courses are screened on it.
PLAIN_INTAKE: dict[str, Any] = {
    "schema_version": "1",
    "age": 45,
    "sex": "female",
    "pain": {
        "regions": ["lower_back"],
        "intensity": 4,
        "duration_weeks": 3,
        "first_episode": False,
        "onset": "gradual",
        "medically_assessed": True,
    },
    "findings": [],
    "pregnancy_weeks": None,
    "goals": [],
}

Progress = Callable[[str], None]


@dataclass
class ScaleReport:
    """What `build_scale` made: ids to benchmark against, counts and timings."""

    first_day: date
    last_day: date
    clinic_ids: list[int] = field(default_factory=list)
    service_ids: list[int] = field(default_factory=list)  # per clinic: the 45-minute treatment with turnover
    course_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first_day.isoformat(),
            "last_day": self.last_day.isoformat(),
            "clinics": self.clinic_ids,
            "counts": self.counts,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _monday_on_or_before(day: date) -> date:
    return day - timedelta(days=day.weekday())


def default_first_day(span_days: int) -> date:
    """Half the span in the past and half ahead, starting on a Monday: history and a booked future."""
    return _monday_on_or_before(timezone.now().date() - timedelta(days=round(span_days / 2)))


def weeks_at_occupancy(appointments: int, therapists: int, rooms: int, occupancy: float = 0.8) -> int:
    """About how many weeks `appointments` booked visits take to fill `occupancy` of one clinic's places, by the
    rules of the grid below (so a small data set can be made as full as a large one: see benchmarks/availability.py).
    At least 8 weeks, so a 6-week course search always lies inside the data."""
    on_duty = therapists / len(SHIFTS) * (len(OPEN_DAYS) - 1) / len(OPEN_DAYS)
    hours = sum(end.hour - begin.hour for begin, end in SHIFTS) / len(SHIFTS)
    places_per_week = len(OPEN_DAYS) * len(SHIFTS) * hours * min(on_duty, rooms) * 0.97  # 0.97: absences
    return max(8, math.ceil(appointments / (places_per_week * occupancy)))


def _insert_rows(
    model: Any,
    rows: Iterator[dict[str, Any]],
    batch: int,
    progress: Progress | None,
    label: str,
    total: int,
    *,
    ids: bool = False,
) -> int:
    """Insert rows (dicts of column values by attribute name) in batches of `batch`, one transaction each, printing
    progress about every 10%. For the big tables this skips model instances and `bulk_create` (three times faster):
    the values go straight to the driver, by COPY on PostgreSQL and one prepared INSERT on SQLite. Columns a row
    leaves out take the field's default (None for nullable fields, "" for text). With `ids`, every row gives its
    primary key too (the caller resets PostgreSQL's sequences afterwards)."""
    fields = [f for f in model._meta.concrete_fields if ids or not f.primary_key]
    columns = [f.column for f in fields]
    names = [f.attname for f in fields]
    defaults = {f.attname: (f.get_default() if f.has_default() else (None if f.null else "")) for f in fields}
    datetimes = {i for i, f in enumerate(fields) if f.get_internal_type() == "DateTimeField"}
    dates = {i for i, f in enumerate(fields) if f.get_internal_type() == "DateField"}
    table = connection.ops.quote_name(model._meta.db_table)
    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    postgres = connection.vendor == "postgresql"
    seen: dict[datetime, str] = {}

    def adapt(moment: datetime) -> str:
        # What Django stores on SQLite (naive UTC text); rows share their cells' times, so each is formatted once.
        text = seen.get(moment)
        if text is None:
            text = seen[moment] = moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
        return text

    def values(row: dict[str, Any]) -> tuple[Any, ...]:
        out: list[Any] = [row.get(n, defaults[n]) for n in names]
        if not postgres:
            for i in datetimes:
                if out[i] is not None:
                    out[i] = adapt(out[i])
            for i in dates:
                if out[i] is not None:
                    out[i] = out[i].isoformat()
        return tuple(out)

    done, step = 0, max(total // 10, batch)
    next_report = step
    started = clock.perf_counter()
    chunk: list[tuple[Any, ...]] = []

    def flush() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            if postgres:
                with cursor.cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy:
                    for item in chunk:
                        copy.write_row(item)
            else:
                marks = ", ".join(["%s"] * len(columns))
                cursor.executemany(f"INSERT INTO {table} ({quoted}) VALUES ({marks})", chunk)

    for row in rows:
        chunk.append(values(row))
        if len(chunk) >= batch:
            flush()
            done += len(chunk)
            chunk = []
            if progress and done >= next_report:
                rate = done / max(clock.perf_counter() - started, 1e-9)
                progress(f"  {label}: {done:,} of {total:,} ({rate:,.0f} a second)")
                next_report += step
    if chunk:
        flush()
        done += len(chunk)
    return done


def build_scale(
    *,
    clinics: int = 1,
    therapists: int = 50,
    rooms: int = 20,
    clients: int = 100_000,
    appointments: int = 1_000_000,
    years: int = 2,
    weeks: int | None = None,
    seed: int = 2026,
    first_day: date | None = None,
    occupancy: float = 0.8,
    courses: int = 20,
    batch_size: int = BATCH,
    progress: Progress | None = None,
) -> ScaleReport:
    """Build `clinics` clinics sharing out the therapists, rooms, clients and appointments, over `years` years (or
    `weeks` weeks, when given) from `first_day` (a Monday; default: half the span ago). `courses` clients get a
    screening and an active 4-session, 6-week course, for course searches. Returns what was made; `progress` (e.g.
    print) hears how it goes."""
    if clinics < 1 or therapists < clinics or rooms < clinics or clients < clinics:
        raise ValueError("each clinic needs at least one therapist, one room and one client")
    if not 0 < occupancy <= 1:
        raise ValueError("occupancy is a fraction of the capacity, above 0 and at most 1")
    if weeks is not None and weeks < 1:
        raise ValueError("weeks must be 1 or more")
    rng = random.Random(seed)
    span = weeks * 7 if weeks is not None else years * 365
    start = first_day or default_first_day(span)
    days = [start + timedelta(days=i) for i in range(span)]
    report = ScaleReport(first_day=days[0], last_day=days[-1])
    counts = dict.fromkeys(("clinics", "therapists", "rooms", "clients", "appointments", "live", "absences"), 0)
    t0 = clock.perf_counter()
    for index, (n_t, n_r, n_c, n_a) in enumerate(
        zip(
            _split(therapists, clinics),
            _split(rooms, clinics),
            _split(clients, clinics),
            _split(appointments, clinics),
            strict=True,
        )
    ):
        made = _build_clinic(index, n_t, n_r, n_c, n_a, days, rng, occupancy, batch_size, progress, report)
        for key, value in made.items():
            counts[key] += value
    report.seconds["total"] = clock.perf_counter() - t0
    for clinic_id in report.clinic_ids:
        clinic_courses = _benchmark_courses(clinic_id, _split(courses, clinics)[report.clinic_ids.index(clinic_id)])
        report.course_ids.extend(clinic_courses)
    report.seconds["total"] = clock.perf_counter() - t0
    counts["courses"] = len(report.course_ids)
    report.counts = counts
    return report


def _build_clinic(
    index: int,
    n_therapists: int,
    n_rooms: int,
    n_clients: int,
    n_appointments: int,
    days: list[date],
    rng: random.Random,
    occupancy: float,
    batch: int,
    progress: Progress | None,
    report: ScaleReport,
) -> dict[str, int]:
    say = progress or (lambda _message: None)
    zone = ZoneInfo(TIME_ZONE)
    t0 = clock.perf_counter()
    with transaction.atomic():
        clinic = Clinic.objects.create(name=f"Scale Clinic {index + 1}", time_zone=TIME_ZONE)
        report.clinic_ids.append(clinic.pk)
        get_user_model().objects.bulk_create(
            [
                get_user_model()(username=f"scale-{clinic.pk}-t{i + 1:03d}", password="!", email="")
                for i in range(n_therapists)
            ]
        )
        users = list(get_user_model().objects.filter(username__startswith=f"scale-{clinic.pk}-t").order_by("username"))
        all_techniques = sorted(TECHNIQUES)
        StaffMember.objects.bulk_create(
            [
                StaffMember(
                    user=u,
                    clinic=clinic,
                    role=Role.THERAPIST,
                    display_name=f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)} ({i + 1})",
                    qualified_techniques=all_techniques,
                )
                for i, u in enumerate(users)
            ]
        )
        staff = list(StaffMember.objects.filter(clinic=clinic).order_by("pk"))
        Room.objects.bulk_create([Room(clinic=clinic, name=f"Room {i + 1:02d}") for i in range(n_rooms)])
        room_ids = list(Room.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True))
        # Every service busies exactly one cell: duration + turnover = 60 minutes.
        treatment = Service.objects.create(
            clinic=clinic, name="Remedial massage (45 min)", duration_minutes=45, turnover_after_minutes=15
        )
        relaxation = Service.objects.create(
            clinic=clinic, name="Relaxation massage (50 min)", duration_minutes=50, turnover_before_minutes=5,
            turnover_after_minutes=5,
        )  # fmt: skip
        assessment = Service.objects.create(
            clinic=clinic, name="First assessment (60 min)", duration_minutes=60, assessment=True
        )
        services = [(treatment, 70), (relaxation, 20), (assessment, 10)]
        report.service_ids.append(treatment.pk)
        # Shifts: therapist i works shift i % 2, Monday to Saturday except day (i // 2) % 6.
        shift_of = {t.pk: i % 2 for i, t in enumerate(staff)}
        day_off = {t.pk: (i // 2) % 6 for i, t in enumerate(staff)}
        WorkingHours.objects.bulk_create(
            [
                WorkingHours(therapist=t, weekday=wd, starts=SHIFTS[shift_of[t.pk]][0], ends=SHIFTS[shift_of[t.pk]][1])
                for t in staff
                for wd in OPEN_DAYS
                if wd != day_off[t.pk]
            ]
        )
        away, absences = _absences(staff, days, zone, rng)
        Absence.objects.bulk_create(absences)
    report.seconds[f"clinic {index + 1} set-up"] = clock.perf_counter() - t0
    say(f"Scale Clinic {index + 1}: {n_therapists} therapists, {n_rooms} rooms, {len(absences)} absences")

    t0 = clock.perf_counter()
    therapist_ids = [t.pk for t in staff]
    created = timezone.now()
    _insert_rows(
        Client,
        (
            {
                "clinic_id": clinic.pk,
                "first_name": rng.choice(FIRST_NAMES),
                "last_name": rng.choice(LAST_NAMES),
                "date_of_birth": date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65)),
                "sex": rng.choice(("female", "male", "female", "male", "other", "unknown")),
                "email": f"client{i + 1}@scale.invalid",
                "therapist_id": therapist_ids[i % len(therapist_ids)],
                "created_at": created,
            }
            for i in range(n_clients)
        ),
        batch,
        progress,
        "clients",
        n_clients,
    )
    client_ids = list(Client.objects.filter(clinic=clinic).order_by("pk").values_list("pk", flat=True))
    report.seconds[f"clinic {index + 1} clients"] = clock.perf_counter() - t0

    # The cells: (utc start, therapists free to work it). Capacity of a cell: min(therapists, rooms).
    cells: list[tuple[datetime, list[int]]] = []
    for day in days:
        if day.weekday() not in OPEN_DAYS:
            continue
        on_duty = [
            [t for t in therapist_ids if shift_of[t] == s and day_off[t] != day.weekday() and (t, day) not in away]
            for s in range(len(SHIFTS))
        ]
        for s, (begin, end) in enumerate(SHIFTS):
            for hour in range(begin.hour, end.hour):
                utc = datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)
                cells.append((utc, on_duty[s]))
    capacity = [min(len(ts), len(room_ids)) for _, ts in cells]
    total_capacity = sum(capacity)
    n_live = min(n_appointments, int(total_capacity * occupancy))
    n_history = n_appointments - n_live
    # Exactly n_live of the capacity's places are booked, chosen uniformly; history rows go to random cells.
    live_per_cell = [0] * len(cells)
    offsets = [0]
    for c in capacity:
        offsets.append(offsets[-1] + c)
    cell_of_place = 0
    for place in sorted(rng.sample(range(total_capacity), n_live)):
        while offsets[cell_of_place + 1] <= place:
            cell_of_place += 1
        live_per_cell[cell_of_place] += 1
    history_per_cell = [0] * len(cells)
    for _ in range(n_history):
        history_per_cell[rng.randrange(len(cells))] += 1
    say(
        f"  appointments: {n_live:,} booked ({n_live / max(total_capacity, 1):.0%} of the {total_capacity:,} places) "
        f"and {n_history:,} cancelled or lapsed"
    )
    statuses = [s for s, _ in HISTORY]
    weights = [w for _, w in HISTORY]
    service_list = [s for s, _ in services]
    service_weights = [w for _, w in services]
    clinic_id = clinic.pk

    def rows() -> Iterator[dict[str, Any]]:
        for (cell_start, on_duty), k_live, k_history in zip(cells, live_per_cell, history_per_cell, strict=True):
            if k_live:
                ts = rng.sample(on_duty, k_live)
                rs = rng.sample(room_ids, k_live)
                cs = rng.sample(client_ids, k_live)
                for t, r, c in zip(ts, rs, cs, strict=True):
                    yield _appointment(clinic_id, t, r, c, rng.choices(service_list, service_weights)[0], cell_start)
            for _ in range(k_history):
                yield _appointment(
                    clinic_id,
                    rng.choice(on_duty) if on_duty else therapist_ids[0],
                    rng.choice(room_ids),
                    rng.choice(client_ids),
                    rng.choices(service_list, service_weights)[0],
                    cell_start,
                    rng.choices(statuses, weights)[0],
                )

    t0 = clock.perf_counter()
    inserted = _insert_rows(Appointment, rows(), batch, progress, "appointments", n_appointments)
    report.seconds[f"clinic {index + 1} appointments"] = clock.perf_counter() - t0
    return {
        "clinics": 1,
        "therapists": len(staff),
        "rooms": len(room_ids),
        "clients": len(client_ids),
        "appointments": inserted,
        "live": n_live,
        "absences": len(absences),
    }


def _appointment(
    clinic_id: int,
    therapist_id: int,
    room_id: int,
    client_id: int,
    service: Service,
    cell_start: datetime,
    status: str = Appointment.Status.BOOKED,
) -> dict[str, Any]:
    """One appointment's columns: its busy time is the cell, the visit itself the service's duration inside it."""
    starts = cell_start + service.before
    row: dict[str, Any] = {
        "clinic_id": clinic_id,
        "client_id": client_id,
        "therapist_id": therapist_id,
        "room_id": room_id,
        "service_id": service.pk,
        "starts_at": starts,
        "ends_at": starts + service.duration,
        "busy_from": cell_start,
        "busy_until": cell_start + CELL,
        "status": str(status),
        "created_at": cell_start - timedelta(days=14),
    }
    if status == Appointment.Status.CANCELLED:
        row["cancelled_at"] = cell_start - timedelta(days=2)
        row["cancel_reason"] = "Client cancelled"
    elif status != Appointment.Status.BOOKED:
        row["hold_expires_at"] = cell_start - timedelta(days=3)
    return row


def _absences(
    staff: list[StaffMember], days: list[date], zone: ZoneInfo, rng: random.Random
) -> tuple[set[tuple[int, date]], list[Absence]]:
    """Each year: a holiday week (Monday to Saturday) and two single sick days per therapist."""
    away: set[tuple[int, date]] = set()
    rows: list[Absence] = []

    def add(t: StaffMember, first: date, last: date, kind: str) -> None:
        rows.append(
            Absence(
                therapist=t,
                starts_at=datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC),
                ends_at=datetime.combine(last + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC),
                kind=kind,
                note="Scale data",
            )
        )
        d = first
        while d <= last:
            away.add((t.pk, d))
            d += timedelta(days=1)

    for t in staff:
        # A holiday week and two sick days a year; a part of a year gets each with the chance of its share.
        for base in range(0, len(days), 365):
            chunk = min(365, len(days) - base)
            if chunk >= 15 and (chunk == 365 or rng.random() < chunk / 365):
                monday = _monday_on_or_before(days[base + rng.randrange(7, min(350, chunk - 7))])
                add(t, monday, monday + timedelta(days=5), Absence.Kind.HOLIDAY)
            for _ in range(2):
                if chunk == 365 or rng.random() < chunk / 365:
                    day = days[base + rng.randrange(0, min(364, chunk))]
                    if (t.pk, day) not in away:
                        add(t, day, day, Absence.Kind.SICK)
    return away, rows


def _benchmark_courses(clinic_id: int, n: int) -> list[int]:
    """`n` clients get signed consent, a screening on a plain intake and an active course (4 sessions over 6
    weeks): what the treatment gate asks before a course session is booked."""
    from backcare.clinic.models import Consent
    from backcare.clinic.services.consent import current_consent_text
    from backcare.clinic.services.screening import run_screening

    made: list[int] = []
    text = current_consent_text()
    picked = Client.objects.filter(clinic_id=clinic_id).exclude(courses__status=Course.Status.ACTIVE)
    for client in picked.order_by("pk")[:n]:
        if text is not None:
            Consent.objects.get_or_create(client=client, text=text, defaults={"signature": client.full_name})
        document = {**PLAIN_INTAKE, "id": f"scale-{client.pk}", "age": client.age_on()}
        screening: Screening = run_screening(client, document, kind="intake")
        plan = screening.result.get("plan") or {}
        course = Course.objects.create(
            client=client,
            therapist_id=client.therapist_id,
            screening=screening,
            recommended_plan=plan,
            techniques=list(plan.get("techniques") or []),
            sessions_planned=4,
            weeks=6,
            reassess_after=2,
        )
        made.append(course.pk)
    return made
