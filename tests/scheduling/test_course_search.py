"""The course search (`suggest_course`) looks at a few days instead of computing every slot of the course's weeks.
These tests hold it to the plain definition: the greedy choice made over ALL the slots `find_slots` offers, whatever
the calendar looks like (bookings of other therapists in the same rooms, the client's own bookings, absences), and
check that the number of queries does not grow with the length of the course."""

from __future__ import annotations

import contextlib
from collections import defaultdict
from datetime import date, time, timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sched_helpers import LONDON, at, future_day

from backcare.clinic.services import courses
from backcare.scheduling.services import availability, booking, resources
from backcare.scheduling.services.booking import BookingConflict

MORNINGS = {d: [(time(9), time(12))] for d in range(7)}


@pytest.fixture
def world(world, owner, make_staff):
    """The scheduling world (conftest), with a third therapist, short days and a course to place."""
    w = world
    third = make_staff("therapist", "tom", "Tom Third", qualified_techniques=["swedish_relaxation", "remedial"])
    w.extra["therapists"] = [w.therapist, w.therapist2, third]
    for t in w.extra["therapists"]:  # short days fill up with few bookings, so every branch of the search runs
        resources.set_working_hours(t, MORNINGS, by=owner.user)
    w.extra["clients"] = [w.client(), w.client(), w.client()]
    # Every therapist can open Cora's record, so the search may place a session with any of them.
    w.cora.shared_with.add(w.therapist2, third)
    w.extra["course"] = courses.start_course(w.cora, staff=w.therapist)
    return w


def reference(course: Any, service: Any, start: date, n: int, min_gap: int) -> list[tuple[Any, ...]] | None:
    """The definition, computed the slow way: every slot of the weeks, then each session on the first day from its
    bound that has a slot, all with the course's therapist if that works, else that day's slot of the course's
    therapist or the day's earliest."""
    last = start + timedelta(days=course.weeks * 7 - 1)
    spacing = availability.course_spacing(course, n, min_gap)
    slots = availability.find_slots(service, start, last, client=course.client, course=course)

    def pick(only: int | None, prefer: int | None) -> list[Any] | None:
        by_day: dict[date, list[Any]] = defaultdict(list)
        for s in slots:
            if only is None or s.therapist_id == only:
                by_day[s.local(LONDON).date()].append(s)
        chosen: list[Any] = []
        previous: date | None = None
        for i in range(n):
            bound = start + timedelta(days=i * spacing)
            if previous is not None:
                bound = max(bound, previous + timedelta(days=min_gap))
            day = min((d for d in by_day if d >= bound), default=None)
            if day is None:
                return None
            options = by_day[day]
            chosen.append(next((s for s in options if s.therapist_id == prefer), options[0]))
            previous = day
        return chosen

    plan = pick(course.therapist_id, course.therapist_id) or pick(None, course.therapist_id)
    return [(s.starts_at, s.therapist_id, s.room_id) for s in plan] if plan else None


def searched(course: Any, service: Any, start: date, n: int, min_gap: int) -> list[tuple[Any, ...]] | None:
    try:
        plan = availability.suggest_course(course, service, start, sessions=n, min_gap_days=min_gap)
    except ValidationError:
        return None
    return [(s.starts_at, s.therapist_id, s.room_id) for s in plan]


booking_op = st.tuples(
    st.just("book"),
    st.integers(0, 2),  # therapist
    st.integers(0, 1),  # room
    st.integers(0, 3),  # client: 0 is the course's own client
    st.sampled_from([0, 1, 2, 3, 5, 7, 10, 14, 20]),  # day after the course's start (near the sessions' bounds)
    st.integers(0, 8),  # quarter hours after 09:00
)
absence_op = st.tuples(st.just("away"), st.integers(0, 2), st.integers(0, 20), st.integers(0, 6))


@pytest.mark.django_db
def test_course_search_matches_the_definition(world):
    start = future_day(7)

    @settings(
        deadline=None,
        max_examples=60,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        ops=st.lists(st.one_of(booking_op, booking_op, booking_op, absence_op), max_size=25),
        n=st.integers(1, 4),
        min_gap=st.integers(1, 7),
        weeks=st.integers(1, 4),
    )
    def check(ops: list[tuple[Any, ...]], n: int, min_gap: int, weeks: int) -> None:
        course = world.extra["course"]
        therapists, by = world.extra["therapists"], world.owner.user
        with transaction.atomic():
            course.weeks = weeks
            for op in ops:
                if op[0] == "away":
                    _, t, day, length = op
                    first = start + timedelta(days=day)
                    resources.add_absence(therapists[t], first, first + timedelta(days=length), by=by)
                    continue
                _, t, room, c, day, quarter = op
                client = [world.cora, *world.extra["clients"]][c]
                when = at(start + timedelta(days=day), 9) + timedelta(minutes=15 * quarter)
                with contextlib.suppress(BookingConflict, ValidationError):
                    booking.book_appointment(
                        client,
                        world.massage,
                        when,
                        therapist=therapists[t],
                        room=(world.room1, world.room2)[room],
                        by=by,
                    )
            if (n - 1) * min_gap > weeks * 7 - 1:
                with pytest.raises(ValidationError, match="do not fit"):
                    availability.suggest_course(course, world.massage, start, sessions=n, min_gap_days=min_gap)
            else:
                assert searched(course, world.massage, start, n, min_gap) == reference(
                    course, world.massage, start, n, min_gap
                )
            transaction.set_rollback(True)

    check()


