"""The staff waitlist: who is waiting for which service, the times offered to them now and until when they are held;
adding a client to the waitlist and withdrawing an entry. The client's own side is in the portal (`portal`).

The front desk and the owner see the whole clinic's waitlist; a therapist sees and changes the entries of their own
clients and of clients shared with them (`access.clinical_clients_for`), and another's entry is 404 to them. Every
write goes through `backcare.scheduling.services.waitlist`, which audits it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backcare.clinic import access
from backcare.clinic.models import Client, Role, StaffMember
from backcare.common.forms import add_service_errors
from backcare.common.ids import ascii_id
from backcare.scheduling.forms import WAITLIST_SHOWN, StaffWaitlistForm, WaitlistFilterForm
from backcare.scheduling.models import Appointment, WaitlistEntry
from backcare.scheduling.services import waitlist
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import client_picker, render_local, staff_gate_text, treatment_gate

PER_PAGE = 50
OPEN = [WaitlistEntry.Status.WAITING, WaitlistEntry.Status.OFFERED]


def _clients_for(user: Any, staff: StaffMember) -> QuerySet[Client]:
    """Whose waitlist entries this member of staff may see and change."""
    if staff.role == Role.THERAPIST:
        return access.clinical_clients_for(user)
    return Client.objects.filter(clinic=staff.clinic)


def _entries_for(user: Any, staff: StaffMember) -> QuerySet[WaitlistEntry]:
    entries = WaitlistEntry.objects.filter(clinic=staff.clinic)
    if staff.role == Role.THERAPIST:
        entries = entries.filter(client__in=access.clinical_clients_for(user))
    return entries


@login_required
@require_GET
def staff_waitlist(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    now = timezone.now()
    form = WaitlistFilterForm(request.GET or None, clinic=clinic)
    entries = _entries_for(request.user, staff)
    shown = "open"
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        shown = data.get("status") or "open"
        if data.get("service"):
            entries = entries.filter(service=data["service"])
        if data.get("therapist"):
            entries = entries.filter(therapist=data["therapist"])
    elif form.is_bound:
        entries = entries.none()
    entries = entries.filter(status__in=WAITLIST_SHOWN[shown][1])
    live_holds = Appointment.objects.filter(status=Appointment.Status.HELD, hold_expires_at__gt=now).select_related(
        "therapist", "room"
    )
    entries = (
        entries.select_related("client", "service", "therapist", "created_by")
        .prefetch_related(Prefetch("holds", queryset=live_holds.order_by("starts_at"), to_attr="live_holds"))
        .order_by("earliest", "created_at", "pk")
    )
    page = Paginator(entries, PER_PAGE).get_page(request.GET.get("page"))
    params = {k: v for k, v in request.GET.items() if k != "page" and v}
    context = {
        "staff": staff,
        "form": form,
        "page": page,
        "shown_label": WAITLIST_SHOWN[shown][0],
        "query": urlencode(params),
        "now": now,
        "open_statuses": [str(s) for s in OPEN],
    }
    return render_local(request, "scheduling/waitlist_list.html", context, clinic)


@login_required
@require_http_methods(["GET", "POST"])
def staff_waitlist_add(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user)
    clinic = staff.clinic
    clients = _clients_for(request.user, staff).order_by("last_name", "first_name", "pk")
    if request.method == "POST":
        form = StaffWaitlistForm(request.POST, clinic=clinic, clients=clients)
        if form.is_valid():
            data = form.cleaned_data
            client = data["client"]
            same = client.waitlist_entries.filter(
                service=data["service"],
                therapist=data.get("therapist"),
                earliest=data["earliest"],
                latest=data["latest"],
                status__in=OPEN,
            )
            if same.exists():
                messages.info(request, f"{client.full_name} is already on the waitlist for these days.")
                return redirect("staff_waitlist")
            try:
                waitlist.join_waitlist(
                    client,
                    data["service"],
                    data["earliest"],
                    data["latest"],
                    by=request.user,
                    therapist=data.get("therapist"),
                    note=data.get("note", ""),
                    request=request,
                )
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(
                    request,
                    f"{client.full_name} is on the waitlist for {data['service'].name}. When a time comes free "
                    "on one of those days, it is held for them and they are told by email (if they have an address) "
                    "and in their portal.",
                )
                gate = treatment_gate(client)
                if not gate.allowed and not (data["service"].assessment and gate.screening is None):
                    messages.warning(
                        request,
                        "No time can be offered to them yet: " + staff_gate_text(request.user, client, gate),
                    )
                return redirect("staff_waitlist")
    else:
        today = timezone.localdate(timezone=clinic_zone(clinic))
        initial: dict[str, Any] = {
            "earliest": (today + timedelta(days=1)).isoformat(),
            "latest": (today + timedelta(days=14)).isoformat(),
        }
        chosen = ascii_id(request.GET.get("client", ""))
        if chosen is not None and clients.filter(pk=chosen).exists():
            initial["client"] = chosen
            own = clients.get(pk=chosen).therapist
            if own is not None and own.role == Role.THERAPIST and own.active:
                initial["therapist"] = own.pk
        form = StaffWaitlistForm(clinic=clinic, clients=clients, initial=initial)
    context = {"form": form, "staff": staff, "picker": client_picker(request, clients, form["client"].value())}
    return render_local(request, "scheduling/waitlist_add.html", context, clinic)


@login_required
@require_POST
def staff_waitlist_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    staff = access.require_staff(request.user)
    entry = get_object_or_404(_entries_for(request.user, staff).select_related("client"), pk=pk)
    if entry.status in OPEN:
        waitlist.leave_waitlist(entry, by=request.user, request=request)
        messages.success(
            request,
            f"{entry.client.full_name} is no longer on the waitlist for these days. Any time held for them goes to "
            "the next client in line.",
        )
    else:
        messages.info(request, "This entry was no longer open: nothing changed.")
    return redirect("staff_waitlist")


urlpatterns = [
    path("waitlist/", staff_waitlist, name="staff_waitlist"),
    path("waitlist/add/", staff_waitlist_add, name="staff_waitlist_add"),
    path("waitlist/<int:pk>/withdraw/", staff_waitlist_withdraw, name="staff_waitlist_withdraw"),
]
