"""The clinic's staff, managed by the owner in the application: invite by email with a role, change a member's
name, role and qualified techniques, and deactivate a leaver.

An invitation makes the account at once (so the owner can set a therapist's techniques and hours before they join)
with no usable password, and queues an email through the outbox with a link where the invitee sets their own
password. The link works like a password reset's (Django's token views): it is signed over the account's password
and last sign-in, so it works once, and it ends after STAFF_INVITATION_DAYS.

Deactivating keeps every record the member made or answers for; their account can no longer sign in, their
sessions end at once and their API tokens are revoked.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes
from django.utils.http import base36_to_int, urlsafe_base64_encode

from backcare.clinic import audit
from backcare.clinic.models import Role, StaffMember
from backcare.clinic.services.passwords import end_other_sessions
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common import outbox
from backcare.common.rowlock import locked


def invitation_days() -> int:
    return int(settings.BACKCARE["STAFF_INVITATION_DAYS"])


class InvitationTokens(PasswordResetTokenGenerator):
    """Password-reset tokens with their own salt (a reset link is no invitation, nor the other way round) and their
    own lifetime (STAFF_INVITATION_DAYS, not PASSWORD_RESET_TIMEOUT)."""

    key_salt = "backcare.clinic.services.staff.InvitationTokens"

    def check_token(self, user: Any, token: str | None) -> bool:
        if not (user and token):
            return False
        try:
            ts_b36, _ = token.split("-")
            ts = base36_to_int(ts_b36)
        except ValueError:
            return False
        for secret in [self.secret, *self.secret_fallbacks]:
            if constant_time_compare(self._make_token_with_timestamp(user, ts, secret), token):
                break
        else:
            return False
        return self._num_seconds(self._now()) - ts <= invitation_days() * 24 * 3600


invitation_tokens = InvitationTokens()

# Sent inside the deactivation's transaction with `user`, `by` and `request`; receivers return a count of
# credentials they ended (backcare.api revokes the member's API tokens).
staff_deactivated = Signal()


def _owner(by: Any) -> StaffMember:
    staff: StaffMember | None = getattr(by, "staff", None)
    if staff is None or not staff.active or staff.role != Role.OWNER:
        raise PermissionDenied("Only the clinic's owner manages its staff.")
    return staff


def _techniques(role: str, codes: list[str]) -> list[str]:
    unknown = [c for c in codes if c not in TECHNIQUES]
    if unknown:
        raise ValidationError({"qualified_techniques": f"Qualified techniques: unknown {', '.join(unknown)}."})
    return sorted(codes) if role != Role.FRONT_DESK else []


def invitation_link(user: Any, request: Any = None) -> str:
    path = reverse("staff_join", args=[urlsafe_base64_encode(force_bytes(user.pk)), invitation_tokens.make_token(user)])
    if request is not None:
        return str(request.build_absolute_uri(path))
    return str(settings.BACKCARE.get("SITE_URL") or "").rstrip("/") + path


def _email(staff: StaffMember, link: str) -> tuple[str, str]:
    clinic = staff.clinic
    subject = f"You are invited to {clinic.name} on Backcare"
    body = (
        f"Hello {staff.display_name},\n\n"
        f"{clinic.name} has invited you to Backcare as {staff.get_role_display().lower()}.\n"
        f"Open this link to choose your password; it works once and for {invitation_days()} days:\n\n{link}\n\n"
        f"Your username is {staff.user.get_username()}.\n"
        "If you did not expect this email, ignore it: nothing happens until the link is used.\n"
    )
    return subject, body


@transaction.atomic
def invite_staff(
    *, by: Any, display_name: str, email: str, role: str, techniques: list[str], request: Any = None
) -> StaffMember:
    """Make a staff member's account (no usable password yet) and queue their invitation in this transaction."""
    owner = _owner(by)
    if role not in Role.values:
        raise ValidationError({"role": "Role: choose one of the options in the list."})
    email = email.strip().lower()
    users = get_user_model()
    if users.objects.filter(username__iexact=email).exists() or users.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": f"Email: {email} already has an account here."})
    user = users.objects.create_user(username=email, email=email, password=None)  # unusable until they choose one
    staff = StaffMember.objects.create(
        user=user,
        clinic=owner.clinic,
        role=role,
        display_name=display_name,
        qualified_techniques=_techniques(role, techniques),
    )
    _queue_invitation(staff, request)
    audit.record(
        by,
        "staff_invite",
        obj=staff,
        detail={"name": display_name, "email": email, "role": role, "qualified_techniques": staff.qualified_techniques},
        request=request,
    )
    return staff


