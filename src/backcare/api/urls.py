"""The API's URLs: the REST API under /api/, the FHIR endpoints under /fhir/, the API tokens page, and a catch-all
under /api/ so that a path that names no operation still answers with a problem document rather than the site's HTML
404 page.

The REST API (django-ninja, pydantic, the routers) and the FHIR endpoints (fhirclient) are imported on their first
request, not when the server starts (issue 14): every path under /api/ goes to `api_entry`, which resolves it in
`backcare.api.mounted`, and the FHIR paths to views that import `backcare.api.fhir` when first called. Only the rate
setting is checked at start-up, so a wrong BACKCARE_API_RATE still stops the server before it serves.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, get_urlconf, path, resolve, set_urlconf
from django.views.decorators.csrf import csrf_exempt

from backcare.api.rates import current_rate, parse_rate
from backcare.api.views import urlpatterns as page_urls

MOUNTED = "backcare.api.mounted"

parse_rate(current_rate())  # a wrong BACKCARE_API_RATE stops the server at start-up, naming the variable


def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    from backcare.api.problems import Problem, problem_response

    return problem_response(Problem(404, "No API operation has this path; see /api/openapi.json."))


@csrf_exempt  # django-ninja's operations are (tokens, not cookies); the operation found decides the rest
def api_entry(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Every path under /api/: the REST API's operation for it, or a problem document when there is none."""
    try:
        match = resolve(request.path_info, urlconf=MOUNTED)
    except Resolver404:
        return api_not_found(request, rest)
    if match.func is api_entry:  # no operation has this path: the project's catch-all, found again in MOUNTED
        return api_not_found(request, rest)
    request.resolver_match = match
    previous = get_urlconf()
    set_urlconf(MOUNTED)  # django-ninja reverses its own names (the OpenAPI document's root)
    try:
        response: HttpResponse = match.func(request, *match.args, **match.kwargs)
    finally:
        set_urlconf(previous)
    return response


def lazy_view(module: str, name: str) -> Callable[..., HttpResponse]:
    """A view that imports `module` on its first request and calls its `name`."""

    @csrf_exempt  # the FHIR views are, and say so themselves
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response: HttpResponse = getattr(importlib.import_module(module), name)(request, *args, **kwargs)
        return response

    view.__name__ = view.__qualname__ = name
    view.__module__ = module
    return view


FHIR = "backcare.api.fhir"

urlpatterns: list[Any] = [
    path("api/<path:rest>", api_entry, name="api_not_found"),
    path("fhir/Patient/<str:pk>/$everything", lazy_view(FHIR, "patient_everything"), name="fhir_patient_everything"),
    path("fhir/Bundle/$import", lazy_view(FHIR, "bundle_import"), name="fhir_bundle_import"),
    path("fhir/<path:rest>", lazy_view(FHIR, "fhir_not_found"), name="fhir_not_found"),
    *page_urls,
]
