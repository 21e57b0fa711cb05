"""The shipped example scripts pass `leadbot check --strict` and their own conversation tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bot.loader import load_script
from webhooks.cli import main

EXAMPLES = Path(__file__).parent.parent / "examples" / "scripts"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".test.yaml"))
USE_CASES = {"car_test_drive", "campus_visit", "retail_sample", "b2b_services", "recruiting"}


def test_every_use_case_has_a_script_and_tests() -> None:
    assert {p.stem for p in SCRIPTS} >= USE_CASES
    for script in SCRIPTS:
        assert script.with_name(script.stem + ".test.yaml").exists(), f"{script.name} has no tests"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_is_clean_under_strict_check(script: Path) -> None:
    result = CliRunner().invoke(main, ["check", "--strict", str(script)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_conversation_tests_pass(script: Path) -> None:
    result = CliRunner().invoke(main, ["test", str(script)])
    assert result.exit_code == 0, result.output
    assert " 0 failed" in result.output


def test_an_example_is_bilingual() -> None:
    assert any(len(load_script(p.read_text()).spec.languages) > 1 for p in SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_is_portable_yaml(script: Path) -> None:
    """leadbot reads YAML with libyaml, which accepts a few things the YAML spec (and PyYAML's
    pure-Python loader, and other tools) do not: examples stay within what every loader reads."""
    yaml.load(script.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
