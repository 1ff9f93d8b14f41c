"""What the dashboard shows, read for one page at a time: the clients who need attention and their alerts, the
therapist's clients today, the owner's counts.

The page never reads the whole clinic into Python. Each rule that can be said in SQL is said once, as a condition on
clients (`alert_flags`), and the database finds the next page of clients for whom one holds, in name order from a
keyset cursor (the id of the last client of the page before). Only that page's clients are then loaded (latest
screening, course, sessions and scores: a fixed number of queries) and their alerts worded here.

One definition of each clinical rule:
- reassessment due: `services.courses.reassessment_due_q`, the same condition `services.courses.reassessment_due`
  reads for one course;
- clearance pending: the flag finds clients whose latest screening asks for clearance; which findings are still
  pending is `services.clearances.pending`, as `services.screening.treatment_gate` decides it;
- the course review: the flag finds courses that may prompt (ended, reassessed, or all sessions held); the prompts
  are `services.outcomes.review_scores`, as `services.outcomes.review_course` decides them;
- referral suggested by the screening or by guarding, and the intake states: dashboard rules, defined only here.

Other apps add sections to the dashboard through the `dashboard_sections` signal (the appointments on hold come from
scheduling, which the clinic may not import), as pretix's dashboard widgets do.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)
from django.dispatch import Signal
from django.urls import reverse

from backcare.clinic.models import (
    Clearance,
    Client,
    Course,
    Intake,
    Outcome,
    Referral,
    Screening,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.services import clearances as clearance_scope
from backcare.clinic.services import outbox
from backcare.clinic.services.courses import reassessment_due_q
from backcare.clinic.services.outcomes import review_scores
from backcare.clinic.services.screening import BLOCKING
from backcare.clinical.instruments import pain_change
from backcare.clinical.vocabulary import DECISION_TEXT

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

#: Clients looked at per page of alerts, and clients listed per page of "your clients today".
PAGE_SIZE = 50
TODAY_LIMIT = 50

#: `send(sender=StaffMember, staff=...)`; each receiver returns a dict added to the dashboard's template context.
dashboard_sections = Signal()

FLAGS = (
    "flag_clearance",
    "flag_reassessment",
    "flag_screening_referral",
    "flag_guarding",
    "flag_review",
    "flag_intake",
)


@dataclass
class Alert:
    kind: str  # clearance | reassessment | referral | intake
    label: str
    client: Client
    text: str
    url: str
    action: str
    severity: str = "warn"  # danger | warn | info


class _Latest(TypedDict):
    """What `with_latest` annotates each client with (among others)."""

    latest_screening_id: int | None
    latest_intake_status: str | None
    last_referral_at: dt.datetime | None
    latest_course_id: int | None


@dataclass
class ClientState:
    """What the dashboard knows about one client of the page."""

    client: Client
    screening: Screening | None = None
    intake_status: str | None = None
    last_referral_at: dt.datetime | None = None
    course: Course | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    clearances: list[Clearance] = field(default_factory=list)
    flags: dict[str, bool] = field(default_factory=dict)

    @property
    def sessions_done(self) -> int:
        return sum(1 for s in self.sessions if s["status"] == TreatmentSession.Status.COMPLETED)

    def referred_since(self, moment: dt.datetime | None) -> bool:
        return self.last_referral_at is not None and (moment is None or self.last_referral_at >= moment)


@dataclass
class AlertPage:
    alerts: list[Alert]
    states: list[ClientState]
    next_after: int | None  # the cursor of the next page, or None on the last


# --- The rules as conditions on clients ---------------------------------------------------------------------


def _latest(model: Any, order: tuple[str, ...], value: str) -> Subquery:
    return Subquery(model.objects.filter(client=OuterRef("pk")).order_by(*order).values(value)[:1])


def _flag(condition: Q) -> ExpressionWrapper[Any]:
    return ExpressionWrapper(condition, output_field=BooleanField())


def with_latest(clients: QuerySet[Client]) -> QuerySet[Client]:
    """`clients` with their latest screening, intake, referral and course."""
    return clients.annotate(
        latest_screening_id=_latest(Screening, ("-created_at", "-id"), "id"),
        latest_decision=_latest(Screening, ("-created_at", "-id"), "decision"),
        latest_screened_at=_latest(Screening, ("-created_at", "-id"), "created_at"),
        latest_intake_status=_latest(Intake, ("-started_at", "-id"), "status"),
        last_referral_at=_latest(Referral, ("-created_at", "-id"), "created_at"),
        latest_course_id=_latest(Course, ("-started_at", "-id"), "id"),
    )


def with_alert_flags(clients: QuerySet[Client]) -> QuerySet[Client]:
    """`clients` with their latest screening, intake, referral and course, and one flag per alert rule."""
    course = "latest_course_id"
    guarding = TreatmentSession.objects.filter(course_id=OuterRef(course), response=TreatmentSession.Response.GUARDING)
    may_prompt = Course.objects.filter(pk=OuterRef(course)).filter(
        ~Q(status=Course.Status.ACTIVE)
        | Q(Exists(Outcome.objects.filter(course_id=OuterRef("pk"), instrument="rmdq", timepoint="reassessment")))
        | Q(
            sessions_planned__lte=Subquery(
                TreatmentSession.objects.filter(course_id=OuterRef("pk"), status=TreatmentSession.Status.COMPLETED)
                .order_by()
                .values("course_id")
                .annotate(n=Count("pk"))
                .values("n")
            )
        )
    )
    return with_latest(clients).annotate(
        flag_clearance=_flag(Q(latest_decision="clearance_required")),
        flag_reassessment=_flag(reassessment_due_q(course)),
        flag_screening_referral=_flag(
            Q(latest_decision__in=sorted(BLOCKING))
            & (Q(last_referral_at__isnull=True) | Q(last_referral_at__lt=F("latest_screened_at")))
        ),
        flag_guarding=_flag(
            (Q(last_referral_at__isnull=True) & Q(Exists(guarding)))
            | Q(Exists(guarding.filter(recorded_at__gt=OuterRef("last_referral_at"))))
        ),
        flag_review=_flag(Q(Exists(may_prompt))),
        flag_intake=_flag(
            Q(latest_intake_status__in=(Intake.Status.SUBMITTED, Intake.Status.DRAFT))
            | (Q(latest_intake_status__isnull=True) & Q(latest_screening_id__isnull=True))
        ),
    )


def needs_attention(clients: QuerySet[Client]) -> QuerySet[Client]:
    """The clients for whom some alert rule holds (for the clearance and review rules: may hold), in name order."""
    anyflag = Q()
    for name in FLAGS:
        anyflag |= Q(**{name: True})
    return with_alert_flags(clients).filter(anyflag).order_by("last_name", "first_name", "pk")


def after(clients: QuerySet[Client], cursor: int | None) -> QuerySet[Client]:
    """The clients after the client `cursor` in name order (keyset paging: no offset re-sorts the clinic)."""
    if cursor is None:
        return clients
    last = Client.objects.filter(pk=cursor).values("last_name", "first_name").first()
    if last is None:
        return clients
    name, first = last["last_name"], last["first_name"]
    return clients.filter(
        Q(last_name__gt=name)
        | Q(last_name=name, first_name__gt=first)
        | Q(last_name=name, first_name=first, pk__gt=cursor)
    )


# --- Loading a page of clients ------------------------------------------------------------------------------


def load_states(clients: QuerySet[Client], limit: int | None = None, *, flags: bool = True) -> list[ClientState]:
    """The latest screening, intake, referral, course with its sessions and scores, and (unless `flags` is false)
    the alert flags, of `clients` (at most `limit` of them, in their order, else name order): a fixed number of
    queries."""
    qs = clients if clients.ordered else clients.order_by("last_name", "first_name", "pk")
    if "flag_intake" not in qs.query.annotations:
        qs = with_alert_flags(qs) if flags else with_latest(qs)
    qs = qs.select_related("therapist")
    # with_latest (also under with_alert_flags) annotated these
    rows = cast("list[WithAnnotations[Client, _Latest]]", list(qs[:limit] if limit is not None else qs))
    states = {
        c.pk: ClientState(
            client=c,
            intake_status=c.latest_intake_status,
            last_referral_at=c.last_referral_at,
            flags={name: bool(getattr(c, name, False)) for name in FLAGS},
        )
        for c in rows
    }
    screening_ids = [c.latest_screening_id for c in rows if c.latest_screening_id]
    for screening in Screening.objects.filter(pk__in=screening_ids).defer("document"):
        states[screening.client_id].screening = screening
    needs_clearance = [s.client.pk for s in states.values() if s.flags["flag_clearance"] and s.screening]
    if needs_clearance:
        # What the clearance findings are depends on the screened document: load it for these screenings only.
        wanted = [s.screening.pk for s in states.values() if s.client.pk in needs_clearance and s.screening]
        for screening in Screening.objects.filter(pk__in=wanted):
            states[screening.client_id].screening = screening
        for clearance in Clearance.objects.filter(client_id__in=needs_clearance).select_related("screening"):
            states[clearance.client_id].clearances.append(clearance)
    course_ids = [c.latest_course_id for c in rows if c.latest_course_id]
    if course_ids:
        for course in Course.objects.filter(pk__in=course_ids).defer("recommended_plan", "home_programme"):
            states[course.client_id].course = course
        by_course: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for session in (
            TreatmentSession.objects.filter(course_id__in=course_ids)
            .order_by("number")
            .values("course_id", "number", "status", "response", "held_at", "recorded_at")
        ):
            by_course[session["course_id"]].append(dict(session))
        scores: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for outcome in (
            Outcome.objects.filter(course_id__in=course_ids, instrument__in=("pain_nrs", "rmdq"))
            .order_by("recorded_at", "id")
            .values("course_id", "instrument", "timepoint", "score", "recorded_at")
        ):
            scores[outcome["course_id"]].append(dict(outcome))
        for state in states.values():
            if state.course is not None:
                state.sessions = by_course.get(state.course.pk, [])
                state.outcomes = scores.get(state.course.pk, [])
    return list(states.values())


# --- The rules on a loaded client ----------------------------------------------------------------------------


def clearance_pending(state: ClientState) -> list[str]:
    """As treatment_gate: the latest screening asks for clearance and some of its findings are not yet cleared."""
    if state.screening is None or not state.flags.get("flag_clearance"):
        return []
    return clearance_scope.pending(state.screening, state.clearances).rules


def reassessment_due(state: ClientState) -> bool:
    """services.courses.reassessment_due for the client's latest course, read in the page's query."""
    return state.course is not None and state.flags.get("flag_reassessment", False)


def review_prompts(state: ClientState) -> list[str]:
    """services.outcomes.review_course(...).prompts, for the client's latest course, on the loaded scores."""
    course = state.course
    if course is None:
        return []
    pain_scores = [o["score"] for o in state.outcomes if o["instrument"] == "pain_nrs"]
    return review_scores(
        pain_baseline=pain_scores[0] if pain_scores else None,
        pain_now=pain_scores[-1] if pain_scores else None,
        rmdq_scores={o["timepoint"]: o["score"] for o in state.outcomes if o["instrument"] == "rmdq"},
        sessions_done=state.sessions_done,
        sessions_planned=course.sessions_planned,
        active=course.status == Course.Status.ACTIVE,
    ).prompts


