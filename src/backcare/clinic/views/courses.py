"""The therapist's pages for a treatment course: start it from the screening's plan, the pre-session health update,
session notes (SOAP with body chart), the Roland-Morris questionnaire, reassessment and the end of the course.

Views stay thin: every write goes through `backcare.clinic.services`; every page asks `access.get_client(...,
clinical=True)` (front desk 403, another therapist's client 404) and records that clinical data was viewed.
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backcare.clinic import access, audit, extensions
from backcare.clinic.forms.courses import (
    HOME_PROGRAMME_LABELS,
    HOME_PROGRAMME_SECTIONS,
    AddendumForm,
    CourseEndForm,
    CourseForm,
    HealthUpdateForm,
    RmdqForm,
    SessionForm,
    course_initial_from_course,
    course_initial_from_plan,
)
from backcare.clinic.models import Client, Course, Outcome, Screening, StaffMember, TreatmentSession
from backcare.clinic.services import courses as course_service
from backcare.clinic.services import outcomes as outcome_service
from backcare.clinic.services import sessions as session_service
from backcare.clinic.services.clearances import precautions_for
from backcare.clinic.services.screening import IntakeError, treatment_gate
from backcare.clinical.instruments import INSTRUMENTS, RMDQ_ITEMS
from backcare.clinical.vocabulary import (
    ADJUNCTS,
    DECISION_TEXT,
    GOALS,
    POSITIONING,
    PRESSURE_SCALE,
    REFERRAL_TEXT,
    REGIONS,
    TECHNIQUES,
)
from backcare.common.forms import add_service_errors

RMDQ_TIMEPOINTS = {
    "baseline": "Baseline (start of the course)",
    "reassessment": "Reassessment",
    "discharge": "Discharge (end of the course)",
}
NO_IMPROVEMENT_PROMPT = (
    "No meaningful improvement at reassessment: change the technique or refer the client to their physician."
)
HEALTH_UPDATE_KEYS = "backcare_health_update_keys"


# --- helpers -----------------------------------------------------------------------------------------------------


def _staff(request: HttpRequest) -> StaffMember:
    staff = access.staff_of(request.user)
    if staff is None:  # get_client(clinical=True) already answered 404 for anyone who is not staff
        raise PermissionDenied("This page is for clinic staff.")
    return staff


def _course(request: HttpRequest, pk: int) -> tuple[Course, Client]:
    """The course if the user may see its client's clinical record (front desk 403, others 404)."""
    course = get_object_or_404(Course.objects.select_related("client", "screening", "therapist"), pk=pk)
    client = access.get_client(request.user, course.client_id, clinical=True)
    return course, client


def _names(codes: list[str], vocabulary: dict[str, str]) -> list[str]:
    return [vocabulary.get(code, code) for code in codes]


def _pressure_text(level: int | None) -> str:
    return "" if level is None else f"{level} ({PRESSURE_SCALE.get(level, '?')})"


def precautions_view(precautions: dict[str, Any]) -> dict[str, Any]:
    """Precautions in words, for the templates."""
    return {
        "avoid_regions": _names(precautions.get("avoid_regions", []), REGIONS),
        "max_pressure": _pressure_text(precautions.get("max_pressure")),
        "avoid_techniques": _names(precautions.get("avoid_techniques", []), TECHNIQUES),
        "positioning": _names(precautions.get("positioning", []), POSITIONING),
        "any": any(precautions.get(k) for k in ("avoid_regions", "max_pressure", "avoid_techniques", "positioning")),
    }


def findings_view(result: dict[str, Any]) -> list[dict[str, Any]]:
    """A screening's findings with their decision and region in words."""
    return [
        {
            **f,
            "decision_label": f.get("decision", "").replace("_", " "),
            "region_name": REGIONS.get(f.get("region") or "", ""),
        }
        for f in result.get("findings", [])
    ]


def _latest_update(course: Course) -> Screening | None:
    return (
        course.client.screenings.filter(kind=Screening.Kind.PRE_SESSION, created_at__gte=course.started_at)
        .order_by("-created_at", "-id")
        .first()
    )


def _review_context(course: Course) -> dict[str, Any]:
    review = outcome_service.review_course(course)
    return {
        "review": review,
        "pain_text": review.pain.describe() if review.pain else "",
        "rmdq_text": review.rmdq.describe() if review.rmdq else "",
    }


