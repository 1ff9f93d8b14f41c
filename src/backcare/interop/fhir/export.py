"""A client's whole record as one FHIR R4 Bundle (docs/fhir.md has the mapping).

`patient_bundle(client)` reads the database and nothing else: no request, no audit (callers record the export, as
they know who asked and why). Every entry's fullUrl is a `urn:uuid:` derived with uuid5 from what the record is, so
exporting the same record twice gives the same bundle; entries refer to each other by those fullUrls. The bundle is
validated (fhirclient's strict R4 parse plus our own checks) before it is returned.
"""

from __future__ import annotations

import base64
import mimetypes
from datetime import datetime
from functools import cached_property
from pathlib import PurePath
from typing import Any

from backcare.clinic.models import (
    Clearance,
    Client,
    Clinic,
    Course,
    Intake,
    Outcome,
    Referral,
    Screening,
    StaffMember,
    TreatmentSession,
)
from backcare.clinical.instruments import MATCHED_CARE_TEXT, score_start_back
from backcare.clinical.vocabulary import (
    ADJUNCTS,
    DECISION_TEXT,
    PRESSURE_SCALE,
    REFERRAL_TEXT,
    REGIONS,
    TECHNIQUES,
)
from backcare.interop.fhir import codes
from backcare.interop.fhir.questionnaires import (
    SB_GROUPS,
    ItemSpec,
    QuestionnaireSpec,
    all_specs,
    intake_spec,
    questionnaire_full_url,
    questionnaire_json,
    rmdq_spec,
    start_back_spec,
)
from backcare.interop.fhir.validation import Problem, validate_bundle

BUNDLE_TYPES = ("collection", "searchset", "transaction", "batch")


