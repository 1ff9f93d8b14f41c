"""The demo clinic at chain scale: `build_scale_demo(clients=N)`, behind `backcare demo --scale --clients N`.

One clinic, "Backcare Demo Clinic", with 50 therapists, 20 rooms, N clients and 10 appointments per client over two
years (`backcare.scheduling.scale.build_scale` builds the calendar), and for every client the clinical record the
services would have made over those years: consent signed in the clinic, the intake, its screening by the real
clinical core (`backcare.clinical`), the STarT Back score, and, as the screening allows, a course with its sessions
(each on a pre-session health update, screened too), pain and Roland-Morris scores, the course's end, or a referral.
Every record has the audit event its service writes, sealed into the audit trail's hash chain
(`backcare.common.auditchain.seal`), so `backcare audit verify` passes. The demo logins owner, therapist1,
therapist2, frontdesk and client work with their usual demo passwords (therapist1 and therapist2 are two of the 50
therapists, each with a fiftieth of the clients; client is one of them with a course in progress).

Speed: rows are written straight to the tables in batches (COPY on PostgreSQL, a prepared INSERT on SQLite) with ids
given here, so a client's records link without reading anything back. The core screens each distinct input once:
clients whose intakes differ only in their id share the result, with their own id put in. Records are dated over
the years they stand for, and so are their audit events (the chain is in id order; the time is when the record says
it happened). Clients fall into care stages with fixed shares (most discharged after a full course, some in a
course, some waiting for review, clearance or a referral); the same seed gives the same clinic.
"""

from __future__ import annotations

import json
import random
import time as clock
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.color import no_style
from django.db import connection, models, transaction
from django.test.utils import override_settings
from django.utils import timezone

from backcare.clinic.models import (
    AuditEvent,
    Client,
    Clinic,
    Consent,
    Course,
    Intake,
    Outcome,
    Referral,
    Role,
    Screening,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.services import intake as intake_service
from backcare.clinic.services.consent import current_consent_text
from backcare.clinic.services.courses import DEFAULT_HOME_PROGRAMME
from backcare.clinic.services.screening import BLOCKING, screen_document
from backcare.clinic.services.sessions import DEFAULT_AFTERCARE
from backcare.clinical.instruments import score_start_back
from backcare.common import auditchain
from backcare.demo.clinic import DEMO_CLINIC_NAME, PASSWORDS, form_answers, ticks
from backcare.scheduling.scale import _insert_rows, build_scale

Progress = Callable[[str], None]
CLIENTS_PER_BATCH = 2_000
ROWS_PER_INSERT = 5_000

# Care stages and their shares (in 100): where each client stands today.
STAGES = (
    ("draft", 3),  # health questions started, not sent
    ("submitted", 4),  # paper intake typed in, waiting for the therapist's review
    ("screened", 8),  # reviewed, no course yet
    ("active", 15),  # a course in progress
    ("discharged", 62),  # a full course, completed
    ("clearance", 5),  # a finding that needs the physician's clearance
    ("referred", 3),  # a red flag at intake: referred, no treatment
)
# Intakes a treatable client gives (pain, goals, STarT Back answers); each stage picks among its own.
PLAIN = (
    dict(
        pain={"intensity": 5, "duration_weeks": 3},
        goals=("postural_strain", "muscle_tension"),
        start_back=("nnynnnnn", "moderately"),
    ),
    dict(
        pain={"intensity": 6, "duration_weeks": 5, "medically_assessed": True},
        goals=("postural_strain", "mobility"),
        start_back=("nynnnnnn", "slightly"),
    ),
    dict(
        pain={"intensity": 4, "duration_weeks": 10, "regions": ["lower_back", "buttock_left"]},
        goals=("muscle_tension", "mobility"),
        start_back=("ynynnynn", "moderately"),
    ),
    dict(
        pain={"intensity": 3, "duration_weeks": 16, "medically_assessed": True, "regions": ["lower_back", "neck"]},
        goals=("muscle_tension",),
        start_back=("nnnnnnnn", "not_at_all"),
    ),
    dict(
        pain={"intensity": 7, "duration_weeks": 2, "medically_assessed": True},
        goals=("muscle_spasm",),
        start_back=("yynnnnnn", "very_much"),
    ),
)
CLEARANCE = (
    dict(
        pain={"intensity": 4, "duration_weeks": 8},
        findings=({"code": "dvt_history"},),
        goals=("muscle_tension", "mobility"),
        start_back=("nnnnnnnn", "slightly"),
        notes="Clot in the left calf some years ago, treated for six months.",
    ),
)
REFERRED = (
    dict(
        pain={"intensity": 7, "duration_weeks": 1, "onset": "sudden_movement", "regions": ["lower_back", "thigh_left"]},
        findings=({"code": "saddle_anaesthesia"},),
        goals=("muscle_spasm",),
        start_back=("yynynynn", "very_much"),
        notes="Numb 'where you sit on a bike' since yesterday.",
    ),
)
DRAFT_ANSWERS = {"pain_regions": ["lower_back"], "pain_intensity": "4", "pain_duration_weeks": "6", "goals": []}
SUBJECTIVE = (
    "Lower back stiff in the mornings; sitting over 30 minutes hurts.",
    "A little easier since last time; slept better.",
    "Much better; a twinge only after gardening.",
    "Hardly any pain; back to the usual walks.",
)
ASSESSMENT = "Good response to the treatment; tension easing each week."
OBJECTIVE = "Paraspinal tension {tension} of 3 at the lumbar spine; moves freely between positions."
PLAN_NOTE = "Continue the plan; keep up the daily walk and the exercises shown."
HOME_PROGRAMME = json.dumps(DEFAULT_HOME_PROGRAMME)
ID_MARK = "scale-demo-document-id"  # stands for the document id in a cached result's JSON


@dataclass
class ScaleDemoReport:
    """What `build_scale_demo` made: counts and timings (seconds) by step."""

    clinic_id: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    screenings_computed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "clinic": self.clinic_id,
            "counts": self.counts,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "screenings_computed": self.screenings_computed,
        }


