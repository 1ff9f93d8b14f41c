"""Inviting a client to the portal, their registration, and informed consent.

Only a sha256 of an invitation token is stored; the token itself is shown once to staff and emailed to the client.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import smtplib
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from backcare.clinic import audit
from backcare.clinic.models import Client, Consent, ConsentText, Invitation, StaffMember

logger = logging.getLogger(__name__)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invitation_link(token: str, request: Any = None) -> str:
    path = reverse("register", args=[token])
    if request is not None:
        return str(request.build_absolute_uri(path))
    base = str(settings.BACKCARE.get("SITE_URL", "")).rstrip("/")
    return f"{base}{path}"


def _invitation_email(client: Client, link: str, expires: dt.datetime) -> tuple[str, str]:
    clinic = client.clinic
    day = timezone.localtime(expires).strftime("%d %B %Y")
    subject = f"Your invitation from {clinic.name}"
    lines = [
        f"Dear {client.first_name},",
        "",
        f"{clinic.name} invites you to set up your online record. There you read and sign the consent form and",
        "answer your health questions before your first visit.",
        "",
        "Open this link to choose a username and password:",
        link,
        "",
        f"The link works once and until {day}. If it has expired, ask the clinic for a new one.",
        "If you did not expect this email, you can ignore it.",
        "",
        clinic.name,
    ]
    if clinic.phone:
        lines.append(f"Phone: {clinic.phone}")
    return subject, "\n".join(lines) + "\n"


@transaction.atomic
def create_invitation(client: Client, staff: StaffMember, request: Any = None) -> tuple[Invitation, str]:
    """A new single-use invitation for this client. Earlier unused invitations stop working."""
    if client.clinic_id != staff.clinic_id:
        raise ValidationError("This client belongs to another clinic.")
    if client.user_id is not None:
        raise ValidationError(f"{client.full_name} already has portal access.")
    now = timezone.now()
    client.invitations.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    token = Invitation.new_token()
    invitation = Invitation.objects.create(
        client=client,
        token_hash=token_hash(token),
        created_by=staff,
        created_at=now,
        expires_at=now + dt.timedelta(days=int(settings.BACKCARE["INVITATION_DAYS"])),
    )
    emailed, email_failed = False, False
    if client.email:
        subject, body = _invitation_email(client, invitation_link(token, request), invitation.expires_at)
        try:
            send_mail(subject, body, None, [client.email])
            emailed = True
        except (OSError, smtplib.SMTPException):
            # The link is still shown to staff, who can give it to the client another way.
            logger.exception("invitation email to client %s could not be sent", client.pk)
            email_failed = True
    audit.record(
        staff.user,
        "invite",
        client=client,
        obj=invitation,
        detail={"emailed": emailed, "email_failed": email_failed, "expires_at": invitation.expires_at.isoformat()},
        request=request,
    )
    invitation.emailed = emailed  # type: ignore[attr-defined]  # for the page that shows the link once
    return invitation, token


class InvitationProblem(Exception):
    """The link cannot be used; `message` says why in plain words."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def find_invitation(token: str) -> Invitation:
    """The usable invitation for this token, or InvitationProblem saying why not."""
    invitation = Invitation.objects.select_related("client", "client__clinic").filter(token_hash=token_hash(token))
    found = invitation.first()
    if found is None:
        raise InvitationProblem(
            "This invitation link is not valid. Check that you copied the whole link, or ask the clinic for a new one.",
            404,
        )
    if found.used_at is not None or found.client.user_id is not None:
        raise InvitationProblem(
            "This invitation link has already been used. Sign in with your username and password instead, "
            "or ask the clinic for a new link.",
            410,
        )
    if found.expires_at <= timezone.now():
        raise InvitationProblem("This invitation link has expired. Please ask the clinic for a new one.", 410)
    return found