def _rmdq_url(course: Course, timepoint: str) -> str:
    return reverse("rmdq_record", args=[course.pk]) + "?" + urlencode({"timepoint": timepoint})


def _stopped(request: HttpRequest, course: Course, client: Client, update: Screening | None, gate: Any) -> HttpResponse:
    """The page that stops a session: the decision and findings, and the way on (referral or clearance)."""
    screening = update or gate.screening
    result = screening.result if screening is not None else {}
    audit.viewed(request, client, "session stopped by health update", obj=screening)
    return render(
        request,
        "clinic/health_update_stopped.html",
        {
            "course": course,
            "client": client,
            "screening": screening,
            "decision_text": DECISION_TEXT.get(screening.decision, "") if screening else "",
            "referral_text": REFERRAL_TEXT.get(screening.referral, "") if screening else "",
            "findings": findings_view(result),
            "gate": gate,
            "blocks": screening is not None and screening.blocks_treatment,
        },
    )


# --- course start, detail, edit, end ------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def course_start(request: HttpRequest, pk: int) -> HttpResponse:
    client = access.get_client(request.user, pk, clinical=True)
    staff = _staff(request)
    current = course_service.active_course(client)
    if current is not None:
        messages.info(request, "This client already has a course in progress.")
        return redirect("course_detail", pk=current.pk)
    gate = treatment_gate(client)
    plan = gate.screening.result.get("plan") if gate.screening is not None else None
    if not gate.allowed or plan is None:
        audit.viewed(request, client, "course start refused", obj=gate.screening)
        return render(
            request,
            "clinic/course_blocked.html",
            {
                "client": client,
                "gate": gate,
                "reason": gate.reason or "The screening recommends no plan, so no course can start.",
                "findings": findings_view(gate.screening.result) if gate.screening else [],
            },
            status=403,
        )
    assert gate.screening is not None
    precautions = precautions_for(gate.screening)  # with the physician's restrictions
    goal_codes = gate.screening.document.get("goals", [])
    goals = "; ".join(GOALS.get(g, g) for g in goal_codes)
    if request.method == "POST":
        form = CourseForm(request.POST, precautions=precautions)
        if form.is_valid():
            try:
                course = course_service.start_course(client, staff=staff, request=request, **form.changes())
            except ValidationError as e:
                add_service_errors(form, e)
            else:
                messages.success(request, "Course started. Now record the baseline Roland-Morris questionnaire.")
                return redirect(_rmdq_url(course, "baseline"))
    else:
        form = CourseForm(initial=course_initial_from_plan(plan, goals), precautions=precautions)
        audit.viewed(request, client, "course start", obj=gate.screening)
    return render(
        request,
        "clinic/course_start.html",
        {
            "client": client,
            "screening": gate.screening,
            "decision_text": DECISION_TEXT.get(gate.screening.decision, ""),
            "plan": plan,
            "plan_techniques": _names(plan.get("techniques", []), TECHNIQUES),
            "plan_adjuncts": _names(plan.get("adjuncts", []), ADJUNCTS),
            "rationale": plan.get("rationale", []),
            "precautions": precautions_view(precautions),
            "findings": findings_view(gate.screening.result),
            "form": form,
            "unqualified": _unqualified(client.therapist or staff, form),
        },
    )


def _unqualified(therapist: StaffMember, form: Form) -> dict[str, Any] | None:
    """The planned techniques the course's therapist is not qualified for: a warning when the course starts."""
    chosen = form["techniques"].value() or []
    missing = [TECHNIQUES.get(t, t) for t in chosen if t not in (therapist.qualified_techniques or [])]
    return {"therapist": therapist.display_name, "techniques": missing} if missing else None


