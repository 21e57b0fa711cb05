"""The flow of a script as a graph: which step can lead to which, and on what condition."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.spec import ConsentQuestion, OutcomeRef, Script

END = "(end)"  # the end of the questions: outcomes are chosen in order by their rules
END_TARGET = "end"  # what a script writes to go there directly: `goto: end`


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    label: str  # the condition, "else", "max attempts", "declined" or "" (in order)
    path: tuple[str | int, ...]  # where the edge is declared in the YAML


def edges(spec: Script) -> list[Edge]:
    ids = [q.id for q in spec.questions]
    found: list[Edge] = []
    for index, question in enumerate(spec.questions):
        base: tuple[str | int, ...] = ("questions", index)
        following = ids[index + 1] if index + 1 < len(ids) else END
        unconditional = False
        for number, branch in enumerate(question.branches):
            path = (*base, "next") if isinstance(question.next, str) else (*base, "next", number)
            label = branch.if_ or ("else" if number else "")
            target = END if branch.goto == END_TARGET else branch.goto
            found.append(Edge(question.id, target, label, path))
            if branch.if_ is None:
                unconditional = True
                break
        if not unconditional:
            label = "else" if question.branches else ""
            found.append(Edge(question.id, following, label, base))
        if isinstance(question.on_fail, OutcomeRef):
            found.append(
                Edge(question.id, question.on_fail.outcome, "max attempts", (*base, "on_fail"))
            )
        if isinstance(question, ConsentQuestion) and isinstance(question.on_decline, OutcomeRef):
            found.append(
                Edge(question.id, question.on_decline.outcome, "declined", (*base, "on_decline"))
            )
    for index, outcome in enumerate(spec.outcomes):
        rule = outcome_rule(outcome.when, outcome.min_score, outcome.max_score)
        found.append(Edge(END, outcome.id, rule, ("outcomes", index)))
        if outcome.when is None and outcome.min_score is None and outcome.max_score is None:
            break  # outcomes after a default one are never chosen at the end
    return found


def outcome_rule(when: str | None, min_score: int | None, max_score: int | None) -> str:
    parts = []
    if min_score is not None:
        parts.append(f"score >= {min_score}")
    if max_score is not None:
        parts.append(f"score <= {max_score}")
    if when is not None:
        parts.append(when)
    return " and ".join(parts)


def reachable(start: str, adjacency: Mapping[str, Iterable[str]]) -> set[str]:
    seen = {start}
    queue = deque([start])
    while queue:
        for target in adjacency.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return seen


def adjacency(found: Iterable[Edge], reverse: bool = False) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    for edge in found:
        source, target = (edge.target, edge.source) if reverse else (edge.source, edge.target)
        table.setdefault(source, []).append(target)
    return table
