"""The owner's clinic-wide audit trail: filters by person, client, action and date, keyset pages, and the same
events as a streamed CSV. Thin: `services.auditlog` reads; the export is itself audited."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from backcare.clinic import audit
from backcare.clinic.access import require_staff
from backcare.clinic.forms.operations import AuditFilterForm
from backcare.clinic.models import Clinic, Role
from backcare.clinic.services import auditlog


def _filters(request: HttpRequest, clinic: Clinic) -> tuple[AuditFilterForm, auditlog.Filters | None]:
    form = AuditFilterForm(request.GET or None, clinic=clinic)
    if not request.GET:
        return form, auditlog.Filters()
    if not form.is_valid():
        return form, None
    data = form.cleaned_data
    return form, auditlog.Filters(
        person=data["person"],
        client=data["client"],
        action=data["action"].strip(),
        date_from=data["date_from"],
        date_to=data["date_to"],
    )


@login_required
@require_GET
def audit_log(request: HttpRequest) -> HttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    form, filters = _filters(request, owner.clinic)
    page = auditlog.page(owner.clinic, filters, request.GET.get("after", "")) if filters is not None else None
    query = request.GET.copy()
    query.pop("after", None)
    context = {
        "form": form,
        "page": page,
        "query": query.urlencode(),
        "actions": sorted(auditlog.ACTION_LABELS.items()),
    }
    return render(request, "clinic/audit_log.html", context)


@login_required
@require_GET
def audit_export(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    owner = require_staff(request.user, Role.OWNER)
    form, filters = _filters(request, owner.clinic)
    if filters is None:
        return render(request, "clinic/audit_log.html", {"form": form, "page": None, "query": ""}, status=400)
    audit.record(request.user, "audit_export", detail={"filters": dict(request.GET.items())}, request=request)
    response = StreamingHttpResponse(auditlog.csv_rows(owner.clinic, filters), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.csv"'
    return response


urlpatterns = [
    path("audit/", audit_log, name="audit_log"),
    path("audit/export.csv", audit_export, name="audit_export"),
]
