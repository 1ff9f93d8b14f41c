"""Shared set-up for the API tests: personal tokens for each role, and requests through Django's test client with
`Authorization: Bearer ...` (exactly as a program would call the API)."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client as HttpClient


def make_token(user: Any, *scopes: str, name: str = "test token") -> str:
    """A real token made through the token service (scopes default to read and write)."""
    from backcare.api import tokens

    _, secret = tokens.create_token(user, name=name, scopes=list(scopes or ("read", "write")))
    return secret


def call(
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | str | None = None,
    content_type: str = "application/json",
    http: HttpClient | None = None,
    **headers: str,
) -> Any:
    """One request to the API; `body` is sent as JSON, `raw` as it is."""
    http = http or HttpClient()
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    if token is not None:
        extra["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    kwargs: dict[str, Any] = {}
    if data is not None:
        kwargs.update(data=data, content_type=content_type)
    return getattr(http, method.lower())(path, **kwargs, **extra)


def problem(response: Any) -> dict[str, Any]:
    """The problem document of an error response (and that it is one)."""
    assert response["Content-Type"] == "application/problem+json", (response.status_code, response.content[:300])
    data = response.json()
    assert {"type", "title", "status", "detail"} <= set(data), data
    assert data["status"] == response.status_code
    return data


def fields_named(response: Any) -> set[str]:
    return {e["field"] for e in problem(response).get("errors") or []}
