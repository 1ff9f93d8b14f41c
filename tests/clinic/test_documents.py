"""The PDF documents: referral letter, discharge summary and home programme, through their pages."""

from __future__ import annotations

import re
import zlib

import pytest
from django.urls import reverse

from backcare.clinic import documents
from backcare.clinic.models import AuditEvent
from backcare.clinic.services import courses, outcomes, referrals, sessions
from clinic_fixtures import login

# --- Reading text back out of a WeasyPrint PDF, without a PDF library ---------------------------------------
# WeasyPrint writes text as glyph ids in hex strings (Tj/TJ) with a ToUnicode CMap per font, and keeps most objects
# in compressed object streams. This reads exactly that, which is all these tests need.


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes | None]]:
    found: dict[int, tuple[bytes, bytes | None]] = {}
    header = re.compile(rb"(\d+) 0 obj")
    position = 0
    while m := header.search(data, position):
        end = data.index(b"endobj", m.end())
        body, stream = data[m.end() : end], None
        s = re.search(rb"stream\r?\n", body)
        if s:  # read exactly /Length bytes: compressed data may contain anything, "endobj" included
            head = body[: s.start()]
            start = m.end() + s.end()
            raw = data[start : start + int(re.search(rb"/Length (\d+)", head).group(1))]
            stream = zlib.decompress(raw) if b"/FlateDecode" in head else raw
            body = head
            end = data.index(b"endobj", start + len(raw))
        found[int(m.group(1))] = (body, stream)
        position = end
    for body, stream in list(found.values()):
        if b"/ObjStm" in body and stream is not None:
            count = int(re.search(rb"/N (\d+)", body).group(1))
            first = int(re.search(rb"/First (\d+)", body).group(1))
            numbers = [int(x) for x in stream[:first].split()]
            pairs = list(zip(numbers[0::2], numbers[1::2], strict=True))[:count]
            for i, (num, offset) in enumerate(pairs):
                end = pairs[i + 1][1] if i + 1 < len(pairs) else len(stream) - first
                found[num] = (stream[first + offset : first + end], None)
    return found


def _cmap(stream: bytes) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", stream, re.S):
        for src, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            mapping[src.decode().lower()] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", stream, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            start = int(dst, 16)
            for k, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[f"{code:0{len(lo)}x}"] = chr(start + k)
    return mapping


def pdf_text(data: bytes) -> str:
    """The text drawn in a WeasyPrint PDF, whitespace collapsed."""
    assert data.startswith(b"%PDF-")
    objects = _objects(data)
    fonts: dict[str, dict[str, str]] = {}
    for body, _ in objects.values():
        for inner in [body, *re.findall(rb"/Font\s*<<(.*?)>>", body, re.S)]:
            ref = re.search(rb"/Font (\d+) 0 R", inner)
            table = objects.get(int(ref.group(1)), (b"", None))[0] if ref else inner
            for name, num in re.findall(rb"/([\w.+-]+) (\d+) 0 R", table):
                uni = re.search(rb"/ToUnicode (\d+) 0 R", objects.get(int(num), (b"", None))[0])
                if uni and objects.get(int(uni.group(1)), (b"", None))[1]:
                    fonts[name.decode()] = _cmap(objects[int(uni.group(1))][1])
    pieces: list[str] = []
    for _, stream in objects.values():
        if stream is None or b"Tf" not in stream:
            continue
        font: dict[str, str] = {}
        for m in re.finditer(rb"/([\w.+-]+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj", stream, re.S):
            if m.group(1):
                font = fonts.get(m.group(1).decode(), {})
                continue
            hexes = re.findall(rb"<([0-9a-fA-F]*)>", m.group(2)) if m.group(2) is not None else [m.group(3)]
            pieces.append(
                "".join(font.get(h.decode().lower()[i : i + 4], "") for h in hexes for i in range(0, len(h), 4))
            )
    return re.sub(r"\s+", " ", " ".join(pieces))


def test_pdf_text_reader_reads_what_weasyprint_wrote():
    text = pdf_text(documents.html_to_pdf("<h1>Hello Cora</h1><p>Line one &lt;b&gt; and <b>bold</b> words</p>"))
    assert "Hello Cora" in text and "Line one <b> and bold words" in text


# --- Data --------------------------------------------------------------------------------------------------


def ticks(n: int) -> list[bool]:
    return [True] * n + [False] * (24 - n)


