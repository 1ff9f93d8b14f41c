"""The calendar reads only what it shows: live appointments by default, cancelled ones when asked for, never expired
or declined offers, in a number of queries that does not grow with the rows (backcare.scheduling.selectors)."""

from __future__ import annotations

import html as html_lib
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from sched_helpers import LONDON, at, build_world, future_day

from backcare.scheduling.models import Appointment
from backcare.scheduling.selectors import calendar as selector
from backcare.scheduling.services import booking
from backcare.scheduling.services.availability import day_bounds
from clinic_fixtures import login


@pytest.fixture
def world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record):
    return build_world(clinic, owner, therapist, therapist2, front_desk, make_client, screen_client, client_record)


def book(world, client, start, **kw):
    return booking.book_appointment(
        client, world.massage, start, therapist=world.therapist, room=world.room1, by=world.front_desk.user, **kw
    )


def row(world, start, status=Appointment.Status.BOOKED, client=None):
    """A booked row at any time (outside working hours too: the calendar shows what is there)."""
    return history(world, None, 1, status, start=start, client=client)[0]


def history(world, day, n, status, *, start=None, client=None):
    """`n` rows of the day that take no time (cancelled, or lapsed offers), as years of history leave them."""
    rows = []
    for i in range(n):
        start = start or at(day, 8) + timedelta(minutes=5 * i)
        rows.append(
            Appointment(
                clinic=world.clinic,
                client=client or world.cora,
                therapist=world.therapist,
                room=world.room1,
                service=world.massage,
                starts_at=start,
                ends_at=start + timedelta(hours=1),
                busy_from=start,
                busy_until=start + timedelta(hours=1),
                status=status,
                hold_expires_at=timezone.now() - timedelta(hours=1) if status in ("expired", "declined") else None,
                cancelled_at=timezone.now() if status == "cancelled" else None,
                cancel_reason="Client ill" if status == "cancelled" else "",
            )
        )
        start = None
    return Appointment.objects.bulk_create(rows)


def text(response):
    assert response.status_code == 200
    return html_lib.unescape(response.content.decode())


def test_live_appointments_by_default_and_cancelled_when_asked_for(client, world):
    day = future_day(7)
    book(world, world.cora, at(day, 10))
    gone = book(world, world.client("Gina"), at(day, 12))
    booking.cancel_appointment(gone, by=world.front_desk.user, reason="Moved away")
    history(world, day, 1, Appointment.Status.EXPIRED)
    history(world, day, 1, Appointment.Status.DECLINED)
    login(client, world.front_desk.user)
    url = reverse("calendar") + f"?date={day.isoformat()}"
    page = text(client.get(url))
    assert "Cora Client" in page and "Gina" not in page and "Moved away" not in page
    assert "Show cancelled" in page and "cancelled=1" in page
    shown = text(client.get(url + "&cancelled=1"))
    assert "Gina" in shown and "Cancelled: Moved away" in shown and "Hide cancelled" in shown
    # Moving to the next day keeps the choice; the lapsed offers never show.
    assert "cancelled=1" in shown.split('rel="next"')[0].rsplit("href=", 1)[1]
    rows = client.get(url + "&cancelled=1").context["rows"]
    kinds = sorted(e.kind for r in rows for c in r.cells for e in c.entries)
    assert kinds == ["booked", "cancelled"]


def test_the_grid_reads_only_the_rows_it_shows(world):
    day = future_day(7)
    live = book(world, world.cora, at(day, 10))
    history(world, day, 20, Appointment.Status.CANCELLED)
    history(world, day, 20, Appointment.Status.EXPIRED)
    lo, hi = day_bounds(day, day, LONDON)
    now = timezone.now()
    assert [a.pk for a in selector.appointments(world.clinic, lo, hi, now=now)] == [live.pk]
    with_cancelled = selector.appointments(world.clinic, lo, hi, now=now, cancelled=True)
    assert sorted({a.status for a in with_cancelled}) == ["booked", "cancelled"] and len(with_cancelled) == 21
    # An appointment of the day before that ends before the window is not read; one running into it is.
    late = row(world, at(day, 0) - timedelta(minutes=30))
    assert late.pk in {a.pk for a in selector.appointments(world.clinic, lo, hi, now=now)}
    row(world, at(day, 0) - timedelta(hours=3))
    assert {a.pk for a in selector.appointments(world.clinic, lo, hi, now=now)} == {live.pk, late.pk}


@pytest.mark.parametrize("cancelled", ["", "1"])
def test_week_query_count_does_not_grow_with_the_rows(client, world, cancelled):
    day = future_day(14, weekday=0)
    login(client, world.front_desk.user)
    url = reverse("calendar") + f"?date={day.isoformat()}&view=week&cancelled={cancelled}"

    def fill(n):
        for d in range(5):
            history(world, day + timedelta(days=d), n, Appointment.Status.CANCELLED)
            history(world, day + timedelta(days=d), n, Appointment.Status.EXPIRED)

    fill(1)
    row(world, at(day, 17))
    with CaptureQueriesContext(connection) as few:
        text(client.get(url))
    fill(10)
    for d in range(1, 5):
        row(world, at(day + timedelta(days=d), 17), client=world.client())
    with CaptureQueriesContext(connection) as many:
        page = text(client.get(url))
    assert len(many) == len(few), [q["sql"][:100] for q in many]
    assert page.count("Client ill") == (55 if cancelled else 0)
