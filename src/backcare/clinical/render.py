"""Readable text for a person: a screening result, and the rule base for review."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from backcare.clinical import conditions as cond
from backcare.clinical import vocabulary as vocab
from backcare.clinical.rulebase import Rule, RuleBase

WIDTH = 100


def _wrap(text: str, indent: str = "  ") -> str:
    return textwrap.fill(text, WIDTH, initial_indent=indent, subsequent_indent=indent)


def _words(code: str) -> str:
    return code.replace("_", " ")


def _list(codes: list[str], names: dict[str, str]) -> str:
    return "; ".join(f"{names.get(c, c)}" for c in codes) if codes else "none"


class _Sources:
    """Numbers each distinct citation once, in order of first use; lists them in full when the registry knows them."""

    def __init__(self, rule_base: RuleBase | None = None) -> None:
        self.numbers: dict[str, int] = {}
        self.full = {s.short: s.citation for s in rule_base.sources.values()} if rule_base else {}

    def refs(self, cites: list[str]) -> str:
        return " ".join(f"[{self.numbers.setdefault(c, len(self.numbers) + 1)}]" for c in cites)

    def expand(self, label: str) -> str:
        """The full citation for a result's short label ("short" or "short: where")."""
        if label in self.full:
            return self.full[label]
        for short in sorted(self.full, key=len, reverse=True):  # a short name may itself contain ": "
            if label.startswith(short + ": "):
                return f"{self.full[short]} [{label[len(short) + 2 :]}]"
        return label

    def lines(self) -> list[str]:
        out = []
        for cite, n in self.numbers.items():
            text = self.expand(cite)
            out.append(textwrap.fill(text, WIDTH, initial_indent=f"  [{n}] ", subsequent_indent="      "))
        return out


def screening_text(result: dict[str, Any], rule_base: RuleBase | None = None) -> str:
    """The screening result as a therapist reads it: decision in words, findings with reasons, precautions, plan.

    With the rule base, the sources are listed with their full citations."""
    src = _Sources(rule_base)
    decision, referral = result["decision"], result["referral"]
    rb = result["rule_base"]
    lines = [
        f"Screening of {result['id'] or 'an intake without id'}  "
        f"(rule base {rb['version']}, sha256 {rb['digest'][:12]})",
        "",
        f"DECISION: {_words(decision).upper()}",
        _wrap(vocab.DECISION_TEXT[decision]),
        f"REFERRAL: {referral.upper()}",
        _wrap(vocab.REFERRAL_TEXT[referral]),
    ]
    message = result.get("client_message")
    if message:
        lines += [
            f"TIME FRAME: {_words(message['timeframe']).upper()}",
            _wrap(vocab.TIMEFRAME_TEXT[message["timeframe"]]),
            "",
            "FOR THE CLIENT",
            _wrap(message["text"]),
        ]
    lines.append("")
    findings = result["findings"]
    lines.append(f"FINDINGS ({len(findings)}, most severe first)" if findings else "FINDINGS: none")
    for i, f in enumerate(findings, 1):
        where = f" - {vocab.REGIONS[f['region']].lower()}" if f.get("region") else ""
        lines.append(f"  {i}. {f.get('title', f['rule'])}{where}")
        timeframe = f", time frame {_words(f['timeframe'])}" if f.get("timeframe") else ""
        lines.append(f"     rule {f['rule']}: {_words(f['decision'])}, referral {f['referral']}{timeframe}")
        lines.append(_wrap(f["summary"], "     "))
        if f.get("rationale"):
            lines.append(_wrap("For the therapist: " + f["rationale"], "     "))
        lines.append(f"     Sources: {src.refs(f['sources'])}")
    pre = result["precautions"]
    mp = pre["max_pressure"]
    lines += [
        "",
        "PRECAUTIONS",
        f"  Maximum pressure:  {f'{mp} ({vocab.PRESSURE_SCALE[mp]})' if mp else 'no limit'}",
        _wrap("Avoid regions:     " + _list(pre["avoid_regions"], vocab.REGIONS), "  "),
        _wrap("Positioning:       " + _list(pre["positioning"], vocab.POSITIONING), "  "),
        _wrap("Avoid techniques:  " + _list(pre["avoid_techniques"], vocab.TECHNIQUES), "  "),
        "",
    ]
    plan = result["plan"]
    if plan is None:
        lines.append("PLAN: none. No massage course is recommended with this decision.")
    else:
        group = plan["risk_group"] or "not answered"
        lines += [
            "PLAN",
            f"  {plan['sessions']} sessions over {plan['weeks']} weeks, reassessed after session "
            f"{plan['reassess_after_session']}. Pain stage: {plan['pain_stage']}. STarT Back risk: {group}.",
            _wrap("Techniques: " + _list(plan["techniques"], vocab.TECHNIQUES)),
            _wrap("Adjuncts:   " + _list(plan["adjuncts"], vocab.ADJUNCTS)),
            "  Why:",
        ]
        for item in plan.get("rationale", []):
            refs = f" {src.refs(item['sources'])}" if item["sources"] else ""
            label = item["item"] and (vocab.TECHNIQUES.get(item["item"]) or vocab.ADJUNCTS.get(item["item"]))
            text = f"{label}: {item['text']}" if label and item["topic"] != "evidence" else item["text"]
            lines.append(textwrap.fill(f"{text}{refs}", WIDTH, initial_indent="    - ", subsequent_indent="      "))
    if src.numbers:
        lines += ["", "SOURCES", *src.lines()]
    return "\n".join(lines) + "\n"


