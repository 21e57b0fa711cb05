"""What the reps' Telegram group is shown: a lead's card, and prospects' lines, with phone
numbers and emails masked (the group lives outside leadbot; the console has them whole)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from phonenumbers import Leniency

from bot.compiled import CompiledScript
from bot.scoring import score_answers
from bot.spec import ChoiceQuestion
from storage.rep_threads import CardFacts

MAX_TEXT = 4096  # Telegram's limit for one message
MAX_TOPIC_NAME = 128
MAX_VALUE = 120  # characters of one answer on a card
MAX_ANSWERS = 20
HIDDEN = "•"
TAKE_OVER = "take:"  # callback data: "take:<conversation id>", far below Telegram's 64 bytes
HELP = (
    "In a lead's thread: ✋ Take over on its card (or /takeover), then your replies go to the "
    "prospect. /handback gives the lead back to the bot, /close <outcome> ends it (e.g. "
    "/close won), /note <text> leaves a note for colleagues."
)

CHANNEL_NAMES = {
    "telegram": "Telegram",
    "sms": "SMS",
    "whatsapp": "WhatsApp",
    "tiktok": "TikTok",
    "web": "web chat",
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@dataclass(frozen=True, slots=True)
class CardEvent:
    """Why a card is posted: a handoff request (its reasons), a qualified lead, or both."""

    handoff: tuple[str, ...] = ()
    qualified: bool = False
    score: int | None = None  # from the completion, when there is one
    reasons: tuple[str, ...] = ()


def mask_phone(phone: str) -> str:
    """The country and the last two digits: "+34612345678" -> "+34 •••••••78"."""
    try:
        return _masked(phonenumbers.parse(phone, None))
    except phonenumbers.NumberParseException:
        digits = re.sub(r"\D", "", phone)
        return HIDDEN * max(len(digits) - 2, 0) + digits[-2:] if len(digits) > 4 else HIDDEN * 4


def _masked(number: phonenumbers.PhoneNumber) -> str:
    national = str(number.national_number)
    shown = national[-2:] if len(national) > 4 else ""
    return f"+{number.country_code} " + HIDDEN * (len(national) - len(shown)) + shown


def mask_email(email: str) -> str:
    """ "ana.ruiz@example.com" -> "a•••@e•••.com"."""
    local, _, domain = email.partition("@")
    name, dot, top = domain.rpartition(".")
    if not dot:
        name, top = domain, ""
    return f"{local[:1]}{HIDDEN * 3}@{name[:1]}{HIDDEN * 3}{dot}{top}"


def mask_text(text: str, region: str | None = None) -> str:
    """Free text with every phone number and email in it masked."""
    text = _EMAIL.sub(lambda found: mask_email(found.group(0)), text)
    matches = list(phonenumbers.PhoneNumberMatcher(text, region, leniency=Leniency.POSSIBLE))
    for match in reversed(matches):
        text = text[: match.start] + _masked(match.number) + text[match.end :]
    return text


def lead_name(facts: CardFacts) -> str:
    fields = {**_strings(facts.state.get("lead")), **_strings(facts.fields)}
    parts = [fields.get("first_name", ""), fields.get("last_name", "")]
    name = " ".join(part.strip() for part in parts if part.strip()) or fields.get("name", "")
    return _short(name.strip(), 64) or "A prospect"


def topic_name(facts: CardFacts) -> str:
    channel = CHANNEL_NAMES.get(facts.channel, facts.channel)
    return _short(f"{lead_name(facts)} · {channel} · {facts.reference}", MAX_TOPIC_NAME)


def card_text(
    facts: CardFacts,
    event: CardEvent,
    script: CompiledScript | None,
    console_url: str,
    score: tuple[int, Sequence[str]] | None = None,
) -> str:
    """The card: who, where, why, how hot, what they said so far, and the console's link.
    `score` is the score so far (for a handoff before the end); a completion brings its own."""
    region = script.spec.region if script is not None else None
    name = lead_name(facts)
    if event.qualified and event.handoff:
        title = f"⭐ Qualified lead: {name}, waiting for a rep"
    elif event.qualified:
        title = f"⭐ Qualified lead: {name}"
    elif event.handoff:
        title = f"🙋 {name} is waiting for a rep"
    else:  # the lead's first card came from something a rep did (its headline says what)
        title = f"👤 {name}"
    channel = CHANNEL_NAMES.get(facts.channel, facts.channel)
    lines = [title, f"{channel} · ref {facts.reference} · {_status(facts)}"]
    for reason in event.handoff:
        lines.append(f"Why: {mask_text(reason, region)}")
    if event.score is not None:
        lines.append(_score_line(event.score, event.reasons))
    elif score is not None:
        lines.append(_score_line(*score, so_far=True))
    contact = [f"Phone: {mask_phone(facts.phone)}"] if facts.phone else []
    contact += [f"Email: {mask_email(facts.email)}"] if facts.email else []
    if contact:
        lines.append(" · ".join(contact))
    answers = answer_lines(facts, script)
    if answers:
        lines += ["", "Answers so far:" if not event.qualified else "Answers:"]
        lines += [f"• {mask_text(line, region)}" for line in answers]
    lines += ["", f"Console: {console_url}"]
    return _short("\n".join(lines), MAX_TEXT)


def compose_card(
    facts: CardFacts, event: CardEvent, script: CompiledScript | None, console_url: str
) -> str:
    """The card as posted now: a handoff before the end shows the score so far."""
    so_far = None
    if event.score is None and script is not None:
        answers = facts.state.get("answers")
        score = score_answers(
            script,
            {
                "lead": facts.state.get("lead") or {},
                "answers": dict(answers) if isinstance(answers, Mapping) else {},
            },
        )
        so_far = (score.total, score.reasons)
    return card_text(facts, event, script, console_url, so_far)


def line_text(name: str, text: str, region: str | None) -> str:
    """A prospect's line, as the reps' thread shows it."""
    return _short(f"💬 {name}: {mask_text(text, region)}", MAX_TEXT)


def answer_lines(facts: CardFacts, script: CompiledScript | None) -> list[str]:
    answers = facts.state.get("answers")
    if not isinstance(answers, Mapping) or not answers:
        return []
    language = str(facts.state.get("language") or "")
    order = list(script.order) if script is not None else []
    keys = [key for key in order if key in answers] + sorted(set(answers) - set(order))
    return [
        f"{key}: {_short(_display(script, key, answers[key], language), MAX_VALUE)}"
        for key in keys[:MAX_ANSWERS]
    ]


def _display(script: CompiledScript | None, key: str, value: Any, language: str) -> str:
    values = value if isinstance(value, list) else [value]
    question = script.questions.get(key) if script is not None else None
    if script is not None and isinstance(question, ChoiceQuestion):
        options = script.choices.get((key, language)) or script.choices.get(
            (key, script.spec.default_language), ()
        )
        labels = {option.value: option.label for option in options}
        return " + ".join(labels.get(str(item), str(item)) for item in values)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return ", ".join(str(item) for item in values)


def _score_line(total: int, reasons: Sequence[str], *, so_far: bool = False) -> str:
    label = "Score so far" if so_far else "Score"
    shown = "; ".join(reasons[:6])
    return f"{label}: {total}" + (f" ({_short(shown, 300)})" if shown else "")


def _status(facts: CardFacts) -> str:
    match facts.status:
        case "handed_off":
            return "waiting for a rep"
        case "with_rep":
            return f"with {facts.held_by_name or 'a rep'}"
        case "active":
            return "with the bot"
        case other:
            return other.replace("_", " ")


def _strings(values: object) -> dict[str, str]:
    if not isinstance(values, Mapping):
        return {}
    return {str(key): value for key, value in values.items() if isinstance(value, str)}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
