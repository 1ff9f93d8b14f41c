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
from backcare.clinic.models import Course, Screening, SessionAddendum, StaffMember, TreatmentSession
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


@dataclass
class SessionNote:
    """What the therapist writes for one session (the session form's cleaned data, or an API call's body)."""

    techniques: list[str]
    pressure: int | None
    body_chart: dict[str, Any]
    pain_before: int | None
    pain_after: int | None
    response: str = ""
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan_note: str = ""
    aftercare: str = ""
    deviation_reason: str = ""
    stopped: bool = False
    stop_reason: str = ""
    stop_advice: str = ""
    stop_referral: Any = None
    submission_key: str | None = None
    copied_from: TreatmentSession | None = None

    def errors(self) -> dict[str, str]:
        """The field-level problems of the note itself, by field name."""
        errors: dict[str, str] = {}
        unknown = [t for t in self.techniques if t not in TECHNIQUES]
        if not self.techniques and not self.stopped:
            errors["techniques"] = "Record at least one technique used."
        elif unknown:
            errors["techniques"] = f"Unknown technique: {', '.join(unknown)}."
        if self.pressure is not None and self.pressure not in PRESSURE_SCALE:
            errors["pressure"] = "Pressure must be from 1 (light touch) to 5 (deep)."
        for name, value in (("pain_before", self.pain_before), ("pain_after", self.pain_after)):
            if value is not None and not 0 <= value <= 10:
                errors[name] = "Pain must be a whole number from 0 to 10."
        if self.pain_before is None:
            errors["pain_before"] = "Record the client's pain before the session (0 to 10)."
        if self.response and self.response not in TreatmentSession.Response.values:
            errors["response"] = "Choose how the client responded to the pressure."
        if self.stopped and not self.stop_reason.strip():
            errors["stop_reason"] = "Say why the session was stopped."
        return errors


def session_blocked_reason(course: Course) -> str:
    """Why no further session can be recorded on the course now ("" when one can)."""
    if course.status != Course.Status.ACTIVE:
        return "This course has ended; no more sessions can be recorded."
    if course.sessions.count() >= course.sessions_planned:
        return (
            f"All {course.sessions_planned} planned sessions are recorded. Edit the course to add sessions, "
            "or end the course."
        )
    return ""


def _check_update(course: Course, health_update: Screening | None) -> None:
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


def _referral(course: Course, note: SessionNote, errors: dict[str, str]) -> Any:
    if note.stop_referral is None:
        return None
    from backcare.clinic.models import Referral

    pk = getattr(note.stop_referral, "pk", note.stop_referral)
    referral = Referral.objects.filter(pk=pk, client=course.client).first()
    if referral is None:
        errors["stop_referral"] = "Referral made: choose one of this client's referrals."
    elif not note.stopped:
        errors["stop_referral"] = "Referral made: only for a session that was stopped."
    return referral


@transaction.atomic
def record_session(
    course: Course,
    note: SessionNote | None = None,
    *,
    staff: StaffMember,
    health_update: Screening | None,
    request: Any = None,
    **fields: Any,
) -> TreatmentSession:
    """Record the session `note` (or a SessionNote made of `fields`) after the pre-session `health_update`."""
    note = note if note is not None else SessionNote(**fields)
    if note.submission_key:
        existing = TreatmentSession.objects.filter(submission_key=note.submission_key).first()
        if existing is not None:
            return existing  # a double submission of the same form creates nothing twice
    course = locked(Course.objects.all()).get(pk=course.pk)
    if course.status != Course.Status.ACTIVE:
        raise ValidationError("This course has ended; no more sessions can be recorded.")
    number = course.sessions.count() + 1
    if number > course.sessions_planned:
        raise ValidationError(
            f"All {course.sessions_planned} planned sessions are recorded; extend the course to add another."
        )
    _check_update(course, health_update)
    assert health_update is not None
    gate = treatment_gate(course.client)
    if not gate.allowed:
        raise ValidationError(gate.reason)
    errors = note.errors()
    referral = _referral(course, note, errors)
    if errors:
        raise ValidationError(errors)
    treated = _check_chart(note.body_chart)
    precautions = precautions_for(health_update)
    found = deviations(precautions, treated, note.techniques, note.pressure)
    if found and not note.deviation_reason.strip():
        raise ValidationError(
            {
                "deviation_reason": "This session goes beyond the screening's precautions ("
                + "; ".join(d.text for d in found)
                + "). Give the clinical reason, or change the record."
            }
        )
    copied = note.copied_from
    if copied is not None and copied.course_id != course.pk:
        copied = None
    session = TreatmentSession.objects.create(
        course=course,
        number=number,
        therapist=staff,
        health_update=health_update,
        status=TreatmentSession.Status.STOPPED if note.stopped else TreatmentSession.Status.COMPLETED,
        subjective=note.subjective,
        objective=note.objective,
        assessment=note.assessment,
        plan_note=note.plan_note,
        body_chart=note.body_chart,
        techniques=note.techniques,
        pressure=note.pressure,
        deviation_reason=note.deviation_reason if found else "",
        deviations=[d.text for d in found],
        response=note.response,
        pain_before=note.pain_before,
        pain_after=note.pain_after,
        aftercare=note.aftercare or DEFAULT_AFTERCARE,
        stop_reason=note.stop_reason,
        stop_advice=note.stop_advice if note.stopped else "",
        stop_referral=referral,
        submission_key=note.submission_key or None,
        copied_from=copied,
    )
    for score in (note.pain_before, note.pain_after):
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
            "response": note.response,
            "stopped": note.stopped,
            "stop_referral": referral.pk if referral else None,
            "copied_from": copied.pk if copied else None,
        },
        request=request,
    )
    session_recorded.send(sender=TreatmentSession, session=session, staff=staff, request=request)
    return session


