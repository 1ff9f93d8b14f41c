"""Every URI and code the FHIR mapping uses, in one place (docs/fhir.md lists them for people).

Backcare's own concepts live under one base URI, `BASE`. It is a placeholder domain (`.example` is reserved by RFC
2606), so it can never clash with a real code system; a clinic that publishes its definitions may change it here
once. External code systems are used only where the code is certain to exist: LOINC 72514-3 for the 0-10 pain
score, HL7's observation-category "survey" and risk-probability codes, and UCUM "wk" for weeks.
"""

from __future__ import annotations

import uuid
from typing import Any

BASE = "https://backcare.example/fhir"

# --- Identifier systems (Identifier.system) ---------------------------------------------------------------------
SID_CLIENT = f"{BASE}/sid/client"
SID_STAFF = f"{BASE}/sid/staff"
SID_CLINIC = f"{BASE}/sid/clinic"
SID_ROOM = f"{BASE}/sid/room"

# --- Code systems -------------------------------------------------------------------------------------------------


def code_system(name: str) -> str:
    return f"{BASE}/CodeSystem/{name}"


CS_REGION = code_system("region")
CS_GOAL = code_system("goal")
CS_ONSET = code_system("onset")
CS_TECHNIQUE = code_system("technique")
CS_ADJUNCT = code_system("adjunct")
CS_DECISION = code_system("screening-decision")
CS_RULE = code_system("screening-rule")
CS_REFERRAL = code_system("referral-urgency")
CS_AGREE = code_system("start-back-answer")
CS_BOTHER = code_system("start-back-bothersomeness")
CS_SB_GROUP = code_system("start-back-group")
CS_CONCEPT = code_system("concept")
"""Backcare's own concepts: what a resource is about (a screening, a massage session, a score...)."""
CS_DOCUMENT = code_system("document-type")
CS_RESPONSE = code_system("session-response")
CS_HOME = code_system("home-programme")
CS_APPOINTMENT = code_system("appointment-status")
CS_INVOICE_KIND = code_system("invoice-kind")  # invoice, credit_note
CS_CHARGE = code_system("charge-source")  # session, late_cancellation, no_show, package...
CS_COURSE = code_system("course-status")

LOINC = "http://loinc.org"
LOINC_PAIN_NRS = "72514-3"
LOINC_PAIN_NRS_DISPLAY = "Pain severity - 0-10 verbal numeric rating [Score] - Reported"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
UCUM = "http://unitsofmeasure.org"

# --- Extensions ---------------------------------------------------------------------------------------------------


def extension_url(name: str) -> str:
    return f"{BASE}/StructureDefinition/{name}"


EXT_TIMEPOINT = extension_url("outcome-timepoint")
EXT_REVIEW_NOTE = extension_url("intake-review-note")
EXT_REVIEWED_AT = extension_url("intake-reviewed")
EXT_TECHNIQUE = extension_url("technique")
EXT_PRESSURE = extension_url("pressure")
EXT_RESPONSE = extension_url("session-response")
EXT_SCREENING_KIND = extension_url("screening-kind")

# --- Questionnaires (canonical URLs) ------------------------------------------------------------------------------
Q_INTAKE = f"{BASE}/Questionnaire/intake"
Q_START_BACK = f"{BASE}/Questionnaire/start-back"
Q_RMDQ = f"{BASE}/Questionnaire/rmdq"
START_BACK_VERSION = "1"
RMDQ_VERSION = "1"

# --- Backcare concepts (CS_CONCEPT) -------------------------------------------------------------------------------
CONCEPTS = {
    "screening": "Screening for red flags and contraindications to massage",
    "start-back": "Keele STarT Back risk group",
    "rmdq-score": "Roland-Morris Disability Questionnaire score (0-24)",
    "massage-session": "Massage therapy session for back pain",
    "massage-course": "Course of massage therapy sessions",
    "home-programme": "Home programme",
}

DOCUMENT_TYPES = {"referral-letter": "Referral letter to the client's physician", "clearance": "Physician's clearance"}

# Outcome timepoints (Outcome.Timepoint) and who may be imported with which.
TIMEPOINTS = ("intake", "baseline", "session", "reassessment", "discharge")
RMDQ_TIMEPOINTS = ("baseline", "reassessment", "discharge")

# STarT Back groups as HL7 risk-probability codes.
SB_RISK = {"low": "low", "medium": "moderate", "high": "high"}

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)


def uid(*parts: Any) -> str:
    """A stable UUID for a record: the same parts always give the same id, so the same export is identical."""
    return str(uuid.uuid5(NAMESPACE, "/".join(str(p) for p in parts)))


def urn(*parts: Any) -> str:
    return f"urn:uuid:{uid(*parts)}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    """A CodeableConcept with one coding (and the display as its text unless another text is given)."""
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text or display:
        out["text"] = text or display
    return out


def backcare_concept(code: str) -> dict[str, Any]:
    return concept(CS_CONCEPT, code, CONCEPTS[code])
