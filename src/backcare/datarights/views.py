"""Data rights pages: the client's full export (portal and staff), erasure requests (portal and owner) and the
owner's de-identified research export. Thin: the modules of `backcare.datarights` do the work and the audit.

Who: the export is clinical data, so staff need clinical access (owner, the client's therapist or one it is
shared with; front desk 403, other therapists 404); a client exports only their own. Erasure requests are recorded
and confirmed by the owner only; a client asks for their own from the portal.
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
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import audit
from backcare.clinic.access import get_client, require_client, require_staff
from backcare.clinic.forms.clients import DATE_INPUT_FORMATS
from backcare.clinic.models import Client, ErasureRequest, Role
from backcare.common.forms import name_fields
from backcare.datarights import erasure as datarights
from backcare.datarights import export as datarights_export
from backcare.datarights import research as datarights_research


def _download(content: bytes, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store, private"
    return response


def _zip(export: datarights_export.Export) -> HttpResponse:
    return _download(export.content, export.filename, "application/zip")


# --- Export ---------------------------------------------------------------------------------------------------------


@login_required
@require_GET
def client_export(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user)
    client = get_client(request.user, pk, clinical=True)
    return _zip(datarights_export.export_zip(client, by=request.user, request=request))


@login_required
@require_GET
def portal_export(request: HttpRequest) -> HttpResponse:
    client = require_client(request.user)
    return _zip(datarights_export.export_zip(client, by=request.user, request=request))


# --- Erasure --------------------------------------------------------------------------------------------------------


class PortalErasureForm(forms.Form):
    understood = forms.BooleanField(
        label="I have read what will be erased now and what the clinic must keep, and I want my data erased.",
        error_messages={"required": "Tick the box to confirm that you want your data erased."},
    )


class RecordErasureForm(forms.Form):
    channel = forms.ChoiceField(
        label="How the client asked",
        choices=[("", "Choose…"), *[(c.value, c.label) for c in datarights.STAFF_CHANNELS]],
    )
    requested_on = forms.DateField(
        label="Day the request was made",
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=forms.DateInput(format="%d/%m/%Y", attrs={"placeholder": "dd/mm/yyyy", "inputmode": "numeric"}),
        help_text="Leave empty for today. The clinic has one month from this day to act on it.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)
        self.fields["channel"].error_messages["required"] = "How the client asked: choose one of the options."


class ConfirmErasureForm(forms.Form):
    identity_checked = forms.BooleanField(
        label="I have checked that the request really comes from this client.",
        error_messages={"required": "Tick the box once you have checked who made the request."},
    )


def _errors_from(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, errs in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errs)
    else:
        form.add_error(None, error.messages)


def _mark_invalid(*forms_: forms.Form) -> None:
    for form in forms_:
        for name in form.errors:
            if name in form.fields:
                form.fields[name].widget.attrs["aria-invalid"] = "true"


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def portal_erasure(request: HttpRequest) -> HttpResponse:
    client = require_client(request.user)
    erasure = datarights.open_request(client)
    form = PortalErasureForm()
    if request.method == "POST":
        if request.POST.get("action") == "withdraw":
            if erasure is not None and erasure.status == ErasureRequest.Status.REQUESTED:
                datarights.withdraw_erasure(erasure, by=request.user, request=request)
                messages.success(request, "Your request is withdrawn. Nothing was erased.")
            else:
                messages.info(request, "There is no request waiting that could be withdrawn.")
            return redirect("portal_erasure")
        if erasure is not None:
            messages.info(request, "Your request was already sent. The clinic will confirm it.")
            return redirect("portal_erasure")
        form = PortalErasureForm(request.POST)
        if form.is_valid():
            datarights.request_erasure(client, by=request.user, request=request)
            messages.success(request, "Your request is sent. The clinic owner will confirm it within one month.")
            return redirect("portal_erasure")
    _mark_invalid(form)
    audit.viewed(request, client, "erasure request")
    return render(
        request,
        "datarights/portal_erasure.html",
        {"client": client, "clinic": client.clinic, "erasure": erasure, "form": form, **_plan(client)},
    )


def _plan(client: Client) -> dict[str, Any]:
    plan = datarights.erasure_plan(client)
    return {"plan": plan}


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def client_erasure(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user, Role.OWNER)
    client = get_client(request.user, pk, clinical=True)
    erasure = datarights.open_request(client)
    record_form = RecordErasureForm()
    confirm_form = ConfirmErasureForm()
    if request.method == "POST":
        action = request.POST.get("action")
        if action == "record":
            record_form = RecordErasureForm(request.POST)
            if record_form.is_valid():
                try:
                    datarights.request_erasure(
                        client,
                        by=request.user,
                        channel=record_form.cleaned_data["channel"],
                        requested_on=record_form.cleaned_data["requested_on"],
                        request=request,
                    )
                except ValidationError as e:
                    _errors_from(record_form, e)
                else:
                    messages.success(request, "The request is recorded. Check it and confirm it below.")
                    return redirect("client_erasure", pk=client.pk)
        elif action == "confirm":
            confirm_form = ConfirmErasureForm(request.POST)
            if erasure is None:
                messages.error(request, "There is no erasure request to confirm: record the request first.")
            elif confirm_form.is_valid():
                try:
                    datarights.confirm_erasure(erasure, by=request.user, request=request)
                except ValidationError as e:
                    _errors_from(confirm_form, e)
                else:
                    messages.success(request, "Done: personal data erased; the clinical record is kept as shown.")
                    return redirect("client_erasure", pk=client.pk)
        elif action == "withdraw":
            if erasure is not None and erasure.status == ErasureRequest.Status.REQUESTED:
                datarights.withdraw_erasure(erasure, by=request.user, request=request)
                messages.success(request, "The request is withdrawn. Nothing was erased.")
                return redirect("client_erasure", pk=client.pk)
            messages.error(request, "There is no request waiting that could be withdrawn.")
        else:
            messages.error(request, "Choose what to do: record a request, confirm it, or withdraw it.")
    _mark_invalid(record_form, confirm_form)
    audit.viewed(request, client, "erasure request")
    return render(
        request,
        "datarights/client_erasure.html",
        {
            "client": client,
            "erasure": erasure,
            "record_form": record_form,
            "confirm_form": confirm_form,
            "keep_until": datarights.effective_keep_until(erasure) if erasure else None,
            "respond_by": datarights.respond_by(erasure) if erasure else None,
            **_plan(client),
        },
    )


# --- Records past their retention period ------------------------------------------------------------------------


class RetentionDeleteForm(forms.Form):
    checked = forms.BooleanField(
        label=(
            "I have checked that the clinic need not keep this record any longer: no complaint, claim, inquiry or "
            "request about it is in progress."
        ),
        error_messages={"required": "Tick the box once you have checked that nothing requires the record any more."},
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def client_retention_delete(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user, Role.OWNER)
    client = get_client(request.user, pk, clinical=True)
    form = RetentionDeleteForm()
    if request.method == "POST":
        form = RetentionDeleteForm(request.POST)
        if form.is_valid():
            name = client.full_name
            try:
                datarights.delete_past_retention(client, by=request.user, request=request)
            except ValidationError as e:
                _errors_from(form, e)
            else:
                messages.success(request, f"The record of {name} is deleted. The audit trail keeps that it was.")
                return redirect("datarights_overview")
    _mark_invalid(form)
    due, why_kept = datarights.retention_status(client)
    audit.viewed(request, client, "retention review")
    return render(
        request,
        "datarights/retention_delete.html",
        {
            "client": client,
            "form": form,
            "due": due,
            "why_kept": why_kept,
            "retention_years": datarights.retention_years(client.clinic),
            **_plan(client),
        },
    )


# --- The owner's overview and the research export -------------------------------------------------------------------


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER)
    requests = datarights.open_requests(staff.clinic)
    after = request.GET.get("after")
    past = datarights.past_retention_page(staff.clinic, after=after)
    clients = [e.client for e in requests] + [d.client for d in past.items]
    audit.viewed_many(request, clients, "data rights overview")
    return render(
        request,
        "datarights/overview.html",
        {
            "requests": requests,
            "past_retention": past.items,
            "next_after": past.next_after,
            "paged": bool(after),
            "retention_years": datarights.retention_years(staff.clinic),
            "k": datarights_research.K_ANONYMITY,
            "clinic": staff.clinic,
        },
    )


@login_required
@require_GET
def research_export(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER)
    export = datarights_research.research_csv(staff.clinic, by=request.user, request=request)
    return _download(export.content, export.filename, "text/csv; charset=utf-8")


urlpatterns = [
    path("clients/<int:pk>/export.zip", client_export, name="client_export"),
    path("clients/<int:pk>/erasure/", client_erasure, name="client_erasure"),
    path("clients/<int:pk>/retention/", client_retention_delete, name="client_retention_delete"),
    path("portal/my-data/export.zip", portal_export, name="portal_export"),
    path("portal/my-data/erase/", portal_erasure, name="portal_erasure"),
    path("data-rights/", overview, name="datarights_overview"),
    path("data-rights/research-outcomes.csv", research_export, name="research_export"),
]
