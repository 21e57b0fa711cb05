"""A checked script, ready to play: templates and conditions compiled once, lookups indexed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jinja2 import Template

from bot.answers.choice import ChoiceOption
from bot.keywords import Command, KeywordTable, build_table
from bot.messages import default_message, fill
from bot.spec import ChoiceQuestion, LocalizedText, Outcome, Question, Script, TextQuestion
from bot.templating import (
    Condition,
    compile_condition,
    is_template,
    make_environment,
    references_in_expression,
    safe_render,
)

DEFAULT_HANDOFF_TIMEOUT = timedelta(minutes=10)


def pick_language(text: LocalizedText, language: str, default: str) -> str:
    if isinstance(text, str):
        return text
    return text.get(language) or text.get(default) or next(iter(text.values()), "")


@dataclass(frozen=True, slots=True)
class CompiledScript:
    spec: Script
    version: str
    order: tuple[str, ...]
    questions: Mapping[str, Question]
    outcomes: Mapping[str, Outcome]
    templates: Mapping[str, Template]
    conditions: Mapping[str, Condition]
    keywords: KeywordTable
    choices: Mapping[tuple[str, str], tuple[ChoiceOption, ...]]
    patterns: Mapping[str, re.Pattern[str]]
    score_conditions: frozenset[str]  # conditions that read `score`, which costs a scoring
    # The script's handoff.timeout, else the server's (ScriptCatalog), else ten minutes.
    handoff_timeout: timedelta = DEFAULT_HANDOFF_TIMEOUT

    @property
    def id(self) -> str:
        return self.spec.id

    def language_for(self, wanted: str | None) -> str:
        """The script language closest to `wanted` ("pt-BR" -> "pt"), else the default."""
        if wanted:
            if wanted in self.spec.languages:
                return wanted
            base = wanted.split("-", 1)[0].lower()
            for language in self.spec.languages:
                if language.split("-", 1)[0] == base:
                    return language
        return self.spec.default_language

    def render(self, text: LocalizedText, language: str, context: Mapping[str, Any]) -> str:
        source = pick_language(text, language, self.spec.default_language)
        template = self.templates.get(source)
        if template is None:
            return source
        return safe_render(template.render, context, source)

    def message(self, key: str, language: str, params: Mapping[str, object] | None = None) -> str:
        """A built-in message, or the script's override of it, with `{params}` filled in."""
        override = self.spec.messages.get(key)
        if override is not None:
            text = pick_language(override, language, self.spec.default_language)
        else:
            text = default_message(key, language)
        return fill(text, params or {})

    def holds(self, condition: str, context: Mapping[str, Any]) -> bool:
        return self.conditions[condition](context)

    def next_in_order(self, question_id: str) -> str | None:
        index = self.order.index(question_id) + 1
        return self.order[index] if index < len(self.order) else None


def compile_script(spec: Script, version: str) -> CompiledScript:
    """Compile a script the checker found clean (so every template and condition compiles)."""
    env = make_environment()
    templates = {
        source: env.from_string(source) for source in _all_texts(spec) if is_template(source)
    }
    conditions = {source: compile_condition(env, source) for source in _all_conditions(spec)}
    score_conditions = frozenset(
        source
        for source in conditions
        if any(ref.root == "score" for ref in references_in_expression(env, source))
    )
    choices: dict[tuple[str, str], tuple[ChoiceOption, ...]] = {}
    for question in spec.questions:
        if isinstance(question, ChoiceQuestion):
            for language in spec.languages:
                choices[(question.id, language)] = _choice_options(spec, question, language)
    keywords = build_table(
        spec.languages,
        {
            Command.RESTART: spec.keywords.restart,
            Command.HELP: spec.keywords.help,
            Command.OPT_OUT: spec.keywords.opt_out,
            Command.RESCHEDULE: spec.keywords.reschedule,
            Command.CANCEL_APPOINTMENT: spec.keywords.cancel_appointment,
        },
        spec.handoff.phrases,
    )
    return CompiledScript(
        spec=spec,
        version=version,
        order=tuple(q.id for q in spec.questions),
        questions={q.id: q for q in spec.questions},
        outcomes={o.id: o for o in spec.outcomes},
        templates=templates,
        conditions=conditions,
        keywords=keywords,
        choices=choices,
        patterns={
            q.id: re.compile(q.pattern)
            for q in spec.questions
            if isinstance(q, TextQuestion) and q.pattern is not None
        },
        score_conditions=score_conditions,
        handoff_timeout=spec.handoff.timeout or DEFAULT_HANDOFF_TIMEOUT,
    )


