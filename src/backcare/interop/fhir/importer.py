"""Importing clients from another system: a FHIR R4 Bundle of Patients and QuestionnaireResponses (the Backcare
intake, STarT Back and Roland-Morris).

All or nothing. The whole bundle is read first and every problem is named with its location (invalid FHIR, a
reference that does not resolve, an unknown questionnaire item, an answer of the wrong type, a stated score that does
not match the answers, a client already in the clinic...); only a bundle without any problem is written, in one
transaction, through the clinic's services, which validate and audit each write:

- each Patient becomes a client (`services.clients.create_client`), assigned to the chosen therapist, or to the
  importing therapist; its identifiers are kept (`interop.ExternalIdentifier`) to recognise it next time;
- an intake answered in full ("completed") is saved and submitted (`services.intake.save_draft`, `submit`): it is
  screened by the clinical core and waits for the therapist's review like any submitted intake; one still
  "in-progress" is kept as a draft;
- STarT Back and Roland-Morris answers are scored again by the clinical core and recorded
  (`services.outcomes.record_start_back`, `record_rmdq`), dated when they were answered (`authored`).

Other resources in the bundle (a Backcare export also holds sessions, courses, appointments...) are valid FHIR but are
not imported; the result counts them, so the person importing sees what stayed behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, cast

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from backcare.clinic import audit
from backcare.clinic.models import Client, Clinic, Intake, Outcome, Role, StaffMember
from backcare.clinic.services import clients as client_services
from backcare.clinic.services import intake as intake_services
from backcare.clinic.services import outcomes as outcome_services
from backcare.clinical.instruments import RMDQ_ITEMS, score_rmdq, score_start_back
from backcare.common.rowlock import locked
from backcare.interop.fhir import codes
from backcare.interop.fhir.export import client_identifier
from backcare.interop.fhir.questionnaires import ItemSpec, QuestionnaireSpec, all_specs, spec_for
from backcare.interop.fhir.validation import BadJson, BundleIndex, Problem, parse_json, validate_parsed
from backcare.interop.models import ExternalIdentifier

IMPORTABLE_BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset")
MAX_PATIENTS = 500
SEXES = ("female", "male", "other", "unknown")
SB_ITEMS = tuple(f"sb_{i}" for i in range(1, 10))


class BundleRejected(Exception):
    """The bundle was not imported; `problems` names every reason, each with its location."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else Problem("Bundle", "rejected")
        super().__init__(f"{len(problems)} problem(s), the first: {first.location}: {first.message}")


@dataclass
class ImportResult:
    clients: list[Client] = field(default_factory=list)
    intakes: list[Intake] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    not_imported: dict[str, int] = field(default_factory=dict)
    """Resource types in the bundle that are not imported, with how many of each."""
    matched_start_back: int = 0
    """STarT Back answers identical to the ones the intake itself recorded (recorded once, not twice)."""

    @property
    def counts(self) -> dict[str, int]:
        return {"clients": len(self.clients), "intakes": len(self.intakes), "outcomes": len(self.outcomes)}


# --- reading the bundle -----------------------------------------------------------------------------------------


@dataclass
class _Patient:
    entry: int
    location: str
    fields: dict[str, Any]
    identifiers: list[tuple[str, str]]
    client: Client | None = None


@dataclass
class _Answers:
    """The answers of one QuestionnaireResponse, by linkId: [(value, location)]."""

    values: dict[str, list[tuple[Any, str]]] = field(default_factory=dict)
    locations: dict[str, str] = field(default_factory=dict)

    def one(self, link_id: str) -> Any:
        found = self.values.get(link_id)
        return found[0][0] if found else None


@dataclass
class _Response:
    entry: int
    location: str
    spec: QuestionnaireSpec
    patient: int
    status: str
    answers: _Answers
    authored: dt.datetime | None
    form: dict[str, Any] = field(default_factory=dict)  # intake: the form's answers
    agree: list[bool] = field(default_factory=list)  # STarT Back
    bothersomeness: str = ""
    ticked: list[bool] = field(default_factory=list)  # RMDQ
    timepoint: str = "baseline"


def _name_of(value: Any) -> str:
    return value if isinstance(value, str) else ""


