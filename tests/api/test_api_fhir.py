"""The FHIR endpoints with API tokens: `GET /fhir/Patient/{id}/$everything` (read scope) and
`POST /fhir/Bundle/$import` (write scope), for every kind of token, as `application/fhir+json`, with every error an
OperationOutcome."""

from __future__ import annotations

import json

import pytest
from api_support import call
from api_world import ROLES
from django.db import transaction

FHIR_JSON = "application/fhir+json"
# Status per token, in ROLES order (owner, therapist of X, other therapist, front desk, client X, client Y,
# read-only, revoked, none): the client's clinical record, and importing clients (owner and therapists).
EXPECTED = {
    "everything": "200 200 404 403 404 404 200 401 401",
    "import": "201 201 201 403 403 403 403 401 401",
}


def new_patient_bundle(family: str = "Okafor", birth: str = "1984-04-12") -> dict:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "fullUrl": "urn:uuid:6f0c1a53-1111-4c1e-9a1e-3f8c2b7a0001",
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": "https://other-system.example.org/patients", "value": "p-77"}],
                    "name": [{"use": "official", "family": family, "given": ["Ada"]}],
                    "gender": "female",
                    "birthDate": birth,
                    "telecom": [{"system": "email", "value": "ada@example.org"}],
                },
            }
        ],
    }


def outcome_of(response) -> dict:
    assert response["Content-Type"].startswith(FHIR_JSON), response["Content-Type"]
    data = response.json()
    assert data["resourceType"] == "OperationOutcome", data
    return data


def send(w, kind: str, role: str):
    with transaction.atomic():
        if kind == "everything":
            response = call("GET", f"/fhir/Patient/{w.x['client']}/$everything", token=w.tokens[role])
        else:
            response = call(
                "POST", "/fhir/Bundle/$import", token=w.tokens[role], body=new_patient_bundle(), content_type=FHIR_JSON
            )
        transaction.set_rollback(True)
    return response


def test_every_token_gets_what_the_pages_allow(w):
    wrong = []
    for kind, row in EXPECTED.items():
        for role, expected in zip(ROLES, row.split(), strict=True):
            response = send(w, kind, role)
            if str(response.status_code) != expected:
                wrong.append(
                    f"{kind} as {role}: expected {expected}, got {response.status_code} {response.content[:200]}"
                )
            elif response.status_code >= 400:
                assert outcome_of(response)["issue"][0]["severity"] == "error"
    assert not wrong, "\n".join(wrong)


def test_everything_is_a_searchset_bundle_of_the_whole_record_and_is_audited(w):
    from backcare.clinic.models import AuditEvent

    response = call("GET", f"/fhir/Patient/{w.x['client']}/$everything", token=w.tokens["therapist"])
    assert response.status_code == 200 and response["Content-Type"].startswith(FHIR_JSON)
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {"Patient", "QuestionnaireResponse", "Observation", "CarePlan", "Procedure", "Appointment"} <= kinds
    patients = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert any("first name X" in json.dumps(p) for p in patients)
    assert "first name Y" not in response.content.decode()
    event = AuditEvent.objects.filter(action="export", client=w.world.x.client).order_by("-id").first()
    assert event is not None and event.user == w.world.therapist_a.user


def test_import_makes_the_client_and_says_so(w):
    from backcare.clinic.models import Client

    response = call("POST", "/fhir/Bundle/$import", token=w.tokens["therapist"], body=new_patient_bundle())
    assert response.status_code == 201
    issues = outcome_of(response)["issue"]
    created = [i for i in issues if i["diagnostics"].startswith("Created Patient/")]
    client = Client.objects.get(pk=int(created[0]["expression"][0].split("/")[1]))
    assert (client.first_name, client.last_name, client.therapist) == ("Ada", "Okafor", w.world.therapist_a)
    again = call("POST", "/fhir/Bundle/$import", token=w.tokens["therapist"], body=new_patient_bundle())
    assert again.status_code == 422  # the same client again: refused, naming why


def test_an_invalid_bundle_is_refused_whole_naming_every_problem(w):
    from backcare.clinic.models import Client

    bundle = new_patient_bundle(birth="12/04/1984")
    bundle["entry"].append(new_patient_bundle(family="")["entry"][0])
    before = Client.objects.count()
    response = call("POST", "/fhir/Bundle/$import", token=w.tokens["owner"], body=bundle)
    assert response.status_code == 422
    locations = [loc for issue in outcome_of(response)["issue"] for loc in issue.get("expression", [])]
    assert any("birthDate" in loc for loc in locations)
    assert any("entry[1]" in loc for loc in locations)
    assert Client.objects.count() == before


@pytest.mark.parametrize(("raw", "status"), [(b"{not json", 400), (b"", 400), (b"\xff\xfe", 400), (b"[]", 422)])
def test_bad_bodies_are_4xx_operation_outcomes(w, raw, status):
    response = call("POST", "/fhir/Bundle/$import", token=w.tokens["owner"], raw=raw, content_type=FHIR_JSON)
    assert response.status_code == status
    assert outcome_of(response)["issue"][0]["diagnostics"]


def test_oversized_bodies_and_wrong_paths(w, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    big = call("POST", "/fhir/Bundle/$import", token=w.tokens["owner"], body={"x": "y" * 2000})
    assert big.status_code == 413 and outcome_of(big)
    for path, status in (
        ("/fhir/Patient/abc/$everything", 404),
        ("/fhir/Patient/999999/$everything", 404),
        ("/fhir/Observation", 404),
    ):
        response = call("GET", path, token=w.tokens["owner"])
        assert response.status_code == status and outcome_of(response)
    wrong_method = call("DELETE", f"/fhir/Patient/{w.x['client']}/$everything", token=w.tokens["owner"])
    assert wrong_method.status_code == 405 and outcome_of(wrong_method)


def test_the_rate_limit_applies_to_fhir_too(w, settings):
    settings.BACKCARE_API_RATE = "2/minute"
    path = f"/fhir/Patient/{w.x['client']}/$everything"
    statuses = [call("GET", path, token=w.tokens["owner"]).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = call("GET", path, token=w.tokens["owner"])
    assert int(limited["Retry-After"]) >= 1 and outcome_of(limited)["issue"][0]["code"] == "throttled"


@pytest.mark.parametrize(
    "pk", ["%C2%B3", "%D9%A1", "%EF%BC%91", "1%0A"], ids=["superscript", "arabic", "fullwidth", "newline"]
)
def test_a_patient_id_in_other_digits_is_not_found(w, pk):
    response = call("GET", f"/fhir/Patient/{pk}/$everything", token=w.tokens["owner"])
    assert response.status_code == 404 and outcome_of(response)["issue"][0]["code"] == "not-found"
