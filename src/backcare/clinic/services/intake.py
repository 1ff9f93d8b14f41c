"""The online intake (anamnesis): the form as data, drafts, submission and the therapist's review.

The questions live in `knowledge/intake_form.toml`. `Intake.answers` keeps the form exactly as it was filled in, keyed
by field name, with values as typed (strings, or lists of codes for tick boxes), so a half-finished or mistyped
form is never lost. On submission the answers are checked, turned into a contract intake document and screened.

Field names:
  pain_regions (list), pain_intensity, pain_duration_weeks, pain_first_episode (yes/no), pain_onset,
  pain_medically_assessed (yes/no), goals (list), goals_text, pregnant (yes/no), pregnancy_weeks,
  f_<finding> (yes/no), f_<finding>_regions (list), f_<finding>_weeks, sb_1 .. sb_8 (agree/disagree),
  sb_9 (bothersomeness code), notes.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backcare.clinic import audit
from backcare.clinic.models import Client, Intake, Outcome, Screening, StaffMember
from backcare.clinic.services.outcomes import record_start_back
from backcare.clinic.services.screening import run_screening
from backcare.clinical.instruments import BOTHERSOMENESS, START_BACK_COPYRIGHT, START_BACK_ITEMS
from backcare.clinical.vocabulary import FINDINGS, GOALS, ONSETS, REGIONS
from backcare.common.rowlock import locked

YES, NO = "yes", "no"
AGREE, DISAGREE = "agree", "disagree"
MAX_TEXT = 2000


# --- The form as data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    finding: str
    text: str
    topic: str
    help: str = ""
    region: str = ""  # "", "required" or "optional"
    weeks_ago: bool = False
    therapist_only: bool = False
    only_if: str = ""

    @property
    def name(self) -> str:
        return f"f_{self.finding}"

    @property
    def regions_name(self) -> str:
        return f"f_{self.finding}_regions"

    @property
    def weeks_name(self) -> str:
        return f"f_{self.finding}_weeks"


@dataclass(frozen=True)
class Topic:
    key: str
    title: str
    intro: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class FormSpec:
    version: str
    title: str
    intro: str
    texts: dict[str, Any]
    topics: tuple[Topic, ...]

    @property
    def questions(self) -> tuple[Question, ...]:
        return tuple(q for t in self.topics for q in t.questions)

    def question(self, finding: str) -> Question:
        return next(q for q in self.questions if q.finding == finding)


class FormError(ValueError):
    """The intake form data file is broken."""


def parse_form(data: dict[str, Any]) -> FormSpec:
    """Build the form from the TOML data, refusing unknown codes, duplicates and missing findings."""
    topics: list[Topic] = []
    seen: list[str] = []
    for t in data.get("topics", []):
        questions = []
        for q in t.get("questions", []):
            unknown = set(q) - {"finding", "text", "help", "region", "weeks_ago", "therapist_only", "only_if"}
            if unknown:
                raise FormError(f"question {q.get('finding')!r}: unknown keys {sorted(unknown)}")
            if q["finding"] not in FINDINGS:
                raise FormError(f"unknown finding code {q['finding']!r}")
            if q.get("region", "") not in ("", "required", "optional"):
                raise FormError(f"{q['finding']}: region must be 'required' or 'optional'")
            if q.get("only_if", "") not in ("", "pregnant"):
                raise FormError(f"{q['finding']}: only_if must be 'pregnant'")
            seen.append(q["finding"])
            questions.append(
                Question(
                    finding=q["finding"],
                    text=q["text"].strip(),
                    topic=t["key"],
                    help=q.get("help", "").strip(),
                    region=q.get("region", ""),
                    weeks_ago=bool(q.get("weeks_ago", False)),
                    therapist_only=bool(q.get("therapist_only", False)),
                    only_if=q.get("only_if", ""),
                )
            )
        topics.append(Topic(t["key"], t["title"], t.get("intro", "").strip(), tuple(questions)))
    duplicates = sorted({c for c in seen if seen.count(c) > 1})
    if duplicates:
        raise FormError(f"findings asked more than once: {', '.join(duplicates)}")
    missing = [c for c in FINDINGS if c not in seen]
    if missing:
        raise FormError(f"findings never asked: {', '.join(missing)}")
    onsets = data["pain"]["onsets"]
    if set(onsets) != set(ONSETS):
        raise FormError("pain.onsets must name every onset of the contract")
    texts = {k: v for k, v in data.items() if k not in ("version", "title", "intro", "topics")}
    return FormSpec(str(data["version"]), data["title"], data.get("intro", "").strip(), texts, tuple(topics))


@cache
def intake_form() -> FormSpec:
    raw = (resources.files("backcare.clinic") / "knowledge" / "intake_form.toml").read_text(encoding="utf-8")
    return parse_form(tomllib.loads(raw))


def start_back_enabled(client: Client) -> bool:
    """STarT Back is asked only when the installation and the clinic both allow it, and never of a client under 16
    (the tool is validated for adults with back pain)."""
    if client.date_of_birth is not None and client.age_on() < 16:
        return False
    return bool(settings.BACKCARE.get("START_BACK", True)) and bool(client.clinic.start_back_enabled)


def asks_pregnancy(client: Client) -> bool:
    return client.sex != "male"


@dataclass(frozen=True)
class Context:
    """What the form asks for this client and this person filling it in."""

    therapist: bool
    start_back: bool
    pregnancy: bool

    @classmethod
    def for_client(cls, client: Client, *, therapist: bool = False) -> Context:
        return cls(therapist=therapist, start_back=start_back_enabled(client), pregnancy=asks_pregnancy(client))


def asked(question: Question, ctx: Context) -> bool:
    if question.therapist_only and not ctx.therapist:
        return False
    # The pregnancy topic (pregnancy, a recent birth) is asked only of a client who may be pregnant.
    return not ((question.only_if == "pregnant" or question.topic == "pregnancy") and not ctx.pregnancy)


LIST_FIELDS = ("pain_regions", "goals")
TEXT_FIELDS = (
    "pain_intensity",
    "pain_duration_weeks",
    "pain_first_episode",
    "pain_onset",
    "pain_medically_assessed",
    "goals_text",
    "pregnant",
    "pregnancy_weeks",
    "notes",
)


def field_names(ctx: Context) -> tuple[list[str], list[str]]:
    """(text fields, list fields) of the form for this context."""
    texts = list(TEXT_FIELDS)
    lists = list(LIST_FIELDS)
    for q in intake_form().questions:
        if not asked(q, ctx):
            continue
        texts.append(q.name)
        if q.region:
            lists.append(q.regions_name)
        if q.weeks_ago:
            texts.append(q.weeks_name)
    if ctx.start_back:
        texts.extend(f"sb_{i}" for i in range(1, 10))
    return texts, lists


def answers_from_post(data: Any, ctx: Context) -> dict[str, Any]:
    """Every field of the form from a POST (a QueryDict or a plain dict), as typed; unknown names are dropped."""
    texts, lists = field_names(ctx)
    answers: dict[str, Any] = {}
    for name in texts:
        value = data.get(name, "")
        answers[name] = str(value if value is not None else "").strip()[:MAX_TEXT]
    for name in lists:
        values = data.getlist(name) if hasattr(data, "getlist") else data.get(name, [])
        if isinstance(values, str):
            values = [values]
        answers[name] = [str(v) for v in values][:50]
    return answers


# --- Checking answers and building the contract document --------------------------------------------------------


def _number(value: Any, *, whole: bool) -> float | int | None:
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if whole:
        return int(number) if number == int(number) else None
    return int(number) if number == int(number) else number


def _short(text: str) -> str:
    return f"“{text}”"


def check_answers(answers: dict[str, Any], ctx: Context) -> dict[str, str]:
    """Each missing or impossible answer, by field name, with a message naming its question."""
    form = intake_form()
    pain = form.texts["pain"]
    errors: dict[str, str] = {}

    def yes_no(name: str, question: str) -> None:
        if answers.get(name) not in (YES, NO):
            errors[name] = f"Please answer {_short(question)}"

    regions = [r for r in answers.get("pain_regions", []) if r in REGIONS]
    if not regions:
        errors["pain_regions"] = f"Please answer {_short(pain['regions'])}"
    intensity = _number(answers.get("pain_intensity", ""), whole=True)
    if answers.get("pain_intensity", "") == "":
        errors["pain_intensity"] = f"Please answer {_short(pain['intensity'])}"
    elif intensity is None or not 0 <= intensity <= 10:
        errors["pain_intensity"] = f"Give a whole number from 0 to 10 for {_short(pain['intensity'])}"
    weeks = _number(answers.get("pain_duration_weeks", ""), whole=False)
    if answers.get("pain_duration_weeks", "") == "":
        errors["pain_duration_weeks"] = f"Please answer {_short(pain['duration_weeks'])}"
    elif weeks is None or not 0 <= weeks <= 5200:
        errors["pain_duration_weeks"] = f"Give a number of weeks (0 to 5200) for {_short(pain['duration_weeks'])}"
    yes_no("pain_first_episode", pain["first_episode"])
    if answers.get("pain_onset") not in ONSETS:
        errors["pain_onset"] = f"Please answer {_short(pain['onset'])}"
    yes_no("pain_medically_assessed", pain["medically_assessed"])
    bad_goals = [g for g in answers.get("goals", []) if g not in GOALS]
    if bad_goals:
        errors["goals"] = "Choose goals from the list."

    pregnant = False
    if ctx.pregnancy:
        texts = form.texts["pregnancy"]
        yes_no("pregnant", texts["pregnant"])
        pregnant = answers.get("pregnant") == YES
        if pregnant:
            week = _number(answers.get("pregnancy_weeks", ""), whole=True)
            if answers.get("pregnancy_weeks", "") == "":
                errors["pregnancy_weeks"] = f"Please answer {_short(texts['weeks'])}"
            elif week is None or not 0 <= week <= 45:
                errors["pregnancy_weeks"] = f"Give a whole number of weeks (0 to 45) for {_short(texts['weeks'])}"

    for q in form.questions:
        if not asked(q, ctx) or (q.only_if == "pregnant" and not pregnant):
            continue
        yes_no(q.name, q.text)
        if answers.get(q.name) != YES:
            continue
        chosen = [r for r in answers.get(q.regions_name, []) if r in REGIONS]
        if q.region == "required" and not chosen:
            errors[q.regions_name] = f"Tick where, for {_short(q.text)}"
        if q.weeks_ago:
            ago = _number(answers.get(q.weeks_name, ""), whole=False)
            if answers.get(q.weeks_name, "") == "":
                errors[q.weeks_name] = f"Say how many weeks ago, for {_short(q.text)}"
            elif ago is None or not 0 <= ago <= 5200:
                errors[q.weeks_name] = f"Give a number of weeks for {_short(q.text)}"

    if ctx.start_back:
        for i, item in enumerate(START_BACK_ITEMS[:8], start=1):
            if answers.get(f"sb_{i}") not in (AGREE, DISAGREE):
                errors[f"sb_{i}"] = f"Please answer {_short(item)}"
        if answers.get("sb_9") not in BOTHERSOMENESS:
            errors["sb_9"] = f"Please answer {_short(START_BACK_ITEMS[8])}"
    return errors


def start_back_answers(answers: dict[str, Any]) -> dict[str, Any] | None:
    agree = [answers.get(f"sb_{i}") for i in range(1, 9)]
    if any(a not in (AGREE, DISAGREE) for a in agree) or answers.get("sb_9") not in BOTHERSOMENESS:
        return None
    return {"agree": [a == AGREE for a in agree], "bothersomeness": answers["sb_9"]}


def build_document(client: Client, answers: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The contract intake document for complete, checked answers."""
    form = intake_form()
    chosen = set(answers.get("pain_regions", []))
    pregnant = ctx.pregnancy and answers.get("pregnant") == YES
    findings: list[dict[str, Any]] = []
    for q in form.questions:
        if not asked(q, ctx) or (q.only_if == "pregnant" and not pregnant) or answers.get(q.name) != YES:
            continue
        base: dict[str, Any] = {"code": q.finding}
        if q.weeks_ago:
            base["weeks_ago"] = _number(answers.get(q.weeks_name), whole=False)
        where = [r for r in REGIONS if r in set(answers.get(q.regions_name, []))] if q.region else []
        findings.extend([{**base, "region": r} for r in where] if where else [base])
    document: dict[str, Any] = {
        "schema_version": "1",
        "id": f"client-{client.pk}",
        "age": client.age_on(),
        "sex": client.sex,
        "pain": {
            "regions": [r for r in REGIONS if r in chosen],
            "intensity": _number(answers["pain_intensity"], whole=True),
            "duration_weeks": _number(answers["pain_duration_weeks"], whole=False),
            "first_episode": answers["pain_first_episode"] == YES,
            "onset": answers["pain_onset"],
            "medically_assessed": answers["pain_medically_assessed"] == YES,
        },
        "findings": findings,
        "pregnancy_weeks": _number(answers["pregnancy_weeks"], whole=True) if pregnant else None,
        "goals": [g for g in GOALS if g in set(answers.get("goals", []))],
    }
    if ctx.start_back:
        sb = start_back_answers(answers)
        if sb is not None:
            document["start_back"] = sb
    return document


