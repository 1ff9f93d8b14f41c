"""Client list and client record pages: contact details for all staff, the clinical record for those allowed."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_http_methods

from backcare.clinic import audit, once
from backcare.clinic.access import (
    clients_for,
    clinical_ids_among,
    get_client,
    may_invite,
    require_staff,
    shared_ids_among,
)
from backcare.clinic.forms.clients import (
    AssignForm,
    ClientCreateForm,
    ClientEditForm,
    ShareForm,
)
from backcare.clinic.models import AuditEvent, Client, Course, Role, StaffMember
from backcare.clinic.search import search_clients
from backcare.clinic.selectors import client_record
from backcare.clinic.services import clients as client_services
from backcare.clinic.services.consent import current_consent
from backcare.clinic.services.screening import latest_screening, treatment_gate
from backcare.common.forms import add_service_errors

PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 50


@login_required
@require_GET
def client_list(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user)
    query = request.GET.get("q", "").strip()[:100]
    clients = search_clients(clients_for(request.user), query).select_related("therapist")
    page = Paginator(clients.order_by("last_name", "first_name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    # Access is decided for the clients on this page only (one bounded query), never for the whole clinic.
    shown = list(page.object_list)
    shared_ids = shared_ids_among(staff, shown) if staff.role == Role.THERAPIST else set()
    clinical_ids = clinical_ids_among(request.user, shown)
    rows = [
        {
            "client": c,
            "own": c.therapist_id == staff.pk,
            "shared": c.pk in shared_ids,
            # Front desk opens the contact card; a therapist only the records they may see.
            "linked": staff.role != Role.THERAPIST or c.pk in clinical_ids,
        }
        for c in shown
    ]
    return render(request, "clinic/client_list.html", {"page": page, "rows": rows, "query": query, "staff": staff})


@login_required
@require_http_methods(["GET", "POST"])
def client_create(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user)
    if request.method == "POST":
        form = ClientCreateForm(request.POST, staff=staff)
        if form.is_valid():
            key = form.cleaned_data["submission_key"]
            first, previous = once.claim(request.user, key)
            if not first:
                if once.is_pending(previous):
                    messages.info(request, "This form is already being saved. The client appears in the list shortly.")
                    return redirect("client_list")
                messages.info(request, "This form was already sent: the client was created once, shown here.")
                return redirect("client_detail", pk=previous)
            therapist = form.cleaned_data.get("therapist")
            try:
                client = client_services.create_client(
                    staff=staff, therapist=therapist, request=request, **form.contact_data()
                )
            except ValidationError as e:
                once.release(request.user, key)
                add_service_errors(form, e)
            else:
                once.complete(request.user, key, client.pk)
                messages.success(request, f"{client.full_name} was added.")
                return redirect("client_detail", pk=client.pk)
    else:
        form = ClientCreateForm(staff=staff)
    return render(request, "clinic/client_form.html", {"form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user)
    client = get_client(request.user, pk, clinical=False)
    if request.method == "POST":
        form = ClientEditForm(request.POST)
        if form.is_valid():
            try:
                client_services.update_contact(client, staff=staff, request=request, **form.contact_data())
            except ValidationError as e:
                client.refresh_from_db()
                add_service_errors(form, e)
            else:
                messages.success(request, "Contact details saved.")
                return redirect("client_detail", pk=client.pk)
    else:
        form = ClientEditForm(initial=ClientEditForm.for_client(client))
    return render(request, "clinic/client_form.html", {"form": form, "client": client, "creating": False})


def _clinical_context(client: Client) -> dict[str, Any]:
    gate = treatment_gate(client)
    courses = list(client.courses.select_related("therapist").order_by("-started_at"))
    has_active = any(c.status == Course.Status.ACTIVE for c in courses)
    return {
        "intake": client.intakes.order_by("-started_at").first(),
        "screening": latest_screening(client),
        "earlier_screenings": list(client.screenings.order_by("-created_at", "-id")[1:11]),
        "gate": gate,
        "courses": courses,
        "can_start_course": gate.allowed and not has_active,
        "has_active_course": has_active,
        "referrals": list(client.referrals.all()),
        "clearances": list(client.clearances.select_related("recorded_by")),
        "consent": current_consent(client),
        "assessments": list(client.assessments.filter(referral__isnull=True).select_related("recorded_by")),
        "has_outcomes": client.outcomes.exists(),
    }


@login_required
@require_GET
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user)
    if staff.role == Role.FRONT_DESK:
        client = get_client(request.user, pk, clinical=False)
        audit.viewed(request, client, "client contact card")
        card = {"client": client, "clinical": False, **client_record.sections(client, staff, request.user)}
        return render(request, "clinic/client_detail.html", card)
    # Therapists and the owner: a client outside their reach answers 404 (ids reveal nothing).
    client = get_client(request.user, pk, clinical=True)
    context: dict[str, Any] = {
        "client": client,
        "clinical": True,
        "can_invite": may_invite(staff, client),
        **_clinical_context(client),
        **client_record.sections(client, staff, request.user),
    }
    if staff.role == Role.OWNER:
        context["shared_with"] = list(client.shared_with.all())
    audit.viewed(request, client, "client record")
    return render(request, "clinic/client_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def client_share(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER)
    client = get_client(request.user, pk, clinical=True)
    share_form = ShareForm(client=client, prefix="share")
    assign_form = AssignForm(client=client, prefix="assign", initial={"therapist": client.therapist_id})
    if request.method == "POST":
        action = request.POST.get("action")
        try:
            if action == "share":
                share_form = ShareForm(request.POST, client=client, prefix="share")
                if share_form.is_valid():
                    therapist: StaffMember = share_form.cleaned_data["therapist"]
                    client_services.share_client(client, therapist=therapist, staff=staff, request=request)
                    messages.success(request, f"{client.full_name}'s record is now shared with {therapist}.")
                    return redirect("client_share", pk=client.pk)
            elif action == "unshare":
                other = client.shared_with.filter(pk=request.POST.get("therapist") or 0).first()
                if other is None:
                    messages.error(request, "That therapist does not share this record.")
                else:
                    client_services.unshare_client(client, therapist=other, staff=staff, request=request)
                    messages.success(request, f"{other} no longer sees {client.full_name}'s record.")
                return redirect("client_share", pk=client.pk)
            elif action == "assign":
                assign_form = AssignForm(request.POST, client=client, prefix="assign")
                if assign_form.is_valid():
                    chosen = assign_form.cleaned_data["therapist"]
                    client_services.assign_therapist(client, therapist=chosen, staff=staff, request=request)
                    messages.success(
                        request,
                        f"{client.full_name} is now treated by {chosen}."
                        if chosen
                        else "No therapist is assigned now.",
                    )
                    return redirect("client_share", pk=client.pk)
            else:
                messages.error(request, "Choose what to do: share, stop sharing or change the therapist.")
                return redirect("client_share", pk=client.pk)
        except ValidationError as e:
            add_service_errors(share_form if action == "share" else assign_form, e)
    return render(
        request,
        "clinic/client_share.html",
        {
            "client": client,
            "shared_with": list(client.shared_with.order_by("display_name")),
            "share_form": share_form,
            "assign_form": assign_form,
        },
    )


@login_required
@require_GET
def client_audit(request: HttpRequest, pk: int) -> HttpResponse:
    require_staff(request.user, Role.OWNER)
    client = get_client(request.user, pk, clinical=True)
    audit.viewed(request, client, "audit trail")  # first, so this view is on the page and the pages stay whole
    events = AuditEvent.objects.filter(client=client).order_by("-at", "-id")
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "clinic/client_audit.html", {"client": client, "page": page})


urlpatterns = [
    path("clients/", client_list, name="client_list"),
    path("clients/new/", client_create, name="client_create"),
    path("clients/<int:pk>/", client_detail, name="client_detail"),
    path("clients/<int:pk>/edit/", client_edit, name="client_edit"),
    path("clients/<int:pk>/share/", client_share, name="client_share"),
    path("clients/<int:pk>/audit/", client_audit, name="client_audit"),
]
