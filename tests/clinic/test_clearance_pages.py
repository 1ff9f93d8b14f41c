"""Recording a physician's clearance through the page, and who may read the uploaded letter."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from backcare.clinic.models import AuditEvent, Clearance
from backcare.clinic.services.screening import treatment_gate
from clinic_fixtures import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def fresh_submission_keys(db):
    """One-time form keys live in the cache, which outlives a test's database."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def as_role(client, owner, therapist, therapist2, front_desk, client_record):
    users = {
        "owner": owner.user,
        "therapist": therapist.user,
        "therapist2": therapist2.user,
        "front_desk": front_desk.user,
        "client": client_record.user,
    }

    def log_in(role):
        client.logout()
        if role != "anonymous":
            login(client, users[role])
        return client

    return log_in


@pytest.fixture
def needs_clearance(client_record, screen_client):
    return screen_client(client_record, "dvt_history")


def url_for(screening):
    return reverse("clearance_create", args=[screening.client_id, screening.pk])


def post_data(**changes):
    data = {
        "findings": ["clearance.dvt_history@"],
        "given_by": "Dr A. Jones, GP",
        "given_on": dt.date.today().strftime("%d/%m/%Y"),
        "note": "No current clot; normal pressure on the back is fine.",
        "submission_key": "clear-1",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner", 200), ("therapist", 200), ("therapist2", 404), ("front_desk", 403), ("client", 403), ("anonymous", 302)],
)
def test_clearance_form_by_role(as_role, needs_clearance, role, status):
    response = as_role(role).get(url_for(needs_clearance))
    assert response.status_code == status
    if status == 200:
        html = response.content.decode()
        assert "Past blood clot (DVT or pulmonary embolism)" in html
        assert "Werner" in html  # the finding's source
    if role in ("therapist2", "front_desk", "client"):
        response = as_role(role).post(url_for(needs_clearance), post_data())
        assert response.status_code == status
        assert not Clearance.objects.exists()


def test_a_screening_that_needs_no_clearance_sends_back(as_role, client_record, screen_client):
    screening = screen_client(client_record)
    response = as_role("therapist").get(url_for(screening))
    assert response.status_code == 302 and response["Location"] == reverse("client_detail", args=[client_record.pk])


def test_another_clients_screening_is_404(as_role, needs_clearance, make_client, therapist):
    other = make_client(therapist, first_name="Otto")
    response = as_role("therapist").get(reverse("clearance_create", args=[other.pk, needs_clearance.pk]))
    assert response.status_code == 404


def test_recording_a_clearance_with_a_note_opens_the_gate(as_role, client_record, needs_clearance, therapist):
    assert not treatment_gate(client_record).allowed
    response = as_role("therapist").post(url_for(needs_clearance), post_data())
    assert response.status_code == 302 and response["Location"] == reverse("client_detail", args=[client_record.pk])
    clearance = Clearance.objects.get()
    assert clearance.given_by == "Dr A. Jones, GP" and clearance.recorded_by == therapist and not clearance.letter
    assert treatment_gate(client_record).allowed
    assert AuditEvent.objects.filter(action="record_clearance", client=client_record).exists()
    html = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert "No course or session can start" not in html and "Start course" in html
    assert "Dr A. Jones, GP" in html


def test_double_submission_records_one_clearance(as_role, needs_clearance):
    page = as_role("therapist")
    page.post(url_for(needs_clearance), post_data(submission_key="twice"))
    second = page.post(url_for(needs_clearance), post_data(submission_key="twice"))
    assert second.status_code == 302
    assert Clearance.objects.count() == 1


def test_neither_note_nor_letter_is_refused_with_a_message(as_role, needs_clearance):
    response = as_role("therapist").post(url_for(needs_clearance), post_data(note="  "))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Note: add a note of what the clinician said, or upload their letter." in html
    assert 'value="Dr A. Jones, GP"' in html
    assert not Clearance.objects.exists()


