"""The chain-sized data builder (backcare.scheduling.scale) at small sizes: counts, valid calendars, searches on it."""

from __future__ import annotations

import io
import itertools
import json
import math
from collections import defaultdict
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, Role, StaffMember
from backcare.scheduling.models import Absence, Appointment, Room, Service, WorkingHours, live_q
from backcare.scheduling.scale import build_scale, weeks_at_occupancy
from backcare.scheduling.services import availability, booking

pytestmark = pytest.mark.django_db


def next_monday(days_ahead: int = 7) -> date:
    day = timezone.localdate() + timedelta(days=days_ahead)
    return day + timedelta(days=(7 - day.weekday()) % 7)


def overlaps_by(rows: list[dict], key: str, start: str, end: str) -> list[tuple[int, int]]:
    """Pairs of rows sharing `key` whose [start, end) intervals overlap (sort and compare neighbours)."""
    found = []
    groups: dict[int, list[dict]] = defaultdict(list)
    for r in rows:
        groups[r[key]].append(r)
    for group in groups.values():
        group.sort(key=lambda r: r[start])
        for a, b in itertools.pairwise(group):
            if b[start] < a[end]:
                found.append((a["pk"], b["pk"]))
    return found


def live_rows(clinic_id: int) -> list[dict]:
    return list(
        Appointment.objects.filter(live_q(timezone.now()), clinic_id=clinic_id).values(
            "pk", "therapist_id", "room_id", "client_id", "starts_at", "ends_at", "busy_from", "busy_until"
        )
    )


def test_small_build_has_the_requested_counts_and_nothing_live_overlaps():
    report = build_scale(
        therapists=6, rooms=3, clients=200, appointments=3_000, years=1, first_day=next_monday(), courses=3
    )
    (clinic_id,) = report.clinic_ids
    assert Appointment.objects.filter(clinic_id=clinic_id).count() == 3_000
    assert Client.objects.filter(clinic_id=clinic_id).count() == 200
    assert StaffMember.objects.filter(clinic_id=clinic_id, role=Role.THERAPIST).count() == 6
    assert Room.objects.filter(clinic_id=clinic_id).count() == 3
    assert report.counts["appointments"] == 3_000 and report.counts["live"] == 3_000  # fits: all booked
    # Every therapist works five days a week and has absences; every course is active, 4 sessions over 6 weeks.
    therapist_ids = list(StaffMember.objects.filter(clinic_id=clinic_id).values_list("pk", flat=True))
    for t in therapist_ids:
        assert WorkingHours.objects.filter(therapist_id=t).count() == 5
        assert Absence.objects.filter(therapist_id=t).exists()
    courses = Course.objects.filter(pk__in=report.course_ids)
    assert [(c.status, c.sessions_planned, c.weeks) for c in courses] == [("active", 4, 6)] * 3

    rows = live_rows(clinic_id)
    assert len(rows) == 3_000
    assert overlaps_by(rows, "therapist_id", "busy_from", "busy_until") == []
    assert overlaps_by(rows, "room_id", "busy_from", "busy_until") == []
    assert overlaps_by(rows, "client_id", "starts_at", "ends_at") == []
    first = min(r["starts_at"] for r in rows)
    last = max(r["ends_at"] for r in rows)
    zone = ZoneInfo("Europe/London")
    assert first.astimezone(zone).date() >= report.first_day and last.astimezone(zone).date() <= report.last_day


def test_booked_appointments_fall_inside_working_hours_and_outside_absences():
    report = build_scale(therapists=4, rooms=2, clients=50, appointments=800, years=1, first_day=next_monday())
    (clinic_id,) = report.clinic_ids
    zone = ZoneInfo(Clinic.objects.get(pk=clinic_id).time_zone)
    hours = defaultdict(list)
    for block in WorkingHours.objects.filter(therapist__clinic_id=clinic_id):
        hours[(block.therapist_id, block.weekday)].append((block.starts, block.ends))
    away = defaultdict(list)
    for a in Absence.objects.filter(therapist__clinic_id=clinic_id):
        away[a.therapist_id].append((a.starts_at, a.ends_at))
    rows = live_rows(clinic_id)
    assert rows
    for r in rows:
        start, end = r["starts_at"].astimezone(zone), r["ends_at"].astimezone(zone)
        blocks = hours[(r["therapist_id"], start.weekday())]
        assert any(s <= start.time() and end.time() <= e for s, e in blocks), r
        assert not any(a < r["ends_at"] and r["starts_at"] < b for a, b in away[r["therapist_id"]]), r


def test_beyond_capacity_the_rest_is_cancelled_or_lapsed_history():
    # 2 therapists and 1 room hold far fewer than 6,000 one-hour visits in a year.
    report = build_scale(
        therapists=2, rooms=1, clients=40, appointments=6_000, years=1, first_day=next_monday(), courses=0
    )
    (clinic_id,) = report.clinic_ids
    by_status = dict(Appointment.objects.filter(clinic_id=clinic_id).values_list("status").annotate(n=Count("pk")))
    assert sum(by_status.values()) == 6_000
    live = by_status.get("booked", 0)
    assert live == report.counts["live"] and 0 < live < 6_000
    assert set(by_status) <= {"booked", "cancelled", "expired", "declined"}
    assert by_status["cancelled"] > by_status.get("expired", 0)
    rows = live_rows(clinic_id)
    assert overlaps_by(rows, "therapist_id", "busy_from", "busy_until") == []
    assert overlaps_by(rows, "room_id", "busy_from", "busy_until") == []
    assert overlaps_by(rows, "client_id", "starts_at", "ends_at") == []
    assert not Appointment.objects.filter(clinic_id=clinic_id, status="cancelled", cancelled_at__isnull=True).exists()


