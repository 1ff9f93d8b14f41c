"""What every app's forms share: messages that name their field, and a service's refusal shown on the form.

Views stay thin: a form checks input, a service writes and refuses with a `ValidationError` keyed by field name,
and `add_service_errors` puts each message next to the field it names (or above the form).
"""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

DAY_MONTH_YEAR = " as day/month/year, for example 14/03/1985"  # the clinic's typed dates (DATE_INPUT_FORMATS)
ISO_DATE = ", for example 2025-03-14"  # a browser's date picker


def _defaults(field: forms.Field) -> dict[str, object]:
    """Django's own messages for this kind of field, which `name_fields` may replace (a field's own never)."""
    messages: dict[str, object] = {}
    for cls in reversed(type(field).__mro__):
        messages.update(getattr(cls, "default_error_messages", {}))
    return messages


def name_fields(form: forms.BaseForm, *, dates: str = DAY_MONTH_YEAR) -> None:
    """Give every field's standard messages the field's own name, e.g. "Service: choose one of the options in the
    list.". `dates` is the example a date's message gives (`DAY_MONTH_YEAR` or `ISO_DATE`)."""
    for field in form.fields.values():
        label = str(field.label or "")
        if not label:
            continue
        named: dict[str, str] = {"required": f"{label}: this is required."}
        if isinstance(field, forms.EmailField):
            named["invalid"] = f"{label}: enter a valid email address, like name@example.com."
        if isinstance(field, forms.DateField):
            named["invalid"] = f"{label}: enter a real date{dates}."
        if isinstance(field, forms.TimeField):
            named["invalid"] = f"{label}: enter a time as hours:minutes, for example 09:30."
        if isinstance(field, forms.IntegerField):
            named["invalid"] = f"{label}: enter a whole number."
        if isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
            named["invalid_choice"] = f"{label}: choose one of the options in the list."
        if isinstance(field, forms.CharField) and field.max_length:
            named["max_length"] = f"{label}: use at most {field.max_length} characters."
        defaults = _defaults(field)
        for code, message in named.items():
            if field.error_messages.get(code) == defaults.get(code):
                field.error_messages[code] = message


def add_service_errors(form: forms.BaseForm, error: ValidationError, rename: dict[str, str] | None = None) -> None:
    """Show a service's ValidationError next to the fields it names (or above the form); `rename` maps a service's
    field name to the form's (``{"starts_at": "time"}``)."""
    rename = rename or {}
    if hasattr(error, "error_dict"):
        for field, messages in error.message_dict.items():
            name = rename.get(field, field)
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)
