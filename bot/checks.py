"""Whole-script checks after the schema: references, conditions, templates, flow, languages."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from jinja2 import TemplateError

from bot.compiled import conditions_with_paths, localized_texts
from bot.graph import END, END_TARGET, adjacency, edges, reachable
from bot.keywords import Command, build_table
from bot.messages import DEFAULT_MESSAGES
from bot.problems import Severity, YamlPath
from bot.spec import (
    ChoiceQuestion,
    DateQuestion,
    HandoffStep,
    LocalizedText,
    NumberQuestion,
    OutcomeRef,
    Script,
    TextQuestion,
)
from bot.templating import CONTEXT_NAMES, Reference, make_environment
from bot.templating import references_in_expression as expression_refs
from bot.templating import references_in_template as template_refs


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    message: str
    path: YamlPath
    at_key: bool = False  # point at the key rather than its value


@dataclass
class _Report:
    findings: list[Finding] = field(default_factory=list)

    def error(self, path: YamlPath, message: str, at_key: bool = False) -> None:
        self.findings.append(Finding(Severity.ERROR, message, path, at_key))

    def warning(self, path: YamlPath, message: str) -> None:
        self.findings.append(Finding(Severity.WARNING, message, path))


def check_script(spec: Script) -> list[Finding]:
    report = _Report()
    _check_ids(spec, report)
    _check_references(spec, report)
    _check_questions(spec, report)
    _check_languages(spec, report)
    _check_templates_and_conditions(spec, report)
    _check_messages(spec, report)
    _check_reserved_words(spec, report)
    _check_flow(spec, report)
    return report.findings


def _repeats(names: list[str]) -> list[int]:
    """Indexes of names seen before: the first of each is the original, the rest are repeats."""
    seen: set[str] = set()
    repeats = []
    for index, name in enumerate(names):
        if name in seen:
            repeats.append(index)
        seen.add(name)
    return repeats


def _check_ids(spec: Script, report: _Report) -> None:
    question_ids = [q.id for q in spec.questions]
    outcome_ids = [o.id for o in spec.outcomes]
    for kind, ids in (("questions", question_ids), ("outcomes", outcome_ids)):
        for index, name in enumerate(ids):
            if name == END_TARGET:
                report.error(
                    (kind, index, "id"), "`end` is reserved: `goto: end` chooses the outcome"
                )
    for index in _repeats(question_ids):
        report.error(("questions", index, "id"), f"duplicate question id {question_ids[index]!r}")
    for index in _repeats(outcome_ids):
        report.error(("outcomes", index, "id"), f"duplicate outcome id {outcome_ids[index]!r}")
    for index, question in enumerate(spec.questions):
        if question.id in outcome_ids:
            report.error(
                ("questions", index, "id"),
                f"{question.id!r} is both a question and an outcome id; a goto would be ambiguous",
            )
        if isinstance(question, ChoiceQuestion):
            values = [option.value for option in question.options]
            for number in _repeats(values):
                report.error(
                    ("questions", index, "options", number, "value"),
                    f"duplicate option value {values[number]!r} in question {question.id!r}",
                )
    names = [e if isinstance(e, str) else e.name for e in spec.lead_fields]
    for index in _repeats(names):
        report.error(("lead_fields", index), f"duplicate lead field {names[index]!r}")
    for index in _repeats(list(spec.languages)):
        report.error(("languages", index), f"language {spec.languages[index]!r} is listed twice")


def _check_references(spec: Script, report: _Report) -> None:
    targets = {q.id for q in spec.questions} | {o.id for o in spec.outcomes} | {END_TARGET}
    outcomes = {o.id for o in spec.outcomes}
    fields = spec.lead_field_types()
    for index, question in enumerate(spec.questions):
        base: YamlPath = ("questions", index)
        for number, branch in enumerate(question.branches):
            path = (*base, "next") if isinstance(question.next, str) else (*base, "next", number)
            if branch.goto not in targets:
                report.error(
                    path if isinstance(question.next, str) else (*path, "goto"),
                    f"goto {branch.goto!r} is neither a question, an outcome nor `end`",
                )
        for key in ("on_fail", "on_decline"):
            action = getattr(question, key, None)
            if isinstance(action, OutcomeRef) and action.outcome not in outcomes:
                report.error((*base, key, "outcome"), f"unknown outcome {action.outcome!r}")
        if question.prefill is not None and question.prefill not in fields:
            report.error(
                (*base, "prefill"),
                f"prefill names lead field {question.prefill!r}, which lead_fields does not "
                f"declare (declared: {', '.join(sorted(fields)) or 'none'})",
            )


def _check_questions(spec: Script, report: _Report) -> None:
    for index, question in enumerate(spec.questions):
        base: YamlPath = ("questions", index)
        if isinstance(question, TextQuestion):
            low, high = question.min_length, question.max_length
            if low is not None and high is not None and low > high:
                report.error((*base, "min_length"), "min_length is greater than max_length")
        if isinstance(question, NumberQuestion):
            low_number, high_number = question.min, question.max
            if low_number is not None and high_number is not None and low_number > high_number:
                report.error((*base, "min"), "min is greater than max")
        if isinstance(question, ChoiceQuestion):
            if not question.multiple and (question.min_choices or question.max_choices):
                report.warning(
                    (*base, "multiple"), "min_choices/max_choices only apply with multiple: true"
                )
            low, high = question.min_choices, question.max_choices
            if low is not None and high is not None and low > high:
                report.error((*base, "min_choices"), "min_choices is greater than max_choices")
            if high is not None and high > len(question.options):
                report.warning((*base, "max_choices"), "max_choices exceeds the number of options")
        if isinstance(question, HandoffStep) and question.prefill is not None:
            report.error((*base, "prefill"), "a handoff step cannot be prefilled")
        if question.confirm_prefill and question.prefill is None:
            report.warning(
                (*base, "confirm_prefill"), "confirm_prefill without prefill does nothing"
            )
        if question.confirm is not None and not question.confirm_prefill:
            report.warning((*base, "confirm"), "confirm is only said with confirm_prefill: true")
        if isinstance(question, DateQuestion) and question.type == "date" and question.hours:
            report.warning((*base, "hours"), "hours only apply to datetime questions")
        if isinstance(question.next, list):
            for number, branch in enumerate(question.next[:-1]):
                if branch.if_ is None:
                    report.warning(
                        (*base, "next", number + 1),
                        "never taken: the step before it has no `if` and always applies",
                    )


def _check_languages(spec: Script, report: _Report) -> None:
    declared = set(spec.languages)
    multilingual = len(declared) > 1
    for path, text in localized_texts(spec):
        _check_text(path, text, declared, multilingual, report)
    for key, text in spec.messages.items():
        _check_text(("messages", key), text, declared, multilingual, report)
    for index, question in enumerate(spec.questions):
        if isinstance(question, ChoiceQuestion):
            for number, option in enumerate(question.options):
                if isinstance(option.synonyms, dict):
                    for language in option.synonyms:
                        if language not in declared:
                            report.error(
                                ("questions", index, "options", number, "synonyms", language),
                                f"language {language!r} is not in the script's languages",
                            )
    groups = {
        "handoff": {"phrases": spec.handoff.phrases},
        "keywords": {
            "restart": spec.keywords.restart,
            "help": spec.keywords.help,
            "opt_out": spec.keywords.opt_out,
        },
    }
    for section, lists in groups.items():
        for key, by_language in lists.items():
            for language in by_language:
                if language not in declared:
                    report.warning(
                        (section, key, language),
                        f"language {language!r} is not in the script's languages",
                    )


def _check_text(
    path: YamlPath, text: LocalizedText, declared: set[str], multilingual: bool, report: _Report
) -> None:
    if isinstance(text, str):
        if multilingual and path[-1] in ("prompt", "greeting", "message"):
            report.warning(path, "one text for every language: is it translated?")
        return
    for language in text:
        if language not in declared:
            report.error(
                (*path, language), f"language {language!r} is not in the script's languages"
            )
    missing = [language for language in sorted(declared) if language not in text]
    if missing:
        report.error(path, f"text missing in declared language(s): {', '.join(missing)}")


def _check_templates_and_conditions(spec: Script, report: _Report) -> None:
    env = make_environment()
    known_fields = set(spec.lead_field_types())
    known_answers = {q.id for q in spec.questions}
    for path, text in localized_texts(spec):
        variants = (
            [(path, text)]
            if isinstance(text, str)
            else [((*path, language), variant) for language, variant in text.items()]
        )
        for where, source in variants:
            try:
                refs = template_refs(env, source)
            except TemplateError as error:
                report.error(where, f"template does not compile: {error}")
                continue
            _check_refs(where, refs, known_fields, known_answers, report)
    for where, source in conditions_with_paths(spec):
        try:
            refs = expression_refs(env, source)
        except TemplateError as error:
            report.error(where, f"condition {source!r} does not compile: {error}")
            continue
        _check_refs(where, refs, known_fields, known_answers, report)
        if where[0] == "scoring" and any(ref.root == "score" for ref in refs):
            report.error(where, "a scoring rule cannot use `score`: it is what the rules add up")


def _check_refs(
    path: YamlPath,
    refs: list[Reference],
    fields: set[str],
    answers: set[str],
    report: _Report,
) -> None:
    for ref in refs:
        if ref.root not in CONTEXT_NAMES:
            report.error(
                path,
                f"unknown variable {ref.root!r} (use {', '.join(sorted(CONTEXT_NAMES))})",
            )
        elif ref.root == "lead" and ref.attribute is not None and ref.attribute not in fields:
            report.error(path, f"lead.{ref.attribute}: lead field not declared in lead_fields")
        elif ref.root == "answers" and ref.attribute is not None and ref.attribute not in answers:
            report.error(path, f"answers.{ref.attribute}: no question has this id")


_PLACEHOLDER = re.compile(r"(?<!{){(\w+)}(?!})")


def _check_messages(spec: Script, report: _Report) -> None:
    for key, text in spec.messages.items():
        if key not in DEFAULT_MESSAGES:
            report.error(
                ("messages", key),
                f"unknown message {key!r} (known: {', '.join(sorted(DEFAULT_MESSAGES))})",
                at_key=True,
            )
            continue
        allowed = set(_PLACEHOLDER.findall(DEFAULT_MESSAGES[key]["en"]))
        variants = [text] if isinstance(text, str) else list(text.values())
        for variant in variants:
            if "{{" in variant or "{%" in variant:
                report.error(
                    ("messages", key),
                    "built-in messages take {placeholders}, not Jinja2 templates"
                    + (f" (this one has {{{'}, {'.join(sorted(allowed))}}}" if allowed else ""),
                )
            for name in set(_PLACEHOLDER.findall(variant)) - allowed:
                report.warning(
                    ("messages", key),
                    f"placeholder {{{name}}} is not filled in for {key!r} "
                    f"(it has {', '.join(sorted(allowed)) or 'none'})",
                )


def _check_reserved_words(spec: Script, report: _Report) -> None:
    """An option a prospect would type as a reserved word can never be chosen by typing it."""
    table = build_table(
        spec.languages,
        {
            Command.RESTART: spec.keywords.restart,
            Command.HELP: spec.keywords.help,
            Command.OPT_OUT: spec.keywords.opt_out,
        },
        spec.handoff.phrases,
    )
    for index, question in enumerate(spec.questions):
        if not isinstance(question, ChoiceQuestion):
            continue
        for number, option in enumerate(question.options):
            words = [option.label] if isinstance(option.label, str) else list(option.label.values())
            synonyms = option.synonyms
            words += (
                synonyms
                if isinstance(synonyms, list)
                else [w for ws in synonyms.values() for w in ws]
            )
            for word in words:
                command, asks_for_person = table.classify(word)
                if command is not None or asks_for_person:
                    meaning = f"the {command} command" if command else "a request for a person"
                    report.warning(
                        ("questions", index, "options", number),
                        f"typing {word!r} is {meaning}, so it never picks this option",
                    )


def _check_flow(spec: Script, report: _Report) -> None:
    found = edges(spec)
    forward = adjacency(found)
    start = spec.questions[0].id
    from_start = reachable(start, forward)
    outcome_ids = {o.id for o in spec.outcomes}
    can_finish: set[str] = set()
    backward = adjacency(found, reverse=True)
    for outcome_id in outcome_ids:
        can_finish |= reachable(outcome_id, backward)
    for index, question in enumerate(spec.questions):
        if question.id not in from_start:
            report.warning(("questions", index), f"question {question.id!r} can never be reached")
        elif question.id not in can_finish:
            report.error(
                ("questions", index),
                f"question {question.id!r} is in a loop with no way out: no path from it "
                "reaches an outcome",
            )
    targeted = {edge.target for edge in found if edge.source in from_start}
    for index, outcome in enumerate(spec.outcomes):
        if outcome.id not in targeted:
            report.warning(("outcomes", index), f"outcome {outcome.id!r} can never be reached")
    if END in from_start and not any(o.is_default for o in spec.outcomes):
        report.error(
            ("outcomes",),
            "no default outcome: add one without when/min_score/max_score, last, for "
            "conversations that match no other",
            at_key=True,
        )
