"""The interop app's pages: the FHIR import of clients (the FHIR API itself lives in `backcare.api`)."""

from __future__ import annotations

from backcare.interop.views import urlpatterns as import_pages

urlpatterns = [*import_pages]
