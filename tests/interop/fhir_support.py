"""Shared data for the FHIR tests: the demo clinic exported, and imported into a second, empty clinic.

Building the demo is slow, so it is done once per test run (`demo_data()` remembers its result) inside a transaction
that is rolled back at once: the tests get plain data (bundles as dicts, what the records held before and after the
round trip) and the database is left empty for every other test.
"""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

PASSWORD = "correct-horse-battery-9"


@dataclass
class ClientFacts:
    """What a round trip must keep of a client, as plain data."""

    name: str
    contact: dict[str, Any]
    intake_status: str | None
    answers: dict[str, Any]
    outcomes: list[tuple[str, str, int]]
    recorded: list[str] = field(default_factory=list)


@dataclass
class DemoData:
    bundles: dict[str, dict[str, Any]]  # client's full name -> bundle
    again: dict[str, dict[str, Any]]  # the same export a second time
    searchset: dict[str, Any]  # one client as a searchset
    free_text: dict[str, list[str]]  # client -> every free text of the record
    originals: dict[str, ClientFacts]
    imported: dict[str, ClientFacts]
    imported_therapists: set[str]
    not_imported: dict[str, int]
    audit_actions: list[str]
    second_export_problems: list[Any]
    reexport_identifiers: dict[str, list[str]]


_CACHE: dict[str, DemoData] = {}


def answered(answers: dict[str, Any]) -> dict[str, Any]:
    """The answers actually given (a form keeps empty strings and lists for questions left blank)."""
    return {k: v for k, v in answers.items() if v not in ("", [], None)}


def facts(client: Any) -> ClientFacts:
    intake = client.intakes.order_by("-started_at", "-id").first()
    outcomes = sorted(
        (o.instrument, o.timepoint, o.score) for o in client.outcomes.exclude(instrument="pain_nrs").order_by("id")
    )
    recorded = sorted(
        o.recorded_at.isoformat(timespec="seconds") for o in client.outcomes.exclude(instrument="pain_nrs")
    )
    contact = {
        f: getattr(client, f)
        for f in (
            "first_name",
            "last_name",
            "date_of_birth",
            "sex",
            "email",
            "phone",
            "address",
            "physician_name",
            "physician_address",
        )
    }
    return ClientFacts(
        name=client.full_name,
        contact=contact,
        intake_status=intake.status if intake else None,
        answers=answered(intake.answers) if intake else {},
        outcomes=outcomes,
        recorded=recorded,
    )


def free_texts(client: Any) -> list[str]:
    """Every free text typed into the client's record (what the export must not lose)."""
    texts = [client.address, client.physician_name, client.physician_address]
    for intake in client.intakes.all():
        texts += [intake.review_note, intake.answers.get("notes", ""), intake.answers.get("goals_text", "")]
    for course in client.courses.all():
        texts += [course.goals, course.end_note, *map(str, (course.home_programme or {}).values())]
        for s in course.sessions.all():
            texts += [s.subjective, s.objective, s.assessment, s.plan_note, s.aftercare, s.deviation_reason]
            texts += [s.stop_reason]
    for referral in client.referrals.all():
        texts.append(referral.reason)
    for clearance in client.clearances.all():
        texts += [clearance.given_by, clearance.note]
    for appointment in client.appointments.all():
        texts += [appointment.cancel_reason, appointment.override_reason, appointment.late_change_reason]
    return [t for t in texts if t and t.strip()]


def demo_data(django_db_blocker: Any) -> DemoData:
    if "demo" not in _CACHE:
        with django_db_blocker.unblock(), transaction.atomic():
            _CACHE["demo"] = _build()
            transaction.set_rollback(True)
    return _CACHE["demo"]


