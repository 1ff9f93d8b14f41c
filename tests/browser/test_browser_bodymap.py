"""The session note's body map in a real browser on a phone-sized screen: the drawing fits the screen, a region is
chosen by keyboard (its box focused outlines it on the drawing, Space ticks it and colours both its shapes) or by
tapping its shape on the back view, and the note stores the usual {code: marks} chart."""

from __future__ import annotations

from typing import Any

import pytest

from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser


def classes(page: Any, code: str) -> list[str]:
    shapes = page.locator(f'[data-bodymap="treated"] [data-region="{code}"]')
    return [shapes.nth(i).get_attribute("class") or "" for i in range(shapes.count())]


def test_body_map_on_a_phone_by_keyboard_and_by_tapping(ui, live_therapist, live_client, screen_client):
    from backcare.clinic.models import TreatmentSession
    from backcare.clinic.services import courses, sessions

    screen_client(live_client)
    course = courses.start_course(live_client, staff=live_therapist)
    update = sessions.health_update(course, staff=live_therapist, new_findings=[], pain_now=4)
    page = ui.page
    page.set_viewport_size({"width": 390, "height": 844})
    ui.goto("login")
    page.get_by_label("Username").fill("theo")
    page.get_by_label("Password").fill(PASSWORD)
    ui.submit(page.get_by_role("button", name="Sign in", exact=True))
    ui.goto("session_record", course.pk, update.pk)
    box = page.locator('[data-bodymap="treated"] svg').bounding_box()
    assert box is not None and 300 <= box["width"] <= 390, box
    # Keyboard: focus the box, the region is outlined; Space ticks it and both its shapes (front and back) colour.
    shoulder = page.locator('input[name="treated"][value="shoulder_left"]')
    shoulder.focus()
    assert all("focus" in c for c in classes(page, "shoulder_left")) and len(classes(page, "shoulder_left")) == 2
    page.keyboard.press("Space")
    assert shoulder.is_checked()
    assert all("selected" in c for c in classes(page, "shoulder_left"))
    # Tapping the back of the right thigh ticks the right thigh.
    page.locator('[data-bodymap="treated"] [data-region="thigh_right"]').nth(1).click()
    assert page.locator('input[name="treated"][value="thigh_right"]').is_checked()
    ui.shot("body map on a phone")
    page.locator('input[name="techniques"][value="remedial"]').check()
    page.locator("#id_pressure").select_option("3")
    page.locator('input[name="response"][value="relaxed"]').check()
    page.locator("#id_pain_after").fill("2")
    ui.submit(page.get_by_role("button", name="Save session 1"))
    session = TreatmentSession.objects.get(course=course)
    assert session.body_chart == {"shoulder_left": {"treated": True}, "thigh_right": {"treated": True}}
    assert not ui.unexpected_console_errors() and not ui.csp_violations and not ui.server_errors
