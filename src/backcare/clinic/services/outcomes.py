"""Outcome measures and what they prompt: pain every session, Roland-Morris at baseline, reassessment and
discharge, STarT Back at intake. Meaningful change per Ostelo 2008 (2 points or 30% for pain, 5 or 30% for RMDQ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Client, Course, Outcome
from backcare.clinical.instruments import (
    RMDQ_ITEMS,
    Change,
    pain_change,
    rmdq_change,
    score_rmdq,
    score_start_back,
)


@transaction.atomic
def record_rmdq(
    client: Client,
    *,
    ticked: list[bool],
    timepoint: str,
    course: Course | None,
    by: Any,
    request: Any = None,
    by_client: bool = False,
) -> Outcome:
    if len(ticked) != len(RMDQ_ITEMS):
        raise ValidationError({"rmdq": f"Answer all {len(RMDQ_ITEMS)} statements (tick those that apply today)."})
    if timepoint not in ("baseline", "reassessment", "discharge"):
        raise ValidationError({"timepoint": "Roland-Morris is recorded at baseline, reassessment or discharge."})
    if course is not None and course.outcomes.filter(instrument="rmdq", timepoint=timepoint).exists():
        raise ValidationError({"timepoint": f"A {timepoint} Roland-Morris is already recorded for this course."})
    score = score_rmdq(ticked)
    outcome = Outcome.objects.create(
        client=client,
        course=course,
        instrument=Outcome.Instrument.RMDQ,
        timepoint=timepoint,
        score=score,
        answers={"ticked": ticked},
        recorded_by=by if getattr(by, "is_authenticated", False) else None,
        by_client=by_client,
    )
    audit.record(
        by,
        "record_outcome",
        client=client,
        obj=outcome,
        detail={"rmdq": score, "timepoint": timepoint, "by_client": by_client},
        request=request,
    )
    return outcome


# --- questionnaires the client fills in the portal ---------------------------------------------------------------

QUESTIONNAIRE_TIMEPOINTS: dict[str, str] = {
    "baseline": "at the start of your course",
    "reassessment": "to see how your course is going",
    "discharge": "before your last session",
}


@dataclass
class DueQuestionnaire:
    """A questionnaire of the course's outcome plan that the client may fill in now, before the next session."""

    course: Course
    instrument: str
    timepoint: str

    @property
    def when(self) -> str:
        return QUESTIONNAIRE_TIMEPOINTS[self.timepoint]


def questionnaire_due(client: Client) -> DueQuestionnaire | None:
    """The course's outcome plan is Roland-Morris at baseline, at reassessment (once the course check session,
    `reassess_after`, has been held: `services.courses.reassessment_due`) and at discharge (before the last planned
    session). The one due now for the client's active course, or None."""
    from backcare.clinic.services.courses import reassessment_due, sessions_done

    course = client.courses.filter(status=Course.Status.ACTIVE).order_by("-started_at").first()
    if course is None:
        return None
    recorded = set(course.outcomes.filter(instrument=Outcome.Instrument.RMDQ).values_list("timepoint", flat=True))
    if "baseline" not in recorded:
        return DueQuestionnaire(course, Outcome.Instrument.RMDQ, "baseline")
    if reassessment_due(course):
        return DueQuestionnaire(course, Outcome.Instrument.RMDQ, "reassessment")
    if "discharge" not in recorded and sessions_done(course) >= course.sessions_planned - 1:
        return DueQuestionnaire(course, Outcome.Instrument.RMDQ, "discharge")
    return None


def record_client_questionnaire(client: Client, *, timepoint: str, ticked: list[bool], request: Any = None) -> Outcome:
    """The client's own Roland-Morris from the portal: only the one due now, scored by the clinical core and stored
    as the same outcome record the therapist enters, marked as filled in by the client."""
    due = questionnaire_due(client)
    if due is None or due.timepoint != timepoint:
        raise ValidationError("This questionnaire is not due now: nothing was saved. Your therapist will ask you.")
    return record_rmdq(
        client,
        ticked=ticked,
        timepoint=timepoint,
        course=due.course,
        by=client.user,
        request=request,
        by_client=True,
    )


