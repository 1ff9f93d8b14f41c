"""Two-factor sign-in for staff (django-otp): an authenticator app (TOTP) and one-time recovery codes.

Who must: every owner, and every staff member of a clinic with `Clinic.require_two_factor`; anyone who set up an app
uses it. Portal clients never need it. `backcare.clinic.middleware.SecondFactorMiddleware` enforces it after the
password; this module owns every write (devices, codes, the clinic setting) and audits each one.

- Enrolment: `pending_device` makes an unconfirmed TOTP device (its secret shown once as a QR code and as text);
  `confirm_enrolment` confirms it with a code from the app, replaces any older app and issues recovery codes.
- Sign-in: `verify_code` takes a 6-digit app code (a code already used is refused: django-otp keeps the last time
  step) or a recovery code (deleted when used). Every failure is throttled by django-otp and audited.
- Recovery codes are kept as SHA-256 digests only (`RecoveryCodes`), shown once when issued.
- The owner can reset a staff member's second factor; the member sets it up again at their next request.
"""

from __future__ import annotations

import base64
import io
import secrets
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from backcare.clinic import audit
from backcare.clinic.models import Clinic, RecoveryCode, RecoveryCodes, StaffMember, recovery_code_digest
from backcare.common.rowlock import locked

RECOVERY_CODE_COUNT = 10
APP_NAME = "Authenticator app"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: codes are read from paper


def required_for(staff: StaffMember | None) -> bool:
    """Whether this staff member must sign in with a second factor (owners always; others by the clinic's setting)."""
    if staff is None or not staff.active:
        return False
    return staff.is_owner or staff.clinic.require_two_factor


def app_device(user: Any) -> TOTPDevice | None:
    """The user's confirmed authenticator app, if any."""
    device: TOTPDevice | None = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("-id").first()
    return device


def has_app(user: Any) -> bool:
    return bool(TOTPDevice.objects.filter(user=user, confirmed=True).exists())  # django-otp is untyped


def recovery_codes_left(user: Any) -> int:
    return RecoveryCode.objects.filter(device__user=user, device__confirmed=True).count()


# --- Enrolment -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolment:
    device: TOTPDevice
    secret: str  # base32, as an app asks for it when typed in
    qr_data_uri: str  # an SVG QR code of the otpauth:// address, as a data: URI for an <img> (no inline markup)

    @property
    def secret_groups(self) -> str:
        return " ".join(self.secret[i : i + 4] for i in range(0, len(self.secret), 4))


