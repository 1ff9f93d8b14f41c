"""`backcare rules --check` fails on a broken rule base, naming what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backcare.clinical.check import check_rule_base, check_shipped_texts
from backcare.clinical.rulebase import RULEBASE, RuleBaseError, default_rule_base, load_rule_base

GOOD_RULE = """
[[rule]]
id = "precautions.test_rule"
title = "A test rule"
when = { finding = ["bruise"] }
decision = "proceed_with_precautions"
max_pressure = 3
summary = "A plain summary."
rationale = "A reason."
sources = ["werner"]
"""


@pytest.fixture
def rule_base_copy(tmp_path: Path) -> Path:
    target = tmp_path / "rulebase"
    shutil.copytree(str(RULEBASE), target)
    return target


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """A copy of the installed package's client-facing texts: templates, knowledge files, email modules."""
    import backcare

    source = Path(backcare.__file__).parent
    target = tmp_path / "backcare"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "static", "migrations", "*.json"))
    return target


def _add_rule(root: Path, text: str) -> None:
    path = root / "groups" / "precautions.toml"
    path.write_text(path.read_text() + text)


def test_the_shipped_rule_base_passes_its_check() -> None:
    report = check_rule_base(default_rule_base())
    assert report.ok, report.errors
    assert len(report.witnesses) == len(default_rule_base().rules)


def test_every_rule_has_an_id_a_summary_and_a_source_from_the_registry() -> None:
    rb = default_rule_base()
    ids = [r.id for r in rb.rules]
    assert len(ids) == len(set(ids))
    for rule in rb.rules:
        assert rule.summary
        assert rule.rationale
        assert rule.title
        assert rule.sources
        assert all(ref.source.id in rb.sources for ref in rule.sources)


def test_the_digest_changes_when_a_rule_changes_and_not_when_a_comment_does(rule_base_copy: Path) -> None:
    before = load_rule_base(rule_base_copy).digest
    path = rule_base_copy / "groups" / "precautions.toml"
    path.write_text("# a reviewer's comment\n" + path.read_text())
    assert load_rule_base(rule_base_copy).digest == before
    path.write_text(path.read_text().replace("max_pressure = 3", "max_pressure = 2", 1))
    assert load_rule_base(rule_base_copy).digest != before


def test_an_unknown_finding_code_is_refused_with_the_rule_named(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('"bruise"', '"broken_heart"'))
    with pytest.raises(RuleBaseError, match=r"precautions.test_rule.*unknown finding code\(s\) broken_heart"):
        load_rule_base(rule_base_copy)


def test_an_unknown_technique_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace("max_pressure = 3", 'avoid_techniques = ["reiki"]'))
    with pytest.raises(RuleBaseError, match="unknown technique code"):
        load_rule_base(rule_base_copy)


def test_a_rule_without_sources_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('sources = ["werner"]', "sources = []"))
    with pytest.raises(RuleBaseError, match="at least one source"):
        load_rule_base(rule_base_copy)


def test_a_source_missing_from_the_registry_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('"werner"', '"my-blog"'))
    with pytest.raises(RuleBaseError, match="unknown source 'my-blog'"):
        load_rule_base(rule_base_copy)


def test_a_misspelt_condition_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace("when = { finding", "when = { fnding"))
    with pytest.raises(RuleBaseError, match="unknown condition 'fnding'"):
        load_rule_base(rule_base_copy)


def test_a_rule_no_intake_can_reach_fails_the_check(rule_base_copy: Path) -> None:
    _add_rule(
        rule_base_copy,
        GOOD_RULE.replace('when = { finding = ["bruise"] }', "when = { age_at_least = 70, age_below = 20 }"),
    )
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert not report.ok
    assert any("precautions.test_rule: no intake can reach this rule" in e for e in report.errors)


