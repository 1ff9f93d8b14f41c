"""Two application server processes sharing one database, 16 browsers racing for the same slots through the real
booking page: zero double bookings and zero server errors. Runs on SQLite (one file, two processes) and, in the
PostgreSQL run of the suite, on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import threading
import uuid
from pathlib import Path

import holidays
import pytest

from process_support import BACKCARE, Browser, free_port, fresh_database, process_env, served

THREADS = 16
DATABASE = "backcare_race_servers" + os.environ.get("PYTEST_XDIST_WORKER", "")  # one per xdist worker

SETUP = """
import json
from backcare.demo.clinic import demo_clinic
from backcare.clinic.models import StaffMember
from backcare.clinic.services import clients
import datetime as dt
clinic = demo_clinic()
front = StaffMember.objects.get(user__username="frontdesk")
therapist = StaffMember.objects.get(user__username="therapist1")
made = [clients.create_client(staff=front, therapist=therapist, first_name=f"Racer{i}", last_name="Client",
        date_of_birth=dt.date(1980, 1, 1 + i)).pk for i in range(THREADS)]
print(json.dumps({"clients": made, "therapist": therapist.pk,
    "room": clinic.rooms.order_by("name").first().pk,
    "service": clinic.services.get(assessment=True).pk}))
""".replace("THREADS", str(THREADS))

REPORT = """
import json
from backcare.scheduling.models import Appointment
rows = Appointment.objects.filter(status="booked").values_list(
    "therapist_id", "room_id", "client_id", "busy_from", "busy_until", "starts_at", "ends_at", "override")
print(json.dumps([[t, r, c, bf.isoformat(), bu.isoformat(), s.isoformat(), e.isoformat(), o]
                  for t, r, c, bf, bu, s, e, o in rows]))
"""


def manage_shell(env: dict[str, str], code: str) -> str:
    done = subprocess.run(
        [str(BACKCARE), "manage", "shell", "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # the JSON line the code printed last


def rounds() -> list[tuple[str, str]]:
    """Twelve slots on two weekdays three weeks ahead (outside the demo's own bookings and any cancel window)."""
    day = dt.date.today() + dt.timedelta(days=21)
    days = []
    while len(days) < 2:
        if day.weekday() < 5 and day not in holidays.country_holidays("GB", years=day.year):  # closed for booking
            days.append(day)
        day += dt.timedelta(days=1)
    times = ["09:00", "10:10", "11:20", "14:00", "15:10", "16:20"]
    return [(d.isoformat(), t) for d in days for t in times]


def overlaps(rows: list[list[object]], index: int) -> list[tuple[object, object]]:
    """Pairs of live appointments holding the same therapist/room (busy time) or client (own time) at once."""
    found = []
    start, end = (3, 4) if index in (0, 1) else (5, 6)
    ordered = sorted(rows, key=lambda r: (r[index], r[start]))
    for a, b in itertools.pairwise(ordered):
        if a[index] == b[index] and b[start] < a[end] and not (a[7] or b[7]):
            found.append((a, b))
    return found


@pytest.mark.long
def test_two_servers_never_double_book(tmp_path: Path) -> None:
    fresh_database(DATABASE)
    env = process_env(tmp_path / "clinic", DATABASE)
    demo = subprocess.run([str(BACKCARE), "demo"], env=env, capture_output=True, text=True, timeout=300)
    assert demo.returncode == 0, demo.stderr
    world = json.loads(manage_shell(env, SETUP))
    ports = [free_port(), free_port()]
    slots = rounds()
    statuses: list[int] = []
    problems: list[str] = []
    barrier = threading.Barrier(THREADS)

    def racer(i: int) -> None:
        browser = Browser(f"http://127.0.0.1:{ports[i % 2]}")
        try:
            browser.login("frontdesk", "demo-frontdesk-2026")
            for day, time in slots:
                barrier.wait(timeout=120)
                status, body = browser.post(
                    "/appointments/book/",
                    {
                        "client": str(world["clients"][i]),
                        "service": str(world["service"]),
                        "therapist": str(world["therapist"]),
                        "room": str(world["room"]),
                        "day": day,
                        "time": time,
                        "submission_key": uuid.uuid4().hex,
                    },
                )
                statuses.append(status)
                if status not in (302, 409):
                    problems.append(f"{day} {time}: HTTP {status}: {body[:300]}")
        except Exception as e:
            problems.append(repr(e))
            barrier.abort()

    with served(env, ports[0]), served(env, ports[1]):
        threads = [threading.Thread(target=racer, args=(i,)) for i in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=600)
    assert not problems, problems[:5]
    assert len(statuses) == THREADS * len(slots)
    assert statuses.count(302) == len(slots), "each contested slot is booked exactly once"
    rows = json.loads(manage_shell(env, REPORT))
    for index, what in ((0, "therapist"), (1, "room"), (2, "client")):
        assert overlaps(rows, index) == [], f"a {what} is double-booked"