def _build() -> DemoData:
    from django.contrib.auth import get_user_model

    from backcare.clinic.models import AuditEvent, Client, Clinic, StaffMember
    from backcare.demo.clinic import build_demo
    from backcare.interop.fhir.export import patient_bundle
    from backcare.interop.fhir.importer import import_bundle
    from backcare.interop.fhir.validation import validate_bundle

    clinic = build_demo()
    clients = list(Client.objects.filter(clinic=clinic).order_by("pk"))
    bundles = {c.full_name: patient_bundle(c) for c in clients}
    again = {c.full_name: patient_bundle(c) for c in clients}
    searchset = patient_bundle(clients[0], bundle_type="searchset")
    free_text = {c.full_name: free_texts(c) for c in clients}
    originals = {c.full_name: facts(c) for c in clients}

    second = Clinic.objects.create(name="Second Clinic", time_zone="Europe/London")
    user = get_user_model().objects.create_user(username="second-owner", password=PASSWORD)
    owner = StaffMember.objects.create(user=user, clinic=second, role="owner", display_name="Second Owner")
    therapist_user = get_user_model().objects.create_user(username="second-therapist", password=PASSWORD)
    therapist = StaffMember.objects.create(
        user=therapist_user, clinic=second, role="therapist", display_name="Second Therapist"
    )
    before = AuditEvent.objects.count()
    not_imported: dict[str, int] = {}
    for bundle in bundles.values():
        result = import_bundle(copy.deepcopy(bundle), clinic=second, user=owner.user, therapist=therapist)
        for kind, n in result.not_imported.items():
            not_imported[kind] = not_imported.get(kind, 0) + n
    imported_clients = list(Client.objects.filter(clinic=second))
    imported = {c.full_name: facts(c) for c in imported_clients}
    audit_actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True)[before:])
    # The imported clients export again, carrying the identifier they came with.
    second_export_problems = []
    reexport_identifiers = {}
    for c in imported_clients:
        bundle = patient_bundle(c)
        second_export_problems += validate_bundle(bundle)
        patient = bundle["entry"][0]["resource"]
        reexport_identifiers[c.full_name] = [i["value"] for i in patient["identifier"]]
    return DemoData(
        bundles=bundles,
        again=again,
        searchset=searchset,
        free_text=free_text,
        originals=originals,
        imported=imported,
        imported_therapists={c.therapist.display_name if c.therapist else "" for c in imported_clients},
        not_imported=not_imported,
        audit_actions=audit_actions,
        second_export_problems=second_export_problems,
        reexport_identifiers=reexport_identifiers,
    )


# --- building and changing bundles -----------------------------------------------------------------------------


def entries_of(bundle: dict[str, Any], resource_type: str) -> list[tuple[int, dict[str, Any]]]:
    return [(i, e["resource"]) for i, e in enumerate(bundle["entry"]) if e["resource"]["resourceType"] == resource_type]


def response_for(bundle: dict[str, Any], questionnaire: str) -> tuple[int, dict[str, Any]]:
    """The first QuestionnaireResponse answering `questionnaire` (intake, start-back or rmdq) and its entry index."""
    for i, res in entries_of(bundle, "QuestionnaireResponse"):
        if f"/Questionnaire/{questionnaire}|" in res["questionnaire"]:
            return i, res
    raise AssertionError(f"no {questionnaire} answers in the bundle")


def find_item(items: list[dict[str, Any]], link_id: str) -> dict[str, Any]:
    for item in items:
        if item["linkId"] == link_id:
            return item
        found = _maybe(item.get("item", []), link_id)
        if found is not None:
            return found
    raise AssertionError(f"no item {link_id}")


def _maybe(items: list[dict[str, Any]], link_id: str) -> dict[str, Any] | None:
    try:
        return find_item(items, link_id)
    except AssertionError:
        return None


def patients_and_answers(bundle: dict[str, Any]) -> dict[str, Any]:
    """Only the Patient and its QuestionnaireResponses (what another system would send)."""
    out = copy.deepcopy(bundle)
    out["entry"] = [e for e in out["entry"] if e["resource"]["resourceType"] in ("Patient", "QuestionnaireResponse")]
    for e in out["entry"]:
        e["resource"].pop("author", None)  # the author was a Practitioner entry, left out here
        if e["resource"]["resourceType"] == "Patient":
            e["resource"].pop("managingOrganization", None)
    return out


