"""Client list and client record pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from backcare.clinic.access import clients_for, require_staff


@login_required
def client_list(request: HttpRequest) -> HttpResponse:
    require_staff(request.user)
    return render(request, "clinic/client_list.html", {"clients": clients_for(request.user)})


def not_yet(request: HttpRequest, **kwargs: object) -> HttpResponse:
    return HttpResponse("Not built yet", status=501)


urlpatterns = [
    path("clients/", client_list, name="client_list"),
    path("clients/new/", not_yet, name="client_create"),
    path("clients/<int:pk>/", not_yet, name="client_detail"),
    path("clients/<int:pk>/edit/", not_yet, name="client_edit"),
    path("clients/<int:pk>/share/", not_yet, name="client_share"),
    path("clients/<int:pk>/audit/", not_yet, name="client_audit"),
]