def _last_activity(state: ClientState) -> dt.datetime | None:
    moments = [s["recorded_at"] for s in state.sessions] + [o["recorded_at"] for o in state.outcomes]
    if state.course is not None:
        moments.append(state.course.ended_at or state.course.started_at)
    return max((m for m in moments if m is not None), default=None)


def alerts_of(state: ClientState) -> list[Alert]:
    """The alerts of one loaded client, most severe first within the client."""
    alerts: list[Alert] = []
    client = state.client
    detail = reverse("client_detail", args=[client.pk])
    referral_url = reverse("referral_create", args=[client.pk])
    screening = state.screening
    pending = clearance_pending(state)
    if pending and screening is not None:
        titles = [f["title"] for f in screening.result.get("findings", []) if f["rule"] in pending]
        alerts.append(
            Alert(
                "clearance",
                "Clearance pending",
                client,
                "A physician's clearance must be recorded before the first session: " + "; ".join(titles) + ".",
                reverse("clearance_create", args=[client.pk, screening.pk]),
                "Record clearance",
                "danger",
            )
        )
    if reassessment_due(state) and state.course is not None:
        alerts.append(
            Alert(
                "reassessment",
                "Reassessment due",
                client,
                f"Session {state.course.reassess_after} has been held: record the reassessment Roland-Morris.",
                reverse("rmdq_record", args=[state.course.pk]),
                "Record Roland-Morris",
            )
        )
    if state.flags.get("flag_screening_referral") and screening is not None:
        postponed = screening.decision == "postpone"
        alerts.append(
            Alert(
                "referral",
                "Treatment postponed" if postponed else "Referral suggested",
                client,
                f"Latest screening ({screening.created_at:%d %b %Y}): {DECISION_TEXT[screening.decision]}",
                referral_url,
                "Record a referral if needed" if postponed else "Record a referral",
                "warn" if postponed else "danger",
            )
        )
    guarding = [s for s in state.sessions if s["response"] == TreatmentSession.Response.GUARDING]
    if state.flags.get("flag_guarding") and guarding:
        alerts.append(
            Alert(
                "referral",
                "Referral suggested",
                client,
                f"The client was guarding against the pressure at session {guarding[-1]['number']}: stop deep "
                "work, and consider referring the client to their physician if pain persists.",
                referral_url,
                "Record a referral",
            )
        )
    if state.flags.get("flag_review"):
        prompts = review_prompts(state)
        if prompts and not state.referred_since(_last_activity(state)):
            alerts.extend(
                Alert("referral", "Referral suggested", client, prompt, referral_url, "Record a referral")
                for prompt in prompts
            )
    if state.flags.get("flag_intake"):
        if state.intake_status == Intake.Status.SUBMITTED:
            alerts.append(
                Alert(
                    "intake",
                    "Intake to review",
                    client,
                    "The intake is submitted and waits for your review.",
                    reverse("intake_review", args=[client.pk]),
                    "Review the intake",
                    "info",
                )
            )
        elif state.intake_status == Intake.Status.DRAFT:
            alerts.append(
                Alert(
                    "intake",
                    "Intake incomplete",
                    client,
                    "The client has started the intake but not submitted it.",
                    detail,
                    "Open the record",
                    "info",
                )
            )
        else:
            alerts.append(
                Alert("intake", "Intake incomplete", client, "No intake yet.", detail, "Open the record", "info")
            )
    return alerts


