"""The URLconf an API request is resolved and reversed in: django-ninja's operations under /api/, then the project's
own URLconf (settings.ROOT_URLCONF), so that the API's names (the OpenAPI document's root) and every page's name
reverse alike. Imported on the first API request by `backcare.api.urls`, so a server that starts does not pay for
django-ninja, pydantic and the routers."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.urls import include, path

from backcare.api.api import api

urlpatterns: list[Any] = [path("api/", api.urls), path("", include(settings.ROOT_URLCONF))]