def _choice_options(
    spec: Script, question: ChoiceQuestion, language: str
) -> tuple[ChoiceOption, ...]:
    options = []
    for option in question.options:
        label = pick_language(option.label, language, spec.default_language)
        # Accept labels in every language and every synonym: prospects mix languages.
        terms = set() if isinstance(option.label, str) else set(option.label.values())
        if isinstance(option.synonyms, list):
            terms.update(option.synonyms)
        else:
            for words in option.synonyms.values():
                terms.update(words)
        terms.discard(label)
        options.append(ChoiceOption(option.value, label, tuple(sorted(terms))))
    return tuple(options)


def localized_texts(spec: Script) -> list[tuple[tuple[str | int, ...], LocalizedText]]:
    """Every user-facing text with its YAML path: prompts, options, messages."""
    found: list[tuple[tuple[str | int, ...], LocalizedText]] = []
    if spec.greeting is not None:
        found.append((("greeting",), spec.greeting))
    if spec.form_consent is not None:
        found.append((("form_consent",), spec.form_consent))
    for index, question in enumerate(spec.questions):
        base: tuple[str | int, ...] = ("questions", index)
        for key in ("prompt", "retry", "help", "confirm"):
            value = getattr(question, key)
            if value is not None:
                found.append(((*base, key), value))
        if isinstance(question, ChoiceQuestion):
            for number, option in enumerate(question.options):
                found.append(((*base, "options", number, "label"), option.label))
    for index, outcome in enumerate(spec.outcomes):
        if outcome.message is not None:
            found.append((("outcomes", index, "message"), outcome.message))
    for key in ("message", "resume_message"):
        value = getattr(spec.handoff, key)
        if value is not None:
            found.append((("handoff", key), value))
    if spec.reminders is not None and spec.reminders.message is not None:
        found.append((("reminders", "message"), spec.reminders.message))
    if spec.first_contact is not None:
        if spec.first_contact.text is not None:
            found.append((("first_contact", "text"), spec.first_contact.text))
        for name, value in spec.first_contact.variables.items():
            found.append((("first_contact", "variables", name), value))
    return found


def _all_texts(spec: Script) -> set[str]:
    texts: set[str] = set()
    for _path, text in localized_texts(spec):
        texts.update([text] if isinstance(text, str) else text.values())
    return texts


def conditions_with_paths(spec: Script) -> list[tuple[tuple[str | int, ...], str]]:
    found: list[tuple[tuple[str | int, ...], str]] = []
    for index, question in enumerate(spec.questions):
        if isinstance(question.next, list):
            for number, branch in enumerate(question.next):
                if branch.if_ is not None:
                    found.append((("questions", index, "next", number, "if"), branch.if_))
    for index, rule in enumerate(spec.scoring):
        found.append((("scoring", index, "if"), rule.if_))
    for index, outcome in enumerate(spec.outcomes):
        if outcome.when is not None:
            found.append((("outcomes", index, "when"), outcome.when))
    if spec.handoff.when is not None:
        found.append((("handoff", "when"), spec.handoff.when))
    return found


def _all_conditions(spec: Script) -> set[str]:
    return {source for _path, source in conditions_with_paths(spec)}
