"""A problem found in a script, with where it is."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

YamlPath = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding of the checker; `line` and `column` are 1-based, 0 when unknown."""

    severity: Severity
    message: str
    path: YamlPath = ()
    file: str = "<script>"
    line: int = 0
    column: int = 0

    @property
    def dotted_path(self) -> str:
        parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.path]
        return "".join(parts).lstrip(".") or "(document)"

    def render(self) -> str:
        return (
            f"{self.file}:{self.line}:{self.column}: {self.severity}: "
            f"{self.dotted_path}: {self.message}"
        )
