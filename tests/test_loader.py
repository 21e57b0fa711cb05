"""`leadbot check` finds each kind of problem, at the right line, and nothing in a good script."""

from __future__ import annotations

import textwrap

import pytest

from bot.errors import ScriptError
from bot.loader import load_script, parse_script
from bot.problems import Severity

GOOD = """\
id: demo
name: Demo
languages: [en, es]
lead_fields: [first_name, email]
greeting: {en: "Hi {{ lead.first_name }}", es: "Hola {{ lead.first_name }}"}
questions:
  - id: model
    type: choice
    prompt: {en: Which model?, es: ¿Qué modelo?}
    options:
      - value: suv
        label: {en: SUV, es: SUV}
        score: 10
      - value: sedan
        label: {en: Sedan, es: Berlina}
    next:
      - if: answers.model == 'suv'
        goto: budget
      - goto: email
  - id: budget
    type: number
    prompt: {en: Budget?, es: ¿Presupuesto?}
  - id: email
    type: email
    prefill: email
    prompt: {en: Email?, es: ¿Correo?}
scoring:
  - if: answers.budget >= 10000
    points: 30
outcomes:
  - id: qualified
    min_score: 30
    message: {en: Great!, es: ¡Genial!}
  - id: nurture
    message: {en: Thanks!, es: ¡Gracias!}
"""


def test_good_script_has_no_problems() -> None:
    result = parse_script(GOOD, "good.yaml")
    assert result.problems == ()
    assert result.script is not None
    assert result.script.order == ("model", "budget", "email")


def test_version_is_a_content_hash_that_ignores_formatting() -> None:
    first = load_script(GOOD)
    reformatted = load_script("# a comment\n" + GOOD.replace("name: Demo", "name:    Demo"))
    changed = load_script(GOOD.replace("Budget?", "Your budget?"))
    assert first.version == reformatted.version
    assert first.version != changed.version


def _line_of(source: str, marker: str | tuple[str, int]) -> int:
    """The line holding `marker`, or its n-th occurrence for (marker, n)."""
    text, occurrence = marker if isinstance(marker, tuple) else (marker, 1)
    found = [n for n, line in enumerate(source.splitlines(), start=1) if text in line]
    assert len(found) >= occurrence, f"marker {marker!r} not in the source"
    return found[occurrence - 1]


# Each case: (description, replace this, with this, expected message fragment, marker on the
# line the problem must be reported at, severity).
CASES = [
    (
        "yaml syntax",
        "name: Demo",
        "name: [Demo",
        "YAML syntax",
        "languages: [en, es]",
        Severity.ERROR,
    ),
    (
        "unknown key",
        "    prompt: {en: Budget?, es: ¿Presupuesto?}",
        "    prompt: {en: Budget?, es: ¿Presupuesto?}\n    colour: red",
        "unknown key 'colour'",
        "colour: red",
        Severity.ERROR,
    ),
    (
        "wrong type",
        "    type: number\n",
        "    type: number\n    max_attempts: lots\n",
        "valid integer",
        "max_attempts: lots",
        Severity.ERROR,
    ),
    (
        "unknown question type",
        "    type: email",
        "    type: mail",
        "does not match any of the expected tags",
        "  - id: email",
        Severity.ERROR,
    ),
    (
        "missing required key",
        "    prompt: {en: Budget?, es: ¿Presupuesto?}\n",
        "",
        "missing required key 'prompt'",
        "  - id: budget",
        Severity.ERROR,
    ),
    (
        "goto an unknown target",
        "        goto: budget",
        "        goto: budgte",
        "goto 'budgte' is neither a question, an outcome nor `end`",
        "goto: budgte",
        Severity.ERROR,
    ),
    (
        "prefill an undeclared lead field",
        "    prefill: email",
        "    prefill: work_email",
        "lead field 'work_email'",
        "prefill: work_email",
        Severity.ERROR,
    ),
    (
        "unknown lead field in a template",
        'es: "Hola {{ lead.first_name }}"',
        'es: "Hola {{ lead.nickname }}"',
        "lead.nickname",
        "greeting:",
        Severity.ERROR,
    ),
    (
        "unknown template variable",
        'es: "Hola {{ lead.first_name }}"',
        'es: "Hola {{ user.name }}"',
        "unknown variable 'user'",
        "greeting:",
        Severity.ERROR,
    ),
    (
        "unknown answer in a condition",
        "  - if: answers.budget >= 10000",
        "  - if: answers.budgte >= 10000",
        "answers.budgte",
        "answers.budgte",
        Severity.ERROR,
    ),
    (
        "condition that does not compile",
        "  - if: answers.budget >= 10000",
        "  - if: answers.budget >=",
        "does not compile",
        "answers.budget >=",
        Severity.ERROR,
    ),
    (
        "template that does not compile",
        'es: "Hola {{ lead.first_name }}"',
        'es: "Hola {{ lead.first_name "',
        "template does not compile",
        "greeting:",
        Severity.ERROR,
    ),
    (
        "duplicate question id",
        "  - id: email\n",
        "  - id: budget\n",
        "duplicate question id 'budget'",
        ("  - id: budget", 2),
        Severity.ERROR,
    ),
    (
        "duplicate option value",
        "      - value: sedan",
        "      - value: suv",
        "duplicate option value 'suv'",
        ("      - value: suv", 2),
        Severity.ERROR,
    ),
    (
        "duplicate key",
        "    type: number\n",
        "    type: number\n    type: text\n",
        "duplicate key 'type'",
        "type: text",
        Severity.ERROR,
    ),
    (
        "text missing in a declared language",
        "    prompt: {en: Email?, es: ¿Correo?}",
        "    prompt: {en: Email?}",
        "missing in declared language(s): es",
        "prompt: {en: Email?}",
        Severity.ERROR,
    ),
    (
        "text in an undeclared language",
        "    prompt: {en: Email?, es: ¿Correo?}",
        "    prompt: {en: Email?, es: ¿Correo?, fr: Courriel ?}",
        "language 'fr' is not in the script's languages",
        "fr: Courriel",
        Severity.ERROR,
    ),
    (
        "unreachable question",
        "      - goto: email\n  - id: budget\n    type: number\n",
        "      - goto: qualified\n  - id: budget\n    type: number\n    next: qualified\n",
        "question 'email' can never be reached",
        "  - id: email",
        Severity.WARNING,
    ),
    (
        "unreachable outcome",
        "  - id: qualified\n    min_score: 30\n",
        "  - id: nurture_all\n  - id: qualified\n    min_score: 30\n",
        "outcome 'qualified' can never be reached",
        "  - id: qualified",
        Severity.WARNING,
    ),
    (
        "loop with no way out",
        "    type: number\n",
        "    type: number\n    next: budget\n",
        "loop with no way out",
        "  - id: budget",
        Severity.ERROR,
    ),
    (
        "no default outcome",
        "  - id: nurture\n",
        "  - id: nurture\n    when: answers.model == 'sedan'\n",
        "no default outcome",
        "outcomes:",
        Severity.ERROR,
    ),
    (
        "unknown built-in message",
        "outcomes:",
        "messages:\n  helpp: {en: Help!, es: ¡Ayuda!}\noutcomes:",
        "unknown message 'helpp'",
        "helpp:",
        Severity.ERROR,
    ),
    (
        "invalid regex",
        "    type: number\n",
        "    type: text\n    pattern: '[a-'\n",
        "not a valid regular expression",
        "pattern: '[a-'",
        Severity.ERROR,
    ),
    (
        "unknown time zone",
        "name: Demo",
        "name: Demo\ntimezone: Mars/Olympus",
        "unknown time zone",
        "timezone: Mars/Olympus",
        Severity.ERROR,
    ),
    (
        "scoring rule reading the score",
        "  - if: answers.budget >= 10000",
        "  - if: score >= 10",
        "cannot use `score`",
        "if: score >= 10",
        Severity.ERROR,
    ),
]


