"""In a real browser, with a real SMTP server on loopback: the front desk books while the mail server is down, the
owner sees on the dashboard that an email failed, opens the outbox and, the mail server back, retries it: the
confirmation arrives once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from test_outbox import started_again
from test_pages_browser import sign_in
from test_reminders_smtp import smtp_server

from backcare.common.models import OutboundMessage
from browser_support import pass_code_step

pytestmark = pytest.mark.browser


def test_a_failed_email_is_shown_to_the_owner_and_retried(
    ui: Any,
    live_world: dict[str, Any],
    live_therapist: Any,
    settings: Any,
) -> None:
    settings.BACKCARE_OUTBOX = {**settings.BACKCARE_OUTBOX, "MAX_ATTEMPTS": 1}  # the first failure is the last
    day = dt.date.today() + dt.timedelta(days=7)
    with smtp_server() as (controller, inbox):
        port = controller.port
        controller.stop()  # the mail server is down
        sign_in(ui, "fred")
        chosen = {
            "client": live_world["client"].pk,
            "service": live_world["service"].pk,
            "therapist": live_therapist.pk,
            "room": live_world["room"].pk,
            "day": day.isoformat(),
            "time": "10:00",
        }
        ui.goto(ui.url("appointment_book") + "?" + "&".join(f"{k}={v}" for k, v in chosen.items()))
        ui.submit(ui.page.get_by_role("button", name="Book", exact=True))
        assert "Booked: Nora Fielding, Remedial massage" in ui.text()
        message = OutboundMessage.objects.get(kind="scheduling.booked")
        assert message.status == "failed" and "Connection refused" in message.last_error
        ui.goto("outbox", status=403)  # not the front desk's page

        ui.new_person()
        sign_in(ui, "olivia")
        pass_code_step(ui, live_world["owner"].user)  # owners sign in with an authenticator app
        assert "1 email to clients could not be sent." in ui.text()
        ui.shot("dashboard")
        ui.follow(ui.page.get_by_role("link", name="See the outbox"))
        row = ui.page.get_by_role("row").filter(has_text="nora@x.test")
        assert "Booking confirmation" in row.inner_text() and "Failed" in row.inner_text()
        assert "Connection refused" in row.inner_text()
        ui.shot("outbox with a failed email")

        with started_again(port, inbox):
            ui.submit(row.get_by_role("button", name="Try again now"))
            assert "The email will be tried again now." in ui.text()
            assert "Nothing is waiting: every email has been sent." in ui.text()
            ui.shot("sent")
            [email] = inbox.to("nora@x.test")
    assert str(email["subject"]).startswith("Booked: Remedial massage on")
    message.refresh_from_db()
    assert message.status == "sent"
    assert not ui.csp_violations, ui.csp_violations
    assert not ui.unexpected_console_errors("403 (Forbidden)"), ui.console_errors  # the front desk's refusal
    assert not ui.server_errors, ui.server_errors