def test_the_same_seed_builds_the_same_calendar():
    monday = next_monday()

    def signature(report):
        (clinic_id,) = report.clinic_ids
        order = {
            model: {
                pk: i
                for i, pk in enumerate(
                    model.objects.filter(clinic_id=clinic_id).order_by("pk").values_list("pk", flat=True)
                )
            }
            for model in (StaffMember, Room, Client)
        }
        return [
            (order[StaffMember][t], order[Room][r], order[Client][c], s.isoformat(), status)
            for t, r, c, s, status in Appointment.objects.filter(clinic_id=clinic_id)
            .order_by("pk")
            .values_list("therapist_id", "room_id", "client_id", "starts_at", "status")
        ]

    kwargs = dict(therapists=3, rooms=2, clients=30, appointments=400, years=1, first_day=monday, courses=0)
    first = signature(build_scale(seed=7, **kwargs))
    again = signature(build_scale(seed=7, **kwargs))
    other = signature(build_scale(seed=8, **kwargs))
    assert first == again
    assert first != other


def test_find_slots_and_course_search_work_on_the_built_calendar_and_a_slot_books():
    report = build_scale(
        therapists=4, rooms=2, clients=60, appointments=1_500, years=1, first_day=next_monday(), courses=2
    )
    (clinic_id,) = report.clinic_ids
    service = Service.objects.get(pk=report.service_ids[0])
    day = report.first_day + timedelta(days=15)
    slots = availability.find_slots(service, day, day + timedelta(days=6))
    assert slots
    rows = live_rows(clinic_id)
    for s in slots:
        busy_from, busy_until = s.starts_at - service.before, s.ends_at + service.after
        for r in rows:
            if r["busy_from"] < busy_until and busy_from < r["busy_until"]:
                assert r["therapist_id"] != s.therapist_id and r["room_id"] != s.room_id, (s, r)

    course = Course.objects.select_related("client").get(pk=report.course_ids[0])
    plan = availability.suggest_course(course, service, day, sessions=4)
    assert len(plan) == 4
    zone = ZoneInfo("Europe/London")
    days = [s.local(zone).date() for s in plan]
    assert all((b - a).days >= 5 for a, b in itertools.pairwise(days))

    # The booking service accepts a slot the search offered (working hours, absences, overlaps all agree).
    from django.contrib.auth import get_user_model

    desk_user = get_user_model().objects.create_user(username="scale-desk", password="not-used-here-123")
    StaffMember.objects.create(user=desk_user, clinic_id=clinic_id, role=Role.FRONT_DESK, display_name="Desk")
    first = plan[0]
    made = booking.book_appointment(
        course.client, service, first.starts_at, therapist=first.therapist, room=first.room, by=desk_user, course=course
    )
    assert made.status == Appointment.Status.BOOKED
    assert overlaps_by(live_rows(clinic_id), "therapist_id", "busy_from", "busy_until") == []


def test_scale_demo_command_builds_and_reports():
    out = io.StringIO()
    call_command(
        "scale_demo", "--therapists", "3", "--rooms", "2", "--clients", "25", "--appointments", "300",
        "--years", "1", "--first-day", next_monday().isoformat(), "--json", stdout=out,
    )  # fmt: skip
    made = json.loads(out.getvalue())
    assert made["counts"]["appointments"] == 300 and made["counts"]["clients"] == 25
    assert Appointment.objects.filter(clinic_id__in=made["clinics"]).count() == 300


def test_scale_demo_refuses_bad_input_and_production():
    with pytest.raises(CommandError, match="must be a Monday"):
        call_command("scale_demo", "--first-day", (next_monday() + timedelta(days=1)).isoformat(), stdout=io.StringIO())
    with pytest.raises(CommandError, match="--rooms must be 1 or more"):
        call_command("scale_demo", "--rooms", "0", stdout=io.StringIO())
    with override_settings(PRODUCTION=True), pytest.raises(CommandError, match="not built in production"):
        call_command("scale_demo", "--appointments", "10", stdout=io.StringIO())
    assert not Clinic.objects.exists()


def test_build_scale_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="at least one therapist"):
        build_scale(clinics=3, therapists=2, rooms=3, clients=10, appointments=10)
    with pytest.raises(ValueError, match="occupancy"):
        build_scale(therapists=2, rooms=1, clients=10, appointments=10, occupancy=0)


def test_a_span_in_weeks_at_the_occupancy_that_fills_it():
    """The benchmark builds a small calendar as full as the large one: `weeks` sets the span, and
    `weeks_at_occupancy` picks the weeks in which the visits fill about 80% of the places."""
    weeks = weeks_at_occupancy(3_000, therapists=10, rooms=4)
    assert weeks == math.ceil(3_000 / (6 * 2 * 6 * 4 * 0.97 * 0.8))  # 4 rooms bind: 10 / 2 * 5/6 therapists on duty
    report = build_scale(therapists=10, rooms=4, clients=200, appointments=3_000, weeks=weeks, first_day=next_monday())
    assert (report.last_day - report.first_day).days == weeks * 7 - 1
    assert report.counts["live"] / 3_000 >= 0.7 and report.counts["live"] <= 3_000
    (clinic_id,) = report.clinic_ids
    rows = live_rows(clinic_id)
    zone = ZoneInfo("Europe/London")
    assert max(r["ends_at"] for r in rows).astimezone(zone).date() <= report.last_day
    assert overlaps_by(rows, "therapist_id", "busy_from", "busy_until") == []
    assert weeks_at_occupancy(10, therapists=50, rooms=20) == 8  # never shorter than a course search needs
    with pytest.raises(ValueError, match="weeks"):
        build_scale(therapists=2, rooms=1, clients=5, appointments=10, weeks=0)
