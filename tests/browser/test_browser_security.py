"""In a real browser the pages raise no console errors and break no rule of the content security policy, and the body
map's script (a separate file, since the policy forbids inline scripts) works under that policy."""

from __future__ import annotations

from typing import Any

import pytest

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser


def sign_in(ui: Any, username: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


def test_the_policy_violation_detector_sees_an_inline_script(ui: Any) -> None:
    """The check below can fail: an inline script added to a page is refused by the policy and reported."""
    ui.goto("login")
    ran = ui.page.evaluate(
        """() => {
            const s = document.createElement("script");
            s.textContent = "window.__inlineRan = true";
            document.body.append(s);
            return window.__inlineRan === true;
        }"""
    )
    ui.page.wait_for_timeout(200)
    ui.shot("inline script refused")
    assert ran is False, "the content security policy let an inline script run"
    assert any(v["directive"].startswith("script-src") for v in ui.csp_violations), ui.csp_violations
    assert any("Content Security Policy" in e for e in ui.console_errors), ui.console_errors


def test_pages_raise_no_console_errors_or_policy_violations(ui: Any, live_invitation: Any, live_therapist: Any) -> None:
    from django.contrib.auth import get_user_model

    from backcare.clinic.services.consent import current_consent_text, sign_consent
    from backcare.clinic.services.screening import run_screening
    from conftest import make_intake

    client = live_invitation.client
    client.user = get_user_model().objects.create_user(username="nora", password=PASSWORD)
    client.save(update_fields=["user"])
    text = current_consent_text()
    assert text is not None, "no consent text is published"
    sign_consent(client, text, client.full_name)

    ui.goto("login")
    ui.shot("sign in page")
    sign_in(ui, "nora")
    ui.shot("portal")

    # The online intake's body map: clicking a shape in the drawing ticks the region's checkbox, and again unticks it.
    ui.goto("portal_intake")
    page = ui.page
    shape = page.locator('[data-bodymap] [data-region="lower_back"]').first
    box = page.locator('input[type=checkbox][value="lower_back"]').first
    assert not box.is_checked()
    shape.click()
    assert box.is_checked(), "clicking the lower back on the body map did not tick it (is the body map script blocked?)"
    assert "selected" in (shape.get_attribute("class") or "")
    ui.shot("lower back chosen on the body map")
    shape.click()
    assert not box.is_checked()
    assert "selected" not in (shape.get_attribute("class") or "")
    ui.shot("lower back unticked again")

    # The therapist's pages: the dashboard, and the client's record with a screening and its body map of regions
    # to avoid.
    document = make_intake({"code": "bruise", "region": "upper_back"}, id=f"client-{client.pk}", age=client.age_on())
    run_screening(client, document, kind="intake", by=live_therapist.user)
    page = ui.new_person()
    sign_in(ui, "theo")
    ui.shot("therapist dashboard")
    ui.goto("client_detail", client.pk)
    assert page.locator('[data-bodymap] [data-region="upper_back"].avoid').count() == 1, "no region to avoid drawn"
    ui.shot("client record with the screening")

    ui.page.wait_for_timeout(100)  # let late reports arrive
    assert ui.csp_violations == [], f"content security policy violations: {ui.csp_violations}"
    assert ui.unexpected_console_errors() == [], f"console errors: {ui.console_errors}"
    assert ui.server_errors == [], f"server errors: {ui.server_errors}"
