"""Treatment sessions: the pre-session health update, the SOAP note with body chart, and the precaution checks."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import Course, Screening, StaffMember, TreatmentSession
from backcare.clinic.services.assessments import Assessment
from backcare.clinic.services.clearances import precautions_for
from backcare.clinic.services.outcomes import record_pain
from backcare.clinic.services.screening import latest_screening, run_screening, treatment_gate
from backcare.clinic.signals import session_recorded
from backcare.clinical.vocabulary import PRESSURE_SCALE, REGIONS, TECHNIQUES
from backcare.common.rowlock import locked

HEALTH_UPDATE_VALID = timedelta(hours=12)
DEFAULT_AFTERCARE = (
    "Some soreness or aching for up to about 36 hours is expected and passes by itself. Drink water, keep moving "
    "gently, and use warmth if it helps. Contact the clinic or your doctor about anything else, or anything that "
    "lasts longer."
)


@transaction.atomic
def health_update(
    course: Course,
    *,
    staff: StaffMember,
    new_findings: list[dict[str, Any]],
    pain_now: int | None,
    resolved: list[dict[str, Any]] | None = None,
    assessment: Assessment | None = None,
    request: Any = None,
) -> Screening:
    """Re-run the screening with what is new since last time; the result can stop the session.

    `resolved` names findings of the last screening that no longer apply (a fever that has passed, a healed
    bruise), as {"code", "region"?}; they are left out of the new screening and the removal is audited. Removing or
    downgrading a red flag (emergency, urgent, postpone or clearance) needs `assessment` (see services.assessments)."""
    last = latest_screening(course.client)
    base = last.document if last is not None else course.screening.document
    document = copy.deepcopy(base)
    document["id"] = f"client-{course.client_id}-pre-session-{course.sessions.count() + 1}"
    gone = {(f["code"], f.get("region")) for f in resolved or []}
    removed = [f for f in document.get("findings", []) if (f["code"], f.get("region")) in gone]
    if removed:
        document["findings"] = [f for f in document["findings"] if (f["code"], f.get("region")) not in gone]
        audit.record(
            staff.user,
            "resolve_findings",
            client=course.client,
            obj=course,
            detail={"resolved": removed, "screening": last.pk if last is not None else None},
            request=request,
        )
    known = {(f["code"], f.get("region")) for f in document.get("findings", [])}
    for finding in new_findings:
        if (finding["code"], finding.get("region")) not in known:
            document.setdefault("findings", []).append(finding)
    if pain_now is not None:
        document["pain"]["intensity"] = pain_now
    # The update belongs to the same episode as the screening it starts from (its intake), so clearances of this
    # episode still apply to it and a new intake starts a new episode.
    episode = last.intake if last is not None else course.screening.intake
    return run_screening(
        course.client,
        document,
        kind=Screening.Kind.PRE_SESSION,
        intake=episode,
        by=staff.user,
        request=request,
        assessment=assessment,
    )


@dataclass
class Deviation:
    kind: str
    text: str


def deviations(
    precautions: dict[str, Any], regions_treated: list[str], techniques: list[str], pressure: int | None
) -> list[Deviation]:
    """Where a session goes beyond the screening's precautions; each needs an explicit, recorded reason."""
    found: list[Deviation] = []
    for region in regions_treated:
        if region in precautions.get("avoid_regions", []):
            found.append(Deviation("avoid_region", f"treated {REGIONS[region].lower()}, a region to avoid"))
    for technique in techniques:
        if technique in precautions.get("avoid_techniques", []):
            found.append(Deviation("avoid_technique", f"used {TECHNIQUES[technique]}, a technique to avoid"))
    limit = precautions.get("max_pressure")
    if pressure is not None and limit is not None and pressure > limit:
        found.append(
            Deviation(
                "pressure",
                f"pressure {pressure} ({PRESSURE_SCALE[pressure]}) exceeds the maximum "
                f"{limit} ({PRESSURE_SCALE[limit]})",
            )
        )
    return found


def _check_chart(body_chart: dict[str, Any]) -> list[str]:
    treated: list[str] = []
    for region, marks in body_chart.items():
        if region not in REGIONS:
            raise ValidationError({"body_chart": f"Unknown region {region!r} on the body chart."})
        tension, pain = marks.get("tension"), marks.get("pain")
        if tension is not None and (not isinstance(tension, int) or not 0 <= tension <= 3):
            raise ValidationError({"body_chart": f"Tension for {REGIONS[region].lower()} must be 0 to 3."})
        if pain is not None and (not isinstance(pain, int) or not 0 <= pain <= 10):
            raise ValidationError({"body_chart": f"Pain for {REGIONS[region].lower()} must be 0 to 10."})
        if marks.get("treated"):
            treated.append(region)
    return treated


