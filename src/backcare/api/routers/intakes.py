"""Intakes (the anamnesis): the answers as the client left them and the contract document screened from them.
Clinical records: the owner and the client's therapists (and those it is shared with); front desk 403, anyone else
404. Every read is audited."""

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from backcare.api.pagination import Pagination
from backcare.api.routers.common import CLIENT_ID, INTAKE_ID, clinical_client, documented, viewed
from backcare.api.schemas import Id
from backcare.clinic.models import Intake

router = Router(tags=["intakes"])


class IntakeOut(Schema):
    id: int
    client: int
    status: str
    answers: dict[str, Any]
    document: dict[str, Any] | None = Field(
        None, description="The contract intake built on submission (intake.schema.json); null for a draft."
    )
    started_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    reviewed_by: int | None
    reviewed_at: datetime | None
    review_note: str

    @staticmethod
    def resolve_client(obj: Intake) -> int:
        return obj.client_id

    @staticmethod
    def resolve_reviewed_by(obj: Intake) -> int | None:
        return obj.reviewed_by_id


@router.get("/clients/{client_id}/intakes", response=documented(200, list[IntakeOut]), summary="A client's intakes")
@paginate(Pagination)
def list_intakes(request: HttpRequest, client_id: Id = CLIENT_ID) -> Any:
    client = clinical_client(request, client_id)
    viewed(request, client, "intakes")
    return client.intakes.order_by("-started_at", "-pk")


@router.get("/intakes/{intake_id}", response=documented(200, IntakeOut), summary="One intake")
def get_intake(request: HttpRequest, intake_id: Id = INTAKE_ID) -> Any:
    intake = Intake.objects.filter(pk=intake_id).first()
    if intake is None:
        raise Http404("No such intake.")
    client = clinical_client(request, intake.client_id)
    viewed(request, client, "intake", intake)
    return intake
