"""What billing adds to the clinic's pages through `backcare.clinic.extensions` (registered in BillingConfig.ready):
the fee policy in the clinic settings' "Policies" fieldset, beside the cancellation window, and the course's
package on the course page."""

from __future__ import annotations

from typing import Any

from django import forms

from backcare.billing import services
from backcare.billing.forms import FeePolicyForm
from backcare.billing.models import Package
from backcare.clinic import access, extensions
from backcare.clinic.models import Clinic, Course, Role


def fee_form(clinic: Clinic, data: Any) -> forms.Form:
    billing = services.settings_for(clinic)
    return FeePolicyForm(data, prefix="fees", currency=billing.currency, initial=FeePolicyForm.initial_of(billing))


def save_fees(clinic: Clinic, form: forms.Form, by: Any, request: Any) -> dict[str, list[Any]]:
    values = {name: form.cleaned_data.get(name) or 0 for name in services.FEE_FIELDS}
    return services.update_fee_policy(clinic, values, by=by, request=request)


def course_package(course: Course, user: Any) -> tuple[str, dict[str, Any]] | None:
    """The course's packages (sessions used of how many, expiry, state); the till roles get a link to the billing."""
    packages = list(Package.objects.filter(course=course).select_related("service", "invoice"))
    if not packages:
        return None
    staff = access.staff_of(user)
    context = {
        "packages": [(p, p.redemptions.count()) for p in packages],
        "client_id": course.client_id,
        "till": staff is not None and staff.role in (Role.OWNER, Role.FRONT_DESK),
        "currency": services.settings_for(course.client.clinic).currency,
    }
    return "billing/course_package.html", context


def register() -> None:
    extensions.register_policy_section(extensions.PolicySection("billing.fees", fee_form, save_fees))
    extensions.register_course_panel(course_package)
