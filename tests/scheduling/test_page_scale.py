"""Pages that must not grow with the clinic (issue 14): the staff page, the clinic's settings, the audit view, the
Today page and the set-up page make the same queries for a small clinic and for one with more staff, clients,
appointments (upcoming and cancelled, in every room) and audit events. Run on both databases
(BACKCARE_TEST_DB=postgres)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from sched_helpers import NINE_TO_FIVE, at, future_day

from backcare.scheduling.services import booking, resources
from clinic_fixtures import login

PAGES = ["staff_list", "clinic_settings", "audit_log", "today", "setup"]


def _queries(page_client: Any, name: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = page_client.get(reverse(name))
    assert response.status_code == 200, (name, response.status_code)
    return [q["sql"] for q in queries.captured_queries]


def _grow(world: Any, make_staff: Any, start: int, n: int) -> None:
    """`n` more clients, each with an upcoming appointment and one cancelled (one in each room), and a therapist."""
    by = world.owner.user
    extra = make_staff("therapist", f"extra{start}", f"Extra Therapist {start}", qualified_techniques=["remedial"])
    resources.set_working_hours(extra, NINE_TO_FIVE, by=by)
    for i in range(start, start + n):
        client = world.client()
        day = future_day(3 + i // 4)
        hour = 9 + 2 * (i % 4)
        booking.book_appointment(
            client, world.massage, at(day, hour), therapist=world.therapist, room=world.room1, by=by
        )
        cancelled = booking.book_appointment(
            client, world.massage, at(day, hour + 1), therapist=extra, room=world.room2, by=by
        )
        booking.cancel_appointment(cancelled, by=by)


@pytest.mark.parametrize("name", PAGES)
def test_the_page_makes_the_same_queries_as_the_clinic_grows(
    client: Any, world: Any, make_staff: Any, name: str
) -> None:
    login(client, world.owner.user)
    _grow(world, make_staff, 0, 2)
    _queries(client, name)  # warm: sessions, caches
    small = _queries(client, name)
    _grow(world, make_staff, 2, 14)
    large = _queries(client, name)
    assert len(large) == len(small), "\n".join(large)
