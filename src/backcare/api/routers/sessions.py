"""Treatment sessions: first the pre-session health update ("anything new since last time?"), which re-runs the
screening and can stop the session; then the session note, through `backcare.clinic.services.sessions`, which
checks the precautions (treating an avoided region, an avoided technique or too much pressure needs a reason)."""

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from backcare.api.pagination import Pagination
from backcare.api.problems import Problem, field_error, rule_violation
from backcare.api.routers.common import COURSE_ID, SESSION_ID, WRITE, clinical_course, documented, staff, viewed
from backcare.api.routers.screenings import ScreeningOut
from backcare.api.schemas import Day, Id, IdIn, In, LongText, ShortText, text, whole
from backcare.clinic.models import Course, Screening, TreatmentSession
from backcare.clinic.services import sessions as session_service
from backcare.clinic.services.assessments import Assessment
from backcare.clinic.services.screening import IntakeError, treatment_gate
from backcare.clinical.vocabulary import FINDINGS, REGIONS, TECHNIQUES

router = Router(tags=["sessions"])
ASSESSMENT_FIELDS = {
    f"assessment_{name}": f"assessment.{name}" for name in ("assessed_by", "assessed_on", "outcome", "reason")
}
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Technique = str
    Region = str
    FindingCode = str
    Note = str
    Pain = int
    Tension = int
    Pressure = int
else:
    Technique = Literal[tuple(TECHNIQUES)]
    Region = Literal[tuple(REGIONS)]
    FindingCode = Literal[tuple(FINDINGS)]
    Note = text(8000)
    Pain = whole(0, 10)
    Tension = whole(0, 3)
    Pressure = whole(1, 5)


class FindingIn(In):
    code: FindingCode
    region: Region | None = None
    weeks_ago: Annotated[float, Field(ge=0, le=5200)] | None = None


class ResolvedIn(In):
    code: FindingCode
    region: Region | None = None


class AssessmentIn(In):
    """The medical assessment that allows a red flag (emergency, urgent, postpone, clearance) to be withdrawn."""

    assessed_by: ShortText = Field(description="Name and role of the clinician who assessed the client.")
    service: ShortText = ""
    assessed_on: Day
    outcome: LongText = Field(description="What the assessment found, and what was advised.")
    reason: LongText = Field(description="Why the finding no longer applies.")


class HealthUpdateIn(In):
    new_findings: Annotated[list[FindingIn], Field(max_length=50)] = []
    pain_now: Pain | None = None
    resolved: Annotated[list[ResolvedIn], Field(max_length=50)] = []
    assessment: AssessmentIn | None = Field(
        None, description="Required when `resolved` (or a lower pain) removes or downgrades a red flag."
    )


class HealthUpdateOut(Schema):
    screening: ScreeningOut
    session_allowed: bool
    reason: str = Field(description="Why no session may follow, when it may not.")


class ChartMarks(In):
    treated: bool = False
    tension: Tension | None = None
    pain: Pain | None = None


class SessionIn(In):
    health_update: IdIn = Field(
        description="The id of this session's pre-session health update (made in the last 12 h)."
    )
    techniques: Annotated[list[Technique], Field(max_length=len(TECHNIQUES))] = []
    pressure: Pressure | None = None
    body_chart: dict[Region, ChartMarks] = {}
    pain_before: Pain
    pain_after: Pain | None = None
    response: Literal["relaxed", "tolerated", "guarding"] | None = None
    subjective: Note = ""
    objective: Note = ""
    assessment: Note = ""
    plan_note: Note = ""
    aftercare: Note = ""
    deviation_reason: Note = ""
    stopped: bool = False
    stop_reason: Note = ""
    stop_advice: Note = ""
    stop_referral: IdIn | None = Field(None, description="The id of the referral made when the session stopped.")


class SessionOut(Schema):
    id: int
    course: int
    number: int
    therapist: int | None
    health_update: int | None
    status: str
    held_at: datetime
    subjective: str
    objective: str
    assessment: str
    plan_note: str
    body_chart: dict[str, Any]
    techniques: list[str]
    pressure: int | None
    deviations: list[str]
    deviation_reason: str
    response: str
    pain_before: int | None
    pain_after: int | None
    aftercare: str
    stop_reason: str
    stop_advice: str
    stop_referral: int | None
    recorded_at: datetime
    guarding_prompt: str | None

    @staticmethod
    def resolve_course(obj: TreatmentSession) -> int:
        return obj.course_id

    @staticmethod
    def resolve_therapist(obj: TreatmentSession) -> int | None:
        return obj.therapist_id

    @staticmethod
    def resolve_health_update(obj: TreatmentSession) -> int | None:
        return obj.health_update_id

    @staticmethod
    def resolve_stop_referral(obj: TreatmentSession) -> int | None:
        return obj.stop_referral_id

    @staticmethod
    def resolve_guarding_prompt(obj: TreatmentSession) -> str | None:
        return session_service.guarding_prompt(obj)


