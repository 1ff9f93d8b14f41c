"""`backcare rules --check` fails on a broken rule base, naming what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from backcare.clinical.check import check_rule_base
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
