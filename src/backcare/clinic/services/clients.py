"""Clients: creation by staff, contact details, and sharing a client's record with another therapist."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Client, Role, StaffMember

CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "date_of_birth",
    "sex",
    "email",
    "phone",
    "address",
    "physician_name",
    "physician_address",
)


@transaction.atomic
def create_client(
    *, staff: StaffMember, therapist: StaffMember | None = None, request: Any = None, **fields: Any
) -> Client:
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise ValueError(f"unknown client fields: {', '.join(sorted(unknown))}")
    if therapist is None and staff.role == Role.THERAPIST:
        therapist = staff
    if therapist is not None and (
        therapist.role not in (Role.THERAPIST, Role.OWNER) or therapist.clinic_id != staff.clinic_id
    ):
        raise ValidationError({"therapist": "Choose a therapist of this clinic."})
    client = Client(clinic=staff.clinic, therapist=therapist, **fields)
    client.full_clean(exclude=["user", "therapist", "clinic"])
    client.save()
    audit.record(staff.user, "create_client", client=client, obj=client, request=request)
    return client


@transaction.atomic
def update_contact(client: Client, *, staff: StaffMember, request: Any = None, **fields: Any) -> Client:
    unknown = set(fields) - set(CONTACT_FIELDS)
    if unknown:
        raise ValueError(f"unknown client fields: {', '.join(sorted(unknown))}")
    before = {k: str(getattr(client, k)) for k in fields}
    for key, value in fields.items():
        setattr(client, key, value)
    client.full_clean(exclude=["user", "therapist", "clinic"])
    client.save()
    changed = {k: str(v) for k, v in fields.items() if before[k] != str(v)}
    audit.record(
        staff.user, "update_client", client=client, obj=client, detail={"changed": sorted(changed)}, request=request
    )
    return client


@transaction.atomic
def assign_therapist(client: Client, *, therapist: StaffMember | None, staff: StaffMember, request: Any = None) -> None:
    if staff.role != Role.OWNER:
        raise ValidationError("Only the clinic owner assigns clients to therapists.")
    client.therapist = therapist
    client.save(update_fields=["therapist"])
    audit.record(
        staff.user,
        "assign_therapist",
        client=client,
        obj=client,
        detail={"therapist": therapist.pk if therapist else None},
        request=request,
    )


@transaction.atomic
def share_client(client: Client, *, therapist: StaffMember, staff: StaffMember, request: Any = None) -> None:
    """The owner shares a client's clinical record with another therapist."""
    if staff.role != Role.OWNER:
        raise ValidationError("Only the clinic owner can share a client with another therapist.")
    if therapist.role != Role.THERAPIST or therapist.clinic_id != client.clinic_id:
        raise ValidationError({"therapist": "Choose a therapist of this clinic."})
    client.shared_with.add(therapist)
    audit.record(
        staff.user, "share_client", client=client, obj=client, detail={"therapist": therapist.pk}, request=request
    )


@transaction.atomic
def unshare_client(client: Client, *, therapist: StaffMember, staff: StaffMember, request: Any = None) -> None:
    if staff.role != Role.OWNER:
        raise ValidationError("Only the clinic owner can change sharing.")
    client.shared_with.remove(therapist)
    audit.record(
        staff.user, "unshare_client", client=client, obj=client, detail={"therapist": therapist.pk}, request=request
    )
