"""Every rule explains itself to a client and a therapist, with sources, and never repeats the seed claims."""

from __future__ import annotations

import pytest
from rulecheck import SEED_CLAIMS

from backcare.clinical.rulebase import Rule, default_rule_base

GROUPS = ("emergency", "urgent", "postpone", "clearance", "precautions", "referral")


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_of_clinical_md_has_rules(group: str) -> None:
    assert any(r.group == group for r in default_rule_base().rules)


@pytest.mark.parametrize("rule", default_rule_base().rules, ids=lambda r: r.id)
def test_every_rule_explains_itself_with_sources_and_without_the_seed_claims(rule: Rule) -> None:
    assert rule.title.strip()
    assert rule.summary.strip()
    assert rule.rationale.strip()
    assert rule.sources
    for text in (rule.title, rule.summary, rule.rationale):
        assert not any(claim in text.lower() for claim in SEED_CLAIMS)
