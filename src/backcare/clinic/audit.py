"""The audit trail: one call for every view and change of clinical data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models
from django.http import HttpRequest

from backcare.clinic.models import AuditEvent, Client


def actor_label(user: Any) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    staff = getattr(user, "staff", None)
    if staff is not None:
        return f"{staff.display_name} ({staff.get_role_display()})"
    client = getattr(user, "client", None)
    if client is not None:
        return f"{client.full_name} (client)"
    return str(user.get_username())


def _event(
    user: Any,
    action: str,
    client: Client | None,
    obj: models.Model | None,
    detail: dict[str, Any] | None,
    request: HttpRequest | None,
) -> AuditEvent:
    authenticated = user is not None and getattr(user, "is_authenticated", False)
    staff = getattr(user, "staff", None) if authenticated else None
    clinic_id = client.clinic_id if client is not None else getattr(staff, "clinic_id", None)
    return AuditEvent(
        user=user if authenticated else None,
        actor=actor_label(user),
        action=action,
        client=client,
        clinic_id=clinic_id,
        object_type=(obj._meta.model_name or "") if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        detail=detail or {},
        ip_address=request.META.get("REMOTE_ADDR") if request is not None else None,
    )


def record(
    user: Any,
    action: str,
    *,
    client: Client | None = None,
    obj: models.Model | None = None,
    detail: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Add one event. `action` is a short verb such as "view", "create", "update", "sign", "export"."""
    event = _event(user, action, client, obj, detail, request)
    event.save()
    return event


def viewed(request: HttpRequest, client: Client, what: str, obj: models.Model | None = None) -> None:
    """Record that the request's user looked at a client's record (`what` names the page)."""
    record(request.user, "view", client=client, obj=obj, detail={"page": what}, request=request)


def viewed_page(request: HttpRequest, clients: Iterable[Client], what: str, **detail: Any) -> AuditEvent:
    """One event for a page that listed clients with clinical state, naming every client it showed (their ids, in
    the order shown): the audit trail grows by one row per page view, however many clients the page lists."""
    ids = list(dict.fromkeys(c.pk for c in clients))
    return record(request.user, "view", detail={"page": what, "clients": ids, **detail}, request=request)


def viewed_many(request: HttpRequest, clients: Iterable[Client], what: str) -> None:
    """`viewed` for every client a page listed with clinical state, written in one query."""
    unique = {c.pk: c for c in clients}
    AuditEvent.objects.bulk_create(_event(request.user, "view", c, c, {"page": what}, request) for c in unique.values())