@transaction.atomic
def accept_invitation(
    token: str, username: str, password: str, password_again: str | None = None, request: Any = None
) -> Any:
    """Create the client's login from an invitation. Raises InvitationProblem or ValidationError (per field)."""
    invitation = find_invitation(token)
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.used_at is not None:
        raise InvitationProblem("This invitation link has already been used.", 410)
    client = Client.objects.select_for_update().get(pk=invitation.client_id)
    if client.user_id is not None:
        raise InvitationProblem("This invitation link has already been used.", 410)

    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
    username = (username or "").strip()
    if not username:
        errors["username"] = ["Choose a username."]
    else:
        try:
            user_model._meta.get_field("username").run_validators(username)
        except ValidationError as e:
            errors["username"] = list(e.messages)
        if "username" not in errors and user_model.objects.filter(username__iexact=username).exists():
            errors["username"] = ["This username is taken. Please choose another."]
    if not password:
        errors["password"] = ["Choose a password."]
    else:
        candidate = user_model(username=username, first_name=client.first_name, last_name=client.last_name)
        candidate.email = client.email
        try:
            password_validation.validate_password(password, candidate)
        except ValidationError as e:
            errors["password"] = list(e.messages)
    if password_again is not None and password and password != password_again:
        errors["password_again"] = ["The two passwords are not the same."]
    if errors:
        raise ValidationError(errors)

    user = user_model.objects.create_user(
        username=username,
        password=password,
        email=client.email,
        first_name=client.first_name,
        last_name=client.last_name,
    )
    client.user = user
    client.save(update_fields=["user"])
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    audit.record(user, "register", client=client, obj=invitation, detail={"username": username}, request=request)
    return user


# --- Consent ----------------------------------------------------------------------------------------------------


def current_consent_text() -> ConsentText | None:
    """The latest published version of the consent text."""
    return ConsentText.objects.filter(published_at__lte=timezone.now()).order_by("-published_at", "-id").first()


def current_consent(client: Client) -> Consent | None:
    """The client's signature of the current consent text, if they have signed it and not withdrawn it."""
    text = current_consent_text()
    if text is None:
        return None
    return client.consents.filter(text=text, withdrawn_at__isnull=True).order_by("-signed_at").first()


def has_current_consent(client: Client) -> bool:
    return current_consent(client) is not None


def latest_consent(client: Client) -> Consent | None:
    return client.consents.select_related("text").order_by("-signed_at", "-id").first()


def _normalise_name(value: str) -> str:
    return " ".join(value.split()).casefold()


@transaction.atomic
def sign_consent(
    client: Client, text: ConsentText, signature: str, ip: str | None = None, *, by: Any = None, request: Any = None
) -> Consent:
    """Record the client's typed signature of the consent text (the current version only)."""
    current = current_consent_text()
    if current is None or text.pk != current.pk:
        raise ValidationError(
            {"__all__": ["A newer version of the consent text has been published. Please read it and sign again."]}
        )
    signature = " ".join((signature or "").split())
    if needs_guardian(client):
        raise ValidationError(
            {
                "__all__": [
                    f"A parent or guardian must give consent for a client under {GUARDIAN_AGE}: "
                    "please sign it together at the clinic."
                ]
            }
        )
    if not signature:
        raise ValidationError({"signature": ["Type your full name to sign."]})
    if _normalise_name(signature) != _normalise_name(client.full_name):
        raise ValidationError(
            {
                "signature": [
                    "The name you typed does not match the name on your record. "
                    "Type your first and last name exactly as the clinic has them."
                ]
            }
        )
    Client.objects.select_for_update().filter(pk=client.pk).first()
    existing = client.consents.filter(text=text, withdrawn_at__isnull=True).first()
    if existing is not None:
        return existing
    consent = Consent.objects.create(
        client=client, text=text, signature=signature, signed_at=timezone.now(), ip_address=ip or None
    )
    audit.record(
        by if by is not None else client.user,
        "sign",
        client=client,
        obj=consent,
        detail={"consent_version": text.version},
        request=request,
    )
    return consent


GUARDIAN_AGE = 16


def needs_guardian(client: Client) -> bool:
    """A client under 16 cannot consent alone: a parent's or guardian's consent is needed."""
    return client.age_on() < GUARDIAN_AGE


