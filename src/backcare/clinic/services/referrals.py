"""Referrals to the client's physician, from a screening, a session or the course's outcome."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Client, Course, Referral, Screening, StaffMember


@transaction.atomic
def create_referral(
    client: Client,
    *,
    staff: StaffMember,
    urgency: str,
    reason: str,
    screening: Screening | None = None,
    course: Course | None = None,
    request: Any = None,
) -> Referral:
    errors = {}
    if urgency not in Referral.Urgency.values:
        errors["urgency"] = "Choose routine, urgent or emergency."
    if not reason.strip():
        errors["reason"] = "Give the reason for the referral; it goes in the letter."
    if errors:
        raise ValidationError(errors)
    findings = []
    if screening is not None:
        findings = [
            {"rule": f["rule"], "title": f["title"], "decision": f["decision"], "rationale": f["rationale"]}
            for f in screening.result.get("findings", [])
            if f["decision"] != "proceed"
        ]
    referral = Referral.objects.create(
        client=client,
        course=course,
        screening=screening,
        urgency=urgency,
        reason=reason.strip(),
        findings=findings,
        created_by=staff,
    )
    audit.record(
        staff.user, "create_referral", client=client, obj=referral, detail={"urgency": urgency}, request=request
    )
    return referral
