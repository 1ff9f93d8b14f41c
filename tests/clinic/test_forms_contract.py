"""The forms contract, for EVERY form page of the project (found by enumerating the URL patterns): invalid input
never gives a server error, each problem is named beside its field, and everything the user typed comes back;
sending the same form twice creates one record.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from clinic_fixtures import login
from matrix_support import (
    all_patterns,
    error_names_field,
    parse_html,
    post_forms,
    request,
    url_kwargs,
)

# Who opens each form page: the first of these that gets a page with a <form method=post>.
OPENERS = ("owner", "therapist_a", "client_x", "anonymous")
TEXT_KINDS = {"text", "textarea", "email", "tel", "search", "url", "password"}
# Pages whose form is one button acting on the record (nothing to type), or which are not data-entry forms.
NO_INPUT_FORMS = {"logout", "outbox"}
# At least these pages must be found with a form (guards against the search silently finding nothing).
KNOWN_FORMS = {
    "client_create",
    "client_edit",
    "referral_create",
    "referral_outcome",
    "clearance_create",
    "course_edit",
    "course_end",
    "session_record",
    "health_update",
    "register",
    "intake_review",
    "password_change",
    "password_reset",
}


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def form_pages(page_client, world):
    """(name, url, role, form fields) of the largest post form of every page that shows one."""
    for pattern in all_patterns():
        if pattern.name in NO_INPUT_FORMS:
            continue
        url = reverse(pattern.name, kwargs=url_kwargs(pattern, world.x.ids))
        for role in OPENERS:
            response = request(page_client, "GET", url, user=world.users[role])
            if response.status_code != 200 or "text/html" not in response.get("Content-Type", ""):
                continue
            forms = [f for _, f in post_forms(parse_html(response.content.decode())) if visible(f)]
            if forms:
                yield pattern.name, url, role, max(forms, key=len)
                break


def visible(fields):
    return [f for f in fields if f.kind != "hidden"]


def hidden_data(fields):
    return {f.name: f.value for f in fields if f.kind == "hidden"}


def typed_value(f):
    if f.kind == "email":
        return f"typed-{f.name}-at-nowhere"
    if f.kind == "number":
        return "abc"
    if f.kind == "date" or "date" in f.name or f.name.endswith("_on"):
        return f"typed {f.name} not a date"
    return f"Typed {f.name} 7"


def test_every_form_reports_invalid_input_by_field_and_keeps_what_was_typed(client, world):
    problems, seen = [], set()
    for name, url, role, fields in form_pages(client, world):
        seen.add(name)
        user = world.users[role]
        where = f"{name} ({url}) as {role}"
        # 1. Nothing filled in.
        empty = request(client, "POST", url, hidden_data(fields), user=user)
        if empty.status_code >= 500:
            problems.append(f"{where}: empty form gives {empty.status_code}")
        required = [f for f in visible(fields) if f.required and f.kind not in ("checkbox", "radio")]
        if required and empty.status_code not in (200, 400, 409):
            problems.append(f"{where}: empty form with required fields answers {empty.status_code}")
        elif required:
            page = parse_html(empty.content.decode())
            problems += [
                f"{where}: no message beside empty required field {f.name!r}"
                for f in required
                if not error_names_field(page, f.name)
            ]
        # 2. Every text typed, numbers as words, dates that are not dates.
        typed = {f.name: typed_value(f) for f in visible(fields) if f.kind in TEXT_KINDS | {"number", "date"}}
        kinds = {f.name: f.kind for f in fields}
        data = {**hidden_data(fields), **typed}
        response = request(client, "POST", url, data, user=user)
        if response.status_code >= 500:
            problems.append(f"{where}: typed form gives {response.status_code}")
            continue
        if response.status_code in (200, 400, 409):
            body = response.content.decode()
            # Passwords are never sent back to the browser; everything else must be.
            problems += [
                f"{where}: typed value of {k!r} lost"
                for k, v in typed.items()
                if v not in body and kinds[k] != "password"
            ]
            page = parse_html(body)
            problems += [
                f"{where}: no message beside {f.name!r} = {typed[f.name]!r}"
                for f in visible(fields)
                if (f.kind == "number" or "not a date" in typed.get(f.name, "")) and not error_names_field(page, f.name)
            ]
        elif any(f.kind == "number" for f in visible(fields)):
            problems.append(f"{where}: 'abc' for a number was accepted ({response.status_code})")
        # 3. Numbers out of range.
        ranged = [f for f in visible(fields) if f.kind == "number" and f.attrs.get("max")]
        if ranged:
            data = {**hidden_data(fields), **typed}
            data.update({f.name: str(int(float(f.attrs["max"])) + 1) for f in ranged})
            response = request(client, "POST", url, data, user=user)
            if response.status_code not in (200, 400, 409):
                problems.append(f"{where}: out-of-range numbers answer {response.status_code}")
            else:
                page = parse_html(response.content.decode())
                problems += [
                    f"{where}: no message beside out-of-range {f.name!r}"
                    for f in ranged
                    if not error_names_field(page, f.name)
                ]
                body = response.content.decode()
                problems += [f"{where}: out-of-range {f.name!r} lost" for f in ranged if data[f.name] not in body]
    assert not problems, "\n".join(problems)
    assert seen >= KNOWN_FORMS, f"form pages not found: {KNOWN_FORMS - seen}"


# --- sending the same form twice ---------------------------------------------------------------------------------


def key_of(page: str) -> str:
    return re.search(r'name="submission_key" value="([^"]+)"', page).group(1)


def twice(page_client, url, data):
    first = page_client.post(url, data)
    second = page_client.post(url, data)
    assert first.status_code in (200, 302) and second.status_code in (200, 302), (first, second)
    return first, second


def test_same_client_form_twice_creates_one_client(client, world):
    from backcare.clinic.models import Client

    page_client = client
    login(page_client, world.owner.user)
    url = reverse("client_create")
    data = {
        "first_name": "Nina",
        "last_name": "Newman",
        "date_of_birth": "02/05/1979",
        "sex": "female",
        "email": "nina@x.test",
        "phone": "01234 567890",
        "address": "1 High Street",
        "physician_name": "Dr Grey",
        "physician_address": "Surgery Lane",
        "therapist": str(world.therapist_a.pk),
        "submission_key": key_of(page_client.get(url).content.decode()),
    }
    twice(page_client, url, data)
    assert Client.objects.filter(last_name="Newman").count() == 1


def test_same_referral_form_twice_creates_one_referral(client, world):
    from backcare.clinic.models import Referral

    client.force_login(world.therapist_a.user, backend="django.contrib.auth.backends.ModelBackend")
    url = reverse("referral_create", args=[world.x.ids["client"]])
    before = Referral.objects.count()
    data = {
        "urgency": "routine",
        "reason": "Please assess the leg.",
        "submission_key": key_of(client.get(url).content.decode()),
    }
    twice(client, url, data)
    assert Referral.objects.count() == before + 1


def test_same_clearance_form_twice_creates_one_clearance(client, world):
    from django.utils import timezone

    from backcare.clinic.models import Clearance

    client.force_login(world.therapist_a.user, backend="django.contrib.auth.backends.ModelBackend")
    url = reverse("clearance_create", args=[world.x.ids["client"], world.x.ids["clearance_screening"]])
    before = Clearance.objects.count()
    data = {
        "findings": ["clearance.dvt_history@"],
        "given_by": "Dr A. Jones, GP",
        "given_on": timezone.localdate().strftime("%d/%m/%Y"),
        "note": "Fine to go ahead.",
        "submission_key": key_of(client.get(url).content.decode()),
    }
    twice(client, url, data)
    assert Clearance.objects.count() == before + 1
