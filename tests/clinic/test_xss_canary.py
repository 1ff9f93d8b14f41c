"""A script typed into any free-text field never runs: every text a user can fill holds a script canary, then every
page of the project (all URL patterns, every role) and the PDF documents' HTML must show it only escaped.

`test_every_user_text_field_is_covered` lists the text fields of the clinic, scheduling and common models, so a new
field fails until it is filled in the canary set-up (tests/matrix_support.py) or listed as not typed by a user here.
"""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models
from django.urls import reverse

from matrix_support import all_patterns, build_world, request, url_kwargs

SCRIPT = '<script>alert("xss")</script>'
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
RAW = (SCRIPT, "<script>alert(", "<img src=x", "onerror=alert(1)>")


def canary(label: str) -> str:
    if "phone" in label:  # phone fields hold 40 characters (PostgreSQL enforces it): the script alone fits
        return SCRIPT
    return f"{label} {SCRIPT} {ATTRIBUTE}"


# Every text field a user fills, by "app_label.Model.field" (JSON paths for free text kept inside JSON fields).
USER_TEXT = {
    "clinic.Clinic.name": "owner (admin)",
    "clinic.Clinic.address": "owner (admin)",
    "clinic.Clinic.phone": "owner (admin)",
    "clinic.StaffMember.display_name": "owner (admin)",
    "clinic.Client.first_name": "client pages",
    "clinic.Client.last_name": "client pages",
    "clinic.Client.phone": "client pages",
    "clinic.Client.address": "client pages",
    "clinic.Client.physician_name": "client pages",
    "clinic.Client.physician_address": "client pages",
    "clinic.Consent.signature": "consent page (the client's full name)",
    "clinic.Consent.witnessed_by": "consent in the clinic",
    "clinic.Consent.guardian_name": "consent in the clinic",
    "clinic.Consent.guardian_relationship": "consent in the clinic",
    "clinic.Consent.guardian_signature": "consent in the clinic",
    "clinic.Intake.review_note": "intake review",
    "clinic.Intake.answers.goals_text": "online intake",
    "clinic.Intake.answers.notes": "online intake",
    "clinic.Clearance.given_by": "clearance form",
    "clinic.Clearance.note": "clearance form",
    "clinic.Course.goals": "course start/edit",
    "clinic.Course.end_note": "course end",
    "clinic.Course.home_programme.*": "course edit",
    "clinic.TreatmentSession.subjective": "session form",
    "clinic.TreatmentSession.objective": "session form",
    "clinic.TreatmentSession.assessment": "session form",
    "clinic.TreatmentSession.plan_note": "session form",
    "clinic.TreatmentSession.deviation_reason": "session form",
    "clinic.TreatmentSession.aftercare": "session form",
    "clinic.TreatmentSession.stop_reason": "session form",
    "clinic.TreatmentSession.stop_advice": "session form",
    "clinic.SessionAddendum.text": "addendum form",
    "clinic.SessionAddendum.reason": "addendum form",
    "clinic.Referral.reason": "referral form",
    "clinic.MedicalAssessment.assessed_by": "referral outcome form, health update and intake review",
    "clinic.MedicalAssessment.service": "referral outcome form, health update and intake review",
    "clinic.MedicalAssessment.outcome": "referral outcome form, health update and intake review",
    "clinic.MedicalAssessment.reason": "referral outcome form, health update and intake review",
    "scheduling.Room.name": "owner",
    "scheduling.Service.name": "owner",
    "scheduling.Absence.note": "absence form",
    "scheduling.Appointment.override_reason": "owner's overbooking",
    "scheduling.Appointment.cancel_reason": "cancel forms",
    "scheduling.Appointment.late_change_reason": "staff change inside the cancellation window",
    "scheduling.WaitlistEntry.note": "waitlist form",
    "billing.BillingSettings.legal_name": "owner (admin)",
    "billing.BillingSettings.tax_number": "owner (admin)",
    "billing.BillingSettings.company_number": "owner (admin)",
    "billing.BillingSettings.tax_label": "owner (admin)",
    "billing.Practitioner.registration_body": "owner (admin)",
    "billing.Practitioner.registration_number": "owner (admin)",
    "billing.Invoice.reason": "credit note and fee waiver forms",
    "billing.Invoice.therapist_name": "copied from the therapist's name",
    "billing.Invoice.therapist_registration": "copied from the therapist's registration",
    "billing.InvoiceLine.description": "composed from the service's name and a credit note's reason",
    "billing.Payment.reference": "payment form",
    "billing.Payment.note": "refund form",
}

