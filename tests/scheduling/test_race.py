"""Races: 16 threads, each with its own database connection, compete for overlapping times in 50 trials (the same
therapist, the same room, the same client, moves into a taken time, waitlist holds against bookings). With the guard
on, exactly one wins each trial and nothing overlaps; with the guard off (the control), double bookings do happen,
which shows the test can fail. Runs on SQLite and on PostgreSQL (BACKCARE_TEST_DB=postgres)."""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
import traceback
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, connections
from sched_helpers import GB_HOLIDAYS, NINE_TO_FIVE, at, future_day, live_overlaps

from backcare.scheduling import locking
from backcare.scheduling.services import booking, resources, waitlist
from backcare.scheduling.services.booking import BookingConflict

THREADS = 16
TRIALS = 50
SCENARIOS = ("same therapist", "same room", "same client", "reschedule", "waitlist holds")


@pytest.fixture
def race_db(transactional_db: Any) -> Iterator[None]:
    """pytest-django's SQLite test database lives in memory (shared cache), where concurrent writers fail with
    "table is locked" instead of waiting. For the race, copy the fresh database to a file (WAL, like production)
    and point the default alias there, for this thread and the workers, from before the fixtures write until the
    end; the in-memory database stays untouched. On PostgreSQL every thread simply opens its own connection."""
    if connection.vendor != "sqlite" or not connection.is_in_memory_db():
        yield
        return
    folder = tempfile.mkdtemp(prefix="backcare-race-")
    path = str(Path(folder) / "race.sqlite3")
    connection.ensure_connection()
    target = sqlite3.connect(path)
    connection.connection.backup(target)
    target.close()
    old_settings, old_wrapper = connections.settings["default"], connections["default"]
    connections.settings["default"] = {**old_settings, "NAME": path}
    connections["default"] = connections.create_connection("default")
    try:
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = old_settings
        connections["default"] = old_wrapper


@pytest.fixture
def world(race_db, world, clinic, owner, make_staff):
    """The scheduling world (conftest) built in the race's database file (race_db first), with a therapist, a room
    and a client for every thread."""
    w = world
    w.extra["therapists"] = [w.therapist, w.therapist2] + [
        make_staff("therapist", f"t{i}", f"Therapist {i}", qualified_techniques=["remedial"]) for i in range(2, THREADS)
    ]
    for t in w.extra["therapists"][2:]:
        resources.set_working_hours(t, NINE_TO_FIVE, by=owner.user)
    w.extra["rooms"] = [w.room1, w.room2] + [
        resources.create_room(clinic, f"Room {i + 1}", by=owner.user) for i in range(2, THREADS)
    ]
    w.extra["clients"] = [w.cora] + [w.client() for _ in range(1, THREADS)]
    return w


