"""Appointments: the clinic's calendar for staff (contact data: every role, therapists for every client), a client's
own appointments for a client. Booking, moving and cancelling go through `backcare.scheduling.services.booking`;
a time that is taken answers 409 naming who or what is taken.

A client's token books for itself only, only the services the portal offers it, and may cancel outside the
cancellation window; moving an appointment is for staff (clients cancel and book again, as in the portal)."""

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from ninja.pagination import paginate

from backcare.api.pagination import KeysetPagination
from backcare.api.problems import Problem, rule_violation
from backcare.api.routers.common import (
    APPOINTMENT_ID,
    WRITE,
    check_day,
    check_moment,
    contact_client,
    documented,
    unprocessable,
)
from backcare.api.schemas import Id, IdIn, In, When, text
from backcare.clinic import access, audit
from backcare.clinic.models import Client, Course, Role, StaffMember
from backcare.scheduling.gates import (
    client_gate_text,
    client_services,
    replace_gate_error,
    staff_gate_text,
    treatment_gate,
)
from backcare.scheduling.models import Appointment, Room, Service
from backcare.scheduling.services import booking, status
from backcare.scheduling.services.availability import clinic_zone, day_bounds

router = Router(tags=["appointments"])
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Reason = str
else:
    Reason = text(500)
AppointmentStatus = Literal[
    "held",
    "booked",
    "arrived",
    "in_treatment",
    "completed",
    "no_show",
    "cancelled",
    "late_cancelled",
    "expired",
    "declined",
]


class AppointmentOut(Schema):
    id: int
    client: int
    client_name: str
    therapist: int
    therapist_name: str
    room: int
    room_name: str
    service: int
    service_name: str
    course: int | None
    starts_at: datetime
    ends_at: datetime
    status: str
    hold_expires_at: datetime | None
    override: bool
    cancelled_at: datetime | None
    cancel_reason: str

    @staticmethod
    def resolve_client(obj: Appointment) -> int:
        return obj.client_id

    @staticmethod
    def resolve_client_name(obj: Appointment) -> str:
        return obj.client.full_name

    @staticmethod
    def resolve_therapist(obj: Appointment) -> int:
        return obj.therapist_id

    @staticmethod
    def resolve_therapist_name(obj: Appointment) -> str:
        return obj.therapist.display_name

    @staticmethod
    def resolve_room(obj: Appointment) -> int:
        return obj.room_id

    @staticmethod
    def resolve_room_name(obj: Appointment) -> str:
        return obj.room.name

    @staticmethod
    def resolve_service(obj: Appointment) -> int:
        return obj.service_id

    @staticmethod
    def resolve_service_name(obj: Appointment) -> str:
        return obj.service.name

    @staticmethod
    def resolve_course(obj: Appointment) -> int | None:
        return obj.course_id


class AppointmentQuery(Schema):
    date_from: date | None = Field(None, description="From this local day of the clinic (inclusive).")
    date_to: date | None = Field(None, description="To this local day of the clinic (inclusive).")
    client: Id | None = None
    therapist: Id | None = None
    status: AppointmentStatus | None = None


class BookingIn(In):
    client: IdIn | None = Field(None, description="Required for staff; a client's token books for itself.")
    service: IdIn
    therapist: IdIn
    room: IdIn
    starts_at: When
    course: IdIn | None = Field(None, description="The course this session belongs to (staff).")
    override_reason: Reason = Field("", description="The owner may overbook a taken time, giving the reason.")


class RescheduleIn(In):
    starts_at: When
    therapist: IdIn | None = None
    room: IdIn | None = None
    late_reason: Reason = Field("", description="Required inside the clinic's cancellation window.")
    override_reason: Reason = ""


class StatusIn(In):
    status: Literal["arrived", "in_treatment", "completed", "no_show", "late_cancelled"] = Field(
        description=(
            "The new status. arrived and no-show: the front desk, the owner or the appointment's therapist; "
            "in treatment and completed: the appointment's therapist or the owner who can open the client's record; "
            "late_cancelled: staff, inside the clinic's cancellation window, with late_reason."
        )
    )
    late_reason: Reason = Field("", description="Why it is cancelled late (required for late_cancelled).")


class CancelIn(In):
    reason: Reason = ""
    late_reason: Reason = Field("", description="Staff, inside the cancellation window.")


SELECTED = ("client", "therapist", "room", "service", "clinic")
LISTED = ("client", "therapist", "room", "service")  # what a list shows (not the clinic: it is the caller's)
LIST_ORDER = ("starts_at", "pk")
LONGEST = timedelta(minutes=32767)  # the longest Service.duration_minutes (a PositiveSmallIntegerField) can be


