"""The data-rights pages (their views keep their own `urlpatterns`)."""

from __future__ import annotations

from backcare.datarights.views import urlpatterns

__all__ = ["urlpatterns"]
