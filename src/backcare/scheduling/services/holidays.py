"""Public holidays: the clinic is closed for booking on the public holidays of its country (`Clinic.country`),
unless the owner opens one (`open_holiday`, audited; `close_holiday` undoes it).

The holidays come from the `holidays` package (observed days included, e.g. Boxing Day moved to the Monday), one year
at a time and cached; only the owner's exceptions are stored (`OpenedHoliday`). A country the package does not know
has no public holidays here. Availability (`availability._Grid`) offers no time on a closed day and booking
(`placement.check_rules`) refuses one, so a closed day is closed for every way in: the staff pages, the portal, the
waitlist and the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import holidays as holiday_data
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from backcare.clinic import access, audit
from backcare.clinic.models import Clinic, Role
from backcare.scheduling.models import OpenedHoliday


@lru_cache(maxsize=64)
def _year(country: str, year: int) -> tuple[tuple[date, str], ...]:
    try:
        found = holiday_data.country_holidays(country, years=year)
    except NotImplementedError:  # a country the package does not cover
        return ()
    return tuple(sorted((day, str(name)) for day, name in found.items()))


def public_holidays(clinic: Clinic, first: date, last: date) -> dict[date, str]:
    """The public holidays of the clinic's country on the days `first`..`last` (inclusive), with their names."""
    country = (clinic.country or "").upper()
    found: dict[date, str] = {}
    for year in range(first.year, last.year + 1):
        found.update((day, name) for day, name in _year(country, year) if first <= day <= last)
    return found


def closed_days(clinic: Clinic, first: date, last: date) -> dict[date, str]:
    """The days `first`..`last` the clinic is closed for booking (public holidays the owner has not opened), with
    the holiday's name. One query, whatever the range (so a search's number of queries does not depend on whether a
    holiday falls in it)."""
    found = public_holidays(clinic, first, last)
    for day in OpenedHoliday.objects.filter(clinic=clinic, day__range=(first, last)).values_list("day", flat=True):
        found.pop(day, None)
    return found


def closed_on(clinic: Clinic, day: date) -> str:
    """The holiday's name when the clinic is closed on `day`, else ""."""
    return closed_days(clinic, day, day).get(day, "")


@dataclass(frozen=True)
class HolidayDay:
    day: date
    name: str
    opened: OpenedHoliday | None

    @property
    def is_open(self) -> bool:
        return self.opened is not None


def year_holidays(clinic: Clinic, year: int) -> list[HolidayDay]:
    """The year's public holidays, each with the owner's opening if there is one. Two queries."""
    days = public_holidays(clinic, date(year, 1, 1), date(year, 12, 31))
    opened = {
        o.day: o for o in OpenedHoliday.objects.filter(clinic=clinic, day__year=year).select_related("opened_by__staff")
    }
    return [HolidayDay(day, name, opened.get(day)) for day, name in sorted(days.items())]


def _owner_of(by: Any, clinic: Clinic) -> None:
    staff = access.staff_of(by)
    if staff is None or staff.clinic_id != clinic.pk or staff.role != Role.OWNER:
        raise PermissionDenied("Only the clinic's owner may open or close a public holiday.")


def _holiday_name(clinic: Clinic, day: date) -> str:
    name = public_holidays(clinic, day, day).get(day)
    if name is None:
        raise ValidationError({"day": f"{day:%a %d %b %Y} is not a public holiday here."})
    return name


def open_holiday(clinic: Clinic, day: date, *, by: Any, request: Any = None) -> OpenedHoliday:
    """Open a public holiday for booking (the owner only). Opening one that is open already changes nothing."""
    _owner_of(by, clinic)
    name = _holiday_name(clinic, day)
    existing = OpenedHoliday.objects.filter(clinic=clinic, day=day).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            opened = OpenedHoliday.objects.create(clinic=clinic, day=day, name=name, opened_by=by)
            audit.record(
                by, "holiday_opened", obj=opened, detail={"day": day.isoformat(), "name": name}, request=request
            )
    except IntegrityError:  # opened at the same moment by another request
        return OpenedHoliday.objects.get(clinic=clinic, day=day)
    return opened


@transaction.atomic
def close_holiday(clinic: Clinic, day: date, *, by: Any, request: Any = None) -> bool:
    """Close an opened public holiday again (the owner only). Appointments already booked on it stay booked.
    True when it was open."""
    _owner_of(by, clinic)
    name = _holiday_name(clinic, day)
    deleted, _ = OpenedHoliday.objects.filter(clinic=clinic, day=day).delete()
    if deleted:
        audit.record(by, "holiday_closed", detail={"day": day.isoformat(), "name": name}, request=request)
    return bool(deleted)


def closed_message(moment: datetime, zone: Any, name: str) -> str:
    return f"The clinic is closed on {moment.astimezone(zone):%a %d %b %Y} ({name})."


__all__ = [
    "HolidayDay",
    "close_holiday",
    "closed_days",
    "closed_message",
    "closed_on",
    "open_holiday",
    "public_holidays",
    "year_holidays",
]
