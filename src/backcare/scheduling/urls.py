"""The scheduling pages: each module of `backcare.scheduling.views` keeps its own `urlpatterns`."""

from __future__ import annotations

from backcare.scheduling.views import booking, calendar, portal, setup, waitlist

urlpatterns = [
    *calendar.urlpatterns,
    *booking.urlpatterns,
    *portal.urlpatterns,
    *setup.urlpatterns,
    *waitlist.urlpatterns,
]
