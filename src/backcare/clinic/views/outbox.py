"""The outbox page: the owner sees the emails that wait, are being sent or failed, and retries one. Thin:
`backcare.clinic.services.outbox` reads (never a body) and retries (audited)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.http import require_GET, require_POST

from backcare.clinic.access import require_staff
from backcare.clinic.models import Role
from backcare.clinic.services import outbox as outbox_service


@login_required
@require_GET
def outbox(request: HttpRequest) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER)
    return render(request, "clinic/outbox.html", {"staff": staff, "view": outbox_service.open_messages(staff)})


@login_required
@require_POST
def outbox_retry(request: HttpRequest, pk: int) -> HttpResponse:
    staff = require_staff(request.user, Role.OWNER)
    try:
        outbox_service.retry_message(pk, staff=staff, request=request)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "The email will be tried again now.")
    return redirect("outbox")


urlpatterns = [
    path("outbox/", outbox, name="outbox"),
    path("outbox/<int:pk>/retry/", outbox_retry, name="outbox_retry"),
]