# --- Drafts, submission, review ---------------------------------------------------------------------------------


def current_intake(client: Client) -> Intake | None:
    return client.intakes.order_by("-started_at", "-id").first()


def _clean(answers: dict[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    for key, value in answers.items():
        if isinstance(value, list):
            cleaned[str(key)] = [str(v)[:100] for v in value][:50]
        elif value is None:
            cleaned[str(key)] = ""
        else:
            cleaned[str(key)] = str(value)[:MAX_TEXT]
    return cleaned


@transaction.atomic
def save_draft(client: Client, answers: dict[str, Any], *, by: Any = None, request: Any = None) -> Intake:
    """Keep a half-finished form. Every save replaces the draft's answers; nothing is checked yet."""
    locked(Client.objects.filter(pk=client.pk)).first()
    intake = current_intake(client)
    if intake is not None and intake.status != Intake.Status.DRAFT:
        raise ValidationError("These health questions have already been sent and can no longer be changed online.")
    now = timezone.now()
    if intake is None:
        intake = Intake.objects.create(client=client, answers=_clean(answers), started_at=now, updated_at=now)
        action = "start_intake"
    else:
        intake.answers = {**intake.answers, **_clean(answers)}
        intake.updated_at = now
        intake.save(update_fields=["answers", "updated_at"])
        action = "save_intake"
    audit.record(by if by is not None else client.user, action, client=client, obj=intake, request=request)
    return intake


def _record_start_back(intake: Intake, document: dict[str, Any], by: Any, request: Any) -> None:
    sb = document.get("start_back")
    if sb is None:
        return
    earlier = Outcome.objects.filter(
        client=intake.client, instrument=Outcome.Instrument.START_BACK, recorded_at__gte=intake.started_at
    ).order_by("-recorded_at", "-id")
    last = earlier.first()
    if (
        last is not None
        and last.answers.get("agree") == sb["agree"]
        and (last.answers.get("bothersomeness") == sb["bothersomeness"])
    ):
        return
    record_start_back(intake.client, answers=sb, by=by, request=request)


def lock_intake(pk: int) -> Intake:
    """The intake, locked with its client for sending or reviewing it (`save_draft` waits on the client's row); the
    clinic's row is not locked, so the clinic's bookings go on while the screening runs."""
    return locked(Intake.objects.select_related("client", "client__clinic"), "client").get(pk=pk)


@transaction.atomic
def submit(intake: Intake, *, by: Any = None, request: Any = None) -> Screening:
    """Check every answer, build the contract document, screen it and record STarT Back.

    Raises ValidationError naming each missing answer by its question (keyed by field name)."""
    intake = lock_intake(intake.pk)
    if intake.status != Intake.Status.DRAFT:
        raise ValidationError("These health questions have already been sent.")
    client = intake.client
    ctx = Context.for_client(client)
    errors = check_answers(intake.answers, ctx)
    if errors:
        raise ValidationError(errors)
    document = build_document(client, intake.answers, ctx)
    by = by if by is not None else client.user
    screening = run_screening(client, document, kind="intake", intake=intake, by=by, request=request)
    intake.document = document
    intake.status = Intake.Status.SUBMITTED
    intake.submitted_at = timezone.now()
    intake.updated_at = intake.submitted_at
    intake.save(update_fields=["document", "status", "submitted_at", "updated_at"])
    _record_start_back(intake, document, by, request)
    audit.record(by, "submit_intake", client=client, obj=intake, detail={"screening": screening.pk}, request=request)
    return screening


@transaction.atomic
def review(
    intake: Intake | None,
    staff: StaffMember,
    answers: dict[str, Any],
    note: str = "",
    *,
    client: Client | None = None,
    request: Any = None,
    assessment: Any = None,
) -> Screening:
    """The therapist goes through the intake with the client: changes any answer, answers the therapist-only
    questions, re-screens (kind "review") and marks the intake reviewed. With no intake yet (a client without portal
    access), `client` is given and the intake is created from the therapist's answers."""
    if intake is None:
        if client is None:
            raise ValueError("review needs an intake or a client")
        intake = current_intake(client) or Intake.objects.create(client=client)
    intake = lock_intake(intake.pk)
    client = intake.client
    if client.clinic_id != staff.clinic_id or staff.role not in ("owner", "therapist"):
        raise ValidationError("Only a therapist or the owner of this clinic can review an intake.")
    ctx = Context.for_client(client, therapist=True)
    merged = {**intake.answers, **_clean(answers)}
    errors = check_answers(merged, ctx)
    if errors:
        raise ValidationError(errors)
    changed = sorted(k for k in merged if intake.answers.get(k) != merged[k] and (intake.answers.get(k) or merged[k]))
    document = build_document(client, merged, ctx)
    # Unticking a red flag the client reported needs a medical assessment on record (services.assessments).
    screening = run_screening(
        client, document, kind="review", intake=intake, by=staff.user, request=request, assessment=assessment
    )
    now = timezone.now()
    intake.answers = merged
    intake.document = document
    if intake.submitted_at is None:
        intake.submitted_at = now
    intake.status = Intake.Status.REVIEWED
    intake.reviewed_by = staff
    intake.reviewed_at = now
    intake.review_note = (note or "").strip()[:MAX_TEXT]
    intake.updated_at = now
    intake.save()
    _record_start_back(intake, document, staff.user, request)
    audit.record(
        staff.user,
        "review_intake",
        client=client,
        obj=intake,
        detail={"changed": changed, "screening": screening.pk, "decision": screening.decision},
        request=request,
    )
    return screening


# --- The form laid out for a page --------------------------------------------------------------------------------


@dataclass
class Item:
    """One question on the page, with its current value and message."""

    kind: str  # yesno, agree, choice, number, nrs, regions, goals, text
    name: str
    label: str
    value: Any = ""
    error: str = ""
    help: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    region: Item | None = None
    weeks: Item | None = None
    required_region: bool = False
    therapist_only: bool = False
    only_if: str = ""


@dataclass
class Section:
    key: str
    title: str
    intro: str = ""
    items: list[Item] = field(default_factory=list)
    notice: str = ""


def beside(message: str) -> str:
    """The message shown next to its field: the list at the top names the question, here it is plain."""
    if message.startswith("Please answer “"):
        return "Please answer this question."
    for joint in (", for “", " for “"):
        if joint in message:
            return message.split(joint, 1)[0] + "."
    return message


def layout(answers: dict[str, Any], errors: dict[str, str], ctx: Context) -> list[Section]:
    """The form's sections for a template, filled with the answers as typed and each field's message."""
    form = intake_form()
    t = form.texts
    pain = t["pain"]

    def item(kind: str, name: str, label: str, **kw: Any) -> Item:
        default: Any = [] if kind in ("regions", "goals") else ""
        return Item(kind, name, label, value=answers.get(name, default), error=beside(errors.get(name, "")), **kw)

    yes_no = [(YES, "Yes"), (NO, "No")]
    sections = [
        Section(
            "pain",
            pain["legend"],
            items=[
                item("regions", "pain_regions", pain["regions"]),
                item("nrs", "pain_intensity", pain["intensity"], options=[(str(i), str(i)) for i in range(11)]),
                item("number", "pain_duration_weeks", pain["duration_weeks"], help=pain.get("duration_help", "")),
                item("yesno", "pain_first_episode", pain["first_episode"], options=yes_no),
                item("choice", "pain_onset", pain["onset"], options=[(o, pain["onsets"][o]) for o in ONSETS]),
                item("yesno", "pain_medically_assessed", pain["medically_assessed"], options=yes_no),
            ],
        ),
        Section(
            "goals",
            t["goals"]["legend"],
            items=[
                item("goals", "goals", t["goals"]["question"], options=list(GOALS.items())),
                item("text", "goals_text", t["goals"]["free_text"]),
            ],
        ),
    ]
    region_options = list(REGIONS.items())
    for topic in form.topics:
        if topic.key == "pregnancy" and not ctx.pregnancy:
            continue
        section = Section(topic.key, topic.title, topic.intro)
        if topic.key == "pregnancy":
            section.items.append(item("yesno", "pregnant", t["pregnancy"]["pregnant"], options=yes_no))
            section.items.append(item("number", "pregnancy_weeks", t["pregnancy"]["weeks"], only_if="pregnant"))
        for q in topic.questions:
            if not asked(q, ctx):
                continue
            entry = item(
                "yesno",
                q.name,
                q.text,
                help=q.help,
                options=yes_no,
                therapist_only=q.therapist_only,
                only_if=q.only_if,
            )
            if q.region:
                entry.region = item("regions", q.regions_name, "Where?", options=region_options)
                entry.required_region = q.region == "required"
            if q.weeks_ago:
                entry.weeks = item("number", q.weeks_name, "How many weeks ago?")
            section.items.append(entry)
        if section.items:
            sections.append(section)
    if ctx.start_back:
        sb = Section("start_back", t["start_back"]["legend"], t["start_back"]["intro"], notice=START_BACK_COPYRIGHT)
        for i, text in enumerate(START_BACK_ITEMS[:8], start=1):
            sb.items.append(item("agree", f"sb_{i}", text, options=[(AGREE, "Agree"), (DISAGREE, "Disagree")]))
        sb.items.append(item("choice", "sb_9", START_BACK_ITEMS[8], options=list(BOTHERSOMENESS.items())))
        sections.append(sb)
    sections.append(Section("notes", "Anything else", items=[item("text", "notes", t["notes"]["question"])]))
    return sections


def ordered_errors(sections: list[Section], errors: dict[str, str]) -> list[tuple[str, str]]:
    """The messages in the order the fields appear on the page, for the list at the top."""
    ordered: list[tuple[str, str]] = []
    for section in sections:
        for it in section.items:
            for sub in (it, it.region, it.weeks):
                if sub is not None and sub.name in errors:
                    ordered.append((sub.name, errors[sub.name]))
    known = {name for name, _ in ordered}
    ordered.extend((name, msg) for name, msg in errors.items() if name not in known)
    return ordered


__all__ = [
    "Context",
    "FormError",
    "FormSpec",
    "Item",
    "Question",
    "Section",
    "answers_from_post",
    "asks_pregnancy",
    "build_document",
    "check_answers",
    "current_intake",
    "intake_form",
    "layout",
    "ordered_errors",
    "parse_form",
    "review",
    "save_draft",
    "start_back_enabled",
    "submit",
]
