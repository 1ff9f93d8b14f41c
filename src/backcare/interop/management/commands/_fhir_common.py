"""What the two FHIR commands share: finding the staff member who runs them (for permissions and the audit)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from backcare.clinic.models import Role, StaffMember


def staff_user(username: str) -> tuple[Any, StaffMember]:
    """The user and their staff record; only the owner or a therapist may move clinical records."""
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    staff = StaffMember.objects.filter(user=user, active=True).select_related("clinic").first() if user else None
    if user is None or staff is None:
        raise CommandError(f"--user {username}: no active staff member with this user name")
    if staff.role not in (Role.OWNER, Role.THERAPIST):
        raise CommandError(f"--user {username}: only the clinic owner or a therapist can export or import records")
    return user, staff
