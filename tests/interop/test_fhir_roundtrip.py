"""Export every demo client, import the bundles into a second, empty clinic: the same people, the same intake
answers and the same outcome scores come back, screened again and waiting for review."""

from __future__ import annotations

import pytest
from fhir_support import demo_data

# Every test is marked so that pytest-django sets up the test database even when this file runs alone; the demo
# itself is built once, in a transaction rolled back at once (see fhir_support).
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker):
    return demo_data(django_db_blocker)


def test_the_same_clients_come_back(demo):
    assert set(demo.imported) == set(demo.originals)
    for name, original in demo.originals.items():
        # Names, birth dates, sex, phone, email, address and the physician: every contact detail.
        assert demo.imported[name].contact == original.contact, name


def test_the_same_intake_answers_come_back(demo):
    for name, original in demo.originals.items():
        imported = demo.imported[name]
        assert original.answers, name
        assert imported.answers == original.answers, name


def test_imported_intakes_wait_for_review_and_drafts_stay_drafts(demo):
    for name, original in demo.originals.items():
        expected = "draft" if original.intake_status == "draft" else "submitted"
        assert demo.imported[name].intake_status == expected, name
    # Reviewed in the first clinic, but a new clinic's therapist must review them again.
    assert demo.originals["Eleanor Price"].intake_status == "reviewed"


def test_the_same_outcome_scores_come_back(demo):
    for name, original in demo.originals.items():
        assert demo.imported[name].outcomes == original.outcomes, name
    assert ("rmdq", "discharge", 4) in demo.imported["Eleanor Price"].outcomes
    assert ("start_back", "intake", 5) in demo.imported["Derek Holt"].outcomes


def test_scores_keep_the_time_they_were_answered(demo):
    for name, original in demo.originals.items():
        assert demo.imported[name].recorded == original.recorded, name


def test_imported_clients_go_to_the_chosen_therapist_and_are_audited(demo):
    assert demo.imported_therapists == {"Second Therapist"}
    actions = demo.audit_actions
    assert actions.count("create_client") == 6
    assert actions.count("import_fhir") == 6 and actions.count("import_fhir_bundle") == 6
    assert actions.count("submit_intake") == 5  # Nadia's draft is not submitted
    assert actions.count("screen") == 5
    assert "import_fhir_rejected" not in actions


def test_what_is_not_imported_is_counted(demo):
    assert demo.not_imported["Procedure"] == 7
    assert demo.not_imported["Questionnaire"] == 18
    assert "Patient" not in demo.not_imported and "QuestionnaireResponse" not in demo.not_imported


def test_imported_clients_export_again_with_the_identifier_they_came_with(demo):
    assert demo.second_export_problems == []
    for name, values in demo.reexport_identifiers.items():
        assert len(values) == 2, name  # their own, and the first clinic's
        assert values[0] != values[1]
