"""Load a script from YAML text: every problem found at once, each with its line and column."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from bot.checks import Finding, check_script
from bot.compiled import CompiledScript, compile_script
from bot.errors import ScriptError
from bot.problems import Problem, Severity, YamlPath
from bot.spec import Script
from bot.yamlsource import YamlDocument, YamlSyntaxError, read_yaml


@dataclass(frozen=True, slots=True)
class LoadResult:
    script: CompiledScript | None  # None when there are errors
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.severity is Severity.WARNING)


def parse_script(source: str, filename: str = "<script>") -> LoadResult:
    """Check `source` as a whole; return the compiled script when it has no errors."""
    try:
        document = read_yaml(source)
    except YamlSyntaxError as error:
        problem = Problem(
            Severity.ERROR,
            f"YAML syntax: {error}",
            (),
            filename,
            error.position.line,
            error.position.column,
        )
        return LoadResult(None, (problem,))
    findings = [
        Finding(Severity.ERROR, f"duplicate key {path[-1]!r}", path, at_key=True)
        for path in document.duplicate_keys
    ]
    if not isinstance(document.data, dict):
        findings.append(Finding(Severity.ERROR, "a script is a mapping of keys to values", ()))
        return LoadResult(None, _locate(findings, document, filename))
    try:
        spec = Script.model_validate(document.data)
    except ValidationError as error:
        findings.extend(_schema_findings(error, document.data))
        return LoadResult(None, _locate(findings, document, filename))
    findings.extend(check_script(spec))
    problems = _locate(findings, document, filename)
    if any(p.severity is Severity.ERROR for p in problems):
        return LoadResult(None, problems)
    return LoadResult(compile_script(spec, content_version(document.data)), problems)


ModelT = TypeVar("ModelT", bound=BaseModel)


def parse_yaml_model(
    source: str, model: type[ModelT], filename: str
) -> tuple[ModelT | None, tuple[Problem, ...]]:
    """Validate a YAML document against any model of ours, with positioned problems."""
    try:
        document = read_yaml(source)
    except YamlSyntaxError as error:
        line, column = error.position.line, error.position.column
        return None, (Problem(Severity.ERROR, f"YAML syntax: {error}", (), filename, line, column),)
    findings = [
        Finding(Severity.ERROR, f"duplicate key {path[-1]!r}", path, at_key=True)
        for path in document.duplicate_keys
    ]
    try:
        value = model.model_validate(document.data)
    except ValidationError as error:
        findings.extend(_schema_findings(error, document.data))
        return None, _locate(findings, document, filename)
    problems = _locate(findings, document, filename)
    return (None if problems else value), problems


def load_script(source: str, filename: str = "<script>") -> CompiledScript:
    """Like `parse_script`, but raise `ScriptError` listing every error."""
    result = parse_script(source, filename)
    if result.script is None:
        raise ScriptError(result.errors)
    return result.script


def content_version(data: object) -> str:
    """A hash of what the script says, not how it is formatted: comments don't make a version."""
    canonical = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _schema_findings(error: ValidationError, data: object) -> list[Finding]:
    items = [(_data_path(data, item["loc"], item["type"]), item) for item in error.errors()]
    paths = [path for path, _item in items]
    merged: dict[tuple[YamlPath, bool], list[str]] = {}
    for path, item in items:
        # A value that fits no branch of a union (text or map of texts, say) reports one error
        # per branch; when a branch got further, its deeper errors are the ones that help.
        deeper = any(len(other) > len(path) and other[: len(path)] == path for other in paths)
        if deeper and item["type"].endswith("_type"):
            continue
        at_key = item["type"] == "extra_forbidden"
        if at_key:
            message = f"unknown key {path[-1]!r}" if path else "unknown key"
        elif item["type"] == "missing":
            message = f"missing required key {path[-1]!r}" if path else "missing key"
        elif item["loc"] and item["loc"][-1] == "[key]":
            message = f"invalid key {path[-1]!r}: {item['msg']}"
            at_key = True
        else:
            message = item["msg"]
        messages = merged.setdefault((path, at_key), [])
        if message not in messages:
            messages.append(message)
    return [
        Finding(Severity.ERROR, "; or ".join(messages), path, at_key)
        for (path, at_key), messages in merged.items()
    ]


def _data_path(data: object, loc: tuple[int | str, ...], kind: str) -> YamlPath:
    """Drop pydantic's union tags ("choice", "str", "dict[str,str]") from an error location."""
    path: list[str | int] = []
    current = data
    for index, part in enumerate(loc):
        in_mapping = isinstance(current, dict) and part in current
        in_list = isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current)
        if in_mapping or in_list:
            path.append(part)
            current = current[part]  # type: ignore[index]
        elif kind == "missing" and index == len(loc) - 1 and isinstance(part, str):
            path.append(part)  # the key that is missing: name it
    return tuple(path)


def _locate(findings: list[Finding], document: YamlDocument, filename: str) -> tuple[Problem, ...]:
    problems = []
    for finding in findings:
        where = (
            document.key_position(finding.path)
            if finding.at_key
            else document.position(finding.path)
        )
        problems.append(
            Problem(
                finding.severity, finding.message, finding.path, filename, where.line, where.column
            )
        )
    problems.sort(key=lambda p: (p.line, p.column, p.severity != Severity.ERROR))
    return tuple(problems)
