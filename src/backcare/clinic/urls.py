"""The clinic's pages: each area of the application keeps its own `urlpatterns` in its views module."""

from __future__ import annotations

from importlib import import_module

AREAS = [
    "accounts",
    "two_factor",
    "dashboard",
    "clients",
    "portal",
    "intake",
    "clearance",
    "consent_clinic",
    "referrals",
    "courses",
    "documents",
    "outbox",
    "first_run",
    "staff_admin",
    "clinic_settings",
    "audit_log",
]

urlpatterns = [p for area in AREAS for p in import_module(f"backcare.clinic.views.{area}").urlpatterns]