def _appointment(request: HttpRequest, pk: int) -> Appointment:
    """An appointment the caller may see: any of the clinic's for staff, their own for a client (else 404)."""
    me = access.staff_of(request.user)
    own = access.client_of(request.user)
    qs = Appointment.objects.select_related(*SELECTED)
    if me is not None:
        appointment = qs.filter(pk=pk, clinic=me.clinic).first()
    elif own is not None:
        appointment = qs.filter(pk=pk, client=own).first()
    else:
        appointment = None
    if appointment is None:
        raise Http404("No such appointment.")
    if me is not None:
        contact_client(request, appointment.client_id)
    return appointment


def _of_clinic(model: Any, pk: int | None, clinic_id: int, name: str, **extra: Any) -> Any:
    if pk is None:
        return None
    found = model.objects.filter(pk=pk, clinic_id=clinic_id, **extra).first()
    if found is None:
        raise unprocessable("body", name, f"no {name} of this clinic has that id")
    return found


def _gate_text(request: HttpRequest, client: Client) -> str:
    gate = treatment_gate(client)
    if access.staff_of(request.user) is not None:
        return staff_gate_text(request.user, client, gate)
    return client_gate_text(gate)


def _refused(request: HttpRequest, client: Client, error: ValidationError) -> Problem:
    """The booking service's refusal, with the screening's stop in the reader's own words (the front desk never
    reads a clinical decision)."""
    return rule_violation(replace_gate_error(error, _gate_text(request, client)))


def _changeable(appointment: Appointment, what: str) -> None:
    if appointment.status != Appointment.Status.BOOKED:
        raise Problem(409, f"Only a booked appointment can be {what}; this one is {appointment.status}.", kind="state")
    if appointment.starts_at <= timezone.now():
        raise Problem(409, "This appointment has already started.", kind="state")


@router.get("/appointments", response=documented(200, list[AppointmentOut]), summary="List appointments")
@paginate(KeysetPagination, keys=LIST_ORDER)
def list_appointments(request: HttpRequest, query: Query[AppointmentQuery]) -> Any:
    """The clinic's appointments for staff, a client's own for a client; earliest first."""
    check_day(query.date_from, "date_from")
    check_day(query.date_to, "date_to")
    me = access.staff_of(request.user)
    own = access.client_of(request.user)
    if me is not None:
        qs = Appointment.objects.filter(clinic=me.clinic)
        clinic = me.clinic
    elif own is not None:
        qs = Appointment.objects.filter(client=own)
        clinic = own.clinic
    else:
        return Appointment.objects.none()
    zone = clinic_zone(clinic)
    if query.date_from is not None:
        since = day_bounds(query.date_from, query.date_from, zone)[0]
        # An appointment lasts its service's duration (LONGEST at most), so bounding starts_at too lets the list
        # read its index (clinic, starts_at, id) from there instead of from the clinic's first appointment.
        qs = qs.filter(ends_at__gt=since, starts_at__gt=since - LONGEST)
    if query.date_to is not None:
        qs = qs.filter(starts_at__lt=day_bounds(query.date_to, query.date_to, zone)[1])
    if query.client is not None:
        qs = qs.filter(client_id=query.client)
    if query.therapist is not None:
        qs = qs.filter(therapist_id=query.therapist)
    if query.status is not None:
        qs = qs.filter(status=query.status)
    # In the order of the index (clinic, starts_at, id): pages are read from it, not sorted.
    return qs.select_related(*LISTED).order_by(*LIST_ORDER)


