"""Parse a reply to one question with the parser for that question's type."""

from __future__ import annotations

from datetime import date, datetime

from bot.answers.choice import match_choice
from bot.answers.contact import parse_email, parse_phone, parse_url
from bot.answers.dates import parse_when
from bot.answers.number import parse_number
from bot.answers.result import Parsed, ParseResult, Rejected
from bot.answers.text import parse_text
from bot.answers.yes_no import parse_yes_no
from bot.compiled import CompiledScript
from bot.effects import InputHint, OptionView
from bot.localize import day_list, long_date, long_datetime, number
from bot.spec import (
    AppointmentQuestion,
    ChoiceQuestion,
    ConsentQuestion,
    DateQuestion,
    EmailQuestion,
    HandoffStep,
    NumberQuestion,
    PhoneQuestion,
    Question,
    TextQuestion,
    UrlQuestion,
    YesNoQuestion,
)

MAX_REPLY = 4096  # longer replies are cut before parsing; no question needs more
_NUMBERED_YES_NO = {"1": True, "2": False}  # yes/no are offered as options 1 and 2


def parse_reply(
    script: CompiledScript,
    question: Question,
    text: str,
    *,
    language: str,
    timezone: str,
    now: datetime,
) -> ParseResult:
    """Parse with the question's parser; texts shown to people are in `language`."""
    result = _parse(script, question, text, language=language, timezone=timezone, now=now)
    return _localized(result, question, language)


def _localized(result: ParseResult, question: Question, language: str) -> ParseResult:
    if isinstance(result, Parsed):
        if isinstance(question, DateQuestion) and isinstance(result.value, str):
            if question.type == "datetime":
                display = long_datetime(datetime.fromisoformat(result.value), language)
            else:
                display = long_date(date.fromisoformat(result.value), language)
            return Parsed(result.value, display)
        return result
    if isinstance(question, DateQuestion) and question.type == "datetime" and result.code == "date":
        return Rejected("datetime")  # its examples include a time of day
    params: dict[str, str | int | float] = {}
    for key, value in result.params.items():
        params[key] = number(value, language) if isinstance(value, int | float) else value
    if result.code == "weekday" and isinstance(question, DateQuestion):
        params["days"] = day_list(question.weekday_numbers or (), language)
    return Rejected(result.code, params)


def _parse(
    script: CompiledScript,
    question: Question,
    text: str,
    *,
    language: str,
    timezone: str,
    now: datetime,
) -> ParseResult:
    text = text[:MAX_REPLY]
    match question:
        case TextQuestion():
            return parse_text(
                text,
                min_length=question.min_length,
                max_length=question.max_length,
                pattern=script.patterns.get(question.id),
            )
        case EmailQuestion():
            return parse_email(text)
        case PhoneQuestion():
            return parse_phone(text, region=question.region or script.spec.region)
        case NumberQuestion():
            return parse_number(
                text, integer=question.integer, minimum=question.min, maximum=question.max
            )
        case UrlQuestion():
            return parse_url(text)
        case ChoiceQuestion():
            return match_choice(
                text,
                script.choices[(question.id, language)],
                multiple=question.multiple,
                min_choices=question.min_choices,
                max_choices=question.max_choices,
            )
        case YesNoQuestion() | ConsentQuestion():
            return parse_boolean(script, text, language, question)
        case DateQuestion():
            return parse_when(
                text,
                now=now,
                timezone=timezone,
                languages=(language,),
                with_time=question.type == "datetime",
                future_only=question.future_only,
                within_days=question.within_days,
                weekdays=question.weekday_numbers,
                hours=question.hours,
            )
        case HandoffStep():
            return Rejected("handoff")
        case AppointmentQuestion():
            return Rejected("appointment")  # bot/appointments.py reads its replies


def parse_boolean(
    script: CompiledScript, text: str, language: str, question: Question | None = None
) -> ParseResult:
    answer = _NUMBERED_YES_NO.get(text.strip().rstrip(".)"))
    if answer is None:
        answer = parse_yes_no(text, (language,))
    if answer is None:
        return Rejected("consent" if isinstance(question, ConsentQuestion) else "yes_no")
    return Parsed(answer, script.message("yes" if answer else "no", language))


def yes_no_options(script: CompiledScript, language: str) -> tuple[OptionView, ...]:
    return (
        OptionView("yes", script.message("yes", language)),
        OptionView("no", script.message("no", language)),
    )


def options_for(
    script: CompiledScript, question: Question, language: str
) -> tuple[OptionView, ...]:
    if isinstance(question, ChoiceQuestion):
        return tuple(OptionView(o.value, o.label) for o in script.choices[(question.id, language)])
    if isinstance(question, YesNoQuestion | ConsentQuestion):
        return yes_no_options(script, language)
    return ()


_HINTS = {
    "text": InputHint.TEXT,
    "email": InputHint.EMAIL,
    "phone": InputHint.PHONE,
    "number": InputHint.NUMBER,
    "url": InputHint.URL,
    "yes_no": InputHint.YES_NO,
    "consent": InputHint.YES_NO,
    "date": InputHint.DATE,
    "datetime": InputHint.DATETIME,
}


def hint_for(question: Question) -> InputHint | None:
    if isinstance(question, ChoiceQuestion):
        return InputHint.MULTIPLE_CHOICE if question.multiple else InputHint.CHOICE
    return _HINTS.get(question.type)


def picked_option(
    script: CompiledScript, question: Question, value: str, language: str
) -> ParseResult:
    """Map a tapped button back to an answer; a value the question does not offer is refused."""
    if isinstance(question, ChoiceQuestion):
        for option in script.choices[(question.id, language)]:
            if option.value == value:
                if not question.multiple:
                    return Parsed(value, option.label)
                if (question.min_choices or 1) > 1:
                    # One tap is one option: several are typed ("1, 3"), as the prompt says.
                    return Rejected("too_few", {"min": question.min_choices or 1})
                return Parsed([value], option.label)
        return Rejected("choice")
    if isinstance(question, YesNoQuestion | ConsentQuestion):
        return picked_boolean(script, value, language)
    return Rejected("choice")


def picked_boolean(script: CompiledScript, value: str, language: str) -> ParseResult:
    if value not in ("yes", "no"):
        return Rejected("yes_no")
    return Parsed(value == "yes", script.message(value, language))
