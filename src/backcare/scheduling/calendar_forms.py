"""Forms of the calendar: what the calendar page is asked to show, the range the time grid asks its events for, and
the owner's opening of a public holiday. They only read input; the selectors and services decide and write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django import forms

from backcare.clinic.models import Clinic, StaffMember
from backcare.common.forms import ISO_DATE, name_fields
from backcare.scheduling.forms import DATE_INPUT_FORMATS, date_widget
from backcare.scheduling.models import Room

# The longest range the time grid's feed answers for (a month view and its edges).
MAX_FEED_DAYS = 42


@dataclass(frozen=True)
class CalendarQuery:
    """What the calendar page shows: the day asked for, a day or its week, per therapist or per room."""

    day: date
    view: str  # "day" or "week"
    group: str  # "therapist" or "room"
    cancelled: bool

    @property
    def days(self) -> list[date]:
        if self.view != "week":
            return [self.day]
        first = self.day - timedelta(days=self.day.weekday())
        return [first + timedelta(days=i) for i in range(7)]

    @property
    def step(self) -> timedelta:
        return timedelta(days=7 if self.view == "week" else 1)


class CalendarForm(forms.Form):
    """The calendar page's query string (`date`, `view`, `by`, `cancelled`). Nothing in it is an error: a date that
    cannot be read shows today, anything but "week" a day, anything but "room" per therapist."""

    view = forms.CharField(required=False, max_length=10)
    by = forms.CharField(required=False, max_length=10)
    cancelled = forms.CharField(required=False, max_length=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["date"] = forms.DateField(required=False, input_formats=["%Y-%m-%d"])

    def query(self, today: date) -> CalendarQuery:
        self.is_valid()
        data = self.cleaned_data
        return CalendarQuery(
            day=data.get("date") or today,
            view="week" if data.get("view") == "week" else "day",
            group="room" if data.get("by") == "room" else "therapist",
            cancelled=data.get("cancelled") == "1",  # cancelled appointments only when asked for
        )


def _local_date(value: str) -> date | None:
    """The date of an ISO date or date-time as the time grid sends it ("2026-12-07", "2026-12-07T00:00:00",
    with or without an offset: the clinic's local date is what it names)."""
    text = value.strip().replace(" ", "+")
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return None


class FeedForm(forms.Form):
    """The time grid's request for events: the visible range [start, end) and optionally one therapist or room."""

    start = forms.CharField(label="Start", max_length=40)
    end = forms.CharField(label="End", max_length=40)
    therapist = forms.ModelChoiceField(label="Therapist", queryset=StaffMember.objects.none(), required=False)
    room = forms.ModelChoiceField(label="Room", queryset=Room.objects.none(), required=False)
    cancelled = forms.CharField(required=False, max_length=1)

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Former therapists and closed rooms too: their past appointments stay on the calendar.
        self.fields["therapist"].queryset = StaffMember.objects.filter(clinic=clinic)  # type: ignore[attr-defined]
        self.fields["room"].queryset = Room.objects.filter(clinic=clinic)  # type: ignore[attr-defined]
        name_fields(self, dates=ISO_DATE)

    def clean_start(self) -> date:
        found = _local_date(self.cleaned_data["start"])
        if found is None:
            raise forms.ValidationError("Start: enter a date, for example 2026-03-14.")
        return found

    def clean_end(self) -> date:
        found = _local_date(self.cleaned_data["end"])
        if found is None:
            raise forms.ValidationError("End: enter a date, for example 2026-03-21.")
        return found

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, end = cleaned.get("start"), cleaned.get("end")
        if first and end:
            if end <= first:
                self.add_error("end", "End: the range must end after it starts.")
            elif (end - first).days > MAX_FEED_DAYS:
                self.add_error("end", f"End: ask for at most {MAX_FEED_DAYS} days at a time.")
        if cleaned.get("therapist") and cleaned.get("room"):
            self.add_error("room", "Room: choose a therapist or a room, not both.")
        return cleaned

    @property
    def last_day(self) -> date:
        """The last local day of the range (`end` is exclusive)."""
        end: date = self.cleaned_data["end"]
        return end - timedelta(days=1)


class HolidayYearForm(forms.Form):
    year = forms.IntegerField(label="Year", required=False, min_value=2000, max_value=2100)

    def year_or(self, default: int) -> int:
        return int(self.cleaned_data.get("year") or default) if self.is_valid() else default


class HolidayForm(forms.Form):
    """Open (or close again) one public holiday for booking."""

    day = forms.DateField(label="Day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    action = forms.ChoiceField(label="Action", choices=[("open", "Open this day"), ("close", "Close this day")])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self, dates=ISO_DATE)


__all__ = ["CalendarForm", "CalendarQuery", "FeedForm", "HolidayForm", "HolidayYearForm"]
