"""Placeholder views: replaced by the real pages for this area."""

from django.http import HttpResponse
from django.urls import path


def not_yet(request, **kwargs):  # type: ignore[no-untyped-def]
    return HttpResponse("Not built yet", status=501)


urlpatterns = [
    path("clients/<int:pk>/courses/start/", not_yet, name="course_start"),
    path("courses/<int:pk>/", not_yet, name="course_detail"),
    path("courses/<int:pk>/edit/", not_yet, name="course_edit"),
    path("courses/<int:pk>/end/", not_yet, name="course_end"),
    path("courses/<int:pk>/roland-morris/", not_yet, name="rmdq_record"),
    path("courses/<int:pk>/health-update/", not_yet, name="health_update"),
    path("courses/<int:pk>/sessions/new/<int:update>/", not_yet, name="session_record"),
    path("sessions/<int:pk>/", not_yet, name="session_detail"),
]
