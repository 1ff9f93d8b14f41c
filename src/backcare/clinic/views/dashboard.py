"""Dashboards, one address with content by role: the therapist's clients today and alerts, the owner's counts and
the whole clinic's alerts, the front desk's client list (contact details only). Clients go to their portal.

The alerts are read in a fixed number of queries however many clients there are (no query per client): the latest
screening, intake, course, its sessions and scores are fetched for all clients at once and judged here by the same
rules as `services.screening.treatment_gate`, `services.courses.reassessment_due` and
`services.outcomes.review_course` (tests check that they agree).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse

from backcare.clinic import access, audit
from backcare.clinic.models import (
    Clearance,
    Client,
    Course,
    Intake,
    Outcome,
    Referral,
    Role,
    Screening,
    StaffMember,
    TreatmentSession,
)
from backcare.clinic.services import clearances as clearance_scope
from backcare.clinic.services import outbox
from backcare.clinic.services.outcomes import review_scores
from backcare.clinical.instruments import pain_change
from backcare.clinical.vocabulary import DECISION_TEXT

REFERRAL_DECISIONS = ("refer_emergency", "refer_urgent", "postpone")
FRONT_DESK_LIMIT = 300


@dataclass
class Alert:
    kind: str  # clearance | reassessment | referral | intake
    label: str
    client: Client
    text: str
    url: str
    action: str
    severity: str = "warn"  # danger | warn | info


@dataclass
class ClientState:
    """What the dashboard knows about one client, read in bulk."""

    client: Client
    screening: Screening | None = None
    intake_status: str | None = None
    last_referral_at: dt.datetime | None = None
    course: Course | None = None
    sessions: list[dict[str, Any]] = field(default_factory=list)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    clearances: list[Clearance] = field(default_factory=list)

    @property
    def sessions_done(self) -> int:
        return sum(1 for s in self.sessions if s["status"] == TreatmentSession.Status.COMPLETED)

    def referred_since(self, moment: dt.datetime | None) -> bool:
        return self.last_referral_at is not None and (moment is None or self.last_referral_at >= moment)


def _latest(model: Any, order: tuple[str, ...], value: str) -> Subquery:
    return Subquery(model.objects.filter(client=OuterRef("pk")).order_by(*order).values(value)[:1])


def load_states(clients: QuerySet[Client]) -> list[ClientState]:
    """Every client's latest screening, intake status, latest course with its sessions and scores: six queries."""
    rows = list(
        clients.select_related("therapist")
        .annotate(
            latest_screening_id=_latest(Screening, ("-created_at", "-id"), "id"),
            latest_intake_status=_latest(Intake, ("-started_at", "-id"), "status"),
            last_referral_at=_latest(Referral, ("-created_at", "-id"), "created_at"),
            latest_course_id=_latest(Course, ("-started_at", "-id"), "id"),
        )
        .order_by("last_name", "first_name", "pk")
    )
    states = {
        c.pk: ClientState(client=c, intake_status=c.latest_intake_status, last_referral_at=c.last_referral_at)
        for c in rows
    }
    screening_ids = [c.latest_screening_id for c in rows if c.latest_screening_id]
    for screening in Screening.objects.filter(pk__in=screening_ids).defer("document"):
        states[screening.client_id].screening = screening
    needs_clearance = [s.client.pk for s in states.values() if s.screening and s.screening.needs_clearance]
    if needs_clearance:
        # What the clearance findings are depends on the screened document: load it for these screenings only.
        for screening in Screening.objects.filter(pk__in=[states[c].screening.pk for c in needs_clearance]):  # type: ignore[union-attr]
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
            by_course[session["course_id"]].append(session)
        scores: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for outcome in (
            Outcome.objects.filter(course_id__in=course_ids, instrument__in=("pain_nrs", "rmdq"))
            .order_by("recorded_at", "id")
            .values("course_id", "instrument", "timepoint", "score", "recorded_at")
        ):
            scores[outcome["course_id"]].append(outcome)
        reassessed = set(
            Outcome.objects.filter(course_id__in=course_ids, timepoint="reassessment").values_list(
                "course_id", flat=True
            )
        )
        for state in states.values():
            if state.course is not None:
                state.sessions = by_course.get(state.course.pk, [])
                state.outcomes = scores.get(state.course.pk, [])
                state.course.has_reassessment = state.course.pk in reassessed  # type: ignore[attr-defined]
    return list(states.values())


# --- The rules, on the bulk-loaded state -----------------------------------------------------------------


def clearance_pending(state: ClientState) -> list[str]:
    """As treatment_gate: the latest screening asks for clearance and some of its findings are not yet cleared."""
    if state.screening is None or not state.screening.needs_clearance:
        return []
    return clearance_scope.pending(state.screening, state.clearances).rules


def reassessment_due(state: ClientState) -> bool:
    """As services.courses.reassessment_due, for the client's latest course."""
    course = state.course
    return (
        course is not None
        and course.status == Course.Status.ACTIVE
        and state.sessions_done >= course.reassess_after
        and not getattr(course, "has_reassessment", False)
    )


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


