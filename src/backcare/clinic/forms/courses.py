"""Forms for treatment courses, the pre-session health update, session notes and the Roland-Morris questionnaire.

Every message names the field it is about, so a receptionist-level reader knows what to fix; the services repeat
every check, so these forms only make the first pass friendly.
"""

from __future__ import annotations

from typing import Any

from django import forms

from backcare.clinic.forms.clients import AssessmentForm
from backcare.clinic.models import Course, TreatmentSession
from backcare.clinic.services.courses import DEFAULT_HOME_PROGRAMME
from backcare.clinic.services.sessions import SessionNote
from backcare.clinical.instruments import RMDQ_ITEMS
from backcare.clinical.vocabulary import ADJUNCTS, FINDINGS, LEAST_PRESSURE, PRESSURE_SCALE, REGIONS, TECHNIQUES

HOME_PROGRAMME_LABELS: dict[str, str] = {
    "exercise": "Exercise",
    "posture": "Posture",
    "relaxation": "Relaxation and breathing",
    "self_massage": "Self-massage",
}
HOME_PROGRAMME_SECTIONS: list[str] = list(DEFAULT_HOME_PROGRAMME)


def whole_number(label: str, low: int, high: int, *, required: bool = True, **kwargs: Any) -> forms.IntegerField:
    """An integer field whose every message names the field, e.g. 'Pain before the session must be ...'."""
    message = f"{label} must be a whole number from {low} to {high}."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        required=required,
        error_messages={
            "required": f"Enter {label[0].lower() + label[1:]} ({low} to {high}).",
            "invalid": message,
            "min_value": message,
            "max_value": message,
        },
        widget=forms.NumberInput(attrs={"min": low, "max": high, "step": 1, "inputmode": "numeric"}),
        **kwargs,
    )


def avoid_reason(technique: str, precautions: dict[str, Any]) -> str:
    """Why the screening excludes a technique, in words."""
    limit = precautions.get("max_pressure")
    least = LEAST_PRESSURE.get(technique)
    if limit is not None and least is not None and least > limit:
        return (
            f"needs at least pressure {least} ({PRESSURE_SCALE[least]}); "
            f"the most allowed is {limit} ({PRESSURE_SCALE[limit]})"
        )
    return "excluded by the screening's findings (see the precautions)"


def _home_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": f"{label} is too long (at most %(limit_value)d characters)."},
    )


