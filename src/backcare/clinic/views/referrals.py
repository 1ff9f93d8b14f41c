"""Placeholder views: replaced by the real pages for this area."""

from django.http import HttpResponse
from django.urls import path


def not_yet(request, **kwargs):  # type: ignore[no-untyped-def]
    return HttpResponse("Not built yet", status=501)


urlpatterns = [
    path("clients/<int:pk>/referrals/new/", not_yet, name="referral_create"),
    path("referrals/<int:pk>/", not_yet, name="referral_detail"),
]
