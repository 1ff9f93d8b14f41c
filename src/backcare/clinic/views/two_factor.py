"""Two-factor sign-in pages: the code step after the password, setting up an authenticator app, recovery codes, and
the owner's page (the clinic's rule and resetting a staff member's second factor). Thin: the work and the audit are
in `backcare.clinic.services.two_factor`; `SecondFactorMiddleware` sends users here.
"""

from __future__ import annotations

from typing import Any

import django_otp
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backcare.clinic.access import require_staff
from backcare.clinic.models import Role, StaffMember
from backcare.clinic.services import two_factor

TRIES_KEY = "backcare_second_factor_tries"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        strip=True,
        error_messages={"required": "Code: type the 6 digits your app shows now, or one of your recovery codes."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "autofocus": True, "spellcheck": "false"}),
    )


class SetupForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=40,
        strip=True,
        error_messages={"required": "Code from the app: type the 6 digits the app shows for Backcare."},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


class ClinicRuleForm(forms.Form):
    require_two_factor = forms.BooleanField(
        label="Every staff member signs in with an authenticator app (owners always do)",
        required=False,
    )


def _add_errors(form: forms.Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, errs in error.message_dict.items():
            form.add_error(name if name in form.fields else None, errs)
    else:
        form.add_error(None, error.messages)
    for name in form.errors:
        if name in form.fields:
            form.fields[name].widget.attrs["aria-invalid"] = "true"


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME) or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return str(settings.LOGIN_REDIRECT_URL)


# --- The code step after the password ------------------------------------------------------------------------------


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user: Any = request.user
    if user.is_verified() or not two_factor.has_app(user):
        return redirect(_next_url(request))
    form = CodeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            verified = two_factor.verify_code(user, form.cleaned_data["code"], request=request)
        except ValidationError as error:
            tries = int(request.session.get(TRIES_KEY, 0)) + 1
            limit = settings.BACKCARE_SECOND_FACTOR_TRIES
            if tries >= limit:
                two_factor.gave_up(user, tries, request=request)
                logout(request)
                messages.error(request, f"{limit} wrong codes: sign in again with your password.")
                return redirect("login")
            request.session[TRIES_KEY] = tries
            _add_errors(form, error)
        else:
            request.session.pop(TRIES_KEY, None)
            request.session.cycle_key()  # a new session id for the fully signed-in session
            django_otp.login(request, verified.device)
            if verified.recovery:
                messages.warning(
                    request,
                    f"You signed in with a recovery code; it will not work again ({verified.codes_left} left). "
                    "If your phone is lost, set up a new app and make new recovery codes.",
                )
            return redirect(_next_url(request))
    return render(request, "clinic/two_factor_verify.html", {"form": form, "next": _next_url(request)})


# --- The user's own second factor ----------------------------------------------------------------------------------


@login_required
@never_cache
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user)
    return render(
        request,
        "clinic/two_factor.html",
        {
            "app": two_factor.app_device(request.user),
            "codes_left": two_factor.recovery_codes_left(request.user),
            "required": two_factor.required_for(staff),
        },
    )


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def setup(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user)
    user: Any = request.user
    if not user.is_verified() and two_factor.has_app(user):  # a new app only after the code step
        return redirect("two_factor_verify")
    form = SetupForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            device, codes = two_factor.confirm_enrolment(user, form.cleaned_data["code"], request=request)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            request.session.cycle_key()
            django_otp.login(request, device)
            return _show_codes(request, codes, first=True)
    return render(
        request,
        "clinic/two_factor_setup.html",
        {
            "form": form,
            "enrolment": two_factor.pending_device(user),
            "required": two_factor.required_for(staff),
            "replacing": two_factor.has_app(user),
        },
    )


@login_required
@never_cache
@require_POST
def recovery_codes(request: HttpRequest) -> HttpResponse:
    require_staff(request.user)
    try:
        codes = two_factor.new_recovery_codes(request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("two_factor")
    return _show_codes(request, codes, first=False)


def _show_codes(request: HttpRequest, codes: list[str], *, first: bool) -> HttpResponse:
    """The recovery codes in clear, in this one response only (never stored, never cached)."""
    return render(request, "clinic/two_factor_codes.html", {"codes": codes, "first": first})


# --- The owner's page ----------------------------------------------------------------------------------------------


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def staff_security(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    clinic = owner.clinic
    form = ClinicRuleForm(
        request.POST if request.method == "POST" else None, initial={"require_two_factor": clinic.require_two_factor}
    )
    if request.method == "POST" and form.is_valid():
        two_factor.set_required_for_staff(clinic, form.cleaned_data["require_two_factor"], by=owner, request=request)
        messages.success(
            request,
            "Saved: every staff member now signs in with an authenticator app."
            if clinic.require_two_factor
            else "Saved: owners, and staff who set up an app, sign in with a code.",
        )
        return redirect("staff_security")
    members = list(StaffMember.objects.filter(clinic=clinic).select_related("user", "clinic"))
    rows = [
        {
            "member": m,
            "app": two_factor.has_app(m.user),
            "codes_left": two_factor.recovery_codes_left(m.user),
            "required": two_factor.required_for(m),
        }
        for m in members
    ]
    return render(request, "clinic/staff_security.html", {"form": form, "rows": rows, "me": owner})


@login_required
@never_cache
@require_POST
def staff_reset(request: HttpRequest, pk: int) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    member = get_object_or_404(StaffMember, pk=pk, clinic=owner.clinic)
    try:
        removed = two_factor.reset_for(member, by=owner, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if removed:
            messages.success(
                request, f"{member.display_name}'s app and recovery codes are removed: they set up a new app next time."
            )
        else:
            messages.info(request, f"{member.display_name} had no app or recovery codes to remove.")
    return redirect("staff_security")


urlpatterns = [
    path("login/code/", verify, name="two_factor_verify"),
    path("account/two-factor/", overview, name="two_factor"),
    path("account/two-factor/setup/", setup, name="two_factor_setup"),
    path("account/two-factor/recovery-codes/", recovery_codes, name="two_factor_recovery_codes"),
    path("staff/two-factor/", staff_security, name="staff_security"),
    path("staff/<int:pk>/two-factor/reset/", staff_reset, name="staff_two_factor_reset"),
]
