"""The owner's clinic settings: details, policies (the cancellation window), the STarT Back switch, and versions of
the consent text. Thin: `services.clinic_settings` writes and audits."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_http_methods

from backcare.clinic import extensions
from backcare.clinic.access import require_staff
from backcare.clinic.forms.operations import ClinicSettingsForm, ConsentTextForm
from backcare.clinic.models import ConsentText, Role
from backcare.clinic.services import clinic_settings as service
from backcare.clinic.services.consent import consent_html


def _errors_to(form: Any, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


@login_required
@require_http_methods(["GET", "POST"])
def clinic_settings(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    clinic = owner.clinic
    data = request.POST if request.method == "POST" else None
    form = ClinicSettingsForm(data, initial=ClinicSettingsForm.initial_of(clinic))
    # The policies of the apps above the clinic (the fees beside the cancellation window), in the same form.
    sections = [(section, section.form(clinic, data)) for section in extensions.POLICY_SECTIONS]
    valid = data is not None and all([form.is_valid()] + [extra.is_valid() for _, extra in sections])
    if valid:
        try:
            with transaction.atomic():
                changed = service.update_clinic(clinic, dict(form.cleaned_data), by=request.user, request=request)
                for section, extra in sections:
                    changed.update(section.save(clinic, extra, request.user, request))
        except ValidationError as error:
            target = next((f for _, f in sections if set(getattr(error, "error_dict", {})) & set(f.fields)), form)
            _errors_to(target, error)
        else:
            messages.success(request, "Saved." if changed else "Nothing was changed.")
            return redirect("clinic_settings")
    context = {
        "form": form,
        "clinic": clinic,
        "policy_forms": [(extra, " ".join(extra.fields)) for _, extra in sections],
        "errors": form.errors or any(extra.errors for _, extra in sections),
    }
    return render(request, "clinic/clinic_settings.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def consent_texts(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    current = ConsentText.objects.order_by("-published_at", "-pk").first()
    initial = {"title": current.title, "body": current.body} if current else {}
    form = ConsentTextForm(request.POST if request.method == "POST" else None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            text = service.publish_consent_text(owner.clinic, by=request.user, **form.cleaned_data, request=request)
        except ValidationError as error:
            _errors_to(form, error)
        else:
            messages.success(request, f"Version {text.version} is published: clients are asked to sign it next.")
            return redirect("consent_texts")
    versions = list(ConsentText.objects.order_by("-published_at", "-pk")[:50])
    context = {
        "form": form,
        "versions": versions,
        "current": current,
        "current_html": consent_html(current) if current else "",
    }
    return render(request, "clinic/consent_texts.html", context)


urlpatterns = [
    path("settings/", clinic_settings, name="clinic_settings"),
    path("settings/consent/", consent_texts, name="consent_texts"),
]
