"""Treatment courses: started from the screening's recommended plan, edited by the therapist, ended with an outcome."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import Client, Course, Outcome, StaffMember, TreatmentSession
from backcare.clinic.services.clearances import precautions_for
from backcare.clinic.services.screening import latest_screening, treatment_gate
from backcare.clinic.signals import course_ended
from backcare.clinical.vocabulary import ADJUNCTS, TECHNIQUES

DEFAULT_HOME_PROGRAMME: dict[str, str] = {
    "exercise": "Stay active. Walk every day, building up gently; keep up the exercises your therapist shows you.",
    "posture": "Change position at least every 30 to 45 minutes when sitting; set your chair and screen so you sit "
    "upright without strain.",
    "relaxation": "Twice a day, breathe slowly in through the nose for 4 counts and out for 6, for 5 minutes.",
    "self_massage": "Roll a soft ball gently against the tight muscles beside (not on) the spine for a minute or two; "
    "stop if it hurts.",
}


def _check_plan(
    techniques: list[str], sessions: int, weeks: int, reassess_after: int, adjuncts: list[str], precautions: Any
) -> dict[str, str]:
    errors: dict[str, str] = {}
    unknown = [t for t in techniques if t not in TECHNIQUES]
    if not techniques:
        errors["techniques"] = "Choose at least one technique."
    elif unknown:
        errors["techniques"] = f"Unknown technique: {', '.join(unknown)}."
    else:
        avoided = [TECHNIQUES[t] for t in techniques if t in precautions.get("avoid_techniques", [])]
        if avoided:
            errors["techniques"] = f"The screening excludes {', '.join(avoided)} for this client."
    if not 1 <= sessions <= 20:
        errors["sessions_planned"] = "Sessions must be between 1 and 20."
    if not 1 <= weeks <= 52:
        errors["weeks"] = "Weeks must be between 1 and 52."
    if not 1 <= reassess_after <= max(sessions, 1):
        errors["reassess_after"] = "Reassess after a session between 1 and the number of sessions."
    bad = [a for a in adjuncts if a not in ADJUNCTS]
    if bad:
        errors["adjuncts"] = f"Unknown adjunct: {', '.join(bad)}."
    return errors


@transaction.atomic
def start_course(
    client: Client,
    *,
    staff: StaffMember,
    techniques: list[str] | None = None,
    sessions_planned: int | None = None,
    weeks: int | None = None,
    reassess_after: int | None = None,
    goals: str = "",
    adjuncts: list[str] | None = None,
    home_programme: dict[str, str] | None = None,
    request: Any = None,
) -> Course:
    """Start a course on the client's latest screening. Anything not given comes from the recommended plan."""
    gate = treatment_gate(client)
    if not gate.allowed:
        raise ValidationError(gate.reason)
    assert gate.screening is not None
    plan = gate.screening.result.get("plan")
    if plan is None:
        raise ValidationError("The screening recommends no plan, so no course can start.")
    techniques = list(techniques if techniques is not None else plan["techniques"])
    sessions_planned = sessions_planned if sessions_planned is not None else plan["sessions"]
    weeks = weeks if weeks is not None else plan["weeks"]
    reassess_after = reassess_after if reassess_after is not None else plan["reassess_after_session"]
    adjuncts = list(adjuncts if adjuncts is not None else plan["adjuncts"])
    errors = _check_plan(techniques, sessions_planned, weeks, reassess_after, adjuncts, precautions_for(gate.screening))
    if errors:
        raise ValidationError(errors)
    try:
        with transaction.atomic():
            course = Course.objects.create(
                client=client,
                therapist=client.therapist or staff,
                screening=gate.screening,
                recommended_plan=plan,
                techniques=techniques,
                sessions_planned=sessions_planned,
                weeks=weeks,
                reassess_after=reassess_after,
                goals=goals,
                adjuncts=adjuncts,
                home_programme=home_programme if home_programme is not None else dict(DEFAULT_HOME_PROGRAMME),
                created_by=staff,
            )
    except IntegrityError:
        raise ValidationError("This client already has a course in progress.") from None
    audit.record(
        staff.user,
        "start_course",
        client=client,
        obj=course,
        detail={"techniques": techniques, "sessions": sessions_planned, "weeks": weeks, "screening": gate.screening.pk},
        request=request,
    )
    return course


