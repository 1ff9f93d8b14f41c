"""The billing forms. Amounts are typed in the currency's major unit ("12.50") and kept as integer minor units."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.utils import timezone

from backcare.billing import money
from backcare.billing.models import Invoice, Package, Payment
from backcare.clinic import once


class AmountField(forms.CharField):
    def __init__(self, *, currency: str, **kwargs: Any) -> None:
        self.currency = currency
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off"})

    def clean(self, value: Any) -> Any:
        text = super().clean(value)
        if text in (None, ""):
            return None
        try:
            return money.parse(text, self.currency)
        except money.MoneyError as error:
            raise forms.ValidationError(str(error)) from None


class KeyedForm(forms.Form):
    """A form that carries a one-time key (the payment's idempotency key)."""

    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("key", once.new_key())


class PaymentForm(KeyedForm):
    amount = AmountField(currency="GBP", label="Amount")
    method = forms.ChoiceField(choices=Payment.Method.choices, label="Paid by")
    invoice = forms.TypedChoiceField(coerce=int, required=False, label="Against invoice", empty_value=None)
    reference = forms.CharField(max_length=200, required=False, label="Reference (terminal slip, bank reference)")

    def __init__(self, *args: Any, currency: str, invoices: list[Invoice], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount ({currency})")
        cast(forms.ChoiceField, self.fields["invoice"]).choices = [("", "On account (client credit)")] + [
            (i.pk, f"Invoice {i.number}, {money.format_money(i.total, i.currency)}") for i in invoices
        ]


class RefundForm(KeyedForm):
    amount = AmountField(currency="GBP", label="Amount")
    method = forms.ChoiceField(choices=Payment.Method.choices, label="Refunded by")
    note = forms.CharField(max_length=500, label="Reason for the refund", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount ({currency})")


class PackageForm(forms.Form):
    service = forms.TypedChoiceField(coerce=int, label="Service")
    sessions = forms.IntegerField(min_value=1, max_value=20, initial=4, label="Sessions")
    price = AmountField(currency="GBP", label="Price")
    expires_on = forms.DateField(label="Expires on", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, currency: str, services: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["service"]).choices = [(s.pk, s.name) for s in services]
        self.fields["price"] = AmountField(currency=currency, label=f"Price for all sessions ({currency})")
        if not self.is_bound:
            self.initial.setdefault("expires_on", timezone.localdate() + dt.timedelta(days=180))


class ClosePackageForm(forms.Form):
    package = forms.TypedChoiceField(coerce=int, label="Package")
    reason = forms.CharField(max_length=500, label="Why it is closed (course cancelled, discharged)")

    def __init__(self, *args: Any, packages: list[Package], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["package"]).choices = [
            (p.pk, f"{p} (until {p.expires_on:%d %b %Y})") for p in packages
        ]


class CreditNoteForm(KeyedForm):
    amount = AmountField(currency="GBP", label="Amount to credit")
    reason = forms.CharField(max_length=500, label="Reason", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount to credit ({currency})")


class WaiveForm(KeyedForm):
    reason = forms.CharField(max_length=500, label="Why the fee is waived", widget=forms.Textarea(attrs={"rows": 2}))


def _named(form: forms.BaseForm) -> None:
    """Standard messages that name their field ("Tax rate: enter a number.")."""
    for field in form.fields.values():
        label = str(field.label or "").replace("%", "%%")  # the messages are %-formatted with their parameters
        field.error_messages.update(
            required=f"{label}: this is required.",
            invalid_choice=f"{label}: choose one of the options in the list.",
        )
        if isinstance(field, forms.DateField):
            field.error_messages["invalid"] = f"{label}: enter a date as YYYY-MM-DD, for example 2026-03-14."
        if isinstance(field, forms.IntegerField):
            field.error_messages.update(
                invalid=f"{label}: enter a whole number.",
                min_value=f"{label}: at least %(limit_value)s.",
                max_value=f"{label}: at most %(limit_value)s.",
            )
        if isinstance(field, forms.CharField) and field.max_length:
            field.error_messages["max_length"] = f"{label}: use at most {field.max_length} characters."


class NamedAmountField(AmountField):
    """An amount whose messages name the field."""

    def clean(self, value: Any) -> Any:
        try:
            return super().clean(value)
        except forms.ValidationError as error:
            label = str(self.label or "Amount")
            raise forms.ValidationError([f"{label}: {m}" for m in error.messages]) from None


class ReportFilterForm(forms.Form):
    """The reports' date range (inclusive days in the clinic's time zone)."""

    date_from = forms.DateField(label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _named(self)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "To: the end of the range is before its start.")
        elif start and end and (end - start).days > 3660:
            self.add_error("date_from", "From: choose a range of at most ten years.")
        return data


def parse_rate(text: str) -> int:
    """'20' or '20.5' (per cent) -> basis points 2000 or 2050."""
    from decimal import Decimal, InvalidOperation

    cleaned = (text or "").strip().rstrip("%").strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise forms.ValidationError("Tax rate: enter a percentage such as 20 or 7.5.") from None
    if not value.is_finite() or value < 0 or value > 100:
        raise forms.ValidationError("Tax rate: enter a percentage from 0 to 100.")
    bp = value * 100
    if bp != bp.to_integral_value():
        raise forms.ValidationError("Tax rate: use at most two decimal places.")
    return int(bp)


class BillingSettingsForm(forms.Form):
    """Currency, tax and the legal details printed on invoices (the fee policy is on the clinic's settings page)."""

    currency = forms.ChoiceField(label="Currency", choices=[])
    tax_exempt = forms.BooleanField(label="Exempt from tax (no tax is added to invoices)", required=False)
    tax_rate = forms.CharField(label="Tax rate (%)", max_length=10, required=False)
    tax_label = forms.CharField(label="Tax name on invoices", max_length=100)
    legal_name = forms.CharField(label="Legal name", max_length=200, required=False)
    tax_number = forms.CharField(label="Tax registration number", max_length=100, required=False)
    company_number = forms.CharField(label="Company number", max_length=100, required=False)
    payment_terms_days = forms.IntegerField(
        label="Payment terms (days)",
        min_value=0,
        max_value=365,
        help_text="Days after the invoice date it is due (0: on the day); the aged balances count from then.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from backcare.billing.models import CURRENCY_CHOICES

        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["currency"]).choices = CURRENCY_CHOICES
        _named(self)

    def clean_tax_rate(self) -> int:
        return parse_rate(self.cleaned_data.get("tax_rate") or "0")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("tax_exempt") and "tax_rate" in data and data["tax_rate"] == 0:
            self.add_error("tax_rate", "Tax rate: enter the rate, or mark the clinic exempt from tax.")
        return data

    @staticmethod
    def initial_of(billing: Any) -> dict[str, Any]:
        rate = f"{billing.tax_rate_bp / 100:g}" if billing.tax_rate_bp else ""
        names = ("currency", "tax_exempt", "tax_label", "legal_name", "tax_number", "company_number")
        return {
            **{name: getattr(billing, name) for name in names},
            "tax_rate": rate,
            "payment_terms_days": billing.payment_terms_days,
        }


class FeePolicyForm(forms.Form):
    """The fee policy, shown on the clinic's settings page beside the cancellation window."""

    late_cancellation_fee = NamedAmountField(currency="GBP", label="Late-cancellation fee", required=False)
    no_show_fee = NamedAmountField(currency="GBP", label="No-show fee", required=False)

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["late_cancellation_fee"] = NamedAmountField(
            currency=currency,
            label=f"Late-cancellation fee ({currency})",
            required=False,
            help_text="Raised when a visit is cancelled inside the cancellation window; empty or 0: no fee.",
        )
        self.fields["no_show_fee"] = NamedAmountField(
            currency=currency, label=f"No-show fee ({currency})", required=False, help_text="Empty or 0: no fee."
        )

    @staticmethod
    def initial_of(billing: Any) -> dict[str, Any]:
        return {
            name: money.format_plain(getattr(billing, name), billing.currency).replace(",", "")
            for name in ("late_cancellation_fee", "no_show_fee")
        }


class PriceForm(forms.Form):
    service = forms.TypedChoiceField(coerce=int, label="Service")
    therapist = forms.TypedChoiceField(coerce=int, label="Therapist", required=False, empty_value=None)
    amount = NamedAmountField(currency="GBP", label="Price")

    def __init__(self, *args: Any, currency: str, services: list[Any], therapists: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["service"]).choices = [(s.pk, s.name) for s in services]
        cast(forms.ChoiceField, self.fields["therapist"]).choices = [("", "Every therapist (the service's price)")] + [
            (t.pk, f"{t.display_name} only") for t in therapists
        ]
        self.fields["amount"] = NamedAmountField(currency=currency, label=f"Price before tax ({currency})")
        _named(self)
