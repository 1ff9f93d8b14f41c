"""Placeholder views: replaced by the real pages for this area."""

from django.http import HttpResponse
from django.urls import path


def not_yet(request, **kwargs):  # type: ignore[no-untyped-def]
    return HttpResponse("Not built yet", status=501)


urlpatterns = [
    path("clients/<int:pk>/invite/", not_yet, name="invite_client"),
    path("register/<str:token>/", not_yet, name="register"),
    path("portal/consent/", not_yet, name="consent"),
    path("portal/intake/", not_yet, name="portal_intake"),
    path("portal/home-programme/", not_yet, name="portal_home_programme"),
    path("clients/<int:pk>/intake/review/", not_yet, name="intake_review"),
]
