"""The form that makes a personal API token. Every message names its field."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.utils import timezone

from backcare.api.models import READ, WRITE
from backcare.clinic import once

SCOPE_CHOICES = [("read", "Read only: look up records"), ("write", "Read and write: also create and change records")]


class TokenForm(forms.Form):
    action = forms.CharField(widget=forms.HiddenInput, initial="create")
    submission_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    name = forms.CharField(
        label="Name",
        max_length=100,
        help_text="What the token is for, e.g. “practice reports script”.",
        error_messages={
            "required": "Name: say what the token is for.",
            "max_length": "Name: use at most %(limit_value)d characters.",
        },
    )
    scope = forms.ChoiceField(
        label="Access",
        choices=SCOPE_CHOICES,
        initial="read",
        widget=forms.RadioSelect,
        error_messages={
            "required": "Access: choose read only, or read and write.",
            "invalid_choice": "Access: choose read only, or read and write.",
        },
    )
    expires_on = forms.DateField(
        label="Expires on",
        required=False,
        input_formats=["%Y-%m-%d", "%d/%m/%Y"],
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
        help_text="Optional. The token stops working at the end of this day.",
        error_messages={"invalid": "Expires on: enter a real date, for example 2026-12-31."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("submission_key", once.new_key())
        super().__init__(*args, **kwargs)

    def clean_expires_on(self) -> Any:
        day = self.cleaned_data.get("expires_on")
        if day is not None and day < timezone.localdate():
            raise forms.ValidationError("Expires on: choose today or a later day, or leave it empty.")
        if day is not None and day > timezone.localdate() + timedelta(days=3 * 366):
            raise forms.ValidationError("Expires on: choose a day within the next three years.")
        return day

    def scopes(self) -> list[str]:
        return [READ, WRITE] if self.cleaned_data["scope"] == "write" else [READ]

    def expires_at(self) -> datetime | None:
        day = self.cleaned_data.get("expires_on")
        if day is None:
            return None
        return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))
