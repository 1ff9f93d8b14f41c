"""Making, finding and revoking personal API tokens; every creation and revocation is audited.

A token reads `bct_<prefix>_<secret>`: the prefix (8 random characters) identifies it in lists without revealing it,
the secret carries 256 bits of randomness. Only the SHA-256 of the whole token is stored, so a copy of the database
gives no working token.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from backcare.api.models import READ, SCOPES, ApiToken
from backcare.clinic import access, audit

TOKEN_PREFIX = "bct_"
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_ACTIVE_TOKENS = 20


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _audit_client(user: Any) -> Any:
    """A client's own token events appear in their record's audit trail."""
    return access.client_of(user)


@transaction.atomic
def create_token(
    user: Any, *, name: str, scopes: list[str], expires_at: datetime | None = None, request: Any = None
) -> tuple[ApiToken, str]:
    """Make a token for `user`; returns the row and the token, which is never shown again."""
    errors: dict[str, str] = {}
    name = name.strip()
    if not name:
        errors["name"] = "Name: say what the token is for."
    elif len(name) > 100:
        errors["name"] = "Name is too long (at most 100 characters)."
    scopes = sorted(set(scopes), key=SCOPES.index) if set(scopes) <= set(SCOPES) else []
    if READ not in scopes:
        errors["scopes"] = "Scopes: choose read, or read and write."
    if expires_at is not None and expires_at <= timezone.now():
        errors["expires_on"] = "Expires on: choose a day in the future, or leave it empty."
    active = ApiToken.objects.filter(user=user, revoked_at__isnull=True).exclude(expires_at__lte=timezone.now())
    if active.count() >= MAX_ACTIVE_TOKENS:
        errors["__all__"] = f"You have {MAX_ACTIVE_TOKENS} active tokens; revoke one you no longer use first."
    if errors:
        raise ValidationError(errors)
    prefix = secrets.token_hex(4)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=f"{TOKEN_PREFIX}{prefix}",
        token_hash=token_hash(token),
        scopes=scopes,
        expires_at=expires_at,
    )
    audit.record(
        user,
        "create_api_token",
        client=_audit_client(user),
        obj=row,
        detail={"name": name, "prefix": row.prefix, "scopes": scopes, "expires_at": _iso(expires_at)},
        request=request,
    )
    return row, token


@transaction.atomic
def revoke_token(row: ApiToken, *, by: Any, request: Any = None) -> ApiToken:
    """Revoke one of the user's own tokens (revoking twice changes nothing and records nothing)."""
    if row.user_id != getattr(by, "pk", None):
        raise PermissionError("only a token's owner revokes it")
    changed = ApiToken.objects.filter(pk=row.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    row.refresh_from_db()
    if changed:
        audit.record(
            by,
            "revoke_api_token",
            client=_audit_client(by),
            obj=row,
            detail={"name": row.name, "prefix": row.prefix},
            request=request,
        )
    return row


@dataclass(frozen=True)
class Refusal:
    """Why a presented token does not authenticate (the 401 problem's detail)."""

    detail: str


def revoke_all_of(sender: Any, *, user: Any, by: Any, request: Any = None, **_: Any) -> int:
    """Revoke every live token of a member of staff who was deactivated (`clinic.services.staff.staff_deactivated`);
    the deactivation's own audit event counts them."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def find_token(token: str) -> ApiToken | Refusal:
    """The live token for this secret, or why not. Marks it used (at most one write a minute per token)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return Refusal("The bearer token is not a Backcare API token.")
    row = ApiToken.objects.select_related("user").filter(token_hash=token_hash(token)).first()
    if row is None:
        return Refusal("This API token is not known. Create a token on your account's API tokens page.")
    if row.revoked_at is not None:
        return Refusal(f"This API token ({row.prefix}) was revoked.")
    now = timezone.now()
    if row.expires_at is not None and row.expires_at <= now:
        return Refusal(f"This API token ({row.prefix}) expired.")
    if not row.user.is_active or access.role_of(row.user) is None:
        return Refusal(f"The account of this API token ({row.prefix}) is no longer active.")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
        row.last_used_at = now
    return row


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
