"""Find and read script files and their conversation tests on disk."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot.loader import LoadResult, parse_script
from bot.problems import Problem, Severity

TEST_SUFFIX = ".test.yaml"


def is_test_file(path: Path) -> bool:
    return path.name.endswith((TEST_SUFFIX, ".test.yml"))


def script_files(paths: Iterable[Path]) -> list[Path]:
    """Scripts named directly, and every *.yaml below a folder except conversation tests."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                p for p in sorted(path.rglob("*.y*ml")) if p.is_file() and not is_test_file(p)
            )
        else:
            found.append(path)
    return found


def conversation_test_files(paths: Iterable[Path]) -> list[Path]:
    """Test files named directly or found below a folder; for a script, its sibling test file."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(sorted(path.rglob("*" + TEST_SUFFIX)))
        elif is_test_file(path):
            found.append(path)
        else:
            sibling = path.with_name(path.name.rsplit(".", 1)[0] + TEST_SUFFIX)
            if sibling.exists():
                found.append(sibling)
    return found


def read_script(path: Path) -> LoadResult:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem(Severity.ERROR, f"cannot read the file: {error}", file=str(path))
        return LoadResult(None, (problem,))
    return parse_script(source, str(path))
