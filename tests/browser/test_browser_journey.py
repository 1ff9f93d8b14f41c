"""The clinic's main journey in a real browser, from the client's invitation to the reassessment.

The therapist emails the client an invitation (the page never shows its link); the link is read from the email as
a real SMTP server on loopback received it. The client confirms her date of birth, registers, signs the consent
and fills in the online intake (the body map clicked in the drawing), answering "yes" to a past blood clot, so the
screening asks for a physician's clearance. The therapist sees this, cannot start a course, records the clearance,
starts the course from the plan, records two sessions (each after the health update), and at the reassessment
finds no meaningful improvement, which prompts a change of technique or a referral. Screenshots of every step are
kept in artifacts/browser/test_clinic_journey/. A second test hands the registration over on the clinic's device.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from browser_support import emailed_link
from clinic_fixtures import PASSWORD

pytestmark = pytest.mark.browser

CLIENT_PASSWORD = "Quiet-harbour-lantern-47"
MEDICALLY_ASSESSED = "Has a doctor (or other medical professional) seen you about this bout of pain?"
NOTES = "I sit at a desk all day; mornings are the worst."


def radio(page: Any, name: str, value: str) -> Any:
    return page.locator(f'input[type=radio][name="{name}"][value="{value}"]')


def checkbox(page: Any, name: str, value: str) -> Any:
    return page.locator(f'input[type=checkbox][name="{name}"][value="{value}"]')


def yes_no_questions(page: Any) -> list[str]:
    """The names of the yes/no questions the page shows now, in page order."""
    names: list[str] = page.eval_on_selector_all(
        'input[type=radio][value="no"]',
        """els => [...new Set(els.filter(e => e.getClientRects().length > 0).map(e => e.name))]""",
    )
    return names


def sign_in(ui: Any, username: str, password: str) -> None:
    ui.goto("login")
    ui.page.get_by_label("Username").fill(username)
    ui.page.get_by_label("Password").fill(password)
    ui.submit(ui.page.get_by_role("button", name="Sign in", exact=True))


def therapist_emails_the_invitation(ui: Any, client: Any, inbox: Any) -> str:
    """The therapist sends the invitation from the client's record; returns the link the client's email holds."""
    page = ui.page
    sign_in(ui, "theo", PASSWORD)
    ui.goto("client_detail", client.pk)
    ui.follow(page.get_by_role("link", name="Invite to portal"))
    ui.shot("invitation page by email or hand-over")
    ui.submit(page.get_by_role("button", name="Email the invitation"))
    assert f"The invitation was emailed to {client.email}" in ui.text(), ui.text()[:600]
    assert "/register/" not in page.content(), "the invitation page shows the link to staff"
    ui.shot("invitation emailed and no link shown")
    return emailed_link(inbox, client.email)


def client_registers_signs_and_fills_in_the_intake(ui: Any, client: Any, link: str) -> None:
    page = ui.page

    # The link from the email opens the registration page; the date of birth shows it is hers.
    ui.goto(link)
    assert client.first_name in ui.text()
    ui.shot("client opens the link from the email")
    page.get_by_label("Your date of birth").fill(client.date_of_birth.strftime("%d/%m/%Y"))
    page.get_by_label("Username").fill("nora.fielding")
    page.get_by_label("Password", exact=True).fill(CLIENT_PASSWORD)
    page.get_by_label("Password again").fill(CLIENT_PASSWORD)
    ui.shot("client confirms her date of birth and chooses a username and password")
    ui.submit(page.get_by_role("button", name="Create my account"))
    client.refresh_from_db()
    assert client.user is not None and client.user.username == "nora.fielding"

    # The consent form, signed with the typed full name.
    assert ui.path().startswith(ui.url("consent").removeprefix(ui.base_url)), ui.path()
    ui.shot("consent form")
    page.get_by_label("Type your full name to sign").fill(client.full_name)
    ui.submit(page.get_by_role("button", name="Sign", exact=True))
    assert client.consents.filter(signature=client.full_name).count() == 1
    # Signing leads straight on to the health questions.
    assert ui.path() == ui.url("portal_intake").removeprefix(ui.base_url), ui.path()
    assert "consent is recorded" in ui.text()
    ui.shot("empty health questions", full=False)

    # The body map: the regions are chosen by clicking the drawing, which ticks their boxes.
    for region in ("lower_back", "mid_back"):
        shape = page.locator(f'[data-bodymap="pain_regions"] [data-region="{region}"]')
        shape.click()
        assert checkbox(page, "pain_regions", region).is_checked(), f"clicking {region} on the body map did nothing"
        assert "selected" in (shape.get_attribute("class") or "")
    radio(page, "pain_intensity", "6").check()
    page.locator("#id_pain_duration_weeks").fill("6")
    radio(page, "pain_onset", "gradual").check()
    for goal in ("postural_strain", "muscle_tension"):
        checkbox(page, "goals", goal).check()
    radio(page, "pregnant", "no").check()
    # Every yes/no question: "no", except "yes" to a past blood clot; the doctor question is left out on purpose.
    questions = yes_no_questions(page)
    assert "f_dvt_history" in questions, questions
    assert len(questions) > 20, questions
    for name in questions:
        if name not in ("pain_medically_assessed", "pregnant"):
            radio(page, name, "yes" if name == "f_dvt_history" else "no").check()
    # STarT Back.
    for item in range(1, 9):
        radio(page, f"sb_{item}", "agree" if item == 1 else "disagree").check()
    radio(page, "sb_9", "slightly").check()
    page.locator("#id_notes").fill(NOTES)
    ui.shot("health questions filled in but one missing")

    # Submitting with an answer missing: the message names the question, and everything typed is kept.
    ui.submit(page.get_by_role("button", name="Submit", exact=True))
    summary = page.locator("#missing")
    assert summary.is_visible(), ui.text()[:600]
    assert MEDICALLY_ASSESSED in summary.inner_text()
    assert MEDICALLY_ASSESSED in page.locator("#q-pain_medically_assessed").inner_text()
    assert page.locator("#err-pain_medically_assessed").is_visible()
    assert page.locator("#id_pain_duration_weeks").input_value() == "6"
    assert page.locator("#id_notes").input_value() == NOTES
    assert radio(page, "pain_intensity", "6").is_checked()
    assert radio(page, "f_dvt_history", "yes").is_checked()
    assert checkbox(page, "goals", "postural_strain").is_checked()
    for region in ("lower_back", "mid_back"):
        assert checkbox(page, "pain_regions", region).is_checked()
        shape = page.locator(f'[data-bodymap="pain_regions"] [data-region="{region}"]')
        assert "selected" in (shape.get_attribute("class") or "")
    ui.shot("missing answer named and typed answers kept")

    radio(page, "pain_medically_assessed", "yes").check()
    ui.shot("missing answer given", page.locator("#q-pain_medically_assessed"))
    ui.submit(page.get_by_role("button", name="Submit", exact=True))
    assert ui.path() == ui.url("portal").removeprefix(ui.base_url), ui.path()
    portal = ui.text()
    assert "answers are sent" in portal, portal[:600]
    # The client reads the plain-language summary of the finding, never the therapist's rationale.
    from backcare.clinic.models import Screening

    finding = Screening.objects.get(client=client).result["findings"][0]
    assert " ".join(finding["summary"].split()) in portal, portal[:800]
    assert " ".join(finding["rationale"].split())[:50] not in portal
    ui.shot("client portal after submitting")


def test_clinic_journey(ui: Any, live_client: Any, live_therapist: Any, live_smtp: Any) -> None:
    from backcare.clinic.models import Clearance, Course, Intake, Outcome, Screening, TreatmentSession
    from backcare.clinical.vocabulary import DECISION_TEXT, TECHNIQUES

    client = live_client

    # --- 1-2. The invitation by email; the client: registration, consent, intake ------------------------------
    link = therapist_emails_the_invitation(ui, client, live_smtp)
    ui.new_person()  # the client, at home
    client_registers_signs_and_fills_in_the_intake(ui, client, link)
    intake = Intake.objects.get(client=client)
    assert intake.status == Intake.Status.SUBMITTED
    screening = Screening.objects.get(client=client)
    assert screening.decision == "clearance_required"
    assert [f["rule"] for f in screening.result["findings"]] == ["clearance.dvt_history"]
    assert {f["code"] for f in intake.document["findings"]} == {"dvt_history"}
    assert intake.document["pain"]["regions"] == ["mid_back", "lower_back"]

    # --- 3. The therapist: dashboard, the screening, the clearance, the course ---------------------------------
    page = ui.new_person()
    sign_in(ui, "theo", PASSWORD)
    assert ui.path() == ui.url("dashboard").removeprefix(ui.base_url), ui.path()
    alert = (
        page.locator("li, tr, article, div")
        .filter(has_text=re.compile(r"clearance pending", re.I))
        .filter(has=page.get_by_role("link", name=client.full_name))
    )
    assert alert.count() >= 1, f"no 'clearance pending' alert for {client.full_name}: {ui.text()[:800]}"
    alert = alert.last  # the innermost: the alert itself
    assert "Past blood clot" in alert.inner_text()
    ui.shot("therapist dashboard shows the clearance pending")
    ui.follow(alert.get_by_role("link", name=client.full_name))
    assert ui.path() == ui.url("client_detail", client.pk).removeprefix(ui.base_url), ui.path()

    record = ui.text()
    finding = screening.result["findings"][0]
    section = page.locator("section.screening")
    assert section.is_visible()
    screening_text = " ".join(section.inner_text().split())
    assert "clearance" in screening_text.lower()
    assert finding["title"] in screening_text
    assert DECISION_TEXT["clearance_required"] in screening_text
    assert " ".join(finding["rationale"].split()) in screening_text
    from backcare.clinic.templatetags.clinical import citation

    for source in finding["sources"]:  # shown as the source registry's full citation
        assert " ".join(citation(source).split()) in screening_text, source
    assert "Precautions" in screening_text
    assert "Recommended plan" in screening_text
    plan = screening.result["plan"]
    for technique in plan["techniques"]:
        assert TECHNIQUES[technique] in screening_text
    assert f"{plan['sessions']} sessions over {plan['weeks']} weeks" in screening_text
    assert "No course or session can start" in record
    assert page.get_by_role("link", name="Start course").count() == 0, "a course is offered before the clearance"
    ui.shot("client record with the screening and no course offered")
    ui.shot("screening findings precautions and plan", section)

    # The server refuses too, whatever the page shows.
    ui.goto("course_start", client.pk, status=403)
    ui.shot("starting a course is refused before the clearance")
    ui.goto("client_detail", client.pk)

    ui.follow(page.get_by_role("link", name="Record the physician's clearance"))
    # The clearance names the finding it clears (ticked: the one still waiting) and the physician's restrictions.
    assert checkbox(page, "findings", "clearance.dvt_history@").is_checked()
    checkbox(page, "avoid_regions", "foot_right").check()
    page.get_by_label("Given by").fill("Dr Amrit Shah, GP")
    page.get_by_label("Date given").fill(dt.date.today().isoformat())
    page.get_by_label("Note").fill("No current clot; not on anticoagulants. Massage may go ahead.")
    ui.shot("clearance form filled in")
    ui.submit(page.get_by_role("button", name="Record clearance"))
    cleared = Clearance.objects.get(client=client, screening=screening)
    assert [k["rule"] for k in cleared.findings] == ["clearance.dvt_history"]
    assert cleared.avoid_regions == ["foot_right"] and cleared.valid_until is not None
    assert "No course or session can start" not in ui.text()
    assert "Physician's restrictions: avoid right foot" in " ".join(ui.text().split())
    ui.shot("clearance recorded")

    ui.follow(page.get_by_role("link", name="Start course"))
    for technique in plan["techniques"]:
        assert page.locator(f'input[name="techniques"][value="{technique}"]').is_checked()
    assert page.get_by_label("Sessions").first.input_value() == str(plan["sessions"])
    ui.shot("course start filled in from the plan")
    ui.submit(page.get_by_role("button", name="Start the course"))
    course = Course.objects.get(client=client)
    assert course.techniques == plan["techniques"] and course.sessions_planned == plan["sessions"]
    assert course.reassess_after == 2

    # The baseline Roland-Morris: 10 of 24 statements.
    assert "baseline" in ui.text().lower()
    boxes = page.locator('input[type=checkbox][name^="item_"]')
    assert boxes.count() == 24
    for n in range(10):
        boxes.nth(n).check()
    ui.shot("baseline roland-morris")
    ui.submit(page.get_by_role("button", name=re.compile("Save the Roland-Morris")))
    assert Outcome.objects.get(course=course, instrument="rmdq", timepoint="baseline").score == 10
    ui.shot("course page after the baseline")

    # --- 4. Two sessions, each after the health update ---------------------------------------------------------
    for number, (pain_before, pain_after) in enumerate(((6, 4), (6, 5)), start=1):
        ui.follow(page.get_by_role("link", name="Start next session").first)
        assert f"Before session {number}" in ui.text()
        page.get_by_label("Nothing new").check()
        page.get_by_label("Pain now").fill(str(pain_before))
        ui.shot(f"session {number} health update nothing new")
        ui.submit(page.get_by_role("button", name="Check and continue"))
        assert f"Session {number} of" in ui.text(), ui.text()[:600]
        assert Screening.objects.filter(client=client, kind="pre_session").count() == number

        shape = page.locator('[data-bodymap="treated"] [data-region="lower_back"]')
        shape.click()
        assert checkbox(page, "treated", "lower_back").is_checked()
        marks = page.locator("details", has=page.get_by_label("Tension, lower back"))
        if not marks.evaluate("details => details.open"):
            marks.locator("summary").click()  # the tension and pain table opens like a therapist would open it
        page.get_by_label("Tension, lower back").fill("2")
        page.get_by_label("Pain, lower back").fill(str(pain_before))
        page.get_by_label("Subjective (what the client reports)").fill(f"Session {number}: stiff after sitting.")
        page.get_by_label("Pain before the session").fill(str(pain_before))
        page.get_by_label("Pain after the session").fill(str(pain_after))
        for technique in course.techniques:
            assert checkbox(page, "techniques", technique).is_checked()
        page.get_by_role("combobox", name="Pressure").select_option("3")
        page.get_by_label("Relaxed, comfortable with the pressure").check()
        ui.shot(f"session {number} note filled in")
        ui.submit(page.get_by_role("button", name=f"Save session {number}"))
        session = TreatmentSession.objects.get(course=course, number=number)
        assert session.body_chart["lower_back"] == {"treated": True, "tension": 2, "pain": pain_before}
        assert (session.pain_before, session.pain_after, session.pressure) == (pain_before, pain_after, 3)
        assert session.response == "relaxed"
        assert session.techniques == course.techniques
        assert f"Session {number} recorded" in ui.text()
        ui.shot(f"session {number} recorded")

    # --- 5. The reassessment: no improvement, and the prompt to change technique or refer -----------------------
    due = page.get_by_role("alert").filter(has_text="Reassessment is due")
    assert due.count() >= 1, ui.text()[:800]
    ui.shot("reassessment prompt after session 2")
    ui.follow(page.get_by_role("link", name="Record the reassessment Roland-Morris").first)
    assert "reassessment" in ui.text().lower()
    boxes = page.locator('input[type=checkbox][name^="item_"]')
    for n in range(9):
        boxes.nth(n).check()
    ui.shot("reassessment roland-morris with no real change")
    ui.submit(page.get_by_role("button", name=re.compile("Save the Roland-Morris")))
    assert Outcome.objects.get(course=course, instrument="rmdq", timepoint="reassessment").score == 9
    text = ui.text()
    assert re.search(r"No meaningful improvement at reassessment: change the technique,? or refer", text), text[:800]
    assert page.get_by_role("link", name="Change the technique").count() >= 1
    assert page.get_by_role("link", name="Refer the client").count() >= 1
    ui.shot("prompt to change technique or refer")

    # The progress chart on the client's page: an <img> of the SVG that loads.
    chart_url = ui.url("progress_chart_svg", client.pk)
    with page.expect_response(chart_url) as chart:
        ui.goto("client_detail", client.pk)
    assert chart.value.status == 200, f"the progress chart answered {chart.value.status}"
    assert "svg" in (chart.value.headers.get("content-type") or "")
    image = page.locator(f'img[src="{chart_url.removeprefix(ui.base_url)}"]')
    image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete", arg=image.element_handle())
    assert image.evaluate("img => img.naturalWidth") > 0, "the progress chart did not render"
    ui.shot("client page with the progress chart")

    # --- In-clinic consent: a client without a portal login signs on the clinic's device -----------------------
    from backcare.clinic.models import Consent
    from backcare.clinic.services.clients import create_client

    walk_in = create_client(
        staff=live_therapist,
        therapist=live_therapist,
        first_name="Wendy",
        last_name="Walkin",
        date_of_birth=dt.date(1970, 1, 5),
        sex="female",
        email="wendy@x.test",
    )
    ui.goto("client_detail", walk_in.pk)
    assert "No current signed consent" in ui.text()
    ui.follow(page.get_by_role("link", name="Record consent in the clinic").first)
    assert "Consent to massage therapy" in ui.text()
    radio(page, "method", "device").check()
    page.get_by_label("Client's signature").fill("Wendy Walkin")
    ui.shot("consent signed on the clinic's device")
    ui.submit(page.get_by_role("button", name="Record consent"))
    signed = Consent.objects.get(client=walk_in)
    assert signed.method == "device" and signed.recorded_by == live_therapist
    assert "No current signed consent" not in ui.text()
    ui.shot("consent recorded in the clinic")

    assert ui.server_errors == [], ui.server_errors
    refused = f"status of 403 (Forbidden) [{ui.url('course_start', client.pk)} "  # the refusal checked above
    assert ui.unexpected_console_errors(refused) == [], ui.unexpected_console_errors(refused)
    assert ui.csp_violations == [], f"content security policy violations: {ui.csp_violations}"


def test_in_clinic_hand_over(ui: Any, live_therapist: Any) -> None:
    """A client without email: the therapist starts a hand-over on the clinic's computer, is signed out, and the
    client sets her own password there after confirming her date of birth. No link is ever on the screen."""
    from backcare.clinic.models import AuditEvent
    from backcare.clinic.services.clients import create_client

    client = create_client(
        staff=live_therapist,
        therapist=live_therapist,
        first_name="Maud",
        last_name="Nomail",
        date_of_birth=dt.date(1950, 11, 30),
        sex="female",
    )
    page = ui.page
    sign_in(ui, "theo", PASSWORD)
    ui.goto("invite_client", client.pk)
    assert "There is no email address on record" in ui.text()
    ui.submit(page.get_by_role("button", name="Sign me out and hand over"))
    assert ui.path() == ui.url("register_handover").removeprefix(ui.base_url), ui.path()
    assert "Welcome, Maud" in ui.text() and "This is the clinic's device" in ui.text()
    assert "/register/" not in page.content()
    ui.shot("hand-over page on the clinic device")

    page.get_by_label("Your date of birth").fill("30/11/1951")
    page.get_by_label("Username").fill("maud")
    page.get_by_label("Password", exact=True).fill(CLIENT_PASSWORD)
    page.get_by_label("Password again").fill(CLIENT_PASSWORD)
    ui.submit(page.get_by_role("button", name="Create my account"))
    assert "This is not the date of birth the clinic has for you" in ui.text()
    assert page.get_by_label("Username").input_value() == "maud"
    ui.shot("wrong date of birth named")
    page.get_by_label("Your date of birth").fill("30/11/1950")
    page.get_by_label("Password", exact=True).fill(CLIENT_PASSWORD)
    page.get_by_label("Password again").fill(CLIENT_PASSWORD)
    ui.submit(page.get_by_role("button", name="Create my account"))
    assert ui.path().startswith(ui.url("consent").removeprefix(ui.base_url)), ui.path()
    client.refresh_from_db()
    assert client.user is not None and client.user.username == "maud"
    ui.shot("client signed in at the consent form")

    # The therapist's session ended at the hand-over: the device now holds the client's session only.
    ui.goto("client_list", status=403)
    registered = AuditEvent.objects.get(action="register", client=client)
    assert registered.detail["method"] == "handover" and registered.detail["invited_by"] == "Theo Therapist (Therapist)"
    assert ui.server_errors == [], ui.server_errors
    assert ui.unexpected_console_errors("status of 403") == [], ui.unexpected_console_errors("status of 403")
    assert ui.csp_violations == [], ui.csp_violations
