"""Billing settings, prices and therapists' registrations are edited here by superusers (audited). Invoices and
payments are not here: they are written only by the services and never changed."""

from django.contrib import admin

from backcare.billing.models import BillingSettings, Practitioner, Price
from backcare.scheduling.admin import AuditedAdmin


@admin.register(BillingSettings)
class BillingSettingsAdmin(AuditedAdmin):
    list_display = ("clinic", "currency", "tax_exempt", "tax_rate_bp", "late_cancellation_fee", "no_show_fee")


@admin.register(Price)
class PriceAdmin(AuditedAdmin):
    list_display = ("service", "therapist", "amount")


@admin.register(Practitioner)
class PractitionerAdmin(AuditedAdmin):
    list_display = ("staff", "registration_body", "registration_number")