class Race:
    def __init__(self, world: Any, trials: int = TRIALS) -> None:
        self.w = world
        self.trials = trials
        self.therapists = world.extra["therapists"]
        self.rooms = world.extra["rooms"]
        self.clients = world.extra["clients"]
        self.first_day = future_day(3)
        self.start = threading.Barrier(THREADS + 1)
        self.done = threading.Barrier(THREADS + 1)
        self.trial = 0
        self.prepared: dict[str, Any] = {}
        self.wins: Counter[int] = Counter()
        self.conflicts = 0
        self.by_database = 0
        self.unexpected: list[str] = []
        self.lock = threading.Lock()
        self.overlaps: list[str] = []

    def day(self, trial: int) -> Any:
        """The trial's own day: the trial-th day from the first that is not a public holiday (closed for booking)."""
        day, left = self.first_day, trial
        while day in GB_HOLIDAYS or left:
            if day not in GB_HOLIDAYS:
                left -= 1
            day += timedelta(days=1)
        return day

    def prepare(self, trial: int) -> None:
        """Main thread, before the trial: what the scenario needs to exist already."""
        day, scenario = self.day(trial), SCENARIOS[trial % len(SCENARIOS)]
        by = self.w.front_desk.user
        if scenario == "reschedule":
            self.prepared["appointments"] = [
                booking.book_appointment(
                    self.clients[i], self.w.massage, at(day, 9), therapist=self.therapists[i], room=self.rooms[i], by=by
                )
                for i in range(THREADS)
            ]
        elif scenario == "waitlist holds":
            self.prepared["entries"] = [
                waitlist.join_waitlist(self.clients[i], self.w.massage, day, day, by=by) for i in range(THREADS)
            ]

    def attempt(self, i: int, trial: int) -> Any:
        """Thread i's move in this trial; every thread's time overlaps every other's (offsets under an hour)."""
        day, scenario = self.day(trial), SCENARIOS[trial % len(SCENARIOS)]
        when = at(day, 10) + timedelta(minutes=3 * i)
        by = self.w.front_desk.user
        c, t, r = self.clients, self.therapists, self.rooms
        if scenario == "same therapist":
            return booking.book_appointment(c[i], self.w.massage, when, therapist=t[0], room=r[i], by=by)
        if scenario == "same room":
            return booking.book_appointment(c[i], self.w.massage, when, therapist=t[i], room=r[0], by=by)
        if scenario == "same client":
            return booking.book_appointment(c[0], self.w.massage, when, therapist=t[i], room=r[i], by=by)
        if scenario == "reschedule":
            mine = self.prepared["appointments"][i]
            return booking.reschedule_appointment(mine, at(day, 13) + timedelta(minutes=3 * i), therapist=t[0], by=by)
        if i % 2 == 0:  # waitlist holds against each other and against ordinary bookings
            entry = self.prepared["entries"][i]
            return waitlist.place_hold(entry, therapist=t[0], room=r[0], starts_at=at(day, 10))
        return booking.book_appointment(c[i], self.w.massage, when, therapist=t[0], room=r[i], by=by)

    def worker(self, i: int) -> None:
        try:
            for trial in range(self.trials):
                self.start.wait()
                try:
                    self.attempt(i, trial)
                    with self.lock:
                        self.wins[trial] += 1
                except BookingConflict as conflict:
                    with self.lock:
                        self.conflicts += 1
                        self.by_database += conflict.__cause__ is not None  # the constraint refused the write
                except Exception:
                    with self.lock:
                        self.unexpected.append(traceback.format_exc())
                self.done.wait()
        finally:
            connections.close_all()  # this thread's own connection

    def run(self) -> None:
        threads = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        try:
            for trial in range(self.trials):
                self.prepare(trial)
                self.start.wait(timeout=60)
                self.done.wait(timeout=60)
        finally:
            for thread in threads:
                thread.join(timeout=60)


def run_race(world: Any, *, guarded: bool, monkeypatch: pytest.MonkeyPatch, trials: int = TRIALS) -> Race:
    monkeypatch.setattr(locking, "GUARDED", guarded)
    monkeypatch.setattr(locking, "RACE_PAUSE_SECONDS", 0.001)
    race = Race(world, trials)
    # Threads coming back from the database wait for the GIL behind the others (5 ms by default); a shorter switch
    # interval keeps the lock holder moving, so the race takes seconds, not tens of seconds.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)
    try:
        race.run()
    finally:
        sys.setswitchinterval(interval)
    race.overlaps = live_overlaps()
    return race


@pytest.mark.long
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("process_lock", "advisory_lock", "trials"),
    [(True, True, TRIALS), (False, False, 10)],
    ids=["guarded", "database-guarantee-only"],
)
def test_no_double_booking_under_a_race(world, monkeypatch, process_lock, advisory_lock, trials):
    """`database-guarantee-only` leaves out SQLite's in-process queue, so BEGIN IMMEDIATE alone must hold, and on
    PostgreSQL the advisory lock, so the exclusion constraints alone must hold (fewer trials: SQLite's busy handler
    polls slowly, PostgreSQL's deadlock detector waits a second)."""
    monkeypatch.setattr(locking, "PROCESS_LOCK", process_lock)
    monkeypatch.setattr(locking, "ADVISORY_LOCK", advisory_lock)
    race = run_race(world, guarded=True, monkeypatch=monkeypatch, trials=trials)
    assert race.unexpected == [], race.unexpected[0]
    assert race.overlaps == []
    assert all(race.wins[trial] == 1 for trial in range(trials)), race.wins
    assert race.conflicts == trials * (THREADS - 1)
    if connection.vendor == "postgresql" and not advisory_lock:
        assert race.by_database > 0  # the exclusion constraints really were what refused some of them


@pytest.mark.django_db(transaction=True)
def test_control_without_the_guard_double_books(world, monkeypatch):
    """The same race with the guard switched off: the check runs before the write instead of under the lock, and
    the database constraints are bypassed. Double bookings must appear, or the race above proves nothing."""
    race = run_race(world, guarded=False, monkeypatch=monkeypatch, trials=10)
    assert race.overlaps, "no double booking without the guard: the race test cannot detect a broken guard"
    assert sum(race.wins.values()) > 10
