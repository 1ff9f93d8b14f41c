"""Dashboards: the therapist's day and alerts, the front desk's list, the owner's counts."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from backcare.clinic.access import require_staff


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    require_staff(request.user)
    return render(request, "clinic/dashboard.html", {})


urlpatterns = [path("dashboard/", dashboard, name="dashboard")]
