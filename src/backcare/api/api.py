"""The REST API: one NinjaAPI under /api/, its OpenAPI 3.1 document at /api/openapi.json.

The interactive documentation page is switched off: ninja's page loads Swagger UI from a CDN, which the content
security policy forbids and this clinic's servers may not reach. The OpenAPI document is the reference
(docs/api.md says how to read it).
"""

from __future__ import annotations

from typing import Any

from ninja import NinjaAPI
from ninja.errors import ValidationError as NinjaValidationError

from backcare.api import contract, problems
from backcare.api.auth import READ_AUTH
from backcare.api.rates import current_rate, parse_rate
from backcare.api.throttling import TokenRateThrottle

API_VERSION = "1.0.0"
DESCRIPTION = """Backcare's REST API. Authenticate with a personal API token (`Authorization: Bearer <token>`), made
on your account's API tokens page. A token acts with exactly its user's permissions; `read` tokens may only read,
`write` tokens may also change records. Errors are RFC 9457 problem details (`application/problem+json`). Every list
is paginated with `limit` and `offset`."""

# The headers that come with some error statuses, documented so clients (and schemathesis) may rely on them.
ERROR_HEADERS = {
    "401": {"WWW-Authenticate": {"description": "Bearer realm", "schema": {"type": "string"}}},
    "429": {
        "Retry-After": {
            "description": "Seconds to wait before trying again",
            "schema": {"type": "string"},
            "required": True,
        }
    },
}


class BackcareAPI(NinjaAPI):
    def get_openapi_operation_id(self, operation: Any) -> str:
        return str(operation.view_func.__name__)

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(contract.components())
        _name_in_field(components.get("ProblemField", {}))
        for methods in schema.get("paths", {}).values():
            for operation in methods.values():
                for status, response in operation.get("responses", {}).items():
                    if str(status).startswith(("4", "5")):
                        content = response.get("content", {})
                        if "application/json" in content:
                            content[problems.MEDIA_TYPE] = content.pop("application/json")
                        if str(status) in ERROR_HEADERS:
                            response["headers"] = ERROR_HEADERS[str(status)]
        return schema


def _name_in_field(field_schema: dict[str, Any]) -> None:
    """ProblemField's `location` is sent as `in` (a Python keyword, so an alias in the model)."""
    properties = field_schema.get("properties", {})
    if "location" in properties:
        properties["in"] = {**properties.pop("location"), "title": "In", "enum": ["body", "query", "path", "header"]}
        field_schema["required"] = ["in" if r == "location" else r for r in field_schema.get("required", [])]


parse_rate(current_rate())  # a wrong BACKCARE_API_RATE stops the server at start-up, naming the variable

api = BackcareAPI(
    title="Backcare API",
    version=API_VERSION,
    description=DESCRIPTION,
    urls_namespace="api",
    docs_url=None,
    auth=READ_AUTH,
    throttle=TokenRateThrottle(),
)
problems.install(api)


def _refuse_unknown_query_parameters(operation: Any) -> None:
    """As unknown body fields: a query parameter the operation does not document (a typo such as `?limt=10`), or one
    given twice, is refused with 400 naming it, instead of being silently ignored."""
    allowed = {
        name
        for model in operation.models
        if model.__ninja_param_source__ == "query"
        for name in (getattr(model, "__ninja_flatten_map__", None) or model.model_fields)
    }
    read_values = operation._get_values

    def get_values(request: Any, *args: Any, **kwargs: Any) -> Any:
        errors = [
            {"type": "extra_forbidden", "loc": ("query", name), "msg": "unknown query parameter"}
            for name in request.GET
            if name not in allowed
        ]
        errors += [
            {"type": "repeated", "loc": ("query", name), "msg": f"{name} is given more than once"}
            for name in request.GET
            if name in allowed and len(request.GET.getlist(name)) > 1
        ]
        if errors:
            raise NinjaValidationError(errors)
        return read_values(request, *args, **kwargs)

    operation._get_values = get_values


def _add_routers() -> None:
    from backcare.api.routers import ROUTERS

    for prefix, router in ROUTERS:
        api.add_router(prefix, router)
    # Ninja binds copies of the routers' operations to the API: wrap the ones it really runs.
    for bound in api._get_bound_routers():
        for path_view in bound.path_operations.values():
            for operation in path_view.operations:
                _refuse_unknown_query_parameters(operation)


_add_routers()
