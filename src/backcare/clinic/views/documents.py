"""Placeholder views: replaced by the real pages for this area."""

from django.http import HttpResponse
from django.urls import path


def not_yet(request, **kwargs):  # type: ignore[no-untyped-def]
    return HttpResponse("Not built yet", status=501)


urlpatterns = [
    path("referrals/<int:pk>/letter.pdf", not_yet, name="referral_letter_pdf"),
    path("courses/<int:pk>/discharge.pdf", not_yet, name="discharge_pdf"),
    path("clients/<int:pk>/progress.svg", not_yet, name="progress_chart_svg"),
    path("courses/<int:pk>/home-programme.pdf", not_yet, name="home_programme_pdf"),
]
