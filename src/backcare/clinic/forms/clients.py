"""Forms for the client pages: contact details, sharing, a physician's clearance and a referral.

Every message names the field it belongs to, in plain words. The forms only check input; the services in
`backcare.clinic.services` write. A hidden one-time key (see `backcare.clinic.once`) makes a double submission of a
creating form create nothing twice.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import PurePath
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from backcare.clinic import once
from backcare.clinic.models import Client, Referral, Role, StaffMember
from backcare.clinical.vocabulary import PRESSURE_SCALE, REGIONS, TECHNIQUES
from backcare.common.forms import name_fields

DATE_INPUT_FORMATS = ["%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y", "%Y-%m-%d", "%d %m %Y"]
SEX_CHOICES = [("unknown", "Not given"), ("female", "Female"), ("male", "Male"), ("other", "Other")]


class OnceForm(forms.Form):
    """A form with a hidden one-time key and messages that name each field."""

    submission_key = forms.CharField(
        widget=forms.HiddenInput,
        error_messages={"required": "This form has expired. Please check the details and send it again."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("submission_key", once.new_key())
        name_fields(self)


def _date_widget(placeholder: str = "dd/mm/yyyy") -> forms.DateInput:
    return forms.DateInput(format="%d/%m/%Y", attrs={"placeholder": placeholder, "inputmode": "numeric"})


def therapist_choices(clinic: Any) -> Any:
    return StaffMember.objects.filter(clinic=clinic, active=True, role__in=[Role.THERAPIST, Role.OWNER]).order_by(
        "display_name"
    )


# --- clients --------------------------------------------------------------------------------------------------------


class ContactForm(forms.Form):
    first_name = forms.CharField(label="First name", max_length=100)
    last_name = forms.CharField(label="Last name", max_length=100)
    date_of_birth = forms.DateField(
        label="Date of birth", input_formats=DATE_INPUT_FORMATS, widget=_date_widget(), help_text="Day/month/year."
    )
    sex = forms.ChoiceField(label="Sex", choices=SEX_CHOICES, initial="unknown", required=False)
    email = forms.EmailField(label="Email", required=False)
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    address = forms.CharField(label="Address", required=False, widget=forms.Textarea(attrs={"rows": 3}))
    physician_name = forms.CharField(label="Physician (GP) name", max_length=200, required=False)
    physician_address = forms.CharField(
        label="Physician's address", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)

    def clean_first_name(self) -> str:
        return str(self.cleaned_data["first_name"]).strip()

    def clean_last_name(self) -> str:
        return str(self.cleaned_data["last_name"]).strip()

    def clean_sex(self) -> str:
        return str(self.cleaned_data.get("sex") or "unknown")

    def clean_date_of_birth(self) -> dt.date:
        born: dt.date = self.cleaned_data["date_of_birth"]
        today = timezone.localdate()
        if born > today:
            raise ValidationError("Date of birth: this date is in the future.")
        if born.year < today.year - 120:
            raise ValidationError("Date of birth: this would make the client over 120 years old; check the year.")
        return born

    def contact_data(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in ContactForm.base_fields}


class ClientCreateForm(OnceForm, ContactForm):
    therapist = forms.ModelChoiceField(
        label="Therapist",
        queryset=StaffMember.objects.none(),
        required=False,
        empty_label="Not assigned yet",
        help_text="The therapist who treats this client and sees the clinical record.",
    )

    field_order = [*ContactForm.base_fields, "therapist"]

    def __init__(self, *args: Any, staff: StaffMember, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if staff.role == Role.THERAPIST:
            del self.fields["therapist"]  # a therapist's new client is their own
        else:
            field = self.fields["therapist"]
            assert isinstance(field, forms.ModelChoiceField)
            field.queryset = therapist_choices(staff.clinic)
            field.error_messages["invalid_choice"] = "Therapist: choose a therapist of this clinic from the list."


class ClientEditForm(ContactForm):
    @classmethod
    def for_client(cls, client: Client) -> dict[str, Any]:
        return {name: getattr(client, name) for name in ContactForm.base_fields}


class ShareForm(forms.Form):
    therapist = forms.ModelChoiceField(label="Therapist", queryset=StaffMember.objects.none())

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["therapist"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = StaffMember.objects.filter(clinic=client.clinic, role=Role.THERAPIST, active=True).order_by(
            "display_name"
        )
        name_fields(self)
        field.error_messages["required"] = "Therapist: choose the therapist to share with."
        field.error_messages["invalid_choice"] = "Therapist: choose a therapist of this clinic from the list."


class AssignForm(forms.Form):
    therapist = forms.ModelChoiceField(
        label="Treating therapist", queryset=StaffMember.objects.none(), required=False, empty_label="Nobody yet"
    )

    def __init__(self, *args: Any, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["therapist"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = therapist_choices(client.clinic)
        name_fields(self)
        field.error_messages["invalid_choice"] = "Treating therapist: choose a therapist of this clinic from the list."


# --- clearance ------------------------------------------------------------------------------------------------------

LETTER_TYPES: dict[str, tuple[tuple[bytes, ...], str]] = {
    ".pdf": ((b"%PDF-",), "application/pdf"),
    ".jpg": ((b"\xff\xd8\xff",), "image/jpeg"),
    ".jpeg": ((b"\xff\xd8\xff",), "image/jpeg"),
    ".png": ((b"\x89PNG\r\n\x1a\n",), "image/png"),
}


def letter_content_type(name: str) -> str:
    suffix = PurePath(name).suffix.lower()
    return LETTER_TYPES[suffix][1] if suffix in LETTER_TYPES else "application/octet-stream"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 MB", " MB")


def checked_letter(letter: Any, label: str, stem: str) -> Any:
    """An uploaded letter checked by its first bytes (PDF, JPEG or PNG), stored under a neutral name."""
    if not letter:
        return None
    limit = settings.MAX_LETTER_BYTES
    if letter.size > limit:
        raise ValidationError(
            f"{label}: the file is {_megabytes(letter.size)}; the largest allowed is {_megabytes(limit)}. "
            "Scan it at a lower resolution or save it as a PDF."
        )
    suffix = PurePath(letter.name).suffix.lower()
    if suffix not in LETTER_TYPES:
        raise ValidationError(f"{label}: only PDF, JPEG or PNG files can be uploaded.")
    letter.seek(0)
    head = letter.read(16)
    letter.seek(0)
    if not any(head.startswith(magic) for magic in LETTER_TYPES[suffix][0]):
        raise ValidationError(
            f"{label}: the file is named {suffix} but is not a real {suffix.lstrip('.').upper()} file. "
            "Only PDF, JPEG or PNG files can be uploaded."
        )
    # Store under a neutral name: the original file name may carry personal details.
    letter.name = f"{stem}-{secrets.token_hex(8)}{'.jpg' if suffix == '.jpeg' else suffix}"
    return letter


class ClearanceForm(OnceForm):
    """The clearance of named findings, with the physician's restrictions as structured precautions."""

    findings = forms.MultipleChoiceField(
        label="Findings cleared",
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick each finding the physician has cleared. Findings left unticked still wait for clearance.",
        error_messages={"required": "Findings cleared: tick each finding the physician cleared."},
    )
    given_by = forms.CharField(
        label="Given by",
        max_length=200,
        help_text="Name and role of the clinician who gave clearance, e.g. Dr A. Jones, GP.",
    )
    given_on = forms.DateField(label="Date given", input_formats=DATE_INPUT_FORMATS, widget=_date_widget())
    note = forms.CharField(
        label="Note",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the clinician said, and any limits they set. A note or a letter is needed.",
    )
    letter = forms.FileField(
        label="Letter",
        required=False,
        help_text="The clinician's letter as a PDF, JPEG or PNG file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )
    valid_until = forms.DateField(
        label="Valid until",
        required=False,
        input_formats=DATE_INPUT_FORMATS,
        widget=_date_widget(),
        help_text="Only if the physician gave an end date; otherwise the clinic's period applies.",
    )
    avoid_regions = forms.MultipleChoiceField(
        label="Regions the physician said to avoid",
        required=False,
        choices=list(REGIONS.items()),
        widget=forms.CheckboxSelectMultiple,
        help_text="Every session checks these, as it checks the screening's precautions.",
    )
    max_pressure = forms.TypedChoiceField(
        label="Highest pressure allowed",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "No limit from the physician"), *((str(k), f"{k}: {v}") for k, v in PRESSURE_SCALE.items())],
    )
    avoid_techniques = forms.MultipleChoiceField(
        label="Techniques the physician ruled out",
        required=False,
        choices=list(TECHNIQUES.items()),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, findings: list[tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = findings or []
        field = self.fields["findings"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = choices
        field.error_messages["invalid_choice"] = (
            "Findings cleared: choose findings from the list; the screening may have changed, so check them again."
        )
        if not self.is_bound:
            self.initial.setdefault("given_on", timezone.localdate())
        self.fields["letter"].help_text += f" At most {_megabytes(settings.MAX_LETTER_BYTES)}."

    def clean_given_on(self) -> dt.date:
        given: dt.date = self.cleaned_data["given_on"]
        if given > timezone.localdate():
            raise ValidationError("Date given: this date is in the future.")
        return given

    def clean_valid_until(self) -> dt.date | None:
        until: dt.date | None = self.cleaned_data.get("valid_until")
        if until is not None and until < timezone.localdate():
            raise ValidationError("Valid until: this date has passed; the clearance would not stand.")
        return until

    def clean_letter(self) -> Any:
        return checked_letter(self.cleaned_data.get("letter"), "Letter", "clearance")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors and not str(data.get("note", "")).strip() and not data.get("letter"):
            self.add_error("note", "Note: add a note of what the clinician said, or upload their letter.")
        return data


# --- medical assessments ---------------------------------------------------------------------------------------


class AssessmentForm(forms.Form):
    """The medical assessment that allows a red flag to be withdrawn; the service decides when it is needed."""

    assessment_assessed_by = forms.CharField(
        label="Assessed by",
        required=False,
        max_length=200,
        help_text="Name and role of the clinician who assessed the client, e.g. Dr A. Jones, GP.",
    )
    assessment_service = forms.CharField(
        label="Service",
        required=False,
        max_length=200,
        help_text="Where, e.g. the GP practice, A&E, a hospital clinic.",
    )
    assessment_assessed_on = forms.DateField(
        label="Assessed on", required=False, input_formats=DATE_INPUT_FORMATS, widget=_date_widget()
    )
    assessment_outcome = forms.CharField(
        label="Outcome",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the assessment found, and what was advised.",
    )
    assessment_reason = forms.CharField(
        label="Why it no longer applies",
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    assessment_letter = forms.FileField(
        label="Their letter",
        required=False,
        help_text="Optional: the clinician's letter as a PDF, JPEG or PNG file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        name_fields(self)

    def clean_assessment_letter(self) -> Any:
        return checked_letter(self.cleaned_data.get("assessment_letter"), "Their letter", "assessment")

    def assessment(self) -> Any:
        """The assessment as the services take it (None when nothing was filled in)."""
        from backcare.clinic.services.assessments import Assessment

        data = {
            name.removeprefix("assessment_"): self.cleaned_data.get(name)
            for name in self.fields
            if name.startswith("assessment_")
        }
        return Assessment.from_data(data)

    def assessment_fields(self) -> list[Any]:
        return [self[name] for name in self.fields if name.startswith("assessment_")]


# --- referrals ------------------------------------------------------------------------------------------------------


class ReferralForm(OnceForm):
    urgency = forms.ChoiceField(
        label="Urgency",
        choices=[("", "Choose…"), *Referral.Urgency.choices],
        help_text="How soon the client should be seen.",
    )
    reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text="What the physician should know; it goes in the referral letter.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["urgency"].error_messages["required"] = "Urgency: choose routine, urgent or emergency."
        self.fields["reason"].error_messages["required"] = "Reason: give the reason for the referral."

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise ValidationError("Reason: give the reason for the referral.")
        return reason


class ReferralOutcomeForm(OnceForm):
    """The outcome of a referral: when the client was seen, by whom, what was advised."""

    assessed_by = forms.CharField(
        label="Seen by", max_length=200, help_text="Name and role of the clinician, e.g. Dr A. Jones, GP."
    )
    service = forms.CharField(label="Service", required=False, max_length=200, help_text="GP practice, A&E, clinic...")
    assessed_on = forms.DateField(label="Seen on", input_formats=DATE_INPUT_FORMATS, widget=_date_widget())
    outcome = forms.CharField(
        label="What was advised",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="What the clinician found, and what they advised about massage.",
    )
    reason = forms.CharField(label="Note", required=False, max_length=4000, widget=forms.Textarea(attrs={"rows": 2}))
    letter = forms.FileField(
        label="Their letter",
        required=False,
        help_text="Optional: the clinician's letter as a PDF, JPEG or PNG file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )

    def clean_letter(self) -> Any:
        return checked_letter(self.cleaned_data.get("letter"), "Their letter", "assessment")

    def clean_assessed_on(self) -> dt.date:
        seen: dt.date = self.cleaned_data["assessed_on"]
        if seen > timezone.localdate():
            raise ValidationError("Seen on: this date is in the future.")
        return seen


class ClinicConsentForm(OnceForm):
    """Consent given in the clinic: on the clinic's device, or a signed paper form with its witness."""

    method = forms.ChoiceField(
        label="How consent is given",
        choices=[("device", "The client signs here, on the clinic's device"), ("paper", "A signed paper form")],
        widget=forms.RadioSelect,
    )
    signature = forms.CharField(
        label="Client's signature",
        required=False,
        max_length=200,
        help_text="On the device: the client types their first and last name.",
    )
    paper_form = forms.FileField(
        label="Signed form",
        required=False,
        help_text="For a paper form: the scan or photo as a PDF, JPEG or PNG file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"}),
    )
    witnessed_by = forms.CharField(
        label="Witnessed by", required=False, max_length=200, help_text="For a paper form: who saw it being signed."
    )
    guardian_name = forms.CharField(
        label="Guardian's name", required=False, max_length=200, help_text="Required for a client under 16."
    )
    guardian_relationship = forms.CharField(
        label="Relationship", required=False, max_length=100, help_text="For example mother, father, legal guardian."
    )
    guardian_signature = forms.CharField(
        label="Guardian's signature",
        required=False,
        max_length=200,
        help_text="On the device: the guardian types their full name.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["method"].error_messages["required"] = (
            "How consent is given: choose the clinic's device or a signed paper form."
        )

    def clean_paper_form(self) -> Any:
        return checked_letter(self.cleaned_data.get("paper_form"), "Signed form", "consent")
