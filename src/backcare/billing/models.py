"""The billing ledger. Amounts are integers in the minor unit of the clinic's currency (pence, cents): never floats.

Append-only: invoices, credit notes, their lines, payments, refunds and package redemptions are never updated or
deleted once written (`Immutable` refuses it in Python, migration 0002's triggers in the database). A correction is
a new row: a credit note against an invoice, a refund against a payment.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from backcare.clinic.models import Client, Clinic, Course, StaffMember
from backcare.scheduling.models import Appointment, Service

# ISO 4217 codes with their minor-unit exponent (the few a clinic here may use; extend as needed).
CURRENCIES: dict[str, int] = {
    "GBP": 2,
    "EUR": 2,
    "USD": 2,
    "CAD": 2,
    "AUD": 2,
    "NZD": 2,
    "CHF": 2,
    "SEK": 2,
    "NOK": 2,
    "DKK": 2,
    "PLN": 2,
    "CZK": 2,
    "JPY": 0,
    "ISK": 0,
}
CURRENCY_CHOICES = [(code, code) for code in CURRENCIES]


class BillingSettings(models.Model):
    """A clinic's billing: currency, tax, the legal details printed on invoices and its fee policy."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="billing")
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="GBP")
    tax_exempt = models.BooleanField(default=True, help_text="Massage therapy is often exempt; then no tax is added.")
    tax_rate_bp = models.PositiveIntegerField(default=0, help_text="Tax rate in basis points: 2000 is 20%.")
    tax_label = models.CharField(max_length=100, default="VAT")
    legal_name = models.CharField(max_length=200, blank=True)
    tax_number = models.CharField(max_length=100, blank=True, help_text="VAT or tax registration number.")
    company_number = models.CharField(max_length=100, blank=True)
    late_cancellation_fee = models.PositiveIntegerField(default=0, help_text="Minor units; 0: no fee.")
    no_show_fee = models.PositiveIntegerField(default=0, help_text="Minor units; 0: no fee.")
    payment_terms_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days after its date an invoice is due (0: on the day); the aged balances count from then."
    )

    class Meta:
        verbose_name_plural = "billing settings"
        constraints = [models.CheckConstraint(condition=Q(tax_rate_bp__lte=10000), name="billing_tax_rate_max")]

    def __str__(self) -> str:
        return f"Billing of {self.clinic}"

    @property
    def exponent(self) -> int:
        return CURRENCIES.get(self.currency, 2)


class Practitioner(models.Model):
    """What an insurer asks of a massage receipt: the therapist's professional registration."""

    staff = models.OneToOneField(StaffMember, on_delete=models.CASCADE, related_name="practitioner")
    registration_body = models.CharField(max_length=200, blank=True)
    registration_number = models.CharField(max_length=100, blank=True)

    def __str__(self) -> str:
        return f"{self.staff}: {self.registration_body} {self.registration_number}".strip()


class Price(models.Model):
    """The net price of a service, for every therapist (therapist empty) or for one therapist where it differs."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="prices")
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="prices")
    therapist = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.CASCADE, related_name="prices")
    amount = models.PositiveIntegerField(help_text="Minor units, before tax.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service"], condition=Q(therapist__isnull=True), name="billing_price_service_once"
            ),
            models.UniqueConstraint(fields=["service", "therapist"], name="billing_price_therapist_once"),
        ]

    def __str__(self) -> str:
        return f"{self.service}: {self.amount}"


class InvoiceCounter(models.Model):
    """The next number of a clinic's documents; its row is locked while a number is taken (`services.next_number`)."""

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, primary_key=True, related_name="invoice_counter")
    last_number = models.PositiveIntegerField(default=0)


