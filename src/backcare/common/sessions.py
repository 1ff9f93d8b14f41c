"""The session engine (`SESSION_ENGINE = "backcare.common.sessions"`): Django's database sessions, with the signed-in
user's id kept in an indexed column beside the session data (Django's documented way to extend the database session
engine). Ending one user's sessions is then one indexed delete, however many sessions the clinic has."""

from __future__ import annotations

from typing import Any, cast

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from backcare.common.models import UserSession


class SessionStore(DatabaseSessionStore):
    @classmethod
    def get_model_class(cls) -> type[UserSession]:
        return UserSession

    def create_model_instance(self, data: dict[str, Any]) -> UserSession:
        # get_model_class() above makes the base build a UserSession
        session = cast(UserSession, super().create_model_instance(data))
        try:
            session.user_id = int(data[SESSION_KEY])
        except (KeyError, TypeError, ValueError):
            session.user_id = None
        return session


def end_sessions_of(user_id: int, *, keep: str | None = None) -> int:
    """Delete every stored session of this user but `keep`; the number ended."""
    sessions = UserSession.objects.filter(user_id=user_id)
    if keep:
        sessions = sessions.exclude(session_key=keep)
    ended, _ = sessions.delete()
    return ended
