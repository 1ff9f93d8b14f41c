"""Input `backcare screen` must refuse: exit 1, a message on stderr naming the problem and the field, no traceback,
nothing on stdout. And in batch mode, an error object per bad line that names the field."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conftest import CliResult, make_intake

BIG = 50_000_000


def screen_bytes(cli, tmp_path: Path, data: bytes) -> CliResult:
    path = tmp_path / "intake.json"
    path.write_bytes(data)
    return cli("screen", "--format", "json", str(path))


def screen_text(cli, tmp_path: Path, text: str) -> CliResult:
    return screen_bytes(cli, tmp_path, text.encode())


def screen_doc(cli, tmp_path: Path, doc: Any) -> CliResult:
    return screen_text(cli, tmp_path, json.dumps(doc))


def assert_rejected(result: CliResult, *words: str) -> None:
    """Exit 1, nothing on stdout, no traceback, and every word somewhere in the message."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()
    for word in words:
        assert word in result.stderr


def assert_names_field(result: CliResult, path: str, *words: str) -> None:
    """Rejected, with a message line of the form `path: ...` that also holds every word."""
    assert_rejected(result)
    lines = [line.strip() for line in result.stderr.splitlines()]
    assert any(line.startswith(f"{path}:") and all(w in line for w in words) for line in lines), result.stderr


def without(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


# --- not JSON, or not an object -----------------------------------------------------------------------------


def test_a_truncated_json_document_is_rejected_as_invalid_json(cli, tmp_path):
    text = json.dumps(make_intake())[:-5]

    assert_rejected(screen_text(cli, tmp_path, text), "JSON")


def test_garbage_after_the_json_document_is_rejected_as_invalid_json(cli, tmp_path):
    text = json.dumps(make_intake()) + " trailing"

    assert_rejected(screen_text(cli, tmp_path, text), "JSON")


def test_a_json_list_is_rejected_as_not_an_object(cli, tmp_path):
    assert_rejected(screen_doc(cli, tmp_path, [make_intake()]), "object")


def test_a_json_number_is_rejected_as_not_an_object(cli, tmp_path):
    assert_rejected(screen_doc(cli, tmp_path, 42), "object")


def test_json_null_is_rejected_as_not_an_object(cli, tmp_path):
    assert_rejected(screen_doc(cli, tmp_path, None), "object")


def test_a_nan_literal_is_rejected_naming_it(cli, tmp_path):
    text = json.dumps(make_intake()).replace('"intensity": 4', '"intensity": NaN')

    assert_rejected(screen_text(cli, tmp_path, text), "NaN")


def test_an_infinity_literal_is_rejected_naming_it(cli, tmp_path):
    text = json.dumps(make_intake()).replace('"duration_weeks": 3', '"duration_weeks": Infinity')

    assert_rejected(screen_text(cli, tmp_path, text), "Infinity")


def test_an_empty_file_is_rejected_as_empty(cli, tmp_path):
    assert_rejected(screen_bytes(cli, tmp_path, b""), "empty")


def test_a_whitespace_only_file_is_rejected_as_empty(cli, tmp_path):
    assert_rejected(screen_bytes(cli, tmp_path, b"  \n\t\r\n  "), "empty")


def test_bytes_that_are_not_utf8_are_rejected_naming_the_encoding(cli, tmp_path):
    data = b"\xff\xfe" + json.dumps(make_intake()).encode()

    assert_rejected(screen_bytes(cli, tmp_path, data), "UTF-8")


def test_a_utf8_byte_order_mark_is_rejected_naming_it(cli, tmp_path):
    # RFC 8259 forbids a BOM in JSON text and lets parsers reject it; the command says so plainly.
    data = b"\xef\xbb\xbf" + json.dumps(make_intake()).encode()

    assert_rejected(screen_bytes(cli, tmp_path, data), "BOM")


def test_a_50_megabyte_file_is_refused_quickly_for_its_size(cli, tmp_path):
    started = time.monotonic()
    result = screen_bytes(cli, tmp_path, b" " * BIG)
    elapsed = time.monotonic() - started

    assert_rejected(result, "bytes")
    assert "larger" in result.stderr or "at most" in result.stderr
    assert elapsed < 5


def test_a_50_megabyte_json_string_is_refused_for_its_size(cli, tmp_path):
    result = screen_bytes(cli, tmp_path, b'"' + b"x" * BIG + b'"')

    assert_rejected(result, "bytes")


def test_a_file_that_does_not_exist_is_rejected_naming_it(cli, tmp_path):
    path = tmp_path / "no-such-intake.json"

    result = cli("screen", "--format", "json", str(path))

    assert_rejected(result, "no-such-intake.json")
    assert "no such file" in result.stderr.lower()


def test_a_directory_is_rejected_as_not_an_intake_file(cli, tmp_path):
    result = cli("screen", "--format", "json", str(tmp_path))

    assert_rejected(result, "directory")


# --- wrong types --------------------------------------------------------------------------------------------


def test_an_age_written_as_a_word_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(age="forty")), "age", "forty")


def test_an_age_of_true_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(age=True)), "age", "true")


def test_a_fractional_intensity_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(pain__intensity=5.5)), "pain.intensity", "5.5")


def test_regions_given_as_a_string_are_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__regions="lower_back"))

    assert_names_field(result, "pain.regions", "lower_back")


# --- unknown codes ------------------------------------------------------------------------------------------


def test_an_unknown_finding_code_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake("haunted_spine"))

    assert_names_field(result, "findings[0].code", "haunted_spine")


def test_an_unknown_region_code_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__regions=["lower_back", "elbow"]))

    assert_names_field(result, "pain.regions[1]", "elbow")