def merged(*bundles: dict[str, Any]) -> dict[str, Any]:
    """One collection holding the entries of several bundles (shared entries, such as the clinic, only once)."""
    out = {"resourceType": "Bundle", "type": "collection", "entry": []}
    seen = set()
    for bundle in bundles:
        for entry in copy.deepcopy(bundle)["entry"]:
            if entry["fullUrl"] not in seen:
                seen.add(entry["fullUrl"])
                out["entry"].append(entry)
    return out


def other_system_bundle(*, family: str = "Example", given: str = "Rowan", born: str = "1980-05-06") -> dict[str, Any]:
    """A bundle as another system might write it: its own identifiers, a referenced general practitioner, a
    Roland-Morris answered without any Backcare extension, and a STarT Back with its scores stated."""
    agree = ["agree", "disagree", "agree", "agree", "disagree", "agree", "disagree", "disagree"]
    sb_items = [
        {
            "linkId": f"sb_{i}",
            "answer": [
                {"valueCoding": {"system": "https://backcare.example/fhir/CodeSystem/start-back-answer", "code": a}}
            ],
        }
        for i, a in enumerate(agree, 1)
    ]
    sb_items.append(
        {
            "linkId": "sb_9",
            "answer": [
                {
                    "valueCoding": {
                        "system": "https://backcare.example/fhir/CodeSystem/start-back-bothersomeness",
                        "code": "very_much",
                    }
                }
            ],
        }
    )
    sb_items.append({"linkId": "total", "answer": [{"valueInteger": 5}]})
    ticks = [i in (1, 4, 7) for i in range(1, 25)]
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "http://other.example/fhir/Patient/p1",
                "resource": {
                    "resourceType": "Patient",
                    "id": "p1",
                    "identifier": [{"system": "http://other.example/mrn", "value": f"MRN-{family}-{born}"}],
                    "name": [{"use": "official", "family": family, "given": [given]}],
                    "gender": "female",
                    "birthDate": born,
                    "telecom": [
                        {"system": "phone", "value": "07700 900999"},
                        {"system": "email", "value": "rowan@example.org"},
                    ],
                    "address": [{"line": ["1 Other Road"], "city": "Elsewhere", "postalCode": "EX1 1AA"}],
                    "generalPractitioner": [{"reference": "Practitioner/gp1"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "fullUrl": "http://other.example/fhir/Practitioner/gp1",
                "resource": {
                    "resourceType": "Practitioner",
                    "id": "gp1",
                    "name": [{"prefix": ["Dr"], "given": ["Sam"], "family": "Surgery"}],
                    "address": [{"text": "Elsewhere Health Centre"}],
                },
                "request": {"method": "POST", "url": "Practitioner"},
            },
            {
                "fullUrl": "urn:uuid:7d3f6f2e-9d0c-4b8a-9a43-3f0b1c2d4e5f",
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "https://backcare.example/fhir/Questionnaire/rmdq",
                    "status": "completed",
                    "subject": {"reference": "Patient/p1"},
                    "authored": "2025-03-01T10:30:00+00:00",
                    "item": [{"linkId": f"rmdq_{i}", "answer": [{"valueBoolean": t}]} for i, t in enumerate(ticks, 1)],
                },
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
            {
                "fullUrl": "urn:uuid:0b1a2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                "resource": {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "https://backcare.example/fhir/Questionnaire/start-back|1",
                    "status": "completed",
                    "subject": {"reference": "Patient/p1"},
                    "authored": "2025-03-01",
                    "item": sb_items,
                },
                "request": {"method": "POST", "url": "QuestionnaireResponse"},
            },
        ],
    }


def today() -> dt.date:
    from django.utils import timezone

    return timezone.localdate()
