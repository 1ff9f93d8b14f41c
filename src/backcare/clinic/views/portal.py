"""The client's portal: their own record in plain language, consent, the intake and the home programme.

A client only ever reaches their own record: every page takes the client from the signed-in user, never from the URL.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from backcare.clinic import audit
from backcare.clinic.access import require_client
from backcare.clinic.forms.courses import RmdqForm
from backcare.clinic.models import Client, Course, Intake, Screening
from backcare.clinic.services import consent as consent_services
from backcare.clinic.services import intake as intake_services
from backcare.clinic.services import outcomes as outcome_services
from backcare.clinic.services.screening import latest_screening, treatment_gate
from backcare.clinical.instruments import INSTRUMENTS, RMDQ_ITEMS
from backcare.clinical.vocabulary import POSITIONING, REGIONS

# What each decision means, said to the client. Honest and short; the therapist explains the rest.
CLIENT_DECISION: dict[str, tuple[str, str]] = {
    "proceed": ("ok", "Your answers show nothing that stops massage. Your therapist will confirm this with you."),
    "proceed_with_precautions": (
        "ok",
        "Massage can go ahead, with some changes to keep you safe. Your therapist will go through them with you.",
    ),
    "clearance_required": (
        "warn",
        "Before your first massage, please talk to your {doctor}. Your therapist needs to know that your "
        "doctor agrees massage is safe for you.",
    ),
    "postpone": (
        "warn",
        "No massage for now: please wait until you are well again, then contact the clinic to rebook.",
    ),
    "refer_urgent": (
        "danger",
        "No massage for now. Please see a doctor within the next few days (today if a leg is swollen, warm or "
        "painful). Some of your answers need a doctor's check first.",
    ),
    "refer_emergency": (
        "danger",
        "Please get medical help now: call {emergency} or go to an emergency department. "
        "Some of your answers can be signs of a problem that needs urgent care. Do not wait for your massage "
        "appointment.",
    ),
}

HOME_PROGRAMME_TITLES: dict[str, str] = {
    "exercise": "Exercise and staying active",
    "posture": "Posture and breaks",
    "relaxation": "Relaxation and breathing",
    "self_massage": "Self-massage",
}


def doctor_word(screening: Screening) -> str:
    """ "doctor", or "doctor or midwife" only when the screening is about a pregnancy."""
    pregnant = screening.document.get("pregnancy_weeks") or any(
        str(f.get("code", "")).startswith("pregnan") for f in screening.document.get("findings", [])
    )
    return "doctor or midwife" if pregnant else "doctor"


def portal_client(request: HttpRequest) -> Client:
    return require_client(request.user)


def plain_screening(screening: Screening | None) -> dict[str, Any] | None:
    """A screening as the client reads it: a short sentence for the decision and each finding's plain summary.
    Never the therapist's rationale or the sources."""
    if screening is None:
        return None
    tone, sentence = CLIENT_DECISION.get(screening.decision, ("warn", "Your therapist will talk you through this."))
    client = screening.client
    if screening.decision == "clearance_required" and treatment_gate(client).allowed:
        tone, sentence = "ok", "Your doctor's agreement is on record: massage can go ahead, with the changes below."
    sentence = sentence.format(emergency=client.clinic.emergency, doctor=doctor_word(screening))
    summaries: list[str] = []
    for finding in screening.result.get("findings", []):
        summary = str(finding.get("summary", "")).strip()
        if summary and summary not in summaries:
            summaries.append(summary)
    precautions = screening.result.get("precautions", {})
    return {
        "decision": screening.decision,
        "tone": tone,
        "sentence": sentence,
        "summaries": summaries,
        "avoid": [REGIONS.get(r, r) for r in precautions.get("avoid_regions", [])],
        "positioning": [POSITIONING.get(p, p) for p in precautions.get("positioning", [])],
        "date": screening.created_at,
        "reviewed": screening.kind == Screening.Kind.REVIEW,
    }


def current_course(client: Client) -> Course | None:
    course = client.courses.filter(status=Course.Status.ACTIVE).first()
    return course or client.courses.order_by("-started_at").first()


def home_programme_items(course: Course | None) -> list[tuple[str, str]]:
    if course is None or not isinstance(course.home_programme, dict):
        return []
    return [
        (HOME_PROGRAMME_TITLES.get(k, str(k).replace("_", " ").capitalize()), str(v))
        for k, v in course.home_programme.items()
        if str(v).strip()
    ]


def next_steps(client: Client, consented: bool, intake: Intake | None, screening: Screening | None) -> list[str]:
    steps: list[str] = []
    if not consented:
        steps.append("consent")
    elif intake is None or intake.status == Intake.Status.DRAFT:
        steps.append("intake")
    elif intake.status == Intake.Status.SUBMITTED:
        steps.append("await_review")
    if screening is not None:
        if screening.decision in ("refer_emergency", "refer_urgent"):
            steps.append("see_doctor")
        elif screening.decision == "clearance_required" and not treatment_gate(client).allowed:
            steps.append("clearance_midwife" if doctor_word(screening) != "doctor" else "clearance")
        elif screening.decision == "postpone":
            steps.append("postpone")
    return steps


