"""Codes of the clinical vocabulary in plain words, for the therapist's pages.

`{% load clinical %}` then e.g. `{{ result.decision|decision_label }}`, `{{ code|region }}`, `{{ 3|pressure }}`.
An unknown code is shown as itself (readable, never an error), so an old result still renders.
"""

from __future__ import annotations

from typing import Any

from django import template

from backcare.clinical.vocabulary import (
    ADJUNCTS,
    DECISION_TEXT,
    FINDINGS,
    GOALS,
    POSITIONING,
    PRESSURE_SCALE,
    REFERRAL_TEXT,
    REGIONS,
    TECHNIQUES,
)

register = template.Library()

DECISION_LABELS: dict[str, str] = {
    "proceed": "Proceed",
    "proceed_with_precautions": "Proceed with precautions",
    "clearance_required": "Physician's clearance required",
    "postpone": "Postpone",
    "refer_urgent": "Refer urgently",
    "refer_emergency": "Emergency referral",
}

REFERRAL_LABELS: dict[str, str] = {
    "none": "No referral",
    "routine": "Routine referral",
    "urgent": "Urgent referral",
    "emergency": "Emergency",
}

TOPIC_LABELS: dict[str, str] = {
    "course": "Course",
    "pain_stage": "Pain stage",
    "risk_group": "STarT Back risk group",
    "technique": "Technique",
    "adjunct": "Alongside massage",
    "aftercare": "Aftercare",
    "evidence": "What the evidence says",
}

VOCABULARIES: dict[str, dict[Any, str]] = {
    "regions": REGIONS,
    "findings": FINDINGS,
    "goals": GOALS,
    "techniques": TECHNIQUES,
    "adjuncts": ADJUNCTS,
    "positioning": POSITIONING,
    "decisions": DECISION_LABELS,
    "decision_text": DECISION_TEXT,
    "referrals": REFERRAL_LABELS,
    "referral_text": REFERRAL_TEXT,
    "pressure": PRESSURE_SCALE,
}


def _word(vocabulary: dict[Any, str], code: Any) -> str:
    if code is None or code == "":
        return ""
    return vocabulary.get(code, str(code).replace("_", " "))


@register.filter
def words(code: Any, vocabulary: str) -> str:
    """`{{ code|words:"techniques" }}`: any vocabulary by name (see VOCABULARIES)."""
    return _word(VOCABULARIES[vocabulary], code)


@register.filter
def region(code: Any) -> str:
    return _word(REGIONS, code)


@register.filter
def technique(code: Any) -> str:
    return _word(TECHNIQUES, code)


@register.filter
def adjunct(code: Any) -> str:
    return _word(ADJUNCTS, code)


@register.filter
def positioning(code: Any) -> str:
    return _word(POSITIONING, code)


@register.filter
def finding_name(code: Any) -> str:
    return _word(FINDINGS, code)


@register.filter
def decision_label(code: Any) -> str:
    return _word(DECISION_LABELS, code)


@register.filter
def decision_text(code: Any) -> str:
    return _word(DECISION_TEXT, code)


@register.filter
def referral_label(code: Any) -> str:
    return _word(REFERRAL_LABELS, code)


@register.filter
def referral_text(code: Any) -> str:
    return _word(REFERRAL_TEXT, code)


@register.filter
def pressure(level: Any) -> str:
    """`{{ 3|pressure }}` -> "moderate"."""
    try:
        return PRESSURE_SCALE[int(level)]
    except (TypeError, ValueError, KeyError):
        return ""


@register.filter
def rationale_item(entry: dict[str, Any]) -> str:
    """The heading of one plan rationale entry: its topic, and the item in words when there is one."""
    topic = entry.get("topic", "")
    label = TOPIC_LABELS.get(topic, str(topic).replace("_", " ").capitalize())
    item = entry.get("item")
    if item is None or item == "":
        return label
    if topic == "technique":
        return f"{label}: {_word(TECHNIQUES, item)}"
    if topic == "adjunct":
        return f"{label}: {_word(ADJUNCTS, item)}"
    return f"{label}: {str(item).replace('_', ' ')}"


@register.simple_tag
def pending_findings(gate: Any) -> list[dict[str, Any]]:
    """The findings of the gate's screening that still wait for a physician's clearance."""
    if gate is None or gate.screening is None or not gate.clearance_pending:
        return []
    keys = getattr(gate, "pending_findings", None) or [{"rule": r, "region": None} for r in gate.clearance_pending]
    pending = {(k["rule"], k.get("region")) for k in keys}
    rules_only = {k["rule"] for k in keys if k.get("region") is None}
    return [
        f
        for f in gate.screening.result.get("findings", [])
        if (f.get("rule"), f.get("region")) in pending or f.get("rule") in rules_only
    ]


@register.filter
def is_blocking(decision: Any) -> bool:
    return decision in ("postpone", "refer_urgent", "refer_emergency")


@register.filter
def codeword(code: Any) -> str:
    """A code such as "create_client" as words: "create client"."""
    return str(code or "").replace("_", " ")


@register.filter
def citation(source: Any) -> str:
    """A finding's source ("Finucane 2020, J Orthop Sports Phys Ther 50:350: table 2") as the full citation of the
    rule base's source registry, with the section cited; a seed document is named by its title and marked as a
    practice description, not evidence. Unknown text is shown as it is."""
    from backcare.clinical.rulebase import default_rule_base

    text = str(source or "")
    for entry in sorted(default_rule_base().sources.values(), key=lambda e: -len(e.short)):
        if text == entry.short or text.startswith(entry.short + ": "):
            where = text[len(entry.short) :].removeprefix(": ").strip()
            full = entry.citation
            if entry.id.startswith("seed-"):
                full += " Describes practice; not evidence."
            return f"{full} [{where}]" if where else full
    return text


@register.filter
def fields_named(form: Any, names: str) -> list[Any]:
    """The bound fields of `form` named in `names` (separated by spaces), in that order: for fieldsets."""
    return [form[name] for name in str(names).split() if name in form.fields]