class _Reader:
    def __init__(self, bundle: dict[str, Any], clinic: Clinic) -> None:
        self.bundle = bundle
        self.clinic = clinic
        self.entries: list[Any] = bundle.get("entry") or []
        self.index = BundleIndex.of(self.entries)
        self.problems: list[Problem] = []
        self.patients: dict[int, _Patient] = {}
        self.responses: list[_Response] = []
        self.not_imported: dict[str, int] = {}
        self._own_ids: dict[str, Client] | None = None

    def add(self, location: str, message: str, code: str = "invalid") -> None:
        self.problems.append(Problem(location, message, code))

    def read(self) -> None:
        btype = self.bundle.get("type")
        if btype not in IMPORTABLE_BUNDLE_TYPES:
            self.add(
                "Bundle.type",
                f"{btype!r} bundles are not imported; use a collection, transaction or batch",
                "not-supported",
            )
        later = []
        for i, entry in enumerate(self.entries):
            where = f"Bundle.entry[{i}]"
            request = entry.get("request") if isinstance(entry.get("request"), dict) else None
            if request is not None and request.get("method") not in ("POST", "PUT"):
                self.add(f"{where}.request.method", "only POST and PUT entries can be imported", "not-supported")
            resource = entry.get("resource")
            if not isinstance(resource, dict):
                continue  # only in response or history bundles, which are refused above
            # validate_parsed refused every resource without a resourceType R4 knows
            rt = cast(str, resource.get("resourceType"))
            if rt == "Patient":
                self.read_patient(i, resource, f"{where}.resource")
            elif rt == "QuestionnaireResponse":
                later.append((i, resource, f"{where}.resource"))
            else:
                self.not_imported[rt] = self.not_imported.get(rt, 0) + 1
        if not self.patients:
            self.add("Bundle.entry", "holds no Patient: there is nobody to import", "required")
        elif len(self.patients) > MAX_PATIENTS:
            self.add(
                "Bundle.entry", f"{len(self.patients)} patients; at most {MAX_PATIENTS} in one bundle", "too-costly"
            )
        for i, resource, where in later:
            self.read_response(i, resource, where)
        self.check_intakes()

    # -- Patient ---------------------------------------------------------------------------------------------

    def read_patient(self, entry: int, res: dict[str, Any], loc: str) -> None:
        fields: dict[str, Any] = {}
        first, last, name_loc = self.read_name(res, loc)
        fields["first_name"], fields["last_name"] = first, last
        birth = res.get("birthDate")
        born = parse_date(birth) if isinstance(birth, str) and len(birth) == 10 else None
        if birth is None:
            self.add(f"{loc}.birthDate", "is required: every client needs a date of birth", "required")
        elif born is None:
            self.add(
                f"{loc}.birthDate", f"{birth!r} is not a full date; a date of birth as YYYY-MM-DD is needed", "value"
            )
        elif born > timezone.localdate():
            self.add(f"{loc}.birthDate", f"{birth} is in the future", "value")
        fields["date_of_birth"] = born
        gender = res.get("gender", "unknown")
        fields["sex"] = gender if gender in SEXES else "unknown"
        telecom_loc: dict[str, str] = {}
        for j, point in enumerate(res.get("telecom") or []):
            system, value = point.get("system"), point.get("value")
            key = {"email": "email", "phone": "phone", "sms": "phone"}.get(system or "")
            if key and isinstance(value, str) and key not in fields:
                fields[key] = value.strip()
                telecom_loc[key] = f"{loc}.telecom[{j}].value"
        if "email" in fields:
            try:
                validate_email(fields["email"])
            except ValidationError:
                self.add(telecom_loc["email"], f"{fields['email']!r} is not a valid email address", "value")
        addresses = res.get("address") or []
        if addresses:
            fields["address"] = _address_text(addresses[0])
        self.read_gp(res, loc, fields)
        identifiers = [
            (str(ident["system"]), str(ident["value"]))
            for ident in res.get("identifier") or []
            if isinstance(ident.get("system"), str) and isinstance(ident.get("value"), str)
        ]
        patient = _Patient(entry, loc, fields, identifiers)
        if first and last and born is not None:
            self.check_client_fields(patient, name_loc, telecom_loc)
            self.check_duplicates(patient, name_loc)
        self.patients[entry] = patient

    def read_name(self, res: dict[str, Any], loc: str) -> tuple[str, str, str]:
        names = res.get("name") or []
        if not names:
            self.add(f"{loc}.name", "is required: a client needs a first and a last name", "required")
            return "", "", f"{loc}.name"
        order = {"official": 0, "usual": 1}
        k = min(range(len(names)), key=lambda j: order.get(names[j].get("use", ""), 2))
        name, where = names[k], f"{loc}.name[{k}]"
        family = _name_of(name.get("family")).strip()
        given = " ".join(g.strip() for g in name.get("given") or [] if isinstance(g, str) and g.strip())
        text = _name_of(name.get("text")).strip()
        if (not family or not given) and len(text.split()) >= 2:
            given_from_text, _, family_from_text = text.rpartition(" ")
            family = family or family_from_text
            given = given or given_from_text
        if not family:
            self.add(f"{where}.family", "is required: the client's last name", "required")
        if not given:
            self.add(f"{where}.given", "is required: the client's first name", "required")
        return given, family, where

    def read_gp(self, res: dict[str, Any], loc: str, fields: dict[str, Any]) -> None:
        gps = res.get("generalPractitioner") or []
        if not gps:
            return
        ref = gps[0]
        target: dict[str, Any] | None = None
        reference = ref.get("reference")
        if isinstance(reference, str) and reference.startswith("#"):
            target = next((c for c in res.get("contained") or [] if c.get("id") == reference[1:]), None)
        elif isinstance(reference, str):
            found = self.index.resolve(reference)
            target = self.entries[found].get("resource") if found is not None else None
        name, address = _name_of(ref.get("display")).strip(), ""
        if target is not None and target.get("resourceType") in ("Practitioner", "Organization"):
            if target["resourceType"] == "Organization":
                name = name or _name_of(target.get("name")).strip()
            else:
                name = name or _human_name(target.get("name") or [])
            addresses = target.get("address") or []
            address = _address_text(addresses[0]) if addresses else ""
        if name:
            fields["physician_name"] = name
        if address:
            fields["physician_address"] = address

    def check_client_fields(self, patient: _Patient, name_loc: str, telecom_loc: dict[str, str]) -> None:
        """The model's own checks (lengths, formats), run before anything is written."""
        where = {
            "first_name": f"{name_loc}.given",
            "last_name": f"{name_loc}.family",
            "date_of_birth": f"{patient.location}.birthDate",
            "sex": f"{patient.location}.gender",
            "address": f"{patient.location}.address[0]",
            "physician_name": f"{patient.location}.generalPractitioner[0]",
            "physician_address": f"{patient.location}.generalPractitioner[0]",
            **telecom_loc,
        }
        try:
            Client(clinic=self.clinic, **patient.fields).full_clean(exclude=["user", "therapist", "clinic"])
        except ValidationError as e:
            for name, messages in e.message_dict.items():
                for message in messages:
                    self.add(where.get(name, patient.location), message, "value")

    def own_ids(self) -> dict[str, Client]:
        if self._own_ids is None:
            clients = Client.objects.filter(clinic=self.clinic).only("pk", "created_at", "first_name", "last_name")
            self._own_ids = {client_identifier(c): c for c in clients}
        return self._own_ids

    def check_duplicates(self, patient: _Patient, name_loc: str) -> None:
        f = patient.fields
        for j, (system, value) in enumerate(patient.identifiers):
            where = f"{patient.location}.identifier"
            known = None
            if system == codes.SID_CLIENT:
                known = self.own_ids().get(value)
            if known is None:
                ext = ExternalIdentifier.objects.filter(clinic=self.clinic, system=system, value=value).first()
                known = ext.client if ext is not None else None
            if known is not None:
                self.add(
                    f"{where}[{j}]",
                    f"{system}|{value}: this client is already in the clinic ({known.full_name}, client {known.pk})",
                    "duplicate",
                )
            for other in self.patients.values():
                if (system, value) in other.identifiers:
                    self.add(f"{where}[{j}]", f"the same identifier as the Patient at {other.location}", "duplicate")
        same = Client.objects.filter(
            clinic=self.clinic,
            first_name__iexact=f["first_name"],
            last_name__iexact=f["last_name"],
            date_of_birth=f["date_of_birth"],
        ).first()
        who = f"{f['first_name']} {f['last_name']}, born {f['date_of_birth']:%Y-%m-%d}"
        if same is not None:
            self.add(name_loc, f"{who}, is already a client of this clinic (client {same.pk})", "duplicate")
        for other in self.patients.values():
            o = other.fields
            if (o["first_name"].lower(), o["last_name"].lower(), o["date_of_birth"]) == (
                f["first_name"].lower(),
                f["last_name"].lower(),
                f["date_of_birth"],
            ):
                self.add(name_loc, f"{who}, is also the Patient at {other.location}", "duplicate")

    # -- QuestionnaireResponse ---------------------------------------------------------------------------------

    def read_response(self, entry: int, res: dict[str, Any], loc: str) -> None:
        canonical = res.get("questionnaire")
        spec = spec_for(canonical) if isinstance(canonical, str) else None
        if canonical is None:
            self.add(f"{loc}.questionnaire", "is required: which questionnaire these answers belong to", "required")
        elif spec is None:
            known = ", ".join(s.canonical for s in all_specs())
            self.add(
                f"{loc}.questionnaire",
                f"{canonical!r} is not a questionnaire Backcare imports ({known})",
                "not-supported",
            )
        patient = self.subject(res, loc)
        if spec is None or patient is None:
            return
        status = cast(str, res.get("status"))  # one of those accepted just below, or the method returns
        lenient = spec.key == "intake" and status == "in-progress"
        if status not in (
            ("in-progress", "completed", "amended") if spec.key == "intake" else ("completed", "amended")
        ):
            allowed = "in-progress, completed or amended" if spec.key == "intake" else "completed or amended"
            self.add(f"{loc}.status", f"{status!r}: only {allowed} {spec.title} answers are imported", "business-rule")
            return
        answers = _Answers()
        self.read_items(res.get("item") or [], f"{loc}.item", spec, answers, lenient)
        authored = self.authored(res, loc)
        response = _Response(entry, loc, spec, patient, status, answers, authored)
        if spec.key == "intake":
            if any(r.spec.key == "intake" and r.patient == patient for r in self.responses):
                self.add(loc, "a second intake for the same Patient; a client has one intake", "business-rule")
                return
            response.form = _form_answers(spec, answers)
        elif spec.key == "start_back":
            self.read_start_back(response)
        else:
            self.read_rmdq(response, res)
        self.responses.append(response)

    def subject(self, res: dict[str, Any], loc: str) -> int | None:
        reference = (res.get("subject") or {}).get("reference")
        found = self.index.resolve(reference) if isinstance(reference, str) else None
        if found is None or found not in self.patients:
            message = "is required" if reference is None else f"{reference!r} is not a Patient of this bundle"
            self.add(f"{loc}.subject", f"{message}: answers are imported for a Patient in the same bundle", "required")
            return None
        return found

    def authored(self, res: dict[str, Any], loc: str) -> dt.datetime | None:
        value = res.get("authored")
        if not isinstance(value, str):
            return None
        when = parse_datetime(value) if "T" in value else None
        if when is None or timezone.is_naive(when):
            day = parse_date(value) if len(value) == 10 else None
            if day is None:
                return None  # a partial date (a year, a month): not precise enough to date the score by
            when = dt.datetime.combine(day, dt.time(12), tzinfo=timezone.get_current_timezone())
        if when > timezone.now() + dt.timedelta(minutes=5):
            self.add(f"{loc}.authored", f"{value} is in the future", "value")
            return None
        return when

    def read_items(
        self, items: list[dict[str, Any]], loc: str, spec: QuestionnaireSpec, answers: _Answers, lenient: bool
    ) -> None:
        for k, item in enumerate(items):
            where = f"{loc}[{k}]"
            link_id = item.get("linkId")
            known = spec.index.get(link_id) if isinstance(link_id, str) else None
            if known is None or not isinstance(link_id, str):
                self.add(
                    f"{where}.linkId", f"{link_id!r} is not an item of the {spec.title} questionnaire", "not-found"
                )
                continue
            if link_id in answers.locations:
                self.add(
                    f"{where}.linkId",
                    f"item {link_id!r} is answered twice (also at {answers.locations[link_id]})",
                    "duplicate",
                )
                continue
            answers.locations[link_id] = where
            given = item.get("answer") or []
            if known.type == "group":
                if given:
                    self.add(f"{where}.answer", f"{link_id!r} is a group of questions; it takes no answer", "structure")
                self.read_items(item.get("item") or [], f"{where}.item", spec, answers, lenient)
                continue
            if item.get("item"):
                self.add(f"{where}.item", f"{link_id!r} is a question, not a group; it holds no items", "structure")
            if len(given) > 1 and not known.repeats:
                self.add(f"{where}.answer", f"item {link_id!r} takes one answer, {len(given)} were given", "structure")
            values = []
            for a, answer in enumerate(given):
                value = self.read_answer(answer, f"{where}.answer[{a}]", known, lenient)
                if value is not None:
                    values.append((value, f"{where}.answer[{a}]"))
                if answer.get("item"):
                    self.read_items(answer["item"], f"{where}.answer[{a}].item", spec, answers, lenient)
            if values:
                answers.values[link_id] = values

    def read_answer(self, answer: dict[str, Any], loc: str, item: ItemSpec, lenient: bool) -> Any:
        keys = [k for k in answer if k.startswith("value")]
        if not keys:
            self.add(loc, f"gives no value for item {item.link_id!r}", "required")
            return None
        key, value = keys[0], answer[keys[0]]
        expected = item.answer_key
        if key != expected and not (lenient and key == "valueString"):
            self.add(
                f"{loc}.{key}",
                f"has the wrong type for item {item.link_id!r}: it is a {item.type} question and takes {expected}",
                "structure",
            )
            return None
        if key == "valueString":
            if len(value) > intake_services.MAX_TEXT:
                self.add(
                    f"{loc}.{key}", f"is {len(value)} characters long; at most {intake_services.MAX_TEXT}", "too-long"
                )
                return None
            return value
        if key == "valueCoding":
            system, code = value.get("system"), value.get("code")
            if (system is not None and system != item.system) or code not in item.codes:
                shown = ", ".join(item.codes[:12]) + (", ..." if len(item.codes) > 12 else "")
                self.add(
                    f"{loc}.valueCoding",
                    f"{system}|{code} is not an answer option of item {item.link_id!r} ({item.system}: {shown})",
                    "code-invalid",
                )
                return None
            return code
        if key == "valueInteger" and isinstance(value, float):
            return int(value)
        return value

    # -- scores ------------------------------------------------------------------------------------------------

    def missing(self, r: _Response, link_ids: tuple[str, ...]) -> bool:
        absent = [k for k in link_ids if k not in r.answers.values]
        if absent:
            self.add(
                f"{r.location}.item",
                f"every {r.spec.title} item must be answered; missing: {', '.join(absent)}",
                "required",
            )
        return bool(absent)

    def stated(self, r: _Response, link_id: str, computed: Any, what: str) -> None:
        found = r.answers.values.get(link_id)
        if found and found[0][0] != computed:
            value, where = found[0]
            self.add(where, f"states {what} {value}, but the answers give {computed}", "business-rule")

    def read_start_back(self, r: _Response) -> None:
        if self.missing(r, SB_ITEMS):
            return
        r.agree = [r.answers.one(f"sb_{i}") == "agree" for i in range(1, 9)]
        r.bothersomeness = r.answers.one("sb_9")
        score = score_start_back(r.agree, r.bothersomeness)
        self.stated(r, "total", score.total, "a total of")
        self.stated(r, "psychosocial", score.psychosocial, "a psychosocial score of")
        self.stated(r, "group", score.group, "the risk group")

    def read_rmdq(self, r: _Response, res: dict[str, Any]) -> None:
        for j, ext in enumerate(res.get("extension") or []):
            if ext.get("url") == codes.EXT_TIMEPOINT:
                value = ext.get("valueCode")
                if value not in codes.RMDQ_TIMEPOINTS:
                    self.add(
                        f"{r.location}.extension[{j}]",
                        f"{value!r}: a Roland-Morris timepoint is one of {', '.join(codes.RMDQ_TIMEPOINTS)}",
                        "code-invalid",
                    )
                else:
                    r.timepoint = value
        link_ids = tuple(f"rmdq_{i}" for i in range(1, len(RMDQ_ITEMS) + 1))
        if self.missing(r, link_ids):
            return
        r.ticked = [bool(r.answers.one(k)) for k in link_ids]
        self.stated(r, "score", score_rmdq(r.ticked), "a score of")

    # -- intakes -----------------------------------------------------------------------------------------------

    def check_intakes(self) -> None:
        """A complete intake must answer what the clinic's form asks; STarT Back items it lacks are taken from the
        same Patient's STarT Back answers when the bundle has them."""
        for r in self.responses:
            if r.spec.key != "intake" or r.status == "in-progress":
                continue
            patient = self.patients[r.patient]
            ctx = intake_services.Context.for_client(Client(clinic=self.clinic, sex=patient.fields["sex"]))
            if ctx.start_back and any(k not in r.form for k in SB_ITEMS):
                sb = next((s for s in self.responses if s.spec.key == "start_back" and s.patient == r.patient), None)
                if sb is not None and sb.agree:
                    r.form.update({f"sb_{i}": "agree" if a else "disagree" for i, a in enumerate(sb.agree, 1)})
                    r.form["sb_9"] = sb.bothersomeness
            for name, message in intake_services.check_answers(r.form, ctx).items():
                where = r.answers.locations.get(name, f"{r.location}.item")
                self.add(where, f"{message} (item {name!r})", "required")