# Text fields nobody types free text into, and why.
NOT_USER_TEXT = {
    "clinic.Clinic.time_zone": "chosen from the time-zone list",
    "clinic.Clinic.email": "validated as an email address",
    "clinic.Clinic.country": "validated as a two-letter country code",
    "clinic.Clinic.emergency_number": "validated as digits, spaces and + ( ) -",
    "clinic.Clinic.urgent_care_number": "validated as digits, spaces and + ( ) -",
    "clinic.Client.email": "validated as an email address",
    "clinic.Invitation.token_hash": "made by the system",
    "clinic.RateCount.scope": "made by the system",
    "clinic.RateCount.key": "made by the system (a keyed hash)",
    "clinic.ConsentText.version": "published by the owner (consent page); escaped there (test_clinic_settings)",
    "clinic.ConsentText.title": "published by the owner (consent page); escaped there (test_clinic_settings)",
    "clinic.ConsentText.body": "published by the owner; shown through consent_html, which escapes it",
    "clinic.Screening.referral": "made by the clinical core",
    "clinic.Screening.rule_base_version": "made by the clinical core",
    "clinic.Screening.rule_base_digest": "made by the clinical core",
    "clinic.TreatmentSession.submission_key": "hidden one-time key",
    "clinic.Outcome.interpretation": "made by the scoring",
    "clinic.AuditEvent.actor": "made by the system",
    "clinic.AuditEvent.key_id": "made by the system (the audit key's id, from the environment)",
    "clinic.AuditEvent.mac": "made by the system (a hex HMAC)",
    "clinic.AuditEvent.prev_mac": "made by the system (a hex HMAC)",
    "clinic.SignInFailures.key": "made by the system from the username tried; shown on no page",
    "clinic.AuditEvent.action": "made by the system",
    "clinic.AuditEvent.object_type": "made by the system",
    "clinic.AuditEvent.object_id": "made by the system",
    "clinic.RecoveryCodes.name": "made by the system",
    "clinic.RecoveryCode.digest": "made by the system",
    "scheduling.Appointment.submission_key": "hidden one-time key",
    "scheduling.ReminderLog.recipient": "made by the system",
    "scheduling.ReminderLog.last_error": "made by the system",
    "scheduling.CalendarToken.token_hash": "made by the system",
    "scheduling.OpenedHoliday.name": "the holiday's name, from the holidays package",
    # The outbox's emails are composed by the system from the texts above (the canary reaches the outbox page
    # through the subjects); nobody types into them.
    "common.OutboundMessage.idempotency_key": "made by the system",
    "billing.Payment.idempotency_key": "hidden one-time key",
    "common.OutboundMessage.kind": "made by the system",
    "common.OutboundMessage.from_email": "a setting",
    "common.OutboundMessage.subject": "composed by the system (shown escaped on the outbox page)",
    "common.OutboundMessage.body_text": "composed by the system (never shown on a page)",
    "common.OutboundMessage.body_html": "composed by the system (never shown on a page)",
    "common.OutboundMessage.claimed_by": "made by the system",
    "common.OutboundMessage.last_error": "the mail server's answer (shown escaped on the outbox page)",
    "common.UserSession.session_key": "made by the system",
    "common.UserSession.session_data": "made by the system (signed session data, shown on no page)",
}

# Responses a browser does not render as a page: calendar files (a calendar app shows their text as text), PDFs and
# downloads (the data-rights ZIP and CSV; the record's HTML inside the ZIP is checked in the documents test below).
NOT_HTML = ("text/calendar", "application/pdf", "application/zip", "text/csv")