def test_missing_given_by_and_future_date_are_named(as_role, needs_clearance):
    tomorrow = (dt.date.today() + dt.timedelta(days=2)).strftime("%d/%m/%Y")
    response = as_role("therapist").post(url_for(needs_clearance), post_data(given_by="", given_on=tomorrow))
    html = response.content.decode()
    assert "Given by: this is required." in html
    assert "Date given: this date is in the future." in html
    assert "No current clot; normal pressure on the back is fine." in html
    assert not Clearance.objects.exists()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("letter.txt", b"plain text", "Letter: only PDF, JPEG or PNG files can be uploaded."),
        ("letter.exe", b"MZ\x90\x00", "Letter: only PDF, JPEG or PNG files can be uploaded."),
        ("letter.pdf", b"<html>not a pdf</html>", "is not a real PDF file"),
        ("scan.png", b"\xff\xd8\xff\xe0 jpeg bytes", "is not a real PNG file"),
    ],
)
def test_wrong_file_type_gives_a_field_message_and_keeps_the_note(as_role, needs_clearance, name, content, message):
    letter = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    response = as_role("therapist").post(url_for(needs_clearance), post_data(letter=letter))
    html = response.content.decode()
    assert response.status_code == 200
    assert message in html
    assert "No current clot; normal pressure on the back is fine." in html
    assert 'value="Dr A. Jones, GP"' in html
    assert "choose it again" in html
    assert not Clearance.objects.exists()


def test_too_large_a_letter_is_refused(as_role, needs_clearance, settings):
    settings.MAX_LETTER_BYTES = 1024
    letter = SimpleUploadedFile("letter.pdf", PDF + b"0" * 2048, content_type="application/pdf")
    response = as_role("therapist").post(url_for(needs_clearance), post_data(letter=letter))
    html = response.content.decode()
    assert "Letter: the file is" in html and "the largest allowed is" in html
    assert "No current clot; normal pressure on the back is fine." in html
    assert not Clearance.objects.exists()


def test_letter_is_served_only_to_those_with_clinical_access(as_role, client_record, needs_clearance):
    letter = SimpleUploadedFile("Cora Client GP letter.pdf", PDF, content_type="application/pdf")
    response = as_role("therapist").post(url_for(needs_clearance), post_data(note="", letter=letter))
    assert response.status_code == 302
    clearance = Clearance.objects.get()
    assert clearance.letter and "Cora" not in clearance.letter.name  # stored under a neutral name
    url = reverse("clearance_letter", args=[clearance.pk])
    for role in ("therapist", "owner"):
        before = AuditEvent.objects.filter(action="view", detail__page="clearance letter").count()
        response = as_role(role).get(url)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/pdf"
        assert b"".join(response.streaming_content) == PDF
        assert AuditEvent.objects.filter(action="view", detail__page="clearance letter").count() == before + 1
    assert as_role("front_desk").get(url).status_code == 403
    assert as_role("therapist2").get(url).status_code == 404
    assert as_role("client").get(url).status_code == 403
    assert as_role("anonymous").get(url).status_code == 302
    detail = as_role("therapist").get(reverse("client_detail", args=[client_record.pk])).content.decode()
    assert url in detail


def test_png_letter_is_accepted(as_role, needs_clearance):
    letter = SimpleUploadedFile("scan.PNG", PNG, content_type="image/png")
    as_role("owner").post(url_for(needs_clearance), post_data(letter=letter))
    clearance = Clearance.objects.get()
    response = as_role("owner").get(reverse("clearance_letter", args=[clearance.pk]))
    assert response["Content-Type"] == "image/png"


def test_clearance_without_letter_has_no_letter_page(as_role, needs_clearance):
    as_role("therapist").post(url_for(needs_clearance), post_data())
    clearance = Clearance.objects.get()
    assert as_role("therapist").get(reverse("clearance_letter", args=[clearance.pk])).status_code == 404


def test_script_in_the_note_is_escaped(as_role, client_record, needs_clearance):
    as_role("therapist").post(url_for(needs_clearance), post_data(note=SCRIPT, given_by=SCRIPT))
    assert Clearance.objects.get().note == SCRIPT
    for url in (url_for(needs_clearance), reverse("client_detail", args=[client_record.pk])):
        html = as_role("therapist").get(url).content.decode()
        assert SCRIPT not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Also when the form comes back with a mistake.
    response = as_role("therapist").post(url_for(needs_clearance), post_data(note=SCRIPT, given_by=""))
    html = response.content.decode()
    assert SCRIPT not in html and "&lt;script&gt;" in html


def test_an_uploaded_letter_is_readable_by_the_clinic_user_only(as_role, needs_clearance, settings):
    # Issue 11, finding 6: uploads were created 0644, readable by every account on the server.
    import stat
    from pathlib import Path

    letter = SimpleUploadedFile("letter.pdf", PDF, content_type="application/pdf")
    response = as_role("therapist").post(url_for(needs_clearance), post_data(note="", letter=letter))
    assert response.status_code == 302
    path = Path(Clearance.objects.get().letter.path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    folder = path.parent
    while folder != Path(settings.MEDIA_ROOT).parent:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        folder = folder.parent
