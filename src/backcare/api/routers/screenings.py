"""Screening results: each run of the clinical core on a client's intake or health update, kept exactly as it was
made (the intake document screened, the result, the rule base's version and digest). Clinical records, audited."""

from datetime import datetime
from typing import Any

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema
from ninja.pagination import paginate

from backcare.api.pagination import Pagination
from backcare.api.routers.common import CLIENT_ID, SCREENING_ID, clinical_client, documented, viewed
from backcare.api.schemas import Id
from backcare.clinic.models import Screening

router = Router(tags=["screenings"])


class ScreeningOut(Schema):
    id: int
    client: int
    intake: int | None
    kind: str
    decision: str
    referral: str
    blocks_treatment: bool
    needs_clearance: bool
    created_at: datetime
    rule_base_version: str
    rule_base_digest: str
    document: dict[str, Any] = Field(description="The intake document that was screened (intake.schema.json).")
    result: dict[str, Any] = Field(description="The screening result (screening.schema.json).")

    @staticmethod
    def resolve_client(obj: Screening) -> int:
        return obj.client_id

    @staticmethod
    def resolve_intake(obj: Screening) -> int | None:
        return obj.intake_id


@router.get(
    "/clients/{client_id}/screenings",
    response=documented(200, list[ScreeningOut]),
    summary="A client's screenings, latest first",
)
@paginate(Pagination)
def list_screenings(request: HttpRequest, client_id: Id = CLIENT_ID) -> Any:
    client = clinical_client(request, client_id)
    viewed(request, client, "screenings")
    return client.screenings.order_by("-created_at", "-pk")


@router.get("/screenings/{screening_id}", response=documented(200, ScreeningOut), summary="One screening")
def get_screening(request: HttpRequest, screening_id: Id = SCREENING_ID) -> Any:
    screening = Screening.objects.filter(pk=screening_id).first()
    if screening is None:
        raise Http404("No such screening.")
    client = clinical_client(request, screening.client_id)
    viewed(request, client, "screening", screening)
    return screening
