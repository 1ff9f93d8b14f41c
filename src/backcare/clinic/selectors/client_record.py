"""What other apps add to a client's page (`client_detail`): the clinic may not import them, so they answer the
`client_record_sections` signal, as the dashboard's `dashboard_sections` (scheduling adds the client's appointments
and the buttons that book them)."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

from backcare.clinic.models import Client, StaffMember

#: `send(sender=Client, client=..., staff=..., user=...)`; each receiver returns a dict added to the page's context.
#: A receiver that brings its own template names it under "template" in a dict of its own, which the page includes.
client_record_sections = Signal()


def sections(client: Client, staff: StaffMember, user: Any) -> dict[str, Any]:
    """What other apps add to this client's page for this member of staff."""
    context: dict[str, Any] = {}
    for _, section in client_record_sections.send(sender=Client, client=client, staff=staff, user=user):
        if isinstance(section, dict):
            context.update(section)
    return context


__all__ = ["client_record_sections", "sections"]
