"""The three questionnaires as FHIR Questionnaires: Backcare's intake (built from `knowledge/intake_form.toml`), the
Keele STarT Back Screening Tool and the Roland-Morris Disability Questionnaire.

One description of each (`ItemSpec` trees) serves both directions: export writes the Questionnaire and answers in its
shape, import checks every answer against it (known item, right type, a listed code). Intake item linkIds are the
intake form's own field names (`pain_intensity`, `f_fever`, `f_fever_regions`, `sb_1`...), so answers map one to one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from backcare.clinic.services.intake import intake_form
from backcare.clinical.instruments import BOTHERSOMENESS, RMDQ_ITEMS, START_BACK_COPYRIGHT, START_BACK_ITEMS
from backcare.clinical.vocabulary import GOALS, REGIONS
from backcare.interop.fhir import codes

ANSWER_TYPES = {
    "boolean": "valueBoolean",
    "integer": "valueInteger",
    "decimal": "valueDecimal",
    "choice": "valueCoding",
    "string": "valueString",
    "text": "valueString",
}


@dataclass(frozen=True)
class ItemSpec:
    link_id: str
    type: str  # group, boolean, integer, decimal, choice, string, text
    text: str
    repeats: bool = False
    system: str = ""
    options: tuple[tuple[str, str], ...] = ()
    enable_when: tuple[str, bool] | None = None
    read_only: bool = False
    code: tuple[str, str, str] | None = None  # (system, code, display)
    children: tuple[ItemSpec, ...] = ()

    @property
    def answer_key(self) -> str:
        return ANSWER_TYPES[self.type]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.options)


@dataclass(frozen=True)
class QuestionnaireSpec:
    key: str  # intake, start_back, rmdq
    url: str
    version: str
    name: str
    title: str
    description: str
    items: tuple[ItemSpec, ...]
    copyright: str = ""
    index: dict[str, ItemSpec] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        def walk(items: tuple[ItemSpec, ...]) -> None:
            for item in items:
                self.index[item.link_id] = item
                walk(item.children)

        walk(self.items)

    @property
    def canonical(self) -> str:
        return f"{self.url}|{self.version}"


def _yes_no(link_id: str, text: str, **kw: Any) -> ItemSpec:
    return ItemSpec(link_id, "boolean", text, **kw)


def _choice(link_id: str, text: str, system: str, options: dict[str, str], **kw: Any) -> ItemSpec:
    return ItemSpec(link_id, "choice", text, system=system, options=tuple(options.items()), **kw)


REGION_OPTIONS = dict(REGIONS)
AGREE_OPTIONS = {"agree": "Agree", "disagree": "Disagree"}


def _start_back_items() -> tuple[ItemSpec, ...]:
    items = [_choice(f"sb_{i}", text, codes.CS_AGREE, AGREE_OPTIONS) for i, text in enumerate(START_BACK_ITEMS[:8], 1)]
    items.append(_choice("sb_9", START_BACK_ITEMS[8], codes.CS_BOTHER, dict(BOTHERSOMENESS)))
    return tuple(items)


@cache
def intake_spec() -> QuestionnaireSpec:
    form = intake_form()
    t = form.texts
    pain = t["pain"]
    groups: list[ItemSpec] = [
        ItemSpec(
            "pain",
            "group",
            pain["legend"],
            children=(
                _choice("pain_regions", pain["regions"], codes.CS_REGION, REGION_OPTIONS, repeats=True),
                ItemSpec(
                    "pain_intensity",
                    "integer",
                    pain["intensity"],
                    code=(codes.LOINC, codes.LOINC_PAIN_NRS, codes.LOINC_PAIN_NRS_DISPLAY),
                ),
                ItemSpec("pain_duration_weeks", "decimal", pain["duration_weeks"]),
                _yes_no("pain_first_episode", pain["first_episode"]),
                _choice("pain_onset", pain["onset"], codes.CS_ONSET, dict(pain["onsets"])),
                _yes_no("pain_medically_assessed", pain["medically_assessed"]),
            ),
        ),
        ItemSpec(
            "goals_group",
            "group",
            t["goals"]["legend"],
            children=(
                _choice("goals", t["goals"]["question"], codes.CS_GOAL, dict(GOALS), repeats=True),
                ItemSpec("goals_text", "text", t["goals"]["free_text"]),
            ),
        ),
    ]
    for topic in form.topics:
        children: list[ItemSpec] = []
        if topic.key == "pregnancy":
            children.append(_yes_no("pregnant", t["pregnancy"]["pregnant"]))
            children.append(
                ItemSpec("pregnancy_weeks", "integer", t["pregnancy"]["weeks"], enable_when=("pregnant", True))
            )
        for q in topic.questions:
            when = ("pregnant", True) if q.only_if == "pregnant" else None
            text = q.text + (" (asked by the therapist at the visit)" if q.therapist_only else "")
            children.append(_yes_no(q.name, text, enable_when=when))
            if q.region:
                children.append(
                    _choice(
                        q.regions_name,
                        "Where?",
                        codes.CS_REGION,
                        REGION_OPTIONS,
                        repeats=True,
                        enable_when=(q.name, True),
                    )
                )
            if q.weeks_ago:
                children.append(ItemSpec(q.weeks_name, "decimal", "How many weeks ago?", enable_when=(q.name, True)))
        groups.append(ItemSpec(f"topic_{topic.key}", "group", topic.title, children=tuple(children)))
    groups.append(ItemSpec("start_back", "group", t["start_back"]["legend"], children=_start_back_items()))
    groups.append(
        ItemSpec("notes_group", "group", "Anything else", children=(ItemSpec("notes", "text", t["notes"]["question"]),))
    )
    return QuestionnaireSpec(
        key="intake",
        url=codes.Q_INTAKE,
        version=form.version,
        name="BackcareIntake",
        title=form.title,
        description=form.intro,
        items=tuple(groups),
        copyright="The STarT Back items: " + START_BACK_COPYRIGHT,
    )


SB_GROUPS = {"low": "Low risk", "medium": "Medium risk", "high": "High risk"}


@cache
def start_back_spec() -> QuestionnaireSpec:
    scores = (
        ItemSpec("total", "integer", "Total score (0-9)", read_only=True),
        ItemSpec("psychosocial", "integer", "Psychosocial subscale score (items 5-9, 0-5)", read_only=True),
        _choice("group", "Risk group", codes.CS_SB_GROUP, SB_GROUPS, read_only=True),
    )
    return QuestionnaireSpec(
        key="start_back",
        url=codes.Q_START_BACK,
        version=codes.START_BACK_VERSION,
        name="KeeleStartBack",
        title="Keele STarT Back Screening Tool",
        description="Thinking about the last 2 weeks. Hill JC et al., Arthritis Rheum 2008;59:632-641.",
        items=(*_start_back_items(), *scores),
        copyright=START_BACK_COPYRIGHT,
    )


@cache
def rmdq_spec() -> QuestionnaireSpec:
    items = tuple(_yes_no(f"rmdq_{i}", text) for i, text in enumerate(RMDQ_ITEMS, 1))
    return QuestionnaireSpec(
        key="rmdq",
        url=codes.Q_RMDQ,
        version=codes.RMDQ_VERSION,
        name="RolandMorris",
        title="Roland-Morris Disability Questionnaire",
        description="Tick the statements that describe you today. Roland M, Morris R. Spine 1983;8:141-144.",
        items=(*items, ItemSpec("score", "integer", "Score: statements ticked (0-24)", read_only=True)),
        copyright="Free to use; no permission needed for the original English version.",
    )


def all_specs() -> tuple[QuestionnaireSpec, ...]:
    return (intake_spec(), start_back_spec(), rmdq_spec())


def spec_for(canonical: str) -> QuestionnaireSpec | None:
    """The questionnaire a canonical reference names (`url` or `url|version`), or None when it is not one of ours
    or names a version we do not know."""
    url, _, version = canonical.partition("|")
    for spec in all_specs():
        if spec.url == url and (not version or version == spec.version):
            return spec
    return None


# --- as FHIR ------------------------------------------------------------------------------------------------------


def _item_json(item: ItemSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"linkId": item.link_id}
    if item.code:
        out["code"] = [codes.coding(*item.code)]
    out["text"] = item.text
    out["type"] = item.type
    if item.enable_when:
        question, value = item.enable_when
        out["enableWhen"] = [{"question": question, "operator": "=", "answerBoolean": value}]
    if item.repeats:
        out["repeats"] = True
    if item.read_only:
        out["readOnly"] = True
    if item.options:
        out["answerOption"] = [{"valueCoding": codes.coding(item.system, c, d)} for c, d in item.options]
    if item.children:
        out["item"] = [_item_json(child) for child in item.children]
    return out


def questionnaire_json(spec: QuestionnaireSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": codes.uid("questionnaire", spec.key, spec.version),
        "url": spec.url,
        "version": spec.version,
        "name": spec.name,
        "title": spec.title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "Backcare",
        "description": spec.description,
    }
    if spec.copyright:
        out["copyright"] = spec.copyright
    out["item"] = [_item_json(item) for item in spec.items]
    return out


def questionnaire_full_url(spec: QuestionnaireSpec) -> str:
    return codes.urn("questionnaire", spec.key, spec.version)
