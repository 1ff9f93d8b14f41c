"""A red flag is never unticked silently: withdrawing it needs a medical assessment on record.

A finding *gates* treatment when it gives emergency or urgent referral, postpone or clearance. When a new screening
of the same client (a pre-session health update, the therapist's intake review) no longer has a gating finding of
the latest screening, or has it with a weaker decision, the change is refused unless a medical assessment is
given: who assessed (physician, service), when, what they found or advised, why the finding no longer applies, and
optionally their letter. The assessment is kept and audited with the findings withdrawn.

A referral gets its outcome the same way (`record_referral_outcome`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import MedicalAssessment, Referral, Screening, StaffMember
from backcare.clinical.vocabulary import DECISIONS

GATING = ("clearance_required", "postpone", "refer_urgent", "refer_emergency")


@dataclass
class Assessment:
    """What the therapist records about the medical assessment (from a form or the API)."""

    assessed_by: str = ""
    service: str = ""
    assessed_on: dt.date | None = None
    outcome: str = ""
    reason: str = ""
    letter: Any = None

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> Assessment | None:
        if not data or not any(v for k, v in data.items() if k != "letter"):
            return None
        values: dict[str, Any] = {
            k: data.get(k) or ("" if k not in ("assessed_on", "letter") else None) for k in FIELDS
        }
        return cls(**values)


FIELDS = ("assessed_by", "service", "assessed_on", "outcome", "reason", "letter")


def _rank(decision: str) -> int:
    return DECISIONS.index(decision) if decision in DECISIONS else -1


def withdrawn(previous: Screening | None, result: dict[str, Any]) -> list[dict[str, Any]]:
    """The gating findings of `previous` that the new result drops or downgrades."""
    if previous is None:
        return []
    now = {(f["rule"], f.get("region")): f["decision"] for f in result.get("findings", [])}
    out = []
    for f in previous.result.get("findings", []):
        if f.get("decision") not in GATING:
            continue
        after = now.get((f["rule"], f.get("region")))
        if after is None or _rank(after) < _rank(f["decision"]):
            out.append(
                {
                    "rule": f["rule"],
                    "title": f.get("title", f["rule"]),
                    "region": f.get("region"),
                    "decision": f["decision"],
                    "now": after,
                }
            )
    return out


def check(assessment: Assessment | None, gone: list[dict[str, Any]], *, prefix: str = "assessment_") -> None:
    """Refuse the change when gating findings are withdrawn without a complete assessment; messages name fields."""
    if not gone:
        return
    names = "; ".join(g["title"] for g in gone)
    if assessment is None:
        raise ValidationError(
            {
                f"{prefix}assessed_by": (
                    f"Medical assessment: removing or downgrading {names} needs a medical assessment on record. "
                    "Say who assessed the client, when, and what they found, or keep the finding."
                )
            }
        )
    errors: dict[str, str] = {}
    if not assessment.assessed_by.strip():
        errors[f"{prefix}assessed_by"] = "Assessed by: say who assessed the client (name and role)."
    if assessment.assessed_on is None:
        errors[f"{prefix}assessed_on"] = "Assessed on: give the date of the assessment."
    elif assessment.assessed_on > timezone.localdate():
        errors[f"{prefix}assessed_on"] = "Assessed on: this date is in the future."
    if not assessment.outcome.strip():
        errors[f"{prefix}outcome"] = "Outcome: say what the assessment found or advised."
    if not assessment.reason.strip():
        errors[f"{prefix}reason"] = f"Reason: say why {names} no longer applies."
    if errors:
        raise ValidationError(errors)


def record(
    assessment: Assessment,
    gone: list[dict[str, Any]],
    screening: Screening,
    *,
    staff: StaffMember,
    request: Any = None,
) -> MedicalAssessment:
    assert assessment.assessed_on is not None
    row = MedicalAssessment.objects.create(
        client=screening.client,
        screening=screening,
        withdrawn=gone,
        recorded_by=staff,
        **_recorded(assessment),
    )
    audit.record(
        staff.user,
        "withdraw_red_flag",
        client=screening.client,
        obj=row,
        detail={
            "screening": screening.pk,
            "withdrawn": gone,
            "assessed_by": row.assessed_by,
            "service": row.service,
            "assessed_on": row.assessed_on.isoformat(),
            "reason": row.reason,
        },
        request=request,
    )
    return row


@transaction.atomic
def record_referral_outcome(
    referral: Referral, assessment: Assessment, *, staff: StaffMember, request: Any = None
) -> MedicalAssessment:
    """The outcome of a referral: assessed on what date, by whom, what was advised. Recorded once."""
    errors: dict[str, str] = {}
    if MedicalAssessment.objects.filter(referral=referral).exists():
        errors["__all__"] = "The outcome of this referral is already recorded."
    if not assessment.assessed_by.strip():
        errors["assessed_by"] = "Assessed by: say who saw the client (name and role)."
    if assessment.assessed_on is None:
        errors["assessed_on"] = "Assessed on: give the date the client was seen."
    elif assessment.assessed_on > timezone.localdate():
        errors["assessed_on"] = "Assessed on: this date is in the future."
    elif assessment.assessed_on < timezone.localdate(referral.created_at):
        errors["assessed_on"] = "Assessed on: this is before the referral was made."
    if not assessment.outcome.strip():
        errors["outcome"] = "What was advised: say what the clinician found and advised."
    if errors:
        raise ValidationError(errors)
    assert assessment.assessed_on is not None
    row = MedicalAssessment.objects.create(
        client=referral.client,
        referral=referral,
        screening=referral.screening,
        recorded_by=staff,
        **_recorded(assessment),
    )
    audit.record(
        staff.user,
        "referral_outcome",
        client=referral.client,
        obj=row,
        detail={"referral": referral.pk, "assessed_by": row.assessed_by, "assessed_on": row.assessed_on.isoformat()},
        request=request,
    )
    return row


def _recorded(assessment: Assessment) -> dict[str, Any]:
    """What an assessment keeps of what staff typed, trimmed: the same for a withdrawal and a referral outcome."""
    return {
        "assessed_by": assessment.assessed_by.strip(),
        "service": assessment.service.strip(),
        "assessed_on": assessment.assessed_on,
        "outcome": assessment.outcome.strip(),
        "reason": assessment.reason.strip(),
        "letter": assessment.letter or "",
    }
