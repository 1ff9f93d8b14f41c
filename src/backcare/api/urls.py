"""The API's URLs: the REST API under /api/, the FHIR endpoints under /fhir/, the API tokens page, and a catch-all
under /api/ so that a path that names no operation still answers with a problem document rather than the site's HTML
404 page."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from backcare.api.api import api
from backcare.api.fhir import urlpatterns as fhir_urls
from backcare.api.problems import Problem, problem_response
from backcare.api.views import urlpatterns as page_urls


def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return problem_response(Problem(404, "No API operation has this path; see /api/openapi.json."))


urlpatterns: list[Any] = [
    path("api/", api.urls),
    path("api/<path:rest>", api_not_found, name="api_not_found"),
    *fhir_urls,
    *page_urls,
]