@dataclass(slots=True)
class _Event:
    """An audit event as `auditchain.seal` needs it, without a model instance (a million are made)."""

    at: datetime
    user_id: int | None
    actor: str
    action: str
    client_id: int
    object_type: str
    object_id: str
    detail: dict[str, Any]
    id: int = 0
    prev_mac: str = ""
    mac: str = ""
    key_id: str = ""
    ip_address: None = None


@dataclass(frozen=True)
class _Person:
    """What `intake.build_document` reads of a client."""

    pk: int
    sex: str
    age: int

    def age_on(self, day: Any = None) -> int:
        return self.age


def build_scale_demo(
    *,
    clients: int = 100_000,
    appointments: int | None = None,
    therapists: int = 50,
    rooms: int = 20,
    years: int = 2,
    seed: int = 2026,
    progress: Progress | None = None,
) -> ScaleDemoReport:
    """Build the demo clinic at scale in an empty database (the caller checks it is empty). `appointments` defaults
    to ten per client. Returns what was made; `progress` (e.g. print) hears how it goes."""
    if therapists < 2 or rooms < 1 or clients < 1:
        raise ValueError("the scale demo needs at least 2 therapists, 1 room and 1 client")
    if years < 1:
        raise ValueError("years must be 1 or more")
    say = progress or (lambda _message: None)
    report = ScaleDemoReport()
    t0 = clock.perf_counter()
    calendar = build_scale(
        clinics=1,
        therapists=therapists,
        rooms=rooms,
        clients=clients,
        appointments=clients * 10 if appointments is None else appointments,
        years=years,
        seed=seed,
        courses=0,
        progress=say,
    )
    report.seconds["calendar"] = clock.perf_counter() - t0
    report.clinic_id = calendar.clinic_ids[0]
    report.counts.update(calendar.counts)
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend"):
        t0 = clock.perf_counter()
        clinic = Clinic.objects.get(pk=report.clinic_id)
        front = _demo_staff(clinic)
        report.seconds["logins"] = clock.perf_counter() - t0
        t0 = clock.perf_counter()
        _Records(clinic, front, random.Random(seed + 1), years, say, report).build()
        report.seconds["records"] = clock.perf_counter() - t0
        _portal_client(clinic)
    report.seconds["total"] = sum(report.seconds.values())
    return report


