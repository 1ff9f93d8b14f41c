"""Request types for the type checker."""

from django.contrib.auth.models import User
from django.http import HttpRequest


class AuthenticatedHttpRequest(HttpRequest):
    """A request that passed `login_required` (or the API's token check): `user` is a signed-in User, never the
    AnonymousUser that a plain HttpRequest may carry. Only an annotation: Django builds the request as always."""

    user: User