def text_fields():
    for label in ("clinic", "scheduling", "common", "billing"):
        for model in apps.get_app_config(label).get_models():
            for f in model._meta.get_fields():
                if isinstance(f, models.CharField | models.TextField) and not f.choices:
                    yield f"{label}.{model.__name__}.{f.name}", model, f.name


def stored_values(key, model, name):
    parts = key.split(".")
    if len(parts) == 3:
        return [str(v) for v in model.objects.values_list(name, flat=True)]
    values = []
    for data in model.objects.values_list(name, flat=True):
        data = data or {}
        values.extend(str(v) for v in (data.values() if parts[3] == "*" else [data.get(parts[3], "")]))
    return values


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def world(db):
    return build_world(canary, billing=True)


def test_every_model_text_field_is_known():
    found = {key for key, _, _ in text_fields()}
    new = sorted(found - set(USER_TEXT) - set(NOT_USER_TEXT))
    assert not new, f"new text fields: fill them in tests/matrix_support.py and list them in USER_TEXT: {new}"
    fields = {f"{m._meta.app_label}.{m.__name__}.{f.name}" for m in apps.get_models() for f in m._meta.get_fields()}
    gone = {k for k in set(USER_TEXT) | set(NOT_USER_TEXT) if ".".join(k.split(".")[:3]) not in fields}
    assert not gone, f"fields that no longer exist: {gone}"


def test_every_user_text_field_is_covered(world):
    """Each field a user types into holds the canary somewhere in the data set."""
    missing = []
    for key in USER_TEXT:
        label, model_name, name = key.split(".")[:3]
        values = stored_values(key, apps.get_model(label, model_name), name)
        short = name == "phone"  # holds the script alone (see canary)
        if not any(SCRIPT in v and (short or ATTRIBUTE in v) for v in values):
            missing.append(key)
    assert not missing, f"not filled with the canary: {missing}"


def unescaped(body: str) -> list[str]:
    return [raw for raw in RAW if raw in body]


def test_no_page_shows_the_canary_unescaped(client, world):
    problems = []
    escaped_seen = 0
    pages = [
        (p, reverse(p.name, kwargs=url_kwargs(p, ids))) for ids in (world.x.ids, world.y.ids) for p in all_patterns()
    ]
    # The ended course and the stopped session too.
    extra = {**world.x.ids, "course": world.x.ids["ended_course"], "session": world.x.ids["stopped_session"]}
    pages += [(p, reverse(p.name, kwargs=url_kwargs(p, extra))) for p in all_patterns() if p.params]
    pages += [
        (None, reverse("appointment_detail", args=[world.x.ids[k]]))
        for k in ("cancelled_appointment", "late_cancelled_appointment", "overbooked_appointment", "hold")
    ]
    for role, user in world.users.items():
        for _, url in dict.fromkeys(pages):
            response = request(client, "GET", url, user=user)
            kind = response.get("Content-Type", "")
            if response.status_code >= 500:
                problems.append(f"{url} as {role}: {response.status_code}")
            if kind.startswith(NOT_HTML) or not hasattr(response, "content"):
                continue
            body = response.content.decode("utf-8", "replace")
            escaped_seen += "&lt;script&gt;alert(" in body
            if found := unescaped(body):
                problems.append(f"{url} as {role} ({kind}): {found}")
    assert not problems, "\n".join(problems)
    assert escaped_seen > 50  # the canary is really shown (escaped) on many pages


def test_document_html_escapes_the_canary(world):
    from backcare.clinic import documents
    from backcare.clinic.models import Course, Referral

    for course_id in (world.x.ids["course"], world.x.ids["ended_course"]):
        course = Course.objects.get(pk=course_id)
        for html in (documents.discharge_html(course), documents.home_programme_html(course)):
            assert not unescaped(html)
            assert "&lt;script&gt;alert(" in html
    html = documents.referral_letter_html(Referral.objects.get(pk=world.x.ids["referral"]))
    assert not unescaped(html)
    assert html.count("&lt;script&gt;alert(") >= 3  # the client, the physician and the reason at least
    from backcare.datarights.export import record_html

    html = record_html(world.x.client)  # the client's whole record, in the data-rights export (HTML and PDF)
    assert not unescaped(html)
    assert html.count("&lt;script&gt;alert(") >= 20
