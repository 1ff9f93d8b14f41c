"""Forms for running the clinic in the application: the first-run set-up, clinic settings, staff and the audit
page's filters. Every message names its field; the forms only check input, the services write."""

from __future__ import annotations

import re
import zoneinfo
from functools import cache
from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from backcare.clinic.forms.clients import DATE_INPUT_FORMATS
from backcare.clinic.models import PHONE_DIGITS, Clinic, Role, StaffMember
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.forms import name_fields

COUNTRY = RegexValidator(r"^[A-Za-z]{2}$", "Country: a two-letter code, e.g. GB, IE, US, DE.")


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(z, z.replace("_", " ")) for z in sorted(zoneinfo.available_timezones()) if "/" in z or z == "UTC"]


def _phone(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=20,
        required=False,
        help_text=help_text,
        validators=[RegexValidator(PHONE_DIGITS.regex, f"{label}: digits, spaces and + ( ) - only.")],
    )


class ClinicFieldsMixin(forms.Form):
    name = forms.CharField(label="Clinic name", max_length=200)
    country = forms.CharField(
        label="Country",
        max_length=2,
        min_length=2,
        initial="GB",
        validators=[COUNTRY],
        help_text="A two-letter ISO code (GB, IE, US, DE...): it sets the emergency numbers clients are told.",
    )
    time_zone = forms.ChoiceField(label="Time zone", choices=time_zone_choices, initial="Europe/London")
    address = forms.CharField(label="Address", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    email = forms.EmailField(label="Clinic email", required=False, help_text="Clients' replies to emails go here.")
    emergency_number = _phone("Emergency number", "Empty: the country's own (GB 999, most of Europe 112).")
    urgent_care_number = _phone("Urgent-care number", "Empty: the country's own, if it has one (GB 111).")

    def clean_country(self) -> str:
        return str(self.cleaned_data["country"]).upper()


class FirstRunForm(ClinicFieldsMixin):
    display_name = forms.CharField(label="Your name", max_length=200, help_text="As staff and clients will see it.")
    username = forms.CharField(
        label="Username", max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    owner_email = forms.EmailField(label="Your email", widget=forms.EmailInput(attrs={"autocomplete": "email"}))
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 10 characters, not a common password, not all digits, not like your name.",
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)

    def clean_username(self) -> str:
        value = str(self.cleaned_data["username"]).strip()
        if not re.match(r"^[\w.@+-]+$", value):
            raise ValidationError("Username: letters, digits and @ . + - _ only.")
        return value

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "Password again: the two passwords differ.")
        elif first:
            probe = get_user_model()(
                username=data.get("username", ""),
                email=data.get("owner_email", ""),
                first_name=data.get("display_name", ""),
            )
            try:
                password_validation.validate_password(first, probe)
            except ValidationError as error:
                self.add_error("password1", [f"Password: {m}" for m in error.messages])
        return data


class ClinicSettingsForm(ClinicFieldsMixin):
    cancellation_hours = forms.IntegerField(
        label="Cancellation window (hours)",
        min_value=0,
        max_value=336,
        help_text="Clients cancel or move online up to this many hours before; later changes are late.",
    )
    start_back_enabled = forms.BooleanField(
        label="Ask Keele's STarT Back questions in the online intake", required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)
        for name in ("cancellation_hours",):
            label = self.fields[name].label
            self.fields[name].error_messages.update(
                invalid=f"{label}: enter a whole number.",
                min_value=f"{label}: at least %(limit_value)s.",
                max_value=f"{label}: at most %(limit_value)s.",
            )

    @staticmethod
    def initial_of(clinic: Clinic) -> dict[str, Any]:
        return {name: getattr(clinic, name) for name in ClinicSettingsForm.base_fields}


def technique_choices() -> list[tuple[str, str]]:
    return sorted(TECHNIQUES.items(), key=lambda item: item[1])


class StaffFieldsMixin(forms.Form):
    display_name = forms.CharField(label="Name", max_length=200)
    role = forms.ChoiceField(label="Role", choices=Role.choices)
    qualified_techniques = forms.MultipleChoiceField(
        label="Qualified techniques",
        choices=technique_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Therapists are booked only for services whose techniques they are qualified in.",
    )


class StaffInviteForm(StaffFieldsMixin):
    email = forms.EmailField(label="Email", help_text="The invitation goes here; it is also their username.")
    field_order = ["display_name", "email", "role", "qualified_techniques"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()


class StaffEditForm(StaffFieldsMixin):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)

    @staticmethod
    def initial_of(staff: StaffMember) -> dict[str, Any]:
        return {
            "display_name": staff.display_name,
            "role": staff.role,
            "qualified_techniques": list(staff.qualified_techniques or []),
        }


class ConsentTextForm(forms.Form):
    version = forms.CharField(label="Version", max_length=20, help_text="A new label, e.g. 2026-2.")
    title = forms.CharField(label="Title", max_length=200)
    body = forms.CharField(
        label="Text",
        widget=forms.Textarea(attrs={"rows": 16}),
        help_text="Paragraphs separated by an empty line; # starts a heading, **bold** marks bold text.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)


class AuditFilterForm(forms.Form):
    person = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    client = forms.IntegerField(
        label="Client number", required=False, min_value=1, help_text="The number in the client's address."
    )
    action = forms.CharField(
        label="Action",
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"list": "audit-actions"}),
        help_text="The action's code, e.g. view, update_client, staff_invite.",
    )
    date_from = forms.DateField(label="From", required=False, input_formats=DATE_INPUT_FORMATS)
    date_to = forms.DateField(label="To", required=False, input_formats=DATE_INPUT_FORMATS)

    def __init__(self, *args: Any, clinic: Clinic, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        people = StaffMember.objects.filter(clinic=clinic).order_by("display_name", "pk")
        # self.fields is typed with the base Field; this one is the ChoiceField declared above
        self.fields["person"].choices = [("", "Everyone")] + [  # type: ignore[attr-defined]
            (s.user_id, f"{s.display_name} ({s.get_role_display()})") for s in people
        ]
        name_fields(self)
        for name in ("client",):
            label = self.fields[name].label
            self.fields[name].error_messages.update(
                invalid=f"{label}: enter a whole number.", min_value=f"{label}: at least %(limit_value)s."
            )
        for name in ("date_from", "date_to"):
            self.fields[name].error_messages["invalid"] = (
                f"{self.fields[name].label}: enter a real date as day/month/year, for example 14/03/2026."
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "To: the last day comes after the first.")
        return data