def run_sessions(course, therapist, pains, response="relaxed"):
    for before, after in pains:
        update = sessions.health_update(course, staff=therapist, new_findings=[], pain_now=before)
        sessions.record_session(
            course,
            staff=therapist,
            health_update=update,
            techniques=["swedish_relaxation"],
            pressure=2,
            body_chart={"lower_back": {"treated": True}},
            pain_before=before,
            pain_after=after,
            response=response,
        )


@pytest.fixture
def patient(client_record):
    client_record.physician_name = "Dr Ada Jones"
    client_record.physician_address = "The Surgery\n1 High Street\nTownsville"
    client_record.save()
    client_record.clinic.address = "2 Clinic Road, Townsville"
    client_record.clinic.phone = "01234 567890"
    client_record.clinic.save()
    return client_record


@pytest.fixture
def course(patient, therapist, screen_client):
    """A course on precautions (anticoagulants, bruise on the left thigh), with 2 sessions and scores."""
    screen_client(patient, "anticoagulants", {"code": "bruise", "region": "thigh_left"}, pain__intensity=6)
    course = courses.start_course(patient, staff=therapist, techniques=["swedish_relaxation"], sessions_planned=3)
    outcomes.record_rmdq(patient, ticked=ticks(10), timepoint="baseline", course=course, by=therapist.user)
    run_sessions(course, therapist, [(6, 5), (5, 3)])
    return course


@pytest.fixture
def referral(patient, therapist, screen_client):
    screening = screen_client(patient, "dvt_history")
    return referrals.create_referral(
        patient,
        staff=therapist,
        urgency="routine",
        reason="Past blood clot: please confirm massage is safe. <script>alert(1)</script>",
        screening=screening,
    )


# --- Referral letter ---------------------------------------------------------------------------------------


def test_referral_letter_content(referral, patient, therapist):
    pdf = documents.referral_letter_pdf(referral)
    text = pdf_text(pdf.content)
    assert "Test Clinic" in text and "2 Clinic Road, Townsville" in text
    assert "Dr Ada Jones" in text and "1 High Street" in text
    assert "Cora Client, born 14 March 1985" in text
    assert "Routine" in text
    assert "Past blood clot: please confirm massage is safe." in text
    assert "Past blood clot (DVT or pulmonary embolism)" in text
    assert "A history of venous thromboembolism raises the risk of recurrence" in text
    assert "Theo Therapist" in text
    assert "from a massage therapist. It is not a diagnosis" in text
    assert "No course of treatment has started." in text
    assert pdf.filename.startswith("referral-letter-client-cora-") and pdf.filename.endswith(".pdf")


def test_referral_letter_escapes_what_was_typed(referral):
    html = documents.referral_letter_html(referral)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # ...and the PDF shows the characters as typed, as text.
    assert "<script>alert(1)</script>" in pdf_text(documents.referral_letter_pdf(referral).content)


def test_referral_letter_with_course_scores_and_precautions(course, patient, therapist):
    referral = referrals.create_referral(
        patient, staff=therapist, urgency="urgent", reason="Pain spreading to the leg.", course=course
    )
    text = pdf_text(documents.referral_letter_pdf(referral).content)
    assert "Urgent (within 24 hours)" in text
    assert "2 of 3 planned sessions completed" in text
    assert "Pain fell from 6 to 3 (3 points, 50%): a meaningful improvement." in text
    assert "Regions avoided: Left thigh." in text
    assert "Pressure no more than 3 of 5 (moderate)." in text


def test_referral_letter_page(referral, client, patient, therapist, therapist2, owner, front_desk):
    url = reverse("referral_letter_pdf", args=[referral.pk])
    response = login(client, therapist.user).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert re.fullmatch(
        r'attachment; filename="referral-letter-client-cora-\d{4}-\d\d-\d\d\.pdf"', response["Content-Disposition"]
    )
    assert "Past blood clot" in pdf_text(response.content)
    event = AuditEvent.objects.get(action="export", detail__document="referral_letter")
    assert event.client == patient and event.user == therapist.user and event.object_id == str(referral.pk)
    assert login(client, owner.user).get(url).status_code == 200
    assert login(client, front_desk.user).get(url).status_code == 403
    assert login(client, therapist2.user).get(url).status_code == 404
    assert login(client, patient.user).get(url).status_code in (403, 404)
    assert (
        login(client, therapist.user).get(reverse("referral_letter_pdf", args=[referral.pk + 100])).status_code == 404
    )
    assert AuditEvent.objects.filter(action="export").count() == 2


def test_shared_therapist_may_download(referral, client, patient, owner, therapist2):
    from backcare.clinic.services.clients import share_client

    share_client(patient, therapist=therapist2, staff=owner)
    assert login(client, therapist2.user).get(reverse("referral_letter_pdf", args=[referral.pk])).status_code == 200


