"""Errors as RFC 9457 problem details (`application/problem+json`): type, title, status, detail, and for input
problems an `errors` list naming each offending field (dotted path and JSON pointer) with its message.

Statuses, one meaning each:
- 400 the request does not match the documented schema (malformed JSON, wrong types, unknown fields, a missing
  required header);
- 401 no token, or a token that is unknown, revoked or expired;  403 the role or the token's scope does not allow it;
- 404 nothing of that id within the caller's reach (another therapist's client looks exactly like a missing one);
- 409 the request conflicts with the record's state (a booking conflict, a hard stop of the screening);
- 413 the body is too large;  422 well-formed, but a clinic rule refuses it (the message names the field);
- 429 too many requests for this token (with Retry-After).
"""

from __future__ import annotations

import json
import math
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import Field, Schema
from ninja.errors import AuthenticationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError

from backcare.scheduling.locking import BookingConflict

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://backcare.invalid/problems/"

TITLES = {
    400: "The request does not match the API's schema",
    401: "Authentication required",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict with the record's current state",
    413: "The request body is too large",
    422: "A clinic rule refuses this request",
    429: "Too many requests",
    500: "Server error",
}
TYPES = {
    400: "invalid-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    422: "rule-violation",
    429: "rate-limited",
    500: "server-error",
}


class Problem(Exception):
    """Raise anywhere in the API to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        title: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or TYPES.get(status, "error")
        self.title = title or TITLES.get(status, "Error")
        self.errors = errors
        self.headers = headers or {}
        self.extensions = extensions

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            data["errors"] = self.errors
        data.update(self.extensions)
        return data


def problem_response(problem: Problem) -> HttpResponse:
    response = HttpResponse(json.dumps(problem.body()), status=problem.status, content_type=MEDIA_TYPE)
    for name, value in problem.headers.items():
        response[name] = value
    return response


# --- fields named in errors ---------------------------------------------------------------------------------------


def field_error(location: str, path: list[str | int], message: str) -> dict[str, Any]:
    """One entry of `errors`: where (body, query, path), the field as a dotted path and a JSON pointer, the message."""
    dotted = ""
    for part in path:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    return {"in": location, "field": dotted, "pointer": pointer, "message": message}


def _pydantic_message(error: dict[str, Any], path: list[str | int]) -> str:
    kind, msg = error.get("type", ""), str(error.get("msg", "invalid"))
    name = str(path[-1]) if path else "the body"
    if kind == "extra_forbidden":
        what = "query parameter" if error.get("loc", ["body"])[0] == "query" else "field"
        return f"unknown {what} {name!r}: it is not part of this operation's schema"
    if kind == "missing":
        return f"missing required field {name!r}"
    return msg[0].lower() + msg[1:] if msg else "invalid"


def from_ninja_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ninja's errors (loc = [source, parameter name, field...]) as problem `errors`."""
    out = []
    for error in errors:
        loc = list(error.get("loc", []))
        source = str(loc[0]) if loc else "body"
        rest = loc[1:]
        if source == "body" and rest:
            rest = rest[1:]  # the view's parameter name (payload), not part of the document
        path: list[str | int] = [p if isinstance(p, int) else str(p) for p in rest]
        out.append(field_error(source, path, _pydantic_message(error, path)))
    return out


def from_service_error(error: DjangoValidationError, *, rename: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A service's ValidationError (field -> messages, or plain messages) as problem `errors`."""
    rename = rename or {}
    if hasattr(error, "error_dict"):
        out: list[dict[str, Any]] = []
        for name, messages in error.message_dict.items():
            path: list[str | int] = [] if name in ("__all__", None) else [rename.get(name, name)]
            out.extend(field_error("body", path, m) for m in messages)
        return out
    return [field_error("body", [], m) for m in error.messages]


def rule_violation(error: DjangoValidationError, *, rename: dict[str, str] | None = None) -> Problem:
    errors = from_service_error(error, rename=rename)
    detail = "; ".join((f"{e['field']}: " if e["field"] else "") + e["message"] for e in errors)
    return Problem(422, detail or "A clinic rule refuses this request.", errors=errors)


# --- handlers -------------------------------------------------------------------------------------------------------


def install(api: Any) -> None:
    """Replace ninja's default handlers: every error the API can give is a problem document."""

    def on_problem(request: HttpRequest, exc: Problem) -> HttpResponse:
        return problem_response(exc)

    def on_validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        errors = from_ninja_errors(exc.errors)
        detail = "; ".join(f"{e['in']} {e['field'] or '(whole)'}: {e['message']}" for e in errors)
        return problem_response(Problem(400, detail or "The request does not match the schema.", errors=errors))

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if isinstance(exc, Throttled):
            wait = max(1, math.ceil(exc.wait)) if exc.wait else 1
            return problem_response(
                Problem(
                    429,
                    f"This token made too many requests. Try again in {wait} seconds.",
                    headers={"Retry-After": str(wait)},
                    retry_after=wait,
                )
            )
        if isinstance(exc, AuthenticationError):
            return problem_response(
                Problem(
                    401,
                    "Send a personal API token: Authorization: Bearer <token>.",
                    headers={"WWW-Authenticate": 'Bearer realm="backcare"'},
                )
            )
        if exc.status_code == 400:  # ninja's "Cannot parse request body"
            return problem_response(
                Problem(
                    400,
                    "The body is not valid JSON.",
                    kind="malformed-json",
                    errors=[field_error("body", [], str(exc))],
                )
            )
        return problem_response(Problem(exc.status_code, str(exc)))

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem_response(Problem(404, str(exc) or "Nothing of that id is within your reach."))

    def on_denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return problem_response(Problem(403, str(exc) or "Your role does not allow this."))

    def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
        from django.conf import settings

        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return problem_response(Problem(413, f"The body is larger than {limit:,} bytes.", max_bytes=limit))

    def on_conflict(request: HttpRequest, exc: BookingConflict) -> HttpResponse:
        return problem_response(
            Problem(
                409,
                "That time is taken: " + "; ".join(exc.conflicts),
                kind="booking-conflict",
                title="The time is taken",
                conflicts=list(exc.conflicts),
            )
        )

    def on_rule(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        return problem_response(rule_violation(exc))

    api.add_exception_handler(Problem, on_problem)
    api.add_exception_handler(NinjaValidationError, on_validation)
    api.add_exception_handler(HttpError, on_http_error)
    api.add_exception_handler(Http404, on_not_found)
    api.add_exception_handler(PermissionDenied, on_denied)
    api.add_exception_handler(RequestDataTooBig, on_too_big)
    api.add_exception_handler(BookingConflict, on_conflict)
    api.add_exception_handler(DjangoValidationError, on_rule)


# --- documentation ------------------------------------------------------------------------------------------------


class ProblemField(Schema):
    """One offending field: where it was sent, its dotted path, its JSON pointer and what is wrong."""

    location: str = Field(alias="in")
    field: str
    pointer: str
    message: str


class ProblemOut(Schema):
    """RFC 9457 problem details. Extensions may follow: errors, conflicts, missing_scope, retry_after, max_bytes."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemField] | None = None


ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 422, 429)


def error_responses() -> dict[int, Any]:
    return {status: ProblemOut for status in ERROR_STATUSES}
