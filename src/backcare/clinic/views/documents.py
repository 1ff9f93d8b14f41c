"""Documents: the progress chart (SVG) and the PDFs. Rendering lives in `backcare.clinic.documents`; these views
check who may ask, record the export in the audit trail and serve the file.

Clinical access only (owner, the client's therapist, a therapist it is shared with): front desk gets 403, any other
therapist 404. A client may download their own home programme.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Model
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path
from django.views.decorators.http import require_GET

from backcare.clinic import access, audit, charts, documents
from backcare.clinic.models import Client, Course, Referral
from backcare.common.ids import ascii_id

# The SVG is made by matplotlib, which styles with attributes and a <style> element; it holds no script and no
# user-supplied markup (text is escaped), so its own policy allows inline styles and nothing else.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"


def _attachment(pdf: documents.Pdf) -> HttpResponse:
    response = HttpResponse(pdf.content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{pdf.filename}"'
    response["Cache-Control"] = "no-store, private"
    return response


def _export(request: HttpRequest, client: Client, obj: Model, document: str) -> None:
    audit.record(request.user, "export", client=client, obj=obj, detail={"document": document}, request=request)


def _clinical_course(request: HttpRequest, pk: int) -> Course:
    course = get_object_or_404(
        Course.objects.select_related("client", "client__clinic", "therapist", "screening"), pk=pk
    )
    access.get_client(request.user, course.client_id, clinical=True)
    return course


@login_required
@require_GET
def progress_chart_svg(request: HttpRequest, pk: int) -> HttpResponse:
    client = access.get_client(request.user, pk, clinical=True)
    course = None
    if "course" in request.GET:
        course_id = ascii_id(request.GET["course"])
        course = client.courses.filter(pk=course_id).first() if course_id is not None else None
        if course is None:
            raise Http404("No such course for this client")
    svg = charts.progress_chart_svg(client, course)
    _export(request, client, course or client, "progress_chart")
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "no-store, private"
    response["Content-Security-Policy"] = SVG_CSP
    return response


@login_required
@require_GET
def referral_letter_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    referral = get_object_or_404(
        Referral.objects.select_related("client", "client__clinic", "created_by", "screening", "course"), pk=pk
    )
    client = access.get_client(request.user, referral.client_id, clinical=True)
    pdf = documents.referral_letter_pdf(referral)
    _export(request, client, referral, "referral_letter")
    return _attachment(pdf)


@login_required
@require_GET
def discharge_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    course = _clinical_course(request, pk)
    pdf = documents.discharge_pdf(course)
    _export(request, course.client, course, "discharge_summary")
    return _attachment(pdf)


@login_required
@require_GET
def home_programme_pdf(request: HttpRequest, pk: int) -> HttpResponse:
    own = access.client_of(request.user)
    if own is not None and access.staff_of(request.user) is None:
        # A client downloads their own programme; anyone else's is "not found".
        course = get_object_or_404(Course.objects.select_related("client", "client__clinic", "therapist"), pk=pk)
        if course.client_id != own.pk:
            raise Http404("No such course")
    else:
        course = _clinical_course(request, pk)
    pdf = documents.home_programme_pdf(course)
    _export(request, course.client, course, "home_programme")
    return _attachment(pdf)


urlpatterns = [
    path("referrals/<int:pk>/letter.pdf", referral_letter_pdf, name="referral_letter_pdf"),
    path("courses/<int:pk>/discharge.pdf", discharge_pdf, name="discharge_pdf"),
    path("clients/<int:pk>/progress.svg", progress_chart_svg, name="progress_chart_svg"),
    path("courses/<int:pk>/home-programme.pdf", home_programme_pdf, name="home_programme_pdf"),
]