class Immutable(models.Model):
    """A ledger row: written once, never changed or deleted (the database triggers say so too)."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError(f"An issued {self._meta.verbose_name} cannot be changed: record a correction.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        raise ValidationError(f"An issued {self._meta.verbose_name} cannot be deleted: record a correction.")


class Invoice(Immutable):
    """An invoice or a credit note (a negative document against an invoice), numbered in the clinic's sequence.

    Amounts are positive for both kinds; a credit note reduces what is owed. `source` says why it was raised, and
    with `appointment` keeps an automatic document from being raised twice (the unique constraint)."""

    class Kind(models.TextChoices):
        INVOICE = "invoice", "Invoice"
        CREDIT_NOTE = "credit_note", "Credit note"

    class Source(models.TextChoices):
        SESSION = "session", "Session"
        LATE_CANCELLATION = "late_cancellation", "Late cancellation fee"
        NO_SHOW = "no_show", "No-show fee"
        PACKAGE = "package", "Package"
        MANUAL = "manual", "Raised by staff"
        CORRECTION = "correction", "Correction"
        WAIVER = "waiver", "Fee waived"
        PACKAGE_CLOSED = "package_closed", "Unused package sessions"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="invoices")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="invoices")
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.INVOICE)
    source = models.CharField(max_length=20, choices=Source.choices)
    credits = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="credit_notes")
    appointment = models.ForeignKey(
        Appointment, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices"
    )
    therapist = models.ForeignKey(StaffMember, null=True, blank=True, on_delete=models.PROTECT, related_name="invoices")
    # What the document said when it was issued: later changes to the clinic or the therapist do not rewrite it.
    therapist_name = models.CharField(max_length=200, blank=True)
    therapist_registration = models.CharField(max_length=400, blank=True)
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    tax_rate_bp = models.PositiveIntegerField(default=0)
    net = models.PositiveIntegerField()
    tax = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField()
    reason = models.TextField(blank=True, help_text="Why a credit note was issued or a fee waived.")
    issued_at = models.DateTimeField(default=timezone.now)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-issued_at", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "number"], name="billing_invoice_number_once"),
            models.UniqueConstraint(
                fields=["appointment", "source"],
                condition=Q(appointment__isnull=False, kind="invoice"),
                name="billing_invoice_once_per_appointment",
            ),
            models.CheckConstraint(condition=Q(total=F("net") + F("tax")), name="billing_invoice_total"),
            models.CheckConstraint(
                condition=Q(kind="invoice", credits__isnull=True) | Q(kind="credit_note", credits__isnull=False),
                name="billing_credit_note_credits",
            ),
        ]
        indexes = [models.Index(fields=["client", "issued_at"]), models.Index(fields=["clinic", "issued_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.number}"

    @property
    def signed_total(self) -> int:
        return self.total if self.kind == self.Kind.INVOICE else -self.total


class InvoiceLine(Immutable):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    description = models.CharField(max_length=300)
    quantity = models.PositiveIntegerField(default=1)
    unit_amount = models.PositiveIntegerField()
    amount = models.PositiveIntegerField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount=F("unit_amount") * F("quantity")), name="billing_line_amount")
        ]


class Package(models.Model):
    """A course sold as a package: `sessions` visits of one service, paid once (its invoice), redeemed one per
    completed session until used up, expired, or closed on cancellation or discharge (docs/billing.md)."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        USED = "used", "Used up"
        CLOSED = "closed", "Closed (unused sessions credited)"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="packages")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="packages")
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="packages")
    course = models.ForeignKey(Course, null=True, blank=True, on_delete=models.SET_NULL, related_name="packages")
    sessions = models.PositiveSmallIntegerField()
    price = models.PositiveIntegerField(help_text="Minor units, net, for all sessions.")
    invoice = models.OneToOneField(Invoice, on_delete=models.PROTECT, related_name="package")
    expires_on = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    sold_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-sold_at"]
        constraints = [models.CheckConstraint(condition=Q(sessions__gt=0), name="billing_package_sessions")]

    def __str__(self) -> str:
        return f"{self.sessions} x {self.service}"


class Redemption(Immutable):
    """One completed session paid from a package (once per appointment)."""

    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="redemptions")
    appointment = models.OneToOneField(Appointment, on_delete=models.PROTECT, related_name="redemption")
    redeemed_at = models.DateTimeField(default=timezone.now)


class Payment(Immutable):
    """Money in (a payment) or out (a refund), by a method; against an invoice or on account (client credit).

    `idempotency_key` comes from the form that took it: two staff sending the same form record it once. A provider
    for online card payments would add a method and fill `reference` with its transaction id."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", "Payment"
        REFUND = "refund", "Refund"

    class Method(models.TextChoices):
        CASH = "cash", "Cash"
        CARD = "card", "Card terminal"
        TRANSFER = "transfer", "Bank transfer"

    clinic = models.ForeignKey(Clinic, on_delete=models.PROTECT, related_name="payments")
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="payments")
    invoice = models.ForeignKey(Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PAYMENT)
    method = models.CharField(max_length=10, choices=Method.choices)
    amount = models.PositiveIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    reference = models.CharField(max_length=200, blank=True, help_text="Terminal slip or bank reference.")
    note = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=64, unique=True)
    taken_at = models.DateTimeField(default=timezone.now)
    taken_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-taken_at", "-id"]
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_positive")]
        indexes = [models.Index(fields=["clinic", "taken_at"]), models.Index(fields=["client", "taken_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.amount} by {self.get_method_display()}"

    @property
    def signed_amount(self) -> int:
        return self.amount if self.kind == self.Kind.PAYMENT else -self.amount


class LedgerPurge(models.Model):
    """Written only by the financial retention rule, in the transaction that removes a client's ledger rows after
    their retention period (`datarights.erasure`): the append-only triggers let a DELETE through only for a client
    named here (migration 0003), and the row is removed in the same transaction."""

    client_id = models.BigIntegerField(primary_key=True)
