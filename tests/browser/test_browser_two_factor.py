"""In a real browser: an owner sets up an authenticator app at the first sign-in by reading the key from the page,
signs out and in again with a fresh code computed here as an app computes it (RFC 6238), signs in with a recovery
code, and finds that code refused the second time; no page breaks the content security policy."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser

STEP = 30


class App:
    """An authenticator app: the key typed in from the page, the code for now (never one the server saw)."""

    def __init__(self, secret: str) -> None:
        self.key = base64.b32decode(secret + "=" * (-len(secret) % 8))
        self.last_step = -1

    def code(self) -> str:
        now = int(time.time() // STEP)
        step = max(now, self.last_step + 1)  # the server accepts one step ahead (clock drift), never a step reused
        assert step <= now + 1
        self.last_step = step
        return self.code_at(step)

    def code_at(self, step: int) -> str:
        from django_otp.oath import TOTP

        totp = TOTP(self.key, step=STEP)
        totp.time = step * STEP + 1
        return f"{totp.token():06d}"

    def wrong_code(self) -> str:
        now = int(time.time() // STEP)
        near = {self.code_at(t) for t in range(now - 1, now + 3)}
        return next(c for c in ("000000", "111111", "222222", "333333", "444444") if c not in near)


def sign_in(ui: Any, username: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


def sign_out(ui: Any) -> None:
    ui.submit(ui.page.get_by_role("button", name="Sign out"))
    assert ui.path().startswith("/login/")


def code_step(ui: Any, code: str) -> None:
    assert ui.path().startswith("/login/code/"), ui.path()
    ui.page.get_by_label("Code", exact=True).fill(code)
    ui.submit(ui.page.get_by_role("button", name="Continue"))


@pytest.fixture
def live_owner(live_clinic: Any) -> Any:
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import StaffMember

    return StaffMember.objects.create(
        user=get_user_model().objects.create_user(username="olivia", password=PASSWORD),
        clinic=live_clinic,
        role="owner",
        display_name="Olivia Owner",
    )


def test_owner_sets_up_an_app_signs_in_with_a_code_and_with_a_recovery_code(ui: Any, live_owner: Any) -> None:
    from backcare.clinic.models import AuditEvent

    page = ui.page
    sign_in(ui, "olivia")
    # Owners must use an app: the set-up comes first, and no other page opens until it is done.
    assert ui.path() == "/account/two-factor/setup/", ui.path()
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 100"), "the QR code shows"
    ui.shot("set-up page with the QR code and the key")
    ui.goto("dashboard")
    assert ui.path() == "/account/two-factor/setup/"
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    assert secret and page.locator("#totp-secret").inner_text().replace(" ", "") == secret
    app = App(secret)

    page.get_by_label("Code from the app").fill(app.wrong_code())
    ui.submit(page.get_by_role("button", name="Confirm and turn on"))
    assert "That code did not match" in ui.text()
    ui.shot("a wrong code is refused beside the field")
    time.sleep(1.1)  # the wait after one wrong code
    page.get_by_label("Code from the app").fill(app.code())
    ui.submit(page.get_by_role("button", name="Confirm and turn on"))
    assert "Two-factor sign-in is on" in ui.text()
    codes = [c.strip() for c in page.locator("#recovery-codes code").all_inner_texts()]
    assert len(codes) == 10
    ui.shot("recovery codes shown once")
    ui.follow(page.get_by_role("link", name="I have kept them: continue"))
    ui.goto("dashboard")
    assert ui.path() == "/dashboard/"

    # Signed out and in again: a fresh code from the app.
    sign_out(ui)
    sign_in(ui, "olivia")
    ui.shot("the code step after the password")
    ui.goto("dashboard")
    assert ui.path().startswith("/login/code/"), "no page opens before the code"
    code_step(ui, app.code())
    assert ui.path() == "/dashboard/"
    ui.shot("dashboard after the code")

    # No phone: a recovery code, once.
    sign_out(ui)
    sign_in(ui, "olivia")
    code_step(ui, codes[0])
    assert ui.path() == "/dashboard/"
    assert "You signed in with a recovery code" in ui.text() and "9 left" in ui.text()
    ui.shot("signed in with a recovery code")
    sign_out(ui)
    sign_in(ui, "olivia")
    code_step(ui, codes[0])
    assert ui.path().startswith("/login/code/") and "used already" in ui.text()
    ui.shot("the same recovery code refused")

    actions = list(AuditEvent.objects.filter(user=live_owner.user).values_list("action", flat=True))
    assert actions.count("two_factor_sign_in") == 2 and "two_factor_enrol" in actions
    assert "two_factor_refused" in actions and "two_factor_setup_refused" in actions
    assert not ui.csp_violations, ui.csp_violations
    assert not ui.unexpected_console_errors(), ui.console_errors
    assert not ui.server_errors, ui.server_errors
