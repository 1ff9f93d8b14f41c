"""Read-mostly admin. Appointments and the waitlist are changed only through the services (locking, audit); rooms,
services, hours and absences may be edited here by superusers, and every such change is audited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from backcare.clinic import audit
from backcare.scheduling.models import Absence, Appointment, Room, Service, WaitlistEntry, WorkingHours


class AuditedAdmin(admin.ModelAdmin[models.Model]):
    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        audit.record(request.user, "admin_change" if change else "admin_add", obj=obj, request=request)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        audit.record(request.user, "admin_delete", obj=obj, detail={"repr": str(obj)}, request=request)
        super().delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin[models.Model]):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Room)
class RoomAdmin(AuditedAdmin):
    list_display = ("name", "clinic", "active")


@admin.register(Service)
class ServiceAdmin(AuditedAdmin):
    list_display = ("name", "clinic", "duration_minutes", "turnover_before_minutes", "turnover_after_minutes")


@admin.register(WorkingHours)
class WorkingHoursAdmin(AuditedAdmin):
    list_display = ("therapist", "weekday", "starts", "ends")


@admin.register(Absence)
class AbsenceAdmin(AuditedAdmin):
    list_display = ("therapist", "starts_at", "ends_at", "kind")


@admin.register(Appointment)
class AppointmentAdmin(ReadOnlyAdmin):
    list_display = ("starts_at", "therapist", "room", "client", "status", "override")
    list_filter = ("status", "override")


@admin.register(WaitlistEntry)
class WaitlistEntryAdmin(ReadOnlyAdmin):
    list_display = ("client", "service", "therapist", "earliest", "latest", "status")