def describe(node: cond.Node) -> str:
    """A condition in words, for reviewers of the rule base."""
    if node.op == "atom":
        assert node.atom is not None
        return _describe_atom(node.atom)
    parts = [describe(c) for c in node.children]
    if node.op == "all":
        return " and ".join(parts)
    if node.op == "any":
        return "(" + " or ".join(parts) + ")"
    how = "exactly" if node.op == "exactly" else "at least"
    return f"{how} {node.count} of (" + "; ".join(parts) + ")"


def describe_match(m: cond.FindingMatch) -> str:
    text = "finding " + " or ".join(m.codes)
    if m.region == "given":
        text += " with a region given"
    if m.region == "none":
        text += " with no region given"
    if m.region_in is not None:
        text += " in " + "/".join(vocab.order(m.region_in, vocab.REGIONS))
    if m.region_not_in:
        text += " in a region other than " + "/".join(vocab.order(m.region_not_in, vocab.REGIONS))
    limits = []
    if m.weeks_ago_at_least is not None:
        limits.append(f"at least {m.weeks_ago_at_least:g} weeks ago")
    if m.weeks_ago_below is not None:
        limits.append(f"under {m.weeks_ago_below:g} weeks ago")
    if m.weeks_ago_at_most is not None:
        limits.append(f"at most {m.weeks_ago_at_most:g} weeks ago")
    if limits:
        text += ", " + " and ".join(limits) + (" (or when unknown)" if m.weeks_ago_unknown else "")
    return text


def _describe_atom(a: cond.Atom) -> str:
    v = a.value
    if a.match is not None:
        return describe_match(a.match)
    words: dict[str, Callable[[], str]] = {
        "onset": lambda: "onset " + " or ".join(sorted(v)),
        "medically_assessed": lambda: "episode medically assessed" if v else "episode not medically assessed",
        "first_episode": lambda: "first episode of back pain" if v else "not a first episode",
        "pregnant": lambda: "pregnant" if v else "not pregnant",
        "age_at_least": lambda: f"age {v:g} or more",
        "age_below": lambda: f"age under {v:g}",
        "age_at_onset_below": lambda: f"age at onset under {v:g}",
        "intensity_at_least": lambda: f"pain intensity {v:g} or more",
        "duration_weeks_over": lambda: f"pain for more than {v:g} weeks",
        "duration_weeks_below": lambda: f"pain for less than {v:g} weeks",
        "pregnancy_weeks_at_least": lambda: f"pregnancy week {v:g} or later",
        "pregnancy_weeks_below": lambda: f"pregnancy before week {v:g}",
    }
    return words[a.key]()


def rule_condition(rule: Rule) -> str:
    parts = []
    if rule.for_each_finding is not None:
        parts.append("for each " + describe_match(rule.for_each_finding))
    if rule.when is not None:
        parts.append(describe(rule.when))
    return " and ".join(parts)


