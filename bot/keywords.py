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
# Twilio's opt-in words, and their like: they only mean something after an opt-out.
OPT_IN: Mapping[str, tuple[str, ...]] = {
    "en": ("start", "unstop", "yes", "subscribe", "optin", "opt in"),
    "es": ("alta", "si", "suscribir"),
    "fr": ("oui", "reprendre"),
    "de": ("ja", "anmelden"),
    "pt": ("sim", "voltar"),
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
# Only mean something while the prospect has an appointment (bot/appointments.py); elsewhere
# they are ordinary text. "cancel" alone stays an opt-out word: carriers treat it as one on SMS.
RESCHEDULE: Mapping[str, tuple[str, ...]] = {
    "en": ("reschedule", "change appointment", "change my appointment", "another time"),
    "es": ("reprogramar", "cambiar cita", "cambiar la cita", "cambiar mi cita", "otra hora"),
    "fr": ("reporter", "changer rendez vous", "changer le rendez vous", "autre horaire"),
    "de": ("verschieben", "termin verschieben", "termin andern", "andere zeit"),
    "pt": ("reagendar", "remarcar", "mudar marcacao", "outro horario"),
}
CANCEL_APPOINTMENT: Mapping[str, tuple[str, ...]] = {
    "en": ("cancel appointment", "cancel my appointment", "cancel booking", "cancel visit"),
    "es": ("cancelar cita", "cancelar la cita", "cancelar mi cita", "anular cita"),
    "fr": ("annuler", "annuler rendez vous", "annuler le rendez vous", "annuler mon rendez vous"),
    "de": ("absagen", "termin absagen", "stornieren", "termin stornieren"),
    "pt": ("cancelar marcacao", "desmarcar", "cancelar visita"),
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


_ANY_OPT_OUT = frozenset(normalize(word) for words in OPT_OUT.values() for word in words)


def is_opt_out(text: str) -> bool:
    """A built-in opt-out word in any language, before a chat has a script to add its own."""
    return len(text) <= LONGEST_KEYWORD_MESSAGE and normalize(text) in _ANY_OPT_OUT


class Command(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"  # only read in an opted-out conversation: elsewhere "yes" is an answer
    RESTART = "restart"
    HELP = "help"
    RESCHEDULE = "reschedule"
    CANCEL_APPOINTMENT = "cancel_appointment"


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
    builtins = (
        (Command.OPT_IN, OPT_IN),
        (Command.HELP, HELP),
        (Command.RESTART, RESTART),
        (Command.RESCHEDULE, RESCHEDULE),
        (Command.CANCEL_APPOINTMENT, CANCEL_APPOINTMENT),
        (Command.OPT_OUT, OPT_OUT),
    )
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
