"""Staff pages of the intake area: inviting a client to the portal and reviewing (or filling in) the intake; and the
client's registration from an invitation link."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from backcare.clinic import audit, once
from backcare.clinic.access import get_client, get_client_to_invite, require_staff
from backcare.clinic.forms.clients import DATE_INPUT_FORMATS, AssessmentForm, _date_widget
from backcare.clinic.models import Intake, Invitation, Role, Screening
from backcare.clinic.services import consent as consent_services
from backcare.clinic.services import intake as intake_services
from backcare.clinic.services.screening import latest_screening
from backcare.clinical.vocabulary import DECISION_TEXT, REFERRAL_TEXT, REGIONS
from backcare.common.forms import add_service_errors

# --- Invitation --------------------------------------------------------------------------------------------------


class InviteForm(forms.Form):
    method = forms.ChoiceField(choices=Invitation.Method.choices)
    submission_key = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)


HANDOVER_SESSION_KEY = "backcare_handover_token"


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def invite_client(request: HttpRequest, pk: int) -> HttpResponse:
    """Invite a client to the portal: by email to their address, or by a hand-over on this device. The link is
    never shown here; the page only says what was sent, to whom, and until when."""
    staff, client = get_client_to_invite(request.user, pk)
    if request.method == "POST":
        form = InviteForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose how the invitation reaches the client: by email or a hand-over here.")
            return redirect("invite_client", pk=client.pk)
        key = form.cleaned_data["submission_key"]
        first, _ = once.claim(request.user, key, scope="invite")
        just_made = client.invitations.filter(
            created_by=staff, used_at__isnull=True, created_at__gte=timezone.now() - dt.timedelta(seconds=10)
        )
        if not first or (not key and just_made.exists()):
            messages.info(request, "This invitation was already sent.")
            return redirect("invite_client", pk=client.pk)
        try:
            if form.cleaned_data["method"] == Invitation.Method.HANDOVER:
                token = consent_services.start_handover(client, staff, request=request)
            else:
                invitation, _queued = consent_services.send_invitation(client, staff, request=request)
        except ValidationError as e:
            once.release(request.user, key, scope="invite")
            messages.error(request, " ".join(e.messages))
            return redirect("invite_client", pk=client.pk)
        if form.cleaned_data["method"] == Invitation.Method.HANDOVER:
            # The device is the client's now: the staff member's session ends, and the token lives only in the
            # device's new session, so no page or address ever shows it.
            logout(request)
            request.session[HANDOVER_SESSION_KEY] = token
            return redirect("register_handover")
        once.complete(request.user, key, invitation.pk, scope="invite")
        day = timezone.localtime(invitation.expires_at).strftime("%-d %B %Y")
        messages.success(
            request,
            f"The invitation was emailed to {client.email}. It works once, until {day}. "
            "If the mail server is down, it goes as soon as the server is back (the owner sees any failure).",
        )
        return redirect("invite_client", pk=client.pk)
    pending = client.invitations.filter(used_at__isnull=True).order_by("-created_at").first()
    return render(
        request,
        "clinic/invite_client.html",
        {
            "client": client,
            "submission_key": once.new_key(),
            "pending": pending if pending is not None and pending.usable else None,
            "handover_minutes": consent_services.HANDOVER_MINUTES,
        },
    )


class RegisterForm(forms.Form):
    date_of_birth = forms.DateField(
        label="Your date of birth",
        input_formats=DATE_INPUT_FORMATS,
        widget=_date_widget(),
        help_text="Day/month/year, as the clinic has it. This shows the link is yours.",
        error_messages={"invalid": "Enter a date as day/month/year, for example 14/03/1985."},
    )
    username = forms.CharField(
        label="Username",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only. You will use it to sign in.",
        widget=forms.TextInput(attrs={"autocomplete": "username"}),
    )
    password = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 10 characters; not a common password and not only numbers.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password_again = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )


def mark_invalid(form: forms.Form) -> None:
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["aria-invalid"] = "true"


def _registration(request: HttpRequest, token: str, *, handover: bool) -> HttpResponse:
    try:
        invitation = consent_services.find_invitation(token)
    except consent_services.InvitationProblem as problem:
        return render(request, "clinic/register_invalid.html", {"message": problem.message}, status=problem.status)
    client = invitation.client
    form = RegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = consent_services.accept_invitation(
                token,
                form.cleaned_data["username"],
                form.cleaned_data["password"],
                form.cleaned_data["password_again"],
                date_of_birth=form.cleaned_data["date_of_birth"],
                request=request,
            )
        except consent_services.InvitationProblem as problem:
            return render(request, "clinic/register_invalid.html", {"message": problem.message}, status=problem.status)
        except ValidationError as e:
            add_service_errors(form, e)
        else:
            request.session.pop(HANDOVER_SESSION_KEY, None)
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, "Welcome. Your account is ready.")
            return redirect("consent")
    mark_invalid(form)
    return render(
        request,
        "clinic/register.html",
        {"form": form, "client": client, "clinic": client.clinic, "handover": handover},
    )


SIGNED_IN = "You are signed in already. Sign out first, then open the invitation link again."


@never_cache
@require_http_methods(["GET", "POST"])
def register(request: HttpRequest, token: str) -> HttpResponse:
    """Registration from the link in the invitation email."""
    if request.user.is_authenticated:
        return render(request, "clinic/register_invalid.html", {"message": SIGNED_IN}, status=409)
    return _registration(request, token, handover=False)


@never_cache
@require_http_methods(["GET", "POST"])
def register_handover(request: HttpRequest) -> HttpResponse:
    """Registration on the clinic's device, after a staff member started a hand-over and was signed out."""
    if request.user.is_authenticated:
        return render(request, "clinic/register_invalid.html", {"message": SIGNED_IN}, status=409)
    token = request.session.get(HANDOVER_SESSION_KEY)
    if not token:
        message = "This page opens only when the clinic hands you their device to set up your account."
        return render(request, "clinic/register_invalid.html", {"message": message}, status=404)
    return _registration(request, str(token), handover=True)