@transaction.atomic
def update_course(course: Course, *, staff: StaffMember, request: Any = None, **changes: Any) -> Course:
    if course.status != Course.Status.ACTIVE:
        raise ValidationError("Only a course in progress can be changed.")
    allowed = {"techniques", "sessions_planned", "weeks", "reassess_after", "goals", "adjuncts", "home_programme"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
    merged = {k: changes.get(k, getattr(course, k)) for k in allowed}
    # The latest screening decides (a health update may have added a precaution since the course started), with
    # the physician's restrictions of the clearances in force.
    latest = latest_screening(course.client)
    precautions = precautions_for(latest) if latest is not None else course.precautions
    errors = _check_plan(
        merged["techniques"],
        merged["sessions_planned"],
        merged["weeks"],
        merged["reassess_after"],
        merged["adjuncts"],
        precautions,
    )
    done = course.sessions.count()
    if merged["sessions_planned"] < done:
        errors["sessions_planned"] = f"{done} sessions are already recorded."
    if errors:
        raise ValidationError(errors)
    before = {k: getattr(course, k) for k in changes}
    for key, value in changes.items():
        setattr(course, key, value)
    course.save()
    audit.record(
        staff.user,
        "update_course",
        client=course.client,
        obj=course,
        detail={"before": before, "after": changes},
        request=request,
    )
    return course


@transaction.atomic
def end_course(course: Course, *, status: str, staff: StaffMember, note: str = "", request: Any = None) -> Course:
    if course.status != Course.Status.ACTIVE:
        raise ValidationError("This course has already ended.")
    if status not in (Course.Status.COMPLETED, Course.Status.REFERRED, Course.Status.STOPPED):
        raise ValidationError({"status": "Choose completed, referred or stopped."})
    course.status = status
    course.ended_at = timezone.now()
    course.end_note = note
    course.save()
    audit.record(staff.user, "end_course", client=course.client, obj=course, detail={"status": status}, request=request)
    course_ended.send(sender=Course, course=course, staff=staff, request=request)
    return course


def active_course(client: Client) -> Course | None:
    return client.courses.filter(status=Course.Status.ACTIVE).first()


def sessions_done(course: Course) -> int:
    return course.sessions.filter(status="completed").count()


def reassessment_due_q(course: str = "pk") -> Q:
    """The reassessment rule as a condition on courses: the reassessment session has been held and no reassessment
    Roland-Morris is recorded yet. `course` names the course's id in the query it is used in (its primary key, or an
    annotation such as a client's latest course); the status and `reassess_after` are read through it, so the rule
    can filter courses, or clients by their latest course, in the database. `reassessment_due` is this rule for one
    course, and the dashboard reads it for a page of clients: one definition."""
    done = (
        TreatmentSession.objects.filter(course_id=OuterRef("pk"), status=TreatmentSession.Status.COMPLETED)
        .order_by()
        .values("course_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    held = Course.objects.filter(pk=OuterRef(course), status=Course.Status.ACTIVE).annotate(
        done=Coalesce(Subquery(done), 0)
    )
    return Q(Exists(held.filter(done__gte=F("reassess_after")))) & ~Q(
        Exists(Outcome.objects.filter(course_id=OuterRef(course), timepoint="reassessment"))
    )


def reassessment_due(course: Course) -> bool:
    """The reassessment session has been held and no reassessment Roland-Morris is recorded yet."""
    return Course.objects.filter(reassessment_due_q(), pk=course.pk).exists()