@transaction.atomic
def record_session(
    course: Course,
    *,
    staff: StaffMember,
    health_update: Screening | None,
    techniques: list[str],
    pressure: int | None,
    body_chart: dict[str, Any],
    pain_before: int | None,
    pain_after: int | None,
    response: str = "",
    subjective: str = "",
    objective: str = "",
    assessment: str = "",
    plan_note: str = "",
    aftercare: str = "",
    deviation_reason: str = "",
    stopped: bool = False,
    stop_reason: str = "",
    stop_advice: str = "",
    stop_referral: Any = None,
    submission_key: str | None = None,
    request: Any = None,
) -> TreatmentSession:
    if submission_key:
        existing = TreatmentSession.objects.filter(submission_key=submission_key).first()
        if existing is not None:
            return existing  # a double submission of the same form creates nothing twice
    course = locked(Course.objects.all()).get(pk=course.pk)
    errors: dict[str, str] = {}
    if course.status != Course.Status.ACTIVE:
        raise ValidationError("This course has ended; no more sessions can be recorded.")
    number = course.sessions.count() + 1
    if number > course.sessions_planned:
        raise ValidationError(
            f"All {course.sessions_planned} planned sessions are recorded; extend the course to add another."
        )
    if (
        health_update is None
        or health_update.client_id != course.client_id
        or health_update.kind != Screening.Kind.PRE_SESSION
        or timezone.now() - health_update.created_at > HEALTH_UPDATE_VALID
    ):
        raise ValidationError("Ask the pre-session health update (anything new since last time?) before the session.")
    used = health_update.treatment_sessions.first()
    if used is not None:
        raise ValidationError(
            f"This health update was already used for session {used.number}. "
            "Ask the health update again before the next session."
        )
    gate = treatment_gate(course.client)
    if not gate.allowed:
        raise ValidationError(gate.reason)
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if not techniques and not stopped:
        errors["techniques"] = "Record at least one technique used."
    elif unknown:
        errors["techniques"] = f"Unknown technique: {', '.join(unknown)}."
    if pressure is not None and pressure not in PRESSURE_SCALE:
        errors["pressure"] = "Pressure must be from 1 (light touch) to 5 (deep)."
    for name, value in (("pain_before", pain_before), ("pain_after", pain_after)):
        if value is not None and not 0 <= value <= 10:
            errors[name] = "Pain must be a whole number from 0 to 10."
    if pain_before is None:
        errors["pain_before"] = "Record the client's pain before the session (0 to 10)."
    if response and response not in TreatmentSession.Response.values:
        errors["response"] = "Choose how the client responded to the pressure."
    if stopped and not stop_reason.strip():
        errors["stop_reason"] = "Say why the session was stopped."
    referral = None
    if stop_referral is not None:
        from backcare.clinic.models import Referral

        referral = Referral.objects.filter(pk=getattr(stop_referral, "pk", stop_referral), client=course.client).first()
        if referral is None:
            errors["stop_referral"] = "Referral made: choose one of this client's referrals."
        elif not stopped:
            errors["stop_referral"] = "Referral made: only for a session that was stopped."
    if errors:
        raise ValidationError(errors)
    treated = _check_chart(body_chart)
    precautions = precautions_for(health_update)
    found = deviations(precautions, treated, techniques, pressure)
    if found and not deviation_reason.strip():
        raise ValidationError(
            {
                "deviation_reason": "This session goes beyond the screening's precautions ("
                + "; ".join(d.text for d in found)
                + "). Give the clinical reason, or change the record."
            }
        )
    session = TreatmentSession.objects.create(
        course=course,
        number=number,
        therapist=staff,
        health_update=health_update,
        status=TreatmentSession.Status.STOPPED if stopped else TreatmentSession.Status.COMPLETED,
        subjective=subjective,
        objective=objective,
        assessment=assessment,
        plan_note=plan_note,
        body_chart=body_chart,
        techniques=techniques,
        pressure=pressure,
        deviation_reason=deviation_reason if found else "",
        deviations=[d.text for d in found],
        response=response,
        pain_before=pain_before,
        pain_after=pain_after,
        aftercare=aftercare or DEFAULT_AFTERCARE,
        stop_reason=stop_reason,
        stop_advice=stop_advice if stopped else "",
        stop_referral=referral,
        submission_key=submission_key or None,
    )
    for score in (pain_before, pain_after):
        if score is not None:
            record_pain(course.client, score=score, timepoint="session", course=course, session=session, by=staff.user)
    audit.record(
        staff.user,
        "record_session",
        client=course.client,
        obj=session,
        detail={
            "number": number,
            "deviations": session.deviations,
            "response": response,
            "stopped": stopped,
            "stop_referral": referral.pk if referral else None,
        },
        request=request,
    )
    session_recorded.send(sender=TreatmentSession, session=session, staff=staff, request=request)
    return session


def guarding_prompt(session: TreatmentSession) -> str | None:
    if session.response == TreatmentSession.Response.GUARDING:
        return (
            "The client was guarding against the pressure. Stop deep work, and consider referring the client to "
            "their physician if pain persists."
        )
    return None
