from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from backcare.clinic.access import client_of, role_of, staff_of


def roles(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    role = role_of(user)
    return {
        "role": role,
        "staff_member": staff_of(user),
        "portal_client": client_of(user),
        "is_owner": role == "owner",
        "is_therapist": role == "therapist",
        "is_front_desk": role == "front_desk",
        "is_client": role == "client",
        "sees_clinical": role in ("owner", "therapist"),
        "login_cooloff_minutes": round(float(settings.AXES_COOLOFF_TIME) * 60),
    }
