"""Inviting a client to the portal, their registration, and informed consent.

An invitation's secret reaches the client only, never the staff member who sends it: `send_invitation` emails it
to the client's address, and `start_handover` gives it to the view that signs the staff member out and keeps it in
the clinic device's new session, where the client completes the registration themselves. Only the owner or the
client's own therapist may invite (backcare.clinic.access.may_invite). Registration asks for the client's date of
birth; after INVITATION_CHECKS wrong dates the link stops working. Links are single-use, and a new invitation ends
every earlier one. Only a sha256 of the token is stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from backcare.clinic import audit
from backcare.clinic.access import may_invite
from backcare.clinic.models import Client, Consent, ConsentText, Invitation, StaffMember
from backcare.common import outbox
from backcare.common.rowlock import locked

INVITATION_CHECKS = 5  # wrong dates of birth before a link stops working
HANDOVER_MINUTES = 30  # a hand-over on the clinic's device is done there and then


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
        "Open this link to choose a username and password (you will be asked for your date of birth):",
        link,
        "",
        f"The link works once and until {day}. If it has expired, ask the clinic for a new one.",
        "Do not forward this email: the link is for you alone.",
        "If you did not expect this email, you can ignore it.",
        "",
        clinic.name,
    ]
    if clinic.phone:
        lines.append(f"Phone: {clinic.phone}")
    return subject, "\n".join(lines) + "\n"


def new_invitation(
    client: Client, staff: StaffMember, *, method: str = Invitation.Method.EMAIL, lifetime: dt.timedelta | None = None
) -> tuple[Invitation, str]:
    """A new single-use invitation and its secret token; every earlier unused invitation of the client ends.

    The caller delivers the token to the client alone (as `send_invitation` and `start_handover` do) and audits."""
    if client.clinic_id != staff.clinic_id:
        raise ValidationError("This client belongs to another clinic.")
    if not may_invite(staff, client):
        raise PermissionDenied(f"Only the owner or {client.full_name}'s own therapist can invite them to the portal.")
    if client.user_id is not None:
        raise ValidationError(f"{client.full_name} already has portal access.")
    now = timezone.now()
    client.invitations.filter(used_at__isnull=True, expires_at__gt=now).update(expires_at=now)
    token = Invitation.new_token()
    invitation = Invitation.objects.create(
        client=client,
        token_hash=token_hash(token),
        method=method,
        created_by=staff,
        created_at=now,
        expires_at=now + (lifetime or dt.timedelta(days=int(settings.BACKCARE["INVITATION_DAYS"]))),
    )
    return invitation, token


@transaction.atomic
def send_invitation(client: Client, staff: StaffMember, request: Any = None) -> tuple[Invitation, bool]:
    """Queue a new invitation to the client's own address, in this transaction. The outbox sends it (retrying while
    the mail server is down, the owner seeing any failure); its row is marked secret, so the link is never shown
    from it and is blanked once sent. Returns (invitation, True): the email is on its way."""
    if not client.email:
        raise ValidationError(
            {"email": f"{client.full_name} has no email address on record: add one, or hand over in the clinic."}
        )
    invitation, token = new_invitation(client, staff)
    subject, body = _invitation_email(client, invitation_link(token, request), invitation.expires_at)
    outbox.enqueue_email(
        key=f"invitation-{invitation.pk}",
        kind="clinic.invitation",
        to=[client.email],
        subject=subject,
        body=body,
        reply_to=[client.clinic.email] if client.clinic.email else [],
        clinic_id=client.clinic_id,
        client_id=client.pk,
        context={"invitation": invitation.pk},
        secret=True,
    )
    audit.record(
        staff.user,
        "invite",
        client=client,
        obj=invitation,
        detail={
            "method": Invitation.Method.EMAIL,
            "sent_to": client.email,
            "expires_at": invitation.expires_at.isoformat(),
        },
        request=request,
    )
    return invitation, True


@transaction.atomic
def start_handover(client: Client, staff: StaffMember, request: Any = None) -> str:
    """A short-lived invitation for the client to complete on the clinic's device. The caller (the hand-over view)
    signs the staff member out and keeps the token in the device's new session only, never in a page or address."""
    invitation, token = new_invitation(
        client, staff, method=Invitation.Method.HANDOVER, lifetime=dt.timedelta(minutes=HANDOVER_MINUTES)
    )
    audit.record(
        staff.user,
        "invite",
        client=client,
        obj=invitation,
        detail={"method": Invitation.Method.HANDOVER, "expires_at": invitation.expires_at.isoformat()},
        request=request,
    )
    return token


