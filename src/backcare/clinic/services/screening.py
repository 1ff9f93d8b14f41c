"""Running the clinical core on a client's intake, and the hard stops it sets for treatment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Clearance, Client, Intake, Screening, StaffMember
from backcare.clinical.engine import default_screener
from backcare.clinical.intake import IntakeError, parse_intake
from backcare.clinical.vocabulary import DECISION_TEXT

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
) -> Screening:
    result = screen_document(document)
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
    return screening


def latest_screening(client: Client) -> Screening | None:
    return client.screenings.order_by("-created_at", "-id").first()


def clearance_rules(screening: Screening) -> list[str]:
    """The rules of a screening that ask for a physician's clearance."""
    return [f["rule"] for f in screening.result.get("findings", []) if f["decision"] == "clearance_required"]


def cleared_rules(client: Client) -> set[str]:
    covered: set[str] = set()
    for clearance in Clearance.objects.filter(client=client).select_related("screening"):
        covered.update(clearance_rules(clearance.screening))
    return covered


@dataclass
class Gate:
    """Whether treatment may go ahead on the client's latest screening, and why not."""

    allowed: bool
    reason: str
    screening: Screening | None
    clearance_pending: list[str] = field(default_factory=list)

    @property
    def needs_clearance(self) -> bool:
        return bool(self.clearance_pending)


def treatment_gate(client: Client) -> Gate:
    """The hard stops: no screening, a decision of postpone or referral, or clearance not yet recorded."""
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
        pending = sorted(set(clearance_rules(screening)) - cleared_rules(client))
        if pending:
            return Gate(
                False,
                "A physician's clearance must be recorded before the first session.",
                screening,
                clearance_pending=pending,
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
    request: Any = None,
) -> Clearance:
    from django.core.exceptions import ValidationError

    errors: dict[str, str] = {}
    if not given_by.strip():
        errors["given_by"] = "Say who gave the clearance (name and role)."
    if not note.strip() and not letter:
        errors["note"] = "Add a note of what the clinician said, or upload their letter."
    if screening.decision != "clearance_required":
        errors["__all__"] = "This screening does not ask for clearance."
    if errors:
        raise ValidationError(errors)
    clearance = Clearance.objects.create(
        screening=screening,
        client=screening.client,
        given_by=given_by.strip(),
        given_on=given_on,
        note=note,
        letter=letter or "",
        recorded_by=staff,
    )
    audit.record(
        staff.user,
        "record_clearance",
        client=screening.client,
        obj=clearance,
        detail={"screening": screening.pk, "rules": clearance_rules(screening), "given_by": clearance.given_by},
        request=request,
    )
    return clearance


__all__ = [
    "Gate",
    "IntakeError",
    "clearance_rules",
    "latest_screening",
    "record_clearance",
    "run_screening",
    "screen_document",
    "treatment_gate",
]
