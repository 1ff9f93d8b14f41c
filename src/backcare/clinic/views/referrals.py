"""Referring a client to their physician, and the referral's page (its letter is a PDF from the documents area)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import audit, once
from backcare.clinic.access import get_client, require_staff
from backcare.clinic.forms.clients import (
    ReferralForm,
    ReferralOutcomeForm,
)
from backcare.clinic.models import MedicalAssessment, Referral, Role, Screening
from backcare.clinic.services.assessments import Assessment, record_referral_outcome
from backcare.clinic.services.courses import active_course
from backcare.clinic.services.referrals import create_referral
from backcare.clinic.services.screening import latest_screening
from backcare.common.forms import add_service_errors


def initial_from_screening(screening: Screening | None) -> dict[str, Any]:
    """Urgency from the screening's referral (when it asks for one) and the titles of the findings behind it."""
    if screening is None:
        return {}
    result = screening.result
    initial: dict[str, Any] = {}
    if result.get("referral", "none") != "none":
        initial["urgency"] = result["referral"]
        titles = [f["title"] for f in result.get("findings", []) if f.get("referral", "none") != "none"]
        if titles:
            initial["reason"] = "Findings at screening on {}:\n{}".format(
                screening.created_at.strftime("%d/%m/%Y"), "\n".join(f"- {t}" for t in titles)
            )
    return initial


@login_required
@require_http_methods(["GET", "POST"])
def referral_create(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    client = get_client(request.user, pk, clinical=True)
    screening = latest_screening(client)
    course = active_course(client)
    if request.method == "POST":
        form = ReferralForm(request.POST)
        if form.is_valid():
            key = form.cleaned_data["submission_key"]
            first, previous = once.claim(request.user, key)
            if not first:
                if once.is_pending(previous):
                    messages.info(request, "This referral is already being saved.")
                    return redirect("client_detail", pk=client.pk)
                messages.info(request, "This referral was already sent and is recorded once.")
                return redirect("referral_detail", pk=previous)
            try:
                referral = create_referral(
                    client,
                    staff=staff,
                    urgency=form.cleaned_data["urgency"],
                    reason=form.cleaned_data["reason"],
                    screening=screening,
                    course=course,
                    request=request,
                )
            except ValidationError as e:
                once.release(request.user, key)
                add_service_errors(form, e)
            else:
                once.complete(request.user, key, referral.pk)
                messages.success(request, "The referral is recorded. Print or send its letter below.")
                return redirect("referral_detail", pk=referral.pk)
    else:
        form = ReferralForm(initial=initial_from_screening(screening))
    audit.viewed(request, client, "referral form")
    return render(
        request,
        "clinic/referral_form.html",
        {"client": client, "screening": screening, "course": course, "form": form},
    )


@login_required
@require_GET
def referral_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user)
    referral = get_object_or_404(
        Referral.objects.select_related("created_by", "course", "screening"), pk=pk, client__clinic=staff.clinic
    )
    client = get_client(request.user, referral.client_id, clinical=True)
    audit.viewed(request, client, "referral", obj=referral)
    outcome = MedicalAssessment.objects.filter(referral=referral).first()
    return render(request, "clinic/referral_detail.html", {"client": client, "referral": referral, "outcome": outcome})


@login_required
@require_http_methods(["GET", "POST"])
def referral_outcome(request: HttpRequest, pk: int) -> HttpResponse:
    """Record what came of a referral: seen on what date, by whom, what was advised (once)."""
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    referral = get_object_or_404(Referral, pk=pk, client__clinic=staff.clinic)
    client = get_client(request.user, referral.client_id, clinical=True)
    if MedicalAssessment.objects.filter(referral=referral).exists():
        messages.info(request, "The outcome of this referral is already recorded.")
        return redirect("referral_detail", pk=referral.pk)
    if request.method == "POST":
        form = ReferralOutcomeForm(request.POST, request.FILES)
        if form.is_valid():
            key = form.cleaned_data["submission_key"]
            first, _ = once.claim(request.user, key)
            if not first:
                messages.info(request, "This outcome was already sent and is recorded once.")
                return redirect("referral_detail", pk=referral.pk)
            data = {k: form.cleaned_data[k] for k in ("assessed_by", "service", "assessed_on", "outcome", "reason")}
            try:
                record_referral_outcome(
                    referral,
                    Assessment(**data, letter=form.cleaned_data["letter"]),
                    staff=staff,
                    request=request,
                )
            except ValidationError as e:
                once.release(request.user, key)
                add_service_errors(form, e)
            else:
                once.complete(request.user, key, referral.pk)
                messages.success(request, "The outcome of the referral is recorded.")
                return redirect("referral_detail", pk=referral.pk)
        if request.FILES:
            form.add_error(
                None, "For your safety, a chosen file is not kept when the form has a mistake: choose it again."
            )
    else:
        form = ReferralOutcomeForm()
    audit.viewed(request, client, "referral outcome form", obj=referral)
    return render(request, "clinic/referral_outcome.html", {"client": client, "referral": referral, "form": form})


urlpatterns = [
    path("clients/<int:pk>/referrals/new/", referral_create, name="referral_create"),
    path("referrals/<int:pk>/", referral_detail, name="referral_detail"),
    path("referrals/<int:pk>/outcome/", referral_outcome, name="referral_outcome"),
]