def invitation_still_open(message: Any) -> str:
    """Asked by the outbox before it sends a clinic email: an invitation that was used, replaced or has expired
    meanwhile is not sent."""
    if message.kind != "clinic.invitation":
        return ""
    invitation = Invitation.objects.filter(pk=message.context.get("invitation")).first()
    if invitation is None:
        return "the invitation was deleted"
    if invitation.used_at is not None:
        return "the invitation has been used"
    if invitation.expires_at <= timezone.now():
        return "the invitation has expired or was replaced by a newer one"
    return ""


class InvitationProblem(Exception):
    """The link cannot be used; `message` says why in plain words."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


STOPPED = "This invitation link was stopped after too many wrong dates of birth. Please ask the clinic for a new one."


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
    if found.failed_checks >= INVITATION_CHECKS:
        raise InvitationProblem(STOPPED, 410)
    if found.expires_at <= timezone.now():
        raise InvitationProblem("This invitation link has expired. Please ask the clinic for a new one.", 410)
    return found


def _check_date_of_birth(invitation: Invitation, date_of_birth: dt.date, request: Any) -> int | None:
    """None when the date is the client's; else the attempts left (0: the link has just been stopped). A wrong date
    is counted in its own transaction, so the count stays although the registration is refused."""
    with transaction.atomic():
        current = locked(Invitation.objects.select_related("client")).get(pk=invitation.pk)
        if current.failed_checks >= INVITATION_CHECKS:
            return 0
        if date_of_birth == current.client.date_of_birth:
            return None
        Invitation.objects.filter(pk=current.pk).update(failed_checks=F("failed_checks") + 1)
        left = INVITATION_CHECKS - current.failed_checks - 1
        if left <= 0:
            Invitation.objects.filter(pk=current.pk).update(expires_at=timezone.now())
            audit.record(
                None,
                "invitation_stopped",
                client=current.client,
                obj=current,
                detail={"failed_checks": INVITATION_CHECKS},
                request=request,
            )
        return left


def _account_errors(client: Client, username: str, password: str, password_again: str | None) -> dict[str, list[str]]:
    user_model = get_user_model()
    errors: dict[str, list[str]] = {}
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
    return errors


def accept_invitation(
    token: str,
    username: str,
    password: str,
    password_again: str | None = None,
    *,
    date_of_birth: dt.date | None,
    request: Any = None,
) -> Any:
    """Create the client's login from an invitation, once the date of birth matches the client's record.

    Raises InvitationProblem (the link cannot be used) or ValidationError (per field)."""
    invitation = find_invitation(token)
    client = invitation.client
    username = (username or "").strip()
    errors = _account_errors(client, username, password, password_again)
    if date_of_birth is None:
        errors["date_of_birth"] = ["Enter your date of birth."]
    else:
        left = _check_date_of_birth(invitation, date_of_birth, request)
        if left == 0:
            raise InvitationProblem(STOPPED, 410)
        if left is not None:
            errors["date_of_birth"] = [
                "This is not the date of birth the clinic has for you. "
                f"{left} {'try' if left == 1 else 'tries'} left; after that this link stops working."
            ]
    if errors:
        raise ValidationError(errors)
    return _register(invitation.pk, username, password, request)


@transaction.atomic
def _register(invitation_pk: int, username: str, password: str, request: Any) -> Any:
    invitation = locked(Invitation.objects.select_related("created_by__user")).get(pk=invitation_pk)
    if invitation.used_at is not None or invitation.expires_at <= timezone.now():
        raise InvitationProblem("This invitation link has already been used.", 410)
    client = locked(Client.objects.all()).get(pk=invitation.client_id)
    if client.user_id is not None:
        raise InvitationProblem("This invitation link has already been used.", 410)
    user = get_user_model().objects.create_user(
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
    inviter = invitation.created_by
    audit.record(
        user,
        "register",
        client=client,
        obj=invitation,
        detail={
            "username": username,
            "method": invitation.method,
            "invited_by": audit.actor_label(inviter.user) if inviter is not None else "unknown",
            "invitation_sent_at": invitation.created_at.isoformat(),
        },
        request=request,
    )
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
    locked(Client.objects.filter(pk=client.pk)).first()
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
    locked(Client.objects.filter(pk=client.pk)).first()
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
    "current_consent",
    "current_consent_text",
    "find_invitation",
    "has_current_consent",
    "invitation_link",
    "invitation_still_open",
    "latest_consent",
    "needs_guardian",
    "new_invitation",
    "record_consent_in_clinic",
    "send_invitation",
    "sign_consent",
    "start_handover",
    "token_hash",
]