def rule_effect(rule: Rule) -> str:
    e = rule.effect
    parts = [_words(e.decision), f"referral {e.referral}", f"time frame {_words(rule.timeframe)}"]
    if e.max_pressure is not None:
        parts.append(f"max pressure {e.max_pressure}")
    if e.avoid_techniques:
        parts.append("avoid " + ", ".join(vocab.order(e.avoid_techniques, vocab.TECHNIQUES)))
    if e.positioning:
        parts.append("positioning " + ", ".join(vocab.order(e.positioning, vocab.POSITIONING)))
    if e.avoid_regions:
        parts.append("avoid regions " + ", ".join(e.avoid_regions))
    if e.avoid_region_of_finding == "finding_region":
        parts.append("avoid the finding's region")
    if e.avoid_region_of_finding == "finding_region_and_distal":
        parts.append("avoid the finding's region and below it on the limb")
    if e.avoid_region_of_finding == "finding_limb":
        parts.append("avoid the whole limb of the finding's region")
    if e.avoid_regions_without_region:
        parts.append("without a region: avoid " + ", ".join(e.avoid_regions_without_region))
    if e.avoid_pain_regions_without_region:
        spinal = "spinal " if e.avoid_pain_regions_without_region == "spinal_pain_regions" else ""
        parts.append(f"without a region: avoid the {spinal}regions in pain")
    return "; ".join(parts)


def rules_text(rb: RuleBase) -> str:
    src = _Sources()
    lines = [
        f"{rb.title}",
        f"version {rb.version}, sha256 {rb.digest}, meets contract {rb.contract}",
        f"{len(rb.rules)} rules",
        "",
    ]
    for g in rb.groups:
        lines += [f"== {g.title}  ({g.file}, {len(g.rules)} rules)", _wrap(g.description, "   "), ""]
        for r in g.rules:
            lines += [
                f"  {r.id}: {r.title}",
                _wrap("when:    " + rule_condition(r), "    "),
                _wrap("effect:  " + rule_effect(r), "    "),
                _wrap("client:  " + r.summary, "    "),
                _wrap("tells:   " + r.instruction_text(rb.messages), "    "),
                _wrap("sources: " + src.refs([s.cite() for s in r.sources]), "    "),
                "",
            ]
    return "\n".join([*lines, "SOURCES", *src.lines()]) + "\n"


def rules_markdown(rb: RuleBase) -> str:
    lines = [
        f"# {rb.title}",
        "",
        f"Version {rb.version}, sha256 `{rb.digest}`, meets contract {rb.contract}. "
        "Generated by `backcare rules --format markdown`.",
        "",
    ]
    for g in rb.groups:
        lines += [
            f"## {g.title}",
            "",
            g.description,
            "",
            "| id | when | effect | sources |",
            "|---|---|---|---|",
        ]
        for r in g.rules:
            cites = "; ".join(s.short() for s in r.sources)
            lines.append(f"| `{r.id}` | {rule_condition(r)} | {rule_effect(r)} | {cites} |")
        lines.append("")
    lines += ["## Sources", ""]
    lines += [f"- **{s.id}**: {s.citation}" + (f" {s.url}" if s.url else "") for s in rb.sources.values()]
    return "\n".join(lines) + "\n"


def rules_json(rb: RuleBase) -> dict[str, Any]:
    return {
        "title": rb.title,
        "version": rb.version,
        "digest": rb.digest,
        "contract": rb.contract,
        "groups": [
            {
                "name": g.name,
                "title": g.title,
                "rules": [
                    {
                        "id": r.id,
                        "title": r.title,
                        "when": rule_condition(r),
                        "decision": r.effect.decision,
                        "referral": r.effect.referral,
                        "timeframe": r.timeframe,
                        "effect": rule_effect(r),
                        "instruction": r.instruction_text(rb.messages),
                        "care_process_choice": r.care_process_choice,
                        "summary": r.summary,
                        "rationale": r.rationale,
                        "sources": [s.cite() for s in r.sources],
                    }
                    for r in g.rules
                ],
            }
            for g in rb.groups
        ],
        "sources": {s.id: {"short": s.short, "citation": s.citation, "url": s.url} for s in rb.sources.values()},
    }
