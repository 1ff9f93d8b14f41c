"""Running the clinical core on a client's intake, and the hard stops it sets for treatment."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Clearance, Client, Intake, Screening, StaffMember
from backcare.clinic.services import assessments, clearances
from backcare.clinical.engine import default_screener
from backcare.clinical.intake import IntakeError, parse_intake
from backcare.clinical.vocabulary import DECISION_TEXT, PRESSURE_SCALE, REGIONS, TECHNIQUES

BLOCKING = frozenset({"postpone", "refer_urgent", "refer_emergency"})


def screen_document(document: dict[str, Any]) -> dict[str, Any]:
    """Screen a contract intake document; raises IntakeError naming each bad field."""
    intake = parse_intake(json.dumps(document).encode())
    result: dict[str, Any] = default_screener().screen(intake)
    return result


@transaction.atomic
def run_screening(
    client: Client,
    document: dict[str, Any],
    *,
    kind: str,
    intake: Intake | None = None,
    by: Any = None,
    request: Any = None,
    assessment: assessments.Assessment | None = None,
) -> Screening:
    """Screen and keep the result. A health update or an intake review that removes or downgrades a finding of the
    latest screening that gave emergency, urgent, postpone or clearance is refused without a medical assessment
    (`services.assessments`); with one, the assessment is recorded and audited with the findings withdrawn."""
    result = screen_document(document)
    gone: list[dict[str, Any]] = []
    if kind in (Screening.Kind.REVIEW, Screening.Kind.PRE_SESSION):
        gone = assessments.withdrawn(latest_screening(client), result)
        assessments.check(assessment, gone)
    screening = Screening.objects.create(
        client=client,
        intake=intake,
        kind=kind,
        document=document,
        result=result,
        decision=result["decision"],
        referral=result["referral"],
        rule_base_version=result["rule_base"]["version"],
        rule_base_digest=result["rule_base"]["digest"],
        created_by=by if getattr(by, "is_authenticated", False) else None,
    )
    audit.record(
        by,
        "screen",
        client=client,
        obj=screening,
        detail={"kind": kind, "decision": screening.decision, "referral": screening.referral},
        request=request,
    )
    if gone:
        assert assessment is not None
        staff = getattr(by, "staff", None)
        if not isinstance(staff, StaffMember):
            raise ValidationError("Only clinic staff can withdraw a red flag.")
        assessments.record(assessment, gone, screening, staff=staff, request=request)
    return screening


def latest_screening(client: Client) -> Screening | None:
    return client.screenings.order_by("-created_at", "-id").first()


def clearance_rules(screening: Screening) -> list[str]:
    """The rules of a screening that ask for a physician's clearance."""
    return [f["rule"] for f in screening.result.get("findings", []) if f["decision"] == "clearance_required"]


def pending_clearance(screening: Screening, today: dt.date | None = None) -> clearances.Pending:
    """The findings of the screening that still wait for a clearance (see `services.clearances`)."""
    given = Clearance.objects.filter(client_id=screening.client_id).select_related("screening")
    return clearances.pending(screening, given, today)


@dataclass
class Gate:
    """Whether treatment may go ahead on the client's latest screening, and why not."""

    allowed: bool
    reason: str
    screening: Screening | None
    clearance_pending: list[str] = field(default_factory=list)
    pending_findings: list[dict[str, Any]] = field(default_factory=list)
    clearance_notes: list[str] = field(default_factory=list)
    needs_consent: bool = False

    @property
    def needs_clearance(self) -> bool:
        return bool(self.clearance_pending)


def treatment_gate(client: Client, today: dt.date | None = None) -> Gate:
    """The hard stops: no screening, a decision of postpone or referral, clearance not yet recorded, or no current
    signed consent."""
    screening = latest_screening(client)
    if screening is None:
        return Gate(False, "No screening yet: the client's intake must be submitted and screened first.", None)
    if screening.decision in BLOCKING:
        return Gate(
            False,
            f"The latest screening says: {DECISION_TEXT[screening.decision]} No course or session can start.",
            screening,
        )
    if screening.decision == "clearance_required":
        pending = pending_clearance(screening, today)
        if pending.keys:
            return Gate(
                False,
                "A physician's clearance must be recorded before the first session.",
                screening,
                clearance_pending=pending.rules,
                pending_findings=pending.keys,
                clearance_notes=pending.notes,
            )
    from backcare.clinic.services.consent import has_current_consent

    if not has_current_consent(client):
        return Gate(
            False,
            "No signed consent: the client must sign the current consent form (online, or in the clinic) before any "
            "course or session.",
            screening,
            needs_consent=True,
        )
    return Gate(True, "", screening)


