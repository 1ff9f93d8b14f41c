"""Treatment courses: started from the latest screening's recommended plan (anything not sent comes from the plan),
through `backcare.clinic.services.courses`, which enforces the hard stops. Owner and the client's therapists."""

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
from backcare.api.schemas import Id, In, LongText, whole
from backcare.clinic.models import Course
from backcare.clinic.services import courses as course_service
from backcare.clinic.services.screening import treatment_gate
from backcare.clinical.vocabulary import ADJUNCTS, TECHNIQUES

router = Router(tags=["courses"])
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Technique = str
    Adjunct = str
    Section = str
    SessionCount = int
    Weeks = int
else:
    Technique = Literal[tuple(TECHNIQUES)]
    Adjunct = Literal[tuple(ADJUNCTS)]
    Section = Literal[tuple(course_service.DEFAULT_HOME_PROGRAMME)]
    SessionCount = whole(1, 20)
    Weeks = whole(1, 52)


class CourseOut(Schema):
    id: int
    client: int
    therapist: int | None
    screening: int
    status: str
    techniques: list[str]
    sessions_planned: int
    weeks: int
    reassess_after: int
    goals: str
    adjuncts: list[str]
    home_programme: dict[str, str]
    recommended_plan: dict[str, Any] = Field(description="The plan the screening recommended (screening.schema.json).")
    started_at: datetime
    ended_at: datetime | None
    end_note: str
    sessions_done: int
    reassessment_due: bool

    @staticmethod
    def resolve_client(obj: Course) -> int:
        return obj.client_id

    @staticmethod
    def resolve_therapist(obj: Course) -> int | None:
        return obj.therapist_id

    @staticmethod
    def resolve_screening(obj: Course) -> int:
        return obj.screening_id

    @staticmethod
    def resolve_sessions_done(obj: Course) -> int:
        return course_service.sessions_done(obj)

    @staticmethod
    def resolve_reassessment_due(obj: Course) -> bool:
        return course_service.reassessment_due(obj)


class CourseStart(In):
    """Anything left out comes from the screening's recommended plan."""

    techniques: Annotated[list[Technique], Field(min_length=1, max_length=len(TECHNIQUES))] | None = None
    sessions_planned: SessionCount | None = None
    weeks: Weeks | None = None
    reassess_after: SessionCount | None = None
    goals: LongText = ""
    adjuncts: Annotated[list[Adjunct], Field(max_length=len(ADJUNCTS))] | None = None
    home_programme: dict[Section, LongText] | None = None


@router.get("/clients/{client_id}/courses", response=documented(200, list[CourseOut]), summary="A client's courses")
@paginate(Pagination)
def list_courses(request: HttpRequest, client_id: Id = CLIENT_ID) -> Any:
    client = clinical_client(request, client_id)
    viewed(request, client, "courses")
    return client.courses.select_related("screening").order_by("-started_at", "-pk")


@router.post(
    "/clients/{client_id}/courses",
    response=documented(201, CourseOut),
    summary="Start a course from the latest screening's plan",
    **WRITE,
)
def start_course(request: HttpRequest, payload: CourseStart, client_id: Id = CLIENT_ID) -> Any:
    """409 when the screening stops treatment (postpone, referral, clearance not recorded) or a course is already in
    progress; 422 when the plan breaks a rule (a technique the screening excludes, reassessment after the last
    session...)."""
    client = clinical_client(request, client_id)
    me = staff(request)
    current = course_service.active_course(client)
    if current is not None:
        raise Problem(409, f"This client already has a course in progress (course {current.pk}).", course=current.pk)
    gate = treatment_gate(client)
    if not gate.allowed:
        raise Problem(
            409,
            gate.reason,
            kind="hard-stop",
            title="The screening does not allow treatment",
            clearance_pending=gate.clearance_pending,
            clearance_notes=gate.clearance_notes,
        )
    changes = payload.model_dump(exclude_none=True)
    if "home_programme" in changes:
        changes["home_programme"] = {**course_service.DEFAULT_HOME_PROGRAMME, **changes["home_programme"]}
    try:
        course = course_service.start_course(client, staff=me, request=request, **changes)
    except ValidationError as error:
        raise rule_violation(error) from None
    return Status(201, course)


@router.get("/courses/{course_id}", response=documented(200, CourseOut), summary="One course")
def get_course(request: HttpRequest, course_id: Id = COURSE_ID) -> Any:
    course = clinical_course(request, course_id)
    viewed(request, course.client, "course", course)
    return course
