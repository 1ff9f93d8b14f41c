"""The intake form's data file covers the screening vocabulary: every finding asked exactly once, in plain words."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from backcare.clinic.services.intake import FormError, intake_form, parse_form
from backcare.clinical.vocabulary import FINDINGS


def raw_form() -> dict:
    text = (resources.files("backcare.clinic") / "knowledge" / "intake_form.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def test_every_finding_code_is_asked_exactly_once():
    asked = [q["finding"] for t in raw_form()["topics"] for q in t["questions"]]
    assert sorted(asked) == sorted(FINDINGS)
    assert len(asked) == len(set(asked))


def test_topics_and_flags():
    form = intake_form()
    titles = [t.title for t in form.topics]
    assert titles[0] == "Red flags: nerves and bladder"
    assert {"Pregnancy", "Infection and immunity", "Skin and recent surgery"} <= set(titles)
    assert titles[1] == "Red flags: chest and belly"
    weeks = {q.finding for q in form.questions if q.weeks_ago}
    assert weeks == {"recent_surgery", "fracture_recent", "recent_scar", "spinal_procedure_recent", "postpartum"}
    therapist_only = {q.finding for q in form.questions if q.therapist_only}
    assert therapist_only == {"impaired_consent"}
    assert form.question("open_wound").region == "required"
    assert form.question("pregnancy_complicated").only_if == "pregnant"
    for q in form.questions:
        assert q.text.endswith("?"), q.finding
        if not q.therapist_only:
            assert "you" in q.text.lower(), q.finding  # second person


def test_a_missing_finding_is_refused():
    data = raw_form()
    data["topics"][0]["questions"].pop(0)
    with pytest.raises(FormError, match="never asked: saddle_anaesthesia"):
        parse_form(data)


def test_a_duplicate_or_unknown_finding_is_refused():
    data = raw_form()
    data["topics"][1]["questions"].append(dict(data["topics"][0]["questions"][0]))
    with pytest.raises(FormError, match="more than once: saddle_anaesthesia"):
        parse_form(data)
    data = raw_form()
    data["topics"][0]["questions"][0]["finding"] = "toothache"
    with pytest.raises(FormError, match="unknown finding code 'toothache'"):
        parse_form(data)


# The finding codes contract 1.1 added (CLINICAL.md, changes in 1.1), restated so the test checks the form.
CONTRACT_1_1_CODES = {
    "chest_pain_or_breathlessness": "",
    "sudden_severe_pain": "",
    "pain_worse_cough_strain": "",
    "tuberculosis_active": "",
    "tuberculosis_history": "",
    "diabetes": "",
    "recent_heart_attack_or_stroke": "",
    "aortic_aneurysm": "",
    "peripheral_arterial_disease": "optional",
    "lymphoedema": "optional",
    "acute_soft_tissue_injury": "optional",
    "hernia": "optional",
    "spinal_procedure_recent": "optional",
    "postpartum": "",
    "epilepsy": "",
    "massage_oil_allergy": "",
}


def test_the_contract_1_1_codes_are_in_the_vocabulary_and_each_has_a_plain_question():
    assert len(CONTRACT_1_1_CODES) == 16
    assert set(CONTRACT_1_1_CODES) <= set(FINDINGS)
    form = intake_form()
    for code, region in CONTRACT_1_1_CODES.items():
        q = form.question(code)
        assert q.text.endswith("?") and "you" in q.text.lower(), code
        assert "_" not in q.text, code  # plain words, no codes
        # A code whose contract description asks for the region gets the body map.
        assert q.region == region, code


@pytest.mark.parametrize("code", sorted(CONTRACT_1_1_CODES))
def test_a_new_code_missing_from_the_form_is_refused(code):
    data = raw_form()
    for topic in data["topics"]:
        topic["questions"] = [q for q in topic["questions"] if q["finding"] != code]
    with pytest.raises(FormError, match=f"never asked: {code}"):
        parse_form(data)


def test_a_recent_birth_is_asked_only_where_pregnancy_is():
    from backcare.clinic.services.intake import Context, asked

    q = intake_form().question("postpartum")
    assert q.topic == "pregnancy"
    assert asked(q, Context(therapist=False, start_back=True, pregnancy=True))
    assert not asked(q, Context(therapist=False, start_back=True, pregnancy=False))
