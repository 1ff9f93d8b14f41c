"""Personal API tokens as their owners meet them: the API tokens page makes a token and shows its secret once, lists
the user's tokens, revokes them; the API then refuses the token. Only a hash is stored; making and revoking are
audited; last use is recorded."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from api_support import call, make_token, problem
from django.urls import reverse
from django.utils import timezone

from clinic_fixtures import login

TOKEN = re.compile(r"bct_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def make_on_page(page_client, name="reports script", scope="read", expires_on=""):
    page = page_client.get(reverse("api_tokens")).content.decode()
    key = re.search(r'name="submission_key" value="([^"]+)"', page).group(1)
    data = {"action": "create", "submission_key": key, "name": name, "scope": scope, "expires_on": expires_on}
    return page_client.post(reverse("api_tokens"), data), data


def secret_in(response) -> str:
    found = TOKEN.findall(response.content.decode())
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def staff_page(client, owner, therapist, make_client):
    make_client(therapist)
    return login(client, owner.user)


def test_make_a_token_see_it_once_use_it_revoke_it(staff_page, owner):
    from backcare.api.models import ApiToken
    from backcare.clinic.models import AuditEvent

    response, _ = make_on_page(staff_page, name="practice reports", scope="write")
    assert response.status_code == 200
    secret = secret_in(response)
    assert "shown only this once" in response.content.decode()
    row = ApiToken.objects.get(user=owner.user)
    assert row.scopes == ["read", "write"] and secret.startswith(row.prefix + "_")
    # Only the hash is kept: the secret is in no column of the row.
    assert all(secret not in str(value) for value in ApiToken.objects.filter(pk=row.pk).values().first().values())
    assert AuditEvent.objects.filter(action="create_api_token", user=owner.user, object_id=str(row.pk)).exists()

    listed = staff_page.get(reverse("api_tokens")).content.decode()
    assert "practice reports" in listed and row.prefix in listed
    assert secret not in listed and not TOKEN.findall(listed)  # never shown again

    assert call("GET", "/api/clients", token=secret).status_code == 200
    row.refresh_from_db()
    assert row.last_used_at is not None

    revoked = staff_page.post(reverse("api_tokens"), {"action": "revoke", "token": row.pk}, follow=True)
    assert "is revoked" in revoked.content.decode()
    response = call("GET", "/api/clients", token=secret)
    assert response.status_code == 401
    assert "revoked" in problem(response)["detail"]
    assert AuditEvent.objects.filter(action="revoke_api_token", user=owner.user, object_id=str(row.pk)).count() == 1


def test_a_client_makes_a_token_for_their_own_record(client, client_record):
    login(client, client_record.user)
    assert "API tokens" in client.get(reverse("portal")).content.decode()  # the account menu links the page
    response, _ = make_on_page(client, name="my health app")
    secret = secret_in(response)
    listed = call("GET", "/api/clients", token=secret).json()
    assert [c["id"] for c in listed["items"]] == [client_record.pk]
    # read-only: a change is refused naming the missing scope
    refused = call(
        "POST",
        "/api/appointments",
        token=secret,
        body={"service": 1, "therapist": 1, "room": 1, "starts_at": "2030-01-01T10:00:00Z"},
    )
    assert refused.status_code == 403
    assert problem(refused)["missing_scope"] == "write"


def test_the_form_names_each_problem_and_keeps_what_was_typed(staff_page):
    from backcare.api.models import ApiToken

    response, _ = make_on_page(staff_page, name="")
    body = response.content.decode()
    assert response.status_code == 200 and "Name: say what the token is for." in body
    response, _ = make_on_page(staff_page, name="nightly export", expires_on="31/02/2030")
    body = response.content.decode()
    assert "Expires on: enter a real date" in body and 'value="nightly export"' in body
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    response, _ = make_on_page(staff_page, name="nightly export", expires_on=yesterday)
    assert "Expires on: choose today or a later day" in response.content.decode()
    response, _ = make_on_page(staff_page, name="nightly export", scope="admin")
    assert "Access: choose read only, or read and write." in response.content.decode()
    assert not ApiToken.objects.exists()
    assert not TOKEN.findall(body)


def test_the_same_form_sent_twice_makes_one_token(staff_page, owner):
    from backcare.api.models import ApiToken

    first, data = make_on_page(staff_page)
    second = staff_page.post(reverse("api_tokens"), data, follow=True)
    assert first.status_code == 200 and second.status_code == 200
    assert ApiToken.objects.filter(user=owner.user).count() == 1
    assert "already sent" in second.content.decode()


def test_nobody_revokes_another_user_s_token(client, owner, therapist):
    from backcare.api.models import ApiToken

    secret = make_token(therapist.user)
    row = ApiToken.objects.get(user=therapist.user)
    login(client, owner.user)
    page = client.post(reverse("api_tokens"), {"action": "revoke", "token": row.pk}, follow=True).content.decode()
    assert "not one of yours" in page
    assert call("GET", "/api/clients", token=secret).status_code == 200
    for junk in ("", "abc", "99999999999999999999999", "-1"):
        assert client.post(reverse("api_tokens"), {"action": "revoke", "token": junk}).status_code == 302


def test_an_expiry_day_ends_the_token(staff_page, owner):
    from backcare.api.models import ApiToken

    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    secret = secret_in(make_on_page(staff_page, expires_on=tomorrow)[0])
    assert call("GET", "/api/clients", token=secret).status_code == 200
    ApiToken.objects.filter(user=owner.user).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    response = call("GET", "/api/clients", token=secret)
    assert response.status_code == 401 and "expired" in problem(response)["detail"]
    assert "expired" in staff_page.get(reverse("api_tokens")).content.decode()


def test_last_use_is_written_at_most_once_a_minute(owner):
    from backcare.api.models import ApiToken

    secret = make_token(owner.user)
    call("GET", "/api/clients", token=secret)
    first = ApiToken.objects.get(user=owner.user).last_used_at
    call("GET", "/api/clients", token=secret)
    assert ApiToken.objects.get(user=owner.user).last_used_at == first
    ApiToken.objects.filter(user=owner.user).update(last_used_at=first - dt.timedelta(minutes=2))
    call("GET", "/api/clients", token=secret)
    assert ApiToken.objects.get(user=owner.user).last_used_at > first


def test_a_deactivated_account_s_token_stops_working(owner):
    secret = make_token(owner.user)
    owner.active = False
    owner.save(update_fields=["active"])
    response = call("GET", "/api/clients", token=secret)
    assert response.status_code == 401 and "no longer active" in problem(response)["detail"]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (None, "Send a personal API token"),
        ("Token abc", "Send a personal API token"),
        ("Bearer not-a-backcare-token", "not a Backcare API token"),
        ("Bearer bct_00000000_" + "A" * 43, "not known"),
    ],
)
def test_unauthenticated_requests_are_told_what_to_send(db, header, words):
    headers = {"Authorization": header} if header else {}
    response = call("GET", "/api/clients", **headers)
    assert response.status_code == 401
    assert words in problem(response)["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")