@transaction.atomic
def record_consent_in_clinic(
    client: Client,
    text: ConsentText,
    *,
    staff: StaffMember,
    method: str,
    signature: str = "",
    paper_form: Any = None,
    witnessed_by: str = "",
    guardian_name: str = "",
    guardian_relationship: str = "",
    guardian_signature: str = "",
    request: Any = None,
) -> Consent:
    """Consent given in the clinic: signed on the clinic's device (the client types their name; a guardian theirs),
    or a signed paper form uploaded with who witnessed it. Under 16, the guardian's name, relationship and
    signature are required (on paper, the signature is on the form)."""

    def clean(value: str) -> str:
        return " ".join((value or "").split())

    signature, witnessed_by = clean(signature), clean(witnessed_by)
    guardian_name, guardian_relationship = clean(guardian_name), clean(guardian_relationship)
    guardian_signature = clean(guardian_signature)
    errors: dict[str, str] = {}
    current = current_consent_text()
    if current is None or text.pk != current.pk:
        errors["__all__"] = "A newer version of the consent text has been published: reload the page and sign that."
    if client.clinic_id != staff.clinic_id:
        errors["__all__"] = "This client belongs to another clinic."
    minor = needs_guardian(client)
    if method == Consent.Method.DEVICE:
        if not minor and _normalise_name(signature) != _normalise_name(client.full_name):
            errors["signature"] = (
                "Client's signature: the client types their first and last name exactly as on the record."
            )
        if minor and guardian_name and _normalise_name(guardian_signature) != _normalise_name(guardian_name):
            errors["guardian_signature"] = "Guardian's signature: the guardian types their full name as given above."
    elif method == Consent.Method.PAPER:
        if not paper_form:
            errors["paper_form"] = "Signed form: upload the scan or photo of the signed paper form."
        if not witnessed_by:
            errors["witnessed_by"] = "Witnessed by: say who saw the form being signed."
        signature = signature or client.full_name
    else:
        errors["method"] = "How consent was given: choose the clinic's device or a signed paper form."
    if minor:
        if not guardian_name:
            errors["guardian_name"] = (
                f"Guardian's name: a client under {GUARDIAN_AGE} needs a parent's or guardian's consent."
            )
        if not guardian_relationship:
            errors["guardian_relationship"] = "Relationship: say how the guardian is related to the client."
    if errors:
        raise ValidationError(errors)
    Client.objects.select_for_update().filter(pk=client.pk).first()
    existing = client.consents.filter(text=text, withdrawn_at__isnull=True).first()
    if existing is not None:
        return existing
    consent = Consent.objects.create(
        client=client,
        text=text,
        signature=signature,
        signed_at=timezone.now(),
        method=method,
        witnessed_by=witnessed_by,
        paper_form=paper_form or "",
        guardian_name=guardian_name,
        guardian_relationship=guardian_relationship,
        guardian_signature=guardian_signature,
        recorded_by=staff,
    )
    audit.record(
        staff.user,
        "record_consent",
        client=client,
        obj=consent,
        detail={
            "consent_version": text.version,
            "method": method,
            "witnessed_by": witnessed_by,
            "guardian": {"name": guardian_name, "relationship": guardian_relationship} if guardian_name else None,
        },
        request=request,
    )
    return consent


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def consent_html(text: ConsentText) -> SafeString:
    """The consent body (a small subset of Markdown: headings, paragraphs, **bold**) as escaped HTML."""
    parts: list[str] = []
    for block in re.split(r"\n\s*\n", text.body.strip()):
        block = " ".join(block.split())
        if not block:
            continue
        if block.startswith("#"):
            level = min(len(block) - len(block.lstrip("#")) + 1, 4)
            parts.append(f"<h{level}>{escape(block.lstrip('#').strip())}</h{level}>")
            continue
        html = _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", str(escape(block)))
        parts.append(f"<p>{html}</p>")
    return mark_safe("\n".join(parts))  # every piece of text was escaped above


__all__ = [
    "InvitationProblem",
    "accept_invitation",
    "consent_html",
    "create_invitation",
    "current_consent",
    "current_consent_text",
    "find_invitation",
    "has_current_consent",
    "invitation_link",
    "latest_consent",
    "needs_guardian",
    "record_consent_in_clinic",
    "sign_consent",
    "token_hash",
]