# --- Discharge summary -------------------------------------------------------------------------------------


def test_discharge_summary(course, patient, therapist):
    outcomes.record_rmdq(patient, ticked=ticks(4), timepoint="discharge", course=course, by=therapist.user)
    referrals.create_referral(
        patient, staff=therapist, urgency="routine", reason="Review of medication.", course=course
    )
    courses.end_course(course, status="completed", staff=therapist, note="Goals met.")
    html = documents.discharge_html(course)
    assert 'src="data:image/svg+xml;base64,' in html
    pdf = documents.discharge_pdf(course)
    text = pdf_text(pdf.content)
    assert "Discharge summary: Cora Client" in text
    assert "2 of 3 planned sessions completed" in text
    assert "Pain fell from 6 to 3 (3 points, 50%): a meaningful improvement." in text
    assert "Roland-Morris score fell from 10 to 4 (6 points, 60%): a meaningful improvement." in text
    assert "Review of medication." in text
    assert "Swedish / relaxing massage 6 5 Relaxed" in text
    assert "Staying active and exercise" in text
    assert "Goals met." in text
    # The chart is drawn in the PDF, with its own labels (SVG text is placed glyph by glyph, so ignore spaces).
    assert "Meaningfulchange:pain4orless" in text.replace(" ", "")
    assert pdf.filename.startswith("discharge-summary-client-cora-")


def test_discharge_prompts_when_not_better(patient, therapist, screen_client):
    screen_client(patient, pain__intensity=5)
    course = courses.start_course(patient, staff=therapist, sessions_planned=2, reassess_after=1)
    run_sessions(course, therapist, [(5, 5), (5, 5)], response="guarding")
    text = pdf_text(documents.discharge_pdf(course).content)
    assert "Progress summary (course in progress)" in text
    assert "pain is not meaningfully better: refer the client to their physician" in text
    assert "guarded against pressure at sessions 1, 2" in text
    assert documents.discharge_pdf(course).filename.startswith("progress-summary-")


def test_discharge_page_permissions(course, client, patient, therapist, therapist2, owner, front_desk):
    url = reverse("discharge_pdf", args=[course.pk])
    response = login(client, therapist.user).get(url)
    assert response.status_code == 200 and response.content.startswith(b"%PDF")
    assert response["Content-Disposition"].startswith('attachment; filename="progress-summary-client-cora-')
    assert AuditEvent.objects.filter(action="export", detail__document="discharge_summary", client=patient).exists()
    assert login(client, owner.user).get(url).status_code == 200
    assert login(client, front_desk.user).get(url).status_code == 403
    assert login(client, therapist2.user).get(url).status_code == 404
    assert login(client, patient.user).get(url).status_code in (403, 404)


# --- Home programme ----------------------------------------------------------------------------------------


def test_home_programme(course, patient, therapist):
    courses.update_course(course, staff=therapist, home_programme={"exercise": "Walk 20 minutes & stretch <daily>."})
    pdf = documents.home_programme_pdf(course)
    text = pdf_text(pdf.content)
    assert "Your home programme" in text and "For Cora Client" in text
    assert "Walk 20 minutes & stretch <daily>." in text
    assert "Some soreness or aching for up to about 36 hours" in text
    assert "Get help straight away" in text
    assert "call emergency services on 999" in " ".join(text.split())  # the clinic's own number (GB by default)
    assert "&lt;" not in text


def test_home_programme_gives_the_clinics_own_emergency_number(course, therapist):
    clinic = course.client.clinic
    clinic.country, clinic.emergency_number = "DE", ""
    clinic.save()
    text = " ".join(pdf_text(documents.home_programme_pdf(course).content).split())
    assert "call emergency services on 112" in text and "999" not in text


def test_home_programme_page_permissions(
    course, client, patient, therapist, therapist2, owner, front_desk, make_client, screen_client
):
    url = reverse("home_programme_pdf", args=[course.pk])
    for user, status in (
        (therapist.user, 200),
        (owner.user, 200),
        (patient.user, 200),
        (front_desk.user, 403),
        (therapist2.user, 404),
    ):
        assert login(client, user).get(url).status_code == status, user
    events = AuditEvent.objects.filter(action="export", detail__document="home_programme", client=patient)
    assert events.count() == 3
    assert events.filter(user=patient.user).exists()
    # Another client may not download this client's programme.
    other = make_client(therapist, username="otto", first_name="Otto")
    assert login(client, other.user).get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302
