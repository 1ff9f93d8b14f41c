"""Consent given in the clinic: the client (and a guardian, under 16) signs on the clinic's device, or staff upload a
signed paper form with who witnessed it. The uploaded form is served only to those who may see the client's record."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import audit, once
from backcare.clinic.access import get_client, require_staff
from backcare.clinic.forms.clients import ClinicConsentForm
from backcare.clinic.models import Consent, Role
from backcare.clinic.services import consent as consent_services
from backcare.clinic.views.clearance import private_file
from backcare.common.forms import add_service_errors


@login_required
@require_http_methods(["GET", "POST"])
def consent_record(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    client = get_client(request.user, pk, clinical=True)
    text = consent_services.current_consent_text()
    signed = consent_services.current_consent(client)
    if request.method == "POST" and signed is not None:
        messages.info(request, "The client's consent is already on record.")
        return redirect("client_detail", pk=client.pk)
    if request.method == "POST" and text is not None:
        form = ClinicConsentForm(request.POST, request.FILES)
        if form.is_valid():
            key = form.cleaned_data["submission_key"]
            first, _ = once.claim(request.user, key)
            if not first:
                messages.info(request, "This consent was already sent and is recorded once.")
                return redirect("client_detail", pk=client.pk)
            fields = ("signature", "witnessed_by", "guardian_name", "guardian_relationship", "guardian_signature")
            try:
                consent_services.record_consent_in_clinic(
                    client,
                    text,
                    staff=staff,
                    method=form.cleaned_data["method"],
                    paper_form=form.cleaned_data["paper_form"],
                    request=request,
                    **{name: form.cleaned_data[name] for name in fields},
                )
            except ValidationError as e:
                once.release(request.user, key)
                add_service_errors(form, e)
            else:
                once.complete(request.user, key, client.pk)
                messages.success(request, "The client's consent is recorded.")
                return redirect("client_detail", pk=client.pk)
        if request.FILES:
            form.add_error(
                None, "For your safety, a chosen file is not kept when the form has a mistake: choose it again."
            )
    else:
        form = ClinicConsentForm()
    audit.viewed(request, client, "consent in the clinic")
    return render(
        request,
        "clinic/consent_record.html",
        {
            "client": client,
            "text": text,
            "body": consent_services.consent_html(text) if text else "",
            "signed": signed,
            "minor": consent_services.needs_guardian(client),
            "form": form,
        },
    )


@login_required
@require_GET
def consent_paper_form(request: HttpRequest, pk: int) -> FileResponse:
    staff = require_staff(request.user)
    consent = get_object_or_404(Consent, pk=pk, client__clinic=staff.clinic)
    client = get_client(request.user, consent.client_id, clinical=True)
    if not consent.paper_form:
        raise Http404("No paper form was uploaded with this consent.")
    return private_file(request, client, consent.paper_form, "signed consent form", consent)


urlpatterns = [
    path("clients/<int:pk>/consent/", consent_record, name="consent_record"),
    path("consents/<int:pk>/form/", consent_paper_form, name="consent_paper_form"),
]