class CourseForm(forms.Form):
    """The course plan: techniques, course shape, goals, adjuncts and the home programme."""

    techniques = forms.MultipleChoiceField(
        label="Techniques",
        choices=list(TECHNIQUES.items()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": "Techniques: choose at least one technique.",
            "invalid_choice": "Techniques: %(value)s is not a technique on the list.",
        },
    )
    sessions_planned = whole_number("Number of sessions", 1, 20)
    weeks = whole_number("Weeks", 1, 52)
    reassess_after = whole_number("Reassess after session", 1, 20)
    goals = forms.CharField(
        label="Goals",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"max_length": "Goals are too long (at most %(limit_value)d characters)."},
    )
    adjuncts = forms.MultipleChoiceField(
        label="Alongside massage",
        choices=list(ADJUNCTS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Alongside massage: %(value)s is not on the list."},
    )

    def __init__(self, *args: Any, precautions: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.precautions = precautions or {}
        for key in HOME_PROGRAMME_SECTIONS:
            self.fields[f"home_{key}"] = _home_field(
                f"Home programme: {HOME_PROGRAMME_LABELS.get(key, key.replace('_', ' '))}"
            )

    def clean_techniques(self) -> list[str]:
        chosen: list[str] = self.cleaned_data["techniques"]
        avoided = [TECHNIQUES[t] for t in chosen if t in self.precautions.get("avoid_techniques", [])]
        if avoided:
            raise forms.ValidationError(f"Techniques: the screening excludes {', '.join(avoided)} for this client.")
        return chosen

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        sessions, reassess = data.get("sessions_planned"), data.get("reassess_after")
        if sessions is not None and reassess is not None and reassess > sessions:
            self.add_error(
                "reassess_after", f"Reassess after session must be between 1 and the number of sessions ({sessions})."
            )
        return data

    def home_sections(self) -> list[Any]:
        return [self[f"home_{key}"] for key in HOME_PROGRAMME_SECTIONS]

    def technique_options(self) -> list[dict[str, Any]]:
        """Each technique with whether it is ticked and, when the screening excludes it, why."""
        value = self["techniques"].value() or []
        avoid = set(self.precautions.get("avoid_techniques", []))
        return [
            {
                "code": code,
                "name": name,
                "checked": code in value,
                "avoid": code in avoid,
                "reason": avoid_reason(code, self.precautions),
            }
            for code, name in TECHNIQUES.items()
        ]

    def changes(self) -> dict[str, Any]:
        """The cleaned values, named as services.courses expects them."""
        data = self.cleaned_data
        return {
            "techniques": data["techniques"],
            "sessions_planned": data["sessions_planned"],
            "weeks": data["weeks"],
            "reassess_after": data["reassess_after"],
            "goals": data["goals"],
            "adjuncts": data["adjuncts"],
            "home_programme": {key: data[f"home_{key}"] for key in HOME_PROGRAMME_SECTIONS},
        }


def course_initial_from_plan(plan: dict[str, Any], goals: str = "") -> dict[str, Any]:
    initial: dict[str, Any] = {
        "techniques": list(plan.get("techniques", [])),
        "sessions_planned": plan.get("sessions"),
        "weeks": plan.get("weeks"),
        "reassess_after": plan.get("reassess_after_session"),
        "goals": goals,
        "adjuncts": list(plan.get("adjuncts", [])),
    }
    for key, text in DEFAULT_HOME_PROGRAMME.items():
        initial[f"home_{key}"] = text
    return initial


def course_initial_from_course(course: Course) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "techniques": list(course.techniques),
        "sessions_planned": course.sessions_planned,
        "weeks": course.weeks,
        "reassess_after": course.reassess_after,
        "goals": course.goals,
        "adjuncts": list(course.adjuncts),
    }
    for key in HOME_PROGRAMME_SECTIONS:
        initial[f"home_{key}"] = (course.home_programme or {}).get(key, "")
    return initial


class CourseEndForm(forms.Form):
    status = forms.ChoiceField(
        label="How did the course end?",
        choices=[
            (Course.Status.COMPLETED, "Completed"),
            (Course.Status.REFERRED, "Referred to a physician or another professional"),
            (Course.Status.STOPPED, "Stopped early"),
        ],
        widget=forms.RadioSelect,
        error_messages={
            "required": "How did the course end: choose completed, referred or stopped.",
            "invalid_choice": "How did the course end: choose completed, referred or stopped.",
        },
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"max_length": "Note is too long (at most %(limit_value)d characters)."},
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("status") in (Course.Status.REFERRED, Course.Status.STOPPED) and not data.get("note", "").strip():
            self.add_error("note", "Note: say why the course was referred or stopped.")
        return data


class RmdqForm(forms.Form):
    """The 24 Roland-Morris statements; the client ticks those that describe them today."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for number, text in enumerate(RMDQ_ITEMS, start=1):
            self.fields[f"item_{number}"] = forms.BooleanField(label=text, required=False)

    def ticked(self) -> list[bool]:
        return [bool(self.cleaned_data.get(f"item_{n}")) for n in range(1, len(RMDQ_ITEMS) + 1)]


# --- The pre-session health update -------------------------------------------------------------------------

FINDING_GROUPS: list[tuple[str, list[str]]] = [
    (
        "Nerves, bladder and bowel",
        [
            "saddle_anaesthesia",
            "bladder_dysfunction",
            "bowel_incontinence",
            "sexual_dysfunction_new",
            "bilateral_sciatica",
            "leg_weakness_progressive",
            "gait_disturbance",
            "sciatica",
            "reduced_sensation",
        ],
    ),
    (
        "Illness, infection and cancer",
        [
            "fever",
            "systemically_unwell",
            "acute_illness",
            "recent_infection",
            "immunosuppression",
            "iv_drug_use",
            "cancer_active",
            "cancer_history",
            "unexplained_weight_loss",
            "night_pain",
            "thoracic_pain",
            "corticosteroids_long_term",
        ],
    ),
    (
        "Injuries, bones and joints",
        [
            "major_trauma",
            "minor_trauma",
            "osteoporosis",
            "osteoporosis_severe",
            "fracture_recent",
            "herniated_disc",
            "spinal_surgery_history",
            "joint_replacement",
            "arthritis_flare",
            "arthritis",
            "enthesitis",
            "psoriasis",
            "morning_stiffness",
            "night_waking_second_half",
            "buttock_pain_alternating",
            "better_with_movement",
            "nsaid_response",
            "family_spondyloarthritis",
        ],
    ),
    (
        "Blood, veins, heart and blood pressure",
        [
            "dvt_suspected",
            "dvt_history",
            "phlebitis",
            "varicose_veins_severe",
            "anticoagulants",
            "bleeding_disorder",
            "hypertension",
            "hypertension_uncontrolled",
            "heart_or_kidney_failure",
        ],
    ),
    (
        "Skin, operations and devices",
        [
            "open_wound",
            "burn",
            "bruise",
            "local_inflammation",
            "contagious_skin_condition",
            "recent_scar",
            "recent_surgery",
            "implanted_device",
        ],
    ),
    ("Other", ["pregnancy_complicated", "fibromyalgia", "impaired_consent"]),
]
# Anything the vocabulary gains later still appears, under "Other".
_grouped = {code for _, codes in FINDING_GROUPS for code in codes}
FINDING_GROUPS = [(title, [c for c in codes if c in FINDINGS]) for title, codes in FINDING_GROUPS]
FINDING_GROUPS[-1][1].extend(code for code in FINDINGS if code not in _grouped)


def finding_words(code: str) -> str:
    """A finding in words, without the intake's instruction "(give the region)"."""
    text = FINDINGS.get(code, code)
    return text.split(" (give")[0]


REGIONAL_FINDINGS: list[str] = [code for code, text in FINDINGS.items() if "region" in text.lower()]
"""Findings whose description asks for the region (wounds, bruises, recent surgery...)."""
WEEKS_AGO_FINDINGS: list[str] = [c for c in ("recent_surgery", "fracture_recent", "recent_scar") if c in FINDINGS]


def _finding_key(finding: dict[str, Any]) -> str:
    code: str = finding["code"]
    return code + (f"@{finding['region']}" if finding.get("region") else "")


class HealthUpdateForm(AssessmentForm):
    anything_new = forms.ChoiceField(
        label="Anything new since last time?",
        choices=[("no", "Nothing new"), ("yes", "Yes, something is new")],
        widget=forms.RadioSelect,
        error_messages={
            "required": "Anything new since last time: choose Nothing new, or Yes and tick what is new.",
            "invalid_choice": "Anything new since last time: choose Nothing new, or Yes and tick what is new.",
        },
    )
    findings = forms.MultipleChoiceField(
        label="What is new",
        choices=list(FINDINGS.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "What is new: %(value)s is not on the list."},
    )
    pain_now = whole_number("Pain now", 0, 10)

    def __init__(self, *args: Any, known: list[dict[str, Any]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.known = {_finding_key(f): f for f in known or []}
        self.fields["resolved"] = forms.MultipleChoiceField(
            label="No longer applies",
            choices=[
                (key, finding_words(f["code"]) + (f" ({REGIONS[f['region']]})" if f.get("region") in REGIONS else ""))
                for key, f in self.known.items()
            ],
            required=False,
            widget=forms.CheckboxSelectMultiple,
            error_messages={"invalid_choice": "No longer applies: that finding is not on the client's record."},
        )
        for code in REGIONAL_FINDINGS:
            self.fields[f"region_{code}"] = forms.MultipleChoiceField(
                label="Where (choose the regions)",
                help_text="Leave empty if it is widespread or you do not know where; a wider area is then avoided.",
                choices=list(REGIONS.items()),
                required=False,
                widget=forms.SelectMultiple(attrs={"size": 4}),
                error_messages={"invalid_choice": "Where: %(value)s is not a body region on the list."},
            )
        for code in WEEKS_AGO_FINDINGS:
            self.fields[f"weeks_{code}"] = whole_number("How many weeks ago", 0, 520)
            self.fields[f"weeks_{code}"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        findings = data.get("findings") or []
        if data.get("anything_new") == "yes" and not findings and "findings" not in self.errors:
            self.add_error("findings", "What is new: tick at least one, or choose Nothing new.")
        if data.get("anything_new") == "no" and findings:
            self.add_error(
                "anything_new", "Anything new since last time: you ticked something new, so choose Yes (or untick it)."
            )
        for code in REGIONAL_FINDINGS:
            if data.get(f"region_{code}") and code not in findings:
                self.add_error(f"region_{code}", f"Where: you chose a region but did not tick “{finding_words(code)}”.")
        for code in WEEKS_AGO_FINDINGS:
            if data.get(f"weeks_{code}") is not None and code not in findings:
                self.add_error(
                    f"weeks_{code}", f"How many weeks ago: you gave weeks but did not tick “{finding_words(code)}”."
                )
        return data

    def groups(self) -> list[dict[str, Any]]:
        value = set(self["findings"].value() or [])
        groups = []
        for index, (title, codes) in enumerate(FINDING_GROUPS):
            items: list[dict[str, Any]] = [
                {
                    "code": code,
                    "text": finding_words(code),
                    "checked": code in value,
                    "region": self[f"region_{code}"] if code in REGIONAL_FINDINGS else None,
                    "weeks": self[f"weeks_{code}"] if code in WEEKS_AGO_FINDINGS else None,
                }
                for code in codes
            ]
            has_error = any(
                (item["region"] is not None and item["region"].errors)
                or (item["weeks"] is not None and item["weeks"].errors)
                for item in items
            )
            # The red flags (first two groups) are always open; others open when something in them is ticked.
            is_open = index < 2 or has_error or any(item["checked"] for item in items)
            groups.append({"title": title, "items": items, "open": is_open})
        return groups

    def resolved(self) -> list[dict[str, Any]]:
        """The recorded findings the therapist marked as no longer applying."""
        return [
            {k: v for k, v in self.known[key].items() if k in ("code", "region")}
            for key in self.cleaned_data.get("resolved") or []
        ]

    def new_findings(self) -> list[dict[str, Any]]:
        """Contract findings: one per region where regions are given, with weeks_ago where asked."""
        if self.cleaned_data.get("anything_new") != "yes":
            return []
        out: list[dict[str, Any]] = []
        for code in self.cleaned_data.get("findings") or []:
            extra: dict[str, Any] = {}
            weeks = self.cleaned_data.get(f"weeks_{code}")
            if weeks is not None:
                extra["weeks_ago"] = weeks
            regions = self.cleaned_data.get(f"region_{code}") or []
            if regions:
                out.extend({"code": code, "region": region, **extra} for region in regions)
            else:
                out.append({"code": code, **extra})
        return out


# --- The session note -----------------------------------------------------------------------------------------


def _text(label: str, rows: int = 3, max_length: int = 8000) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=max_length,
        widget=forms.Textarea(attrs={"rows": rows}),
        error_messages={"max_length": f"{label} is too long (at most %(limit_value)d characters)."},
    )


class SessionForm(forms.Form):
    submission_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    copied_from = forms.IntegerField(widget=forms.HiddenInput, required=False)
    subjective = _text("Subjective (what the client reports)")
    objective = _text("Objective (what you observed and found)")
    assessment = _text("Assessment")
    plan_note = _text("Plan (next steps)")
    treated = forms.MultipleChoiceField(
        label="Regions treated",
        choices=list(REGIONS.items()),
        required=False,
        error_messages={"invalid_choice": "Regions treated: %(value)s is not a body region."},
    )
    techniques = forms.MultipleChoiceField(
        label="Techniques used",
        choices=list(TECHNIQUES.items()),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Techniques used: %(value)s is not a technique on the list."},
    )
    pressure = forms.TypedChoiceField(
        label="Pressure",
        choices=[("", "Choose…")] + [(str(n), f"{n}: {word}") for n, word in PRESSURE_SCALE.items()],
        coerce=int,
        empty_value=None,
        required=False,
        error_messages={"invalid_choice": "Pressure must be from 1 (light touch) to 5 (deep)."},
    )
    response = forms.ChoiceField(
        label="Client's response to the pressure",
        choices=TreatmentSession.Response.choices,
        required=False,
        widget=forms.RadioSelect,
        error_messages={"invalid_choice": "Client's response to the pressure: choose one of the answers."},
    )
    pain_before = whole_number("Pain before the session", 0, 10)
    pain_after = whole_number("Pain after the session", 0, 10, required=False)
    aftercare = _text("Aftercare advice given", rows=4)
    deviation_reason = _text("Reason for going beyond the precautions", rows=2)
    stopped = forms.BooleanField(label="Session stopped early", required=False)
    stop_reason = _text("Why the session was stopped", rows=2)
    stop_advice = _text("What the client was advised", rows=2)

    def __init__(
        self,
        *args: Any,
        precautions: dict[str, Any] | None = None,
        referrals: list[tuple[int, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.precautions = precautions or {}
        self.fields["stop_referral"] = forms.TypedChoiceField(
            label="Referral made",
            choices=[("", "No referral"), *((str(pk), label) for pk, label in referrals or [])],
            coerce=int,
            empty_value=None,
            required=False,
            help_text="Write the referral first (from the client's page) to choose it here.",
            error_messages={"invalid_choice": "Referral made: choose one of this client's referrals."},
        )
        for code, name in REGIONS.items():
            self.fields[f"tension_{code}"] = whole_number(f"Tension, {name.lower()}", 0, 3, required=False)
            self.fields[f"pain_{code}"] = whole_number(f"Pain, {name.lower()}", 0, 10, required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        stopped = data.get("stopped")
        if stopped and not (data.get("stop_reason") or "").strip():
            self.add_error("stop_reason", "Why the session was stopped: say why.")
        if not stopped:
            if not data.get("techniques") and "techniques" not in self.errors:
                self.add_error("techniques", "Techniques used: tick at least one.")
            if data.get("pressure") is None and "pressure" not in self.errors:
                self.add_error("pressure", "Pressure: choose the pressure used (1 to 5).")
            if not data.get("response") and "response" not in self.errors:
                self.add_error("response", "Client's response to the pressure: choose one.")
            if data.get("pain_after") is None and "pain_after" not in self.errors:
                self.add_error("pain_after", "Enter pain after the session (0 to 10), or tick Session stopped early.")
        return data

    def chart_rows(self) -> list[dict[str, Any]]:
        treated = set(self["treated"].value() or [])
        avoid = set(self.precautions.get("avoid_regions", []))
        return [
            {
                "code": code,
                "name": name,
                "tension": self[f"tension_{code}"],
                "pain": self[f"pain_{code}"],
                "treated": code in treated,
                "avoid": code in avoid,
            }
            for code, name in REGIONS.items()
        ]

    def technique_options(self) -> list[dict[str, Any]]:
        value = self["techniques"].value() or []
        avoid = set(self.precautions.get("avoid_techniques", []))
        return [
            {"code": code, "name": name, "checked": code in value, "avoid": code in avoid}
            for code, name in TECHNIQUES.items()
        ]

    def body_chart(self) -> dict[str, dict[str, Any]]:
        data = self.cleaned_data
        treated = set(data.get("treated") or [])
        chart: dict[str, dict[str, Any]] = {}
        for code in REGIONS:
            marks: dict[str, Any] = {}
            if code in treated:
                marks["treated"] = True
            for kind in ("tension", "pain"):
                value = data.get(f"{kind}_{code}")
                if value is not None:
                    marks[kind] = value
            if marks:
                chart[code] = {"treated": code in treated, **{k: v for k, v in marks.items() if k != "treated"}}
        return chart

    def note(self, previous: TreatmentSession | None = None) -> SessionNote:
        """The cleaned data as the service's SessionNote; `previous` is the session the form was copied from,
        kept only when the form says it was."""
        data = self.cleaned_data
        copied = previous if previous is not None and data.get("copied_from") == previous.pk else None
        return SessionNote(
            techniques=data.get("techniques") or [],
            pressure=data.get("pressure"),
            body_chart=self.body_chart(),
            pain_before=data.get("pain_before"),
            pain_after=data.get("pain_after"),
            response=data.get("response") or "",
            subjective=data.get("subjective", ""),
            objective=data.get("objective", ""),
            assessment=data.get("assessment", ""),
            plan_note=data.get("plan_note", ""),
            aftercare=data.get("aftercare", ""),
            deviation_reason=data.get("deviation_reason", ""),
            stopped=bool(data.get("stopped")),
            stop_reason=data.get("stop_reason", ""),
            stop_advice=data.get("stop_advice", ""),
            stop_referral=data.get("stop_referral"),
            submission_key=data.get("submission_key"),
            copied_from=copied,
        )


class AddendumForm(forms.Form):
    text = _text("Addendum", rows=4)
    reason = _text("Reason for the addendum", rows=2)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["text"].required = True
        self.fields["text"].error_messages["required"] = "Addendum: write what is added to the note."
        self.fields["reason"].required = True
        self.fields["reason"].error_messages["required"] = "Reason: say why the note needs the addendum."
