"""The scheduling pages: each module of `backcare.scheduling.views` keeps its own `urlpatterns`."""

from __future__ import annotations

from backcare.scheduling.views import booking, calendar, day, holidays, portal, setup, waitlist

urlpatterns = [
    *calendar.urlpatterns,
    *day.urlpatterns,
    *booking.urlpatterns,
    *portal.urlpatterns,
    *setup.urlpatterns,
    *holidays.urlpatterns,
    *waitlist.urlpatterns,
]
