"""The owner's staff pages: the list, inviting by email with a role, a member's name, role and qualified
techniques (checkboxes from the knowledge base's techniques), deactivating a leaver; and the invitee's page where
they choose their password. Hours are the scheduling set-up's page (linked). Thin: `services.staff` writes."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from backcare.clinic.access import require_staff
from backcare.clinic.forms.operations import StaffEditForm, StaffInviteForm
from backcare.clinic.models import Role, StaffMember
from backcare.clinic.services import staff as service
from backcare.clinic.views.accounts import _label_errors
from backcare.clinical.vocabulary import TECHNIQUES
from backcare.common.forms import add_service_errors


def _member(owner: StaffMember, pk: int) -> StaffMember:
    return get_object_or_404(StaffMember.objects.select_related("user"), pk=pk, clinic=owner.clinic)


@login_required
@require_GET
def staff_list(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    members = list(
        StaffMember.objects.filter(clinic=owner.clinic).select_related("user").order_by("-active", "display_name", "pk")
    )
    for m in members:
        # for the template only: the model does not declare these
        m.technique_names = [TECHNIQUES.get(t, t) for t in m.qualified_techniques or []]  # type: ignore[attr-defined]
        m.invited = not m.user.has_usable_password()  # type: ignore[attr-defined]
    return render(request, "clinic/staff_list.html", {"members": members, "owner": owner})


@login_required
@require_http_methods(["GET", "POST"])
def staff_invite(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    form = StaffInviteForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            member = service.invite_staff(
                by=request.user,
                display_name=data["display_name"],
                email=data["email"],
                role=data["role"],
                techniques=list(data["qualified_techniques"]),
                request=request,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{member.display_name} is invited: the email with their link is on its way.")
            return redirect("staff_list")
    return render(request, "clinic/staff_form.html", {"form": form, "inviting": True, "owner": owner})


@login_required
@require_http_methods(["GET", "POST"])
def staff_edit(request: HttpRequest, pk: int) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    member = _member(owner, pk)
    form = StaffEditForm(request.POST if request.method == "POST" else None, initial=StaffEditForm.initial_of(member))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            service.update_staff(
                member,
                by=request.user,
                display_name=data["display_name"],
                role=data["role"],
                techniques=list(data["qualified_techniques"]),
                request=request,
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, f"{data['display_name']}: saved.")
            return redirect("staff_list")
    return render(request, "clinic/staff_form.html", {"form": form, "member": member, "owner": owner})


@login_required
@require_POST
def staff_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    member = _member(owner, pk)
    try:
        service.deactivate_staff(member, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"{member.display_name} can no longer sign in; their records stay.")
    return redirect("staff_list")


@login_required
@require_POST
def staff_resend(request: HttpRequest, pk: int) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    member = _member(owner, pk)
    try:
        service.resend_invitation(member, by=request.user, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"A new invitation is on its way to {member.user.email}.")
    return redirect("staff_list")


class StaffJoinView(auth_views.PasswordResetConfirmView):
    """The invitation's link: Django's password-reset page with the invitation's own tokens. The link moves out of
    the address into the session at once; the password chosen, the member is signed in."""

    template_name = "clinic/staff_join.html"
    token_generator = service.invitation_tokens
    post_reset_login = True
    post_reset_login_backend = "django.contrib.auth.backends.ModelBackend"
    success_url = reverse_lazy("home")

    def get_user(self, uidb64: str) -> Any:
        user = super().get_user(uidb64)
        return user if user is not None and getattr(user, "staff", None) is not None and user.staff.active else None

    def get_form(self, form_class: Any = None) -> Any:
        form = super().get_form(form_class)
        _label_errors(form)
        return form

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        service.joined(form.user, self.request)
        return response


urlpatterns = [
    path("staff/", staff_list, name="staff_list"),
    path("staff/invite/", staff_invite, name="staff_invite"),
    path("staff/<int:pk>/", staff_edit, name="staff_edit"),
    path("staff/<int:pk>/deactivate/", staff_deactivate, name="staff_deactivate"),
    path("staff/<int:pk>/resend/", staff_resend, name="staff_resend"),
    path("staff/join/<uidb64>/<token>/", StaffJoinView.as_view(), name="staff_join"),
]
