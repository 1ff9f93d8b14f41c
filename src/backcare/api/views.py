"""The API tokens page: every signed-in user (staff of every role, and clients) makes, lists and revokes their own
personal API tokens. A new token's secret is shown once, on the answer to the form that made it, and never stored."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from backcare.api import tokens
from backcare.api.forms import TokenForm
from backcare.api.models import ApiToken
from backcare.clinic import access, once
from backcare.common.http import AuthenticatedHttpRequest
from backcare.common.ids import ascii_id

ONCE_SCOPE = "api-token"


def _page(
    request: AuthenticatedHttpRequest, form: TokenForm, *, secret: str = "", created: ApiToken | None = None
) -> HttpResponse:
    rows = ApiToken.objects.filter(user=request.user).order_by("-created_at", "-id")
    response = render(
        request,
        "api/tokens.html",
        {
            "form": form,
            "tokens": rows,
            "secret": secret,
            "created": created,
            "is_client": access.client_of(request.user) is not None and access.staff_of(request.user) is None,
        },
    )
    response["Cache-Control"] = "no-store"  # the page may hold a secret
    return response


def _revoke(request: AuthenticatedHttpRequest) -> HttpResponse:
    raw = str(request.POST.get("token", "")).strip()
    pk = ascii_id(raw, max_length=17)
    row = ApiToken.objects.filter(user=request.user, pk=pk).first() if pk is not None else None
    if row is None:
        messages.error(request, "That token is not one of yours.")
    elif row.revoked_at is not None:
        messages.info(request, f"The token “{row.name}” ({row.prefix}) was already revoked.")
    else:
        tokens.revoke_token(row, by=request.user, request=request)
        messages.success(request, f"The token “{row.name}” ({row.prefix}) is revoked; it no longer works.")
    return redirect("api_tokens")


@login_required
@never_cache
@require_http_methods(["GET", "POST"])
def api_tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST" and request.POST.get("action") == "revoke":
        return _revoke(request)
    if request.method != "POST":
        return _page(request, TokenForm())
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form)
    key = form.cleaned_data["submission_key"]
    first, _ = once.claim(request.user, key, ONCE_SCOPE)
    if not first:
        messages.info(request, "This form was already sent: the token was made once, and its secret shown then.")
        return redirect("api_tokens")
    try:
        row, secret = tokens.create_token(
            request.user,
            name=form.cleaned_data["name"],
            scopes=form.scopes(),
            expires_at=form.expires_at(),
            request=request,
        )
    except ValidationError as error:
        once.release(request.user, key, ONCE_SCOPE)
        for field, errors in error.message_dict.items():
            field = "scope" if field == "scopes" else field
            form.add_error(field if field in form.fields else None, errors)
        return _page(request, form)
    once.complete(request.user, key, row.pk, ONCE_SCOPE)
    return _page(request, TokenForm(), secret=secret, created=row)


urlpatterns = [path("account/tokens/", api_tokens, name="api_tokens")]
