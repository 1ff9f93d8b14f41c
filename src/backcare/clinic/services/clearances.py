"""What a physician's clearance clears: named findings of one screening, for that episode, for a limited time.

A finding of a screening that asks for clearance is identified by its *key*: the rule, the region it fired for and
the intake facts that made it fire (the finding codes with their region and weeks since, or, for a rule that fires
on the pain itself, the pain intensity). A clearance records the keys it clears. It covers a finding of a later
screening only when

- the later screening belongs to the same episode (the same intake: a new intake is a new episode),
- the clearance has not lapsed (`valid_until`, from the clinic's `clearance_valid_days`, or an earlier day the
  physician set), and
- the key is the same: the same rule, region and facts (an operation elsewhere, or a different date, is a new
  finding); pain may be lower than when it was cleared, never higher.

The physician's restrictions (regions to avoid, a pressure limit, techniques ruled out) are kept as structured
precautions and added to the screening's own wherever the session checks them (`precautions_for`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from backcare.clinic.models import Clearance, Screening
from backcare.clinical.rulebase import default_rule_base
from backcare.clinical.vocabulary import REGIONS

FACT_FIELDS = ("code", "region", "weeks_ago")


def _trigger_codes(rule_id: str) -> frozenset[str] | None:
    try:
        return default_rule_base().rule(rule_id).trigger_codes()
    except KeyError:  # a rule of an older rule base: identify the finding by its region and pain
        return None


def finding_key(finding: dict[str, Any], document: dict[str, Any], on: dt.date) -> dict[str, Any]:
    """What one finding of a screening names: rule, region, the facts that made it fire, and when they happened."""
    region = finding.get("region")
    codes = _trigger_codes(finding["rule"])
    facts: list[dict[str, Any]] = []
    if codes:
        for item in document.get("findings", []):
            if item.get("code") in codes and (region is None or item.get("region") == region):
                fact = {k: item[k] for k in FACT_FIELDS if item.get(k) is not None}
                if "weeks_ago" in fact:
                    fact["since"] = (on - dt.timedelta(weeks=float(fact["weeks_ago"]))).isoformat()
                facts.append(fact)
        facts.sort(key=lambda f: (f["code"], f.get("region") or "", f.get("weeks_ago") or 0))
    key: dict[str, Any] = {"rule": finding["rule"], "title": finding.get("title", finding["rule"]), "region": region}
    key["facts"] = facts
    key["pain"] = None if codes else (document.get("pain") or {}).get("intensity")
    return key


def _screened_on(screening: Screening) -> dt.date:
    return timezone.localdate(screening.created_at)


def clearance_keys(screening: Screening) -> list[dict[str, Any]]:
    """The keys of the screening's findings that ask for a physician's clearance."""
    on = _screened_on(screening)
    return [
        finding_key(f, screening.document, on)
        for f in screening.result.get("findings", [])
        if f.get("decision") == "clearance_required"
    ]


def key_token(key: dict[str, Any]) -> str:
    """A short stable name of a key, for form choices: rule and region."""
    return f"{key['rule']}@{key.get('region') or ''}"


def key_label(key: dict[str, Any]) -> str:
    """The key in words, for the pages: "Operation less than 6 weeks ago: abdomen, about 11 Nov 2026"."""
    parts = []
    if key.get("region"):
        parts.append(REGIONS.get(key["region"], key["region"]).lower())
    for fact in key.get("facts", []):
        if fact.get("since"):
            parts.append(f"about {dt.date.fromisoformat(fact['since']):%-d %b %Y}")
    if key.get("pain") is not None:
        parts.append(f"pain {key['pain']}/10")
    title: str = key["title"]
    return title + (": " + ", ".join(parts) if parts else "")


def _same_facts(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    def strip(facts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [tuple(f.get(k) for k in FACT_FIELDS) for f in facts]

    return strip(a) == strip(b)


def covers(cleared: dict[str, Any], key: dict[str, Any]) -> bool:
    """Whether a cleared key covers this finding: same rule, region and facts; pain no higher than cleared."""
    if cleared.get("rule") != key["rule"] or cleared.get("region") != key.get("region"):
        return False
    if not _same_facts(cleared.get("facts", []), key.get("facts", [])):
        return False
    if key.get("pain") is not None:
        return cleared.get("pain") is not None and key["pain"] <= cleared["pain"]
    return True


def episode_of(screening: Screening) -> int | None:
    """The episode a screening belongs to: the intake it comes from (a pre-session update keeps its intake)."""
    return screening.intake_id


def in_force(clearance: Clearance, screening: Screening, today: dt.date | None = None) -> bool:
    """Whether the clearance still stands for this screening: same episode and not lapsed."""
    today = today or timezone.localdate()
    if clearance.valid_until is not None and clearance.valid_until < today:
        return False
    return episode_of(clearance.screening) == episode_of(screening) and clearance.screening.created_at <= (
        screening.created_at
    )


def why_not(clearance: Clearance, screening: Screening, today: dt.date | None = None) -> str:
    """Why an earlier clearance does not clear this screening's findings, in words for the therapist."""
    today = today or timezone.localdate()
    who = f"The clearance by {clearance.given_by} of {clearance.given_on:%-d %b %Y}"
    if clearance.valid_until is not None and clearance.valid_until < today:
        return f"{who} lapsed on {clearance.valid_until:%-d %b %Y}; ask the physician again."
    if episode_of(clearance.screening) != episode_of(screening):
        return f"{who} was for an earlier episode of back pain; a new episode needs its own clearance."
    return f"{who} does not name these findings, or they have changed since; it clears only what it names."


