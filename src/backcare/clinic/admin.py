"""The Django admin: for the operator, not for clinical work.

Clinical records are read-only here: every change to them goes through the services, which check the rules and
write the audit trail, so the admin must not be a way around them. The audit trail is read-only for everyone,
superusers included (and the database refuses UPDATE and DELETE on it as well). Only the clinic's settings, staff
accounts and new consent texts can be edited; a consent text that a client has signed can no longer be changed.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import User as AuthUser
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from backcare.clinic import audit
from backcare.clinic.models import (
    AuditEvent,
    Clearance,
    Client,
    Clinic,
    Consent,
    ConsentText,
    Course,
    Intake,
    Invitation,
    Outcome,
    Referral,
    Screening,
    StaffMember,
    TreatmentSession,
)


class ReadOnlyAdmin(admin.ModelAdmin[Model]):
    """Shows records; never adds, changes or deletes them."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _client_of(obj: Any) -> Client | None:
    if isinstance(obj, Client):
        return obj
    if isinstance(obj, TreatmentSession):
        return obj.course.client
    client: Client | None = getattr(obj, "client", None)
    return client


class ClinicalAdmin(ReadOnlyAdmin):
    """Read-only, and every look at a record or a list is written to the audit trail, as in the clinic's pages."""

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        response = super().changelist_view(request, extra_context)
        if response.status_code == 200:
            page = f"admin: {self.opts.verbose_name_plural} list"
            audit.record(request.user, "view", detail={"page": page}, request=request)
        return response

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None) -> Any:
        response = super().change_view(request, object_id, form_url, extra_context)
        obj = self.get_object(request, object_id)
        if obj is not None and response.status_code == 200:
            page = f"admin: {self.opts.verbose_name}"
            audit.record(request.user, "view", client=_client_of(obj), obj=obj, detail={"page": page}, request=request)
        return response


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin[Clinic]):
    list_display = ("name", "time_zone", "phone", "email")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a clinic holds clinical records; it is never deleted from here


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin[StaffMember]):
    list_display = ("display_name", "role", "clinic", "active")
    list_filter = ("role", "active", "clinic")
    search_fields = ("display_name", "user__username")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # records name their author; a leaver is made inactive instead


@admin.register(ConsentText)
class ConsentTextAdmin(admin.ModelAdmin[ConsentText]):
    list_display = ("title", "version", "published_at")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.consents.exists():
            return False  # clients signed this wording; publish a new version instead
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Client)
class ClientAdmin(ClinicalAdmin):
    list_display = ("last_name", "first_name", "clinic", "therapist", "created_at")
    list_filter = ("clinic",)
    search_fields = ("last_name", "first_name", "email")
    exclude = ("shared_with",)


@admin.register(Invitation)
class InvitationAdmin(ClinicalAdmin):
    list_display = ("client", "created_at", "expires_at", "used_at")
    exclude = ("token_hash",)


@admin.register(Consent)
class ConsentAdmin(ClinicalAdmin):
    list_display = ("client", "text", "signed_at", "withdrawn_at")


@admin.register(Intake)
class IntakeAdmin(ClinicalAdmin):
    list_display = ("client", "status", "started_at", "submitted_at", "reviewed_at")
    list_filter = ("status",)


@admin.register(Screening)
class ScreeningAdmin(ClinicalAdmin):
    list_display = ("client", "kind", "decision", "referral", "rule_base_version", "created_at")
    list_filter = ("kind", "decision")


@admin.register(Clearance)
class ClearanceAdmin(ClinicalAdmin):
    list_display = ("client", "given_by", "given_on", "recorded_at")


@admin.register(Course)
class CourseAdmin(ClinicalAdmin):
    list_display = ("client", "therapist", "status", "sessions_planned", "started_at", "ended_at")
    list_filter = ("status",)


@admin.register(TreatmentSession)
class TreatmentSessionAdmin(ClinicalAdmin):
    list_display = ("course", "number", "therapist", "status", "held_at")


@admin.register(Outcome)
class OutcomeAdmin(ClinicalAdmin):
    list_display = ("client", "instrument", "timepoint", "score", "recorded_at")
    list_filter = ("instrument", "timepoint")


@admin.register(Referral)
class ReferralAdmin(ClinicalAdmin):
    list_display = ("client", "urgency", "created_at")
    list_filter = ("urgency",)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """The audit trail: nobody adds, changes or deletes an event here, superusers included."""

    list_display = ("at", "actor", "action", "client", "object_type", "object_id", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor", "action", "object_type", "object_id")
    date_hierarchy = "at"

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class UserAdmin(DjangoUserAdmin[AuthUser]):  # AuthUser: what get_user_model() gives here
    """Django's user admin, with every deletion written to the audit trail in the same transaction."""

    def _record_deletion(self, request: HttpRequest, user: Any) -> None:
        detail = {
            "page": "admin: user",
            "username": user.get_username(),
            "was": audit.actor_label(user),
            "superuser": user.is_superuser,
        }
        audit.record(request.user, "delete", obj=user, detail=detail, request=request)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            self._record_deletion(request, obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for user in queryset:
                self._record_deletion(request, user)
            super().delete_queryset(request, queryset)
