"""Refuse a request whose body is larger than any form or upload needs, before anything reads it.

`backcare serve` gives waitress the same limit (max_request_body_size), so there the body is never spooled; this
middleware keeps the limit under any other WSGI server, for a declared Content-Length."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        limit = int(settings.MAX_REQUEST_BYTES)
        if not declared.isascii() or not declared.isdigit() or int(declared) > limit:
            return too_large(request, limit)
        return self.get_response(request)


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = f"The request is larger than {limit // (1024 * 1024)} MB, the most this clinic accepts."
    if request.path.startswith("/api/"):
        from backcare.api.problems import Problem, problem_response

        return problem_response(Problem(413, message))
    if request.path.startswith("/fhir/"):
        from backcare.api.fhir import outcome

        return outcome(413, message)
    response = HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")
    response["Connection"] = "close"
    return response