@transaction.atomic
def record_clearance(
    screening: Screening,
    *,
    given_by: str,
    given_on: Any,
    note: str = "",
    letter: Any = None,
    staff: StaffMember,
    findings: list[str] | None = None,
    valid_until: dt.date | None = None,
    avoid_regions: list[str] | None = None,
    avoid_techniques: list[str] | None = None,
    max_pressure: int | None = None,
    request: Any = None,
) -> Clearance:
    """Record the physician's clearance of named findings (`key_token`s; None: every finding still pending) of the
    client's latest screening. It lapses after the clinic's `clearance_valid_days` or the physician's own date."""
    errors: dict[str, str] = {}
    if not given_by.strip():
        errors["given_by"] = "Say who gave the clearance (name and role)."
    if not note.strip() and not letter:
        errors["note"] = "Add a note of what the clinician said, or upload their letter."
    if screening.decision != "clearance_required":
        errors["__all__"] = "This screening does not ask for clearance."
    latest = latest_screening(screening.client)
    if latest is not None and latest.pk != screening.pk:
        errors["__all__"] = (
            "A newer screening has been made since this one: record the clearance against the latest screening."
        )
    named = {clearances.key_token(k): k for k in clearances.clearance_keys(screening)}
    if findings is None:
        findings = [clearances.key_token(k) for k in pending_clearance(screening).keys] or list(named)
    unknown = [f for f in findings if f not in named]
    if (unknown or not findings) and "__all__" not in errors:
        errors["findings"] = "Tick each finding the physician cleared; only findings of this screening can be cleared."
    bad_regions = [r for r in avoid_regions or [] if r not in REGIONS]
    bad_techniques = [t for t in avoid_techniques or [] if t not in TECHNIQUES]
    if bad_regions:
        errors["avoid_regions"] = f"Unknown region: {', '.join(bad_regions)}."
    if bad_techniques:
        errors["avoid_techniques"] = f"Unknown technique: {', '.join(bad_techniques)}."
    if max_pressure is not None and max_pressure not in PRESSURE_SCALE:
        errors["max_pressure"] = "Pressure must be from 1 (light touch) to 5 (deep)."
    if isinstance(given_on, dt.date) and valid_until is not None and valid_until < given_on:
        errors["valid_until"] = "The clearance cannot end before the day it was given."
    if errors:
        raise ValidationError(errors)
    period = dt.timedelta(days=screening.client.clinic.clearance_valid_days)
    until = given_on + period if isinstance(given_on, dt.date) else None
    if valid_until is not None and (until is None or valid_until < until):
        until = valid_until
    clearance = Clearance.objects.create(
        screening=screening,
        client=screening.client,
        given_by=given_by.strip(),
        given_on=given_on,
        note=note,
        letter=letter or "",
        recorded_by=staff,
        findings=[named[f] for f in findings if f in named],
        valid_until=until,
        avoid_regions=list(avoid_regions or []),
        avoid_techniques=list(avoid_techniques or []),
        max_pressure=max_pressure,
    )
    audit.record(
        staff.user,
        "record_clearance",
        client=screening.client,
        obj=clearance,
        detail={
            "screening": screening.pk,
            "findings": clearance.findings,
            "given_by": clearance.given_by,
            "valid_until": until.isoformat() if until else None,
            "restrictions": {
                "avoid_regions": clearance.avoid_regions,
                "avoid_techniques": clearance.avoid_techniques,
                "max_pressure": clearance.max_pressure,
            },
        },
        request=request,
    )
    return clearance


__all__ = [
    "Gate",
    "IntakeError",
    "clearance_rules",
    "latest_screening",
    "pending_clearance",
    "record_clearance",
    "run_screening",
    "screen_document",
    "treatment_gate",
]
