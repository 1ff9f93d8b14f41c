"""The calendar's time grid in a real browser (FullCalendar under the site's content security policy): the front
desk drags an appointment to a free time and sees it moved, drags it onto a taken time and sees the conflict message
while the block goes back; a click on an empty time opens the booking form with that time. No CSP violation, no
console error. Screenshots in artifacts/browser/<test name>/."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from clinic_fixtures import PASSWORD, sign

pytestmark = pytest.mark.browser

LONDON = ZoneInfo("Europe/London")


def a_working_day() -> dt.date:
    """A day a week ahead (outside the cancellation window) that is no public holiday."""
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=7)
    while day in holidays.country_holidays("GB"):
        day += dt.timedelta(days=1)
    return day


@pytest.fixture
def booked(live_clinic: Any, live_therapist: Any) -> dict[str, Any]:
    """The front desk ("fred"), a room, a service, the therapist working 09:00-17:00 every day, and two screened,
    consented clients booked with the therapist at 10:00 and 13:00 on a working day."""
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import StaffMember
    from backcare.clinic.services.clients import create_client
    from backcare.clinic.services.screening import run_screening
    from backcare.scheduling.services import booking, resources
    from testkit import make_intake

    desk = StaffMember.objects.create(
        user=get_user_model().objects.create_user(username="fred", password=PASSWORD),
        clinic=live_clinic,
        role="front_desk",
        display_name="Fred Frontdesk",
    )
    owner = StaffMember.objects.create(
        user=get_user_model().objects.create_user(username="olivia", password=PASSWORD),
        clinic=live_clinic,
        role="owner",
        display_name="Olivia Owner",
    )
    room = resources.create_room(live_clinic, "Room 1", by=owner.user)
    room2 = resources.create_room(live_clinic, "Room 2", by=owner.user)
    service = resources.create_service(live_clinic, by=owner.user, name="Remedial massage", duration_minutes=60)
    resources.set_working_hours(live_therapist, {d: [(dt.time(9), dt.time(17))] for d in range(7)}, by=owner.user)
    day = a_working_day()
    made = {}
    for first, hour, where in (("Nora", 10, room), ("Ivan", 13, room2)):
        client = create_client(
            staff=live_therapist,
            therapist=live_therapist,
            first_name=first,
            last_name="Fielding",
            date_of_birth=dt.date(1979, 6, 2),
            sex="female",
            email=f"{first.lower()}@x.test",
        )
        document = make_intake()
        document["id"], document["age"] = f"client-{client.pk}", client.age_on()
        run_screening(client, document, kind="intake")
        sign(client)
        starts = dt.datetime.combine(day, dt.time(hour), tzinfo=LONDON)
        made[first] = booking.book_appointment(
            client, service, starts, therapist=live_therapist, room=where, by=desk.user
        )
    return {"day": day, "nora": made["Nora"], "ivan": made["Ivan"], "room": room}


def sign_in(ui: Any, username: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


def drag_to(ui: Any, block: Any, time: str) -> None:
    """Drag an appointment's block by its top edge to the top of the time grid's row for `time` (HH:MM)."""
    box = block.bounding_box()
    lane = ui.page.locator(f'td.fc-timegrid-slot-lane[data-time="{time}:00"]').bounding_box()
    page = ui.page
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 4)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20, steps=4)
    page.mouse.move(box["x"] + box["width"] / 2, lane["y"] + 4, steps=12)
    page.mouse.up()


def test_front_desk_drags_an_appointment_and_meets_a_taken_time(ui: Any, booked: dict[str, Any]) -> None:
    from backcare.scheduling.models import Appointment

    day, nora = booked["day"], booked["nora"]
    ui.page.set_viewport_size({"width": 1280, "height": 2000})  # the day's grid in view, for the mouse to drag on
    sign_in(ui, "fred")
    ui.goto("/calendar/?date=" + day.isoformat())
    grid = ui.page.locator("[data-grid-mount]")
    block = grid.locator(".fc-timegrid-event", has_text="Nora Fielding")
    block.wait_for()
    assert not ui.page.locator("table.calendar").is_visible()  # the HTML table is the fallback
    ui.shot("time grid")

    # To a free time: moved, and the page says so.
    drag_to(ui, block, "15:00")
    message = ui.page.locator("[data-grid-message]")
    message.filter(has_text="Moved to").wait_for()
    assert "15:00 with Theo Therapist in Room 1" in message.inner_text()
    nora.refresh_from_db()
    assert nora.starts_at == dt.datetime.combine(day, dt.time(15), tzinfo=LONDON)
    ui.page.wait_for_load_state("networkidle")
    ui.shot("moved")

    # Onto Ivan's time (the therapist is taken): the conflict message, the block back at 15:00, nothing changed.
    block = grid.locator(".fc-timegrid-event", has_text="Nora Fielding")
    drag_to(ui, block, "13:00")
    message.filter(has_text="Not moved: the time is taken.").wait_for()
    assert "Theo Therapist" in message.inner_text() and message.get_attribute("role") == "alert"
    ui.page.wait_for_load_state("networkidle")
    assert "15:00" in grid.locator(".fc-timegrid-event", has_text="Nora Fielding").inner_text()
    assert Appointment.objects.get(pk=nora.pk).starts_at == dt.datetime.combine(day, dt.time(15), tzinfo=LONDON)
    ui.shot("conflict")

    # A click on an empty time opens the booking form with that day and time.
    lane = ui.page.locator('td.fc-timegrid-slot-lane[data-time="11:30:00"]')
    with ui.page.expect_navigation():
        lane.click(position={"x": 40, "y": 4})
    assert ui.path().startswith("/appointments/book/")
    assert ui.page.get_by_label("Date").input_value() == day.isoformat()
    assert ui.page.get_by_label("Time").input_value() == "11:30"
    ui.shot("booking form")
    assert not ui.csp_violations, ui.csp_violations
    # The browser logs the drag's 409 answer itself; it is the answer expected.
    assert not ui.unexpected_console_errors("status of 409 (Conflict)"), ui.console_errors
    assert not ui.server_errors, ui.server_errors


def test_phones_get_a_day_list(ui: Any, booked: dict[str, Any]) -> None:
    ui.page.set_viewport_size({"width": 390, "height": 800})
    sign_in(ui, "fred")
    ui.goto("/calendar/?date=" + booked["day"].isoformat())
    ui.page.locator(".fc-list-event", has_text="Nora Fielding").wait_for()
    assert ui.page.locator(".fc-list-event", has_text="Ivan Fielding").is_visible()
    ui.shot("day list", full=False)
    assert not ui.csp_violations, ui.csp_violations
    assert not ui.unexpected_console_errors(), ui.console_errors