@pytest.mark.parametrize(
    ("description", "old", "new", "message", "marker", "severity"),
    CASES,
    ids=[case[0] for case in CASES],
)
def test_checker_reports_problem_at_its_line(
    description: str,
    old: str,
    new: str,
    message: str,
    marker: str | tuple[str, int],
    severity: Severity,
) -> None:
    assert old in GOOD, f"case {description!r} does not apply to GOOD"
    source = GOOD.replace(old, new, 1)
    result = parse_script(source, "broken.yaml")
    matching = [p for p in result.problems if message in p.message]
    assert matching, (
        f"no problem mentioning {message!r}; got {[p.render() for p in result.problems]}"
    )
    problem = matching[0]
    expected_line = _line_of(source, marker)
    assert problem.line == expected_line, problem.render()
    assert problem.column >= 1
    assert problem.file == "broken.yaml"
    assert problem.severity is severity
    if severity is Severity.ERROR:
        assert result.script is None
    else:
        assert result.script is not None


def test_all_problems_are_reported_at_once() -> None:
    source = GOOD.replace("        goto: budget", "        goto: nowhere").replace(
        "    prefill: email", "    prefill: fax"
    )
    with pytest.raises(ScriptError) as raised:
        load_script(source, "two.yaml")
    messages = [p.message for p in raised.value.problems]
    assert any("nowhere" in m for m in messages)
    assert any("'fax'" in m for m in messages)
    assert "two.yaml:" in str(raised.value)


def test_problem_render_names_file_line_column_and_path() -> None:
    source = GOOD.replace("    type: number\n", "    type: number\n    colour: red\n")
    problem = parse_script(source, "s.yaml").errors[0]
    line = _line_of(source, "colour: red")
    assert problem.render() == f"s.yaml:{line}:5: error: questions[1].colour: unknown key 'colour'"


def test_unconditional_branch_before_others_is_warned() -> None:
    source = GOOD.replace(
        "      - if: answers.model == 'suv'\n        goto: budget\n      - goto: email",
        "      - goto: budget\n      - if: answers.model == 'suv'\n        goto: email",
    )
    result = parse_script(source)
    assert any("never taken" in p.message for p in result.warnings)


def test_not_a_mapping() -> None:
    result = parse_script(textwrap.dedent("- just\n- a list\n"))
    assert result.errors[0].message == "a script is a mapping of keys to values"


def test_empty_document() -> None:
    result = parse_script("")
    assert result.script is None
    assert result.errors