@login_required
@never_cache
def portal(request: HttpRequest) -> HttpResponse:
    client = portal_client(request)
    audit.viewed(request, client, "portal")
    consent = consent_services.current_consent(client)
    intake = intake_services.current_intake(client)
    screening = latest_screening(client)
    course = current_course(client)
    return render(
        request,
        "clinic/portal.html",
        {
            "client": client,
            "clinic": client.clinic,
            "consent": consent,
            "latest_consent": consent_services.latest_consent(client),
            "consent_text": consent_services.current_consent_text(),
            "intake": intake,
            "result": plain_screening(screening),
            "course": course,
            "sessions_done": course.sessions.filter(status="completed").count() if course else 0,
            "home_programme": home_programme_items(course),
            "steps": next_steps(client, consent is not None, intake, screening),
            "goals_text": (intake.answers.get("goals_text", "") if intake else ""),
            "questionnaire": outcome_services.questionnaire_due(client),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_questionnaire(request: HttpRequest) -> HttpResponse:
    """The questionnaire of the course's outcome plan that is due now (Roland-Morris), filled in before the session."""
    client = portal_client(request)
    due = outcome_services.questionnaire_due(client)
    if due is None:
        messages.info(request, "There is no questionnaire for you to fill in now. Thank you.")
        return redirect("portal")
    form = RmdqForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            outcome_services.record_client_questionnaire(
                client, timepoint=request.POST.get("timepoint", ""), ticked=form.ticked(), request=request
            )
        except ValidationError as e:
            messages.info(request, " ".join(e.messages))
        else:
            messages.success(request, "Thank you, your answers are sent to your therapist.")
        return redirect("portal")
    audit.viewed(request, client, f"portal questionnaire ({due.timepoint})", due.course)
    return render(
        request,
        "clinic/portal_questionnaire.html",
        {
            "client": client,
            "due": due,
            "form": form,
            "items": [form[f"item_{n}"] for n in range(1, len(RMDQ_ITEMS) + 1)],
            "instrument": INSTRUMENTS["rmdq"],
        },
    )


class ConsentForm(forms.Form):
    signature = forms.CharField(
        label="Type your full name to sign",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
        help_text="Your first and last name, as the clinic has them.",
    )
    version = forms.CharField(widget=forms.HiddenInput, max_length=20)


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def consent(request: HttpRequest) -> HttpResponse:
    client = portal_client(request)
    text = consent_services.current_consent_text()
    signed = consent_services.current_consent(client)
    form = ConsentForm(request.POST or None, initial={"version": text.version if text else ""})
    if request.method == "POST" and text is not None and signed is None and form.is_valid():
        if form.cleaned_data["version"] != text.version:
            form.add_error(None, "A newer version of the consent text has been published. Please read it and sign.")
        else:
            try:
                consent_services.sign_consent(
                    client, text, form.cleaned_data["signature"], request.META.get("REMOTE_ADDR"), request=request
                )
            except ValidationError as e:
                for name, errs in e.message_dict.items():
                    form.add_error(name if name in form.fields else None, errs)
            else:
                messages.success(request, "Thank you. Your consent is recorded.")
                intake = intake_services.current_intake(client)
                if intake is None or intake.status == Intake.Status.DRAFT:
                    return redirect("portal_intake")
                return redirect("portal")
    if request.method == "POST" and signed is not None:
        return redirect("portal")
    if form.errors.get("signature"):
        form.fields["signature"].widget.attrs["aria-invalid"] = "true"
    audit.viewed(request, client, "consent")
    return render(
        request,
        "clinic/consent.html",
        {
            "client": client,
            "text": text,
            "body": consent_services.consent_html(text) if text else "",
            "signed": signed,
            "form": form,
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_intake(request: HttpRequest) -> HttpResponse:
    client = portal_client(request)
    if not consent_services.has_current_consent(client):
        messages.info(request, "Please read and sign the consent form before you answer the health questions.")
        return redirect("consent")
    intake = intake_services.current_intake(client)
    if intake is not None and intake.status != Intake.Status.DRAFT:
        if request.method == "POST":
            messages.info(request, "Your answers were already sent. Thank you.")
        else:
            messages.info(request, "Your answers have been sent. Tell your therapist if anything has changed.")
        return redirect("portal")
    ctx = intake_services.Context.for_client(client)
    answers: dict[str, Any] = dict(intake.answers) if intake is not None else {}
    errors: dict[str, str] = {}
    if request.method == "POST":
        posted = intake_services.answers_from_post(request.POST, ctx)
        answers = {**answers, **posted}
        intake = intake_services.save_draft(client, posted, request=request)
        if request.POST.get("action") == "submit":
            try:
                screening = intake_services.submit(intake, request=request)
            except ValidationError as e:
                if hasattr(e, "error_dict"):
                    errors = {k: " ".join(v) for k, v in e.message_dict.items()}
                else:
                    messages.info(request, " ".join(e.messages))
                    return redirect("portal")
            else:
                if screening.blocks_treatment:
                    messages.warning(request, "Thank you, your answers are sent. Please read the advice below.")
                else:
                    messages.success(request, "Thank you, your answers are sent to your therapist.")
                return redirect("portal")
        else:
            messages.success(request, "Your answers are saved. You can come back and finish them at any time.")
            return redirect("portal_intake")
    audit.viewed(request, client, "portal intake", intake)
    sections = intake_services.layout(answers, errors, ctx)
    return render(
        request,
        "clinic/portal_intake.html",
        {
            "client": client,
            "form_spec": intake_services.intake_form(),
            "intake": intake,
            "sections": sections,
            "errors": intake_services.ordered_errors(sections, errors),
        },
    )


@login_required
@never_cache
def portal_home_programme(request: HttpRequest) -> HttpResponse:
    client = portal_client(request)
    course = current_course(client)
    audit.viewed(request, client, "home programme", course)
    return render(
        request,
        "clinic/portal_home_programme.html",
        {"client": client, "clinic": client.clinic, "course": course, "items": home_programme_items(course)},
    )


urlpatterns = [
    path("portal/", portal, name="portal"),
    path("portal/consent/", consent, name="consent"),
    path("portal/intake/", portal_intake, name="portal_intake"),
    path("portal/home-programme/", portal_home_programme, name="portal_home_programme"),
    path("portal/questionnaire/", portal_questionnaire, name="portal_questionnaire"),
]
