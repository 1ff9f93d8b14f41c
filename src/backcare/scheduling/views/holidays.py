"""The owner's public holidays: the year's holidays of the clinic's country, each closed for booking unless the
owner opens it ("Open this day"; "Close again" undoes it). The service (`services.holidays`) checks and audits."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from backcare.clinic import access
from backcare.clinic.models import Role
from backcare.common.forms import add_service_errors
from backcare.scheduling.calendar_forms import HolidayForm, HolidayYearForm
from backcare.scheduling.services import holidays
from backcare.scheduling.services.availability import clinic_zone
from backcare.scheduling.views import render_local


@login_required
@require_http_methods(["GET", "POST"])
def setup_holidays(request: HttpRequest) -> HttpResponse:
    staff = access.require_staff(request.user, Role.OWNER)
    clinic = staff.clinic
    today = timezone.localdate(timezone=clinic_zone(clinic))
    year = HolidayYearForm(request.GET).year_or(today.year)
    form = HolidayForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        day, action = form.cleaned_data["day"], form.cleaned_data["action"]
        try:
            if action == "open":
                holidays.open_holiday(clinic, day, by=request.user, request=request)
            else:
                holidays.close_holiday(clinic, day, by=request.user, request=request)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            state = "open for booking" if action == "open" else "closed for booking again"
            messages.success(request, f"{day:%A %d %B %Y} is {state}.")
            return redirect(reverse("setup_holidays") + f"?year={day.year}")
    context = {
        "year": year,
        "today": today,
        "rows": holidays.year_holidays(clinic, year),
        "form": form,
        "country": clinic.country.upper(),
        "prev_year": year - 1,
        "next_year": year + 1,
    }
    return render_local(request, "scheduling/setup_holidays.html", context, clinic, status=400 if form.errors else 200)


urlpatterns = [path("setup/holidays/", setup_holidays, name="setup_holidays")]
