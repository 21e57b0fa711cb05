"""Yes/no answers in several languages, typed as words, phrases or emoji."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from types import MappingProxyType

# Longer replies are explanations, not a yes or a no; the cap also bounds the work per message.
_MAX_TEXT = 1000


def _words(table: str) -> frozenset[str]:
    """A word list written as "yes|yeah|of course": one line holds many short entries."""
    return frozenset(table.split("|"))


YES_WORDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "en": _words(
            "yes|y|yeah|yea|yep|yup|ya|sure|ok|okay|k|of course|absolutely|definitely"
            "|certainly|correct|that's right|sounds good|go ahead|why not|no problem|alright"
            "|all right|indeed|affirmative|for sure|totally|please do"
        ),
        "es": _words(
            "sí|si|claro|vale|por supuesto|desde luego|claro que sí|de acuerdo|dale|seguro"
            "|perfecto|exacto|correcto|cierto|afirmativo|está bien|me parece bien|con gusto"
            "|por qué no|sin problema|obvio"
        ),
        "fr": _words(
            "oui|ouais|ouaip|si|bien sûr|d'accord|carrément|absolument|volontiers|exactement"
            "|certainement|tout à fait|pourquoi pas|ça marche|avec plaisir|parfait"
            "|pas de problème|évidemment"
        ),
        "de": _words(
            "ja|jawohl|jep|jo|jup|klar|na klar|natürlich|sicher|genau|gerne|gern|doch"
            "|selbstverständlich|auf jeden fall|einverstanden|in ordnung|passt|kein problem"
            "|warum nicht"
        ),
        "pt": _words(
            "sim|claro|com certeza|certamente|claro que sim|tá bom|está bem|beleza|isso"
            "|isso mesmo|exato|perfeito|sem dúvida|bora|fechado|positivo|sem problema"
            "|por que não"
        ),
        "it": _words(
            "sì|si|certo|certamente|certo che sì|ovviamente|va bene|d'accordo|esatto"
            "|volentieri|senz'altro|perfetto|assolutamente|sicuro|come no|nessun problema"
            "|perché no"
        ),
        "nl": _words(
            "ja|jazeker|jawel|zeker|natuurlijk|tuurlijk|prima|goed|oké|akkoord|klopt"
            "|zeker weten|graag|ja hoor|is goed|doe maar|geen probleem|waarom niet"
        ),
    }
)

NO_WORDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "en": _words(
            "no|n|nope|nah|not really|not at all|no way|never|negative|not interested|not now"
            "|not right now|not yet|of course not|not ok|not okay|no need|absolutely not"
            "|definitely not"
        ),
        "es": _words(
            "no|nop|para nada|de ninguna manera|claro que no|todavía no|aún no|ahora no|nunca"
            "|negativo|tampoco|en absoluto|no me interesa"
        ),
        "fr": _words(
            "non|nan|pas du tout|jamais|absolument pas|pas vraiment|pas maintenant|pas encore"
            "|pas d'accord|certainement pas|bien sûr que non|pas intéressé"
        ),
        "de": _words(
            "nein|nee|nö|nicht wirklich|auf keinen fall|keineswegs|niemals|nie|noch nicht"
            "|jetzt nicht|gar nicht|eher nicht|kein interesse"
        ),
        "pt": _words(
            "não|nao|nem pensar|de jeito nenhum|claro que não|ainda não|agora não|nunca"
            "|negativo|nada disso|não me interessa"
        ),
        "it": _words(
            "no|non|assolutamente no|per niente|mai|non ancora|nemmeno|neanche|certo che no"
            "|non proprio|non mi interessa"
        ),
        "nl": _words(
            "nee|neen|nee hoor|zeker niet|helemaal niet|nooit|niet echt|nog niet|liever niet"
            "|geen interesse"
        ),
    }
)

# Hedges in any language: they make a reply unclear even next to a yes or no word, and they
# are matched before shorter words so that "not sure" is not read as "sure".
_UNSURE = _words(
    "maybe|perhaps|possibly|probably|not sure|i'm not sure|don't know|dont know|i don't know"
    "|dunno|idk|no idea|depends|it depends|kind of|sort of|not sure yet"
    "|quizás|quizá|tal vez|a lo mejor|no sé|depende|puede ser|no estoy seguro|no estoy segura"
    "|peut-être|je ne sais pas|je sais pas|sais pas|ça dépend|pas sûr|pas sûre"
    "|vielleicht|weiß nicht|keine ahnung|kommt drauf an|nicht sicher"
    "|talvez|não sei|não tenho certeza"
    "|forse|non so|non lo so|dipende|boh|non sono sicuro"
    "|misschien|weet niet|weet ik niet|geen idee|hangt ervan af|niet zeker"
)
_YES_EMOJI = frozenset("👍✅✔☑👌🆗")
_NO_EMOJI = frozenset("👎❌✖❎🚫⛔")
# Politeness that may close a one-letter answer ("y please"); anywhere else it is just ignored.
_POLITE = _words(
    "please|pls|plz|thanks|thank you|thx|ty|cheers|por favor|gracias|merci"
    "|s'il vous plait|s'il te plait|bitte|danke|obrigado|obrigada|grazie|per favore"
    "|alsjeblieft|bedankt|dank je"
)
_EMOJI_CLASS = "".join(re.escape(char) for char in sorted(_YES_EMOJI | _NO_EMOJI))
# Words keep inner apostrophes ("d'accord"); skin tones and variation selectors are dropped.
_TOKEN = re.compile(rf"[^\W_]+(?:'[^\W_]+)*|[{_EMOJI_CLASS}]")


def _tokens(text: str) -> tuple[str, ...]:
    """Casefolded, accent-free words (and yes/no emoji) with punctuation dropped."""
    decomposed = unicodedata.normalize("NFKD", text.replace("’", "'"))
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return tuple(_TOKEN.findall(bare.casefold()))


def _phrase(words: str) -> str:
    return " ".join(_tokens(words))


def _build_lexicon() -> dict[str, dict[str, bool]]:
    """Map each normalized phrase to its meaning per language: True is yes, False is no."""
    lexicon: dict[str, dict[str, bool]] = {}
    for polarity, table in ((True, YES_WORDS), (False, NO_WORDS)):
        for language, words in table.items():
            for word in words:
                lexicon.setdefault(_phrase(word), {})[language] = polarity
    return lexicon


_LEXICON: Mapping[str, Mapping[str, bool]] = MappingProxyType(_build_lexicon())
_UNSURE_PHRASES = frozenset(_phrase(words) for words in _UNSURE)
_POLITE_PHRASES = frozenset(_phrase(words) for words in _POLITE)
_LONGEST = max(len(phrase.split()) for phrase in (*_LEXICON, *_UNSURE_PHRASES, *_POLITE_PHRASES))
# Most words of a long reply start no phrase at all; checking that first keeps the scan cheap.
_FIRST_WORDS = frozenset(
    phrase.split()[0] for phrase in (*_LEXICON, *_UNSURE_PHRASES, *_YES_EMOJI, *_NO_EMOJI)
)


def parse_yes_no(text: str, languages: Sequence[str] = ("en",)) -> bool | None:
    """True for a yes, False for a no, None when the reply is neither or both.

    English words are always understood, whatever `languages` says. Language tags may carry a
    region ("pt-BR"); languages without word lists are ignored.
    """
    if len(text) > _MAX_TEXT:
        return None
    allowed = {"en", *(tag.replace("_", "-").split("-")[0].casefold() for tag in languages)}
    tokens = _strip_polite(_tokens(text))
    whole = len(tokens) == 1
    meanings: set[bool] = set()
    start = 0
    while start < len(tokens):
        if tokens[start] not in _FIRST_WORDS:
            start += 1
            continue
        # Longest phrase first, so "of course not" wins over "of course".
        for size in range(min(_LONGEST, len(tokens) - start), 0, -1):
            phrase = " ".join(tokens[start : start + size])
            if phrase in _UNSURE_PHRASES:
                return None
            meaning = _meaning(phrase, allowed, whole=whole)
            if meaning is not None:
                meanings.add(meaning)
                start += size
                break
        else:
            start += 1
    return meanings.pop() if len(meanings) == 1 else None


def _strip_polite(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """`tokens` without the courtesies that close them ("y please thanks" is "y")."""
    stripped = True
    while stripped:
        stripped = False
        # Always leave one word: "thanks" alone is not a yes.
        for size in range(min(_LONGEST, len(tokens) - 1), 0, -1):
            if " ".join(tokens[-size:]) in _POLITE_PHRASES:
                tokens, stripped = tokens[:-size], True
                break
    return tokens


def _meaning(phrase: str, allowed: set[str], *, whole: bool) -> bool | None:
    """What `phrase` means in the allowed languages, or None if nothing (or contradictory)."""
    if phrase in _YES_EMOJI:
        return True
    if phrase in _NO_EMOJI:
        return False
    # A lone letter is too easy to mistake inside a sentence: Spanish "y" means "and".
    if len(phrase) == 1 and not whole:
        return None
    senses = {
        polarity for language, polarity in _LEXICON.get(phrase, {}).items() if language in allowed
    }
    return senses.pop() if len(senses) == 1 else None
