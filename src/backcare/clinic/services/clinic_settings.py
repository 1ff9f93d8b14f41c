"""The clinic's own settings, edited by the owner in the application (the admin is for operators): details,
policies (the cancellation window the scheduler uses), the STarT Back switch, and new versions of the consent text.
Every change is audited with what it was and what it became."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from backcare.clinic import audit
from backcare.clinic.models import Clinic, ConsentText, Role, StaffMember
from backcare.common.rowlock import locked

# The fields of Clinic the settings page edits.
EDITABLE = (
    "name",
    "country",
    "time_zone",
    "address",
    "phone",
    "email",
    "emergency_number",
    "urgent_care_number",
    "cancellation_hours",
    "start_back_enabled",
)


def _owner(by: Any, clinic: Clinic) -> StaffMember:
    staff: StaffMember | None = getattr(by, "staff", None)
    if staff is None or not staff.active or staff.role != Role.OWNER or staff.clinic_id != clinic.pk:
        raise PermissionDenied("Only the clinic's owner changes its settings.")
    return staff


@transaction.atomic
def update_clinic(clinic: Clinic, values: dict[str, Any], *, by: Any, request: Any = None) -> dict[str, list[Any]]:
    """Change the clinic's settings; returns (and audits) what changed as {field: [before, after]}."""
    _owner(by, clinic)
    unknown = set(values) - set(EDITABLE)
    if unknown:
        raise ValidationError(f"Not a setting of the clinic: {', '.join(sorted(unknown))}.")
    clinic = locked(Clinic.objects.all(), no_key=True).get(pk=clinic.pk)
    changed = {name: [getattr(clinic, name), value] for name, value in values.items() if getattr(clinic, name) != value}
    if not changed:
        return {}
    for name, (_, value) in changed.items():
        setattr(clinic, name, value)
    clinic.full_clean()
    clinic.save(update_fields=list(changed))
    audit.record(by, "clinic_settings_update", obj=clinic, detail={"changed": changed}, request=request)
    return changed


@transaction.atomic
def publish_consent_text(
    clinic: Clinic, *, by: Any, version: str, title: str, body: str, request: Any = None
) -> ConsentText:
    """Publish a new version of the consent text. Earlier versions stay as they were signed; clients are asked to
    sign the new one (services.consent.current_consent_text is the newest)."""
    _owner(by, clinic)
    version = version.strip()
    if ConsentText.objects.filter(version__iexact=version).exists():
        raise ValidationError({"version": f"Version: {version!r} exists already; give the new text a new label."})
    text = ConsentText.objects.create(version=version, title=title.strip(), body=body)
    audit.record(
        by, "consent_text_publish", obj=text, detail={"version": version, "title": text.title}, request=request
    )
    return text