@dataclass
class Pending:
    keys: list[dict[str, Any]]
    notes: list[str]

    @property
    def rules(self) -> list[str]:
        return sorted({k["rule"] for k in self.keys})


def pending(screening: Screening, clearances: Iterable[Clearance], today: dt.date | None = None) -> Pending:
    """The clearance findings of `screening` no clearance in force covers, and why earlier clearances do not."""
    clearances = list(clearances)
    standing = [c for c in clearances if in_force(c, screening, today)]
    keys = [k for k in clearance_keys(screening) if not any(covers(c_key, k) for c in standing for c_key in c.findings)]
    rules = {k["rule"] for k in keys}
    notes = [why_not(c, screening, today) for c in clearances if any(ck.get("rule") in rules for ck in c.findings)]
    return Pending(keys, list(dict.fromkeys(notes)))


def restrictions(screening: Screening, today: dt.date | None = None) -> dict[str, Any]:
    """The physician's restrictions of the clearances in force for this screening, as precautions."""
    out: dict[str, Any] = {"avoid_regions": [], "avoid_techniques": [], "max_pressure": None}
    for c in Clearance.objects.filter(client_id=screening.client_id).select_related("screening"):
        if not in_force(c, screening, today):
            continue
        out["avoid_regions"] += [r for r in c.avoid_regions if r not in out["avoid_regions"]]
        out["avoid_techniques"] += [t for t in c.avoid_techniques if t not in out["avoid_techniques"]]
        if c.max_pressure is not None:
            limit = out["max_pressure"]
            out["max_pressure"] = c.max_pressure if limit is None else min(limit, c.max_pressure)
    return out


def precautions_for(screening: Screening, today: dt.date | None = None) -> dict[str, Any]:
    """The screening's precautions with the physician's restrictions added: what a session must keep to."""
    own: dict[str, Any] = dict(screening.result.get("precautions", {}))
    extra = restrictions(screening, today)
    merged = dict(own)
    merged["avoid_regions"] = list(dict.fromkeys([*own.get("avoid_regions", []), *extra["avoid_regions"]]))
    merged["avoid_techniques"] = list(dict.fromkeys([*own.get("avoid_techniques", []), *extra["avoid_techniques"]]))
    limits = [p for p in (own.get("max_pressure"), extra["max_pressure"]) if p is not None]
    merged["max_pressure"] = min(limits) if limits else None
    merged.setdefault("positioning", [])
    return merged