def _demo_staff(clinic: Clinic) -> StaffMember:
    """Name the clinic and two of its therapists as in the demo, and add its owner and front desk, all with the demo
    passwords. Returns the front desk member."""
    Clinic.objects.filter(pk=clinic.pk).update(
        name=DEMO_CLINIC_NAME,
        address="12 Example Street\nDemoton\nDT1 2AB",
        phone="020 7946 0000",
        email="hello@demo-clinic.example.org",
    )
    users = get_user_model()
    for number, (username, first, last) in enumerate(
        (("therapist1", "Samuel", "Reyes"), ("therapist2", "Aisha", "Rahman")), start=1
    ):
        user = users.objects.get(username=f"scale-{clinic.pk}-t{number:03d}")
        user.username, user.first_name, user.last_name = username, first, last
        user.email = f"{username}@demo-clinic.example.org"
        user.set_password(PASSWORDS[username])
        user.save()
        StaffMember.objects.filter(user=user).update(display_name=f"{first} {last}")
    made = {}
    for username, role, first, last in (
        ("owner", Role.OWNER, "Harriet", "Cole"),
        ("frontdesk", Role.FRONT_DESK, "Tom", "Fletcher"),
    ):
        user = users.objects.create_user(
            username=username,
            password=PASSWORDS[username],
            email=f"{username}@demo-clinic.example.org",
            first_name=first,
            last_name=last,
        )
        made[username] = StaffMember.objects.create(
            user=user, clinic=clinic, role=role, display_name=f"{first} {last}", qualified_techniques=[]
        )
    return made["frontdesk"]


def _portal_client(clinic: Clinic) -> None:
    """One of therapist1's clients whose health questions are half done becomes Nadia Kowalski, with the demo's
    portal login `client` (as in the demo clinic)."""
    mine = Client.objects.filter(clinic=clinic, therapist__user__username="therapist1").order_by("pk")
    client = mine.filter(intakes__status=Intake.Status.DRAFT).first() or mine.first()
    assert client is not None
    user = get_user_model().objects.create_user(
        username="client",
        password=PASSWORDS["client"],
        email="nadia.kowalski@example.org",
        first_name="Nadia",
        last_name="Kowalski",
    )
    Client.objects.filter(pk=client.pk).update(
        user=user, first_name="Nadia", last_name="Kowalski", email="nadia.kowalski@example.org"
    )


