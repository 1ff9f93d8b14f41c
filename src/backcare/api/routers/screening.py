"""Stateless screening: an intake document of the screening contract in, the screening result out, exactly as
`backcare screen --format json` does it. Nothing is stored and no client is involved, so any token may call it."""

import re
from typing import Any

from django.http import HttpRequest
from ninja import Router

from backcare.api import contract
from backcare.api.problems import Problem, field_error
from backcare.api.routers.common import documented
from backcare.clinical.engine import default_screener
from backcare.clinical.intake import MAX_INTAKE_BYTES, IntakeError, parse_intake

router = Router(tags=["screening"])
# The core's messages for a body that is not a JSON document at all (as opposed to a document that breaks the schema).
NOT_JSON = ("the input is not valid JSON", "the input is not UTF-8", "the input is empty")
_PART = re.compile(r"\[(\d+)\]|\.?([^.\[]+)")


def path_parts(path: str) -> list[str | int]:
    """'findings[0].code' as ['findings', 0, 'code']."""
    return [int(index) if index else name for index, name in _PART.findall(path)]


@router.post(
    "/screening",
    response=documented(200, dict[str, Any]),
    summary="Screen an intake (nothing is stored)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": contract.ref("Intake")}}},
        "responses": {200: {"content": {"application/json": {"schema": contract.ref("Screening")}}}},
    },
)
def screen_intake(request: HttpRequest) -> Any:
    """The body is an intake (`intake.schema.json` of the screening contract); the answer is the screening result
    (`screening.schema.json`): the decision, every finding with its reason and sources, the precautions and the
    recommended plan. An invalid intake answers 400 naming every offending field."""
    raw = request.body
    if len(raw) > MAX_INTAKE_BYTES:
        raise Problem(413, f"An intake may be at most {MAX_INTAKE_BYTES:,} bytes.", max_bytes=MAX_INTAKE_BYTES)
    try:
        intake = parse_intake(raw)
    except IntakeError as error:
        errors = [field_error("body", path_parts(e.path), e.message) for e in error.errors]
        malformed = any(not e.path and e.message.startswith(NOT_JSON) for e in error.errors)
        detail = "; ".join(str(e) for e in error.errors)
        raise Problem(
            400,
            f"The body is not a JSON document: {detail}" if malformed else detail,
            kind="malformed-json" if malformed else "invalid-request",
            errors=errors,
        ) from None
    return default_screener().screen(intake)
