"""The `leadbot` command line: check, schema, graph, chat and test, as a user runs them."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.spec import json_schema
from tests.test_loader import GOOD
from webhooks.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"
CAR = EXAMPLES / "car_test_drive.yaml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_check_clean_script_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 script(s) checked: 0 error(s), 0 warning(s)" in result.output


def test_check_reports_every_error_with_position_and_exits_1(
    runner: CliRunner, tmp_path: Path
) -> None:
    source = GOOD.replace("        goto: budget", "        goto: nowhere").replace(
        "    prefill: email", "    prefill: fax"
    )
    path = write(tmp_path, "bad.yaml", source)
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    lines = source.splitlines()
    goto_line = lines.index("        goto: nowhere") + 1
    prefill_line = lines.index("    prefill: fax") + 1
    assert (
        f"{path}:{goto_line}:15: error: questions[0].next[0].goto: goto 'nowhere'" in result.output
    )
    assert f"{path}:{prefill_line}:14: error: questions[2].prefill:" in result.output
    assert "2 error(s)" in result.output


def test_check_warnings_fail_only_with_strict(runner: CliRunner, tmp_path: Path) -> None:
    source = GOOD.replace(
        "  - id: qualified\n    min_score: 30\n",
        "  - id: all\n  - id: qualified\n    min_score: 30\n",
    ).replace("  - id: nurture\n    message: {en: Thanks!, es: ¡Gracias!}\n", "")
    path = write(tmp_path, "warn.yaml", source)
    relaxed = runner.invoke(main, ["check", str(path)])
    assert relaxed.exit_code == 0, relaxed.output
    assert "warning: outcomes[1]: outcome 'qualified' can never be reached" in relaxed.output
    strict = runner.invoke(main, ["check", "--strict", str(path)])
    assert strict.exit_code == 1


def test_check_a_folder_skips_test_files(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD)
    write(tmp_path, "a.test.yaml", "not: a script")
    result = runner.invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "1 script(s) checked" in result.output


def test_check_missing_file_is_a_clear_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["check", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_check_unreadable_bytes(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage")
    result = runner.invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "cannot read the file" in result.output


def test_schema_is_valid_json_schema_of_the_format(runner: CliRunner) -> None:
    result = runner.invoke(main, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema == json_schema()
    assert schema["title"] == "leadbot script"
    assert {"id", "name", "questions", "outcomes"} <= set(schema["required"])
    assert schema["additionalProperties"] is False


def test_docs_schema_file_is_current() -> None:
    committed = Path(__file__).parent.parent / "docs" / "script.schema.json"
    assert json.loads(committed.read_text()) == json_schema(), (
        "docs/script.schema.json is stale: run `leadbot schema > docs/script.schema.json`"
    )


def test_graph_prints_mermaid(runner: CliRunner) -> None:
    result = runner.invoke(main, ["graph", str(CAR)])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0] == "flowchart TD"
    assert "    start --> q_model" in lines
    assert "    q_timeline -->|\"answers.timeline == 'later'\"| q_newsletter" in lines
    assert '    q_newsletter -.->|"declined"| o_not_now' in lines


def test_graph_of_a_broken_script_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", GOOD.replace("goto: budget", "goto: nowhere"))
    result = runner.invoke(main, ["graph", str(path)])
    assert result.exit_code == 1
    assert "nowhere" in result.output


def test_chat_plays_piped_lines_and_prints_the_lead(runner: CliRunner) -> None:
    # 30k, the first showroom, a wish for a time, the first slot offered for it, the phone.
    replies = "1\nthis month\nno\n30k\n1\nsaturday at 11am\n1\nyes\n"
    result = runner.invoke(
        main,
        ["chat", str(CAR), "--prefill", "first_name=Ana", "--prefill", "phone=612345678"],
        input=replies,
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "bot: Hi Ana!" in out
    assert "     1. SUV X" in out
    assert "you: 30k" in out
    assert "  budget: 30,000" in out
    assert "bot: You're booked: " in out
    assert re.search(r"^  visit: .+, Downtown showroom \(Calle Mayor 1, Madrid\)$", out, re.M)
    assert "  outcome: booked (score 60)" in out
    assert "    - budget of 20k or more: +20" in out


def test_chat_in_spanish_with_wait_and_rep_commands(runner: CliRunner) -> None:
    result = runner.invoke(
        main, ["chat", str(CAR), "--lang", "es"], input="/wait\nvendedor\n/back\n/quit\n"
    )
    assert result.exit_code == 0, result.output
    assert "bot: ¿Sigues ahí? Estás a un paso de tu prueba." in result.output
    assert "(handed off to a rep:" in result.output
    assert "not finished (active)" in result.output


def test_chat_rejects_bad_prefill(runner: CliRunner) -> None:
    result = runner.invoke(main, ["chat", str(CAR), "--prefill", "nonsense"])
    assert result.exit_code == 2
    assert "'nonsense' is not KEY=VALUE" in result.output
    result = runner.invoke(main, ["chat", str(CAR), "--prefill", "shoe_size=44"])
    assert result.exit_code == 2
    assert "no lead field shoe_size" in result.output


CASES = """\
script: good.yaml
tests:
  - name: suv buyer qualifies
    lead: {first_name: Ana, email: ana@example.com}
    conversation:
      - bot: Hi Ana
      - bot: Which model?
      - user: suv
      - bot: {matches: "^Budget\\\\?"}
      - user: 20k
      - bot: Great
    expect:
      answers: {model: suv, budget: 20000, email: ana@example.com}
      outcome: qualified
      score: 40
      status: completed
"""


def test_test_command_passes(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "good.test.yaml", CASES)
    result = runner.invoke(main, ["test", str(tmp_path / "good.yaml")])
    assert result.exit_code == 0, result.output
    assert "PASS" in result.output
    assert "conversation tests: 1 passed, 0 failed" in result.output


def test_test_command_prints_a_readable_difference(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    wrong = CASES.replace("budget: 20000", "budget: 25000").replace("score: 40", "score: 45")
    write(tmp_path, "good.test.yaml", wrong)
    result = runner.invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    out = result.output
    assert "FAIL" in out
    assert "answers differ (- expected, + actual):" in out
    assert '-  "budget": 25000,' in out
    assert '+  "budget": 20000,' in out
    assert "score: expected 45, got 40 (model = SUV: +10; answers.budget >= 10000: +30;" in out
    assert "  conversation:" in out
    assert "prospect: 20k" in out


def test_test_command_reports_a_missing_bot_line(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "good.test.yaml", CASES.replace("- bot: Great", "- bot: Fantastic"))
    result = runner.invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "step 6: expected a bot message containing 'Fantastic'" in result.output
    assert "> Great!" in result.output


def test_test_command_reports_a_malformed_test_file(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(
        tmp_path,
        "good.test.yaml",
        CASES.replace("      - user: suv", "      - user: suv\n        pick: suv"),
    )
    result = runner.invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "good.test.yaml:8:9: error: tests[0].conversation[2]:" in result.output
    assert "exactly one key" in result.output


def test_test_command_without_tests_fails(runner: CliRunner, tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(main, ["test", str(tmp_path)])
    assert result.exit_code == 1
    assert "no conversation tests" in result.output