def _form_answers(spec: QuestionnaireSpec, answers: _Answers) -> dict[str, Any]:
    """The intake form's answers (as the form keeps them: strings, lists of codes) from the response's values."""
    form: dict[str, Any] = {}
    for link_id, values in answers.values.items():
        item = spec.index[link_id]
        texts = [_as_text(item, v) for v, _ in values]
        form[link_id] = texts if item.repeats else texts[0]
    return form


def _as_text(item: ItemSpec, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _address_text(address: dict[str, Any]) -> str:
    text = _name_of(address.get("text")).strip()
    if text:
        return text
    lines = [line for line in address.get("line") or [] if isinstance(line, str)]
    place = " ".join(p for p in (address.get("postalCode"), address.get("city")) if isinstance(p, str))
    lines += [
        p
        for p in (place, address.get("district"), address.get("state"), address.get("country"))
        if isinstance(p, str) and p
    ]
    return "\n".join(lines)


def _human_name(names: list[dict[str, Any]]) -> str:
    if not names:
        return ""
    name = names[0]
    if isinstance(name.get("text"), str) and name["text"].strip():
        return str(name["text"]).strip()
    parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
    return " ".join(p for p in parts if isinstance(p, str) and p).strip()


# --- writing -----------------------------------------------------------------------------------------------------


def _staff_of(user: Any, clinic: Clinic) -> StaffMember:
    staff = StaffMember.objects.filter(user=user, clinic=clinic, active=True).first() if user is not None else None
    if staff is None or staff.role not in (Role.OWNER, Role.THERAPIST):
        raise PermissionDenied("Only the owner or a therapist of this clinic can import clients.")
    return staff


def _backdate(outcome: Outcome, when: dt.datetime | None) -> None:
    """An imported score keeps the time it was answered, so charts and changes over time stay true."""
    if when is not None:
        Outcome.objects.filter(pk=outcome.pk).update(recorded_at=when)
        outcome.recorded_at = when


def _problems_of(error: ValidationError, location: str) -> list[Problem]:
    if hasattr(error, "error_dict"):
        return [
            Problem(location, f"{name}: {m}", "business-rule") for name, ms in error.message_dict.items() for m in ms
        ]
    return [Problem(location, m, "business-rule") for m in error.messages]


def _write(reader: _Reader, staff: StaffMember, therapist: StaffMember | None, user: Any, request: Any) -> ImportResult:
    result = ImportResult(not_imported=dict(sorted(reader.not_imported.items())))
    for patient in reader.patients.values():
        try:
            patient.client = client_services.create_client(
                staff=staff, therapist=therapist, request=request, **patient.fields
            )
        except ValidationError as e:
            raise BundleRejected(_problems_of(e, patient.location)) from None
        for system, value in patient.identifiers:
            ExternalIdentifier.objects.create(
                clinic=reader.clinic, client=patient.client, system=system, value=value, imported_by=user
            )
        result.clients.append(patient.client)
    responses = sorted(reader.responses, key=lambda r: {"intake": 0, "start_back": 1, "rmdq": 2}[r.spec.key])
    for r in responses:
        client = reader.patients[r.patient].client
        assert client is not None
        try:
            if r.spec.key == "intake":
                intake = intake_services.save_draft(client, r.form, by=user, request=request)
                if r.status != "in-progress":
                    intake_services.submit(intake, by=user, request=request)
                    intake.refresh_from_db()
                    result.outcomes.extend(client.outcomes.filter(instrument=Outcome.Instrument.START_BACK))
                result.intakes.append(intake)
            elif r.spec.key == "start_back":
                answers = {"agree": r.agree, "bothersomeness": r.bothersomeness}
                same = [
                    o
                    for o in result.outcomes
                    if o.client_id == client.pk
                    and o.instrument == Outcome.Instrument.START_BACK
                    and o.answers.get("agree") == r.agree
                    and o.answers.get("bothersomeness") == r.bothersomeness
                ]
                if same:  # the intake recorded these very answers: keep one score, dated when it was answered
                    result.matched_start_back += 1
                    _backdate(same[0], r.authored)
                    continue
                outcome = outcome_services.record_start_back(client, answers=answers, by=user, request=request)
                _backdate(outcome, r.authored)
                result.outcomes.append(outcome)
            else:
                outcome = outcome_services.record_rmdq(
                    client, ticked=r.ticked, timepoint=r.timepoint, course=None, by=user, request=request
                )
                _backdate(outcome, r.authored)
                result.outcomes.append(outcome)
        except ValidationError as e:
            raise BundleRejected(_problems_of(e, r.location)) from None
    for patient in reader.patients.values():
        assert patient.client is not None
        audit.record(
            user,
            "import_fhir",
            client=patient.client,
            obj=patient.client,
            detail={"entry": patient.entry, "identifiers": [f"{s}|{v}" for s, v in patient.identifiers]},
            request=request,
        )
    return result


def import_bundle(
    data: object, *, clinic: Clinic, user: Any, therapist: StaffMember | None = None, request: Any = None
) -> ImportResult:
    """Import a FHIR R4 Bundle of Patients and their QuestionnaireResponses into `clinic`, all or nothing.

    `data` is the bundle as parsed JSON, or its JSON text or bytes. `user` must be the owner or a therapist of the
    clinic (PermissionDenied otherwise); new clients go to `therapist`, else to the importing therapist (an owner's
    import with no therapist leaves them unassigned). `request`, when given, only adds its address to the audit.
    Raises BundleRejected with every problem; nothing is written then, except an audit event of the refused attempt."""
    staff = _staff_of(user, clinic)
    if therapist is not None and (
        therapist.clinic_id != clinic.pk or therapist.role not in (Role.OWNER, Role.THERAPIST)
    ):
        raise PermissionDenied("Imported clients can only be assigned to a therapist of this clinic.")
    try:
        try:
            bundle = parse_json(data)
        except BadJson as e:
            raise BundleRejected([e.problem]) from None
        problems = validate_parsed(bundle)
        if problems:
            raise BundleRejected(problems)
        assert isinstance(bundle, dict)
        with transaction.atomic():
            locked(Clinic.objects.filter(pk=clinic.pk), no_key=True).first()  # one import at a time per clinic
            reader = _Reader(bundle, clinic)
            reader.read()
            if reader.problems:
                raise BundleRejected(reader.problems)
            result = _write(reader, staff, therapist, user, request)
            audit.record(
                user,
                "import_fhir_bundle",
                detail={
                    **result.counts,
                    "bundle": str(bundle.get("id", ""))[:64],
                    "not_imported": result.not_imported,
                    "client_ids": [c.pk for c in result.clients],
                },
                request=request,
            )
            return result
    except BundleRejected as rejected:
        audit.record(
            user,
            "import_fhir_rejected",
            detail={
                "problems": len(rejected.problems),
                "first": [f"{p.location}: {p.message}" for p in rejected.problems[:5]],
            },
            request=request,
        )
        raise
    except DatabaseError as e:  # a constraint the checks above did not foresee: name it, never half-import
        audit.record(user, "import_fhir_rejected", detail={"problems": 1, "first": [str(e)[:200]]}, request=request)
        raise BundleRejected([Problem("Bundle", f"could not be saved: {e}", "exception")]) from None


__all__ = ["IMPORTABLE_BUNDLE_TYPES", "BundleRejected", "ImportResult", "import_bundle"]
