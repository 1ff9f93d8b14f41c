"""The client's full export: one ZIP from the portal or by staff, with everything about this client and nothing
about anyone else: FHIR bundle, readable record (HTML and PDF), one CSV per kind of record, letters, README."""

from __future__ import annotations

import json
import re

import pytest
from datarights_support import open_zip, pdf_text, read_csv
from django.urls import reverse
from django.utils.html import escape

from backcare.clinic.models import (
    AuditEvent,
    Clearance,
    Client,
    Consent,
    Course,
    Intake,
    Outcome,
    Referral,
    Screening,
    TreatmentSession,
)
from backcare.clinic.services.sessions import add_addendum
from backcare.clinical.vocabulary import DECISION_TEXT
from backcare.datarights.export import csv_bytes, safe_cell
from backcare.scheduling.models import Appointment, WaitlistEntry
from matrix_support import login_as

CSV_FILES = {
    "client",
    "consents",
    "intakes",
    "intake_answers",
    "screenings",
    "screening_findings",
    "clearances",
    "assessments",
    "courses",
    "sessions",
    "addenda",
    "outcomes",
    "referrals",
    "appointments",
    "waitlist",
    "invoices",
    "credit_notes",
    "invoice_lines",
    "payments",
    "packages",
    "portal_access",
    "erasure_requests",
    "audit_events",
}


def ids_of(model, **filters):
    return {str(pk) for pk in model.objects.filter(**filters).values_list("pk", flat=True)}


def download(page_client, user, url):
    login_as(page_client, user)
    response = page_client.get(url)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "application/zip"
    assert re.fullmatch(
        r'attachment; filename="record-[a-z0-9-]+-\d{4}-\d\d-\d\d\.zip"', response["Content-Disposition"]
    )
    assert "no-store" in response["Cache-Control"]
    return open_zip(response.content)


def test_portal_export_has_every_record_of_the_client_and_none_of_another(client, world):
    x, y = world.x.client, world.y.client
    events_before = AuditEvent.objects.filter(client=x).count()
    files = download(client, x.user, reverse("portal_export"))

    assert {"README.txt", "record.html", "record.pdf", "fhir/bundle.json"} <= set(files)
    assert {f"csv/{name}.csv" for name in CSV_FILES} <= set(files)
    tables = {
        name.removeprefix("csv/").removesuffix(".csv"): read_csv(data)
        for name, data in files.items()
        if name.endswith(".csv")
    }
    assert set(tables) == CSV_FILES

    def column(table, name):
        return {row[name] for row in tables[table]}

    # Every record of X, by id, and nothing else (so nothing of Y).
    assert column("client", "client_id") == {str(x.pk)}
    assert tables["client"][0]["first_name"] == x.first_name and tables["client"][0]["email"] == x.email
    assert column("consents", "consent_id") == ids_of(Consent, client=x)
    assert column("intakes", "intake_id") == ids_of(Intake, client=x)
    assert column("screenings", "screening_id") == ids_of(Screening, client=x)
    assert column("clearances", "clearance_id") == ids_of(Clearance, client=x)
    assert column("courses", "course_id") == ids_of(Course, client=x)
    assert column("sessions", "session_id") == ids_of(TreatmentSession, course__client=x)
    assert column("outcomes", "outcome_id") == ids_of(Outcome, client=x)
    assert column("referrals", "referral_id") == ids_of(Referral, client=x)
    assert column("appointments", "appointment_id") == ids_of(Appointment, client=x)
    assert column("waitlist", "waitlist_id") == ids_of(WaitlistEntry, client=x)
    assert len(tables["audit_events"]) == events_before
    assert column("intake_answers", "intake_id") <= ids_of(Intake, client=x)
    assert len(tables["intake_answers"]) == sum(len(i.answers) for i in Intake.objects.filter(client=x))
    assert column("screening_findings", "screening_id") <= ids_of(Screening, client=x)
    assert any(row["decision"] == "clearance_required" for row in tables["screenings"])
    assert any(row["rule"] for row in tables["screening_findings"])
    assert ids_of(Screening, client=y).isdisjoint(column("screenings", "screening_id"))

    # The free text the therapist wrote is there, in full.
    session = TreatmentSession.objects.filter(course__client=x).exclude(subjective="").first()
    row = next(r for r in tables["sessions"] if r["session_id"] == str(session.pk))
    assert row["subjective"] == session.subjective and row["plan"] == session.plan_note
    assert json.loads(row["body_chart"]) == session.body_chart

    # The clearance letter travels with the record.
    letter = Clearance.objects.get(client=x).letter
    path = next(r["letter"] for r in tables["clearances"])
    assert files[path] == letter.open("rb").read()

    # Nothing names the other client anywhere (the PDF is checked through its text).
    for name, data in files.items():
        text = pdf_text(data) if name.endswith(".pdf") else data.decode("utf-8", "replace")
        assert y.first_name not in text and y.last_name not in text, name

    readme = files["README.txt"].decode()
    for name in files:
        assert name in readme, f"{name} is not explained in the README"
    assert "apostrophe" in readme

    # The export is in the audit trail: who, when, for whom.
    event = AuditEvent.objects.filter(action="export", client=x).latest("at")
    assert event.user == x.user and event.detail["document"] == "full_export"
    assert set(event.detail["files"]) == set(files)


