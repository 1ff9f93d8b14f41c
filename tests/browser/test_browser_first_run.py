"""In a real browser, from an empty database to the clinic's first completed, noted appointment; no admin anywhere.

The first visit is the set-up of the clinic and its owner; the owner sets up an authenticator app, invites a
therapist from the Staff page, adds a room and a service, sets the therapist's weekly hours and adds the first client,
whom they invite to the portal. The therapist opens the emailed link (over real SMTP) and chooses a password; the
client registers from hers, signs the consent and fills in the intake, whose screening asks for a physician's
clearance; the therapist records it, starts the course, books the appointment, and on the day marks the client
arrived, starts the session note from the appointment on Today, and saving the note completes the appointment."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser_journey import client_registers_signs_and_fills_in_the_intake, sign_in
from test_browser_two_factor import App

from browser_support import emailed_link

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "lavender-orbit-kettle-42"
THERAPIST_PASSWORD = "marble-thistle-canoe-88"


def test_a_new_clinic_reaches_its_first_noted_appointment_from_an_empty_database(ui: Any, live_smtp: Any) -> None:
    import datetime as dt
    import re
    import time

    from django.db.models import F
    from django.utils import timezone

    from backcare.clinic.models import Client, Clinic, Course, Screening, StaffMember, TreatmentSession
    from backcare.common import outbox
    from backcare.scheduling.models import Appointment
    from scheduling.test_reminders_smtp import body_text

    page = ui.page
    page.context.set_default_timeout(30_000)  # the first pages of a fresh live server are slow on a busy machine
    ui.goto("/")
    assert ui.path() == "/start/", ui.path()
    ui.shot("the first-run set-up")
    page.get_by_label("Clinic name").fill("Harbour Back Clinic")
    page.get_by_label("Country", exact=True).fill("IE")
    page.get_by_label("Time zone").select_option("Europe/Dublin")
    page.get_by_label("Phone", exact=True).fill("+353 91 000000")
    page.get_by_label("Your name").fill("Orla Owner")
    page.get_by_label("Username", exact=True).fill("orla")
    page.get_by_label("Your email").fill("orla@harbour.example")
    page.get_by_label("Password", exact=True).fill("password")  # too weak: refused beside the field
    page.get_by_label("Password again").fill("password")
    ui.submit(page.get_by_role("button", name="Set up the clinic"))
    assert "Password: This password is too common." in ui.text()
    assert page.get_by_label("Clinic name").input_value() == "Harbour Back Clinic"  # kept
    ui.shot("a weak password refused, the rest kept")
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Password again").fill(OWNER_PASSWORD)
    ui.submit(page.get_by_role("button", name="Set up the clinic"))

    # Every owner signs in with an app: set it up, then the dashboard.
    assert ui.path() == "/account/two-factor/setup/", ui.path()
    app = App(page.locator("#totp-secret").get_attribute("data-secret"))
    page.get_by_label("Code from the app").fill(app.code())
    ui.submit(page.get_by_role("button", name="Confirm and turn on"))
    ui.follow(page.get_by_role("link", name="I have kept them: continue"))
    ui.goto("dashboard")
    assert ui.path() == "/dashboard/"
    ui.shot("the owner's dashboard")
    assert Clinic.objects.get().country == "IE"
    ui.goto("first_run", status=404)  # the set-up is gone

    # The owner invites a therapist, ticking their techniques.
    ui.goto("staff_list")
    ui.follow(page.get_by_role("link", name="Invite a member of staff"))
    page.get_by_label("Name", exact=True).fill("Theo Therapist")
    page.get_by_label("Email", exact=True).fill("theo@harbour.example")
    page.get_by_label("Role", exact=True).select_option("therapist")
    page.get_by_label("Swedish / relaxing massage").check()
    ui.submit(page.get_by_role("button", name="Send the invitation"))
    assert "Theo Therapist is invited" in ui.text() and "Invited, not joined yet" in ui.text()
    ui.shot("the staff list with the invitation")
    theo = StaffMember.objects.get(display_name="Theo Therapist")

    # The owner sets up a room, a service and the therapist's weekly hours, and adds the first client.
    ui.goto("setup_room_add")
    page.locator("#id_name").fill("Room 1")
    ui.submit(page.get_by_role("button", name="Add the room"))
    ui.goto("setup_service_add")
    page.locator("#id_name").fill("Back massage")
    page.locator("#id_duration_minutes").fill("60")
    page.get_by_label("Swedish / relaxing massage").check()
    ui.submit(page.get_by_role("button", name="Add the service"))
    ui.goto("setup_hours", theo.pk)
    for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
        page.get_by_label(f"{day}, block 1 starts").fill("08:00")
        page.get_by_label(f"{day}, block 1 ends").fill("20:00")
    ui.submit(page.get_by_role("button", name="Save the weekly hours"))
    assert theo.working_hours.count() == 7, ui.text()[:600]
    ui.goto("client_create")
    page.locator("#id_first_name").fill("Nora")
    page.locator("#id_last_name").fill("Fielding")
    page.locator("#id_date_of_birth").fill("02/06/1979")
    page.locator("#id_email").fill("nora@harbour.example")
    page.locator("#id_therapist").select_option(label="Theo Therapist")
    ui.submit(page.get_by_role("button", name="Add client"))
    client = Client.objects.get(first_name="Nora")
    ui.goto("invite_client", client.pk)
    ui.submit(page.get_by_role("button", name="Email the invitation"))
    ui.shot("the first client invited to the portal")
    messages = []
    for _ in range(40):  # the outbox sends it (here, or from the server's own worker when it runs one)
        outbox.send_due()
        messages = live_smtp.to("theo@harbour.example")
        if messages:
            break
        time.sleep(0.5)
    assert len(messages) == 1
    link = re.findall(r"https?://\S+/staff/join/\S+/", body_text(messages[0]))[0]

    # The therapist, at another computer, chooses a password from the link.
    ui.new_person()
    ui.goto(link)
    assert "Choose your password" in ui.text() and "theo@harbour.example" in ui.text()
    page = ui.page
    page.get_by_label("New password", exact=True).fill(THERAPIST_PASSWORD)
    page.get_by_label("New password confirmation").fill(THERAPIST_PASSWORD)
    ui.submit(page.get_by_role("button", name="Save my password"))
    assert ui.path() == "/dashboard/", ui.path()
    ui.shot("the therapist's dashboard")
    theo.refresh_from_db()
    theo.user.refresh_from_db()
    assert theo.role == "therapist" and theo.user.has_usable_password() and theo.qualified_techniques

    # The client, at home: registration from the emailed link, consent and the intake (a past blood clot).
    ui.new_person()
    client_registers_signs_and_fills_in_the_intake(ui, client, emailed_link(live_smtp, client.email))
    assert Screening.objects.get(client=client).decision == "clearance_required"

    # The therapist: the clearance, the course, the booking.
    page = ui.new_person()
    sign_in(ui, theo.user.get_username(), THERAPIST_PASSWORD)
    ui.goto("client_detail", client.pk)
    ui.follow(page.get_by_role("link", name="Record the physician's clearance"))
    page.get_by_label("Given by").fill("Dr Amrit Shah, GP")
    page.get_by_label("Date given").fill(dt.date.today().isoformat())
    page.get_by_label("Note").fill("No current clot; massage may go ahead.")
    ui.submit(page.get_by_role("button", name="Record clearance"))
    ui.follow(page.get_by_role("link", name="Start course"))
    ui.submit(page.get_by_role("button", name="Start the course"))
    course = Course.objects.get(client=client)
    ui.goto("appointment_book")
    page.get_by_label("Client: find by name").fill(client.first_name)
    ui.submit(page.get_by_role("button", name="Find client"))
    ui.follow(page.get_by_role("link", name=f"{client.last_name}, {client.first_name}"))
    page.locator("#id_service").select_option(label="Back massage")
    page.locator("#id_day").fill((dt.date.today() + dt.timedelta(days=2)).isoformat())
    page.locator("#id_time").fill("10:00")
    page.locator("#id_therapist").select_option(label="Theo Therapist")
    page.locator("#id_room").select_option(label="Room 1")
    ui.submit(page.get_by_role("button", name="Book", exact=True))
    appointment = Appointment.objects.get(client=client)
    ui.shot("the first appointment booked")

    # The day comes: the appointment is moved to now (time passes only in the database here).
    shift = timezone.now() - dt.timedelta(minutes=5) - appointment.starts_at
    Appointment.objects.filter(pk=appointment.pk).update(
        starts_at=F("starts_at") + shift,
        ends_at=F("ends_at") + shift,
        busy_from=F("busy_from") + shift,
        busy_until=F("busy_until") + shift,
    )
    ui.goto("today")
    row = page.locator("tr", has_text=client.full_name)
    ui.submit(row.get_by_role("button", name="Arrived"))
    appointment.refresh_from_db()
    assert appointment.status == "arrived", ui.text()[:600]
    ui.shot("today with the client arrived")
    ui.submit(page.locator("tr", has_text=client.full_name).get_by_role("button", name="Start the session note"))
    appointment.refresh_from_db()
    assert appointment.status == "in_treatment", ui.text()[:600]
    page.get_by_label("Nothing new").check()
    page.get_by_label("Pain now").fill("6")
    ui.submit(page.get_by_role("button", name="Check and continue"))
    page.get_by_label("Subjective (what the client reports)").fill("Stiff after sitting all week.")
    page.get_by_label("Pain before the session").fill("6")
    page.get_by_label("Pain after the session").fill("4")
    page.get_by_role("combobox", name="Pressure").select_option("2")
    page.get_by_label("Relaxed, comfortable with the pressure").check()
    ui.shot("the session note from the appointment")
    ui.submit(page.get_by_role("button", name="Save session 1"))
    appointment.refresh_from_db()
    session = TreatmentSession.objects.get(course=course, number=1)
    assert appointment.status == "completed" and appointment.session_id == session.pk, ui.text()[:600]
    ui.goto("today")
    ui.shot("today with the first appointment completed")
    # The one 404 is the set-up page asked for above, after the set-up.
    assert not ui.server_errors and not ui.csp_violations and not ui.unexpected_console_errors("/start/")