def _queue_invitation(staff: StaffMember, request: Any) -> None:
    subject, body = _email(staff, invitation_link(staff.user, request))
    clinic = staff.clinic
    outbox.enqueue_email(
        key=f"staff-invitation-{staff.pk}-{timezone.now().timestamp()}",
        kind="clinic.staff_invitation",
        to=[str(staff.user.email)],
        subject=subject,
        body=body,
        reply_to=[clinic.email] if clinic.email else [],
        clinic_id=clinic.pk,
        context={"staff": staff.pk},
        secret=True,
    )


@transaction.atomic
def resend_invitation(staff: StaffMember, *, by: Any, request: Any = None) -> None:
    """A new invitation link for a member who has not chosen a password yet."""
    owner = _owner(by)
    if staff.clinic_id != owner.clinic_id:
        raise PermissionDenied("This member of staff works at another clinic.")
    if staff.user.has_usable_password() or not staff.active:
        raise ValidationError(f"{staff.display_name} has joined already or was deactivated.")
    _queue_invitation(staff, request)
    audit.record(by, "staff_invite_resent", obj=staff, detail={"email": staff.user.email}, request=request)


def staff_invitation_still_open(message: Any) -> str:
    """Asked by the outbox before it sends a clinic email: no invitation to a member who joined meanwhile or left."""
    if message.kind != "clinic.staff_invitation":
        return ""
    staff = StaffMember.objects.select_related("user").filter(pk=message.context.get("staff")).first()
    if staff is None or not staff.active:
        return "the member of staff was removed or deactivated"
    if staff.user.has_usable_password():
        return "the member of staff has joined already"
    return ""


def joined(user: Any, request: Any = None) -> None:
    """Audit that an invited member chose their password (the token view set it)."""
    audit.record(user, "staff_joined", obj=user.staff, request=request)


@transaction.atomic
def update_staff(
    staff: StaffMember, *, by: Any, display_name: str, role: str, techniques: list[str], request: Any = None
) -> StaffMember:
    owner = _owner(by)
    if staff.clinic_id != owner.clinic_id:
        raise PermissionDenied("This member of staff works at another clinic.")
    if role not in Role.values:
        raise ValidationError({"role": "Role: choose one of the options in the list."})
    staff = locked(StaffMember.objects.all()).get(pk=staff.pk)
    if staff.role == Role.OWNER and role != Role.OWNER and not _other_owners(staff):
        raise ValidationError({"role": "Role: the clinic needs an owner; make someone else owner first."})
    before = {
        "display_name": staff.display_name,
        "role": staff.role,
        "qualified_techniques": staff.qualified_techniques,
    }
    staff.display_name, staff.role = display_name, role
    staff.qualified_techniques = _techniques(role, techniques)
    after = {"display_name": staff.display_name, "role": staff.role, "qualified_techniques": staff.qualified_techniques}
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    if changed:
        staff.save(update_fields=["display_name", "role", "qualified_techniques"])
        audit.record(by, "staff_update", obj=staff, detail={"changed": changed}, request=request)
    return staff


def _other_owners(staff: StaffMember) -> bool:
    return StaffMember.objects.filter(clinic=staff.clinic, role=Role.OWNER, active=True).exclude(pk=staff.pk).exists()


@transaction.atomic
def deactivate_staff(staff: StaffMember, *, by: Any, request: Any = None) -> StaffMember:
    """The member can no longer sign in: staff record and account inactive, every session ended, every API token
    revoked. Their records stay. Deactivating twice changes nothing and records nothing."""
    owner = _owner(by)
    if staff.clinic_id != owner.clinic_id:
        raise PermissionDenied("This member of staff works at another clinic.")
    if staff.pk == owner.pk:
        raise ValidationError("You cannot deactivate yourself; another owner can.")
    staff = locked(StaffMember.objects.all()).get(pk=staff.pk)
    if not staff.active:
        return staff
    if staff.role == Role.OWNER and not _other_owners(staff):
        raise ValidationError("The clinic needs an active owner.")
    staff.active = False
    staff.save(update_fields=["active"])
    user = staff.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    sessions = end_other_sessions(user)
    # The API (a layer above) revokes the member's tokens; each receiver answers how many it ended.
    tokens = sum(int(n or 0) for _, n in staff_deactivated.send(StaffMember, user=user, by=by, request=request))
    audit.record(
        by,
        "staff_deactivate",
        obj=staff,
        detail={"name": staff.display_name, "sessions_ended": sessions, "api_tokens_revoked": tokens},
        request=request,
    )
    return staff