@pytest.mark.django_db
def test_course_search_falls_back_when_rooms_are_taken(world):
    """The course's therapist is free, but both rooms are taken by the others on the first days."""
    start = future_day(7)
    therapists, clients = world.extra["therapists"], world.extra["clients"]
    for day in range(3):
        for hour, minute in ((9, 0), (10, 15)):  # with turnover, the rooms are taken 08:55-11:25: no room for 60 min
            for t, room, client in ((therapists[1], world.room1, clients[0]), (therapists[2], world.room2, clients[1])):
                when = at(start + timedelta(days=day), hour, minute)
                booking.book_appointment(client, world.massage, when, therapist=t, room=room, by=world.owner.user)
    plan = availability.suggest_course(world.extra["course"], world.massage, start, sessions=2)
    assert plan[0].local(LONDON).date() == start + timedelta(days=3)  # no room for anyone before
    assert {s.therapist_id for s in plan} == {world.therapist.pk}
    assert [(s.starts_at, s.therapist_id, s.room_id) for s in plan] == reference(
        world.extra["course"], world.massage, start, 2, availability.MIN_COURSE_GAP_DAYS
    )


@pytest.mark.django_db
def test_course_search_keeps_the_client_free(world):
    """The client's own booking elsewhere (another therapist, another room) blocks that time for the course."""
    start = future_day(7)
    booking.book_appointment(
        world.cora, world.massage, at(start, 9), therapist=world.therapist2, room=world.room2, by=world.owner.user
    )
    plan = availability.suggest_course(world.extra["course"], world.massage, start, sessions=2)
    assert plan[0].starts_at == at(start, 10)  # the client needs no turnover: free from 10:00
    assert plan[0].therapist_id == world.therapist.pk


@pytest.mark.django_db
def test_course_search_queries_do_not_grow_with_the_weeks(world):
    course = world.extra["course"]
    start = future_day(7)
    counts = {}
    for weeks in (3, 6, 12):
        course.weeks = weeks
        with CaptureQueriesContext(connection) as ctx:
            availability.suggest_course(course, world.massage, start, sessions=4)
        counts[weeks] = len(ctx.captured_queries)
    assert counts[3] == counts[6] == counts[12] <= 7, counts


@pytest.mark.django_db
def test_course_search_walking_far_makes_few_queries(world):
    """Nobody can take the course for five weeks: the search walks day by day but asks the database for runs of
    days (1, 2, 4, ...), not once per day."""
    course = world.extra["course"]
    course.weeks = 12
    start = future_day(7)
    for t in world.extra["therapists"]:
        resources.add_absence(t, start, start + timedelta(days=34), by=world.owner.user)
    with CaptureQueriesContext(connection) as ctx:
        plan = availability.suggest_course(course, world.massage, start, sessions=2)
    assert plan[0].local(LONDON).date() == start + timedelta(days=35)
    busy_queries = [q for q in ctx.captured_queries if "scheduling_appointment" in q["sql"]]
    assert len(busy_queries) <= 10, len(busy_queries)  # 35 days walked


@pytest.mark.django_db
def test_a_service_whose_rooms_are_all_closed_gets_no_slots(world):
    hot_stone = resources.create_service(
        world.clinic, by=world.owner.user, name="Hot stones", duration_minutes=60, techniques=["remedial"]
    )
    hot_stone.rooms.set([world.room2])
    day = future_day(7)
    assert {s.room.pk for s in availability.find_slots(hot_stone, day, day)} == {world.room2.pk}
    world.room2.active = False
    world.room2.save()
    assert availability.find_slots(hot_stone, day, day) == []


