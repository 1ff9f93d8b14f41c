"""Bearer authentication with personal API tokens, and the scope each operation needs.

The token's user becomes `request.user`, so every permission check (`backcare.clinic.access`) and every audit event
is exactly what the same user meets on the pages. Reading needs the `read` scope, changing anything `write`.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from backcare.api import tokens
from backcare.api.models import READ, WRITE, ApiToken
from backcare.api.problems import Problem

UNAUTHENTICATED_HEADERS = {"WWW-Authenticate": 'Bearer realm="backcare"'}


class TokenAuth(HttpBearer):
    def __init__(self, scope: str) -> None:
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        return authenticate(request, token, self.scope)


def authenticate(request: HttpRequest, token: str, scope: str) -> ApiToken:
    """The token's row (and request.user set), or a 401/403 problem saying why not."""
    found = tokens.find_token(token.strip())
    if isinstance(found, tokens.Refusal):
        raise Problem(401, found.detail, kind="invalid-token", headers=UNAUTHENTICATED_HEADERS)
    if scope not in (found.scopes or []):
        raise Problem(
            403,
            f"This token ({found.prefix}) has the {', '.join(found.scopes) or 'no'} scope; this operation needs the "
            f"{scope} scope.",
            kind="insufficient-scope",
            title="The token's scope does not allow this",
            missing_scope=scope,
        )
    request.user = found.user
    request.api_token = found  # type: ignore[attr-defined]  # ours, for the throttle; HttpRequest lacks it
    return found


def bearer(request: HttpRequest) -> str | None:
    """The token of an `Authorization: Bearer ...` header, for views outside ninja (FHIR)."""
    value = request.headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


READ_AUTH = TokenAuth(READ)
WRITE_AUTH = TokenAuth(WRITE)

__all__ = ["READ_AUTH", "WRITE_AUTH", "TokenAuth", "authenticate", "bearer"]
