"""A client's full export (right of access and portability): one ZIP, built in memory (one client's record is a
few megabytes at most, and WeasyPrint renders the whole PDF in memory anyway) with the FHIR R4 bundle, the record as
HTML and PDF, one CSV per kind of record, the clearance letters and a README. Every CSV cell goes through
`safe_cell` against formula injection. See docs/data-rights.md.

What goes in is listed in one place, `SECTIONS`: a new kind of record (billing, say) adds its function there, or
its tables to a `Table` list, and the archive, its README and the audit event follow.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from backcare.billing.models import Invoice, InvoiceLine, Package, Payment
from backcare.billing.money import format_plain
from backcare.clinic import access, audit, documents
from backcare.clinic.models import (
    AuditEvent,
    Clearance,
    Client,
    Intake,
    SessionAddendum,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.services.intake import intake_form
from backcare.clinical.vocabulary import ADJUNCTS, DECISION_TEXT, REGIONS, TECHNIQUES
from backcare.scheduling.models import Appointment, CalendarToken, WaitlistEntry

logger = logging.getLogger(__name__)

# --- CSV ----------------------------------------------------------------------------------------------------------

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection"); tab and carriage
# return too, since some programs strip them before looking.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """One CSV cell: numbers stay numbers; text that a spreadsheet would run as a formula gets a leading apostrophe,
    which spreadsheets show as text and hide (so "=1+2" reads as "'=1+2" in the file and "=1+2" on screen)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, dt.datetime):
        text = value.isoformat(timespec="seconds")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    elif isinstance(value, list | dict):
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    else:
        text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """RFC 4180 CSV in UTF-8 (CRLF line ends, quotes where needed), every cell through `safe_cell`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


# --- The full export ------------------------------------------------------------------------------------------------


@dataclass
class Export:
    content: bytes
    filename: str
    files: list[str]


def client_zone(client: Client) -> ZoneInfo:
    return client.clinic.zone


def _local(value: dt.datetime | None, zone: ZoneInfo) -> dt.datetime | None:
    return value.astimezone(zone) if value is not None else None


def _name(staff: StaffMember | None) -> str:
    return staff.display_name if staff is not None else ""


def _techniques(codes: Iterable[str]) -> str:
    return "; ".join(TECHNIQUES.get(c, c) for c in codes)


def _answer_label(key: str) -> str:
    """The question a stored intake answer belongs to, in the client's words where the form has them."""
    form = intake_form()
    for question in form.questions:
        if key == question.name:
            return question.text
        if key == question.regions_name:
            return f"{question.text} (where)"
        if key == question.weeks_name:
            return f"{question.text} (how many weeks ago)"
    for section in form.texts.values():
        if isinstance(section, dict) and isinstance(section.get(key.removeprefix("pain_")), str):
            return str(section[key.removeprefix("pain_")])
    return key.replace("_", " ")


def _intake_answers(intake: Intake) -> list[tuple[str, str, Any]]:
    return [(key, _answer_label(key), value) for key, value in sorted((intake.answers or {}).items())]


