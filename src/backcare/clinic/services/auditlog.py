"""The owner's clinic-wide audit page: the clinic's events newest first, filtered by person, client, action and
date, in readable words, paged by keyset and exported as a streamed CSV.

At scale the audit table holds millions of rows: each filter has an index that starts with the clinic and ends
with (at, id) (models.AuditEvent.Meta), and a page is read with `at <= a AND (at < a OR id < i)` after the last
entry of the page before, so every page costs the same whatever its depth. A page takes a fixed number of queries
(the events with their clients, then nothing per row).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db.models import Q, QuerySet

from backcare.clinic.models import AuditEvent, Client, Clinic, StaffMember

PAGE_SIZE = 50

# Actions in words where the code alone reads badly.
ACTION_LABELS = {
    "view": "Viewed",
    "create": "Created",
    "update": "Changed",
    "clinic_set_up": "Set up the clinic",
    "clinic_settings_update": "Changed the clinic's settings",
    "consent_text_publish": "Published a consent text",
    "staff_invite": "Invited a member of staff",
    "staff_invite_resent": "Sent a staff invitation again",
    "staff_joined": "Joined the clinic (chose a password)",
    "staff_update": "Changed a member of staff",
    "staff_deactivate": "Deactivated a member of staff",
    "audit_export": "Exported the audit trail",
}


@cache
def _labels() -> dict[str, str]:
    """Readable names of the codes an event's detail may hold: the intake's questions (f_<finding> and <finding>),
    and the fields of the clinic's records."""
    from django.apps import apps

    from backcare.clinic.services.intake import intake_form

    labels: dict[str, str] = {}
    for model in apps.get_app_config("clinic").get_models():
        for field in model._meta.get_fields():
            verbose = getattr(field, "verbose_name", None)
            if verbose:
                labels.setdefault(field.name, str(verbose)[:1].upper() + str(verbose)[1:])
    for question in intake_form().questions:
        labels[question.name] = question.text
        labels[question.finding] = question.text
    labels.update(page="Page", changed="Changed", detail="Detail")
    return labels


def label(code: Any) -> str:
    text = str(code)
    return _labels().get(text) or text.replace("_", " ").capitalize()


def action_label(action: str) -> str:
    return ACTION_LABELS.get(action) or action.replace("_", " ").capitalize()


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{label(k)}: {_value(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    if isinstance(value, str) and value in _labels():
        return label(value)
    return str(value)


def readable_detail(detail: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's detail as (label, words) pairs: {"changed": ["f_acute_illness"]} reads as the question asked."""
    return [(label(k), _value(v)) for k, v in (detail or {}).items()]


@dataclass(frozen=True)
class Filters:
    person: int | None = None  # a user id
    client: int | None = None
    action: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None


def events(clinic: Clinic, filters: Filters) -> QuerySet[AuditEvent]:
    qs = AuditEvent.objects.filter(clinic=clinic)
    if filters.person is not None:
        qs = qs.filter(user_id=filters.person)
    if filters.client is not None:
        qs = qs.filter(client_id=filters.client)
    if filters.action:
        qs = qs.filter(action=filters.action)
    zone = clinic.zone
    if filters.date_from is not None:
        qs = qs.filter(at__gte=dt.datetime.combine(filters.date_from, dt.time(), tzinfo=zone))
    if filters.date_to is not None:
        qs = qs.filter(at__lt=dt.datetime.combine(filters.date_to + dt.timedelta(days=1), dt.time(), tzinfo=zone))
    return qs.order_by("-at", "-id")


def cursor_of(event: AuditEvent) -> str:
    return f"{event.at.isoformat()}_{event.pk}"


def _after(qs: QuerySet[AuditEvent], cursor: str) -> QuerySet[AuditEvent]:
    try:
        at_text, id_text = cursor.rsplit("_", 1)
        at, pk = dt.datetime.fromisoformat(at_text), int(id_text)
    except ValueError:
        return qs
    return qs.filter(Q(at__lte=at) & (Q(at__lt=at) | Q(id__lt=pk)))


@dataclass
class Entry:
    event: AuditEvent
    action: str
    detail: list[tuple[str, str]]
    client: Client | None


@dataclass
class Page:
    entries: list[Entry]
    next_cursor: str


def page(clinic: Clinic, filters: Filters, cursor: str = "", size: int = PAGE_SIZE) -> Page:
    """One page of the clinic's events after `cursor` (the last entry of the page before)."""
    qs = events(clinic, filters).select_related("client")
    if cursor:
        qs = _after(qs, cursor)
    rows = list(qs[: size + 1])
    shown = rows[:size]
    entries = [Entry(e, action_label(e.action), readable_detail(e.detail), e.client) for e in shown]
    return Page(entries, cursor_of(shown[-1]) if len(rows) > size else "")


def people(clinic: Clinic) -> dict[int, str]:
    return {s.user_id: f"{s.display_name} ({s.get_role_display()})" for s in StaffMember.objects.filter(clinic=clinic)}


class _Echo:
    def write(self, value: str) -> str:
        return value


CSV_HEADER = ["When (UTC)", "Who", "Action", "Client number", "Client", "Record", "Detail", "From address", "Event id"]


def csv_rows(clinic: Clinic, filters: Filters, chunk: int = 2000) -> Iterator[str]:
    """The filtered events as CSV lines, read from the database in chunks (never all at once)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    qs = events(clinic, filters).select_related("client")
    for e in qs.iterator(chunk_size=chunk):
        name = e.client.full_name if e.client is not None else ""
        detail = "; ".join(f"{k}: {v}" for k, v in readable_detail(e.detail))
        record = f"{e.object_type} {e.object_id}".strip()
        yield writer.writerow(
            [
                e.at.astimezone(dt.UTC).isoformat(),
                _safe_cell(e.actor),
                action_label(e.action),
                e.client_id or "",
                _safe_cell(name),
                record,
                _safe_cell(detail),
                e.ip_address or "",
                e.pk,
            ]
        )


def _safe_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (text beginning = + - @)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