def alerts_for(states: Iterable[ClientState]) -> list[Alert]:
    alerts: list[Alert] = []
    for state in states:
        client = state.client
        detail = reverse("client_detail", args=[client.pk])
        referral_url = reverse("referral_create", args=[client.pk])
        pending = clearance_pending(state)
        if pending and state.screening is not None:
            titles = [f["title"] for f in state.screening.result.get("findings", []) if f["rule"] in pending]
            alerts.append(
                Alert(
                    "clearance",
                    "Clearance pending",
                    client,
                    "A physician's clearance must be recorded before the first session: " + "; ".join(titles) + ".",
                    reverse("clearance_create", args=[client.pk, state.screening.pk]),
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
        screening = state.screening
        if (
            screening is not None
            and screening.decision in REFERRAL_DECISIONS
            and not state.referred_since(screening.created_at)
        ):
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
        if guarding and not state.referred_since(guarding[-1]["recorded_at"]):
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
        prompts = review_prompts(state)
        if prompts and not state.referred_since(_last_activity(state)):
            alerts.extend(
                Alert("referral", "Referral suggested", client, prompt, referral_url, "Record a referral")
                for prompt in prompts
            )
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
        elif state.intake_status is None and screening is None:
            alerts.append(
                Alert("intake", "Intake incomplete", client, "No intake yet.", detail, "Open the record", "info")
            )
    order = {"danger": 0, "warn": 1, "info": 2}
    alerts.sort(key=lambda a: order[a.severity])  # stable: clients stay in name order within a severity
    return alerts


# --- Pages -------------------------------------------------------------------------------------------------


def _today_bounds(staff: StaffMember) -> tuple[dt.datetime, dt.datetime]:
    try:
        zone = zoneinfo.ZoneInfo(staff.clinic.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    today = dt.datetime.now(zone).date()
    start = dt.datetime.combine(today, dt.time.min, tzinfo=zone)
    return start, start + dt.timedelta(days=1)


def _todays_clients(states: list[ClientState], staff: StaffMember) -> list[dict[str, Any]]:
    """Clients with a session today, or (until scheduling exists) a course in progress."""
    start, end = _today_bounds(staff)
    rows = []
    for state in states:
        seen_today = [s for s in state.sessions if start <= s["held_at"] < end]
        active = state.course is not None and state.course.status == Course.Status.ACTIVE
        if seen_today or active:
            rows.append(
                {
                    "client": state.client,
                    "course": state.course,
                    "done": state.sessions_done,
                    "seen_today": bool(seen_today),
                    "last_session": state.sessions[-1]["held_at"] if state.sessions else None,
                }
            )
    rows.sort(key=lambda r: (not r["seen_today"], r["client"].last_name, r["client"].first_name))
    return rows


def _owner_counts(staff: StaffMember) -> dict[str, Any]:
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
    pairs = list(scored.values_list("first_pain", "last_pain"))
    improved = sum(1 for first, last in pairs if pain_change(first, last).meaningful)
    return {
        "clients": Client.objects.filter(clinic=staff.clinic).count(),
        "active": by_status.get(Course.Status.ACTIVE, 0),
        "completed": by_status.get(Course.Status.COMPLETED, 0),
        "ended_referred": by_status.get(Course.Status.REFERRED, 0),
        "stopped": by_status.get(Course.Status.STOPPED, 0),
        "referrals": [(label, urgency.get(value, 0)) for value, label in Referral.Urgency.choices],
        "referrals_total": sum(urgency.values()),
        "scored": len(pairs),
        "improved": improved,
        "emails_failed": outbox.failure_count(staff),
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    if access.role_of(request.user) == "client":
        return redirect("portal")
    staff = access.require_staff(request.user)
    context: dict[str, Any] = {"staff": staff}
    from backcare.scheduling.held import held_appointments

    held = held_appointments(staff.clinic)
    if staff.role == Role.THERAPIST:
        held = held.filter(therapist=staff)
    context["held"] = list(held[:50])
    if staff.role == Role.FRONT_DESK:
        clients = access.clients_for(request.user).select_related("therapist").order_by("last_name", "first_name")
        listed = list(clients[: FRONT_DESK_LIMIT + 1])
        context.update(contacts=listed[:FRONT_DESK_LIMIT], more=len(listed) > FRONT_DESK_LIMIT)
        return render(request, "clinic/dashboard.html", context)

    states = load_states(access.clinical_clients_for(request.user))
    alerts = alerts_for(states)
    context["alerts"] = alerts
    if staff.role == Role.OWNER:
        context["counts"] = _owner_counts(staff)
        shown = [a.client for a in alerts]
    else:
        context["today"] = _todays_clients(states, staff)
        shown = [a.client for a in alerts] + [r["client"] for r in context["today"]]
    audit.viewed_many(request, shown, "dashboard")
    return render(request, "clinic/dashboard.html", context)


urlpatterns = [path("dashboard/", dashboard, name="dashboard")]
