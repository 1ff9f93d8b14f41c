"""`backcare screen` and `backcare rules` as a user runs them: output, formats, batch mode, exit statuses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from backcare.clinical import vocabulary as vocab
from backcare.clinical.rulebase import default_rule_base
from conftest import make_intake, shared_path

# Two findings that both leave a plan: a result with several findings, precautions and a course.
ANTICOAGULANTS_AND_BRUISE = make_intake(
    "anticoagulants", {"code": "bruise", "region": "arm_right"}, id="two-findings", goals=["contracture"]
)


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def squeezed(text: str) -> str:
    """Text without whitespace, so a citation wrapped over lines (even at a hyphen) still matches."""
    return re.sub(r"\s+", "", text)


def screening_validator() -> Draft202012Validator:
    schemas = [
        json.loads(shared_path("spec", name).read_text()) for name in ("intake.schema.json", "screening.schema.json")
    ]
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    return Draft202012Validator(schemas[1], registry=registry)


def schema_problems(result: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in screening_validator().iter_errors(result)]


@pytest.fixture
def intake_file(tmp_path: Path) -> Path:
    return write(tmp_path / "intake.json", ANTICOAGULANTS_AND_BRUISE)


# --- one intake, JSON ---------------------------------------------------------------------------------------


def test_screen_format_json_prints_one_result_valid_against_the_screening_schema(cli, intake_file):
    result = cli("screen", "--format", "json", str(intake_file))

    assert result.returncode == 0, result.stderr
    assert schema_problems(result.json()) == []


def test_screen_format_json_prints_exactly_one_json_document_on_one_line(cli, intake_file):
    result = cli("screen", "--format", "json", str(intake_file))

    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert result.json()["id"] == "two-findings"


def test_screen_reads_the_intake_from_standard_input_given_a_dash(cli, intake_file):
    from_file = cli("screen", "--format", "json", str(intake_file))
    from_stdin = cli("screen", "--format", "json", "-", input=intake_file.read_bytes())

    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout


def test_screen_out_writes_the_result_to_the_file_and_nothing_to_stdout(cli, intake_file, tmp_path):
    out = tmp_path / "result.json"

    result = cli("screen", "--format", "json", "--out", str(out), str(intake_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    written = json.loads(out.read_text())
    assert written["id"] == "two-findings"
    assert schema_problems(written) == []


def test_screen_prints_json_by_default_when_stdout_is_not_a_terminal(cli, intake_file):
    result = cli("screen", str(intake_file))

    assert result.returncode == 0, result.stderr
    assert result.json()["decision"] == "proceed_with_precautions"


def test_screening_the_same_input_twice_gives_byte_identical_output(cli, intake_file):
    first = cli("screen", "--format", "json", str(intake_file))
    second = cli("screen", "--format", "json", str(intake_file))

    assert first.returncode == second.returncode == 0
    assert first.stdout
    assert first.stdout == second.stdout


def test_the_result_names_the_rule_base_version_and_a_sha256_digest(cli, intake_file):
    rule_base = cli("screen", "--format", "json", str(intake_file)).json()["rule_base"]

    assert rule_base["version"] == default_rule_base().version
    assert re.fullmatch(r"[0-9a-f]{64}", rule_base["digest"])


# --- one intake, text ---------------------------------------------------------------------------------------


@pytest.fixture
def as_text_and_json(cli, intake_file) -> tuple[str, dict[str, Any]]:
    text = cli("screen", "--format", "text", str(intake_file))
    assert text.returncode == 0, text.stderr
    return text.stdout, cli("screen", "--format", "json", str(intake_file)).json()


def test_the_text_summary_states_the_decision_in_words(as_text_and_json):
    text, _ = as_text_and_json

    assert "PROCEED WITH PRECAUTIONS" in text
    assert not text.lstrip().startswith("{")


def test_the_text_summary_names_every_finding_by_title_and_rule_id(as_text_and_json):
    text, result = as_text_and_json

    assert len(result["findings"]) == 2
    for finding in result["findings"]:
        assert finding["title"] in text
        assert finding["rule"] in text


def test_the_text_summary_gives_the_maximum_pressure(as_text_and_json):
    text, result = as_text_and_json

    line = next(line for line in text.splitlines() if "Maximum pressure" in line)
    assert str(result["precautions"]["max_pressure"]) in line


def test_the_text_summary_gives_the_plan(as_text_and_json):
    text, result = as_text_and_json
    plan = result["plan"]

    assert f"{plan['sessions']} sessions over {plan['weeks']} weeks" in text
    for technique in plan["techniques"]:
        assert squeezed(vocab.TECHNIQUES[technique]) in squeezed(text)


def test_the_text_summary_ends_with_sources_cited_in_full(as_text_and_json):
    text, result = as_text_and_json

    assert "\nSOURCES\n" in text
    sources = squeezed(text.split("\nSOURCES\n", 1)[1])
    rule_base = default_rule_base()
    for finding in result["findings"]:
        for ref in rule_base.rule(finding["rule"]).sources:
            assert squeezed(ref.source.citation) in sources


# --- batch --------------------------------------------------------------------------------------------------


def batch_lines(*docs: dict[str, Any] | str) -> list[str]:
    return [d if isinstance(d, str) else json.dumps(d) for d in docs]


def parsed_lines(stdout: str) -> list[Any]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_batch_writes_one_result_per_input_line_in_order_echoing_ids(cli, tmp_path):
    ids = ["first", "second", "third", "fourth"]
    path = write_lines(tmp_path / "in.jsonl", batch_lines(*(make_intake(id=i) for i in ids)))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in parsed_lines(result.stdout)] == ids


def test_batch_results_are_valid_against_the_screening_schema(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(ANTICOAGULANTS_AND_BRUISE, make_intake("fever")))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 0, result.stderr
    for line in parsed_lines(result.stdout):
        assert schema_problems(line) == []


def test_batch_answers_an_invalid_line_with_an_error_object_in_its_place_and_screens_the_rest(cli, tmp_path):
    path = write_lines(
        tmp_path / "in.jsonl",
        batch_lines(make_intake(id="a"), make_intake(id="b", age=-1), make_intake(id="c")),
    )

    result = cli("screen", "--batch", "--no-progress", str(path))

    first, second, third = parsed_lines(result.stdout)
    assert first["id"] == "a"
    assert first["decision"] == "proceed"
    assert set(second) == {"line", "id", "error"}
    assert second["line"] == 2
    assert second["id"] == "b"
    assert "age" in second["error"]
    assert third["id"] == "c"
    assert third["decision"] == "proceed"


def test_batch_exits_1_when_any_line_was_rejected(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(make_intake(id="a"), make_intake(id="b", age=-1)))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 1


def test_batch_exits_0_when_every_line_is_valid(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(make_intake(id="a"), make_intake("fever", id="b")))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 0, result.stderr


def test_a_blank_line_in_a_batch_gets_an_error_object_so_lines_stay_aligned(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(make_intake(id="a"), "", make_intake(id="c")))

    result = cli("screen", "--batch", "--no-progress", str(path))

    lines = parsed_lines(result.stdout)
    assert len(lines) == 3
    assert lines[1]["line"] == 2
    assert lines[1]["id"] is None
    assert lines[1]["error"]
    assert lines[2]["id"] == "c"
    assert result.returncode == 1


def test_a_batch_result_equals_the_single_file_result_for_the_same_intake(cli, tmp_path, intake_file):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(make_intake(id="other"), ANTICOAGULANTS_AND_BRUISE))

    batch = cli("screen", "--batch", "--no-progress", str(path))
    single = cli("screen", "--format", "json", str(intake_file))

    assert parsed_lines(batch.stdout)[1] == single.json()


def test_batch_progress_goes_to_stderr_leaving_stdout_pure_json_lines(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(*(make_intake(id=str(i)) for i in range(5))))

    result = cli("screen", "--batch", str(path))

    assert result.returncode == 0, result.stderr
    assert "%" in result.stderr
    assert "screening" in result.stderr
    assert len(parsed_lines(result.stdout)) == 5


def test_no_progress_removes_the_progress_bar_from_stderr(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(*(make_intake(id=str(i)) for i in range(5))))

    result = cli("screen", "--batch", "--no-progress", str(path))

    assert result.returncode == 0, result.stderr
    assert "%" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_last_stderr_line_of_a_batch_reports_the_counts(cli, tmp_path):
    path = write_lines(
        tmp_path / "in.jsonl",
        batch_lines(make_intake(id="a"), make_intake(id="b", age=-1), make_intake(id="c")),
    )

    result = cli("screen", "--batch", str(path))

    last = result.stderr.strip().splitlines()[-1]
    assert re.search(r"\b2\b.*screened|screened\D*\b2\b", last)
    assert re.search(r"\b1\b.*rejected|rejected\D*\b1\b", last)


def test_batch_reads_standard_input_given_a_dash(cli):
    lines = batch_lines(make_intake(id="a"), make_intake(id="b"))

    result = cli("screen", "--batch", "--no-progress", "-", input="".join(line + "\n" for line in lines))

    assert result.returncode == 0, result.stderr
    assert [r["id"] for r in parsed_lines(result.stdout)] == ["a", "b"]


def test_batch_with_format_text_is_a_usage_error(cli, tmp_path):
    path = write_lines(tmp_path / "in.jsonl", batch_lines(make_intake(id="a")))

    result = cli("screen", "--batch", "--format", "text", str(path))

    assert result.returncode == 2
    assert result.stdout == ""
    assert "--format" in result.stderr
    assert "Traceback" not in result.stderr


# --- course options -----------------------------------------------------------------------------------------


def test_course_options_set_the_sessions_weeks_and_reassessment_of_the_plan(cli, intake_file):
    result = cli(
        "screen", "--format", "json", "--sessions", "6", "--weeks", "8", "--reassess-after", "3", str(intake_file)
    )

    assert result.returncode == 0, result.stderr
    plan = result.json()["plan"]
    assert (plan["sessions"], plan["weeks"], plan["reassess_after_session"]) == (6, 8, 3)


def test_a_reassessment_after_the_last_session_is_a_usage_error(cli, intake_file):
    result = cli("screen", "--format", "json", "--reassess-after", "9", "--sessions", "4", str(intake_file))

    assert result.returncode == 2
    assert result.stdout == ""
    assert "reassess" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_course_of_zero_sessions_is_a_usage_error(cli, intake_file):
    result = cli("screen", "--format", "json", "--sessions", "0", str(intake_file))

    assert result.returncode == 2
    assert result.stdout == ""
    assert "sessions" in result.stderr


# --- rules --------------------------------------------------------------------------------------------------


def test_rules_lists_every_rule_id_of_the_rule_base(cli):
    result = cli("rules")

    assert result.returncode == 0, result.stderr
    for rule in default_rule_base().rules:
        assert rule.id in result.stdout


def test_rules_cites_every_source_of_every_rule(cli):
    result = cli("rules")

    text = squeezed(result.stdout)
    for rule in default_rule_base().rules:
        assert rule.sources
        for source in rule.sources:
            assert squeezed(source.cite()) in text


def test_rules_format_json_has_every_rule_with_its_sources(cli):
    result = cli("rules", "--format", "json")

    assert result.returncode == 0, result.stderr
    listed = {r["id"]: r for g in result.json()["groups"] for r in g["rules"]}
    rule_base = default_rule_base()
    assert set(listed) == {rule.id for rule in rule_base.rules}
    for rule in rule_base.rules:
        assert listed[rule.id]["sources"] == [s.cite() for s in rule.sources]


def test_rules_format_markdown_starts_with_a_heading(cli):
    result = cli("rules", "--format", "markdown")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("# ")


def test_rules_check_passes_on_the_shipped_rule_base(cli):
    result = cli("rules", "--check")

    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stdout + result.stderr


# --- usage errors -------------------------------------------------------------------------------------------


def assert_usage_error(result) -> None:
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage:" in result.stderr
    assert "Traceback" not in result.stderr


def test_no_subcommand_is_a_usage_error(cli):
    assert_usage_error(cli())


def test_an_unknown_option_is_a_usage_error_naming_it(cli, intake_file):
    result = cli("screen", "--colour", "blue", str(intake_file))

    assert_usage_error(result)
    assert "--colour" in result.stderr


def test_screen_without_a_path_is_a_usage_error(cli):
    result = cli("screen", "--format", "json")

    assert_usage_error(result)
    assert "PATH" in result.stderr


def test_an_unwritable_out_path_is_a_usage_error_naming_the_path(cli, intake_file, tmp_path):
    target = tmp_path / "missing-folder" / "result.json"
    result = cli("screen", "--format", "json", "--out", str(target), str(intake_file))
    assert result.returncode == 2
    assert f"{target}: cannot write" in result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_text_format_with_out_writes_the_summary_to_the_file(cli, intake_file, tmp_path):
    target = tmp_path / "summary.txt"
    result = cli("screen", "--format", "text", "--out", str(target), str(intake_file))
    assert result.returncode == 0
    assert result.stdout == ""
    assert "DECISION:" in target.read_text()
