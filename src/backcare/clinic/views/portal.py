"""The client's portal: their own record in plain language, consent, intake and home programme."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from backcare.clinic.access import client_of


@login_required
def portal(request: HttpRequest) -> HttpResponse:
    client = client_of(request.user)
    if client is None:
        raise PermissionDenied("The portal is for clients.")
    return render(request, "clinic/portal.html", {"client": client})


urlpatterns = [path("portal/", portal, name="portal")]