@pytest.mark.django_db
def test_the_compiled_busy_query_finds_what_the_orm_query_finds(world):
    """`BusyQuery` runs SQL the ORM compiled once, with new values put in: for any windows, `now` and filter it
    returns the same rows, with the same times (as epoch seconds), as the ORM query built afresh, and live rows
    only (a hold counts until it expires; cancelled rows never)."""
    from django.db.models import Q

    from backcare.scheduling.models import Appointment, live_q
    from backcare.scheduling.services.availability import (
        BUSY_FIELDS,
        MAX_BUSY_SPAN,
        ROOM_FIELDS,
        BusyQuery,
        busy_query,
        epoch,
    )

    start = future_day(7)
    therapists, clients = world.extra["therapists"], [world.cora, *world.extra["clients"]]
    made = []
    for day in range(4):
        for i, hour in enumerate((9, 10, 11)):
            made.append(
                booking.book_appointment(
                    clients[(day + i) % len(clients)],
                    world.massage,
                    at(start + timedelta(days=day), hour),
                    therapist=therapists[i],
                    room=(world.room1, world.room2)[(day + i) % 2],
                    by=world.owner.user,
                )
            )
    hold_ends = at(start, 8)
    Appointment.objects.filter(pk__in=[made[1].pk, made[4].pk]).update(status="held", hold_expires_at=hold_ends)
    Appointment.objects.filter(pk=made[2].pk).update(status="cancelled")

    def times(a: Any) -> tuple[Any, ...]:
        return (a.starts_at, a.ends_at, a.busy_from, a.busy_until)

    def orm(who: Q, fields: tuple[Any, ...], lo: Any, hi: Any, now: Any) -> list[tuple[Any, ...]]:
        rows = Appointment.objects.filter(
            live_q(now), who, busy_from__lt=hi, busy_from__gt=lo - MAX_BUSY_SPAN, busy_until__gt=lo
        )
        if fields is ROOM_FIELDS:
            return [(a.room_id, epoch(a.busy_from), epoch(a.busy_until, end=True)) for a in rows]
        return [
            (a.pk, a.therapist_id, a.room_id, a.client_id, *(epoch(m, end=i % 2 == 1) for i, m in enumerate(times(a))))
            for a in rows
        ]

    shapes = [
        (Q(therapist_id=therapists[0].pk), BUSY_FIELDS),
        (Q(client_id=world.cora.pk), BUSY_FIELDS),
        (Q(clinic_id=world.clinic.pk, room_id__in=[world.room1.pk, world.room2.pk]), ROOM_FIELDS),
        (Q(clinic_id=world.clinic.pk), BUSY_FIELDS),
    ]
    windows = [
        (at(start, 0), at(start + timedelta(days=1), 0)),
        (at(start, 10), at(start, 10, 30)),  # inside one appointment's busy time
        (at(start + timedelta(days=1), 10) + timedelta(minutes=5), at(start + timedelta(days=3), 9, 55)),
        (at(start + timedelta(days=9), 0), at(start + timedelta(days=10), 0)),  # nothing there
    ]
    for now in (hold_ends - timedelta(minutes=1), hold_ends):  # the holds count, then they do not
        for who, fields in shapes:
            query = busy_query(who, fields)
            assert busy_query(who, fields) is query  # compiled once
            parts = [(query, lo, hi) for lo, hi in windows]
            expected = sorted(row for lo, hi in windows for row in orm(who, fields, lo, hi, now))
            assert sorted(BusyQuery.run(parts, now)) == expected
        everyone = busy_query(Q(clinic_id=world.clinic.pk), BUSY_FIELDS)
        pks = {row[0] for row in BusyQuery.run([(everyone, at(start, 0), at(start + timedelta(days=5), 0))], now)}
        assert made[2].pk not in pks
        assert (made[1].pk in pks) is (now < hold_ends)


@pytest.mark.django_db
@pytest.mark.parametrize("micro", [0, 1, 1_000, 250_000, 500_000, 999_000, 999_999])
@pytest.mark.parametrize(
    "when",
    [
        (2026, 3, 29, 0, 59, 59),  # the last second before the clocks go forward in London (UTC is stored)
        (2026, 10, 25, 1, 0, 0),
        (2027, 12, 31, 23, 59, 59),
        (2038, 1, 19, 3, 14, 8),  # past 32-bit seconds
        (2099, 2, 28, 12, 30, 0),
    ],
)
def test_the_database_counts_epoch_seconds_as_python_does(when, micro):
    """`Epoch` rounds a start down and an end up in the database, exactly as `epoch` does in Python, so the search
    compares the same intervals whatever the database and however many microseconds a time has."""
    from datetime import UTC, datetime

    from django.db.models import DateTimeField, Value

    from backcare.clinic.models import Clinic
    from backcare.scheduling.services.availability import Epoch, epoch

    moment = datetime(*when, micro, tzinfo=UTC)
    value = Value(moment, output_field=DateTimeField())
    Clinic.objects.create(name="Epoch", time_zone="Europe/London")
    down, up = Clinic.objects.annotate(down=Epoch(value), up=Epoch(value, end=True)).values_list("down", "up").first()
    assert (down, up) == (epoch(moment), epoch(moment, end=True))
    assert down == int(moment.replace(microsecond=0).timestamp())
    assert up == down + (1 if micro else 0)
