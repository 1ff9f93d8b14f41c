"""Free times: slots for a service in a date range (optionally one therapist, one technique, one client), and a
suggestion of times for a whole course. The same rules as booking, so a slot offered is a slot booking accepts.

Staff search for anyone; a client's token searches only for themselves and only among the services the portal
offers them (none while their screening stops treatment, only a first assessment before their first screening)."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.pagination import paginate

from backcare.api.pagination import Pagination
from backcare.api.problems import Problem, rule_violation
from backcare.api.routers.common import COURSE_ID, check_day, contact_client, documented, staff, unprocessable, viewed
from backcare.api.schemas import Id, query_int
from backcare.clinic import access
from backcare.clinic.models import Course, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.scheduling.gates import client_gate_text, client_services, staff_gate_text, treatment_gate
from backcare.scheduling.models import VISIT_STATUSES, Service
from backcare.scheduling.services.availability import Slot, find_slots, suggest_course

router = Router(tags=["availability"])
MAX_DAYS = 31
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Technique = str
    SessionCount = int
else:
    Technique = Literal[tuple(TECHNIQUES)]
    SessionCount = query_int(1, 20)


class SlotOut(Schema):
    starts_at: datetime
    ends_at: datetime
    service: int
    therapist: int
    therapist_name: str
    room: int
    room_name: str


class SlotQuery(Schema):
    service: Id
    date_from: date
    date_to: date
    therapist: Id | None = None
    technique: Technique | None = None
    client: Id | None = Field(None, description="Only times this client is free (a client's token: always itself).")


class SuggestionQuery(Schema):
    service: Id
    start: date = Field(description="The first day a session may be on.")
    sessions: SessionCount | None = Field(None, description="Default: the sessions not booked.")


class SuggestionOut(Schema):
    course: int
    slots: list[SlotOut]


def slot_out(slot: Slot) -> dict[str, Any]:
    return {
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "service": slot.service.pk,
        "therapist": slot.therapist.pk,
        "therapist_name": slot.therapist.display_name,
        "room": slot.room.pk,
        "room_name": slot.room.name,
    }


@router.get("/availability/slots", response=documented(200, list[SlotOut]), summary="Free slots for a service")
@paginate(Pagination)
def list_slots(request: HttpRequest, query: Query[SlotQuery]) -> Any:
    check_day(query.date_from, "date_from")
    check_day(query.date_to, "date_to")
    if query.date_to < query.date_from:
        raise unprocessable("query", "date_to", "must not be before date_from")
    if (query.date_to - query.date_from).days >= MAX_DAYS:
        raise unprocessable("query", "date_to", f"search at most {MAX_DAYS} days at a time")
    me = access.staff_of(request.user)
    own = access.client_of(request.user)
    if me is not None:
        services = Service.objects.filter(clinic=me.clinic, active=True)
        client = contact_client(request, query.client) if query.client is not None else None
        clinic_id = me.clinic_id
    elif own is not None:
        if query.client not in (None, own.pk):
            raise Http404("No such client.")
        client = own
        services = client_services(own, treatment_gate(own))
        clinic_id = own.clinic_id
    else:
        raise Http404("No such client.")
    service = services.filter(pk=query.service).first()
    if service is None:
        if own is not None and me is None and not client_services(own, treatment_gate(own)).exists():
            raise unprocessable("query", "service", client_gate_text(treatment_gate(own)))
        raise unprocessable("query", "service", "choose one of the services you may book")
    therapist = None
    if query.therapist is not None:
        therapist = StaffMember.objects.filter(
            pk=query.therapist, clinic_id=clinic_id, role=Role.THERAPIST, active=True
        ).first()
        if therapist is None:
            raise unprocessable("query", "therapist", "choose one of the clinic's therapists")
    return [
        slot_out(s)
        for s in find_slots(
            service, query.date_from, query.date_to, therapist=therapist, technique=query.technique, client=client
        )
    ]


@router.get(
    "/courses/{course_id}/suggestion",
    response=documented(200, SuggestionOut),
    summary="Suggested times for a course's sessions",
    tags=["availability"],
)
def suggest_course_times(request: HttpRequest, query: Query[SuggestionQuery], course_id: Id = COURSE_ID) -> Any:
    """Times for the course's remaining sessions, spread over its weeks and at least five days apart, with the
    course's therapist where possible. As on the course booking page: staff who may see the client's record, and
    the front desk (who books appointments)."""
    me = staff(request)
    course = Course.objects.select_related("client", "therapist").filter(pk=course_id, client__clinic=me.clinic).first()
    if course is None:
        raise Http404("No such course.")
    access.get_client(request.user, course.client_id, clinical=me.role != Role.FRONT_DESK)
    check_day(query.start, "start")
    viewed(request, course.client, "course booking suggestion", course)
    gate = treatment_gate(course.client)
    if course.status != Course.Status.ACTIVE:
        raise Problem(409, "This course has ended.", kind="course-ended")
    if not gate.allowed:
        raise Problem(409, staff_gate_text(request.user, course.client, gate), kind="hard-stop")
    booked = course.appointments.filter(status__in=VISIT_STATUSES).count()
    remaining = course.sessions_planned - booked
    if remaining <= 0:
        raise Problem(409, "Every planned session of this course is booked.", kind="course-full")
    sessions = query.sessions or remaining
    if sessions > remaining:
        raise unprocessable("query", "sessions", f"at most {remaining} sessions remain to be booked")
    service = Service.objects.filter(pk=query.service, clinic=me.clinic, active=True, assessment=False).first()
    if service is None:
        raise unprocessable("query", "service", "choose one of the clinic's treatment services")
    try:
        slots = suggest_course(course, service, query.start, sessions=sessions)
    except ValidationError as error:
        raise rule_violation(error) from None
    return {"course": course.pk, "slots": [slot_out(s) for s in slots]}
