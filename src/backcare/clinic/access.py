"""Who may see and do what. Every view asks here; nothing is decided in templates.

- Owner: everything in their clinic.
- Therapist: clinical records of their own clients and of clients shared with them; contact details of every client.
- Front desk: contact details and appointments of every client; no clinical records.
- Client: their own record only, in plain language.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404

from backcare.clinic.models import Client, Role, StaffMember


def staff_of(user: Any) -> StaffMember | None:
    if not getattr(user, "is_authenticated", False):
        return None
    staff: StaffMember | None = getattr(user, "staff", None)
    return staff if staff is not None and staff.active else None


def client_of(user: Any) -> Client | None:
    if not getattr(user, "is_authenticated", False):
        return None
    return getattr(user, "client", None)


def role_of(user: Any) -> str | None:
    staff = staff_of(user)
    if staff is not None:
        return staff.role
    return "client" if client_of(user) is not None else None


def require_staff(user: Any, *roles: str) -> StaffMember:
    staff = staff_of(user)
    if staff is None or (roles and staff.role not in roles):
        raise PermissionDenied("This page is not available to your role.")
    return staff


def require_client(user: Any) -> Client:
    """The portal's client: the signed-in user's own client record, or 403 for anyone else."""
    client = client_of(user)
    if client is None:
        raise PermissionDenied("The portal is for clients.")
    return client


def clients_for(user: Any) -> QuerySet[Client]:
    """Clients whose contact details this user may see."""
    staff = staff_of(user)
    if staff is not None:
        return Client.objects.filter(clinic=staff.clinic)
    client = client_of(user)
    if client is not None:
        return Client.objects.filter(pk=client.pk)
    return Client.objects.none()


def clinical_clients_for(user: Any) -> QuerySet[Client]:
    """Clients whose clinical record this staff user may see (a client's own portal is separate)."""
    staff = staff_of(user)
    if staff is None or staff.role == Role.FRONT_DESK:
        return Client.objects.none()
    qs = Client.objects.filter(clinic=staff.clinic)
    if staff.role == Role.THERAPIST:
        # Own clients, or a client among those shared with them: no join of the shares and no DISTINCT, which made
        # the database read the whole clinic to answer one page.
        qs = qs.filter(Q(therapist=staff) | Q(pk__in=staff.shared_clients.values("pk")))
    return qs


def clinical_ids_among(user: Any, clients: Iterable[Client]) -> set[int]:
    """The ids of `clients` (a page of a list) whose clinical record this user may see, as `clinical_clients_for`
    decides, asking the database about these clients only: never reading every client the user may see."""
    staff = staff_of(user)
    page = [c for c in clients if c.clinic_id == getattr(staff, "clinic_id", None)]
    if staff is None or staff.role == Role.FRONT_DESK or not page:
        return set()
    if staff.role != Role.THERAPIST:
        return {c.pk for c in page}
    return {c.pk for c in page if c.therapist_id == staff.pk} | shared_ids_among(staff, page)


def shared_ids_among(staff: StaffMember, clients: Iterable[Client]) -> set[int]:
    """The ids of `clients` that are shared with this member of staff (one query, bounded by the page)."""
    ids = [c.pk for c in clients]
    if not ids:
        return set()
    return set(staff.shared_clients.filter(pk__in=ids).values_list("pk", flat=True))


def can_see_clinical(user: Any, client: Client) -> bool:
    return clinical_clients_for(user).filter(pk=client.pk).exists()


def get_client(user: Any, pk: int, *, clinical: bool) -> Client:
    """The client with this id if the user may see it (clinical record or contact details), else 404 or 403.

    A client outside the user's reach answers 404, so ids of other therapists' clients reveal nothing;
    front desk asking for a clinical page answers 403."""
    if not clinical:
        try:
            return clients_for(user).get(pk=pk)
        except Client.DoesNotExist:
            raise Http404("No such client") from None
    staff = staff_of(user)
    if staff is not None and staff.role == Role.FRONT_DESK:
        raise PermissionDenied("Front desk staff do not see clinical records.")
    try:
        return clinical_clients_for(user).get(pk=pk)
    except Client.DoesNotExist:
        raise Http404("No such client") from None


def may_invite(staff: StaffMember, client: Client) -> bool:
    """Portal invitations come from the owner or the client's own therapist: those who answer for the client's
    record. A therapist the record is only shared with, other therapists and the front desk may not send one."""
    if staff.clinic_id != client.clinic_id or not staff.active:
        return False
    return staff.role == Role.OWNER or (staff.role == Role.THERAPIST and client.therapist_id == staff.pk)


def get_client_to_invite(user: Any, pk: int) -> tuple[StaffMember, Client]:
    """The staff member and the client they may invite to the portal: 403 for the front desk, 404 for a therapist
    who may not see the client (as for the clinical record), 403 for one the client is only shared with."""
    staff = require_staff(user)
    client = get_client(user, pk, clinical=True)
    if not may_invite(staff, client):
        raise PermissionDenied("Only the owner or the client's own therapist can invite a client to the portal.")
    return staff, client