def pending_device(user: Any) -> Enrolment:
    """The user's enrolment in progress: an unconfirmed TOTP device, made on first call and kept until confirmed
    (so reloading the page shows the same secret the app may already have)."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-id").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_NAME, confirmed=False)
    secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    import qrcode  # with Pillow: at the first enrolment, not when the server starts (issue 14)
    import qrcode.image.svg

    image = qrcode.make(device.config_url, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer)
    uri = "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Enrolment(device=device, secret=secret, qr_data_uri=uri)


def confirm_enrolment(user: Any, code: str, *, request: HttpRequest | None = None) -> tuple[TOTPDevice, list[str]]:
    """Confirm the pending app with a code it shows now. Replaces any app set up before and issues new recovery
    codes (returned in clear this once). Raises ValidationError naming the `code` field when the code is wrong (the
    refusal and django-otp's throttling count are kept: the error is raised after the transaction commits)."""
    refused: str | None = None
    with transaction.atomic():
        device = locked(TOTPDevice.objects.filter(user=user, confirmed=False)).order_by("-id").first()
        if device is None:
            refused = "The set-up has expired: open this page again to get a new QR code."
        elif waiting := _waiting_seconds(device):
            refused = _wait_message(waiting)
        elif not device.verify_token(_digits(code)):
            refused = _wrong_code_message(device)
        if refused is not None:
            audit.record(user, "two_factor_setup_refused", obj=device, request=request)
        else:
            assert device is not None
            replaced = TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()[0]
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _issue_recovery_codes(user)
            audit.record(user, "two_factor_enrol", obj=device, detail={"replaced_apps": replaced}, request=request)
    if refused is not None:
        raise ValidationError({"code": refused})
    assert device is not None
    return device, codes


def new_recovery_codes(user: Any, *, request: HttpRequest | None = None) -> list[str]:
    """Replace the user's recovery codes (the old ones stop working); the new ones are returned in clear once."""
    if not has_app(user):
        raise ValidationError("Set up an authenticator app first; recovery codes come with it.")
    with transaction.atomic():
        codes = _issue_recovery_codes(user)
        audit.record(user, "two_factor_new_recovery_codes", detail={"codes": len(codes)}, request=request)
    return codes


def _issue_recovery_codes(user: Any) -> list[str]:
    RecoveryCodes.objects.filter(user=user).delete()
    device = RecoveryCodes.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:  # 16 characters of 31: about 79 random bits each
        code = "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(4))
        if code not in codes:
            codes.append(code)
    RecoveryCode.objects.bulk_create(RecoveryCode(device=device, digest=recovery_code_digest(c)) for c in codes)
    return codes


# --- Sign-in -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    device: TOTPDevice | RecoveryCodes
    recovery: bool
    codes_left: int


def verify_code(user: Any, code: str, *, request: HttpRequest | None = None) -> Verified:
    """Check a sign-in code: six digits for the app, anything else as a recovery code. Returns the device that
    accepted it; raises ValidationError (on `code`) when it is wrong, reused or the device is waiting out failures.
    Every outcome is audited, and a refusal (with django-otp's throttling count) is committed before the error."""
    digits = _digits(code)
    recovery = not (digits.isascii() and digits.isdigit() and len(digits) == 6)
    kind = "recovery code" if recovery else "app code"
    refused: tuple[str, str] | None = None
    with transaction.atomic():
        if recovery:
            device: TOTPDevice | RecoveryCodes | None = locked(
                RecoveryCodes.objects.filter(user=user, confirmed=True)
            ).first()
        else:
            device = locked(TOTPDevice.objects.filter(user=user, confirmed=True)).order_by("-id").first()
        if device is None:
            refused = ("no device", _wrong_code_message(RecoveryCodes() if recovery else TOTPDevice()))
        elif waiting := _waiting_seconds(device):
            refused = ("throttled", _wait_message(waiting))
        elif not device.verify_token(code.strip() if recovery else digits):
            refused = ("wrong", _wrong_code_message(device))
        if refused is not None:
            detail: dict[str, Any] = {"kind": kind, "why": refused[0]}
            audit.record(user, "two_factor_refused", obj=device, detail=detail, request=request)
        else:
            left = recovery_codes_left(user)
            detail = {"kind": kind, **({"recovery_codes_left": left} if recovery else {})}
            audit.record(user, "two_factor_sign_in", obj=device, detail=detail, request=request)
    if refused is not None:
        raise ValidationError({"code": refused[1]})
    assert device is not None
    return Verified(device=device, recovery=recovery, codes_left=left)


def gave_up(user: Any, tries: int, *, request: HttpRequest | None = None) -> None:
    """Record that a sign-in was sent back to the password after too many wrong codes."""
    audit.record(user, "two_factor_locked", detail={"tries": tries}, request=request)


def _digits(code: str) -> str:
    return "".join(code.split())


def _waiting_seconds(device: TOTPDevice | RecoveryCodes) -> int:
    allowed, data = device.verify_is_allowed()
    if allowed or not data:
        return 0
    locked_until = data.get("locked_until")
    if locked_until is None:
        return 1
    return max(1, int((locked_until - timezone.now()).total_seconds() + 0.999))


def _wait_message(seconds: int) -> str:
    unit = "second" if seconds == 1 else "seconds"
    return f"Too many wrong codes: wait {seconds} {unit}, then type the code your app shows then."


def _wrong_code_message(device: TOTPDevice | RecoveryCodes) -> str:
    if isinstance(device, RecoveryCodes):
        return "That recovery code did not match, or it was used already. Each recovery code works once."
    return (
        "That code did not match, or it was used already. Type the 6 digits your app shows now "
        "(check the phone's clock is right)."
    )


# --- The owner's controls ------------------------------------------------------------------------------------------


def reset_for(member: StaffMember, *, by: StaffMember, request: HttpRequest | None = None) -> int:
    """Remove a staff member's app and recovery codes (a lost phone). Only an owner of the same clinic may; the member
    sets up a new app at their next request if the second factor is required for them. Returns devices removed."""
    if not by.is_owner or by.clinic_id != member.clinic_id:
        raise ValidationError("Only the clinic's owner can reset a staff member's two-factor sign-in.")
    if member.pk == by.pk:
        raise ValidationError("You cannot reset your own two-factor sign-in here: set up a new app instead.")
    with transaction.atomic():
        removed: int = TOTPDevice.objects.filter(user=member.user, confirmed=True).count()  # django-otp is untyped
        removed += RecoveryCodes.objects.filter(user=member.user).count()
        TOTPDevice.objects.filter(user=member.user).delete()
        RecoveryCodes.objects.filter(user=member.user).delete()
        audit.record(
            by.user,
            "two_factor_reset",
            obj=member,
            detail={"staff": member.display_name, "devices_removed": removed},
            request=request,
        )
    return removed


def reset_by_operator(user: Any) -> int:
    """`backcare manage two_factor_reset USERNAME`: the operator removes a user's app and recovery codes (an owner
    who lost both, with no other owner to reset them). Audited as the operator; returns the devices removed."""
    from backcare.clinic.models import AuditEvent

    with transaction.atomic():
        removed: int = TOTPDevice.objects.filter(user=user, confirmed=True).count()  # django-otp is untyped
        removed += RecoveryCodes.objects.filter(user=user).count()
        TOTPDevice.objects.filter(user=user).delete()
        RecoveryCodes.objects.filter(user=user).delete()
        AuditEvent(
            actor="operator (backcare manage two_factor_reset)",
            action="two_factor_reset",
            object_type="user",
            object_id=str(user.pk),
            detail={"username": user.get_username(), "devices_removed": removed},
        ).save()
    return removed


def set_required_for_staff(
    clinic: Clinic, required: bool, *, by: StaffMember, request: HttpRequest | None = None
) -> None:
    """Turn the clinic's rule on or off: every staff member (not only owners) signs in with a second factor."""
    if not by.is_owner or by.clinic_id != clinic.pk:
        raise ValidationError("Only the clinic's owner can change this setting.")
    if clinic.require_two_factor == required:
        return
    with transaction.atomic():
        clinic.require_two_factor = required
        clinic.save(update_fields=["require_two_factor"])
        audit.record(
            by.user, "two_factor_policy", obj=clinic, detail={"required_for_all_staff": required}, request=request
        )
