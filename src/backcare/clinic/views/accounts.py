"""Signing in and out, the home page that sends each role where it works, and changing or resetting a password.

The password pages are Django's own views with the clinic's templates; `backcare.clinic.services.passwords` does the
rest (the rate limits, the email, ending the user's other sessions, the audit).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import path, reverse_lazy
from django.views.decorators.http import require_GET
from django.views.generic import TemplateView

from backcare.clinic.access import role_of
from backcare.clinic.services import first_run, passwords


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = role_of(request.user)
    if role == "client":
        return redirect("portal")
    if role in ("owner", "therapist", "front_desk"):
        return redirect("dashboard")
    # Signed in, but neither staff nor client (an operator's superuser, a deactivated member): say so, rather than
    # send them to the sign-in page, which would send them straight back here.
    staff = getattr(request.user, "staff", None)
    context = {"deactivated": staff is not None and not staff.active, "operator": request.user.is_staff}
    return render(request, "clinic/no_role.html", context, status=403)


class LoginView(auth_views.LoginView):
    """Django's sign-in, except on an empty database: there is nobody to sign in yet, so the first-run set-up."""

    template_name = "clinic/login.html"
    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if first_run.needs_first_run():
            return redirect("first_run")
        return super().dispatch(request, *args, **kwargs)


def _label_errors(form: forms.Form) -> None:
    """Name the field in each of its messages, as every form of the clinic does, and mark it for screen readers."""
    for name, field in form.fields.items():
        field.error_messages["required"] = f"{field.label}: this field is required."
        if form.is_bound and name in form.errors:
            field.widget.attrs["aria-invalid"] = "true"


class ResetRequestForm(auth_forms.PasswordResetForm):
    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email"}),
        error_messages={"invalid": "Email address: enter an address such as name@example.org."},
    )

    def save(self, *args: Any, request: Any = None, **kwargs: Any) -> None:
        email = self.cleaned_data["email"]
        passwords.request_reset(email, list(self.get_users(email)), request)


class PasswordResetView(auth_views.PasswordResetView):
    form_class = ResetRequestForm
    template_name = "clinic/password_reset.html"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.get_form()
        if form.is_valid() and not passwords.ip_allowed(request):
            hourly = passwords.limits()[1]
            return render(request, "clinic/password_reset_limited.html", {"hourly": hourly}, status=429)
        return super().post(request, *args, **kwargs)

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        _label_errors(form)
        return form


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "clinic/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        _label_errors(form)
        return form

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        passwords.password_set(form.user, self.request, how="reset")
        return response


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "clinic/password_change.html"
    success_url = reverse_lazy("password_change_done")

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        _label_errors(form)
        return form

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # keeps this session signed in (update_session_auth_hash)
        passwords.password_set(form.user, self.request, how="change")
        return response


def _page(template: str) -> Any:
    return require_GET(TemplateView.as_view(template_name=template))


urlpatterns = [
    path("", home, name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password/change/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "password/change/done/", login_required(_page("clinic/password_change_done.html")), name="password_change_done"
    ),
    path("password/reset/", PasswordResetView.as_view(), name="password_reset"),
    path("password/reset/sent/", _page("clinic/password_reset_done.html"), name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("password/reset/done/", _page("clinic/password_reset_complete.html"), name="password_reset_complete"),
]
