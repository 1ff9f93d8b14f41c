"""The de-identified research export of outcomes (owner only): no names, contact details, free text, exact dates or
ids; a random pseudonym per client per export; k-anonymity on (age band, sex) by generalising, then suppressing.
See docs/data-rights.md.
"""

from __future__ import annotations

import secrets
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone

from backcare.clinic import access, audit
from backcare.clinic.models import (
    Client,
    Clinic,
    Course,
    Outcome,
    Role,
)
from backcare.datarights.erasure import OPEN
from backcare.datarights.export import csv_bytes

# --- Research export ------------------------------------------------------------------------------------------------

K_ANONYMITY = 5
RESEARCH_HEADER = (
    "participant",
    "age_band",
    "sex",
    "course",
    "course_status",
    "techniques",
    "sessions_planned",
    "instrument",
    "timepoint",
    "score",
    "days_since_course_start",
)
ANY = "any"


def age_band(age: int) -> str:
    if age < 20:
        return "under 20"
    if age >= 80:
        return "80 or over"
    low = age // 10 * 10
    return f"{low}-{low + 9}"


def wide_age_band(age: int) -> str:
    if age < 40:
        return "under 40"
    if age >= 60:
        return "60 or over"
    return "40-59"


def anonymise_groups(people: dict[str, tuple[int, str]], k: int = K_ANONYMITY) -> dict[str, tuple[str, str]]:
    """(age band, sex) per participant such that every combination in the result is shared by at least k
    participants. Participants in a smaller group are generalised step by step: 10-year band -> 20-year band ->
    sex "any" -> age "any"; whoever is still in a group smaller than k is left out (not in the result)."""
    levels = (
        lambda age, sex: (age_band(age), sex),
        lambda age, sex: (wide_age_band(age), sex),
        lambda age, sex: (wide_age_band(age), ANY),
        lambda age, sex: (ANY, ANY),
    )
    level = dict.fromkeys(people, 0)
    for step in range(len(levels)):
        values = {p: levels[level[p]](*people[p]) for p in people if level[p] == step}
        sizes = Counter(values.values())
        for p, value in values.items():
            if sizes[value] < k:
                level[p] = step + 1
    final = {p: levels[level[p]](*people[p]) for p in people if level[p] < len(levels)}
    return final


@dataclass
class ResearchExport:
    content: bytes
    filename: str
    participants: int
    rows: int
    suppressed: int
    excluded: dict[str, int]


def research_clients(clinic: Clinic) -> tuple[QuerySet[Client], dict[str, int]]:
    """The clients whose outcomes may go into research: a signed consent, none withdrawn, no erasure asked."""
    everyone = Client.objects.filter(clinic=clinic, outcomes__isnull=False).distinct()
    rules = {
        "withdrew_consent": Q(consents__withdrawn_at__isnull=False),
        "asked_for_erasure": Q(erasure_requested_at__isnull=False) | Q(erasure_requests__status__in=OPEN),
        "no_consent": Q(consents__isnull=True),
    }
    excluded = {name: everyone.filter(rule).count() for name, rule in rules.items()}
    included = everyone
    for rule in rules.values():
        included = included.exclude(pk__in=Client.objects.filter(rule).values("pk"))
    return included, excluded


def research_csv(clinic: Clinic, *, by: Any, k: int = K_ANONYMITY, request: Any = None) -> ResearchExport:
    """The de-identified outcomes of the clinic (owner only). Pseudonyms are random for each export: two exports
    cannot be linked by them, and nothing in them comes from an id."""
    staff = access.staff_of(by)
    if staff is None or staff.role != Role.OWNER or staff.clinic_id != clinic.pk:
        raise PermissionDenied("Only the clinic owner exports data for research.")
    zone = clinic.zone
    clients, excluded = research_clients(clinic)
    people: dict[str, tuple[int, str]] = {}
    rows_by: dict[str, list[list[Any]]] = {}
    used: set[str] = set()
    # Plain rows of the columns the file needs, in two ordered queries: a model instance per outcome and course
    # (84,000 and 20,000 at 10,000 clients) cost most of the export's time (issue 14).
    courses_of: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in (
        Course.objects.filter(client__in=clients.values("pk"))
        .order_by("client_id", "started_at", "pk")
        .values_list("client_id", "pk", "started_at", "status", "techniques", "sessions_planned")
    ):
        courses_of[row[0]].append(row)
    outcomes_of: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in (
        Outcome.objects.filter(client__in=clients.values("pk"))
        .order_by("client_id", "recorded_at", "pk")
        .values_list("client_id", "course_id", "recorded_at", "instrument", "timepoint", "score")
    ):
        outcomes_of[row[0]].append(row)
    for client in clients.only("pk", "date_of_birth", "sex").order_by("pk"):
        pseudonym = ""
        while not pseudonym or pseudonym in used:
            pseudonym = "P" + secrets.token_hex(4)
        used.add(pseudonym)
        courses = courses_of.get(client.pk, [])
        outcomes = outcomes_of.get(client.pk, [])
        first = courses[0][2] if courses else outcomes[0][2]
        people[pseudonym] = (client.age_on(first.astimezone(zone).date()), client.sex)
        number = {c[1]: n for n, c in enumerate(courses, 1)}
        by_pk = {c[1]: c for c in courses}
        rows: list[list[Any]] = []
        for _, course_id, recorded_at, instrument, timepoint, score in outcomes:
            course = by_pk.get(course_id) if course_id else None
            days = (
                (recorded_at.astimezone(zone).date() - course[2].astimezone(zone).date()).days
                if course is not None
                else None
            )
            rows.append(
                [
                    number.get(course[1]) if course else None,
                    course[3] if course else None,
                    ";".join(sorted(course[4])) if course else None,
                    course[5] if course else None,
                    instrument,
                    timepoint,
                    score,
                    days,
                ]
            )
        rows_by[pseudonym] = rows
    groups = anonymise_groups(people, k)
    out_rows: list[list[Any]] = []
    for pseudonym in sorted(groups):
        band, sex = groups[pseudonym]
        out_rows.extend([pseudonym, band, sex, *row] for row in rows_by[pseudonym])
    suppressed = len(people) - len(groups)
    content = csv_bytes(RESEARCH_HEADER, out_rows)
    audit.record(
        by,
        "research_export",
        detail={
            "participants": len(groups),
            "rows": len(out_rows),
            "suppressed_small_groups": suppressed,
            "k": k,
            "excluded": excluded,
        },
        request=request,
    )
    filename = f"research-outcomes-{timezone.localdate(timezone=zone):%Y-%m-%d}.csv"
    return ResearchExport(content, filename, len(groups), len(out_rows), suppressed, excluded)


__all__ = ["K_ANONYMITY", "RESEARCH_HEADER", "ResearchExport", "anonymise_groups", "research_clients", "research_csv"]
