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
    weeks = {q.finding for q in form.questions if q.weeks_ago}
    assert weeks == {"recent_surgery", "fracture_recent", "recent_scar"}
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