@router.post("/appointments", response=documented(201, AppointmentOut), summary="Book an appointment", **WRITE)
def book_appointment(request: HttpRequest, payload: BookingIn) -> Any:
    """409 when the time is taken (therapist, room or client), naming what is taken; 422 when a rule refuses it
    (the therapist does not work then, the screening does not allow treatment, a time in the past...)."""
    me = access.staff_of(request.user)
    own = access.client_of(request.user)
    check_moment(payload.starts_at, "starts_at")
    if me is not None:
        if payload.client is None:
            raise unprocessable("body", "client", "say whom the appointment is for")
        client = contact_client(request, payload.client)
    elif own is not None:
        if payload.client not in (None, own.pk):
            raise Http404("No such client.")
        client = own
        if payload.course is not None:
            raise PermissionDenied("Clients book single appointments; the clinic books a course's sessions.")
        if not client_services(own, treatment_gate(own)).filter(pk=payload.service).exists():
            raise unprocessable(
                "body", "service", client_gate_text(treatment_gate(own)) or "choose a service you may book"
            )
    else:
        raise PermissionDenied("Sign in to book appointments.")
    clinic_id = client.clinic_id
    service = _of_clinic(Service, payload.service, clinic_id, "service")
    therapist = _of_clinic(StaffMember, payload.therapist, clinic_id, "therapist", role=Role.THERAPIST)
    room = _of_clinic(Room, payload.room, clinic_id, "room")
    course = None
    if payload.course is not None:
        course = Course.objects.filter(pk=payload.course, client=client).first()
        if course is None:
            raise unprocessable("body", "course", "no course of this client has that id")
        access.get_client(request.user, client.pk, clinical=me is not None and me.role != Role.FRONT_DESK)
    try:
        appointment = booking.book_appointment(
            client,
            service,
            payload.starts_at,
            therapist=therapist,
            room=room,
            by=request.user,
            course=course,
            override_reason=payload.override_reason,
            request=request,
        )
    except booking.BookingConflict:
        raise
    except ValidationError as error:
        raise _refused(request, client, error) from None
    return Status(201, appointment)


@router.get("/appointments/{appointment_id}", response=documented(200, AppointmentOut), summary="One appointment")
def get_appointment(request: HttpRequest, appointment_id: Id = APPOINTMENT_ID) -> Any:
    appointment = _appointment(request, appointment_id)
    if access.staff_of(request.user) is not None:
        audit.viewed(request, appointment.client, "API: appointment", appointment)
    return appointment


@router.post(
    "/appointments/{appointment_id}/reschedule",
    response=documented(200, AppointmentOut),
    summary="Move an appointment",
    **WRITE,
)
def reschedule_appointment(request: HttpRequest, payload: RescheduleIn, appointment_id: Id = APPOINTMENT_ID) -> Any:
    me = access.require_staff(request.user)
    appointment = _appointment(request, appointment_id)
    _changeable(appointment, "moved")
    check_moment(payload.starts_at, "starts_at")
    therapist = _of_clinic(StaffMember, payload.therapist, me.clinic_id, "therapist", role=Role.THERAPIST)
    room = _of_clinic(Room, payload.room, me.clinic_id, "room")
    try:
        return booking.reschedule_appointment(
            appointment,
            payload.starts_at,
            by=request.user,
            therapist=therapist,
            room=room,
            late_reason=payload.late_reason,
            override_reason=payload.override_reason,
            request=request,
        )
    except booking.BookingConflict:
        raise
    except ValidationError as error:
        raise _refused(request, appointment.client, error) from None


@router.post(
    "/appointments/{appointment_id}/status",
    response=documented(200, AppointmentOut),
    summary="Change an appointment's status",
    **WRITE,
)
def change_appointment_status(request: HttpRequest, payload: StatusIn, appointment_id: Id = APPOINTMENT_ID) -> Any:
    """Through the day: arrived, in treatment, completed, no-show (`scheduling.services.status`, with the same
    rules as the appointment's page), or cancelled late inside the cancellation window (`booking`). A move the
    appointment's status does not allow now answers 409; one the caller's role may not make, 403."""
    access.require_staff(request.user)
    appointment = _appointment(request, appointment_id)
    if payload.status == "late_cancelled":
        _changeable(appointment, "cancelled")
        window = timedelta(hours=appointment.clinic.cancellation_hours)
        if appointment.starts_at - timezone.now() >= window:
            raise Problem(409, "This appointment is outside the cancellation window: cancel it instead.", kind="state")
        if not payload.late_reason.strip():
            raise unprocessable("body", "late_reason", "say why the appointment is cancelled late")
        try:
            return booking.cancel_appointment(
                appointment, by=request.user, late_reason=payload.late_reason, request=request
            )
        except ValidationError as error:
            raise rule_violation(error) from None
    try:
        return status.change_status(appointment, payload.status, by=request.user, request=request)
    except ValidationError as error:
        raise Problem(409, " ".join(error.messages), kind="state") from None


@router.post(
    "/appointments/{appointment_id}/cancel",
    response=documented(200, AppointmentOut),
    summary="Cancel an appointment",
    **WRITE,
)
def cancel_appointment(request: HttpRequest, payload: CancelIn, appointment_id: Id = APPOINTMENT_ID) -> Any:
    appointment = _appointment(request, appointment_id)
    _changeable(appointment, "cancelled")
    try:
        return booking.cancel_appointment(
            appointment, by=request.user, reason=payload.reason, late_reason=payload.late_reason, request=request
        )
    except ValidationError as error:
        raise rule_violation(error) from None
