"""The API's routers, one per area; `backcare.api.api` mounts them in this order."""

from backcare.api.routers import (
    appointments,
    availability,
    billing,
    clients,
    courses,
    intakes,
    outcomes,
    screening,
    screenings,
    sessions,
)

ROUTERS = [
    ("", screening.router),
    ("", clients.router),
    ("", intakes.router),
    ("", screenings.router),
    ("", courses.router),
    ("", sessions.router),
    ("", outcomes.router),
    ("", availability.router),
    ("", appointments.router),
    ("", billing.router),
]
