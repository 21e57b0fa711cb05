"""Score a conversation's answers and choose its outcome, keeping the reasons for each."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.compiled import CompiledScript, pick_language
from bot.graph import outcome_rule
from bot.spec import ChoiceQuestion, Outcome


@dataclass(frozen=True, slots=True)
class Score:
    total: int
    reasons: tuple[str, ...]  # e.g. ("model = SUV X: +10", "budget >= 10k: +30")


def score_answers(script: CompiledScript, context: Mapping[str, Any]) -> Score:
    """Points from chosen options, then from the script's scoring rules, in script order."""
    answers: Mapping[str, Any] = context["answers"]
    total = 0
    reasons: list[str] = []
    for question in script.spec.questions:
        if not isinstance(question, ChoiceQuestion) or question.id not in answers:
            continue
        picked = answers[question.id]
        chosen = set(picked) if isinstance(picked, list) else {picked}
        for option in question.options:
            if option.value in chosen and option.score:
                total += option.score
                label = pick_language(option.label, script.spec.default_language, "")
                reasons.append(f"{question.id} = {label}: {option.score:+d}")
    for rule in script.spec.scoring:
        if script.holds(rule.if_, context):
            total += rule.points
            reasons.append(f"{rule.reason or rule.if_}: {rule.points:+d}")
    return Score(total, tuple(reasons))


def choose_outcome(
    script: CompiledScript, context: Mapping[str, Any], score: int
) -> tuple[Outcome, str]:
    """The first outcome whose bounds and condition hold, and the rule that chose it."""
    for outcome in script.spec.outcomes:
        if outcome.min_score is not None and score < outcome.min_score:
            continue
        if outcome.max_score is not None and score > outcome.max_score:
            continue
        if outcome.when is not None and not script.holds(outcome.when, context):
            continue
        rule = outcome_rule(outcome.when, outcome.min_score, outcome.max_score)
        return outcome, (
            f"{outcome.id}: {rule} (score {score})" if rule else f"{outcome.id}: default"
        )
    # The checker requires a default outcome wherever the end can be reached; stay total anyway.
    last = script.spec.outcomes[-1]
    return last, f"{last.id}: no rule matched"