Columns = dict[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class Table:
    """One CSV file of the export: its name, what the README says of it, its rows and its columns (header: how to
    read the cell from a row)."""

    filename: str
    description: str
    rows: Iterable[Any]
    columns: Columns

    def csv(self) -> bytes:
        return csv_bytes(list(self.columns), ([get(row) for get in self.columns.values()] for row in self.rows))


def _at(client: Client) -> Callable[[dt.datetime | None], dt.datetime | None]:
    """A moment in the clinic's zone (None stays None)."""
    z = client_zone(client)
    return lambda value: _local(value, z)


def record_tables(client: Client) -> list[Table]:
    """The client and their clinical record (clinic), one table per kind; every query is filtered on this client."""
    at = _at(client)
    intakes = list(client.intakes.select_related("reviewed_by").order_by("started_at", "id"))
    screenings = list(client.screenings.order_by("created_at", "id"))
    return [
        Table(
            "client.csv",
            "Your details as the clinic holds them (one row).",
            [client],
            {
                "client_id": lambda c: c.pk,
                "first_name": lambda c: c.first_name,
                "last_name": lambda c: c.last_name,
                "date_of_birth": lambda c: c.date_of_birth,
                "sex": lambda c: c.sex,
                "email": lambda c: c.email,
                "phone": lambda c: c.phone,
                "address": lambda c: c.address,
                "physician_name": lambda c: c.physician_name,
                "physician_address": lambda c: c.physician_address,
                "therapist": lambda c: _name(c.therapist),
                "shared_with": lambda c: "; ".join(s.display_name for s in c.shared_with.all()),
                "portal_login": lambda c: c.user.get_username() if c.user is not None else "",
                "created_at": lambda c: at(c.created_at),
                "erasure_requested_at": lambda c: at(c.erasure_requested_at),
            },
        ),
        Table(
            "consents.csv",
            "Each consent form you signed: its version, your typed signature, when, and whether you withdrew it.",
            client.consents.select_related("text").order_by("signed_at", "id"),
            {
                "consent_id": lambda c: c.pk,
                "version": lambda c: c.text.version,
                "title": lambda c: c.text.title,
                "signature": lambda c: c.signature,
                "signed_at": lambda c: at(c.signed_at),
                "ip_address": lambda c: c.ip_address,
                "withdrawn_at": lambda c: at(c.withdrawn_at),
            },
        ),
        Table(
            "intakes.csv",
            "Each health questionnaire (intake): its status, dates and the therapist's review.",
            intakes,
            {
                "intake_id": lambda i: i.pk,
                "status": lambda i: i.status,
                "started_at": lambda i: at(i.started_at),
                "updated_at": lambda i: at(i.updated_at),
                "submitted_at": lambda i: at(i.submitted_at),
                "reviewed_by": lambda i: _name(i.reviewed_by),
                "reviewed_at": lambda i: at(i.reviewed_at),
                "review_note": lambda i: i.review_note,
            },
        ),
        Table(
            "intake_answers.csv",
            "Every answer of every intake, one row per question (several choices are written as a JSON list).",
            [(i.pk, *answer) for i in intakes for answer in _intake_answers(i)],
            {
                "intake_id": lambda a: a[0],
                "question_key": lambda a: a[1],
                "question": lambda a: a[2],
                "answer": lambda a: a[3],
            },
        ),
        Table(
            "screenings.csv",
            "Each safety screening of your answers: when, why (intake, review, pre-session check) and the decision.",
            screenings,
            {
                "screening_id": lambda s: s.pk,
                "kind": lambda s: s.kind,
                "created_at": lambda s: at(s.created_at),
                "intake_id": lambda s: s.intake_id,
                "decision": lambda s: s.decision,
                "decision_text": lambda s: DECISION_TEXT.get(s.decision, ""),
                "referral": lambda s: s.referral,
                "rule_base_version": lambda s: s.rule_base_version,
                "rule_base_digest": lambda s: s.rule_base_digest,
            },
        ),
        Table(
            "screening_findings.csv",
            "What each screening found (one row per finding): the rule, its decision, and the reasons given.",
            [(s.pk, f) for s in screenings for f in s.result.get("findings", [])],
            {
                "screening_id": lambda r: r[0],
                "rule": lambda r: r[1].get("rule", ""),
                "title": lambda r: r[1].get("title", ""),
                "decision": lambda r: r[1].get("decision", ""),
                "summary": lambda r: r[1].get("summary", ""),
                "rationale": lambda r: r[1].get("rationale", ""),
            },
        ),
        Table(
            "clearances.csv",
            "Clearances from your doctor recorded by the clinic (letters, if any, are in letters/).",
            client.clearances.select_related("recorded_by").order_by("recorded_at", "id"),
            {
                "clearance_id": lambda c: c.pk,
                "screening_id": lambda c: c.screening_id,
                "given_by": lambda c: c.given_by,
                "given_on": lambda c: c.given_on,
                "note": lambda c: c.note,
                "letter": _letter_path,
                "clears": lambda c: "; ".join(
                    k.get("title", k.get("rule", "")) + (f" ({k['region']})" if k.get("region") else "")
                    for k in c.findings
                ),
                "valid_until": lambda c: c.valid_until or "",
                "recorded_by": lambda c: _name(c.recorded_by),
                "recorded_at": lambda c: at(c.recorded_at),
            },
        ),
        Table(
            "assessments.csv",
            "Medical assessments recorded by the clinic: a referral's outcome, or why a health finding was withdrawn.",
            client.assessments.select_related("recorded_by").order_by("recorded_at", "id"),
            {
                "assessment_id": lambda a: a.pk,
                "referral_id": lambda a: a.referral_id or "",
                "withdrawn": lambda a: "; ".join(w.get("title", "") for w in a.withdrawn),
                "assessed_by": lambda a: a.assessed_by,
                "service": lambda a: a.service,
                "assessed_on": lambda a: a.assessed_on,
                "outcome": lambda a: a.outcome,
                "reason": lambda a: a.reason,
                "recorded_by": lambda a: _name(a.recorded_by),
                "recorded_at": lambda a: at(a.recorded_at),
            },
        ),
        Table(
            "courses.csv",
            "Each course of treatment: therapist, plan, goals, home programme and how it ended.",
            client.courses.select_related("therapist").order_by("started_at", "id"),
            {
                "course_id": lambda c: c.pk,
                "status": lambda c: c.status,
                "therapist": lambda c: _name(c.therapist),
                "started_at": lambda c: at(c.started_at),
                "ended_at": lambda c: at(c.ended_at),
                "techniques": lambda c: _techniques(c.techniques),
                "sessions_planned": lambda c: c.sessions_planned,
                "weeks": lambda c: c.weeks,
                "reassess_after_session": lambda c: c.reassess_after,
                "goals": lambda c: c.goals,
                "adjuncts": lambda c: "; ".join(ADJUNCTS.get(a, a) for a in c.adjuncts),
                "home_programme": lambda c: c.home_programme,
                "end_note": lambda c: c.end_note,
                "screening_id": lambda c: c.screening_id,
            },
        ),
        Table(
            "sessions.csv",
            "Each treatment session with the therapist's SOAP notes (subjective, objective, assessment, plan), the "
            "body chart (JSON), techniques, pressure (1-5), pain before and after (0-10) and aftercare.",
            TreatmentSession.objects.filter(course__client=client)
            .select_related("therapist", "signed_by")
            .order_by("held_at", "id"),
            {
                "session_id": lambda s: s.pk,
                "course_id": lambda s: s.course_id,
                "number": lambda s: s.number,
                "status": lambda s: s.status,
                "therapist": lambda s: _name(s.therapist),
                "held_at": lambda s: at(s.held_at),
                "subjective": lambda s: s.subjective,
                "objective": lambda s: s.objective,
                "assessment": lambda s: s.assessment,
                "plan": lambda s: s.plan_note,
                "body_chart": lambda s: s.body_chart,
                "techniques": lambda s: _techniques(s.techniques),
                "pressure": lambda s: s.pressure,
                "deviations": lambda s: s.deviations,
                "deviation_reason": lambda s: s.deviation_reason,
                "response": lambda s: s.response,
                "pain_before": lambda s: s.pain_before,
                "pain_after": lambda s: s.pain_after,
                "aftercare": lambda s: s.aftercare,
                "stop_reason": lambda s: s.stop_reason,
                "health_update_screening_id": lambda s: s.health_update_id,
                "signed_at": lambda s: at(s.signed_at) if s.signed_at else "",
                "signed_by": lambda s: _name(s.signed_by),
                "copied_from_session_id": lambda s: s.copied_from_id,
            },
        ),
        Table(
            "addenda.csv",
            "What was added to a session note after it was signed: who, when, the text and the reason.",
            SessionAddendum.objects.filter(session__course__client=client)
            .select_related("author")
            .order_by("written_at", "id"),
            {
                "addendum_id": lambda a: a.pk,
                "session_id": lambda a: a.session_id,
                "author": lambda a: _name(a.author),
                "written_at": lambda a: at(a.written_at),
                "text": lambda a: a.text,
                "reason": lambda a: a.reason,
            },
        ),
        Table(
            "outcomes.csv",
            "Every score: pain (0-10), Roland-Morris (0-24) and STarT Back, with when it was recorded.",
            client.outcomes.order_by("recorded_at", "id"),
            {
                "outcome_id": lambda o: o.pk,
                "course_id": lambda o: o.course_id,
                "session_id": lambda o: o.session_id,
                "instrument": lambda o: o.instrument,
                "timepoint": lambda o: o.timepoint,
                "score": lambda o: o.score,
                "interpretation": lambda o: o.interpretation,
                "answers": lambda o: o.answers,
                "recorded_at": lambda o: at(o.recorded_at),
            },
        ),
        Table(
            "referrals.csv",
            "Each referral to a doctor: urgency, reason and the findings it was based on.",
            client.referrals.select_related("created_by").order_by("created_at", "id"),
            {
                "referral_id": lambda r: r.pk,
                "course_id": lambda r: r.course_id,
                "screening_id": lambda r: r.screening_id,
                "urgency": lambda r: r.urgency,
                "reason": lambda r: r.reason,
                "findings": lambda r: r.findings,
                "created_by": lambda r: _name(r.created_by),
                "created_at": lambda r: at(r.created_at),
            },
        ),
    ]


def scheduling_tables(client: Client) -> list[Table]:
    """The client's appointments and waitlist places (scheduling)."""
    at = _at(client)
    return [
        Table(
            "appointments.csv",
            "Every appointment, past and future, including cancelled ones and times offered from the waitlist.",
            Appointment.objects.filter(client=client)
            .select_related("service", "therapist", "room")
            .order_by("starts_at", "id"),
            {
                "appointment_id": lambda a: a.pk,
                "service": lambda a: a.service.name,
                "therapist": lambda a: _name(a.therapist),
                "room": lambda a: a.room.name,
                "starts_at": lambda a: at(a.starts_at),
                "ends_at": lambda a: at(a.ends_at),
                "status": lambda a: a.status,
                "course_id": lambda a: a.course_id,
                "created_at": lambda a: at(a.created_at),
                "cancelled_at": lambda a: at(a.cancelled_at),
                "cancel_reason": lambda a: a.cancel_reason,
                "late_change_reason": lambda a: a.late_change_reason,
                "override_reason": lambda a: a.override_reason,
            },
        ),
        Table(
            "waitlist.csv",
            "Your places on the waitlist.",
            WaitlistEntry.objects.filter(client=client).select_related("service", "therapist"),
            {
                "waitlist_id": lambda w: w.pk,
                "service": lambda w: w.service.name,
                "therapist": lambda w: _name(w.therapist),
                "earliest": lambda w: w.earliest,
                "latest": lambda w: w.latest,
                "status": lambda w: w.status,
                "note": lambda w: w.note,
                "created_at": lambda w: at(w.created_at),
            },
        ),
    ]


def _money(minor: int, currency: str) -> str:
    """An amount as a plain decimal of the currency's major unit ("1250.00"), next to its currency column."""
    return format_plain(minor, currency).replace(",", "")


def billing_tables(client: Client) -> list[Table]:
    """The client's invoices, credit notes, their lines, payments and refunds, and packages (billing)."""
    at = _at(client)
    documents_ = list(
        Invoice.objects.filter(client=client).select_related("credits", "appointment").order_by("issued_at", "number")
    )
    invoice_columns: dict[str, Callable[[Invoice], Any]] = {
        "invoice_id": lambda i: i.pk,
        "number": lambda i: i.number,
        "source": lambda i: i.source,
        "appointment_id": lambda i: i.appointment_id,
        "therapist": lambda i: i.therapist_name,
        "therapist_registration": lambda i: i.therapist_registration,
        "currency": lambda i: i.currency,
        "tax_rate_percent": lambda i: Decimal(i.tax_rate_bp) / 100,
        "net": lambda i: _money(i.net, i.currency),
        "tax": lambda i: _money(i.tax, i.currency),
        "total": lambda i: _money(i.total, i.currency),
        "issued_at": lambda i: at(i.issued_at),
    }
    return [
        Table(
            "invoices.csv",
            "Every invoice the clinic issued to you (amounts in the currency's units, e.g. pounds).",
            [i for i in documents_ if i.kind == Invoice.Kind.INVOICE],
            invoice_columns,
        ),
        Table(
            "credit_notes.csv",
            "Credit notes: corrections that reduce what an invoice asked for, with the reason.",
            [i for i in documents_ if i.kind == Invoice.Kind.CREDIT_NOTE],
            {
                **invoice_columns,
                "credits_invoice_number": lambda i: i.credits.number if i.credits else "",
                "reason": lambda i: i.reason,
            },
        ),
        Table(
            "invoice_lines.csv",
            "The lines of each invoice and credit note.",
            InvoiceLine.objects.filter(invoice__client=client).select_related("invoice").order_by("invoice_id", "id"),
            {
                "invoice_id": lambda line: line.invoice_id,
                "number": lambda line: line.invoice.number,
                "description": lambda line: line.description,
                "quantity": lambda line: line.quantity,
                "unit_amount": lambda line: _money(line.unit_amount, line.invoice.currency),
                "amount": lambda line: _money(line.amount, line.invoice.currency),
                "currency": lambda line: line.invoice.currency,
            },
        ),
        Table(
            "payments.csv",
            "Money you paid the clinic, and refunds it paid you.",
            Payment.objects.filter(client=client).select_related("invoice").order_by("taken_at", "id"),
            {
                "payment_id": lambda p: p.pk,
                "kind": lambda p: p.kind,
                "method": lambda p: p.method,
                "amount": lambda p: _money(p.amount, p.currency),
                "currency": lambda p: p.currency,
                "invoice_number": lambda p: p.invoice.number if p.invoice else "",
                "reference": lambda p: p.reference,
                "note": lambda p: p.note,
                "taken_at": lambda p: at(p.taken_at),
            },
        ),
        Table(
            "packages.csv",
            "Courses bought as packages of sessions, and how many were used.",
            Package.objects.filter(client=client)
            .select_related("service", "invoice")
            .annotate(used=Count("redemptions"))
            .order_by("sold_at", "id"),
            {
                "package_id": lambda p: p.pk,
                "service": lambda p: p.service.name,
                "sessions": lambda p: p.sessions,
                "used": lambda p: p.used,
                "price": lambda p: _money(p.price, p.invoice.currency),
                "currency": lambda p: p.invoice.currency,
                "invoice_number": lambda p: p.invoice.number,
                "status": lambda p: p.status,
                "expires_on": lambda p: p.expires_on,
                "sold_at": lambda p: at(p.sold_at),
                "closed_at": lambda p: at(p.closed_at),
            },
        ),
    ]


def access_tables(client: Client) -> list[Table]:
    """Who could reach the record and what was done with it: portal and feed access, erasure requests, the audit
    trail (kept last: it is the proof of every look at the rest)."""
    at = _at(client)
    portal_rows: list[tuple[str, int, dt.datetime, dt.datetime | None, dt.datetime | None, dt.datetime | None]]
    portal_rows = [("invitation", i.pk, i.created_at, i.expires_at, i.used_at, None) for i in client.invitations.all()]
    portal_rows += [
        ("calendar_feed", t.pk, t.created_at, None, None, t.revoked_at)
        for t in CalendarToken.objects.filter(client=client)
    ]
    return [
        Table(
            "portal_access.csv",
            "Invitations to the portal and calendar-feed addresses made for you (dates only; the secret links "
            "themselves are never stored).",
            portal_rows,
            {
                "kind": lambda r: r[0],
                "id": lambda r: r[1],
                "created_at": lambda r: at(r[2]),
                "expires_at": lambda r: at(r[3]),
                "used_at": lambda r: at(r[4]),
                "revoked_at": lambda r: at(r[5]),
            },
        ),
        Table(
            "erasure_requests.csv",
            "Any request you made to erase your data, and what happened to it.",
            client.erasure_requests.order_by("requested_at", "id"),
            {
                "request_id": lambda e: e.pk,
                "status": lambda e: e.status,
                "channel": lambda e: e.channel,
                "requested_at": lambda e: at(e.requested_at),
                "confirmed_at": lambda e: at(e.confirmed_at),
                "keep_until": lambda e: e.keep_until,
                "withdrawn_at": lambda e: at(e.withdrawn_at),
            },
        ),
        Table(
            "audit_events.csv",
            "The clinic's audit trail about you: every time someone looked at or changed your record, who and when.",
            AuditEvent.objects.filter(client_id=client.pk).order_by("at", "id"),
            {
                "at": lambda e: at(e.at),
                "actor": lambda e: e.actor,
                "action": lambda e: e.action,
                "object_type": lambda e: e.object_type,
                "object_id": lambda e: e.object_id,
                "detail": lambda e: e.detail,
                "ip_address": lambda e: e.ip_address,
            },
        ),
    ]


def _letter_path(clearance: Clearance) -> str:
    if not clearance.letter:
        return ""
    return f"letters/clearance-{clearance.pk}-{PurePosixPath(clearance.letter.name or '').name}"


def record_context(client: Client) -> dict[str, Any]:
    """What the readable record (HTML and PDF) shows: everything, grouped as the clinic works with it."""
    courses = list(client.courses.select_related("therapist").order_by("started_at", "id"))
    # The lists and names below are attributes for the templates only, set on the instances (hence the
    # ignore[attr-defined]: the models do not declare them).
    for course in courses:
        session_list = list(course.sessions.select_related("therapist").order_by("number"))
        course.session_list = session_list  # type: ignore[attr-defined]
        for session in session_list:
            session.technique_names = _techniques(session.techniques)  # type: ignore[attr-defined]
        course.technique_names = _techniques(course.techniques)  # type: ignore[attr-defined]
        course.adjunct_names = "; ".join(ADJUNCTS.get(a, a) for a in course.adjuncts)  # type: ignore[attr-defined]
        course.home_items = [(k.replace("_", " ").capitalize(), v) for k, v in (course.home_programme or {}).items()]  # type: ignore[attr-defined]
    screenings = list(client.screenings.order_by("created_at", "id"))
    for s in screenings:
        s.decision_text = DECISION_TEXT.get(s.decision, s.decision)  # type: ignore[attr-defined]
        s.finding_list = s.result.get("findings", [])  # type: ignore[attr-defined]
        s.precaution_lines = documents.precautions_lines(s.result.get("precautions"))  # type: ignore[attr-defined]
    intakes = list(client.intakes.select_related("reviewed_by").order_by("started_at", "id"))
    for i in intakes:
        i.answer_list = [(label, _answer_text(key, value)) for key, label, value in _intake_answers(i)]  # type: ignore[attr-defined]
    return {
        "clinic": client.clinic,
        "client": client,
        "generated_at": timezone.localtime(timezone.now(), client_zone(client)),
        "consents": list(client.consents.select_related("text").order_by("signed_at", "id")),
        "intakes": intakes,
        "screenings": screenings,
        "clearances": list(client.clearances.select_related("recorded_by").order_by("recorded_at", "id")),
        "courses": courses,
        "outcomes": list(client.outcomes.order_by("recorded_at", "id")),
        "referrals": list(client.referrals.select_related("created_by").order_by("created_at", "id")),
        "appointments": list(
            Appointment.objects.filter(client=client)
            .select_related("service", "therapist", "room")
            .order_by("starts_at", "id")
        ),
        "erasure_requests": list(client.erasure_requests.order_by("requested_at", "id")),
    }


def _answer_text(key: str, value: Any) -> str:
    """An answer as the client would read it: body regions by name, several choices joined."""
    values = value if isinstance(value, list) else [value]
    if key.endswith("_regions"):
        values = [REGIONS.get(str(v), v) for v in values]
    return ", ".join(str(v) for v in values)


def record_html(client: Client) -> str:
    """The readable record: one self-contained HTML page (styles inline, no external assets), also made a PDF."""
    return render_to_string("datarights/record.html", record_context(client))


def fhir_bundle(client: Client) -> tuple[bytes | None, str]:
    """The client's FHIR R4 Bundle as JSON (`backcare.interop.fhir.export.patient_bundle`), or None and the reason it
    is missing. A bundle that fails FHIR validation is left out rather than withholding the whole export."""
    from backcare.interop.fhir.export import ExportInvalid, patient_bundle  # fhirclient: at the first export only

    try:
        bundle = patient_bundle(client)
    except ExportInvalid:
        logger.exception("the FHIR bundle of client %s failed validation", client.pk)
        return None, "The FHIR file could not be made this time; the clinic has been told. Everything else is complete."
    return json.dumps(bundle, indent=2, ensure_ascii=False).encode("utf-8"), ""


README_HEAD = """\
Your record from {clinic}
{underline}

This archive holds everything {clinic} keeps about {name} (client number {client_id}), as it was on {when}.
It was made because you, or the clinic on your behalf, asked for a copy of your data.

Files
-----
"""

README_FOOT = """
About the CSV files
-------------------
CSV files open in any spreadsheet program. They are UTF-8 text, one header row, comma-separated. Dates and times are
in the clinic's time zone ({zone}) in ISO 8601 form (2025-03-14T10:30:00+00:00). Lists and nested details (body
chart, intake answers with several choices, screening findings) are written as JSON text inside a cell.

A cell whose text starts with = + - or @ begins with an apostrophe ('), so that a spreadsheet shows it as text and
never runs it as a formula. The apostrophe is not part of what was recorded.

The audit trail lists every look at and change of your record. It is kept even if your record is erased, because it
is the proof of who saw your data and when.

Questions: ask {clinic}{phone}.
"""


@dataclass
class Section:
    """Files of the archive (path -> content), what the README says of each, and notes for what is missing."""

    files: dict[str, bytes] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def readable_record(client: Client) -> Section:
    html = record_html(client)
    return Section(
        {"record.html": html.encode("utf-8"), "record.pdf": documents.html_to_pdf(html)},
        {
            "record.html": "Your whole record as one readable page: open it in a web browser.",
            "record.pdf": "The same record as a PDF, to print or keep.",
        },
    )


def fhir_section(client: Client) -> Section:
    bundle, missing = fhir_bundle(client)
    if bundle is None:
        return Section(notes=[f"(No FHIR file: {missing})"])
    return Section(
        {"fhir/bundle.json": bundle},
        {
            "fhir/bundle.json": "Your record in HL7 FHIR R4 (4.0.1), the standard format for health records: give it "
            "to another clinic or to your doctor's system to bring your record in."
        },
    )


def tables_section(*sources: Callable[[Client], list[Table]]) -> Callable[[Client], Section]:
    """A section of CSV files (`csv/<table>`), one per table of each source, in order."""

    def build(client: Client) -> Section:
        section = Section()
        for source in sources:
            for table in source(client):
                name = f"csv/{table.filename}"
                section.files[name] = table.csv()
                section.descriptions[name] = table.description
        return section

    return build


def clearance_letters(client: Client) -> Section:
    section = Section()
    for clearance in client.clearances.all():
        if clearance.letter:
            path = _letter_path(clearance)
            try:
                with clearance.letter.open("rb") as letter:
                    section.files[path] = letter.read()
            except OSError:
                section.files[path + ".missing.txt"] = b"The clinic's copy of this letter could not be read.\n"
            section.descriptions[path] = "A letter from your doctor that the clinic keeps with your record."
    return section


# Everything the export holds, in the order of the archive and its README: the one list to extend.
TABLES: tuple[Callable[[Client], list[Table]], ...] = (record_tables, scheduling_tables, billing_tables, access_tables)
SECTIONS: tuple[Callable[[Client], Section], ...] = (
    readable_record,
    fhir_section,
    tables_section(*TABLES),
    clearance_letters,
)


def client_tables(client: Client) -> list[Table]:
    """Every kind of record about this client, one table each; every query is filtered on this client."""
    return [table for source in TABLES for table in source(client)]


def export_zip(client: Client, *, by: Any, request: Any = None) -> Export:
    """The client's full export as a ZIP (built in memory). `by` must be the client or staff with clinical access."""
    own = access.client_of(by)
    if not (own is not None and own.pk == client.pk and access.staff_of(by) is None) and not access.can_see_clinical(
        by, client
    ):
        raise PermissionDenied("Only the client and the staff who see their clinical record may export it.")
    files: dict[str, bytes] = {}
    descriptions = {"README.txt": "This file."}
    notes: list[str] = []
    for build in SECTIONS:
        section = build(client)
        files.update(section.files)
        descriptions.update(section.descriptions)
        notes.extend(section.notes)
    zone = client_zone(client)
    clinic = client.clinic
    now = timezone.localtime(timezone.now(), zone)
    head = README_HEAD.format(
        clinic=clinic.name,
        underline="=" * len(f"Your record from {clinic.name}"),
        name=client.full_name,
        client_id=client.pk,
        when=now.strftime("%d %B %Y at %H:%M"),
    )
    lines = [f"{name}\n    {descriptions.get(name, '')}\n" for name in ["README.txt", *files]]
    lines += [f"{note}\n" for note in notes]
    foot = README_FOOT.format(
        zone=clinic.time_zone, clinic=clinic.name, phone=f" ({clinic.phone})" if clinic.phone else ""
    )
    readme = (head + "\n".join(lines) + foot).encode("utf-8")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", readme)
        for name, data in files.items():
            archive.writestr(name, data)
    names = ["README.txt", *files]
    audit.record(
        by,
        "export",
        client=client,
        obj=client,
        detail={"document": "full_export", "files": names, "bytes": buffer.tell()},
        request=request,
    )
    filename = f"record-{documents.slug(client.last_name)}-{documents.slug(client.first_name)}-{now:%Y-%m-%d}.zip"
    return Export(buffer.getvalue(), filename, names)


__all__ = [
    "SECTIONS",
    "TABLES",
    "Export",
    "Section",
    "Table",
    "client_tables",
    "client_zone",
    "csv_bytes",
    "export_zip",
    "record_html",
    "safe_cell",
]
