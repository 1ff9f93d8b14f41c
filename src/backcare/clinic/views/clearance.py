"""Recording a physician's clearance for a screening that asks for one, and serving the clearance letter."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import audit, once
from backcare.clinic.access import get_client, require_staff
from backcare.clinic.forms.clients import (
    ClearanceForm,
    letter_content_type,
)
from backcare.clinic.models import Clearance, Role, Screening
from backcare.clinic.services.clearances import clearance_keys, key_label, key_token
from backcare.clinic.services.screening import (
    clearance_rules,
    latest_screening,
    pending_clearance,
    record_clearance,
)
from backcare.common.forms import add_service_errors


@login_required
@require_http_methods(["GET", "POST"])
def clearance_create(request: HttpRequest, pk: int, screening: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER, Role.THERAPIST)
    client = get_client(request.user, pk, clinical=True)
    screened = get_object_or_404(Screening, pk=screening, client=client)
    if not screened.needs_clearance:
        messages.warning(request, "This screening does not ask for a physician's clearance.")
        return redirect("client_detail", pk=client.pk)
    latest = latest_screening(client)
    if latest is not None and latest.pk != screened.pk:
        messages.warning(request, "A newer screening has been made: record the clearance against the latest one.")
        if latest.needs_clearance:
            return redirect("clearance_create", pk=client.pk, screening=latest.pk)
        return redirect("client_detail", pk=client.pk)
    rules = set(clearance_rules(screened))
    findings = [f for f in screened.result.get("findings", []) if f.get("rule") in rules]
    waiting = pending_clearance(screened)
    waiting_tokens = {key_token(k) for k in waiting.keys}
    for f in findings:
        f["cleared"] = key_token({"rule": f["rule"], "region": f.get("region")}) not in waiting_tokens
    choices = [(key_token(k), key_label(k)) for k in clearance_keys(screened)]
    if request.method == "POST":
        form = ClearanceForm(request.POST, request.FILES, findings=choices)
        if form.is_valid():
            key = form.cleaned_data["submission_key"]
            first, _ = once.claim(request.user, key)
            if not first:
                messages.info(request, "This clearance was already sent and is recorded once.")
                return redirect("client_detail", pk=client.pk)
            try:
                record_clearance(
                    screened,
                    given_by=form.cleaned_data["given_by"],
                    given_on=form.cleaned_data["given_on"],
                    note=form.cleaned_data["note"],
                    letter=form.cleaned_data["letter"],
                    findings=form.cleaned_data["findings"],
                    valid_until=form.cleaned_data["valid_until"],
                    avoid_regions=form.cleaned_data["avoid_regions"],
                    avoid_techniques=form.cleaned_data["avoid_techniques"],
                    max_pressure=form.cleaned_data["max_pressure"],
                    staff=staff,
                    request=request,
                )
            except ValidationError as e:
                once.release(request.user, key)
                add_service_errors(form, e)
            else:
                once.complete(request.user, key, screened.pk)
                messages.success(request, "The physician's clearance is recorded.")
                return redirect("client_detail", pk=client.pk)
        if form.errors.get("letter") or request.FILES:
            form.add_error(
                None, "For your safety, a chosen file is not kept when the form has a mistake: choose it again."
            )
    else:
        form = ClearanceForm(findings=choices, initial={"findings": sorted(waiting_tokens)})
    audit.viewed(request, client, "clearance form", obj=screened)
    return render(
        request,
        "clinic/clearance_form.html",
        {
            "client": client,
            "screening": screened,
            "findings": findings,
            "notes": waiting.notes,
            "valid_days": client.clinic.clearance_valid_days,
            "form": form,
            "clearances": screened.clearances.select_related("recorded_by"),
        },
    )


@login_required
@require_GET
def clearance_letter(request: HttpRequest, pk: int) -> FileResponse:
    staff = require_staff(request.user)
    clearance = get_object_or_404(Clearance, pk=pk, client__clinic=staff.clinic)
    # Front desk: 403; a therapist who does not see this client: 404.
    client = get_client(request.user, clearance.client_id, clinical=True)
    if not clearance.letter:
        raise Http404("No letter was uploaded with this clearance.")
    return private_file(request, client, clearance.letter, "clearance letter", clearance)


def private_file(request: HttpRequest, client: Any, stored: Any, what: str, obj: Any) -> FileResponse:
    """An uploaded health document (a letter, a signed form), audited as viewed and never cached."""
    try:
        handle = stored.open("rb")
    except FileNotFoundError:
        raise Http404(f"The {what}'s file is missing.") from None
    audit.viewed(request, client, what, obj=obj)
    name = stored.name.rsplit("/", 1)[-1]
    response = FileResponse(handle, content_type=letter_content_type(name), filename=name)
    response["Cache-Control"] = "private, no-store"
    return response


urlpatterns = [
    path("clients/<int:pk>/screenings/<int:screening>/clearance/", clearance_create, name="clearance_create"),
    path("clearances/<int:pk>/letter/", clearance_letter, name="clearance_letter"),
]
