"""Clients: contact details, as on the client pages. Every member of staff sees every client of the clinic (the
front desk works with contact details); a client's token reaches only their own record. Clinical records are
separate resources (intakes, screenings, courses...), each checking clinical access."""

from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.utils import timezone
from ninja import Query, Router, Schema, Status
from ninja.pagination import paginate

from backcare.api.pagination import KeysetPagination
from backcare.api.problems import rule_violation
from backcare.api.routers.common import CLIENT_ID, WRITE, contact_client, documented, staff, unprocessable, viewed
from backcare.api.schemas import Day, Id, IdIn, In, LongText, Name, ShortText, text
from backcare.clinic import access
from backcare.clinic.models import Client, Role, StaffMember
from backcare.clinic.search import search_clients
from backcare.clinic.services import clients as client_services

router = Router(tags=["clients"])
Sex = Literal["female", "male", "other", "unknown"]
# mypy cannot read a type that a call makes: statically these are the plain types that pydantic checks.
if TYPE_CHECKING:
    Email = str
    Phone = str
else:
    Email = text(254)
    Phone = text(40)
LIST_ORDER = ("last_name", "first_name", "pk")  # the index (clinic, last_name, first_name, id)


class ClientOut(Schema):
    id: int
    first_name: str
    last_name: str
    date_of_birth: date
    sex: str
    email: str
    phone: str
    address: str
    physician_name: str
    physician_address: str
    therapist: int | None
    created_at: datetime

    @staticmethod
    def resolve_therapist(obj: Client) -> int | None:
        return obj.therapist_id


class ClientCreate(In):
    first_name: Name
    last_name: Name
    date_of_birth: Day
    sex: Sex = "unknown"
    email: Email = ""
    phone: Phone = ""
    address: LongText = ""
    physician_name: ShortText = ""
    physician_address: LongText = ""
    therapist: IdIn | None = None


class ClientUpdate(In):
    """Only the fields sent are changed."""

    # None stands for "not sent" (hence ignore[assignment]): the types stay non-null, so a null sent is refused

    first_name: Name = None  # type: ignore[assignment]
    last_name: Name = None  # type: ignore[assignment]
    date_of_birth: Day = None  # type: ignore[assignment]
    sex: Sex = None  # type: ignore[assignment]
    email: Email = None  # type: ignore[assignment]
    phone: Phone = None  # type: ignore[assignment]
    address: LongText = None  # type: ignore[assignment]
    physician_name: ShortText = None  # type: ignore[assignment]
    physician_address: LongText = None  # type: ignore[assignment]


class ClientFilter(Schema):
    q: ShortText = ""


def _check_birth(born: date | None) -> None:
    """As the client forms: not in the future, not over 120 years ago."""
    if born is None:
        return
    today = timezone.localdate()
    if born > today:
        raise unprocessable("body", "date_of_birth", "this date is in the future")
    if born.year < today.year - 120:
        raise unprocessable("body", "date_of_birth", "this would make the client over 120 years old; check the year")


@router.get("/clients", response=documented(200, list[ClientOut]), summary="List clients")
@paginate(KeysetPagination, keys=LIST_ORDER)
def list_clients(request: HttpRequest, filters: Query[ClientFilter]) -> Any:
    """Every client of the clinic for staff (search by words of the name with `q`, as on the client list: accents
    and case do not matter); a client's own record for a client."""
    return search_clients(access.clients_for(request.user), filters.q).order_by(*LIST_ORDER)


@router.post("/clients", response=documented(201, ClientOut), summary="Create a client", **WRITE)
def create_client(request: HttpRequest, payload: ClientCreate) -> Any:
    me = staff(request)
    _check_birth(payload.date_of_birth)
    fields = payload.model_dump(exclude={"therapist"})
    therapist = None
    if payload.therapist is not None:
        therapist = StaffMember.objects.filter(
            pk=payload.therapist, clinic=me.clinic, role__in=[Role.THERAPIST, Role.OWNER]
        ).first()
        if therapist is None:
            raise unprocessable("body", "therapist", "choose a therapist of this clinic")
    try:
        client = client_services.create_client(staff=me, therapist=therapist, request=request, **fields)
    except ValidationError as error:
        raise rule_violation(error) from None
    return Status(201, client)


@router.get("/clients/{client_id}", response=documented(200, ClientOut), summary="A client's contact details")
def get_client(request: HttpRequest, client_id: Id = CLIENT_ID) -> Any:
    client = contact_client(request, client_id)
    viewed(request, client, "client contact details", client)
    return client


@router.patch("/clients/{client_id}", response=documented(200, ClientOut), summary="Change contact details", **WRITE)
def update_client(request: HttpRequest, payload: ClientUpdate, client_id: Id = CLIENT_ID) -> Any:
    me = staff(request)
    client = contact_client(request, client_id)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    _check_birth(changes.get("date_of_birth"))
    try:
        return client_services.update_contact(client, staff=me, request=request, **changes)
    except ValidationError as error:
        raise rule_violation(error) from None