# --- The therapist's review ----------------------------------------------------------------------------------------


class ReviewForm(AssessmentForm):
    note = forms.CharField(
        label="Review note (optional)",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you checked or changed with the client.",
    )
    submission_key = forms.CharField(required=False, widget=forms.HiddenInput, max_length=64)


def screening_view(screening: Screening | None) -> dict[str, Any] | None:
    """A screening for the therapist: decision, referral, findings with rationale and sources, precautions."""
    if screening is None:
        return None
    result = screening.result
    precautions = result.get("precautions", {})
    return {
        "screening": screening,
        "decision_text": DECISION_TEXT.get(screening.decision, screening.decision),
        "referral_text": REFERRAL_TEXT.get(screening.referral, screening.referral),
        "findings": result.get("findings", []),
        "avoid": [REGIONS.get(r, r) for r in precautions.get("avoid_regions", [])],
        "max_pressure": precautions.get("max_pressure"),
    }


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def intake_review(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    client = get_client(request.user, pk, clinical=True)
    intake = intake_services.current_intake(client)
    ctx = intake_services.Context.for_client(client, therapist=True)
    answers: dict[str, Any] = dict(intake.answers) if intake is not None else {}
    errors: dict[str, str] = {}
    form = ReviewForm(initial={"note": intake.review_note if intake else "", "submission_key": once.new_key()})
    if request.method == "POST":
        form = ReviewForm(request.POST, request.FILES)
        posted = intake_services.answers_from_post(request.POST, ctx)
        answers = {**answers, **posted}
        key = request.POST.get("submission_key", "")
        action = request.POST.get("action", "complete")
        first, _ = once.claim(request.user, key, scope="review")
        if not first:
            messages.info(request, "This form was already sent; it was saved once.")
            return redirect("intake_review", pk=client.pk)
        if form.is_valid():
            try:
                if action == "save":
                    intake_services.save_draft(client, posted, by=request.user, request=request)
                    once.complete(request.user, key, "saved", scope="review")
                    messages.success(request, "Answers saved. You can complete the review later.")
                    return redirect("intake_review", pk=client.pk)
                screening = intake_services.review(
                    intake,
                    staff,
                    posted,
                    form.cleaned_data["note"],
                    client=client,
                    request=request,
                    assessment=form.assessment(),
                )
            except ValidationError as e:
                once.release(request.user, key, scope="review")
                if hasattr(e, "error_dict"):
                    errors = {k: " ".join(v) for k, v in e.message_dict.items()}
                else:
                    messages.error(request, " ".join(e.messages))
            else:
                once.complete(request.user, key, screening.pk, scope="review")
                messages.success(
                    request,
                    f"Review complete. The new screening says: {DECISION_TEXT.get(screening.decision, '')}",
                )
                return redirect("intake_review", pk=client.pk)
        else:
            once.release(request.user, key, scope="review")
        data = request.POST.copy()
        data["submission_key"] = once.new_key()
        form = ReviewForm(data)
        form.is_valid()
        for name in [k for k in errors if k.startswith("assessment_")]:
            form.add_error(name, errors.pop(name))  # shown beside the assessment's own fields
    audit.viewed(request, client, "intake review", intake)
    sections = intake_services.layout(answers, errors, ctx)
    signed = consent_services.current_consent(client)
    return render(
        request,
        "clinic/intake_review.html",
        {
            "client": client,
            "intake": intake,
            "sections": sections,
            "errors": intake_services.ordered_errors(sections, errors),
            "form": form,
            "screening": screening_view(latest_screening(client)),
            "consent": signed,
            "can_save_draft": intake is None or intake.status == Intake.Status.DRAFT,
            "goals_text": answers.get("goals_text", ""),
            "notes": answers.get("notes", ""),
            "client_detail_url": reverse("client_detail", args=[client.pk]),
        },
    )


urlpatterns = [
    path("clients/<int:pk>/invite/", invite_client, name="invite_client"),
    path("register/here/", register_handover, name="register_handover"),
    path("register/<str:token>/", register, name="register"),
    path("clients/<int:pk>/intake/review/", intake_review, name="intake_review"),
]
