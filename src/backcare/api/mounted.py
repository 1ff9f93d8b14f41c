"""The URLconf the REST API is resolved in: django-ninja's operations under /api/. Imported on the first API
request by `backcare.api.urls`, so a server that starts does not pay for django-ninja, pydantic and the routers."""

from __future__ import annotations

from typing import Any

from django.urls import path

from backcare.api.api import api

urlpatterns: list[Any] = [path("api/", api.urls)]
