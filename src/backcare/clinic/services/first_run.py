"""Starting a clinic from nothing: `backcare serve` on an empty database asks for the clinic and its first owner
(the first-run page, `views.first_run`) instead of a bare sign-in; once a clinic exists the page is gone for good.

Two set-ups sent at once make one clinic: each writes the single `Installation` row (id 1) in the transaction that
creates the clinic and the owner, so the second fails and leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from backcare.clinic import audit
from backcare.clinic.models import Clinic, Installation, Role, StaffMember


class AlreadySetUp(Exception):
    """The clinic was set up already (perhaps a moment ago, by a set-up sent at the same time)."""


def needs_first_run() -> bool:
    """True while the database has no clinic: the only state in which the first-run page exists."""
    return not Installation.objects.exists() and not Clinic.objects.exists()


@dataclass(frozen=True)
class NewClinic:
    name: str
    country: str
    time_zone: str
    address: str
    phone: str
    email: str
    emergency_number: str
    urgent_care_number: str


@dataclass(frozen=True)
class FirstOwner:
    display_name: str
    username: str
    email: str
    password: str


def start_clinic(clinic: NewClinic, owner: FirstOwner, *, request: Any = None) -> StaffMember:
    """Create the clinic, its first owner's account and staff record, and mark the installation set up, in one
    transaction. Raises AlreadySetUp when a clinic exists (also when another set-up won a race), ValidationError
    (by field) for a username already taken."""
    users = get_user_model()
    try:
        with transaction.atomic():
            if not needs_first_run():
                raise AlreadySetUp
            if users.objects.filter(username__iexact=owner.username).exists():
                raise ValidationError({"username": f"Username: {owner.username!r} is taken, choose another."})
            made = Clinic.objects.create(
                name=clinic.name,
                country=clinic.country.upper(),
                time_zone=clinic.time_zone,
                address=clinic.address,
                phone=clinic.phone,
                email=clinic.email,
                emergency_number=clinic.emergency_number,
                urgent_care_number=clinic.urgent_care_number,
            )
            Installation.objects.create(id=1, clinic=made)  # the second of two racing set-ups fails here
            user = users.objects.create_user(username=owner.username, email=owner.email, password=owner.password)
            staff = StaffMember.objects.create(user=user, clinic=made, role=Role.OWNER, display_name=owner.display_name)
            audit.record(
                user,
                "clinic_set_up",
                obj=made,
                detail={"clinic": made.name, "owner": owner.display_name, "username": owner.username},
                request=request,
            )
    except IntegrityError as error:
        raise AlreadySetUp from error
    return staff