def test_readable_record_states_the_key_facts_and_loads_nothing_from_outside(client, world):
    x = world.x.client
    files = download(client, world.therapist_a.user, reverse("client_export", args=[x.pk]))
    html = files["record.html"].decode()
    session = TreatmentSession.objects.filter(course__client=x).exclude(subjective="").first()
    for fact in (
        f"Record of {x.first_name} {x.last_name}",
        "1 June 1980",  # date of birth
        escape(DECISION_TEXT["clearance_required"]),
        escape(session.subjective),
        escape(session.plan_note),
        escape(Referral.objects.get(client=x).reason),
        "Roland-Morris",
    ):
        assert fact in html, fact
    assert not re.search(r"<(script|link|iframe|object)\b", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|/)""", html), "the record loads something from outside"
    assert "url(" not in html

    pdf = files["record.pdf"]
    assert pdf.startswith(b"%PDF-")
    text = pdf_text(pdf)
    assert f"Record of {x.first_name} {x.last_name}" in text
    assert session.subjective in text


def test_fhir_bundle_is_valid_r4_for_this_client(client, world):
    from fhirclient.models.bundle import Bundle

    x = world.x.client
    files = download(client, world.owner.user, reverse("client_export", args=[x.pk]))
    data = json.loads(files["fhir/bundle.json"])
    bundle = Bundle(data, strict=True)
    assert bundle.resource_type == "Bundle"
    patients = [e.resource for e in bundle.entry if e.resource.resource_type == "Patient"]
    assert len(patients) == 1
    assert patients[0].name[0].family == x.last_name
    assert world.y.client.last_name not in files["fhir/bundle.json"].decode()


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("therapist_a", 200), ("therapist_b", 404), ("front_desk", 403), ("client_x", 403)],
)
def test_staff_export_is_for_those_who_see_the_clinical_record(client, world, role, status):
    url = reverse("client_export", args=[world.x.client.pk])
    login_as(client, world.users[role])
    before = AuditEvent.objects.filter(action="export").count()
    response = client.get(url)
    assert response.status_code == status
    assert AuditEvent.objects.filter(action="export").count() == before + (1 if status == 200 else 0)
    if status != 200:
        assert world.x.client.last_name not in response.content.decode("utf-8", "replace")


def test_anonymous_is_sent_to_login(client, world):
    for url in (reverse("portal_export"), reverse("client_export", args=[world.x.client.pk])):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_staff_cannot_use_the_portal_export(client, world):
    login_as(client, world.owner.user)
    assert client.get(reverse("portal_export")).status_code == 403


def test_a_client_exports_only_their_own_record(client, world):
    files = download(client, world.y.client.user, reverse("portal_export"))
    rows = read_csv(files["csv/client.csv"])
    assert [r["client_id"] for r in rows] == [str(world.y.client.pk)]


def test_csv_injection_is_neutralised(client, world):
    x = world.x.client
    Client.objects.filter(pk=x.pk).update(address='=HYPERLINK("http://evil.example","click")', phone="+44 1234")
    # A signed note cannot be changed (a database trigger refuses): the unsigned ones take the formulas, and an
    # addendum of the signed one.
    TreatmentSession.objects.filter(course__client=x, signed_at__isnull=True).update(
        subjective="@SUM(1+1)", objective="-2+3", assessment="\t=1"
    )
    signed = TreatmentSession.objects.get(course__client=x, signed_at__isnull=False)
    add_addendum(signed, staff=signed.therapist, text="=1+1", reason="+cmd")
    files = download(client, world.owner.user, reverse("client_export", args=[x.pk]))
    row = read_csv(files["csv/client.csv"])[0]
    assert row["address"] == '\'=HYPERLINK("http://evil.example","click")'
    assert row["phone"] == "'+44 1234"
    sessions = [r for r in read_csv(files["csv/sessions.csv"]) if not r["signed_at"]]
    assert {r["text"] for r in read_csv(files["csv/addenda.csv"])} >= {"'=1+1"}
    assert {r["subjective"] for r in sessions} == {"'@SUM(1+1)"}
    assert {r["objective"] for r in sessions} == {"'-2+3"}
    assert {r["assessment"] for r in sessions} == {"'\t=1"}
    # No cell of any file starts with a formula character.
    for name, data in files.items():
        if name.endswith(".csv"):
            for r in read_csv(data):
                for value in r.values():
                    assert not value.startswith(("=", "+", "-", "@", "\t", "\r")) or value.lstrip("-").isdigit(), (
                        name,
                        value,
                    )


def test_safe_cell_keeps_numbers_and_quotes_formulas():
    assert safe_cell(-3) == -3 and safe_cell(2.5) == 2.5 and safe_cell(None) == "" and safe_cell(True) == "yes"
    assert safe_cell("=1+2") == "'=1+2" and safe_cell("plain") == "plain" and safe_cell("a=b") == "a=b"
    assert csv_bytes(["a", "b"], [[-3, "-3"]]) == b"a,b\r\n-3,'-3\r\n"


def test_the_export_has_the_client_s_billing_and_none_of_another(client, db, settings, tmp_path):
    from backcare.billing import services
    from backcare.billing.models import Invoice, InvoiceLine, Package, Payment
    from matrix_support import build_world

    settings.MEDIA_ROOT = tmp_path / "media"
    world = build_world(billing=True)
    x = world.x.client
    files = download(client, x.user, reverse("portal_export"))
    tables = {n.removeprefix("csv/").removesuffix(".csv"): read_csv(d) for n, d in files.items() if n.endswith(".csv")}

    def column(table, name):
        return {row[name] for row in tables[table]}

    assert column("invoices", "invoice_id") == ids_of(Invoice, client=x, kind="invoice")
    assert column("credit_notes", "invoice_id") == ids_of(Invoice, client=x, kind="credit_note")
    assert len(tables["invoice_lines"]) == InvoiceLine.objects.filter(invoice__client=x).count()
    assert column("payments", "payment_id") == ids_of(Payment, client=x)
    assert column("packages", "package_id") == ids_of(Package, client=x)
    session = next(r for r in tables["invoices"] if r["invoice_id"] == str(world.x.ids["invoice"]))
    assert (session["total"], session["currency"]) == ("60.00", "GBP")
    note = tables["credit_notes"][0]
    assert note["total"] == "5.00" and note["reason"] == Invoice.objects.get(pk=note["invoice_id"]).reason
    assert tables["payments"][0]["amount"] == "10.00" and tables["payments"][0]["invoice_number"] == session["number"]
    assert tables["packages"][0]["sessions"] == "4" and tables["packages"][0]["used"] == "0"
    # The documents' totals add up to the balance the clinic shows.
    invoiced = sum(float(r["total"]) for r in tables["invoices"]) - sum(
        float(r["total"]) for r in tables["credit_notes"]
    )
    paid = sum(float(r["amount"]) * (1 if r["kind"] == "payment" else -1) for r in tables["payments"])
    assert round((invoiced - paid) * 100) == services.balance(x)
    y_ids = {str(pk) for pk in Invoice.objects.filter(client=world.y.client).values_list("pk", flat=True)}
    assert y_ids.isdisjoint(column("invoices", "invoice_id") | column("credit_notes", "invoice_id"))