def test_contradictory_assessment_makes_a_rule_unreachable(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace(
        'when = { finding = ["bruise"] }',
        "when = { medically_assessed = true, all = [{ medically_assessed = false }] }",
    )
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: no intake can reach" in e for e in report.errors)


def test_precautions_on_a_proceed_rule_fail_the_check(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('decision = "proceed_with_precautions"', 'decision = "proceed"'))
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("must decide at least proceed_with_precautions" in e for e in report.errors)


def test_an_emergency_without_an_emergency_referral_fails_the_check(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace(
        'decision = "proceed_with_precautions"', 'decision = "refer_emergency"\nreferral = "urgent"'
    )
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("refer_emergency must come with referral emergency" in e for e in report.errors)


def test_the_seed_documents_unsupported_claim_fails_the_check(rule_base_copy: Path) -> None:
    _add_rule(
        rule_base_copy,
        GOOD_RULE.replace("A plain summary.", "In 90% of cases massage is the most effective solution."),
    )
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: makes an unsupported claim" in e for e in report.errors)


def test_a_group_file_not_listed_in_rulebase_toml_is_refused(rule_base_copy: Path) -> None:
    (rule_base_copy / "groups" / "extra.toml").write_text('title = "extra"\n')
    with pytest.raises(RuleBaseError, match="must list exactly the files in groups/"):
        load_rule_base(rule_base_copy)


def test_the_command_passes_the_shipped_rule_base_and_fails_a_broken_one(cli, rule_base_copy: Path) -> None:
    assert "rule base OK" in cli("rules", "--check").stdout
    _add_rule(rule_base_copy, GOOD_RULE.replace('when = { finding = ["bruise"] }', "when = { age_below = 0 }"))
    result = cli("rules", "--check", "--rule-base", str(rule_base_copy))
    assert result.returncode == 1
    assert "ERROR precautions.test_rule: no intake can reach this rule" in result.stdout
    assert "rule base BROKEN" in result.stdout


def test_the_command_names_the_problem_when_a_rule_base_cannot_load(cli, rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('"werner"', '"my-blog"'))
    result = cli("rules", "--check", "--rule-base", str(rule_base_copy))
    assert result.returncode == 1
    assert "unknown source 'my-blog'" in result.stderr
    assert "Traceback" not in result.stderr


def test_screening_with_another_rule_base_uses_its_rules(cli, rule_base_copy: Path, tmp_path: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE)
    intake = tmp_path / "intake.json"
    intake.write_text(
        '{"schema_version":"1","age":40,"pain":{"regions":["neck"],"intensity":3,"duration_weeks":1,'
        '"medically_assessed":true},"findings":[{"code":"bruise"}]}'
    )
    result = cli("screen", "--format", "json", "--rule-base", str(rule_base_copy), str(intake))
    assert result.returncode == 0
    assert "precautions.test_rule" in [f["rule"] for f in result.json()["findings"]]
    assert result.json()["precautions"]["max_pressure"] == 3


# ---- contract 1.1: the new vocabulary, time frames and the client message -----------------------------------


def test_the_check_knows_the_16_codes_of_contract_1_1() -> None:
    report = check_rule_base(default_rule_base())
    new = [
        "chest_pain_or_breathlessness", "sudden_severe_pain", "pain_worse_cough_strain", "tuberculosis_active",
        "tuberculosis_history", "diabetes", "recent_heart_attack_or_stroke", "aortic_aneurysm",
        "peripheral_arterial_disease", "lymphoedema", "acute_soft_tissue_injury", "hernia",
        "spinal_procedure_recent", "postpartum", "epilepsy", "massage_oil_allergy",
    ]  # fmt: skip
    assert not [n for n in report.notes if any(f"finding {code} " in n for code in new)]


def test_a_rule_using_a_new_code_loads_and_a_misspelt_one_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('"bruise"', '"epilepsy"'))
    assert load_rule_base(rule_base_copy).rule("precautions.test_rule")
    _add_rule(rule_base_copy, GOOD_RULE.replace('"bruise"', '"epilepsie"').replace("test_rule", "other_rule"))
    with pytest.raises(RuleBaseError, match="unknown finding code"):
        load_rule_base(rule_base_copy)


def test_a_time_frame_that_does_not_fit_the_referral_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace("max_pressure = 3", 'timeframe = "within_24_hours"'))
    with pytest.raises(RuleBaseError, match="timeframe: 'within_24_hours' does not fit referral 'none'"):
        load_rule_base(rule_base_copy)


def test_an_unknown_time_frame_is_refused(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace("max_pressure = 3", 'timeframe = "tomorrow"'))
    with pytest.raises(RuleBaseError, match="'tomorrow' is not one of"):
        load_rule_base(rule_base_copy)


def test_a_telephone_number_in_a_rule_fails_the_check(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('instruction = ""', "").replace("A reason.", "Call 999 at once."))
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: contains a telephone number ('999')" in e for e in report.errors)


def test_a_telephone_number_in_the_messages_fails_the_check(rule_base_copy: Path) -> None:
    path = rule_base_copy / "rulebase.toml"
    path.write_text(path.read_text().replace("Do not have massage: {when}.", "Do not have massage: {when}, 112."))
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("[messages]: contains a telephone number ('112')" in e for e in report.errors)


