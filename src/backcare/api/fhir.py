"""FHIR R4 over HTTP, with the same personal API tokens and the same permissions as the REST API and the pages:

- `GET /fhir/Patient/{id}/$everything` (read scope): the client's whole record as a searchset Bundle
  (`application/fhir+json`), for those who may see the client's clinical record; the export is audited;
- `POST /fhir/Bundle/$import` (write scope): a Bundle of Patients and QuestionnaireResponses imported into the
  caller's clinic, all or nothing (owner and therapists).

The mapping itself is `backcare.interop.fhir`. Every error is a FHIR OperationOutcome with the HTTP status a REST
client expects (400 not JSON, 401, 403, 404, 405, 413, 422 rejected bundle naming every problem, 429).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from backcare.api.auth import UNAUTHENTICATED_HEADERS, authenticate, bearer
from backcare.api.models import READ, WRITE
from backcare.api.problems import Problem
from backcare.api.throttling import TokenRateThrottle
from backcare.clinic import access, audit
from backcare.clinic.models import Role
from backcare.common.ids import ascii_id

FHIR_JSON = "application/fhir+json"
ISSUE_CODES = {
    400: "structure",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    413: "too-costly",
    422: "invalid",
    429: "throttled",
}
_throttle = TokenRateThrottle()


def fhir_response(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(json.dumps(data), status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def outcome(status: int, message: str, *, location: str = "", headers: dict[str, str] | None = None) -> HttpResponse:
    issue: dict[str, Any] = {"severity": "error", "code": ISSUE_CODES.get(status, "exception"), "diagnostics": message}
    if location:
        issue["expression"] = [location]
    return fhir_response({"resourceType": "OperationOutcome", "issue": [issue]}, status, headers)


def _caller(request: HttpRequest, scope: str) -> HttpResponse | None:
    """Authenticate and rate-limit as the REST API does; an OperationOutcome response when refused."""
    token = bearer(request)
    if token is None:
        return outcome(
            401, "Send a personal API token: Authorization: Bearer <token>.", headers=UNAUTHENTICATED_HEADERS
        )
    try:
        request.auth = authenticate(request, token, scope)  # type: ignore[attr-defined]  # where ninja keeps it
    except Problem as problem:
        return outcome(problem.status, problem.detail, headers=problem.headers)
    if not _throttle.allow_request(request):
        wait = max(1, math.ceil(_throttle.wait() or 1))
        return outcome(
            429, f"This token made too many requests. Try again in {wait} seconds.", headers={"Retry-After": str(wait)}
        )
    return None


@csrf_exempt
def patient_everything(request: HttpRequest, pk: str) -> HttpResponse:
    from backcare.interop.fhir.export import patient_bundle

    if request.method != "GET":
        return outcome(405, "Use GET for $everything.", headers={"Allow": "GET"})
    refused = _caller(request, READ)
    if refused is not None:
        return refused
    client_id = ascii_id(pk)
    if client_id is None:
        return outcome(404, f"No Patient with id {pk[:40]!r}.", location="Patient.id")
    try:
        client = access.get_client(request.user, client_id, clinical=True)
    except Http404:
        return outcome(404, f"No Patient with id {pk} is within your reach.", location="Patient.id")
    except PermissionDenied as error:
        return outcome(403, str(error) or "Your role does not see clinical records.")
    bundle = patient_bundle(client, bundle_type="searchset")
    audit.record(
        request.user,
        "export",
        client=client,
        obj=client,
        detail={"format": "FHIR R4 Bundle", "via": "API Patient/$everything", "entries": len(bundle.get("entry", []))},
        request=request,
    )
    return fhir_response(bundle)


@csrf_exempt
def bundle_import(request: HttpRequest) -> HttpResponse:
    from backcare.interop.fhir.importer import BundleRejected, import_bundle
    from backcare.interop.fhir.validation import operation_outcome

    if request.method != "POST":
        return outcome(405, "POST a FHIR Bundle to $import.", headers={"Allow": "POST"})
    refused = _caller(request, WRITE)
    if refused is not None:
        return refused
    staff = access.staff_of(request.user)
    if staff is None or staff.role not in (Role.OWNER, Role.THERAPIST):
        return outcome(403, "Importing clients is for the clinic owner and therapists.")
    try:
        raw = request.body
    except RequestDataTooBig:
        return outcome(413, f"The body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,} bytes.")
    try:
        json.loads(raw)
    except (ValueError, RecursionError) as error:
        return outcome(400, f"The body is not JSON: {error}", location="Bundle")
    try:
        result = import_bundle(raw, clinic=staff.clinic, user=request.user, request=request)
    except BundleRejected as rejected:
        status = 413 if any(p.code == "too-costly" for p in rejected.problems) else 422
        return fhir_response(operation_outcome(rejected.problems), status)
    except PermissionDenied as error:
        return outcome(403, str(error))
    issues = [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": f"Imported {len(result.clients)} client(s), {len(result.intakes)} intake(s) and "
            f"{len(result.outcomes)} outcome score(s).",
        },
        *(
            {
                "severity": "information",
                "code": "informational",
                "diagnostics": f"Created Patient/{c.pk}",
                "expression": [f"Patient/{c.pk}"],
            }
            for c in result.clients
        ),
    ]
    if result.not_imported:
        kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(result.not_imported.items()))
        issues.append({"severity": "information", "code": "informational", "diagnostics": f"Not imported: {kinds}."})
    return fhir_response({"resourceType": "OperationOutcome", "issue": issues}, 201)


def fhir_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return outcome(404, "This server offers Patient/{id}/$everything and Bundle/$import only.")