def test_an_unknown_goal_code_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(goals=["relaxation", "levitation"]))

    assert_names_field(result, "goals[1]", "levitation")


def test_an_unknown_onset_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__onset="alien_abduction"))

    assert_names_field(result, "pain.onset", "alien_abduction")


# --- unknown fields -----------------------------------------------------------------------------------------


def test_an_unknown_top_level_field_is_rejected_naming_it(cli, tmp_path):
    assert_rejected(screen_doc(cli, tmp_path, make_intake(favourite_colour="blue")), "favourite_colour")


def test_an_unknown_field_inside_pain_is_rejected_naming_it(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__sharpness=3))

    assert_names_field(result, "pain", "sharpness")


def test_an_unknown_field_inside_a_finding_is_rejected_naming_it(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake({"code": "fever", "celsius": 39}))

    assert_names_field(result, "findings[0]", "celsius")


# --- out of range -------------------------------------------------------------------------------------------


def test_an_age_of_minus_one_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(age=-1)), "age", "-1")


def test_an_age_of_121_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(age=121)), "age", "121")


def test_an_intensity_of_eleven_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(pain__intensity=11)), "pain.intensity", "11")


def test_a_negative_duration_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__duration_weeks=-1))

    assert_names_field(result, "pain.duration_weeks", "-1")


def test_a_duration_over_a_hundred_years_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__duration_weeks=5201))

    assert_names_field(result, "pain.duration_weeks", "5201")


def test_pregnancy_week_46_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(sex="female", pregnancy_weeks=46))

    assert_names_field(result, "pregnancy_weeks", "46")


def test_a_finding_from_minus_one_weeks_ago_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake({"code": "recent_surgery", "weeks_ago": -1}))

    assert_names_field(result, "findings[0].weeks_ago", "-1")


# --- missing or malformed structure -------------------------------------------------------------------------


def test_an_intake_without_pain_is_rejected_naming_the_missing_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, without(make_intake(), "pain"))

    assert_rejected(result)
    assert any("missing" in line and "pain" in line for line in result.stderr.splitlines())


def test_pain_without_regions_is_rejected_naming_the_missing_field(cli, tmp_path):
    doc = make_intake()
    del doc["pain"]["regions"]

    result = screen_doc(cli, tmp_path, doc)

    assert_rejected(result)
    assert any("missing" in line and "pain" in line and "regions" in line for line in result.stderr.splitlines())


def test_an_empty_regions_list_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(pain__regions=[])), "pain.regions")


def test_a_repeated_region_is_rejected_naming_the_field(cli, tmp_path):
    result = screen_doc(cli, tmp_path, make_intake(pain__regions=["lower_back", "lower_back"]))

    assert_names_field(result, "pain.regions")


def test_schema_version_2_is_rejected_naming_the_field(cli, tmp_path):
    assert_names_field(screen_doc(cli, tmp_path, make_intake(schema_version="2")), "schema_version", "2")


def test_several_errors_are_all_named_in_one_message(cli, tmp_path):
    doc = make_intake("haunted_spine", age=-1, pain__intensity=11)

    result = screen_doc(cli, tmp_path, doc)

    assert_names_field(result, "pain.intensity", "11")
    assert_names_field(result, "findings[0].code", "haunted_spine")
    assert_names_field(result, "age", "-1")


# --- accepted after all -------------------------------------------------------------------------------------


def test_integers_written_with_a_decimal_point_are_accepted(cli, tmp_path):
    text = json.dumps(make_intake(age=40, pain__intensity=4))
    text = text.replace('"age": 40', '"age": 40.0').replace('"intensity": 4', '"intensity": 4.0')
    assert '"age": 40.0' in text
    assert '"intensity": 4.0' in text

    result = screen_text(cli, tmp_path, text)

    assert result.returncode == 0, result.stderr
    assert result.json()["decision"] == "proceed"


# --- batch --------------------------------------------------------------------------------------------------


def test_each_bad_batch_line_gets_an_error_object_naming_its_field(cli, tmp_path):
    bad = [
        ("pain.intensity", make_intake(id="intensity", pain__intensity=11)),
        ("findings[0].code", make_intake("haunted_spine", id="finding")),
        ("age", make_intake(id="age", age="forty")),
        ("pain.regions[0]", make_intake(id="region", pain__regions=["elbow"])),
        ("pregnancy_weeks", make_intake(id="pregnancy", pregnancy_weeks=46)),
    ]
    lines = [json.dumps(make_intake(id="good"))] + [json.dumps(doc) for _, doc in bad]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(line + "\n" for line in lines))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert out[0]["id"] == "good"
    assert out[0]["decision"] == "proceed"
    for number, ((field, doc), obj) in enumerate(zip(bad, out[1:], strict=True), start=2):
        assert obj["line"] == number
        assert obj["id"] == doc["id"]
        assert obj["error"].startswith(f"{field}:")


def test_an_invalid_json_batch_line_gets_an_error_object(cli, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(make_intake(id="a")) + "\n" + '{"id": "b", broken\n')

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 1
    second = json.loads(result.stdout.splitlines()[1])
    assert second["line"] == 2
    assert "JSON" in second["error"]


def test_a_50_megabyte_batch_line_is_rejected_without_crashing(cli, tmp_path):
    huge = json.dumps(make_intake({"code": "fever", "note": "x" * BIG}, id="huge"))
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join([json.dumps(make_intake(id="a")), huge, json.dumps(make_intake(id="c"))]) + "\n")

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    first, second, third = (json.loads(line) for line in result.stdout.splitlines())
    assert first["id"] == "a"
    assert second["line"] == 2
    assert second["id"] == "huge"
    assert "bytes" in second["error"]
    assert third["id"] == "c"