def _open_for_sessions(course: Course) -> None:
    if course.status != Course.Status.ACTIVE:
        raise Problem(409, "This course has ended; no more sessions can be recorded.", kind="course-ended")
    if course.sessions.count() >= course.sessions_planned:
        raise Problem(
            409,
            f"All {course.sessions_planned} planned sessions are recorded; extend the course to add another.",
            kind="course-full",
        )


@router.get("/courses/{course_id}/sessions", response=documented(200, list[SessionOut]), summary="A course's sessions")
@paginate(Pagination)
def list_sessions(request: HttpRequest, course_id: Id = COURSE_ID) -> Any:
    course = clinical_course(request, course_id)
    viewed(request, course.client, "sessions", course)
    return course.sessions.order_by("number")


@router.post(
    "/courses/{course_id}/health-updates",
    response=documented(201, HealthUpdateOut),
    summary="The pre-session health update",
    **WRITE,
)
def record_health_update(request: HttpRequest, payload: HealthUpdateIn, course_id: Id = COURSE_ID) -> Any:
    """Re-screens with what is new (and without what no longer applies). `session_allowed` says whether a session
    may follow; the screening is kept either way."""
    course = clinical_course(request, course_id)
    me = staff(request)
    _open_for_sessions(course)
    try:
        update = session_service.health_update(
            course,
            staff=me,
            new_findings=[f.model_dump(exclude_none=True) for f in payload.new_findings],
            pain_now=payload.pain_now,
            resolved=[f.model_dump(exclude_none=True) for f in payload.resolved],
            assessment=Assessment(**payload.assessment.model_dump()) if payload.assessment else None,
            request=request,
        )
    except ValidationError as error:
        raise rule_violation(error, rename=ASSESSMENT_FIELDS) from None
    except IntakeError as error:
        raise Problem(
            422,
            f"The update could not be screened: {error}",
            errors=[field_error("body", [], str(e)) for e in error.errors],
        ) from None
    gate = treatment_gate(course.client)
    allowed = not update.blocks_treatment and gate.allowed
    reason = "" if allowed else (gate.reason or "The health update stops treatment.")
    return Status(201, {"screening": update, "session_allowed": allowed, "reason": reason})


@router.post("/courses/{course_id}/sessions", response=documented(201, SessionOut), summary="Record a session", **WRITE)
def record_session(request: HttpRequest, payload: SessionIn, course_id: Id = COURSE_ID) -> Any:
    """409 when the course has ended or is full, or the screening stops treatment; 422 when the note breaks a rule,
    e.g. going beyond the precautions without a `deviation_reason`, or a health update that is missing, too old or
    already used."""
    course = clinical_course(request, course_id)
    me = staff(request)
    _open_for_sessions(course)
    update = Screening.objects.filter(
        pk=payload.health_update, client_id=course.client_id, kind=Screening.Kind.PRE_SESSION
    ).first()
    if update is None:
        raise Problem(
            422,
            "health_update: no pre-session health update of this client has that id.",
            errors=[field_error("body", ["health_update"], "no pre-session health update of this client has that id")],
        )
    gate = treatment_gate(course.client)
    if update.blocks_treatment or not gate.allowed:
        raise Problem(
            409,
            gate.reason or "The health update stops treatment.",
            kind="hard-stop",
            title="The screening does not allow treatment",
        )
    arguments = payload.model_dump(exclude={"health_update", "body_chart"})
    arguments["response"] = arguments["response"] or ""
    body_chart = {region: marks.model_dump(exclude_none=True) for region, marks in payload.body_chart.items()}
    try:
        session = session_service.record_session(
            course, staff=me, health_update=update, body_chart=body_chart, request=request, **arguments
        )
    except ValidationError as error:
        raise rule_violation(error) from None
    return Status(201, session)


@router.get("/sessions/{session_id}", response=documented(200, SessionOut), summary="One session")
def get_session(request: HttpRequest, session_id: Id = SESSION_ID) -> Any:
    session = TreatmentSession.objects.filter(pk=session_id).first()
    if session is None:
        raise Http404("No such session.")
    course = clinical_course(request, session.course_id)
    viewed(request, course.client, "session", session)
    return session
