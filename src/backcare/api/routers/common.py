"""What every router shares: documented responses, reaching records through `backcare.clinic.access`, the audit of
clinical reads, and limits on dates the services would not expect."""

from datetime import date, datetime, timedelta
from typing import Any, TypedDict

from django.http import Http404, HttpRequest
from django.utils import timezone
from ninja.params import functions as params

from backcare.api.auth import WRITE_AUTH, TokenAuth
from backcare.api.problems import Problem, error_responses, field_error
from backcare.api.schemas import MAX_ID
from backcare.clinic import access, audit
from backcare.clinic.models import Client, Course, StaffMember


class WriteOptions(TypedDict):
    auth: TokenAuth


WRITE: WriteOptions = {"auth": WRITE_AUTH}  # an operation's options (**WRITE): it needs a token with write scope
EARLIEST_DAY = date(2000, 1, 1)
LATEST_YEARS = 5


def documented(status: int, schema: Any) -> dict[int, Any]:
    """The success response and every problem the API can answer with."""
    return {status: schema, **error_responses()}


def path_id(description: str) -> Any:
    return params.Path(..., ge=1, le=MAX_ID, description=description)


CLIENT_ID = path_id("The client's id")
INTAKE_ID = path_id("The intake's id")
SCREENING_ID = path_id("The screening's id")
COURSE_ID = path_id("The course's id")
SESSION_ID = path_id("The session's id")
APPOINTMENT_ID = path_id("The appointment's id")


def staff(request: HttpRequest) -> StaffMember:
    """The caller as staff (403 for clients, as on the staff pages)."""
    return access.require_staff(request.user)


def clinical_client(request: HttpRequest, pk: int) -> Client:
    """A client whose clinical record the caller may see: front desk 403, anyone else out of reach 404."""
    return access.get_client(request.user, pk, clinical=True)


def contact_client(request: HttpRequest, pk: int) -> Client:
    return access.get_client(request.user, pk, clinical=False)


def clinical_course(request: HttpRequest, pk: int) -> Course:
    course = Course.objects.select_related("client", "screening", "therapist").filter(pk=pk).first()
    if course is None:
        raise Http404("No such course.")
    clinical_client(request, course.client_id)
    return course


def viewed(request: HttpRequest, client: Client, what: str, obj: Any = None) -> None:
    """Record a read of clinical data, as the pages do (the page name says it came through the API)."""
    audit.viewed(request, client, f"API: {what}", obj)


def check_day(value: date | None, name: str, location: str = "query") -> None:
    """Dates the calendar arithmetic can handle: from 2000 to a few years ahead."""
    if value is None:
        return
    latest = timezone.localdate() + timedelta(days=365 * LATEST_YEARS)
    if not EARLIEST_DAY <= value <= latest:
        raise Problem(
            422,
            f"{name}: choose a date between {EARLIEST_DAY} and {latest}.",
            errors=[field_error(location, [name], f"choose a date between {EARLIEST_DAY} and {latest}")],
        )


def check_moment(value: datetime, name: str) -> None:
    """A time for an appointment: not absurdly far in the past or the future (the services add durations)."""
    now = timezone.now()
    if not now - timedelta(days=366) <= value <= now + timedelta(days=365 * LATEST_YEARS):
        raise Problem(
            422,
            f"{name}: choose a time within the next {LATEST_YEARS} years.",
            errors=[field_error("body", [name], f"choose a time within the next {LATEST_YEARS} years")],
        )


def unprocessable(location: str, name: str, message: str) -> Problem:
    return Problem(422, f"{name}: {message}", errors=[field_error(location, [name], message)])
