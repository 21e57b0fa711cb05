"""The README's commands are the ones CI runs and the ones that work."""

from __future__ import annotations

import re
from pathlib import Path

from bot.loader import parse_script

ROOT = Path(__file__).parent.parent


def _commands() -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", readme)


def test_readme_starts_with_the_two_commands() -> None:
    run, test = _commands()[:2]
    assert "pip install" in run
    assert "leadbot " in run
    assert "pip install" in test
    assert "pytest" in test


def test_ci_runs_the_readmes_test_command() -> None:
    test = _commands()[1]
    assert test in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_the_quickstart_script_exists() -> None:
    run = _commands()[0]
    for path in re.findall(r"examples/\S+\.yaml", run):
        assert (ROOT / path).is_file(), path


def test_the_readme_script_example_is_a_clean_script() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [example] = re.findall(r"```yaml\n(id: .+?)```", readme, re.DOTALL)
    result = parse_script(example, "README.md")
    assert result.problems == ()
