"""Forms for the scheduling pages: finding a free time, booking, moving, cancelling, a whole course, and the
client's own booking and waitlist in the portal.

The forms only check input and turn the clinic's local date and time into an instant; the services in
`backcare.scheduling.services` check the rules and write. Every message names its field in plain words.
"""

from __future__ import annotations

import contextlib
import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from backcare.clinic.models import Client, Clinic, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.forms import ISO_DATE, name_fields
from backcare.common.ids import ascii_digits
from backcare.scheduling.models import Absence, Room, Service, WorkingHours
from backcare.scheduling.services.availability import clinic_zone, to_utc

DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y"]
TIME_INPUT_FORMATS = ["%H:%M", "%H.%M", "%H:%M:%S"]
MAX_SEARCH_DAYS = 31
MAX_PORTAL_SEARCH_DAYS = 28
SLOT_SEPARATOR = "|"


def new_key() -> str:
    return secrets.token_urlsafe(24)


def date_widget() -> forms.DateInput:
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


def time_widget() -> forms.TimeInput:
    return forms.TimeInput(format="%H:%M", attrs={"type": "time", "step": 300})


def services_of(clinic: Clinic) -> QuerySet[Service]:
    return Service.objects.filter(clinic=clinic, active=True).order_by("name", "pk")


def therapists_of(clinic: Clinic) -> QuerySet[StaffMember]:
    return StaffMember.objects.filter(clinic=clinic, role=Role.THERAPIST, active=True).order_by("display_name", "pk")


def rooms_of(clinic: Clinic) -> QuerySet[Room]:
    return Room.objects.filter(clinic=clinic, active=True).order_by("name", "pk")


def local_instant(day: date, moment: Any, clinic: Clinic) -> datetime | None:
    """The clinic's local date and time as an aware UTC instant (None when the clocks skip that time)."""
    return to_utc(datetime.combine(day, moment), clinic_zone(clinic))


def encode_slot(starts_at: datetime, therapist_id: int, room_id: int) -> str:
    return SLOT_SEPARATOR.join([str(int(starts_at.timestamp())), str(therapist_id), str(room_id)])


def decode_slot(value: str) -> tuple[datetime, int, int] | None:
    parts = str(value).split(SLOT_SEPARATOR)
    if len(parts) != 3 or not all(ascii_digits(p) for p in parts) or len(parts[0]) > 12:
        return None
    return datetime.fromtimestamp(int(parts[0]), tz=UTC), int(parts[1]), int(parts[2])


def epoch_to_utc(value: Any) -> datetime | None:
    text = str(value or "")
    if not ascii_digits(text, max_length=12):
        return None
    return datetime.fromtimestamp(int(text), tz=UTC)


class ClientField(forms.ModelChoiceField):  # type: ignore[type-arg]  # not subscriptable at run time (no django_stubs_ext)
    """The client being booked, carried as a hidden id: the page finds the client by name (`client_picker`), so the
    form never renders a list of every client of the clinic."""

    widget = forms.HiddenInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Client.objects.none())
        kwargs.setdefault("label", "Client")
        super().__init__(**kwargs)
        self.error_messages["required"] = "Client: this is required."
        self.error_messages["invalid_choice"] = "Client: this client cannot be chosen here; find them by name again."


class _ClinicForm(forms.Form):
    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        self.clinic = clinic
        super().__init__(*args, **kwargs)
        self.setup()
        name_fields(self, dates=ISO_DATE)

    def setup(self) -> None:
        """Fill in the querysets that depend on the clinic."""


def _check_range(form: forms.Form, cleaned: dict[str, Any], longest: int) -> None:
    first, last = cleaned.get("date_from"), cleaned.get("date_to")
    if first and last:
        if last < first:
            form.add_error("date_to", "To: the last day must be on or after the first.")
        elif (last - first).days >= longest:
            form.add_error("date_to", f"To: search at most {longest} days at a time.")


# --- staff ------------------------------------------------------------------------------------------------------------