class _Records:
    """Every client's clinical record, written batch by batch."""

    def __init__(
        self, clinic: Clinic, front: StaffMember, rng: random.Random, years: int, say: Progress, report: ScaleDemoReport
    ) -> None:
        self.clinic = clinic
        self.front = front
        self.rng = rng
        self.say = say
        self.report = report
        self.now = timezone.now().replace(microsecond=0)
        self.span_days = years * 365
        text = current_consent_text()
        assert text is not None, "the consent text is published by a migration"
        self.consent_text = text
        self.staff = {s.pk: s for s in StaffMember.objects.filter(clinic=clinic)}
        self.actor = {pk: f"{s.display_name} ({s.get_role_display()})" for pk, s in self.staff.items()}
        self.next_id = {m: (m._default_manager.aggregate(top=models.Max("pk"))["top"] or 0) + 1 for m in _MODELS}
        self.results: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}
        self.documents: dict[tuple[str, int, bool, bool], tuple[dict[str, Any], str]] = {}
        self.start_back: dict[tuple[str, int], tuple[int, str, str]] = {}
        self.texts: dict[tuple[Any, ...], str] = {}  # JSON made once: of each plan, document, chart, answer sheet
        self.counts: dict[str, int] = dict.fromkeys([m.__name__ for m in _MODELS], 0)
        self.rows: dict[type[models.Model], list[dict[str, Any]]] = {}
        self.events: list[_Event] = []
        self.stages = [name for name, weight in STAGES for _ in range(weight)]

    # -- ids, rows, events -------------------------------------------------------------------------------------

    def new_id(self, model: type[models.Model]) -> int:
        ident = self.next_id[model]
        self.next_id[model] = ident + 1
        return ident

    def event(
        self, at: datetime, staff_id: int, action: str, client_id: int, obj: str, obj_id: int, **detail: Any
    ) -> None:
        self.events.append(
            _Event(
                at=at,
                user_id=self.staff[staff_id].user_id,
                actor=self.actor[staff_id],
                action=action,
                client_id=client_id,
                object_type=obj,
                object_id=str(obj_id),
                detail=detail,
            )
        )

    def screened(self, document: dict[str, Any], key: tuple[Any, ...]) -> tuple[str, dict[str, Any]]:
        """The core's result for `document` as JSON with the document's id marked, and the result itself: screened
        once per distinct input, which `key` names (the form, age, sex and pain now: all the document holds but its
        id)."""
        cached = self.results.get(key)
        if cached is None:
            result = screen_document({**document, "id": ID_MARK})
            cached = self.results[key] = (json.dumps(result), result)
            plan = result.get("plan") or {}
            self.texts[("plan", key)] = json.dumps(plan)
            self.texts[("techniques", key)] = json.dumps(plan.get("techniques", []))
            self.texts[("adjuncts", key)] = json.dumps(plan.get("adjuncts", []))
            self.report.screenings_computed += 1
        return cached

    def screening(
        self,
        client_id: int,
        intake_id: int,
        kind: str,
        document: dict[str, Any],
        key: tuple[Any, ...],
        at: datetime,
        staff_id: int,
    ) -> tuple[int, dict[str, Any]]:
        text, result = self.screened(document, key)
        ident = self.new_id(Screening)
        marked = self.texts.get(("document", key))
        if marked is None:
            marked = self.texts[("document", key)] = json.dumps({**document, "id": ID_MARK})
        mark, real = json.dumps(ID_MARK), json.dumps(document["id"])
        self.rows[Screening].append(
            {
                "id": ident,
                "client_id": client_id,
                "intake_id": intake_id,
                "kind": kind,
                "document": marked.replace(mark, real),
                "result": text.replace(mark, real),
                "decision": result["decision"],
                "referral": result["referral"],
                "rule_base_version": result["rule_base"]["version"],
                "rule_base_digest": result["rule_base"]["digest"],
                "created_at": at,
                "created_by_id": self.staff[staff_id].user_id,
            }
        )
        self.event(
            at,
            staff_id,
            "screen",
            client_id,
            "screening",
            ident,
            kind=kind,
            decision=result["decision"],
            referral=result["referral"],
        )
        return ident, result

    def outcome(
        self,
        client_id: int,
        at: datetime,
        staff_id: int,
        instrument: str,
        timepoint: str,
        score: int,
        answers: str = "{}",
        course_id: int | None = None,
        session_id: int | None = None,
        interpretation: str = "",
    ) -> int:
        ident = self.new_id(Outcome)
        self.rows[Outcome].append(
            {
                "id": ident,
                "client_id": client_id,
                "course_id": course_id,
                "session_id": session_id,
                "instrument": instrument,
                "timepoint": timepoint,
                "score": score,
                "answers": answers,
                "interpretation": interpretation,
                "recorded_at": at,
                "recorded_by_id": self.staff[staff_id].user_id,
            }
        )
        return ident

    # -- the build -------------------------------------------------------------------------------------------------

    def build(self) -> None:
        people = list(
            Client.objects.filter(clinic=self.clinic)
            .order_by("pk")
            .values_list("pk", "first_name", "last_name", "sex", "date_of_birth", "therapist_id")
        )
        total = len(people)
        step = max(total // 10, CLIENTS_PER_BATCH)
        next_report = step
        started = clock.perf_counter()
        for first in range(0, total, CLIENTS_PER_BATCH):
            self.rows = {m: [] for m in _MODELS}
            self.events = []
            created: list[tuple[Any, int]] = []
            for person in people[first : first + CLIENTS_PER_BATCH]:
                created.append((self.client(*person), person[0]))
            self.write(created)
            done = min(first + CLIENTS_PER_BATCH, total)
            if done >= next_report or done == total:
                rate = done / max(clock.perf_counter() - started, 1e-9)
                self.say(f"  clinical records: {done:,} of {total:,} clients ({rate:,.0f} a second)")
                next_report += step
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                for sql in connection.ops.sequence_reset_sql(no_style(), [*_MODELS, AuditEvent]):
                    cursor.execute(sql)
        self.report.counts.update({_LABELS[name]: n for name, n in self.counts.items()})
        self.say(
            f"  {self.report.screenings_computed:,} distinct inputs screened for {self.counts['Screening']:,} "
            f"screenings; {self.report.counts.get('audit_events', 0):,} audit events"
        )

    def write(self, created: list[tuple[Any, int]]) -> None:
        adapt = connection.ops.adapt_datetimefield_value
        with transaction.atomic():
            for model in _MODELS:
                rows = self.rows[model]
                _insert_rows(model, iter(rows), ROWS_PER_INSERT, None, model.__name__, len(rows), ids=True)
                self.counts[model.__name__] += len(rows)
            with connection.cursor() as cursor:
                cursor.executemany(
                    "UPDATE clinic_client SET created_at = %s WHERE id = %s", [(adapt(at), pk) for at, pk in created]
                )
            for start in range(0, len(self.events), ROWS_PER_INSERT):
                chunk = self.events[start : start + ROWS_PER_INSERT]
                auditchain.seal(chunk)
                _insert_rows(AuditEvent, _event_rows(chunk), ROWS_PER_INSERT, None, "audit", len(chunk), ids=True)
        self.report.counts["audit_events"] = self.report.counts.get("audit_events", 0) + len(self.events)

    def client(self, pk: int, first: str, last: str, sex: str, born: Any, therapist_id: int) -> datetime:
        """One client's record; returns when the client was added."""
        rng = self.rng
        stage = rng.choice(self.stages)
        if stage == "active":  # room for the sessions done so far, a week apart
            days_ago = rng.uniform(23, 45)
        elif stage in ("draft", "submitted", "screened"):
            days_ago = rng.uniform(1, 40)
        elif stage == "discharged":
            days_ago = rng.uniform(50, max(self.span_days, 60))
        else:
            days_ago = rng.uniform(1, max(self.span_days, 2))
        since = (self.now - timedelta(days=days_ago)).replace(hour=9, minute=0, second=0)
        name = f"{first} {last}"
        age = max(18, self.now.year - born.year)
        self.event(since, self.front.pk, "create_client", pk, "client", pk)
        consent_id = self.new_id(Consent)
        signed = since + timedelta(minutes=50)
        self.rows[Consent].append(
            {
                "id": consent_id,
                "client_id": pk,
                "text_id": self.consent_text.pk,
                "signature": name,
                "signed_at": signed,
                "method": Consent.Method.DEVICE,
                "recorded_by_id": therapist_id,
            }
        )
        self.event(
            signed,
            therapist_id,
            "record_consent",
            pk,
            "consent",
            consent_id,
            consent_version=self.consent_text.version,
            method=Consent.Method.DEVICE,
            witnessed_by="",
            guardian=None,
        )
        intake_id = self.new_id(Intake)
        at = signed + timedelta(minutes=5)
        if stage == "draft":
            self.rows[Intake].append(
                {
                    "id": intake_id,
                    "client_id": pk,
                    "status": Intake.Status.DRAFT,
                    "answers": json.dumps(DRAFT_ANSWERS),
                    "document": None,
                    "started_at": at,
                    "updated_at": at,
                }
            )
            self.event(at, therapist_id, "start_intake", pk, "intake", intake_id)
            return since
        variants = {"clearance": CLEARANCE, "referred": REFERRED}.get(stage, PLAIN)
        variant = rng.randrange(len(variants))
        therapist = stage != "submitted"
        form, document, answers = self.document(stage, variant, variants[variant], _Person(pk, sex, age), therapist)
        kind = Screening.Kind.REVIEW if therapist else Screening.Kind.INTAKE
        key = (form, age, sex, None)
        screening_id, result = self.screening(
            pk, intake_id, kind, document, key, at + timedelta(minutes=30), therapist_id
        )
        self.start_back_outcome(pk, stage, variant, document, at + timedelta(minutes=30), therapist_id)
        reviewed = at + timedelta(minutes=40)
        self.rows[Intake].append(
            {
                "id": intake_id,
                "client_id": pk,
                "status": Intake.Status.REVIEWED if therapist else Intake.Status.SUBMITTED,
                "answers": answers,
                "document": self.rows[Screening][-1]["document"],
                "started_at": at,
                "updated_at": reviewed,
                "submitted_at": reviewed,
                "reviewed_by_id": therapist_id if therapist else None,
                "reviewed_at": reviewed if therapist else None,
                "review_note": "Went through every question with the client at the first visit." if therapist else "",
            }
        )
        if therapist:
            self.event(
                reviewed,
                therapist_id,
                "review_intake",
                pk,
                "intake",
                intake_id,
                changed=[],
                screening=screening_id,
                decision=result["decision"],
            )
        else:
            self.event(reviewed, therapist_id, "submit_intake", pk, "intake", intake_id, screening=screening_id)
            return since
        if result["decision"] in BLOCKING:
            self.referral(pk, screening_id, result, reviewed + timedelta(minutes=5), therapist_id)
            return since
        if result["decision"] == "clearance_required" or stage == "screened" or result.get("plan") is None:
            return since
        self.course(pk, stage, intake_id, screening_id, document, key, result, since + timedelta(days=1), therapist_id)
        return since

    def document(
        self, stage: str, variant: int, given: dict[str, Any], person: _Person, therapist: bool
    ) -> tuple[tuple[Any, ...], dict[str, Any], str]:
        """The kind of form, the contract document for this client and the form's answers (JSON), built once per
        kind of form."""
        pregnancy = person.sex != "male"
        key = (stage if stage in ("clearance", "referred") else "plain", variant, therapist, pregnancy)
        cached = self.documents.get(key)
        if cached is None:
            ctx = intake_service.Context(therapist=therapist, start_back=True, pregnancy=pregnancy)
            answers = form_answers(ctx, **given)
            # a _Person stands in for the Client: it has all that build_document reads of one
            template = intake_service.build_document(person, answers, ctx)  # type: ignore[arg-type]
            cached = self.documents[key] = (template, json.dumps(answers))
        template, answers_json = cached
        return key, {**template, "id": f"client-{person.pk}", "age": person.age, "sex": person.sex}, answers_json

    def start_back_outcome(
        self, pk: int, stage: str, variant: int, document: dict[str, Any], at: datetime, staff_id: int
    ) -> None:
        sb = document.get("start_back")
        if sb is None:
            return
        key = (stage, variant)
        cached = self.start_back.get(key)
        if cached is None:
            scored = score_start_back(sb["agree"], sb["bothersomeness"])
            answered = {**sb, "psychosocial": scored.psychosocial, "group": scored.group}
            cached = self.start_back[key] = (scored.total, json.dumps(answered), str(scored.group))
        total, answers, group = cached
        ident = self.outcome(pk, at, staff_id, "start_back", "intake", total, answers, interpretation=f"{group} risk")
        self.event(at, staff_id, "record_outcome", pk, "outcome", ident, start_back=group)

    def referral(self, pk: int, screening_id: int, result: dict[str, Any], at: datetime, staff_id: int) -> None:
        urgency = result["referral"] if result["referral"] in Referral.Urgency.values else Referral.Urgency.URGENT
        ident = self.new_id(Referral)
        findings = [
            {"rule": f["rule"], "title": f["title"], "decision": f["decision"], "rationale": f["rationale"]}
            for f in result.get("findings", [])
            if f["decision"] != "proceed"
        ]
        self.rows[Referral].append(
            {
                "id": ident,
                "client_id": pk,
                "screening_id": screening_id,
                "urgency": urgency,
                "reason": "A red flag at intake: sent to the physician the same day; no massage.",
                "findings": json.dumps(findings),
                "created_by_id": staff_id,
                "created_at": at,
            }
        )
        self.event(at, staff_id, "create_referral", pk, "referral", ident, urgency=urgency)

    def course(
        self,
        pk: int,
        stage: str,
        intake_id: int,
        screening_id: int,
        document: dict[str, Any],
        key: tuple[Any, ...],
        result: dict[str, Any],
        start: datetime,
        staff_id: int,
    ) -> None:
        rng = self.rng
        plan = result["plan"]
        planned, weeks, reassess = plan["sessions"], plan["weeks"], plan["reassess_after_session"]
        done = planned if stage == "discharged" else rng.randrange(0, planned)
        # Sessions a week apart, all in the past (see the stages' dates in `client`).
        course_id = self.new_id(Course)
        ended = start + timedelta(days=7 * (done - 1), hours=3) if stage == "discharged" else None
        self.rows[Course].append(
            {
                "id": course_id,
                "client_id": pk,
                "therapist_id": staff_id,
                "screening_id": screening_id,
                "status": Course.Status.COMPLETED if ended else Course.Status.ACTIVE,
                "recommended_plan": self.texts[("plan", key)],
                "techniques": self.texts[("techniques", key)],
                "sessions_planned": planned,
                "weeks": weeks,
                "reassess_after": reassess,
                "goals": "Back to a working day without pain above 3.",
                "adjuncts": self.texts[("adjuncts", key)],
                "home_programme": HOME_PROGRAMME,
                "started_at": start,
                "ended_at": ended,
                "end_note": "Goal met. Keeps up the home exercises; return if it flares." if ended else "",
                "created_by_id": staff_id,
            }
        )
        self.event(
            start,
            staff_id,
            "start_course",
            pk,
            "course",
            course_id,
            techniques=plan["techniques"],
            sessions=planned,
            weeks=weeks,
            screening=screening_id,
        )
        rmdq = rng.randrange(8, 15)
        self.rmdq(pk, course_id, start, staff_id, "baseline", rmdq)
        pain = document["pain"]["intensity"]
        for number in range(1, done + 1):
            held = start + timedelta(days=7 * (number - 1), hours=2)
            before = max(pain - (number - 1), 1)
            after = max(before - 2, 0)
            update = {**document, "id": f"client-{pk}-pre-session-{number}", "pain": {**document["pain"]}}
            update["pain"]["intensity"] = before
            update_id, checked = self.screening(
                pk, intake_id, "pre_session", update, (*key[:3], before), held - timedelta(minutes=10), staff_id
            )
            self.session(
                pk,
                course_id,
                number,
                update_id,
                checked,
                self.texts[("techniques", key)],
                held,
                before,
                after,
                staff_id,
            )
            if number == reassess:
                self.rmdq(pk, course_id, held + timedelta(hours=1), staff_id, "reassessment", max(rmdq - 4, 0))
        if ended:
            self.rmdq(pk, course_id, ended, staff_id, "discharge", max(rmdq - 8, 0))
            self.event(ended, staff_id, "end_course", pk, "course", course_id, status=Course.Status.COMPLETED)

    def session(
        self,
        pk: int,
        course_id: int,
        number: int,
        update_id: int,
        checked: dict[str, Any],
        techniques: str,
        held: datetime,
        before: int,
        after: int,
        staff_id: int,
    ) -> None:
        precautions = checked.get("precautions", {})
        limit = precautions.get("max_pressure")
        avoid = set(precautions.get("avoid_regions", []))
        tension = max(3 - (number - 1), 1)
        chart_key = ("chart", tension, before, tuple(sorted(avoid)))
        chart = self.texts.get(chart_key)
        if chart is None:
            chart = self.texts[chart_key] = json.dumps(
                {
                    region: {"treated": True, "tension": tension, "pain": before}
                    for region in ("lower_back", "buttock_left", "buttock_right")
                    if region not in avoid
                }
            )
        ident = self.new_id(TreatmentSession)
        self.rows[TreatmentSession].append(
            {
                "id": ident,
                "course_id": course_id,
                "number": number,
                "therapist_id": staff_id,
                "health_update_id": update_id,
                "status": TreatmentSession.Status.COMPLETED,
                "held_at": held,
                "subjective": SUBJECTIVE[min(number - 1, len(SUBJECTIVE) - 1)],
                "objective": OBJECTIVE.format(tension=tension),
                "assessment": ASSESSMENT,
                "plan_note": PLAN_NOTE,
                "body_chart": chart,
                "techniques": techniques,
                "pressure": min(3, limit) if limit else 3,
                "deviations": "[]",
                "response": TreatmentSession.Response.RELAXED,
                "pain_before": before,
                "pain_after": after,
                "aftercare": DEFAULT_AFTERCARE,
                "recorded_at": held + timedelta(minutes=50),
            }
        )
        for score in (before, after):
            self.outcome(pk, held, staff_id, "pain_nrs", "session", score, course_id=course_id, session_id=ident)
        self.event(
            held + timedelta(minutes=50),
            staff_id,
            "record_session",
            pk,
            "treatmentsession",
            ident,
            number=number,
            deviations=[],
            response=TreatmentSession.Response.RELAXED,
            stopped=False,
            stop_referral=None,
        )

    def rmdq(self, pk: int, course_id: int, at: datetime, staff_id: int, timepoint: str, score: int) -> None:
        sheet = self.texts.get(("rmdq", score))
        if sheet is None:
            sheet = self.texts[("rmdq", score)] = json.dumps({"ticked": ticks(score)})
        ident = self.outcome(pk, at, staff_id, "rmdq", timepoint, score, sheet, course_id)
        self.event(at, staff_id, "record_outcome", pk, "outcome", ident, rmdq=score, timepoint=timepoint)


# Written in this order, so each row's links point at rows already there.
_MODELS: tuple[type[models.Model], ...] = (Consent, Intake, Screening, Course, Referral, TreatmentSession, Outcome)
_LABELS = {
    "Consent": "consents",
    "Intake": "intakes",
    "Screening": "screenings",
    "Course": "courses",
    "Referral": "referrals",
    "TreatmentSession": "sessions",
    "Outcome": "outcomes",
}


def _event_rows(events: list[_Event]) -> Iterator[dict[str, Any]]:
    for e in events:
        yield {
            "id": e.id,
            "at": e.at,
            "user_id": e.user_id,
            "actor": e.actor,
            "action": e.action,
            "client_id": e.client_id,
            "object_type": e.object_type,
            "object_id": e.object_id,
            "detail": json.dumps(e.detail),
            "ip_address": None,
            "prev_mac": e.prev_mac,
            "mac": e.mac,
            "key_id": e.key_id,
        }