@transaction.atomic
def record_start_back(client: Client, *, answers: dict[str, Any], by: Any, request: Any = None) -> Outcome:
    result = score_start_back(answers["agree"], answers["bothersomeness"])
    outcome = Outcome.objects.create(
        client=client,
        instrument=Outcome.Instrument.START_BACK,
        timepoint=Outcome.Timepoint.INTAKE,
        score=result.total,
        answers={**answers, "psychosocial": result.psychosocial, "group": result.group},
        interpretation=f"{result.group} risk",
        recorded_by=by if getattr(by, "is_authenticated", False) else None,
    )
    audit.record(by, "record_outcome", client=client, obj=outcome, detail={"start_back": result.group}, request=request)
    return outcome


def record_pain(client: Client, *, score: int, timepoint: str, course: Course | None, session: Any, by: Any) -> Outcome:
    """Pain NRS; callers record the audit event with the session they belong to."""
    if not isinstance(score, int) or not 0 <= score <= 10:
        raise ValidationError({"pain": "Pain must be a whole number from 0 to 10."})
    return Outcome.objects.create(
        client=client,
        course=course,
        session=session,
        instrument=Outcome.Instrument.PAIN,
        timepoint=timepoint,
        score=score,
        recorded_by=by if getattr(by, "is_authenticated", False) else None,
    )


@dataclass
class Review:
    """Where a course stands on its outcomes, and what the therapist should consider."""

    pain: Change | None
    rmdq: Change | None
    prompts: list[str]

    @property
    def improved(self) -> bool:
        return any(c is not None and c.meaningful for c in (self.pain, self.rmdq))


def baseline_pain(course: Course) -> int | None:
    first = course.outcomes.filter(instrument="pain_nrs").order_by("recorded_at", "id").first()
    if first is not None:
        return first.score
    document = course.screening.document
    value = document.get("pain", {}).get("intensity")
    return value if isinstance(value, int) else None


def latest_pain(course: Course) -> int | None:
    """Pain after the latest session (or before it, when no after-score was taken)."""
    last = course.outcomes.filter(instrument="pain_nrs").order_by("-recorded_at", "-id").first()
    return last.score if last is not None else None


def review_course(course: Course) -> Review:
    return review_scores(
        pain_baseline=baseline_pain(course),
        pain_now=latest_pain(course),
        rmdq_scores={o.timepoint: o.score for o in course.outcomes.filter(instrument="rmdq")},
        sessions_done=course.sessions.filter(status="completed").count(),
        sessions_planned=course.sessions_planned,
        active=course.status == "active",
    )


def review_scores(
    *,
    pain_baseline: int | None,
    pain_now: int | None,
    rmdq_scores: dict[str, int],
    sessions_done: int,
    sessions_planned: int,
    active: bool,
) -> Review:
    """The review from scores already loaded (the dashboard loads them for many clients at once)."""
    pain = pain_change(pain_baseline, pain_now) if pain_baseline is not None and pain_now is not None else None
    rmdq = None
    if "baseline" in rmdq_scores:
        later = rmdq_scores.get("discharge", rmdq_scores.get("reassessment"))
        if later is not None:
            rmdq = rmdq_change(rmdq_scores["baseline"], later)
    prompts: list[str] = []
    review = Review(pain=pain, rmdq=rmdq, prompts=prompts)
    if "reassessment" in rmdq_scores and "discharge" not in rmdq_scores and not review.improved:
        prompts.append(
            "No meaningful improvement at reassessment: change the technique, or refer the client to their physician."
        )
    if (sessions_done >= sessions_planned or not active) and (pain is None or not pain.meaningful):
        prompts.append("The course has ended and pain is not meaningfully better: refer the client to their physician.")
    return review


__all__ = [
    "DueQuestionnaire",
    "Review",
    "baseline_pain",
    "latest_pain",
    "questionnaire_due",
    "record_client_questionnaire",
    "record_pain",
    "record_rmdq",
    "record_start_back",
    "review_course",
    "review_scores",
]