class ExportInvalid(RuntimeError):
    """The bundle made from the database does not validate: a bug in the mapping, never the user's doing."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.location}: {p.message}" for p in problems[:10]))
        self.problems = problems


def client_identifier(client: Client) -> str:
    """The client's Backcare identifier (Patient.identifier with system codes.SID_CLIENT): a UUID from the record's
    id and creation time, so it stays the same for the client and differs between installations."""
    return codes.uid("client", client.pk, client.created_at.isoformat())


def _number(value: Any) -> int | float | None:
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return int(number) if number.is_integer() else number


class _Export:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.clinic: Clinic = client.clinic
        self.tz = self.clinic.zone
        self.pid = client_identifier(client)
        self.staff: dict[int, StaffMember] = {}
        self.rooms: dict[int, Any] = {}
        self.resources: list[tuple[str, dict[str, Any]]] = []

    # -- references ----------------------------------------------------------------------------------------------

    def url(self, kind: str, pk: Any) -> str:
        return codes.urn(self.pid, kind, pk)

    def add(self, full_url: str, resource: dict[str, Any]) -> None:
        self.resources.append((full_url, _with_id(full_url, resource)))

    @property
    def patient(self) -> dict[str, str]:
        return {"reference": f"urn:uuid:{self.pid}", "display": self.client.full_name}

    @property
    def organization(self) -> dict[str, str]:
        return {"reference": codes.urn(codes.SID_CLINIC, self.clinic.pk), "display": self.clinic.name}

    def practitioner(self, staff: StaffMember | None) -> dict[str, str] | None:
        if staff is None:
            return None
        self.staff[staff.pk] = staff
        return {"reference": codes.urn(codes.SID_STAFF, staff.pk), "display": staff.display_name}

    def by_user(self, user: Any, *, patient_allowed: bool) -> dict[str, str] | None:
        """Who a user is in the bundle: a Practitioner for staff, the Patient for the client themself."""
        if user is None:
            return None
        staff = StaffMember.objects.filter(user=user).first()
        if staff is not None:
            return self.practitioner(staff)
        if patient_allowed and user.pk == self.client.user_id:
            return self.patient
        return None

    def when(self, value: datetime | None) -> str | None:
        return value.astimezone(self.tz).isoformat(timespec="seconds") if value is not None else None

    def ref(self, kind: str, pk: Any, display: str | None = None) -> dict[str, str]:
        out = {"reference": self.url(kind, pk)}
        if display:
            out["display"] = display
        return out

    # -- the record ------------------------------------------------------------------------------------------------

    def build(self, bundle_type: str) -> dict[str, Any]:
        client = self.client
        intakes = list(client.intakes.order_by("started_at", "id"))
        screenings = list(client.screenings.select_related("intake", "created_by").order_by("created_at", "id"))
        courses = list(client.courses.select_related("therapist", "screening").order_by("started_at", "id"))
        sessions = list(
            TreatmentSession.objects.filter(course__client=client)
            .select_related("therapist", "course", "health_update")
            .order_by("course__started_at", "course_id", "number")
        )
        outcomes = list(client.outcomes.select_related("recorded_by").order_by("recorded_at", "id"))
        referrals = list(client.referrals.select_related("created_by", "screening").order_by("created_at", "id"))
        clearances = list(client.clearances.select_related("recorded_by", "screening").order_by("recorded_at", "id"))
        from backcare.scheduling.models import Appointment

        appointments = list(
            Appointment.objects.filter(client=client)
            .select_related("therapist", "room", "service", "course")
            .order_by("starts_at", "id")
        )
        self.practitioner(client.therapist)
        for intake in intakes:
            self.intake(intake)
        for outcome in outcomes:
            self.outcome(outcome, sessions)
        for screening in screenings:
            self.screening(screening)
        for course in courses:
            self.course(course, [s for s in sessions if s.course_id == course.pk])
        for session in sessions:
            self.session(session)
        for appointment in appointments:
            self.appointment(appointment)
        for referral in referrals:
            self.referral(referral)
        for clearance in clearances:
            self.clearance(clearance)
        self.billing(client)

        head: list[tuple[str, dict[str, Any]]] = [(f"urn:uuid:{self.pid}", self.patient_json())]
        head.append((self.organization["reference"], self.organization_json()))
        for pk in sorted(self.staff):
            head.append((codes.urn(codes.SID_STAFF, pk), self.practitioner_json(self.staff[pk])))
        for pk in sorted(self.rooms):
            head.append((codes.urn(codes.SID_ROOM, pk), self.location_json(self.rooms[pk])))
        head = [(url, _with_id(url, resource)) for url, resource in head]
        for spec in all_specs():
            head.append((questionnaire_full_url(spec), questionnaire_json(spec)))
        return self.bundle(head + self.resources, bundle_type)

    def bundle(self, entries: list[tuple[str, dict[str, Any]]], bundle_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resourceType": "Bundle",
            "id": codes.uid(self.pid, "bundle", bundle_type),
            "type": bundle_type,
        }
        if bundle_type == "searchset":
            out["total"] = 1
        rows = []
        for full_url, resource in entries:
            row: dict[str, Any] = {"fullUrl": full_url, "resource": resource}
            if bundle_type == "searchset":
                row["search"] = {"mode": "match" if resource["resourceType"] == "Patient" else "include"}
            if bundle_type in ("transaction", "batch"):
                row["request"] = {"method": "POST", "url": resource["resourceType"]}
            rows.append(row)
        out["entry"] = rows
        return out

    # -- who and where ---------------------------------------------------------------------------------------------

    def patient_json(self) -> dict[str, Any]:
        c = self.client
        identifiers = [{"use": "usual", "system": codes.SID_CLIENT, "value": self.pid}]
        from backcare.interop.models import ExternalIdentifier

        for ext in ExternalIdentifier.objects.filter(client=c).order_by("id"):
            identifiers.append({"use": "secondary", "system": ext.system, "value": ext.value})
        out: dict[str, Any] = {"resourceType": "Patient", "identifier": identifiers, "active": True}
        gp = self.gp_json()
        if gp:
            out["contained"] = [gp]
        out["name"] = [{"use": "official", "text": c.full_name, "family": c.last_name, "given": [c.first_name]}]
        telecom = []
        if c.phone:
            telecom.append({"system": "phone", "value": c.phone})
        if c.email:
            telecom.append({"system": "email", "value": c.email})
        if telecom:
            out["telecom"] = telecom
        out["gender"] = c.sex if c.sex in ("female", "male", "other", "unknown") else "unknown"
        out["birthDate"] = c.date_of_birth.isoformat()
        if c.address.strip():
            out["address"] = [_address(c.address)]
        if gp:
            out["generalPractitioner"] = [{"reference": "#gp", "display": c.physician_name or "General practitioner"}]
        out["managingOrganization"] = self.organization
        return out

    def gp_json(self) -> dict[str, Any] | None:
        c = self.client
        if not (c.physician_name.strip() or c.physician_address.strip()):
            return None
        gp: dict[str, Any] = {"resourceType": "Practitioner", "id": "gp"}
        if c.physician_name.strip():
            gp["name"] = [{"text": c.physician_name}]
        if c.physician_address.strip():
            gp["address"] = [_address(c.physician_address)]
        return gp

    def organization_json(self) -> dict[str, Any]:
        clinic = self.clinic
        out: dict[str, Any] = {
            "resourceType": "Organization",
            "identifier": [{"system": codes.SID_CLINIC, "value": codes.uid("clinic", clinic.pk)}],
            "active": True,
            "name": clinic.name,
        }
        telecom = [{"system": "phone", "value": clinic.phone, "use": "work"}] if clinic.phone else []
        if clinic.email:
            telecom.append({"system": "email", "value": clinic.email, "use": "work"})
        if telecom:
            out["telecom"] = telecom
        if clinic.address.strip():
            out["address"] = [_address(clinic.address)]
        return out

    def practitioner_json(self, staff: StaffMember) -> dict[str, Any]:
        name: dict[str, Any] = {"text": staff.display_name}
        user = staff.user
        if user.last_name:
            name["family"] = user.last_name
        if user.first_name:
            name["given"] = [user.first_name]
        return {
            "resourceType": "Practitioner",
            "identifier": [{"system": codes.SID_STAFF, "value": codes.uid("staff", staff.pk)}],
            "active": staff.active,
            "name": [name],
        }

    def location_json(self, room: Any) -> dict[str, Any]:
        return {
            "resourceType": "Location",
            "identifier": [{"system": codes.SID_ROOM, "value": codes.uid("room", room.pk)}],
            "status": "active" if room.active else "inactive",
            "name": room.name,
            "mode": "instance",
            "managingOrganization": self.organization,
        }

    # -- intake ------------------------------------------------------------------------------------------------

    def intake(self, intake: Intake) -> None:
        spec = intake_spec()
        draft = intake.status == Intake.Status.DRAFT
        out: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
        extensions: list[dict[str, Any]] = []
        if intake.review_note:
            extensions.append({"url": codes.EXT_REVIEW_NOTE, "valueString": intake.review_note})
        if intake.reviewed_at is not None:
            extensions.append({"url": codes.EXT_REVIEWED_AT, "valueDateTime": self.when(intake.reviewed_at)})
        if extensions:
            out["extension"] = extensions
        out.update(
            {
                "questionnaire": spec.canonical,
                "status": "in-progress" if draft else "completed",
                "subject": self.patient,
                "authored": self.when(intake.submitted_at or intake.updated_at),
            }
        )
        reviewer = self.practitioner(intake.reviewed_by)
        if reviewer is not None:
            out["author"] = reviewer
        items = answer_items(spec.items, intake.answers or {})
        if items:
            out["item"] = items
        self.add(self.url("intake", intake.pk), out)

    # -- outcomes --------------------------------------------------------------------------------------------------

    def outcome(self, outcome: Outcome, sessions: list[TreatmentSession]) -> None:
        if outcome.instrument == Outcome.Instrument.START_BACK:
            self.start_back(outcome)
        elif outcome.instrument == Outcome.Instrument.RMDQ:
            self.rmdq(outcome)
        else:
            self.pain(outcome, sessions)

    def _response(self, outcome: Outcome, spec: QuestionnaireSpec, items: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {"resourceType": "QuestionnaireResponse"}
        out["extension"] = [{"url": codes.EXT_TIMEPOINT, "valueCode": outcome.timepoint}]
        out.update(
            {
                "questionnaire": spec.canonical,
                "status": "completed",
                "subject": self.patient,
                "authored": self.when(outcome.recorded_at),
            }
        )
        author = self.by_user(outcome.recorded_by, patient_allowed=True)
        if author is not None:
            out["author"] = author
        out["item"] = items
        return out

    def start_back(self, outcome: Outcome) -> None:
        answers = outcome.answers or {}
        agree, bother = answers.get("agree"), answers.get("bothersomeness")
        try:  # stored answers may be missing or malformed: the scorer then raises, as caught below
            score = score_start_back(agree, bother)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            score = None
        items: list[dict[str, Any]] = []
        spec = start_back_spec()
        if isinstance(agree, list):
            for i, value in enumerate(agree[:8], 1):
                code = "agree" if value else "disagree"
                items.append(_answered(spec.index[f"sb_{i}"], [{"valueCoding": _option(spec.index[f"sb_{i}"], code)}]))
        if isinstance(bother, str) and bother in spec.index["sb_9"].codes:
            items.append(_answered(spec.index["sb_9"], [{"valueCoding": _option(spec.index["sb_9"], bother)}]))
        items.append(_answered(spec.index["total"], [{"valueInteger": outcome.score}]))
        group = score.group if score is not None else answers.get("group")
        if score is not None:
            items.append(_answered(spec.index["psychosocial"], [{"valueInteger": score.psychosocial}]))
        if group in SB_GROUPS:
            items.append(_answered(spec.index["group"], [{"valueCoding": _option(spec.index["group"], group)}]))
        qr_url = self.url("outcome", outcome.pk)
        self.add(qr_url, self._response(outcome, spec, items))
        if group not in SB_GROUPS:
            return
        lines = [f"Total {outcome.score} of 9"]
        if score is not None:
            lines.append(f"psychosocial subscale {score.psychosocial} of 5")
            lines.append(f"matched care: {MATCHED_CARE_TEXT[score.care]}")
        self.add(
            self.url("outcome-risk", outcome.pk),
            {
                "resourceType": "RiskAssessment",
                "status": "final",
                "code": codes.backcare_concept("start-back"),
                "subject": self.patient,
                "occurrenceDateTime": self.when(outcome.recorded_at),
                "basis": [{"reference": qr_url}],
                "prediction": [
                    {
                        "outcome": codes.concept(codes.CS_SB_GROUP, group, SB_GROUPS[group]),
                        "qualitativeRisk": codes.concept(codes.RISK_PROBABILITY, codes.SB_RISK[group]),
                    }
                ],
                "note": [{"text": "; ".join(lines) + "."}],
            },
        )

    def rmdq(self, outcome: Outcome) -> None:
        spec = rmdq_spec()
        ticked = (outcome.answers or {}).get("ticked")
        items = []
        if isinstance(ticked, list):
            items = [_answered(spec.index[f"rmdq_{i}"], [{"valueBoolean": bool(t)}]) for i, t in enumerate(ticked, 1)]
        items.append(_answered(spec.index["score"], [{"valueInteger": outcome.score}]))
        qr_url = self.url("outcome", outcome.pk)
        self.add(qr_url, self._response(outcome, spec, items))
        observation = self._observation(outcome, codes.backcare_concept("rmdq-score"))
        observation["derivedFrom"] = [{"reference": qr_url}]
        self.add(self.url("outcome-score", outcome.pk), observation)

    def pain(self, outcome: Outcome, sessions: list[TreatmentSession]) -> None:
        text = f"Pain (0-10), {outcome.get_timepoint_display().lower()}"
        if outcome.session_id is not None:
            # A session records pain before and then after: its first pain score is the one before, if it had one.
            first = min(
                (o for o in self.pain_outcomes if o.session_id == outcome.session_id),
                key=lambda o: (o.recorded_at, o.pk),
            )
            session = next((s for s in sessions if s.pk == outcome.session_id), None)
            before = first.pk == outcome.pk and session is not None and session.pain_before is not None
            text = f"Pain (0-10) {'before' if before else 'after'} the session"
        code = {"coding": [codes.coding(codes.LOINC, codes.LOINC_PAIN_NRS, codes.LOINC_PAIN_NRS_DISPLAY)], "text": text}
        self.add(self.url("outcome", outcome.pk), self._observation(outcome, code))

    @cached_property
    def pain_outcomes(self) -> list[Outcome]:
        return list(self.client.outcomes.filter(instrument=Outcome.Instrument.PAIN))

    def _observation(self, outcome: Outcome, code: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "resourceType": "Observation",
            "extension": [{"url": codes.EXT_TIMEPOINT, "valueCode": outcome.timepoint}],
        }
        if outcome.course_id is not None:
            out["basedOn"] = [self.ref("course", outcome.course_id)]
        if outcome.session_id is not None:
            out["partOf"] = [self.ref("session", outcome.session_id)]
        out.update(
            {
                "status": "final",
                "category": [codes.concept(codes.OBSERVATION_CATEGORY, "survey", "Survey")],
                "code": code,
                "subject": self.patient,
                "effectiveDateTime": self.when(outcome.recorded_at),
            }
        )
        performer = self.by_user(outcome.recorded_by, patient_allowed=True)
        if performer is not None:
            out["performer"] = [performer]
        out["valueInteger"] = outcome.score
        if outcome.interpretation:
            out["note"] = [{"text": outcome.interpretation}]
        return out

    # -- screenings --------------------------------------------------------------------------------------------

    def screening(self, screening: Screening) -> None:
        from backcare.clinic.documents import precautions_lines

        result = screening.result or {}
        predictions: list[dict[str, Any]] = [
            {
                "outcome": codes.concept(codes.CS_DECISION, screening.decision, DECISION_TEXT.get(screening.decision)),
                "rationale": f"Referral: {REFERRAL_TEXT.get(screening.referral, screening.referral)}",
            }
        ]
        for finding in result.get("findings", []):
            rule = str(finding.get("rule", "")) or "unknown"
            title = str(finding.get("title") or finding.get("summary") or rule)
            rationale = str(finding.get("rationale") or finding.get("summary") or title)
            decision = DECISION_TEXT.get(finding.get("decision", ""), "")
            predictions.append(
                {
                    "outcome": codes.concept(codes.CS_RULE, rule, title),
                    "rationale": f"{decision} {rationale}".strip(),
                }
            )
        out: dict[str, Any] = {
            "resourceType": "RiskAssessment",
            "extension": [{"url": codes.EXT_SCREENING_KIND, "valueCode": screening.kind}],
            "status": "final",
            "method": {"text": f"Backcare rule base {screening.rule_base_version} ({screening.rule_base_digest})"},
            "code": codes.concept(
                codes.CS_CONCEPT, "screening", codes.CONCEPTS["screening"], text=screening.get_kind_display()
            ),
            "subject": self.patient,
            "occurrenceDateTime": self.when(screening.created_at),
        }
        used = screening.treatment_sessions.first()
        if used is not None:
            out["parent"] = self.ref("session", used.pk)
        performer = self.by_user(screening.created_by, patient_allowed=False)
        if performer is not None:
            out["performer"] = performer
        if screening.intake_id is not None:
            out["basis"] = [self.ref("intake", screening.intake_id)]
        out["prediction"] = predictions
        lines = precautions_lines(result.get("precautions"))
        if lines:
            out["mitigation"] = " ".join(lines)
        self.add(self.url("screening", screening.pk), out)

    # -- courses and sessions ----------------------------------------------------------------------------------

    def course(self, course: Course, sessions: list[TreatmentSession]) -> None:
        from backcare.clinic.documents import HOME_PROGRAMME_HEADINGS

        status = {"active": "active", "completed": "completed"}.get(course.status, "revoked")
        activity_status = {"active": "in-progress", "completed": "completed"}.get(course.status, "stopped")
        goal_url = self.url("goal", course.pk)
        if course.goals.strip():
            self.add(
                goal_url,
                {
                    "resourceType": "Goal",
                    "lifecycleStatus": {"active": "active", "completed": "completed"}.get(course.status, "cancelled"),
                    "description": {"text": course.goals},
                    "subject": self.patient,
                    "startDate": course.started_at.astimezone(self.tz).date().isoformat(),
                },
            )
        sessions_activity: dict[str, Any] = {
            "detail": {
                "code": codes.backcare_concept("massage-session"),
                "status": activity_status,
                "scheduledTiming": {
                    "repeat": {
                        "count": course.sessions_planned,
                        "boundsDuration": {"value": course.weeks, "unit": "weeks", "system": codes.UCUM, "code": "wk"},
                    }
                },
                "description": f"{course.sessions_planned} sessions over {course.weeks} weeks; reassessment after "
                f"session {course.reassess_after}.",
            }
        }
        if sessions:
            sessions_activity["outcomeReference"] = [self.ref("session", s.pk) for s in sessions]
        activities = [sessions_activity]
        for technique in course.techniques or []:
            activities.append(
                {
                    "detail": {
                        "code": codes.concept(codes.CS_TECHNIQUE, technique, TECHNIQUES.get(technique)),
                        "status": activity_status,
                    }
                }
            )
        for adjunct in course.adjuncts or []:
            activities.append(
                {
                    "detail": {
                        "code": codes.concept(codes.CS_ADJUNCT, adjunct, ADJUNCTS.get(adjunct)),
                        "status": activity_status,
                    }
                }
            )
        for key, text in (course.home_programme or {}).items():
            if str(text).strip():
                heading = HOME_PROGRAMME_HEADINGS.get(key, str(key).replace("_", " ").capitalize())
                activities.append(
                    {
                        "detail": {
                            "code": codes.concept(codes.CS_HOME, str(key), heading),
                            "status": activity_status,
                            "description": str(text),
                        }
                    }
                )
        period = {"start": self.when(course.started_at)}
        if course.ended_at is not None:
            period["end"] = self.when(course.ended_at)
        out: dict[str, Any] = {
            "resourceType": "CarePlan",
            "status": status,
            "intent": "plan",
            "category": [codes.backcare_concept("massage-course")],
            "title": "Course of massage for back pain",
            "description": sessions_activity["detail"]["description"],
            "subject": self.patient,
            "period": period,
            "created": self.when(course.started_at),
        }
        author = self.practitioner(course.therapist)
        if author is not None:
            out["author"] = author
        out["supportingInfo"] = [self.ref("screening", course.screening_id)]
        if course.goals.strip():
            out["goal"] = [{"reference": goal_url}]
        out["activity"] = activities
        notes = [f"Status in Backcare: {course.get_status_display()}."]
        if course.end_note.strip():
            notes.append(f"End of course: {course.end_note}")
        out["note"] = [{"text": n} for n in notes]
        self.add(self.url("course", course.pk), out)

    def session(self, session: TreatmentSession) -> None:
        notes: list[str] = []
        for label, text in (
            ("Subjective", session.subjective),
            ("Objective", session.objective),
            ("Assessment", session.assessment),
            ("Plan", session.plan_note),
            ("Aftercare advice", session.aftercare),
        ):
            if text.strip():
                notes.append(f"{label}: {text}")
        if session.techniques:
            notes.append("Techniques: " + ", ".join(TECHNIQUES.get(t, t) for t in session.techniques) + ".")
        if session.pressure is not None:
            notes.append(f"Pressure: {session.pressure} of 5 ({PRESSURE_SCALE.get(session.pressure, '')}).")
        if session.response:
            notes.append(f"Response: {session.get_response_display()}.")
        chart = []
        for region, marks in (session.body_chart or {}).items():
            if not isinstance(marks, dict):
                continue
            parts = ["treated" if marks.get("treated") else "not treated"]
            if marks.get("tension") is not None:
                parts.append(f"tension {marks['tension']} of 3")
            if marks.get("pain") is not None:
                parts.append(f"pain {marks['pain']} of 10")
            chart.append(f"{REGIONS.get(region, region)}: {', '.join(parts)}")
        if chart:
            notes.append("Body chart: " + "; ".join(chart) + ".")
        if session.deviations:
            notes.append("Beyond the screening's precautions: " + "; ".join(map(str, session.deviations)) + ".")
        if session.deviation_reason.strip():
            notes.append(f"Reason for going beyond the precautions: {session.deviation_reason}")
        extensions: list[dict[str, Any]] = [
            {"url": codes.EXT_TECHNIQUE, "valueCoding": codes.coding(codes.CS_TECHNIQUE, t, TECHNIQUES.get(t))}
            for t in session.techniques or []
        ]
        if session.pressure is not None:
            extensions.append({"url": codes.EXT_PRESSURE, "valueInteger": session.pressure})
        if session.response:
            extensions.append(
                {
                    "url": codes.EXT_RESPONSE,
                    "valueCoding": codes.coding(codes.CS_RESPONSE, session.response, session.get_response_display()),
                }
            )
        stopped = session.status == TreatmentSession.Status.STOPPED
        out: dict[str, Any] = {"resourceType": "Procedure"}
        if extensions:
            out["extension"] = extensions
        out["basedOn"] = [self.ref("course", session.course_id)]
        out["status"] = "stopped" if stopped else "completed"
        if stopped and session.stop_reason.strip():
            out["statusReason"] = {"text": session.stop_reason}
        out["code"] = codes.concept(
            codes.CS_CONCEPT,
            "massage-session",
            codes.CONCEPTS["massage-session"],
            text=f"Massage session {session.number} of {session.course.sessions_planned}",
        )
        out["subject"] = self.patient
        out["performedDateTime"] = self.when(session.held_at)
        performer = self.practitioner(session.therapist)
        if performer is not None:
            out["performer"] = [{"actor": performer}]
        treated = [r for r, m in (session.body_chart or {}).items() if isinstance(m, dict) and m.get("treated")]
        if treated:
            out["bodySite"] = [codes.concept(codes.CS_REGION, r, REGIONS.get(r)) for r in treated]
        if notes:
            out["note"] = [{"text": n} for n in notes]
        self.add(self.url("session", session.pk), out)

    # -- billing -----------------------------------------------------------------------------------------------

    def billing(self, client: Client) -> None:
        """Each invoice and credit note as an Invoice, each of its lines as a ChargeItem the Invoice's lineItem
        refers to. A credit note is an Invoice of type credit_note with negative amounts (it takes off what its
        invoice asked). Payments have no R4 resource here (PaymentReconciliation is an insurer's); the Invoice's
        status says `balanced` once nothing is left to pay."""
        from backcare.billing import services
        from backcare.billing.models import CURRENCIES, Invoice

        documents = (
            Invoice.objects.filter(client=client)
            .select_related("appointment", "therapist", "credits")
            .prefetch_related("lines")
            .order_by("issued_at", "number")
        )
        for invoice in documents:
            sign = 1 if invoice.kind == Invoice.Kind.INVOICE else -1
            exponent = 10 ** CURRENCIES.get(invoice.currency, 2)

            def money(minor: int, currency: str = invoice.currency, scale: int = exponent, sign: int = sign) -> Any:
                value = sign * minor / scale
                return {"value": int(value) if scale == 1 else round(value, 2), "currency": currency}

            performer = self.practitioner(invoice.therapist)
            items = []
            for seq, line in enumerate(invoice.lines.all(), start=1):
                charge: dict[str, Any] = {
                    "resourceType": "ChargeItem",
                    "status": "billed",
                    "code": codes.concept(
                        codes.CS_CHARGE, invoice.source, invoice.get_source_display(), text=line.description
                    ),
                    "subject": self.patient,
                }
                if invoice.appointment is not None:
                    charge["occurrencePeriod"] = {
                        "start": self.when(invoice.appointment.starts_at),
                        "end": self.when(invoice.appointment.ends_at),
                    }
                    charge["supportingInformation"] = [self.ref("appointment", invoice.appointment_id)]
                else:
                    charge["occurrenceDateTime"] = self.when(invoice.issued_at)
                if performer is not None:
                    charge["performer"] = [{"actor": performer}]
                charge["performingOrganization"] = self.organization
                charge["quantity"] = {"value": line.quantity}
                charge["priceOverride"] = money(line.unit_amount)
                charge["enteredDate"] = self.when(invoice.issued_at)
                self.add(self.url("charge-item", line.pk), charge)
                items.append(
                    {
                        "sequence": seq,
                        "chargeItemReference": self.ref("charge-item", line.pk, line.description[:100]),
                        "priceComponent": [{"type": "base", "amount": money(line.amount)}],
                    }
                )
            if invoice.kind == Invoice.Kind.INVOICE:
                status = "balanced" if services.outstanding(invoice) == 0 else "issued"
            else:
                status = "issued"
            out: dict[str, Any] = {
                "resourceType": "Invoice",
                "identifier": [
                    {"system": f"{codes.SID_CLINIC}/{client.clinic_id}/invoice", "value": str(invoice.number)}
                ],
                "status": status,
                "type": codes.concept(codes.CS_INVOICE_KIND, invoice.kind, invoice.get_kind_display()),
                "subject": self.patient,
                "recipient": self.patient,
                "date": self.when(invoice.issued_at),
            }
            if performer is not None:
                out["participant"] = [{"actor": performer}]
            out["issuer"] = self.organization
            if items:
                out["lineItem"] = items
            if invoice.tax:
                out["totalPriceComponent"] = [
                    {
                        "type": "tax",
                        "factor": round(invoice.tax_rate_bp / 10000, 4),
                        "amount": money(invoice.tax),
                    }
                ]
            out["totalNet"] = money(invoice.net)
            out["totalGross"] = money(invoice.total)
            notes = []
            if invoice.credits is not None:
                notes.append(f"Credit note against invoice {invoice.credits.number}.")
            if invoice.reason.strip():
                notes.append(invoice.reason.strip())
            if notes:
                out["note"] = [{"text": " ".join(notes)}]
            self.add(self.url("invoice", invoice.pk), out)

    # -- appointments ------------------------------------------------------------------------------------------

    def appointment(self, appointment: Any) -> None:
        self.rooms[appointment.room_id] = appointment.room
        status = {
            "booked": "booked",
            "held": "pending",
            "arrived": "arrived",
            "in_treatment": "checked-in",
            "completed": "fulfilled",
            "no_show": "noshow",
        }.get(appointment.status, "cancelled")
        out: dict[str, Any] = {"resourceType": "Appointment", "status": status}
        if status == "cancelled":
            out["cancelationReason"] = codes.concept(
                codes.CS_APPOINTMENT,
                appointment.status,
                appointment.get_status_display(),
                text=appointment.cancel_reason or appointment.get_status_display(),
            )
        out["serviceType"] = [{"text": appointment.service.name}]
        out["description"] = appointment.service.name
        out["start"] = self.when(appointment.starts_at)
        out["end"] = self.when(appointment.ends_at)
        out["minutesDuration"] = max(1, int((appointment.ends_at - appointment.starts_at).total_seconds() // 60))
        out["created"] = self.when(appointment.created_at)
        comments = []
        if appointment.override:
            comments.append(f"Overbooked by the owner: {appointment.override_reason}".strip())
        if appointment.late_change_reason.strip():
            comments.append(f"Changed inside the cancellation window: {appointment.late_change_reason}")
        if comments:
            out["comment"] = " ".join(comments)
        if appointment.course_id is not None:
            out["supportingInformation"] = [self.ref("course", appointment.course_id)]
        client_status = "needs-action" if appointment.status == "held" else "accepted"
        if status == "cancelled":
            client_status = "declined" if appointment.status == "declined" else client_status
        out["participant"] = [
            {"actor": self.patient, "status": client_status},
            {"actor": self.practitioner(appointment.therapist), "status": "accepted"},
            {
                "actor": {
                    "reference": codes.urn(codes.SID_ROOM, appointment.room_id),
                    "display": appointment.room.name,
                },
                "status": "accepted",
            },
        ]
        self.add(self.url("appointment", appointment.pk), out)

    # -- documents ---------------------------------------------------------------------------------------------

    def referral(self, referral: Referral) -> None:
        from backcare.clinic import documents

        attachment: dict[str, Any]
        try:
            pdf = documents.referral_letter_pdf(referral)
            attachment = {
                "contentType": "application/pdf",
                "data": base64.b64encode(pdf.content).decode("ascii"),
                "title": pdf.filename,
            }
        except Exception:  # the PDF engine missing or failing: the letter's HTML still carries every word
            html = documents.referral_letter_html(referral)
            attachment = {
                "contentType": "text/html; charset=utf-8",
                "data": base64.b64encode(html.encode("utf-8")).decode("ascii"),
                "title": "Referral letter",
            }
        attachment["creation"] = self.when(referral.created_at)
        out: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": codes.concept(codes.CS_DOCUMENT, "referral-letter", codes.DOCUMENT_TYPES["referral-letter"]),
            "category": [codes.concept(codes.CS_REFERRAL, referral.urgency, referral.get_urgency_display())],
            "subject": self.patient,
            "date": self.when(referral.created_at),
        }
        author = self.practitioner(referral.created_by)
        if author is not None:
            out["author"] = [author]
        out["description"] = f"{referral.get_urgency_display()} referral. Reason: {referral.reason}"
        out["content"] = [{"attachment": attachment}]
        if referral.screening_id is not None:
            out["context"] = {"related": [self.ref("screening", referral.screening_id)]}
        self.add(self.url("referral", referral.pk), out)

    def clearance(self, clearance: Clearance) -> None:
        description = f"Clearance given by {clearance.given_by} on {clearance.given_on.isoformat()}."
        content = []
        letter = _letter(clearance)
        if letter is not None:
            content.append({"attachment": letter})
        if clearance.note.strip() or not content:
            text = clearance.note if clearance.note.strip() else description
            content.append(
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
                        "title": "Note of the clearance",
                    }
                }
            )
        out: dict[str, Any] = {
            "resourceType": "DocumentReference",
            "status": "current",
            "type": codes.concept(codes.CS_DOCUMENT, "clearance", codes.DOCUMENT_TYPES["clearance"]),
            "subject": self.patient,
            "date": self.when(clearance.recorded_at),
        }
        author = self.practitioner(clearance.recorded_by)
        if author is not None:
            out["author"] = [author]
        out["description"] = description
        out["content"] = content
        out["context"] = {"related": [self.ref("screening", clearance.screening_id)]}
        self.add(self.url("clearance", clearance.pk), out)


def _with_id(full_url: str, resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with its id (the UUID of its fullUrl) right after its resourceType, as FHIR JSON is written."""
    rest = {k: v for k, v in resource.items() if k != "resourceType"}
    return {"resourceType": resource["resourceType"], "id": full_url.removeprefix("urn:uuid:"), **rest}


def _letter(clearance: Clearance) -> dict[str, Any] | None:
    """The uploaded clearance letter as an attachment (None when there is none or it cannot be read)."""
    if not clearance.letter:
        return None
    name = PurePath(clearance.letter.name or "").name
    try:
        with clearance.letter.open("rb") as stream:
            data = stream.read()
    except OSError:
        return None
    finally:
        clearance.letter.close()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return {"contentType": kind, "data": base64.b64encode(data).decode("ascii"), "title": name}


def _address(text: str) -> dict[str, Any]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    out: dict[str, Any] = {"text": text}
    if lines:
        out["line"] = lines
    return out


# --- answers --------------------------------------------------------------------------------------------------


def _option(item: ItemSpec, code: str) -> dict[str, Any]:
    return codes.coding(item.system, code, dict(item.options).get(code))


def _answered(item: ItemSpec, answers: list[dict[str, Any]]) -> dict[str, Any]:
    return {"linkId": item.link_id, "text": item.text, "answer": answers}


def _answer(item: ItemSpec, value: object) -> dict[str, Any]:
    """One typed answer as the item's FHIR type; a value that does not fit (a draft keeps what was typed) is kept
    as valueString rather than lost."""
    text = str(value)
    if item.type == "boolean" and text in ("yes", "no"):
        return {"valueBoolean": text == "yes"}
    if item.type in ("integer", "decimal"):
        number = _number(text)
        if number is not None and (item.type == "decimal" or isinstance(number, int)):
            return {item.answer_key: number}
    if item.type == "choice" and text in item.codes:
        return {"valueCoding": _option(item, text)}
    return {"valueString": text}


def answer_items(items: tuple[ItemSpec, ...], answers: dict[str, Any]) -> list[dict[str, Any]]:
    """QuestionnaireResponse items for the answers, in the questionnaire's shape (groups only when they hold
    an answer). Empty answers are left out (the intake form only ever stores answers to its own questions)."""
    out: list[dict[str, Any]] = []
    for item in items:
        if item.type == "group":
            children = answer_items(item.children, answers)
            if children:
                out.append({"linkId": item.link_id, "text": item.text, "item": children})
            continue
        value = answers.get(item.link_id)
        values = value if isinstance(value, list) else [value]
        values = [v for v in values if v is not None and str(v).strip() != ""]
        if values:
            out.append(_answered(item, [_answer(item, v) for v in values]))
    return out


def patient_bundle(client: Client, *, bundle_type: str = "collection") -> dict[str, Any]:
    """The client's whole record as a FHIR R4 Bundle (a JSON dict), validated. No audit: callers record it."""
    if bundle_type not in BUNDLE_TYPES:
        raise ValueError(f"bundle_type must be one of {', '.join(BUNDLE_TYPES)}, not {bundle_type!r}")
    bundle = _Export(client).build(bundle_type)
    problems = validate_bundle(bundle)
    if problems:
        raise ExportInvalid(problems)
    return bundle


__all__ = ["BUNDLE_TYPES", "ExportInvalid", "answer_items", "client_identifier", "patient_bundle"]
