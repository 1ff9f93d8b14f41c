"""The billing forms. Amounts are typed in the currency's major unit ("12.50") and kept as integer minor units."""

from __future__ import annotations

import datetime as dt
from typing import Any

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
        # self.fields is typed with the base Field; this one is the ChoiceField declared above
        self.fields["invoice"].choices = [("", "On account (client credit)")] + [  # type: ignore[attr-defined]
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
        # self.fields is typed with the base Field; this one is the ChoiceField declared above
        self.fields["service"].choices = [(s.pk, s.name) for s in services]  # type: ignore[attr-defined]
        self.fields["price"] = AmountField(currency=currency, label=f"Price for all sessions ({currency})")
        if not self.is_bound:
            self.initial.setdefault("expires_on", timezone.localdate() + dt.timedelta(days=180))


class ClosePackageForm(forms.Form):
    package = forms.TypedChoiceField(coerce=int, label="Package")
    reason = forms.CharField(max_length=500, label="Why it is closed (course cancelled, discharged)")

    def __init__(self, *args: Any, packages: list[Package], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # self.fields is typed with the base Field; this one is the ChoiceField declared above
        self.fields["package"].choices = [(p.pk, f"{p} (until {p.expires_on:%d %b %Y})") for p in packages]  # type: ignore[attr-defined]


class CreditNoteForm(KeyedForm):
    amount = AmountField(currency="GBP", label="Amount to credit")
    reason = forms.CharField(max_length=500, label="Reason", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["amount"] = AmountField(currency=currency, label=f"Amount to credit ({currency})")


class WaiveForm(KeyedForm):
    reason = forms.CharField(max_length=500, label="Why the fee is waived", widget=forms.Textarea(attrs={"rows": 2}))
