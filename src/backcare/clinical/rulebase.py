"""The rule base: reviewable data files (`rulebase/*.toml`) loaded into rules the engine can run.

Layout of `rulebase/`:
    rulebase.toml      its version and what it is
    sources.toml       the registry of sources, each with a full citation
    conditions.toml    named conditions shared by rules (the weak red flags, for example)
    groups/*.toml      one file per rule group, each rule with id, condition, effect, summary and sources
    plan.toml          how a plan is derived: course, techniques by goal, adjuncts, STarT Back matched care

The digest is the sha256 of the canonical JSON of every file's parsed content, so a change of meaning changes it
and a change of layout (whitespace, comments) does not.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from typing import Any

from backcare.clinical import conditions as cond
from backcare.clinical import vocabulary as vocab

RULEBASE = resources.files("backcare.clinical") / "rulebase"

REGION_EFFECTS = ("finding_region", "finding_region_and_distal", "finding_limb")
PAIN_REGION_DEFAULTS = ("pain_regions", "spinal_pain_regions")
"""Without a region on the finding: the regions in pain.regions, or only their spinal ones."""

# The words for each time frame that a client message must contain (CLINICAL.md section 12).
TIMEFRAME_WORDS = {
    "now": "call emergency services or go to the emergency department now",
    "within_24_hours": "today, within 24 hours",
    "within_days": "within the next few days",
    "routine": "at a routine appointment",
    "none": "",
}
DEFAULT_TIMEFRAME = {"emergency": "now", "urgent": "within_days", "routine": "routine", "none": "none"}


class RuleBaseError(ValueError):
    """The rule base cannot be loaded; the message names the file and the rule."""


@dataclass(frozen=True)
class Source:
    id: str
    short: str
    citation: str
    url: str = ""
    note: str = ""


@dataclass(frozen=True)
class SourceRef:
    source: Source
    where: str = ""

    def cite(self) -> str:
        """The full citation, for the registry and printed reference lists."""
        return f"{self.source.citation} [{self.where}]" if self.where else self.source.citation

    def short(self) -> str:
        """Author, year and journal with the section cited: what a result carries (full text in the registry)."""
        return f"{self.source.short}: {self.where}" if self.where else self.source.short


@dataclass(frozen=True)
class Effect:
    decision: str
    referral: str = "none"
    max_pressure: int | None = None
    avoid_techniques: frozenset[str] = frozenset()
    positioning: frozenset[str] = frozenset()
    avoid_regions: tuple[str, ...] = ()
    avoid_region_of_finding: str | None = None  # finding_region | finding_region_and_distal | finding_limb
    avoid_regions_without_region: tuple[str, ...] = ()
    avoid_pain_regions_without_region: str | None = None  # pain_regions | spinal_pain_regions

    @property
    def has_precautions(self) -> bool:
        return bool(
            self.max_pressure is not None
            or self.avoid_techniques
            or self.positioning
            or self.avoid_regions
            or self.avoid_region_of_finding
        )


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    group: str
    title: str
    summary: str
    rationale: str
    sources: tuple[SourceRef, ...]
    effect: Effect
    when: cond.Node | None
    for_each_finding: cond.FindingMatch | None
    order: int
    timeframe: str = "none"
    instruction: str = ""
    """What the client is told to do when this finding leads the result; empty: the decision's default wording."""
    care_process_choice: bool = False
    """The rule rests only on the seed documents' care process (CLINICAL.md section 13)."""
    predicate: cond.Predicate | None = field(init=False, repr=False)
    severity: tuple[int, int, int] = field(init=False, repr=False)
    """(decision index, referral index, time frame index): higher is more severe."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "predicate", cond.compile_node(self.when) if self.when else None)
        severity = (
            vocab.DECISIONS.index(self.effect.decision),
            vocab.REFERRALS.index(self.effect.referral),
            vocab.TIMEFRAMES.index(self.timeframe),
        )
        object.__setattr__(self, "severity", severity)

    def instruction_text(self, messages: dict[str, str]) -> str:
        """The client's instruction when this finding leads: its own wording, or its decision's default, with the
        words of its time frame (CLINICAL.md section 12)."""
        template = self.instruction or messages[self.effect.decision]
        words = TIMEFRAME_WORDS[self.timeframe]
        text = template.format(when=words)
        if words and words not in text:
            text += " " + messages["referral"].format(when=words)
        return text

    def trigger_codes(self) -> frozenset[str] | None:
        """Finding codes one of which must be present for this rule to fire (None: it may fire without)."""
        if self.for_each_finding is not None:
            return frozenset(self.for_each_finding.codes)
        assert self.when is not None
        return cond.trigger_codes(self.when)


@dataclass(frozen=True)
class Group:
    name: str
    title: str
    description: str
    file: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class RuleBase:
    version: str
    title: str
    digest: str
    contract: str
    messages: dict[str, str]
    """The client message's default wording (rulebase.toml [messages]): one instruction per decision, and the
    sentences that add a referral from another finding, the weaker findings and the no-finding text."""
    groups: tuple[Group, ...]
    sources: dict[str, Source]
    plan: dict[str, Any]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(r for g in self.groups for r in g.rules)

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def source_refs(self, refs: Any, where: str) -> tuple[SourceRef, ...]:
        return _source_refs(refs, self.sources, where)


def _read_toml(path: Traversable, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise RuleBaseError(f"{name}: not valid TOML: {e}") from None


def _source_refs(refs: Any, sources: dict[str, Source], where: str) -> tuple[SourceRef, ...]:
    if not isinstance(refs, list) or not refs:
        raise RuleBaseError(f"{where}: every rule needs at least one source")
    out = []
    for ref in refs:
        sid, place = (ref, "") if isinstance(ref, str) else (ref.get("id"), ref.get("where", ""))
        if sid not in sources:
            raise RuleBaseError(f"{where}: unknown source {sid!r} (not in sources.toml)")
        out.append(SourceRef(sources[sid], place))
    return tuple(out)


def _codes(value: Any, allowed: Any, kind: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleBaseError(f"{where}: expected a list of {kind} codes")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise RuleBaseError(f"{where}: unknown {kind} code(s) {', '.join(unknown)}")
    return tuple(value)


_RULE_KEYS = {
    "id",
    "title",
    "summary",
    "rationale",
    "sources",
    "when",
    "for_each_finding",
    "decision",
    "referral",
    "max_pressure",
    "avoid_techniques",
    "positioning",
    "avoid_regions",
    "avoid_regions_without_region",
    "timeframe",
    "instruction",
    "care_process_choice",
    "choice",
}

CARE_PROCESS_NOTE = (
    "A care-process choice: this rests only on the practice descriptions in the seed documents, not on a guideline "
    "or a trial."
)


def _effect(data: dict[str, Any], where: str) -> Effect:
    decision = data.get("decision")
    if decision not in vocab.DECISIONS:
        raise RuleBaseError(f"{where}.decision: {decision!r} is not one of {', '.join(vocab.DECISIONS)}")
    referral = data.get("referral", "none")
    if referral not in vocab.REFERRALS:
        raise RuleBaseError(f"{where}.referral: {referral!r} is not one of {', '.join(vocab.REFERRALS)}")
    pressure = data.get("max_pressure")
    if pressure is not None and (isinstance(pressure, bool) or pressure not in vocab.PRESSURE_SCALE):
        raise RuleBaseError(f"{where}.max_pressure: expected a whole number from 1 to 5")
    regions = data.get("avoid_regions", [])
    by_finding = None
    if isinstance(regions, str):
        if regions not in REGION_EFFECTS:
            raise RuleBaseError(f"{where}.avoid_regions: expected a list of regions or one of {REGION_EFFECTS}")
        by_finding, regions = regions, []
    without: Any = data.get("avoid_regions_without_region", [])
    pain_default = None
    if isinstance(without, str):
        if without not in PAIN_REGION_DEFAULTS:
            raise RuleBaseError(
                f"{where}.avoid_regions_without_region: expected a list of regions or one of {PAIN_REGION_DEFAULTS}"
            )
        pain_default, without = without, []
    return Effect(
        decision=decision,
        referral=referral,
        max_pressure=pressure,
        avoid_techniques=frozenset(_codes(data.get("avoid_techniques", []), vocab.TECHNIQUES, "technique", where)),
        positioning=frozenset(_codes(data.get("positioning", []), vocab.POSITIONING, "positioning", where)),
        avoid_regions=_codes(regions, vocab.REGIONS, "region", where),
        avoid_region_of_finding=by_finding,
        avoid_regions_without_region=_codes(without, vocab.REGIONS, "region", where),
        avoid_pain_regions_without_region=pain_default,
    )


def _timeframe(data: dict[str, Any], effect: Effect, where: str) -> str:
    """A finding's time frame: `now` for an emergency referral, `within_24_hours` where the rule says so, else
    `within_days` for urgent, `routine` for routine and `none` without a referral (CLINICAL.md section 1)."""
    default = DEFAULT_TIMEFRAME[effect.referral]
    given = data.get("timeframe", default)
    if given not in vocab.TIMEFRAMES:
        raise RuleBaseError(f"{where}.timeframe: {given!r} is not one of {', '.join(vocab.TIMEFRAMES)}")
    if given != default and not (given == "within_24_hours" and effect.referral == "urgent"):
        raise RuleBaseError(
            f"{where}.timeframe: {given!r} does not fit referral {effect.referral!r} "
            f"(its time frame is {default!r}; only an urgent referral may be within_24_hours)"
        )
    return str(given)


def _rule(
    data: Any, group: str, index: int, order: int, sources: dict[str, Source], named: dict[str, cond.Node]
) -> Rule:
    where = f"groups/{group}.toml rule {index + 1}"
    if not isinstance(data, dict):
        raise RuleBaseError(f"{where}: expected a table")
    rule_id = data.get("id")
    if not isinstance(rule_id, str) or not rule_id.startswith(group + "."):
        raise RuleBaseError(f"{where}: the id must be a string starting with '{group}.'")
    where = f"groups/{group}.toml rule {rule_id}"
    unknown = set(data) - _RULE_KEYS
    if unknown:
        raise RuleBaseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in ("title", "summary", "rationale"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise RuleBaseError(f"{where}: {key} is required (plain text)")
    if "when" not in data and "for_each_finding" not in data:
        raise RuleBaseError(f"{where}: a rule needs a condition (when or for_each_finding)")
    try:
        when = cond.parse(data["when"], f"{where}.when", named) if "when" in data else None
        each = (
            cond.parse_finding_match(data["for_each_finding"], f"{where}.for_each_finding")
            if "for_each_finding" in data
            else None
        )
    except cond.ConditionError as e:
        raise RuleBaseError(str(e)) from None
    effect = _effect(data, where)
    if effect.avoid_region_of_finding and each is None:
        raise RuleBaseError(f"{where}: avoid_regions = {effect.avoid_region_of_finding!r} needs for_each_finding")
    instruction = data.get("instruction", "")
    if not isinstance(instruction, str):
        raise RuleBaseError(f"{where}.instruction: expected plain text")
    care_process = data.get("care_process_choice", False)
    if not isinstance(care_process, bool):
        raise RuleBaseError(f"{where}.care_process_choice: expected true or false")
    choice = data.get("choice", "")
    if not isinstance(choice, str):
        raise RuleBaseError(f"{where}.choice: expected plain text")
    refs = _source_refs(data.get("sources"), sources, where)
    seed_only = all(ref.source.id.startswith("seed-") for ref in refs)
    if seed_only != care_process:
        raise RuleBaseError(
            f"{where}: a rule resting only on the seed documents must say care_process_choice = true, and only such "
            "a rule may"
        )
    # The therapist reads the reasoning, the choice between disagreeing sources and the basis in one text.
    rationale = " ".join(data["rationale"].split())
    if choice.strip():
        rationale += " Where sources disagree: " + " ".join(choice.split())
    if care_process:
        rationale += " " + CARE_PROCESS_NOTE
    return Rule(
        id=rule_id,
        group=group,
        title=data["title"].strip(),
        summary=" ".join(data["summary"].split()),
        rationale=rationale,
        sources=refs,
        effect=effect,
        when=when,
        for_each_finding=each,
        order=order,
        timeframe=_timeframe(data, effect, where),
        instruction=" ".join(instruction.split()),
        care_process_choice=care_process,
    )


def _sources(data: dict[str, Any]) -> dict[str, Source]:
    out = {}
    for sid, entry in data.items():
        if not isinstance(entry, dict) or not entry.get("citation") or not entry.get("short"):
            raise RuleBaseError(f"sources.toml [{sid}]: needs short and citation")
        unknown = set(entry) - {"short", "citation", "url", "note"}
        if unknown:
            raise RuleBaseError(f"sources.toml [{sid}]: unknown key(s) {', '.join(sorted(unknown))}")
        out[sid] = Source(
            sid,
            entry["short"],
            " ".join(entry["citation"].split()),
            entry.get("url", ""),
            " ".join(entry.get("note", "").split()),
        )
    return out


def load_rule_base(root: Traversable = RULEBASE) -> RuleBase:
    """Read and check the structure of the rule base; raise RuleBaseError naming the first problem."""
    files: dict[str, dict[str, Any]] = {}
    for name in ("rulebase.toml", "sources.toml", "conditions.toml", "plan.toml"):
        files[name] = _read_toml(root / name, name)
    group_dir = root / "groups"
    group_files = sorted((p for p in group_dir.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name)
    meta = files["rulebase.toml"]
    order_names = meta.get("groups", [])
    by_name = {p.name.removesuffix(".toml"): p for p in group_files}
    if sorted(order_names) != sorted(by_name):
        raise RuleBaseError(
            f"rulebase.toml: groups = {order_names} must list exactly the files in groups/ ({sorted(by_name)})"
        )
    sources = _sources(files["sources.toml"])
    named: dict[str, cond.Node] = {}
    for cname, cdata in files["conditions.toml"].items():
        try:
            named[cname] = cond.parse(cdata, f"conditions.toml [{cname}]", named)
        except cond.ConditionError as e:
            raise RuleBaseError(str(e)) from None
    groups = []
    order = 0
    seen: set[str] = set()
    for gname in order_names:
        data = _read_toml(by_name[gname], f"groups/{gname}.toml")
        files[f"groups/{gname}.toml"] = data
        rules = []
        for i, rdata in enumerate(data.get("rule", [])):
            rule = _rule(rdata, gname, i, order, sources, named)
            if rule.id in seen:
                raise RuleBaseError(f"groups/{gname}.toml: duplicate rule id {rule.id}")
            seen.add(rule.id)
            rules.append(rule)
            order += 1
        groups.append(
            Group(
                gname,
                data.get("title", gname),
                " ".join(data.get("description", "").split()),
                f"groups/{gname}.toml",
                tuple(rules),
            )
        )
    canonical = json.dumps(files, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    messages = meta.get("messages", {})
    needed = (*vocab.DECISIONS, "referral", "also_referral", "also_noted", "nothing_found")
    missing = [k for k in needed if k not in messages]
    if missing:
        raise RuleBaseError(f"rulebase.toml [messages]: missing {', '.join(missing)}")
    texts = {k: " ".join(str(v).split()) for k, v in messages.items()}
    for group in groups:
        for rule in group.rules:
            try:
                rule.instruction_text(texts)
            except (KeyError, IndexError, ValueError) as e:
                raise RuleBaseError(
                    f"{group.file} rule {rule.id}: instruction: only {{when}} may be filled in ({e})"
                ) from None
    return RuleBase(
        version=str(meta.get("version", "")),
        title=str(meta.get("title", "")),
        digest=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        contract=str(meta.get("contract", "")),
        messages=texts,
        groups=tuple(groups),
        sources=sources,
        plan=files["plan.toml"],
    )


@cache
def default_rule_base() -> RuleBase:
    return load_rule_base()