_ORDER = {"danger": 0, "warn": 1, "info": 2}


def alerts_for(states: list[ClientState]) -> list[Alert]:
    """The alerts of the loaded clients, most severe first (stable: clients stay in name order within a severity)."""
    alerts = [a for state in states for a in alerts_of(state)]
    alerts.sort(key=lambda a: _ORDER[a.severity])
    return alerts


def alert_page(clients: QuerySet[Client], cursor: int | None = None, size: int | None = None) -> AlertPage:
    """The next `size` clients (after client `cursor`, in name order) that may need attention, with their alerts."""
    size = size or PAGE_SIZE
    states = load_states(after(needs_attention(clients), cursor), limit=size + 1)
    more = len(states) > size
    states = states[:size]
    return AlertPage(alerts_for(states), states, states[-1].client.pk if more and states else None)


# --- The therapist's clients today ---------------------------------------------------------------------------


def today_bounds(staff: StaffMember) -> tuple[dt.datetime, dt.datetime]:
    zone = staff.clinic.zone
    today = dt.datetime.now(zone).date()
    start = dt.datetime.combine(today, dt.time.min, tzinfo=zone)
    return start, start + dt.timedelta(days=1)


def todays_clients(
    clients: QuerySet[Client], staff: StaffMember, limit: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Clients seen today (a session of their latest course held today) or with a course in progress, those seen
    today first: at most `limit`, and whether there are more. Today's sessions come from their own index; the
    clients in a course are the first of `clients` in name order whose latest course is active."""
    limit = limit or TODAY_LIMIT
    start, end = today_bounds(staff)
    held_today = TreatmentSession.objects.filter(held_at__gte=start, held_at__lt=end)
    seen = list(clients.filter(pk__in=held_today.values("course__client_id")).values_list("pk", flat=True)[: limit + 1])
    active = Course.objects.filter(pk=OuterRef("today_course_id"), status=Course.Status.ACTIVE)
    in_course = list(
        clients.exclude(pk__in=seen)
        .annotate(today_course_id=_latest(Course, ("-started_at", "-id"), "id"))
        .filter(Exists(active))
        .order_by("last_name", "first_name", "pk")
        .values_list("pk", flat=True)[: limit + 1]
    )
    states = load_states(Client.objects.filter(pk__in=seen + in_course), flags=False)
    rows = []
    for state in states:
        seen_today = any(start <= s["held_at"] < end for s in state.sessions)
        active_now = state.course is not None and state.course.status == Course.Status.ACTIVE
        if seen_today or active_now:
            rows.append(
                {
                    "client": state.client,
                    "course": state.course,
                    "done": state.sessions_done,
                    "seen_today": seen_today,
                    "last_session": state.sessions[-1]["held_at"] if state.sessions else None,
                }
            )
    rows.sort(key=lambda r: not r["seen_today"])  # stable: name order within each
    return rows[:limit], len(rows) > limit


# --- The owner's counts --------------------------------------------------------------------------------------


def owner_counts(staff: StaffMember) -> dict[str, Any]:
    clinic_courses = Course.objects.filter(client__clinic=staff.clinic)
    by_status = dict(clinic_courses.values_list("status").annotate(n=Count("id")).order_by())
    urgency = dict(
        Referral.objects.filter(client__clinic=staff.clinic).values_list("urgency").annotate(n=Count("id")).order_by()
    )
    pain = Outcome.objects.filter(course=OuterRef("pk"), instrument="pain_nrs")
    scored = clinic_courses.annotate(
        first_pain=Subquery(pain.order_by("recorded_at", "id").values("score")[:1]),
        last_pain=Subquery(pain.order_by("-recorded_at", "-id").values("score")[:1]),
    ).filter(first_pain__isnull=False)
    # The database counts the courses per (first, latest) pair, at most 11 x 11 of them; whether a pair is a
    # meaningful improvement is the clinical core's `pain_change`, asked once per pair.
    pairs = scored.order_by().values_list("first_pain", "last_pain").annotate(n=Count("pk"))
    counted = [(first, last, n) for first, last, n in pairs]
    improved = sum(n for first, last, n in counted if pain_change(first, last).meaningful)
    return {
        "clients": Client.objects.filter(clinic=staff.clinic).count(),
        "active": by_status.get(Course.Status.ACTIVE, 0),
        "completed": by_status.get(Course.Status.COMPLETED, 0),
        "ended_referred": by_status.get(Course.Status.REFERRED, 0),
        "stopped": by_status.get(Course.Status.STOPPED, 0),
        "referrals": [(label, urgency.get(value, 0)) for value, label in Referral.Urgency.choices],
        "referrals_total": sum(urgency.values()),
        "scored": sum(n for _, _, n in counted),
        "improved": improved,
        "emails_failed": outbox.failure_count(staff),
    }


def sections(staff: StaffMember) -> dict[str, Any]:
    """What other apps add to this member of staff's dashboard (`dashboard_sections`)."""
    context: dict[str, Any] = {}
    for _, section in dashboard_sections.send(sender=StaffMember, staff=staff):
        if isinstance(section, dict):
            context.update(section)
    return context


__all__ = [
    "PAGE_SIZE",
    "Alert",
    "AlertPage",
    "ClientState",
    "alert_page",
    "alerts_for",
    "alerts_of",
    "clearance_pending",
    "dashboard_sections",
    "load_states",
    "needs_attention",
    "owner_counts",
    "reassessment_due",
    "review_prompts",
    "sections",
    "todays_clients",
    "with_alert_flags",
]