# --- copy forward -------------------------------------------------------------------------------------------------

#: What the next session's form takes from the previous one. Never what the client reports today (subjective, pain
#: before and after, response): those are asked afresh.
COPIED_FIELDS = ("techniques", "pressure", "body chart", "plan")


def previous_session(course: Course) -> TreatmentSession | None:
    """The course's last session, the one a new note can be copied forward from."""
    return course.sessions.order_by("-number").first()


def copy_forward(previous: TreatmentSession) -> dict[str, Any]:
    """The session form's initial values taken from `previous`: techniques, pressure, body chart (regions treated
    and tension; not the pain marks) and the plan. The form marks them as copied."""
    initial: dict[str, Any] = {
        "techniques": list(previous.techniques),
        "pressure": previous.pressure,
        "plan_note": previous.plan_note,
        "treated": [code for code, marks in (previous.body_chart or {}).items() if marks.get("treated")],
        "copied_from": previous.pk,
    }
    for code, marks in (previous.body_chart or {}).items():
        if marks.get("tension") is not None:
            initial[f"tension_{code}"] = marks["tension"]
    return initial


# --- signing and addenda ------------------------------------------------------------------------------------------

NOTE_DUE_AFTER = timedelta(days=1)
#: The one wording of a note that is due, on the Today page (a visit ended without a note) and the dashboard (a note
#: not signed a day after the session).
NOTE_DUE = "Note due"


@transaction.atomic
def sign_session(session: TreatmentSession, *, staff: StaffMember, request: Any = None) -> TreatmentSession:
    """The session's therapist signs the note; from then on it is locked (model, service and database trigger)."""
    session = locked(TreatmentSession.objects.select_related("course__client")).get(pk=session.pk)
    if session.signed_at is not None:
        raise ValidationError(f"Session {session.number} was already signed.")
    if session.therapist_id != staff.pk:
        raise ValidationError("Only the therapist who held the session signs its note.")
    session.signed_at = timezone.now()
    session.signed_by = staff
    session.save(update_fields=["signed_at", "signed_by"])
    audit.record(
        staff.user,
        "sign_session",
        client=session.course.client,
        obj=session,
        detail={"number": session.number},
        request=request,
    )
    return session


def update_note(session: TreatmentSession, *, staff: StaffMember, request: Any = None, **changes: Any) -> None:
    """Change an unsigned note's SOAP text; a signed note refuses (add an addendum)."""
    allowed = {"subjective", "objective", "assessment", "plan_note", "aftercare"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"not a note field: {', '.join(sorted(unknown))}")
    with transaction.atomic():
        session = locked(TreatmentSession.objects.select_related("course__client")).get(pk=session.pk)
        if session.signed_at is not None:
            raise ValidationError(f"Session {session.number} is signed; add an addendum instead of editing the note.")
        for name, value in changes.items():
            setattr(session, name, value)
        session.save(update_fields=list(changes))
        audit.record(
            staff.user,
            "update_session_note",
            client=session.course.client,
            obj=session,
            detail={"fields": sorted(changes)},
            request=request,
        )


@transaction.atomic
def add_addendum(
    session: TreatmentSession, *, staff: StaffMember, text: str, reason: str, request: Any = None
) -> SessionAddendum:
    """Add an append-only addendum under a signed note: author, time, text and the reason for it."""
    session = TreatmentSession.objects.select_related("course__client").get(pk=session.pk)
    errors: dict[str, str] = {}
    if not text.strip():
        errors["text"] = "Addendum: write what is added to the note."
    if not reason.strip():
        errors["reason"] = "Reason: say why the note needs the addendum."
    if errors:
        raise ValidationError(errors)
    if session.signed_at is None:
        raise ValidationError("The note is not signed yet: correct it before signing, addenda come after.")
    addendum = SessionAddendum.objects.create(session=session, author=staff, text=text.strip(), reason=reason.strip())
    audit.record(
        staff.user,
        "add_addendum",
        client=session.course.client,
        obj=session,
        detail={"addendum": addendum.pk, "number": session.number},
        request=request,
    )
    return addendum


def notes_due(staff: StaffMember, now: Any = None, limit: int = 50) -> list[TreatmentSession]:
    """The therapist's own sessions held more than a day ago whose note is not signed: "Note due"."""
    now = now or timezone.now()
    return list(
        TreatmentSession.objects.filter(therapist=staff, signed_at__isnull=True, held_at__lte=now - NOTE_DUE_AFTER)
        .select_related("course__client")
        .order_by("held_at", "pk")[:limit]
    )


def guarding_prompt(session: TreatmentSession) -> str | None:
    if session.response == TreatmentSession.Response.GUARDING:
        return (
            "The client was guarding against the pressure. Stop deep work, and consider referring the client to "
            "their physician if pain persists."
        )
    return None
