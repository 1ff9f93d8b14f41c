"""Printable documents: the referral letter to the client's physician, the discharge (or progress) summary and the
client's home programme. Each is HTML from a template under `clinic/pdf/`, turned into PDF by WeasyPrint.

Pure of the request: views check who may ask, record the audit event and serve the bytes. WeasyPrint may load
nothing from the network or the disk: only `data:` URIs (the embedded chart) are fetched.
"""

from __future__ import annotations

import base64
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.template.loader import render_to_string
from django.utils import timezone

from backcare.clinic import charts
from backcare.clinic.models import Client, Course, Referral, Screening, TreatmentSession
from backcare.clinic.services.outcomes import review_course
from backcare.clinic.services.sessions import DEFAULT_AFTERCARE
from backcare.clinical.vocabulary import (
    ADJUNCTS,
    DECISION_TEXT,
    POSITIONING,
    PRESSURE_SCALE,
    REGIONS,
    TECHNIQUES,
)

NOT_A_DIAGNOSIS = (
    "This letter is from a massage therapist. It is not a diagnosis: it reports what the client told us and what our "
    "screening found, so that you can assess the client."
)

HOME_PROGRAMME_HEADINGS = {
    "exercise": "Staying active and exercise",
    "posture": "Posture and sitting",
    "relaxation": "Relaxation and breathing",
    "self_massage": "Self-massage",
    "heat": "Warmth",
}


@dataclass
class Pdf:
    """A rendered document: the PDF bytes, the file name to offer and the HTML it was made from."""

    content: bytes
    filename: str
    html: str


def html_to_pdf(html: str) -> bytes:
    """WeasyPrint, allowed to load data: URIs only (never a file or a web address)."""
    from weasyprint import HTML, URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"}, timeout=5)
    pdf: bytes = HTML(string=html, url_fetcher=fetcher, base_url=None).write_pdf()
    return pdf


def slug(text: str) -> str:
    """ASCII letters, digits and hyphens only, for a file name."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-") or "client"


def _filename(kind: str, client: Client) -> str:
    return f"{kind}-{slug(client.last_name)}-{slug(client.first_name)}-{timezone.localdate():%Y-%m-%d}.pdf"


def _letterhead(client: Client) -> dict[str, Any]:
    clinic = client.clinic
    return {
        "clinic": clinic,
        "today": timezone.localdate(),
    }


def precautions_lines(precautions: dict[str, Any] | None) -> list[str]:
    """The screening's precautions as plain sentences."""
    if not precautions:
        return []
    lines: list[str] = []
    regions = [REGIONS.get(r, r) for r in precautions.get("avoid_regions", [])]
    if regions:
        lines.append("Regions avoided: " + ", ".join(regions) + ".")
    limit = precautions.get("max_pressure")
    if limit is not None:
        lines.append(f"Pressure no more than {limit} of 5 ({PRESSURE_SCALE.get(limit, '')}).")
    for position in precautions.get("positioning", []):
        lines.append(POSITIONING.get(position, position) + ".")
    techniques = [TECHNIQUES.get(t, t) for t in precautions.get("avoid_techniques", [])]
    if techniques:
        lines.append("Techniques avoided: " + ", ".join(techniques) + ".")
    return lines


def _course_facts(course: Course | None) -> dict[str, Any]:
    """Sessions, scores as sentences, prompts: what the documents say about a course."""
    if course is None:
        return {"course": None}
    sessions = list(course.sessions.order_by("number"))
    for session in sessions:  # technique_names: for the templates only, the model does not declare it
        session.technique_names = ", ".join(TECHNIQUES.get(t, t) for t in session.techniques)  # type: ignore[attr-defined]
    review = review_course(course)
    changes = [c.describe() for c in (review.pain, review.rmdq) if c is not None]
    return {
        "course": course,
        "sessions": sessions,
        "sessions_completed": sum(1 for s in sessions if s.status == TreatmentSession.Status.COMPLETED),
        "techniques": [TECHNIQUES.get(t, t) for t in course.techniques],
        "adjuncts": [ADJUNCTS.get(a, a) for a in course.adjuncts],
        "changes": changes,
        "prompts": review.prompts,
        "guarding": [s.number for s in sessions if s.response == TreatmentSession.Response.GUARDING],
    }


