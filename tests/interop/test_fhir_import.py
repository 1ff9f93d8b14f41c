"""FHIR import: what is accepted and how it lands, and every way a bundle is refused, each problem named with its
place in the bundle and nothing imported."""

from __future__ import annotations

import copy
import datetime as dt
import json

import pytest
from fhir_support import (
    demo_data,
    entries_of,
    find_item,
    merged,
    other_system_bundle,
    patients_and_answers,
    response_for,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    return demo_data(django_db_blocker)


@pytest.fixture
def run(owner):
    from backcare.interop.fhir.importer import import_bundle

    def run(data, user=None, **kw):
        return import_bundle(data, clinic=owner.clinic, user=user or owner.user, **kw)

    return run


@pytest.fixture
def refused(run, clinic):
    """Import and expect a refusal: returns the problems, after checking that nothing was written."""
    from backcare.clinic.models import Client, Intake, Outcome
    from backcare.interop.fhir.importer import BundleRejected
    from backcare.interop.models import ExternalIdentifier

    def refused(data, **kw):
        def counts():
            models = (Client, Intake, Outcome, ExternalIdentifier)
            return [m.objects.count() for m in models]

        before = counts()
        with pytest.raises(BundleRejected) as caught:
            run(data, **kw)
        assert counts() == before, "a refused bundle must import nothing"
        assert caught.value.problems
        return caught.value.problems

    return refused


def named(problems, location, *words):
    """The problem at `location` whose message holds every word; fails listing all problems otherwise."""
    for p in problems:
        if p.location == location and all(w in p.message for w in words):
            return p
    listing = "\n".join(f"{p.location}: {p.message}" for p in problems)
    raise AssertionError(f"no problem at {location} saying {words}; got:\n{listing}")


# --- accepted ---------------------------------------------------------------------------------------------------


def test_a_bundle_from_another_system_is_imported(run, owner):
    from backcare.clinic.models import AuditEvent
    from backcare.interop.models import ExternalIdentifier

    result = run(other_system_bundle())
    (client,) = result.clients
    assert (client.first_name, client.last_name, client.date_of_birth) == ("Rowan", "Example", dt.date(1980, 5, 6))
    assert (client.sex, client.phone, client.email) == ("female", "07700 900999", "rowan@example.org")
    assert client.address == "1 Other Road\nEX1 1AA Elsewhere"
    assert client.physician_name == "Dr Sam Surgery" and client.physician_address == "Elsewhere Health Centre"
    assert client.therapist is None  # the owner imported and chose nobody
    assert result.intakes == []
    scores = {o.instrument: o for o in result.outcomes}
    assert scores["rmdq"].score == 3 and scores["rmdq"].timepoint == "baseline"
    assert scores["rmdq"].recorded_at == dt.datetime(2025, 3, 1, 10, 30, tzinfo=dt.UTC)
    assert scores["start_back"].score == 5 and scores["start_back"].answers["group"] == "medium"
    assert result.not_imported == {"Practitioner": 1}
    assert ExternalIdentifier.objects.get(client=client).value == "MRN-Example-1980-05-06"
    actions = set(AuditEvent.objects.filter(client=client).values_list("action", flat=True))
    assert {"create_client", "record_outcome", "import_fhir"} <= actions
    assert AuditEvent.objects.filter(action="import_fhir_bundle", user=owner.user).count() == 1


def test_a_therapist_importing_gets_the_clients(therapist):
    from backcare.interop.fhir.importer import import_bundle

    result = import_bundle(other_system_bundle(), clinic=therapist.clinic, user=therapist.user)
    assert result.clients[0].therapist == therapist


def test_an_intake_is_submitted_and_screened_but_not_reviewed(run, demo):
    from backcare.clinic.models import Intake

    result = run(patients_and_answers(demo.bundles["Gareth Lloyd"]))
    (intake,) = result.intakes
    assert intake.status == Intake.Status.SUBMITTED and intake.reviewed_at is None
    (screening,) = intake.screenings.all()
    assert screening.decision == "clearance_required"  # his past DVT: the hard stop holds in the new clinic
    assert intake.answers["notes"] == "Clot in the left calf in 2019, treated for six months."


def test_an_intake_in_progress_stays_a_draft(run, demo):
    result = run(patients_and_answers(demo.bundles["Nadia Kowalski"]))
    (intake,) = result.intakes
    assert intake.status == "draft" and intake.document is None and not intake.screenings.exists()
    assert intake.answers["pain_regions"] == ["lower_back", "neck"]


def test_start_back_answers_given_apart_complete_the_intake(run, demo):
    bundle = patients_and_answers(demo.bundles["Gareth Lloyd"])
    _, intake = response_for(bundle, "intake")
    intake["item"] = [group for group in intake["item"] if group["linkId"] != "start_back"]
    result = run(bundle)
    assert result.intakes[0].status == "submitted"
    assert result.intakes[0].answers["sb_9"] == "slightly"
    assert [o.instrument for o in result.outcomes] == ["start_back"]
    assert result.matched_start_back == 1


def test_a_transaction_bundle_is_imported_like_a_collection(run, demo):
    bundle = patients_and_answers(demo.bundles["Maya Okafor"])
    bundle["type"] = "transaction"
    for entry in bundle["entry"]:
        entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
    assert len(run(bundle).clients) == 1


# --- refused: not a bundle ----------------------------------------------------------------------------------


def test_text_that_is_not_json(refused):
    problem = named(refused("{not json"), "Bundle", "not JSON", "line 1")
    assert problem.code == "structure"
    named(refused(b"\xff\xfe\x00garbage"), "Bundle", "not UTF-8")
    named(refused("   "), "Bundle", "empty")


@pytest.mark.parametrize(("data", "kind"), [([1, 2], "an array"), (42, "an integer"), ('"a string"', "text")])
def test_json_that_is_not_an_object(refused, data, kind):
    text = data if isinstance(data, str) else json.dumps(data)
    named(refused(text), "Bundle", "must be a JSON object", kind)


def test_a_resource_that_is_not_a_bundle(refused, demo):
    patient = demo.bundles["Maya Okafor"]["entry"][0]["resource"]
    named(refused(copy.deepcopy(patient)), "Bundle.resourceType", "'Patient'", "a Bundle is expected")


def test_bundle_types_that_are_not_imported(refused, demo):
    bundle = patients_and_answers(demo.bundles["Maya Okafor"])
    bundle["type"] = "history"
    named(refused(bundle), "Bundle.type", "'history' bundles are not imported")
    bundle["type"] = "nonsense"
    named(refused(bundle), "Bundle.type", "'nonsense' is not a valid code")


def test_too_large(refused, demo):
    from backcare.interop.fhir.validation import MAX_BUNDLE_BYTES, MAX_ENTRIES

    bundle = patients_and_answers(demo.bundles["Maya Okafor"])
    bundle["entry"] = bundle["entry"] * (MAX_ENTRIES // len(bundle["entry"]) + 1)
    named(refused(bundle), "Bundle.entry", f"at most {MAX_ENTRIES}")
    named(refused("[" + " " * MAX_BUNDLE_BYTES + "]"), "Bundle", "too large")


# --- refused: invalid FHIR ------------------------------------------------------------------------------------


def test_invalid_fhir_every_problem_named_at_once(refused):
    bundle = other_system_bundle()
    patient = bundle["entry"][0]["resource"]
    patient["birthDate"] = 19800506  # wrong type
    patient["nickname"] = "Ro"  # not an element of Patient
    patient["gender"] = "f"  # not a code of the required value set
    del bundle["entry"][2]["resource"]["status"]  # required
    bundle["entry"][3]["resource"]["item"][0]["answer"][0]["valueCoding"]["code"] = True  # wrong type
    problems = refused(bundle)
    named(problems, "Bundle.entry[0].resource.birthDate", "must be a date/time string")
    named(problems, "Bundle.entry[0].resource.nickname", "is not an element of Patient")
    named(problems, "Bundle.entry[0].resource.gender", "'f' is not a valid code")
    named(problems, "Bundle.entry[2].resource.status", "is required")
    named(problems, "Bundle.entry[3].resource.item[0].answer[0].valueCoding.code", "wrong type")


def test_an_unknown_resource_type(refused):
    bundle = other_system_bundle()
    bundle["entry"][1]["resource"]["resourceType"] = "Practioner"
    named(refused(bundle), "Bundle.entry[1].resource.resourceType", "'Practioner' is not a FHIR R4 resource type")


def test_a_reference_that_does_not_resolve(refused):
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["subject"] = {"reference": "Patient/nobody"}
    named(refused(bundle), "Bundle.entry[2].resource.subject.reference", "'Patient/nobody' does not resolve")


def test_answers_for_a_patient_outside_the_bundle(refused):
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["subject"] = {"reference": "Practitioner/gp1"}
    named(refused(bundle), "Bundle.entry[2].resource.subject", "not a Patient of this bundle")


def test_a_transaction_entry_that_is_not_a_create(refused):
    bundle = other_system_bundle()
    bundle["entry"][1]["request"]["method"] = "DELETE"
    named(refused(bundle), "Bundle.entry[1].request.method", "only POST and PUT")
    del bundle["entry"][1]["request"]
    named(refused(bundle), "Bundle.entry[1].request", "is required in a transaction bundle")


# --- refused: patients ----------------------------------------------------------------------------------------


def test_the_same_patient_again_is_a_named_duplicate(run, refused):
    run(other_system_bundle())
    problems = refused(other_system_bundle())
    named(problems, "Bundle.entry[0].resource.identifier[0]", "already in the clinic", "Rowan Example")
    named(problems, "Bundle.entry[0].resource.name[0]", "Rowan Example, born 1980-05-06, is already a client")


def test_a_client_with_the_same_name_and_birth_date_is_a_duplicate(refused, make_client):
    make_client(first_name="rowan", last_name="EXAMPLE", date_of_birth=dt.date(1980, 5, 6))
    named(refused(other_system_bundle()), "Bundle.entry[0].resource.name[0]", "is already a client of this clinic")


def test_a_backcare_client_exported_and_imported_back_is_a_duplicate(refused, make_client, owner):
    from backcare.interop.fhir.export import patient_bundle

    client = make_client(first_name="Cora")
    bundle = patient_bundle(client)
    bundle["entry"][0]["resource"]["name"][0]["given"] = ["Corinne"]  # renamed since: the identifier still knows her
    problems = refused(patients_and_answers(bundle))
    named(problems, "Bundle.entry[0].resource.identifier[0]", f"client {client.pk}")


def test_the_same_person_twice_in_one_bundle(refused):
    first = other_system_bundle()
    second = copy.deepcopy(first["entry"][0])
    second["fullUrl"] = "http://other.example/fhir/Patient/p2"
    second["resource"]["id"] = "p2"
    first["entry"].append(second)
    problems = refused(first)
    named(problems, "Bundle.entry[4].resource.name[0]", "is also the Patient at Bundle.entry[0].resource")
    named(problems, "Bundle.entry[4].resource.identifier[0]", "the same identifier as the Patient at")


def test_patient_details_the_clinic_cannot_keep(refused):
    bundle = other_system_bundle()
    patient = bundle["entry"][0]["resource"]
    patient["birthDate"] = "1980"
    patient["name"] = [{"use": "official", "given": ["Rowan"]}]
    patient["telecom"][1]["value"] = "not an email"
    problems = refused(bundle)
    named(problems, "Bundle.entry[0].resource.birthDate", "'1980' is not a full date")
    named(problems, "Bundle.entry[0].resource.name[0].family", "is required")
    named(problems, "Bundle.entry[0].resource.telecom[1].value", "not a valid email")
    patient["birthDate"] = "2999-01-01"
    named(refused(bundle), "Bundle.entry[0].resource.birthDate", "in the future")


def test_a_bundle_without_a_patient(refused):
    bundle = other_system_bundle()
    bundle["entry"] = [bundle["entry"][1]]
    named(refused(bundle), "Bundle.entry", "holds no Patient")


# --- refused: answers -----------------------------------------------------------------------------------------


def test_an_unknown_questionnaire_item(refused):
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["item"].append({"linkId": "rmdq_25", "answer": [{"valueBoolean": True}]})
    named(refused(bundle), "Bundle.entry[2].resource.item[24].linkId", "'rmdq_25' is not an item")


def test_an_answer_of_the_wrong_type(refused):
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["item"][0]["answer"] = [{"valueString": "yes"}]
    named(
        refused(bundle),
        "Bundle.entry[2].resource.item[0].answer[0].valueString",
        "wrong type for item 'rmdq_1'",
        "valueBoolean",
    )


def test_an_answer_that_is_not_an_option(refused):
    bundle = other_system_bundle()
    bundle["entry"][3]["resource"]["item"][8]["answer"][0]["valueCoding"]["code"] = "terribly"
    named(refused(bundle), "Bundle.entry[3].resource.item[8].answer[0].valueCoding", "not an answer option", "sb_9")


def test_a_stated_score_that_does_not_match_the_answers(refused, demo):
    bundle = other_system_bundle()
    bundle["entry"][3]["resource"]["item"][9]["answer"] = [{"valueInteger": 7}]
    named(refused(bundle), "Bundle.entry[3].resource.item[9].answer[0]", "states a total of 7", "give 5")
    # A Backcare export whose Roland-Morris score was changed by hand.
    eleanor = patients_and_answers(demo.bundles["Eleanor Price"])
    index, rmdq = response_for(eleanor, "rmdq")
    find_item(rmdq["item"], "score")["answer"] = [{"valueInteger": 20}]
    problems = refused(eleanor)
    assert any(
        p.location.startswith(f"Bundle.entry[{index}]") and "states a score of 20" in p.message for p in problems
    )


def test_an_incomplete_outcome_questionnaire(refused):
    bundle = other_system_bundle()
    del bundle["entry"][2]["resource"]["item"][5]
    named(refused(bundle), "Bundle.entry[2].resource.item", "missing: rmdq_6")
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["status"] = "in-progress"
    named(refused(bundle), "Bundle.entry[2].resource.status", "only completed or amended")


def test_an_unknown_questionnaire(refused):
    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["questionnaire"] = "http://other.example/Questionnaire/oswestry"
    named(refused(bundle), "Bundle.entry[2].resource.questionnaire", "not a questionnaire Backcare imports")
    bundle["entry"][2]["resource"]["questionnaire"] = "https://backcare.example/fhir/Questionnaire/rmdq|9"
    named(refused(bundle), "Bundle.entry[2].resource.questionnaire", "rmdq|9")


def test_an_intake_missing_an_answer_names_its_question(refused, demo):
    bundle = patients_and_answers(demo.bundles["Gareth Lloyd"])
    index, intake = response_for(bundle, "intake")
    pain = find_item(intake["item"], "pain")
    pain["item"] = [i for i in pain["item"] if i["linkId"] != "pain_onset"]
    named(refused(bundle), f"Bundle.entry[{index}].resource.item", "How did this bout of pain start?", "pain_onset")


def test_a_second_intake_for_the_same_patient(refused, demo):
    bundle = patients_and_answers(demo.bundles["Gareth Lloyd"])
    index, _ = response_for(bundle, "intake")
    twice = copy.deepcopy(bundle["entry"][index])
    twice["fullUrl"] = "urn:uuid:5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
    twice["resource"]["id"] = "5f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
    bundle["entry"].append(twice)
    named(refused(bundle), f"Bundle.entry[{len(bundle['entry']) - 1}].resource", "a second intake")


# --- all or nothing ------------------------------------------------------------------------------------------


def test_only_the_last_entry_bad_imports_nothing_then_the_fixed_bundle_imports(run, refused, demo):
    from backcare.clinic.models import AuditEvent, Client

    bundle = merged(
        patients_and_answers(demo.bundles["Maya Okafor"]),
        patients_and_answers(demo.bundles["Eleanor Price"]),
        patients_and_answers(demo.bundles["Tomasz Nowak"]),
    )
    last = len(bundle["entry"]) - 1
    good = copy.deepcopy(bundle)
    bundle["entry"][last]["resource"]["authored"] = "yesterday"
    named(refused(bundle), f"Bundle.entry[{last}].resource.authored", "not a valid FHIR date")
    assert AuditEvent.objects.filter(action="import_fhir_rejected").count() == 1
    assert not AuditEvent.objects.exclude(action="import_fhir_rejected").exists()
    result = run(good)
    assert len(result.clients) == 3 and Client.objects.count() == 3


def test_only_staff_who_treat_clients_may_import(front_desk, make_staff, demo):
    from django.core.exceptions import PermissionDenied

    from backcare.clinic.models import Client, Clinic
    from backcare.interop.fhir.importer import import_bundle

    with pytest.raises(PermissionDenied):
        import_bundle(other_system_bundle(), clinic=front_desk.clinic, user=front_desk.user)
    elsewhere = Clinic.objects.create(name="Elsewhere")
    owner = make_staff("owner", "owen")
    with pytest.raises(PermissionDenied):
        import_bundle(other_system_bundle(), clinic=elsewhere, user=owner.user)
    assert not Client.objects.exists()


# --- the problems as an OperationOutcome ------------------------------------------------------------------------


def test_problems_as_an_operation_outcome(refused):
    from fhirclient.models.operationoutcome import OperationOutcome

    from backcare.interop.fhir.validation import operation_outcome

    bundle = other_system_bundle()
    bundle["entry"][2]["resource"]["subject"] = {"reference": "Patient/nobody"}
    outcome = operation_outcome(refused(bundle))
    OperationOutcome(outcome, strict=True)
    issue = next(i for i in outcome["issue"] if i["expression"] == ["Bundle.entry[2].resource.subject.reference"])
    assert issue["severity"] == "error" and issue["code"] == "not-found"
    assert "does not resolve" in issue["diagnostics"]
    empty = operation_outcome([])
    OperationOutcome(empty, strict=True)
    assert empty["issue"][0]["severity"] == "information"


def test_validate_bundle_never_raises_on_odd_input():
    from backcare.interop.fhir.validation import validate_bundle

    odd = [
        None,
        {},
        {"resourceType": "Bundle", "type": "collection", "entry": "x"},
        {"resourceType": "Bundle", "type": "collection", "entry": [None, 3, {}, {"resource": "x"}]},
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": 5}}]},
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Patient", "name": 3}}],
        },
        {"resourceType": "Bundle", "type": ["collection"]},
    ]
    for data in odd:
        problems = validate_bundle(data)
        assert problems, data
        assert all(p.location.startswith("Bundle") and p.message for p in problems)
    problems = validate_bundle(odd[3])
    named(problems, "Bundle.entry[0]", "must be a JSON object")
    named(problems, "Bundle.entry[1]", "must be a JSON object, not an integer")
    named(problems, "Bundle.entry[2].resource", "is required")
    named(problems, "Bundle.entry[3].resource", "must be a JSON object (a resource)")


def test_an_entry_list_only_named_once(demo):
    from backcare.interop.fhir.validation import validate_bundle

    bundle = copy.deepcopy(demo.bundles["Maya Okafor"])
    entries_of(bundle, "Patient")[0][1]["birthDate"] = "1987-02-30"
    problems = validate_bundle(bundle)
    assert [(p.location, p.code) for p in problems] == [("Bundle.entry[0].resource.birthDate", "value")]
