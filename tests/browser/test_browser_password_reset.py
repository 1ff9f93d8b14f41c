"""A forgotten password, reset end to end in a real browser: the link comes in an email that a real SMTP server on
loopback received; the new password works, the old one no longer does, and a session signed in elsewhere ends."""

from __future__ import annotations

import re
from typing import Any

import pytest

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser

NEW_PASSWORD = "copper-meadow-lantern-83"


def sign_in(ui: Any, username: str, password: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(password)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


def test_a_therapist_resets_a_forgotten_password(ui: Any, live_therapist: Any, live_smtp: Any) -> None:
    from backcare.clinic.services.mail import wait_for_sent
    from scheduling.test_reminders_smtp import body_text

    # Signed in at another computer, which the reset must sign out.
    sign_in(ui, "theo", PASSWORD)
    other_computer = ui.context.cookies()
    ui.new_person()
    page = ui.page

    ui.goto("login")
    ui.follow(page.get_by_role("link", name="Forgotten your password?"))
    ui.shot("forgotten password page")
    page.get_by_label("Email address").fill("not an address")
    ui.submit(page.get_by_role("button", name="Email me a link"))
    assert "Email address: enter an address such as name@example.org." in ui.text()
    assert page.get_by_label("Email address").input_value() == "not an address"
    ui.shot("a bad address is named")
    page.get_by_label("Email address").fill("theo@x.test")
    ui.submit(page.get_by_role("button", name="Email me a link"))
    assert "Check your email" in ui.text()
    ui.shot("check your email")

    wait_for_sent()
    messages = live_smtp.to("theo@x.test")
    assert len(messages) == 1, live_smtp.subjects()
    links = re.findall(r"https?://\S+/password/reset/\S+/", body_text(messages[0]))
    assert len(links) == 1 and links[0].startswith(ui.base_url), links
    ui.goto(links[0])
    assert "/set-password/" in ui.path(), "the token stays in the address bar"
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password confirmation").fill(NEW_PASSWORD)
    ui.shot("choose a new password")
    ui.submit(page.get_by_role("button", name="Save the new password"))
    assert "Your new password is saved" in ui.text()
    ui.shot("new password saved")

    sign_in(ui, "theo", PASSWORD)
    assert "did not match" in ui.text()
    sign_in(ui, "theo", NEW_PASSWORD)
    assert ui.path() == ui.url("dashboard").removeprefix(ui.base_url), ui.path()
    ui.shot("signed in with the new password")
    # The link works once.
    ui.goto(links[0])
    assert "This link cannot be used" in ui.text()

    # The other computer's session has ended.
    ui.new_person()
    ui.context.add_cookies(other_computer)
    ui.goto("dashboard")
    assert ui.path().startswith(ui.url("login").removeprefix(ui.base_url)), ui.path()
    assert ui.server_errors == [], ui.server_errors
    assert ui.unexpected_console_errors() == [], ui.unexpected_console_errors()
    assert ui.csp_violations == [], ui.csp_violations
