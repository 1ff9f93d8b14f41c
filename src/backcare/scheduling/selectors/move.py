"""What the move page offers: the form's starting values and the free times to move an appointment to (the same
service, the client free, the appointment's own time left out)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from backcare.scheduling.forms import MoveSearchForm
from backcare.scheduling.models import Appointment
from backcare.scheduling.services.availability import Slot, clinic_zone, find_slots

SEARCH_DAYS = 7


def move_initial(appointment: Appointment, params: Mapping[str, Any]) -> dict[str, Any]:
    """The move form's values: the time chosen from the free times (`params`), else the appointment's own."""
    local = appointment.starts_at.astimezone(clinic_zone(appointment.clinic))
    return {
        "day": params.get("day") or local.date().isoformat(),
        "time": params.get("time") or local.strftime("%H:%M"),
        "therapist": params.get("therapist_to") or appointment.therapist_id,
        "room": params.get("room") or appointment.room_id,
    }


def _first_day(appointment: Appointment, today: date) -> date:
    local = appointment.starts_at.astimezone(clinic_zone(appointment.clinic))
    return max(today, local.date() - timedelta(days=3))


def move_search(appointment: Appointment, params: Mapping[str, Any], today: date) -> MoveSearchForm:
    """The search for free times: as asked (`date_from` in `params`), else the week around the appointment."""
    clinic = appointment.clinic
    if "date_from" in params:
        return MoveSearchForm(params, clinic=clinic, auto_id="search_%s")
    start = _first_day(appointment, today)
    initial = {
        "date_from": start.isoformat(),
        "date_to": (start + timedelta(days=SEARCH_DAYS - 1)).isoformat(),
        "therapist": appointment.therapist_id,
    }
    return MoveSearchForm(clinic=clinic, auto_id="search_%s", initial=initial)


def move_slots(appointment: Appointment, search: MoveSearchForm, today: date) -> tuple[list[Slot], dict[str, str]]:
    """The free times the search finds, and the search's own values (to keep in each time's link)."""
    if search.is_bound:
        if not search.is_valid():
            return [], {}
        first, last, therapist = (search.cleaned_data[k] for k in ("date_from", "date_to", "therapist"))
    else:
        first = _first_day(appointment, today)
        last, therapist = first + timedelta(days=SEARCH_DAYS - 1), appointment.therapist
    slots = find_slots(
        appointment.service,
        first,
        last,
        therapist=therapist,
        client=appointment.client,
        course=appointment.course,
        exclude=appointment,
    )
    here = {
        "date_from": first.isoformat(),
        "date_to": last.isoformat(),
        "therapist": str(therapist.pk if therapist else ""),
    }
    return slots, here


__all__ = ["move_initial", "move_search", "move_slots"]
