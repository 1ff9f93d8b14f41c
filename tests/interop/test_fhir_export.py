"""FHIR R4 export of the demo clinic: every client's bundle parses with fhirclient's strict R4 models and passes our
own validation, holds the resources the mapping promises, loses no free text, and is the same when exported twice."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections import Counter

import pytest
from fhir_support import demo_data, entries_of, find_item, response_for
from fhirclient.models.bundle import Bundle

DEMO_CLIENTS = {"Nadia Kowalski", "Gareth Lloyd", "Maya Okafor", "Tomasz Nowak", "Eleanor Price", "Derek Holt"}


# Every test is marked so that pytest-django sets up the test database even when this file runs alone; the demo
# itself is built once, in a transaction rolled back at once (see fhir_support).
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    return demo_data(django_db_blocker)


def types(bundle):
    return Counter(e["resource"]["resourceType"] for e in bundle["entry"])


def test_every_demo_client_exports_a_bundle_that_fhirclient_parses_strictly(demo):
    assert set(demo.bundles) == DEMO_CLIENTS
    for name, bundle in demo.bundles.items():
        parsed = Bundle(bundle, strict=True)  # raises FHIRValidationError on any unknown, missing or mistyped element
        # Nothing in the bundle was ignored: fhirclient writes back exactly what it read.
        assert parsed.as_json() == bundle, name


def test_every_demo_bundle_passes_our_own_validation(demo):
    from backcare.interop.fhir.validation import validate_bundle

    for name, bundle in demo.bundles.items():
        assert validate_bundle(bundle) == [], name
        assert validate_bundle(json.dumps(bundle)) == [], f"{name} as JSON text"


def test_the_resources_the_mapping_promises_are_there(demo):
    every = Counter()
    for bundle in demo.bundles.values():
        every.update(types(bundle))
        assert bundle["type"] == "collection"
        assert bundle["entry"][0]["resource"]["resourceType"] == "Patient"
        assert types(bundle)["Patient"] == 1 and types(bundle)["Organization"] == 1
        assert types(bundle)["Questionnaire"] == 3
    for kind in (
        "Patient",
        "Practitioner",
        "Organization",
        "Location",
        "Questionnaire",
        "QuestionnaireResponse",
        "Observation",
        "RiskAssessment",
        "CarePlan",
        "Procedure",
        "Appointment",
        "DocumentReference",
    ):
        assert every[kind] > 0, f"no {kind} in any demo bundle"

    eleanor = types(demo.bundles["Eleanor Price"])
    # Four sessions, each with pain before and after (8 LOINC pain observations) and three Roland-Morris scores.
    assert eleanor["Procedure"] == 4 and eleanor["CarePlan"] == 1
    assert eleanor["Observation"] == 8 + 3
    # Intake, STarT Back and three Roland-Morris answers.
    assert eleanor["QuestionnaireResponse"] == 5
    derek = types(demo.bundles["Derek Holt"])
    assert derek["DocumentReference"] == 1 and "CarePlan" not in derek
    assert types(demo.bundles["Maya Okafor"])["Appointment"] == 1
    assert types(demo.bundles["Maya Okafor"])["Location"] == 1


def test_pain_is_coded_with_loinc_and_linked_to_its_session(demo):
    bundle = demo.bundles["Eleanor Price"]
    urls = {e["fullUrl"]: e["resource"] for e in bundle["entry"]}
    pain = [r for _, r in entries_of(bundle, "Observation") if r["code"]["coding"][0]["system"] == "http://loinc.org"]
    assert len(pain) == 8
    for obs in pain:
        assert obs["code"]["coding"][0]["code"] == "72514-3"
        assert obs["status"] == "final" and 0 <= obs["valueInteger"] <= 10
        assert urls[obs["partOf"][0]["reference"]]["resourceType"] == "Procedure"
    texts = [o["code"]["text"] for o in pain]
    assert texts.count("Pain (0-10) before the session") == 4
    assert texts.count("Pain (0-10) after the session") == 4
    # The first session: pain 6 before, 4 after (the demo's figures).
    first = sorted(pain, key=lambda o: (o["effectiveDateTime"], o["code"]["text"] != "Pain (0-10) before the session"))
    assert [first[0]["valueInteger"], first[1]["valueInteger"]] == [6, 4]


def test_every_reference_resolves_inside_the_bundle(demo):
    for name, bundle in demo.bundles.items():
        urls = {e["fullUrl"] for e in bundle["entry"]}
        refs = []

        def walk(node, refs=refs):
            if isinstance(node, dict):
                if isinstance(node.get("reference"), str):
                    refs.append(node["reference"])
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(bundle)
        assert refs, name
        outside = [r for r in refs if r not in urls and not r.startswith("#")]
        assert not outside, (name, outside)
        assert all(u.startswith("urn:uuid:") for u in urls)


def test_the_same_export_twice_is_identical(demo):
    for name in demo.bundles:
        assert json.dumps(demo.bundles[name], sort_keys=True) == json.dumps(demo.again[name], sort_keys=True), name


def test_no_free_text_of_the_record_is_lost(demo):
    for name, texts in demo.free_text.items():
        dumped = json.dumps(demo.bundles[name], ensure_ascii=False)
        attachments = "".join(
            base64.b64decode(c["attachment"]["data"]).decode("utf-8", "replace")
            for _, r in entries_of(demo.bundles[name], "DocumentReference")
            for c in r["content"]
            if c["attachment"]["contentType"].startswith("text/")
        )
        missing = [t for t in texts if json.dumps(t, ensure_ascii=False)[1:-1] not in dumped and t not in attachments]
        assert not missing, (name, missing)
    # The demo's notes do reach the bundle (the check above is not vacuous).
    assert any("long meetings" in t for t in demo.free_text["Maya Okafor"])


def test_intake_answers_follow_the_questionnaire(demo):
    _, intake = response_for(demo.bundles["Gareth Lloyd"], "intake")
    assert intake["status"] == "completed"
    assert find_item(intake["item"], "pain_intensity")["answer"] == [{"valueInteger": 4}]
    assert find_item(intake["item"], "f_dvt_history")["answer"] == [{"valueBoolean": True}]
    regions = find_item(intake["item"], "pain_regions")["answer"]
    assert regions[0]["valueCoding"]["code"] == "lower_back"
    assert find_item(intake["item"], "notes")["answer"][0]["valueString"].startswith("Clot in the left calf")
    # Nadia's intake is half done: still in progress.
    _, draft = response_for(demo.bundles["Nadia Kowalski"], "intake")
    assert draft["status"] == "in-progress"


def test_start_back_is_a_risk_assessment_on_its_answers(demo):
    bundle = demo.bundles["Derek Holt"]
    qr_index, answers = response_for(bundle, "start-back")
    risk = [r for _, r in entries_of(bundle, "RiskAssessment") if r["code"]["coding"][0]["code"] == "start-back"]
    assert len(risk) == 1
    assert risk[0]["basis"] == [{"reference": bundle["entry"][qr_index]["fullUrl"]}]
    # Derek agrees with 1, 2, 4, 6 and is "very much" bothered: total 5, psychosocial 2, medium risk.
    assert find_item(answers["item"], "total")["answer"] == [{"valueInteger": 5}]
    assert risk[0]["prediction"][0]["outcome"]["coding"][0]["code"] == "medium"
    assert risk[0]["prediction"][0]["qualitativeRisk"]["coding"][0]["code"] == "moderate"


def test_screening_referral_letter_and_course_are_mapped(demo):
    derek = demo.bundles["Derek Holt"]
    screening = [r for _, r in entries_of(derek, "RiskAssessment") if r["code"]["coding"][0]["code"] == "screening"]
    assert screening[0]["prediction"][0]["outcome"]["coding"][0]["code"] == "refer_emergency"
    (_, letter), *_ = entries_of(derek, "DocumentReference")
    attachment = letter["content"][0]["attachment"]
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["data"]).startswith(b"%PDF")
    assert "cauda equina" in letter["description"]

    eleanor = demo.bundles["Eleanor Price"]
    (_, plan), *_ = entries_of(eleanor, "CarePlan")
    assert plan["status"] == "completed" and plan["intent"] == "plan"
    repeat = plan["activity"][0]["detail"]["scheduledTiming"]["repeat"]
    assert repeat["count"] == 4 and repeat["boundsDuration"]["value"] == 6
    assert len(plan["activity"][0]["outcomeReference"]) == 4
    codes = {a["detail"]["code"]["coding"][0]["code"] for a in plan["activity"]}
    assert "remedial" in codes or "swedish_relaxation" in codes
    procedures = [r for _, r in entries_of(eleanor, "Procedure")]
    assert {p["status"] for p in procedures} == {"completed"}
    assert all(p["performer"][0]["actor"]["display"] == "Samuel Reyes" for p in procedures)


def test_searchset_for_the_api(demo):
    bundle = demo.searchset
    assert bundle["type"] == "searchset" and bundle["total"] == 1
    modes = Counter(e["search"]["mode"] for e in bundle["entry"])
    assert modes["match"] == 1 and modes["include"] == len(bundle["entry"]) - 1
    Bundle(bundle, strict=True)


def test_a_clearance_letter_travels_as_an_attachment(settings, tmp_path, make_client, therapist):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from backcare.clinic.services import screening as screening_services
    from backcare.interop.fhir.export import patient_bundle

    settings.MEDIA_ROOT = tmp_path
    client = make_client(therapist, first_name="Clara", address="")
    document = {
        "schema_version": "1",
        "id": "t",
        "age": 41,
        "sex": "female",
        "pain": {
            "regions": ["lower_back"],
            "intensity": 4,
            "duration_weeks": 3,
            "first_episode": False,
            "onset": "gradual",
            "medically_assessed": True,
        },
        "findings": [{"code": "dvt_history"}],
        "pregnancy_weeks": None,
        "goals": [],
    }
    screened = screening_services.run_screening(client, document, kind="intake", by=therapist.user)
    assert screened.decision == "clearance_required"
    letter = SimpleUploadedFile("clearance.pdf", b"%PDF-1.4 letter", content_type="application/pdf")
    screening_services.record_clearance(
        screened,
        given_by="Dr Ann Example, GP",
        given_on=dt.date(2025, 1, 2),
        note="Cleared for gentle massage <b>only</b>.",
        letter=letter,
        staff=therapist,
    )
    bundle = patient_bundle(client)
    (_, doc), *_ = entries_of(bundle, "DocumentReference")
    kinds = [c["attachment"]["contentType"] for c in doc["content"]]
    assert kinds == ["application/pdf", "text/plain; charset=utf-8"]
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]) == b"%PDF-1.4 letter"
    assert (
        base64.b64decode(doc["content"][1]["attachment"]["data"]).decode() == "Cleared for gentle massage <b>only</b>."
    )
    assert "Dr Ann Example, GP" in doc["description"]
    risk_urls = {e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] == "RiskAssessment"}
    assert doc["context"]["related"][0]["reference"] in risk_urls


def test_patient_bundle_refuses_an_unknown_bundle_type(make_client):
    from backcare.interop.fhir.export import patient_bundle

    with pytest.raises(ValueError, match="bundle_type"):
        patient_bundle(make_client(), bundle_type="document")