def test_an_urgent_rule_whose_instruction_lacks_its_time_frame_fails_the_check(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace(
        'decision = "proceed_with_precautions"\nmax_pressure = 3',
        'decision = "refer_urgent"\nreferral = "urgent"\ntimeframe = "within_24_hours"\n'
        'instruction = "Do not have massage: please see a doctor at a routine appointment."',
    )
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert not any("precautions.test_rule: the instruction must say" in e for e in report.errors)  # added for it
    assert any("precautions.test_rule: the instruction says a routine appointment will do" in e for e in report.errors)


def test_a_stopping_rule_whose_instruction_lets_massage_go_ahead_fails_the_check(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace(
        'decision = "proceed_with_precautions"\nmax_pressure = 3',
        'decision = "postpone"\ninstruction = "Massage can go ahead gently today."',
    )
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: the instruction says massage may go ahead" in e for e in report.errors)


def test_raw_codes_and_the_contract_file_in_a_rationale_fail_the_check(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace("A reason.", "CLINICAL.md leaves this free to choose (clearance_required).")
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: the rationale names CLINICAL.md" in e for e in report.errors)
    assert any("raw code(s) clearance_required" in e for e in report.errors)


def test_a_rule_resting_only_on_a_seed_must_be_marked_a_care_process_choice(rule_base_copy: Path) -> None:
    _add_rule(rule_base_copy, GOOD_RULE.replace('sources = ["werner"]', 'sources = ["seed-001"]'))
    with pytest.raises(RuleBaseError, match="care_process_choice = true"):
        load_rule_base(rule_base_copy)
    seed_only = GOOD_RULE.replace('sources = ["werner"]', 'sources = ["seed-001"]')
    path = rule_base_copy / "groups" / "precautions.toml"
    path.write_text(path.read_text().replace(seed_only, seed_only + "care_process_choice = true\n"))
    rule = load_rule_base(rule_base_copy).rule("precautions.test_rule")
    assert rule.care_process_choice
    assert "care-process choice" in rule.rationale


def test_exactly_without_a_stronger_sibling_fails_the_check(rule_base_copy: Path) -> None:
    text = GOOD_RULE.replace(
        'when = { finding = ["bruise"] }',
        'when = { exactly = { count = 1, of = [{ finding = ["bruise"] }, { finding = ["burn"] }] } }',
    )
    _add_rule(rule_base_copy, text)
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("precautions.test_rule: 'exactly 1' needs a rule with 'at least 2'" in e for e in report.errors)


def test_the_contract_version_of_the_rule_base_must_be_the_packaged_one(rule_base_copy: Path) -> None:
    path = rule_base_copy / "rulebase.toml"
    path.write_text(path.read_text().replace('contract = "1.1"', 'contract = "1"'))
    report = check_rule_base(load_rule_base(rule_base_copy))
    assert any("contract = '1', but the packaged contract is 1.1" in e for e in report.errors)


# ---- the claim scan covers every client-facing text the product ships ---------------------------------------


def test_the_shipped_texts_make_no_unsupported_claim() -> None:
    assert check_shipped_texts() == []


@pytest.mark.parametrize(
    ("where", "claim"),
    [
        ("clinic/templates/clinic/portal.html", "Massage removes toxins from your back."),
        ("clinic/templates/clinic/includes/screening.html", "In 90% of cases massage is the answer."),
        ("scheduling/templates/scheduling/email/reminder.txt", "Your massage will detox your muscles."),
        ("clinic/knowledge/consent-1.md", "Massage is the most effective treatment for back pain."),
        ("clinic/knowledge/intake_form.toml", "# Massage cures sciatica."),
    ],
)
def test_a_claim_planted_in_a_shipped_text_fails_the_check(package_copy: Path, where: str, claim: str) -> None:
    path = package_copy / where
    path.write_text(path.read_text(encoding="utf-8") + "\n" + claim + "\n", encoding="utf-8")
    errors = check_shipped_texts(package_copy)
    assert any(e.startswith(where + ": makes an unsupported claim") for e in errors), errors
    report = check_rule_base(default_rule_base(), package_copy)
    assert not report.ok


def test_a_claim_planted_in_an_email_body_built_in_python_fails_the_check(package_copy: Path) -> None:
    path = package_copy / "clinic" / "services" / "consent.py"
    source = path.read_text(encoding="utf-8")
    assert "from backcare.common import outbox" in source  # it queues the invitation email
    path.write_text(source.replace('f"Your invitation from {clinic.name}"', '"Massage flushes out toxins"'))
    errors = check_shipped_texts(package_copy)
    assert any(e.startswith("clinic/services/consent.py: makes an unsupported claim ('toxins')") for e in errors)


def test_a_denied_claim_is_not_a_claim(package_copy: Path) -> None:
    path = package_copy / "clinic" / "knowledge" / "consent-1.md"
    path.write_text(path.read_text() + "\nMassage does not remove toxins and is not a cure.\n")
    assert check_shipped_texts(package_copy) == []


def test_the_command_scans_the_texts_it_is_given(cli, package_copy: Path) -> None:
    path = package_copy / "clinic" / "templates" / "clinic" / "portal.html"
    path.write_text(path.read_text() + "<p>A detox for body and mind.</p>\n")
    result = cli("rules", "--check", "--texts", str(package_copy))
    assert result.returncode == 1
    assert "ERROR clinic/templates/clinic/portal.html: makes an unsupported claim ('detox')" in result.stdout
