"""Pick one or several options from a list, by number, by name or by a close spelling."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz, process
from rapidfuzz.utils import default_process

from bot.answers.result import Parsed, ParseResult, Rejected

# Longer replies are chatter, not a choice; the cap also bounds the fuzzy matching work.
_MAX_TEXT = 1000
_CUTOFF = 80
# A runner-up this close to the best score means we cannot tell which option was meant.
_MARGIN = 5
# Shorter fragments match the letters of too many labels to mean anything ("s", "x").
_MIN_FUZZY_LENGTH = 2

_NUMBERED = re.compile(
    r"(?:#|no|nr|num|number|option|options|opcion|opciones|opcao|opzione|choice)?\s*(\d{1,3})"
)
_SEPARATORS = re.compile(r"[,;&/+]|\s(?:and|y|et|und)\s", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ChoiceOption:
    """One answer the prospect can pick."""

    value: str  # stable id stored as the answer
    label: str  # shown to the prospect in the conversation's language
    terms: tuple[str, ...] = ()  # other accepted words: synonyms, labels in other languages


def _fold(text: str) -> str:
    """Lower-case, accent-free alphanumerics separated by single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(default_process(bare).split())


def match_choice(
    text: str,
    options: Sequence[ChoiceOption],
    *,
    multiple: bool = False,
    min_choices: int | None = None,
    max_choices: int | None = None,
) -> ParseResult:
    """Accept the option(s) `text` names; `min_choices`/`max_choices` apply when `multiple`."""
    if len(text) > _MAX_TEXT:
        return Rejected("choice")
    options = tuple(options)
    names = _names(options)
    if not multiple:
        found = _match_piece(_fold(text), options, names)
        if isinstance(found, Rejected):
            return found
        return Parsed(options[found].value, options[found].label)

    # A label may itself contain a separator ("Black & White"), so try the whole reply first.
    folded = _fold(text)
    whole = {
        index
        for index, option in enumerate(options)
        for name in (option.value, option.label, *option.terms)
        if _SEPARATORS.search(name) and _fold(name) == folded
    }
    pieces = [folded] if len(whole) == 1 else _split(text)
    chosen: set[int] = set()
    for piece in pieces:
        found = _match_piece(piece, options, names)
        if isinstance(found, Rejected):
            return found
        chosen.add(found)
    if not chosen:
        return Rejected("choice")
    if min_choices is not None and len(chosen) < min_choices:
        return Rejected("too_few", {"min": min_choices})
    if max_choices is not None and len(chosen) > max_choices:
        return Rejected("too_many", {"max": max_choices})
    picked = [options[index] for index in sorted(chosen)]
    return Parsed([option.value for option in picked], ", ".join(o.label for o in picked))


# Words that carry no choice: "the suv please" means "suv". Without dropping them, a shared
# "the" or "I" was enough for a fuzzy match ("the cat" -> "Out of the box").
_FILLER = frozenset(
    word
    for language in (
        "a an the i im m my me is it its of to for and or in on at with that this please pls",
        "thanks thank you want like would id d just maybe",
        "el la los las lo un una unos de del y o por favor quiero me gustaria",
        "le les du des et ou je voudrais s il vous plait",
        "der die das ein eine und oder ich bitte",
        "os as um uma do da e eu quero",
    )
    for word in language.split()
)


def _content(folded: str) -> str:
    return " ".join(word for word in folded.split() if word not in _FILLER)


@lru_cache(maxsize=512)
def _names(options: tuple[ChoiceOption, ...]) -> dict[str, set[int]]:
    """Every folded value, label and term, with the options it names. Cached: a question's
    options are the same on every reply to it."""
    names: dict[str, set[int]] = {}
    for index, option in enumerate(options):
        for name in (option.value, option.label, *option.terms):
            folded = _fold(name)
            if folded:
                names.setdefault(folded, set()).add(index)
    return names


@lru_cache(maxsize=512)
def _fuzzy_names(options: tuple[ChoiceOption, ...]) -> dict[str, set[int]]:
    """The names again, without filler words, for fuzzy matching."""
    names: dict[str, set[int]] = {}
    for name, indices in _names(options).items():
        content = _content(name)
        if content:
            names.setdefault(content, set()).update(indices)
    return names


def _split(text: str) -> list[str]:
    """The folded pieces of a multiple answer: "1, 3", "suv and sedan", "1 3"."""
    pieces: list[str] = []
    for part in _SEPARATORS.split(text):
        folded = _fold(part)
        words = folded.split()
        # Spaces separate choices only between bare numbers; labels have spaces in them.
        if len(words) > 1 and all(word.isdecimal() for word in words):
            pieces.extend(words)
        elif folded:
            pieces.append(folded)
    return pieces


def _match_piece(
    folded: str, options: tuple[ChoiceOption, ...], names: dict[str, set[int]]
) -> int | Rejected:
    """The index of the option that one folded piece of text names."""
    if not folded:
        return Rejected("choice")
    # An exact name beats a list number, so options labelled "2", "5", "7" stay reachable.
    exact = names.get(folded, set())
    if len(exact) == 1:
        return next(iter(exact))
    if len(exact) > 1:
        return _ambiguous(options, exact)
    numbered = _NUMBERED.fullmatch(folded)
    if numbered is not None:
        position = int(numbered[1])
        if 1 <= position <= len(options):
            return position - 1
    return _fuzzy(folded, options)


def _fuzzy(folded: str, options: tuple[ChoiceOption, ...]) -> int | Rejected:
    query = _content(folded)
    if len(query) < _MIN_FUZZY_LENGTH:
        return Rejected("choice")
    names = _fuzzy_names(options)
    best: dict[int, float] = {}
    for name, score, _ in process.extract(
        query, list(names), scorer=fuzz.WRatio, processor=default_process, limit=None
    ):
        for index in names[name]:
            best[index] = max(best.get(index, 0.0), score)
    ranked = sorted(best.items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] < _CUTOFF:
        return Rejected("choice")
    top_score = ranked[0][1]
    close = {index for index, score in ranked if top_score - score <= _MARGIN}
    if len(close) > 1:
        return _ambiguous(options, close)
    return ranked[0][0]


def _ambiguous(options: Sequence[ChoiceOption], indices: set[int]) -> Rejected:
    labels = ", ".join(options[index].label for index in sorted(indices))
    return Rejected("ambiguous", {"options": labels})
