"""Reserved words checked before the script: opt-out, restart, help and handoff phrases."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

# Carriers and WhatsApp treat these as opt-out (see shared/reference/twilio.md); we honour them
# on every channel so that a prospect's "stop" always works the same way.
OPT_OUT: Mapping[str, tuple[str, ...]] = {
    "en": ("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "optout", "opt out"),
    "es": ("baja", "parar", "cancelar", "detener"),
    "fr": ("arret", "arreter", "desabonner", "stop"),
    "de": ("abmelden", "stopp"),
    "pt": ("parar", "sair", "cancelar"),
}
RESTART: Mapping[str, tuple[str, ...]] = {
    "en": ("restart", "start over"),
    "es": ("reiniciar", "empezar de nuevo"),
    "fr": ("recommencer",),
    "de": ("neustart", "von vorne"),
    "pt": ("reiniciar", "recomecar"),
}
HELP: Mapping[str, tuple[str, ...]] = {
    "en": ("help", "?"),
    "es": ("ayuda",),
    "fr": ("aide",),
    "de": ("hilfe",),
    "pt": ("ajuda",),
}
HANDOFF: Mapping[str, tuple[str, ...]] = {
    "en": ("human", "agent", "talk to a person", "speak to a person", "real person", "operator"),
    "es": ("humano", "agente", "hablar con una persona", "persona real", "asesor"),
    "fr": ("humain", "conseiller", "parler a une personne"),
    "de": ("mensch", "mitarbeiter", "berater"),
    "pt": ("humano", "agente", "atendente", "falar com uma pessoa"),
}

_PUNCTUATION = re.compile(r"[^\w\s]+")
_SPACES = re.compile(r"\s+")
LONGEST_KEYWORD_MESSAGE = 60  # longer texts are answers, not commands


def normalize(text: str) -> str:
    """Casefold, drop accents and punctuation, squeeze spaces: "¡Ayúdame!" -> "ayudame"."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _SPACES.sub(" ", _PUNCTUATION.sub(" ", stripped)).strip()


class Command(StrEnum):
    OPT_OUT = "opt_out"
    RESTART = "restart"
    HELP = "help"


@dataclass(frozen=True, slots=True)
class KeywordTable:
    """Whole-message commands, and phrases that ask for a person anywhere in a message."""

    commands: Mapping[str, Command]
    handoff_phrases: frozenset[str]
    handoff_pattern: re.Pattern[str] | None

    def classify(self, text: str) -> tuple[Command | None, bool]:
        """The command the whole message is, and whether it is a handoff phrase as a whole
        ("agent", "talk to a person!")."""
        if len(text) > LONGEST_KEYWORD_MESSAGE:
            return None, False
        folded = normalize(text)
        return self.commands.get(folded or text.strip()), folded in self.handoff_phrases

    def mentions_handoff(self, text: str) -> str | None:
        """A handoff phrase inside a longer message; the engine only acts on it when the
        message does not answer the question ("I'm an estate agent" answers "your job?")."""
        if self.handoff_pattern is None:
            return None
        match = self.handoff_pattern.search(normalize(text[:1000]))
        return match.group(0) if match else None


def build_table(
    languages: Iterable[str],
    extra_commands: Mapping[Command, Mapping[str, list[str]]],
    extra_handoff: Mapping[str, list[str]],
) -> KeywordTable:
    """The words for the script's languages (and English, which prospects everywhere use);
    a regional language ("pt-BR") also gets its base language's words ("pt")."""
    wanted = {"en", *languages, *(language.split("-", 1)[0] for language in languages)}
    commands: dict[str, Command] = {}
    # Order matters: opt-out wins over restart and help if a word were in two lists.
    builtins = ((Command.HELP, HELP), (Command.RESTART, RESTART), (Command.OPT_OUT, OPT_OUT))
    for command, builtin in builtins:
        extra = extra_commands.get(command, {})
        for language in wanted:
            for word in (*builtin.get(language, ()), *extra.get(language, [])):
                commands[normalize(word) or word.strip()] = command
    phrases = {
        normalize(phrase)
        for language in wanted
        for phrase in (*HANDOFF.get(language, ()), *extra_handoff.get(language, []))
    }
    phrases.discard("")
    pattern = None
    if phrases:
        alternatives = "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))
        pattern = re.compile(rf"\b(?:{alternatives})\b")
    return KeywordTable(commands, frozenset(phrases), pattern)
