"""Outcome measures: pain (0-10) and the Roland-Morris Disability Questionnaire (24 statements), recorded for a
course through `backcare.clinic.services.outcomes`; the answer includes what the scores now prompt (a change of
technique or a referral when there is no meaningful improvement)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from backcare.api.pagination import Pagination
from backcare.api.problems import Problem, rule_violation
from backcare.api.routers.common import (
    CLIENT_ID,
    COURSE_ID,
    WRITE,
    clinical_client,
    clinical_course,
    documented,
    staff,
    viewed,
)
from backcare.api.schemas import Id, In, whole
from backcare.clinic import audit
from backcare.clinic.models import Course, Outcome
from backcare.clinic.services import outcomes as outcome_service
from backcare.clinical.instruments import RMDQ_ITEMS

router = Router(tags=["outcomes"])
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Score = int
else:
    Score = whole(0, 10)


class OutcomeOut(Schema):
    id: int
    client: int
    course: int | None
    session: int | None
    instrument: str
    timepoint: str
    score: int
    answers: dict[str, Any]
    interpretation: str
    recorded_at: datetime

    @staticmethod
    def resolve_client(obj: Outcome) -> int:
        return obj.client_id

    @staticmethod
    def resolve_course(obj: Outcome) -> int | None:
        return obj.course_id

    @staticmethod
    def resolve_session(obj: Outcome) -> int | None:
        return obj.session_id


class RecordedOutcomeOut(OutcomeOut):
    prompts: list[str] = Field(description="What the course's scores now prompt the therapist to consider.")


class PainIn(In):
    instrument: Literal["pain_nrs"]
    score: Score
    timepoint: Literal["baseline", "session", "reassessment", "discharge"]


class RmdqIn(In):
    instrument: Literal["rmdq"]
    timepoint: Literal["baseline", "reassessment", "discharge"]
    ticked: Annotated[list[bool], Field(min_length=len(RMDQ_ITEMS), max_length=len(RMDQ_ITEMS))] = Field(
        description=f"For each of the {len(RMDQ_ITEMS)} statements, in order: does it describe the client today?"
    )


OutcomeIn = Annotated[PainIn | RmdqIn, Field(discriminator="instrument")]


@router.get(
    "/clients/{client_id}/outcomes", response=documented(200, list[OutcomeOut]), summary="A client's outcome scores"
)
@paginate(Pagination)
def list_outcomes(request: HttpRequest, client_id: Id = CLIENT_ID) -> Any:
    client = clinical_client(request, client_id)
    viewed(request, client, "outcomes")
    return client.outcomes.order_by("recorded_at", "pk")


@router.post(
    "/courses/{course_id}/outcomes",
    response=documented(201, RecordedOutcomeOut),
    summary="Record a pain score or a Roland-Morris questionnaire",
    **WRITE,
)
def record_outcome(request: HttpRequest, payload: OutcomeIn, course_id: Id = COURSE_ID) -> Any:
    course = clinical_course(request, course_id)
    staff(request)
    if course.status != Course.Status.ACTIVE and payload.timepoint != "discharge":
        raise Problem(409, "This course has ended; only discharge scores can still be recorded.", kind="course-ended")
    try:
        if isinstance(payload, RmdqIn):
            outcome = outcome_service.record_rmdq(
                course.client,
                ticked=payload.ticked,
                timepoint=payload.timepoint,
                course=course,
                by=request.user,
                request=request,
            )
        else:
            outcome = outcome_service.record_pain(
                course.client,
                score=payload.score,
                timepoint=payload.timepoint,
                course=course,
                session=None,
                by=request.user,
            )
            # record_pain leaves the audit event to its caller (sessions record theirs with the session).
            audit.record(
                request.user,
                "record_outcome",
                client=course.client,
                obj=outcome,
                detail={"pain": payload.score, "timepoint": payload.timepoint},
                request=request,
            )
    except ValidationError as error:
        raise rule_violation(error, rename={"rmdq": "ticked", "pain": "score"}) from None
    # read by OutcomeOut.prompts; the model does not declare it
    outcome.prompts = outcome_service.review_course(course).prompts  # type: ignore[attr-defined]
    return Status(201, outcome)