def _findings(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "title": f.get("title", f.get("rule", "")),
            "decision": DECISION_TEXT.get(f.get("decision", ""), f.get("decision", "")),
            "rationale": f.get("rationale", ""),
        }
        for f in findings
    ]


# --- Referral letter --------------------------------------------------------------------------------------


def referral_letter_html(referral: Referral) -> str:
    client = referral.client
    screening: Screening | None = referral.screening or client.screenings.order_by("-created_at", "-id").first()
    course = referral.course or client.courses.order_by("-started_at", "-id").first()
    context = {
        **_letterhead(client),
        "referral": referral,
        "client": client,
        "therapist": referral.created_by,
        "findings": _findings(referral.findings),
        "screening": screening,
        "decision_text": DECISION_TEXT.get(screening.decision, "") if screening is not None else "",
        "precautions": precautions_lines(screening.result.get("precautions") if screening is not None else None),
        "not_a_diagnosis": NOT_A_DIAGNOSIS,
        **_course_facts(course),
    }
    return render_to_string("clinic/pdf/referral_letter.html", context)


def referral_letter_pdf(referral: Referral) -> Pdf:
    html = referral_letter_html(referral)
    return Pdf(html_to_pdf(html), _filename("referral-letter", referral.client), html)


# --- Discharge summary ------------------------------------------------------------------------------------


def chart_data_uri(client: Client, course: Course | None) -> str:
    svg = charts.progress_chart_svg(client, course)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def discharge_html(course: Course) -> str:
    client = course.client
    context = {
        **_letterhead(client),
        "client": client,
        "therapist": course.therapist,
        "ended": course.status != Course.Status.ACTIVE,
        "precautions": precautions_lines(course.precautions),
        "chart": chart_data_uri(client, course),
        "chart_summary": charts.summarise(client, course),
        "referrals": list(course.referrals.order_by("created_at")),
        "home_programme": _home_programme_items(course),
        **_course_facts(course),
    }
    return render_to_string("clinic/pdf/discharge.html", context)


def discharge_pdf(course: Course) -> Pdf:
    html = discharge_html(course)
    kind = "discharge-summary" if course.status != Course.Status.ACTIVE else "progress-summary"
    return Pdf(html_to_pdf(html), _filename(kind, course.client), html)


# --- Home programme ---------------------------------------------------------------------------------------


def _home_programme_items(course: Course) -> list[tuple[str, str]]:
    items: list[tuple[str, str]] = []
    for key, text in (course.home_programme or {}).items():
        if not str(text).strip():
            continue
        heading = HOME_PROGRAMME_HEADINGS.get(key, str(key).replace("_", " ").capitalize())
        items.append((heading, str(text)))
    return items


def home_programme_html(course: Course) -> str:
    client = course.client
    last = course.sessions.order_by("-number").first()
    context = {
        **_letterhead(client),
        "client": client,
        "course": course,
        "therapist": course.therapist,
        "items": _home_programme_items(course),
        "aftercare": (last.aftercare if last is not None and last.aftercare else DEFAULT_AFTERCARE),
    }
    return render_to_string("clinic/pdf/home_programme.html", context)


def home_programme_pdf(course: Course) -> Pdf:
    html = home_programme_html(course)
    return Pdf(html_to_pdf(html), _filename("home-programme", course.client), html)


__all__ = [
    "NOT_A_DIAGNOSIS",
    "Pdf",
    "discharge_html",
    "discharge_pdf",
    "home_programme_html",
    "home_programme_pdf",
    "html_to_pdf",
    "precautions_lines",
    "referral_letter_html",
    "referral_letter_pdf",
]
