"""In a real browser, from an empty database: the first visit is the set-up of the clinic and its owner, the owner
sets up an authenticator app and reaches the dashboard, invites a therapist from the Staff page, and the therapist
opens the emailed link (over real SMTP), chooses a password and reaches their dashboard; no admin anywhere."""

from __future__ import annotations

from typing import Any

import pytest
from test_browser_two_factor import App

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "lavender-orbit-kettle-42"
THERAPIST_PASSWORD = "marble-thistle-canoe-88"


def test_a_new_clinic_starts_from_an_empty_database(ui: Any, live_smtp: Any) -> None:
    import re
    import time

    from backcare.clinic.models import Clinic, StaffMember
    from backcare.common import outbox
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
    theo = StaffMember.objects.get(display_name="Theo Therapist")
    assert theo.role == "therapist" and theo.user.has_usable_password() and theo.qualified_techniques
    # The one 404 is the set-up page asked for above, after the set-up.
    assert not ui.server_errors and not ui.csp_violations and not ui.unexpected_console_errors("/start/")
