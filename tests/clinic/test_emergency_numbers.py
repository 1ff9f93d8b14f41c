"""The emergency and urgent-care numbers are the clinic's own setting, defaulting by its country; no page, email or
module hard-codes one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import backcare
from backcare.clinic.models import Clinic

SOURCE = Path(backcare.__file__).parent
HARD_CODED = re.compile(r"(?<![\d.,/:#-])(999|911)(?![\d.,/:-])")


@pytest.mark.parametrize(
    ("country", "emergency", "urgent"),
    [("GB", "999", "111"), ("IE", "112", ""), ("US", "911", ""), ("DE", "112", "116117"), ("SE", "112", "")],
)
def test_numbers_default_by_country(country, emergency, urgent):
    clinic = Clinic(name="C", country=country)
    assert (clinic.emergency, clinic.urgent_care) == (emergency, urgent)


def test_the_clinics_own_numbers_win():
    clinic = Clinic(name="C", country="GB", emergency_number="112", urgent_care_number="0800 123")
    assert (clinic.emergency, clinic.urgent_care) == ("112", "0800 123")


def test_no_template_email_or_module_hard_codes_an_emergency_number():
    found = []
    for path in SOURCE.rglob("*"):
        if path.suffix not in {".py", ".html", ".txt", ".md", ".toml"} or "migrations" in path.parts:
            continue
        if path.name == "models.py" and path.parent.name == "clinic":
            continue  # the defaults by country live there
        if path.name == "check.py" and path.parent.name == "clinical":
            continue  # `rules --check`'s own pattern for refusing telephone numbers in rule texts
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if HARD_CODED.search(line) and "svg" not in line and "polygon" not in line:
                found.append(f"{path.relative_to(SOURCE)}:{number}: {line.strip()[:100]}")
    assert not found, "hard-coded emergency numbers:\n" + "\n".join(found)


def test_the_portal_says_the_clinics_number(client, make_client, therapist, screen_client, clinic):
    from django.urls import reverse

    from clinic_fixtures import login

    clinic.country, clinic.emergency_number = "DE", ""
    clinic.save()
    person = make_client(therapist, username="erin", first_name="Erin")
    screen_client(person, "saddle_anaesthesia")
    login(client, person.user)
    html = client.get(reverse("portal")).content.decode()
    assert "call 112" in html and "999" not in html