class SlotSearchForm(_ClinicForm):
    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none())
    date_from = forms.DateField(label="From", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    date_to = forms.DateField(label="To", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    therapist = forms.ModelChoiceField(
        label="Therapist", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )
    technique = forms.ChoiceField(label="Technique", required=False)
    client = ClientField(required=False, help_text="Optional: only times this client is free.")

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = services_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["client"].queryset = Client.objects.filter(clinic=self.clinic)  # type: ignore[attr-defined]
        self.fields["technique"].choices = [("", "Any technique"), *TECHNIQUES.items()]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _check_range(self, cleaned, MAX_SEARCH_DAYS)
        return cleaned


class _TimeFields(_ClinicForm):
    """A local date and time with a therapist and a room; `starts_at` (UTC) is filled in by clean()."""

    day = forms.DateField(label="Date", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    time = forms.TimeField(label="Time", input_formats=TIME_INPUT_FORMATS, widget=time_widget())
    therapist = forms.ModelChoiceField(label="Therapist", queryset=StaffMember.objects.none())
    room = forms.ModelChoiceField(label="Room", queryset=Room.objects.none())

    owner_may_overbook = False

    def __init__(self, *args: Any, clinic: Clinic, owner: bool = False, **kwargs: Any) -> None:
        self.owner = owner
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["room"].queryset = rooms_of(self.clinic)  # type: ignore[attr-defined]
        if self.owner:
            self.fields["overbook"] = forms.BooleanField(
                label="Overbook deliberately",
                required=False,
                help_text="Only the owner may book a time that is taken. The reason is kept in the audit trail.",
            )
            self.fields["override_reason"] = forms.CharField(
                label="Reason for overbooking",
                required=False,
                max_length=500,
                widget=forms.Textarea(attrs={"rows": 2}),
            )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        day, moment = cleaned.get("day"), cleaned.get("time")
        if day and moment:
            starts_at = local_instant(day, moment, self.clinic)
            if starts_at is None:
                self.add_error("time", "Time: this time does not exist on that day (the clocks go forward).")
            cleaned["starts_at"] = starts_at
        if self.owner and cleaned.get("overbook") and not str(cleaned.get("override_reason", "")).strip():
            self.add_error("override_reason", "Reason for overbooking: say why this time is overbooked.")
        return cleaned

    @property
    def override_reason(self) -> str:
        if not self.owner or not self.cleaned_data.get("overbook"):
            return ""
        return str(self.cleaned_data.get("override_reason", "")).strip()


class BookingForm(_TimeFields):
    client = ClientField()
    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none())
    submission_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    field_order = ["client", "service", "day", "time", "therapist", "room"]

    def setup(self) -> None:
        super().setup()
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["client"].queryset = Client.objects.filter(clinic=self.clinic)  # type: ignore[attr-defined]
        self.fields["service"].queryset = services_of(self.clinic)  # type: ignore[attr-defined]
        self.order_fields(self.field_order)


class MoveForm(_TimeFields):
    late_reason = forms.CharField(
        label="Reason for the late change",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Needed less than the cancellation window before the appointment.",
    )


class MoveSearchForm(_ClinicForm):
    date_from = forms.DateField(label="From", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    date_to = forms.DateField(label="To", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    therapist = forms.ModelChoiceField(
        label="Therapist", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _check_range(self, cleaned, MAX_SEARCH_DAYS)
        return cleaned


class CancelForm(forms.Form):
    reason = forms.CharField(label="Reason for cancelling", max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    late_reason = forms.CharField(
        label="Reason for the late cancellation",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, reason_required: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["reason"].required = reason_required
        name_fields(self, dates=ISO_DATE)


class CourseProposalForm(_ClinicForm):
    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none())
    start = forms.DateField(label="First possible day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    sessions = forms.IntegerField(label="Sessions to book", min_value=1, max_value=50)

    def __init__(self, *args: Any, clinic: Clinic, remaining: int, **kwargs: Any) -> None:
        self.remaining = remaining
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = services_of(self.clinic).filter(assessment=False)  # type: ignore[attr-defined]
        self.fields["sessions"].max_value = max(self.remaining, 1)  # type: ignore[attr-defined]
        self.fields["sessions"].widget.attrs["max"] = max(self.remaining, 1)

    def clean_sessions(self) -> int:
        value = int(self.cleaned_data["sessions"])
        if value > self.remaining:
            raise ValidationError(f"Sessions to book: at most {self.remaining} (the rest are booked already).")
        return value


class SlotListField(forms.Field):
    """Hidden "epoch|therapist|room" values, one per session, decoded to (starts_at, therapist id, room id)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[tuple[datetime, int, int]]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        decoded = [decode_slot(v) for v in values]
        if any(d is None for d in decoded) or len(decoded) > 50:
            raise ValidationError("Sessions: the proposal was damaged; please make a new proposal.")
        return [d for d in decoded if d is not None]


class CourseBookingForm(_ClinicForm):
    """The proposal as shown, sent back to be booked exactly as it was: one hidden value per session."""

    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none(), widget=forms.HiddenInput)
    session = SlotListField(label="Sessions")
    submission_key = forms.CharField(widget=forms.HiddenInput, max_length=40, required=False)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = services_of(self.clinic)  # type: ignore[attr-defined]


# --- the client's portal ----------------------------------------------------------------------------------------------


class PortalSearchForm(_ClinicForm):
    service = forms.ModelChoiceField(label="What would you like to book?", queryset=Service.objects.none())
    therapist = forms.ModelChoiceField(
        label="With", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )
    date_from = forms.DateField(label="From", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    date_to = forms.DateField(label="To", input_formats=DATE_INPUT_FORMATS, widget=date_widget())

    def __init__(self, *args: Any, clinic: Clinic, services: QuerySet[Service], **kwargs: Any) -> None:
        self.services = services
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = self.services  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _check_range(self, cleaned, MAX_PORTAL_SEARCH_DAYS)
        return cleaned


class PortalBookForm(_ClinicForm):
    """A slot the portal offered, confirmed by the client: the slot travels in hidden fields."""

    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none(), widget=forms.HiddenInput)
    therapist = forms.ModelChoiceField(label="Therapist", queryset=StaffMember.objects.none(), widget=forms.HiddenInput)
    room = forms.ModelChoiceField(label="Room", queryset=Room.objects.none(), widget=forms.HiddenInput)
    starts = forms.CharField(label="Time", widget=forms.HiddenInput, max_length=12)
    submission_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, clinic: Clinic, services: QuerySet[Service], **kwargs: Any) -> None:
        self.services = services
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = self.services  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["room"].queryset = rooms_of(self.clinic)  # type: ignore[attr-defined]

    def clean_starts(self) -> datetime:
        starts_at = epoch_to_utc(self.cleaned_data["starts"])
        if starts_at is None:
            raise ValidationError("Time: this time could not be read. Please choose a time again.")
        return starts_at


class PortalMoveSearchForm(_ClinicForm):
    """Where the client looks for another time for their appointment: days and, if they like, a therapist."""

    therapist = forms.ModelChoiceField(
        label="With", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )
    date_from = forms.DateField(label="From", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    date_to = forms.DateField(label="To", input_formats=DATE_INPUT_FORMATS, widget=date_widget())

    def setup(self) -> None:
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        _check_range(self, cleaned, MAX_PORTAL_SEARCH_DAYS)
        return cleaned


class PortalMoveForm(_ClinicForm):
    """The new time the portal offered for an appointment, confirmed by the client (hidden fields, as booking)."""

    therapist = forms.ModelChoiceField(label="Therapist", queryset=StaffMember.objects.none(), widget=forms.HiddenInput)
    room = forms.ModelChoiceField(label="Room", queryset=Room.objects.none(), widget=forms.HiddenInput)
    starts = forms.CharField(label="Time", widget=forms.HiddenInput, max_length=12)

    def setup(self) -> None:
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["room"].queryset = rooms_of(self.clinic)  # type: ignore[attr-defined]

    def clean_starts(self) -> datetime:
        starts_at = epoch_to_utc(self.cleaned_data["starts"])
        if starts_at is None:
            raise ValidationError("Time: this time could not be read. Please choose a time again.")
        return starts_at


class WaitlistForm(_ClinicForm):
    service = forms.ModelChoiceField(label="What would you like to book?", queryset=Service.objects.none())
    therapist = forms.ModelChoiceField(
        label="With", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )
    earliest = forms.DateField(label="First day that suits you", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    latest = forms.DateField(label="Last day that suits you", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    note = forms.CharField(label="Anything the clinic should know (optional)", required=False, max_length=200)

    def __init__(self, *args: Any, clinic: Clinic, services: QuerySet[Service], **kwargs: Any) -> None:
        self.services = services
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = self.services  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("earliest"), cleaned.get("latest")
        if first and last and last < first:
            self.add_error("latest", "Last day that suits you: it must be on or after the first day.")
        elif first and last and (last - first) > timedelta(days=92):
            self.add_error("latest", "Last day that suits you: choose at most three months.")
        return cleaned


# --- the clinic's set-up (owner; hours and absences also the front desk and the therapist) ---------------------------


def number_widget(low: int, high: int) -> forms.NumberInput:
    """A number box with the browser's own limits; the service checks them again (and says what is wrong)."""
    return forms.NumberInput(attrs={"min": low, "max": high, "step": 1})


class RoomForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self, dates=ISO_DATE)


class ServiceForm(_ClinicForm):
    """A service's fields. The limits (length 5-480 minutes, turnover 0-120) are the service layer's: it keeps an
    appointment's busy time within the 12 hours the availability search relies on."""

    name = forms.CharField(label="Name", max_length=200)
    duration_minutes = forms.IntegerField(label="Length (minutes)", widget=number_widget(5, 480))
    turnover_before_minutes = forms.IntegerField(
        label="Turnover before (minutes)",
        initial=0,
        widget=number_widget(0, 120),
        help_text="Time the therapist and the room need before the client's time (setting up).",
    )
    turnover_after_minutes = forms.IntegerField(
        label="Turnover after (minutes)",
        initial=0,
        widget=number_widget(0, 120),
        help_text="Time they need after it (notes, cleaning the room).",
    )
    assessment = forms.BooleanField(
        label="First assessment visit",
        required=False,
        help_text="Bookable before the client's intake is screened (the visit where it is reviewed).",
    )
    techniques = forms.MultipleChoiceField(
        label="Techniques the therapist must hold",
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    rooms = forms.ModelMultipleChoiceField(
        label="Rooms",
        queryset=Room.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: any open room of the clinic.",
    )
    active = forms.BooleanField(
        label="Bookable",
        required=False,
        initial=True,
        help_text="Untick to stop new bookings and waitlist entries; booked appointments stay booked.",
    )

    def __init__(self, *args: Any, clinic: Clinic, editing: bool = False, **kwargs: Any) -> None:
        self.editing = editing
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["techniques"].choices = list(TECHNIQUES.items())  # type: ignore[attr-defined]
        self.fields["rooms"].queryset = Room.objects.filter(clinic=self.clinic).order_by("name", "pk")  # type: ignore[attr-defined]
        if not self.editing:
            del self.fields["active"]


class WeeklyHoursForm(forms.Form):
    """A week of working hours as a grid: for each weekday, `rows` blocks of start and end (local clinic time).

    The form only reads the times and pairs them up; whether the blocks end after they start and do not overlap is
    the service's rule (`resources.set_working_hours`), whose messages the page shows beside the day they name."""

    MAX_ROWS = 8
    rows = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=MAX_ROWS)

    def __init__(self, *args: Any, rows: int = 3, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["rows"].error_messages["required"] = "The form was incomplete: please reload the page."
        if self.is_bound:
            with contextlib.suppress(ValueError):
                rows = int(str(self.data.get("rows", rows)))
        self.row_count = min(max(rows, 1), self.MAX_ROWS)
        for weekday, day in WorkingHours.Weekday.choices:
            for i in range(self.row_count):
                for end, word in (("start", "starts"), ("end", "ends")):
                    self.fields[self.name_of(weekday, i, end)] = forms.TimeField(
                        label=f"{day}, block {i + 1} {word}",
                        required=False,
                        input_formats=TIME_INPUT_FORMATS,
                        widget=time_widget(),
                    )
        name_fields(self, dates=ISO_DATE)
        self.day_errors: dict[int, list[str]] = {}

    @staticmethod
    def name_of(weekday: int, row: int, end: str) -> str:
        return f"d{weekday}_{row}_{end}"

    @classmethod
    def initial_from(cls, blocks: Any) -> tuple[dict[str, Any], int]:
        """Initial values from the therapist's WorkingHours rows, and the rows needed (one spare per day)."""
        per_day: dict[int, list[Any]] = {}
        for block in sorted(blocks, key=lambda b: (b.weekday, b.starts)):
            per_day.setdefault(block.weekday, []).append(block)
        rows = min(max([3, *(len(v) + 1 for v in per_day.values())]), cls.MAX_ROWS)
        initial: dict[str, Any] = {"rows": rows}
        for weekday, day_blocks in per_day.items():
            for i, block in enumerate(day_blocks[:rows]):
                initial[cls.name_of(weekday, i, "start")] = block.starts
                initial[cls.name_of(weekday, i, "end")] = block.ends
        return initial, rows

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        weekly: dict[int, list[tuple[Any, Any]]] = {}
        for weekday, day in WorkingHours.Weekday.choices:
            for i in range(self.row_count):
                start_name, end_name = self.name_of(weekday, i, "start"), self.name_of(weekday, i, "end")
                if start_name in self.errors or end_name in self.errors:
                    continue
                start, end = cleaned.get(start_name), cleaned.get(end_name)
                if start and not end:
                    self.add_error(end_name, f"{day}, block {i + 1}: give the end time too, or clear the start.")
                elif end and not start:
                    self.add_error(start_name, f"{day}, block {i + 1}: give the start time too, or clear the end.")
                elif start and end:
                    weekly.setdefault(weekday, []).append((start, end))
        cleaned["weekly"] = weekly
        return cleaned

    def add_day_errors(self, error: ValidationError) -> None:
        """Put the service's messages ("Monday: the blocks overlap.") beside the day they name."""
        messages = error.message_dict if hasattr(error, "error_dict") else {"": error.messages}
        for key, texts in messages.items():
            if key.startswith("day_") and ascii_digits(key[4:]):
                self.day_errors.setdefault(int(key[4:]), []).extend(texts)
            else:
                self.add_error(None, texts)

    def grid(self) -> list[dict[str, Any]]:
        """The days as the page shows them: each with its blocks (bound fields) and its messages."""
        days = []
        for weekday, day in WorkingHours.Weekday.choices:
            blocks = [
                (self[self.name_of(weekday, i, "start")], self[self.name_of(weekday, i, "end")])
                for i in range(self.row_count)
            ]
            days.append(
                {"weekday": weekday, "label": day, "blocks": blocks, "errors": self.day_errors.get(weekday, [])}
            )
        return days


class AbsenceForm(forms.Form):
    first_day = forms.DateField(label="First day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    last_day = forms.DateField(label="Last day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    kind = forms.ChoiceField(label="Kind", choices=Absence.Kind.choices)
    note = forms.CharField(label="Note (optional)", required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self, dates=ISO_DATE)


# --- the staff waitlist ----------------------------------------------------------------------------------------------

WAITLIST_SHOWN = {
    "open": ("Waiting or offered a time", ["waiting", "offered"]),
    "waiting": ("Waiting", ["waiting"]),
    "offered": ("Offered a time now", ["offered"]),
    "booked": ("Booked from the waitlist", ["booked"]),
    "withdrawn": ("Withdrawn", ["withdrawn"]),
    "all": ("All", ["waiting", "offered", "booked", "withdrawn"]),
}


class WaitlistFilterForm(_ClinicForm):
    status = forms.ChoiceField(
        label="Show", required=False, choices=[(k, label) for k, (label, _) in WAITLIST_SHOWN.items()]
    )
    service = forms.ModelChoiceField(
        label="Service", queryset=Service.objects.none(), required=False, empty_label="Any service"
    )
    therapist = forms.ModelChoiceField(
        label="Therapist asked for",
        queryset=StaffMember.objects.none(),
        required=False,
        empty_label="Any",
    )

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["service"].queryset = Service.objects.filter(clinic=self.clinic).order_by("name", "pk")  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]


class StaffWaitlistForm(_ClinicForm):
    client = ClientField()
    service = forms.ModelChoiceField(label="Service", queryset=Service.objects.none())
    therapist = forms.ModelChoiceField(
        label="Therapist", queryset=StaffMember.objects.none(), required=False, empty_label="Any therapist"
    )
    earliest = forms.DateField(label="First suitable day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    latest = forms.DateField(label="Last suitable day", input_formats=DATE_INPUT_FORMATS, widget=date_widget())
    note = forms.CharField(label="Note (optional)", required=False, max_length=200)

    def __init__(self, *args: Any, clinic: Clinic, clients: QuerySet[Client], **kwargs: Any) -> None:
        self.clients = clients
        super().__init__(*args, clinic=clinic, **kwargs)

    def setup(self) -> None:
        # self.fields is typed with the base Field; these are the choice fields declared above
        self.fields["client"].queryset = self.clients  # type: ignore[attr-defined]
        self.fields["service"].queryset = services_of(self.clinic)  # type: ignore[attr-defined]
        self.fields["therapist"].queryset = therapists_of(self.clinic)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        first, last = cleaned.get("earliest"), cleaned.get("latest")
        if first and last and last < first:
            self.add_error("latest", "Last suitable day: it must be on or after the first suitable day.")
        elif first and last and (last - first) > timedelta(days=92):
            self.add_error("latest", "Last suitable day: choose at most three months.")
        return cleaned