@login_required
@require_http_methods(["GET"])
def course_detail(request: HttpRequest, pk: int) -> HttpResponse:
    course, client = _course(request, pk)
    plan = course.recommended_plan or {}
    rows = [
        (
            "Techniques",
            ", ".join(_names(course.techniques, TECHNIQUES)),
            ", ".join(_names(plan.get("techniques", []), TECHNIQUES)),
        ),
        ("Sessions", str(course.sessions_planned), str(plan.get("sessions", ""))),
        ("Weeks", str(course.weeks), str(plan.get("weeks", ""))),
        ("Reassess after session", str(course.reassess_after), str(plan.get("reassess_after_session", ""))),
        (
            "Alongside massage",
            ", ".join(_names(course.adjuncts, ADJUNCTS)),
            ", ".join(_names(plan.get("adjuncts", []), ADJUNCTS)),
        ),
    ]
    session_rows = [
        {
            "session": s,
            "techniques": ", ".join(_names(s.techniques, TECHNIQUES)),
            "pressure": _pressure_text(s.pressure),
        }
        for s in course.sessions.order_by("number")
    ]
    latest = _latest_update(course)
    rmdq = list(course.outcomes.filter(instrument=Outcome.Instrument.RMDQ).order_by("recorded_at", "id"))
    recorded = {o.timepoint for o in rmdq}
    done = course.sessions.count()
    active = course.status == Course.Status.ACTIVE
    audit.viewed(request, client, "course detail", obj=course)
    return render(
        request,
        "clinic/course_detail.html",
        {
            "course": course,
            "client": client,
            "active": active,
            "panels": extensions.course_panels(course, request.user),
            "plan_rows": [{"label": a, "course": b, "plan": c, "differs": b != c} for a, b, c in rows],
            "plan_pain_stage": plan.get("pain_stage", ""),
            "plan_risk_group": plan.get("risk_group", ""),
            "precautions": precautions_view(course.precautions),
            "latest_update": latest,
            "latest_precautions": precautions_view(latest.result.get("precautions", {})) if latest else None,
            "session_rows": session_rows,
            "sessions_done": done,
            "can_start_session": active and done < course.sessions_planned,
            "reassessment_due": course_service.reassessment_due(course),
            "rmdq": rmdq,
            "baseline_missing": "baseline" not in recorded and active,
            "discharge_missing": "discharge" not in recorded,
            "rmdq_baseline_url": _rmdq_url(course, "baseline"),
            "rmdq_reassessment_url": _rmdq_url(course, "reassessment"),
            "rmdq_discharge_url": _rmdq_url(course, "discharge"),
            "home_programme": [
                (HOME_PROGRAMME_LABELS.get(k, k), (course.home_programme or {}).get(k, ""))
                for k in HOME_PROGRAMME_SECTIONS
                if (course.home_programme or {}).get(k)
            ],
            **_review_context(course),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def course_edit(request: HttpRequest, pk: int) -> HttpResponse:
    course, client = _course(request, pk)
    staff = _staff(request)
    if course.status != Course.Status.ACTIVE:
        messages.error(request, "This course has ended and can no longer be changed.")
        return redirect("course_detail", pk=course.pk)
    latest = client.screenings.order_by("-created_at", "-id").first()
    precautions = precautions_for(latest) if latest is not None else course.precautions  # the latest screening's
    if request.method == "POST":
        form = CourseForm(request.POST, precautions=precautions)
        if form.is_valid():
            try:
                course_service.update_course(course, staff=staff, request=request, **form.changes())
            except ValidationError as e:
                add_service_errors(form, e)
            else:
                messages.success(request, "Course updated.")
                return redirect("course_detail", pk=course.pk)
    else:
        form = CourseForm(initial=course_initial_from_course(course), precautions=precautions)
        audit.viewed(request, client, "course edit", obj=course)
    return render(
        request,
        "clinic/course_edit.html",
        {"course": course, "client": client, "form": form, "precautions": precautions_view(precautions)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def course_end(request: HttpRequest, pk: int) -> HttpResponse:
    course, client = _course(request, pk)
    staff = _staff(request)
    if course.status != Course.Status.ACTIVE:
        messages.info(request, "This course has already ended.")
        return redirect("course_detail", pk=course.pk)
    if request.method == "POST":
        form = CourseEndForm(request.POST)
        if form.is_valid():
            try:
                course_service.end_course(
                    course,
                    status=form.cleaned_data["status"],
                    note=form.cleaned_data["note"],
                    staff=staff,
                    request=request,
                )
            except ValidationError as e:
                add_service_errors(form, e)
            else:
                messages.success(request, f"Course ended: {course.get_status_display().lower()}.")
                for prompt in outcome_service.review_course(course).prompts:
                    messages.warning(request, prompt)
                return redirect("course_detail", pk=course.pk)
    else:
        form = CourseEndForm()
        audit.viewed(request, client, "course end", obj=course)
    recorded = set(course.outcomes.filter(instrument="rmdq").values_list("timepoint", flat=True))
    return render(
        request,
        "clinic/course_end.html",
        {
            "course": course,
            "client": client,
            "form": form,
            "discharge_missing": "discharge" not in recorded,
            "rmdq_discharge_url": _rmdq_url(course, "discharge"),
            **_review_context(course),
        },
    )


# --- Roland-Morris ---------------------------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def rmdq_record(request: HttpRequest, pk: int) -> HttpResponse:
    course, client = _course(request, pk)
    timepoint = request.GET.get("timepoint") or request.POST.get("timepoint") or ""
    recorded = {o.timepoint: o for o in course.outcomes.filter(instrument="rmdq")}
    if not timepoint:
        if "baseline" not in recorded:
            timepoint = "baseline"
        elif "reassessment" not in recorded and course.status == Course.Status.ACTIVE:
            timepoint = "reassessment"
        else:
            timepoint = "discharge"
    if timepoint not in RMDQ_TIMEPOINTS:
        return HttpResponseBadRequest("Roland-Morris is recorded at baseline, reassessment or discharge.")
    existing = recorded.get(timepoint)
    if existing is None and timepoint != "discharge" and course.status != Course.Status.ACTIVE:
        messages.error(request, "This course has ended; only the discharge Roland-Morris can still be recorded.")
        return redirect("course_detail", pk=course.pk)
    form = RmdqForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and existing is None and form.is_valid():
        try:
            outcome = outcome_service.record_rmdq(
                client,
                ticked=form.ticked(),
                timepoint=timepoint,
                course=course,
                by=request.user,
                request=request,
            )
        except ValidationError as e:
            add_service_errors(form, e)
        else:
            messages.success(
                request, f"Roland-Morris ({RMDQ_TIMEPOINTS[timepoint].lower()}) recorded: {outcome.score} out of 24."
            )
            if timepoint == "reassessment" and not outcome_service.review_course(course).improved:
                messages.warning(request, NO_IMPROVEMENT_PROMPT)
            return redirect("course_detail", pk=course.pk)
    if request.method == "GET":
        audit.viewed(request, client, f"Roland-Morris ({timepoint})", obj=course)
    instrument = INSTRUMENTS["rmdq"]
    return render(
        request,
        "clinic/rmdq_record.html",
        {
            "course": course,
            "client": client,
            "form": form,
            "items": [form[f"item_{n}"] for n in range(1, len(RMDQ_ITEMS) + 1)],
            "timepoint": timepoint,
            "timepoint_label": RMDQ_TIMEPOINTS[timepoint],
            "existing": existing,
            "instrument": instrument,
            "action": _rmdq_url(course, timepoint),
        },
    )


# --- the pre-session health update and the session note ----------------------------------------------------------


_session_blocked_reason = session_service.session_blocked_reason


@login_required
@require_http_methods(["GET", "POST"])
def health_update(request: HttpRequest, pk: int) -> HttpResponse:
    course, client = _course(request, pk)
    staff = _staff(request)
    reason = _session_blocked_reason(course)
    if reason:
        messages.error(request, reason)
        return redirect("course_detail", pk=course.pk)
    last = client.screenings.order_by("-created_at", "-id").first()
    known = (last.document if last else course.screening.document).get("findings", [])
    if request.method == "POST":
        form = HealthUpdateForm(request.POST, request.FILES, known=known)
        once = request.POST.get("once", "")[:64]
        done_keys: dict[str, int] = request.session.get(HEALTH_UPDATE_KEYS, {})
        update: Screening | None = None
        if once and once in done_keys:  # the same form sent twice: use the update it already made
            update = client.screenings.filter(pk=done_keys[once]).first()
        if update is None and form.is_valid():
            try:
                update = session_service.health_update(
                    course,
                    staff=staff,
                    new_findings=form.new_findings(),
                    pain_now=form.cleaned_data["pain_now"],
                    resolved=form.resolved(),
                    assessment=form.assessment(),
                    request=request,
                )
            except IntakeError as e:
                form.add_error(None, f"The update could not be screened: {e}")
            except ValidationError as e:  # a red flag withdrawn without a medical assessment
                add_service_errors(form, e)
            else:
                if once:
                    done_keys = dict(list(done_keys.items())[-19:])
                    done_keys[once] = update.pk
                    request.session[HEALTH_UPDATE_KEYS] = done_keys
        if update is not None:
            gate = treatment_gate(client)
            if update.blocks_treatment or not gate.allowed:
                return _stopped(request, course, client, update, gate)
            return redirect("session_record", pk=course.pk, update=update.pk)
    else:
        form = HealthUpdateForm(known=known)
        once = secrets.token_urlsafe(24)
        audit.viewed(request, client, "pre-session health update", obj=course)
    return render(
        request,
        "clinic/health_update.html",
        {
            "course": course,
            "client": client,
            "form": form,
            "once": once,
            "next_number": course.sessions.count() + 1,
            "precautions": precautions_view(precautions_for(last) if last else course.precautions),
        },
    )


def _session_form_redirect(request: HttpRequest, course: Course, screening: Screening) -> HttpResponse | None:
    """Where a GET of the session form goes instead, when the course or the health update cannot take a session.
    (On a POST the service makes these checks and the form comes back with the message and every input kept.)"""
    reason = _session_blocked_reason(course)
    if reason:
        messages.error(request, reason)
        return redirect("course_detail", pk=course.pk)
    used = screening.treatment_sessions.first()
    if used is not None:
        messages.info(
            request,
            f"That health update was used for session {used.number}. Ask the health update again for a new session.",
        )
        return redirect("session_detail", pk=used.pk)
    if timezone.now() - screening.created_at > session_service.HEALTH_UPDATE_VALID:
        messages.error(request, "That health update is too old. Ask again: anything new since last time?")
        return redirect("health_update", pk=course.pk)
    return None


def _session_initial(course: Course, screening: Screening, previous: TreatmentSession | None) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "techniques": list(course.techniques),
        "aftercare": session_service.DEFAULT_AFTERCARE,
        "pain_before": screening.document.get("pain", {}).get("intensity"),
        "submission_key": secrets.token_urlsafe(24),
    }
    if previous is not None:
        initial.update(session_service.copy_forward(previous))
    return initial


def _save_session(
    request: HttpRequest, course: Course, form: SessionForm, screening: Screening, previous: TreatmentSession | None
) -> HttpResponse | None:
    """Record the valid form through the service; None when it came back with errors on the form."""
    try:
        session = session_service.record_session(
            course, form.note(previous), staff=_staff(request), health_update=screening, request=request
        )
    except ValidationError as e:
        key = form.cleaned_data.get("submission_key")
        twin = TreatmentSession.objects.filter(submission_key=key, course=course).first() if key else None
        if twin is not None:  # a simultaneous second submission of the same form
            return redirect("session_detail", pk=twin.pk)
        add_service_errors(form, e)
        return None
    if session.course_id != course.pk:
        form.add_error(None, "This form was already used for another course; reload the page.")
        return None
    messages.success(request, f"Session {session.number} recorded.")
    return redirect("session_detail", pk=session.pk)


@login_required
@require_http_methods(["GET", "POST"])
def session_record(request: HttpRequest, pk: int, update: int) -> HttpResponse:
    course, client = _course(request, pk)
    _staff(request)
    screening = get_object_or_404(Screening, pk=update, client=client, kind=Screening.Kind.PRE_SESSION)
    if request.method == "POST":
        key = request.POST.get("submission_key", "")
        earlier = TreatmentSession.objects.filter(submission_key=key, course=course).first() if key else None
        if earlier is not None:  # the same form sent twice: the session exists already
            return redirect("session_detail", pk=earlier.pk)
    elif (away := _session_form_redirect(request, course, screening)) is not None:
        return away
    gate = treatment_gate(client)
    if screening.blocks_treatment or not gate.allowed:
        return _stopped(request, course, client, screening, gate)
    precautions = precautions_for(screening)  # the screening's, with the physician's restrictions added
    referrals = [
        (r.pk, f"{r.get_urgency_display()} referral of {timezone.localtime(r.created_at):%d %b %Y %H:%M}")
        for r in client.referrals.order_by("-created_at")
    ]
    previous = session_service.previous_session(course)
    if request.method == "POST":
        form = SessionForm(request.POST, precautions=precautions, referrals=referrals)
        if form.is_valid() and (done := _save_session(request, course, form, screening, previous)) is not None:
            return done
        copied = previous if previous is not None and form["copied_from"].value() == str(previous.pk) else None
    else:
        copied = previous if previous is not None and request.GET.get("copy") == str(previous.pk) else None
        form = SessionForm(
            initial=_session_initial(course, screening, copied), precautions=precautions, referrals=referrals
        )
        audit.viewed(request, client, "session note", obj=course)
    return render(
        request,
        "clinic/session_record.html",
        {
            "course": course,
            "client": client,
            "screening": screening,
            "form": form,
            "number": course.sessions.count() + 1,
            "precautions": precautions_view(precautions),
            "avoid_regions": precautions.get("avoid_regions", []),
            "treated_selected": form["treated"].value() or [],
            "deviation_errors": form.errors.get("deviation_reason"),
            "decision_text": DECISION_TEXT.get(screening.decision, ""),
            "previous": previous,
            "copied": copied,
            "copied_fields": session_service.COPIED_FIELDS,
            "copy_url": f"{request.path}?copy={previous.pk}" if previous is not None else "",
        },
    )


@login_required
def session_sign(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(TreatmentSession, pk=pk)
    _course(request, session.course_id)  # who may not see the record is refused before the method is looked at
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    try:
        session_service.sign_session(session, staff=_staff(request), request=request)
    except ValidationError as e:
        messages.error(request, " ".join(e.messages))
    else:
        messages.success(request, f"Session {session.number} signed. The note is locked; add an addendum to it.")
    return redirect("session_detail", pk=session.pk)


@login_required
@require_http_methods(["GET", "POST"])
def session_addendum(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(TreatmentSession, pk=pk)
    course, client = _course(request, session.course_id)
    staff = _staff(request)
    if session.signed_at is None:
        messages.info(request, "The note is not signed yet: addenda are added after signing.")
        return redirect("session_detail", pk=session.pk)
    form = AddendumForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            session_service.add_addendum(
                session,
                staff=staff,
                text=form.cleaned_data["text"],
                reason=form.cleaned_data["reason"],
                request=request,
            )
        except ValidationError as e:
            add_service_errors(form, e)
        else:
            messages.success(request, f"Addendum added to session {session.number}.")
            return redirect("session_detail", pk=session.pk)
    if request.method == "GET":
        audit.viewed(request, client, "session addendum", obj=session)
    return render(
        request,
        "clinic/session_addendum.html",
        {"session": session, "course": course, "client": client, "form": form},
    )


@login_required
@require_http_methods(["GET"])
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(TreatmentSession.objects.select_related("course", "health_update"), pk=pk)
    course, client = _course(request, session.course_id)
    precautions = session.health_update.result.get("precautions", {}) if session.health_update else course.precautions
    chart = [
        {
            "name": REGIONS.get(code, code),
            "treated": marks.get("treated", False),
            "tension": marks.get("tension"),
            "pain": marks.get("pain"),
        }
        for code, marks in (session.body_chart or {}).items()
    ]
    audit.viewed(request, client, "session detail", obj=session)
    return render(
        request,
        "clinic/session_detail.html",
        {
            "session": session,
            "course": course,
            "client": client,
            "techniques": _names(session.techniques, TECHNIQUES),
            "pressure": _pressure_text(session.pressure),
            "chart": chart,
            "treated": [code for code, marks in (session.body_chart or {}).items() if marks.get("treated")],
            "avoid_regions": precautions.get("avoid_regions", []),
            "precautions": precautions_view(precautions),
            "guarding_prompt": session_service.guarding_prompt(session),
            "reassessment_due": course_service.reassessment_due(course),
            "rmdq_reassessment_url": _rmdq_url(course, "reassessment"),
            "can_start_session": not _session_blocked_reason(course),
            "addenda": session.addenda.select_related("author"),
            "can_sign": session.signed_at is None
            and session.therapist_id == getattr(access.staff_of(request.user), "pk", None),
            "copied_from": session.copied_from,
        },
    )


urlpatterns = [
    path("clients/<int:pk>/courses/start/", course_start, name="course_start"),
    path("courses/<int:pk>/", course_detail, name="course_detail"),
    path("courses/<int:pk>/edit/", course_edit, name="course_edit"),
    path("courses/<int:pk>/end/", course_end, name="course_end"),
    path("courses/<int:pk>/roland-morris/", rmdq_record, name="rmdq_record"),
    path("courses/<int:pk>/health-update/", health_update, name="health_update"),
    path("courses/<int:pk>/sessions/new/<int:update>/", session_record, name="session_record"),
    path("sessions/<int:pk>/", session_detail, name="session_detail"),
    path("sessions/<int:pk>/sign/", session_sign, name="session_sign"),
    path("sessions/<int:pk>/addendum/", session_addendum, name="session_addendum"),
]
