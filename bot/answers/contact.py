"""Contact details: e-mail addresses, phone numbers and website URLs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from bot.answers.result import Parsed, ParseResult, Rejected

# Longer replies are chatter, not contact details; the cap also bounds the work per message.
_MAX_TEXT = 1000
# RFC 5321 caps an address at 254 octets and a URL rarely goes past 2000 characters.
_MAX_EMAIL_TOKEN = 320
_MAX_URL_TOKEN = 2000
# PhoneNumberMatcher scans every digit run, so it gets a tighter cap than the other parsers.
_MAX_PHONE_TEXT = 500

# Punctuation people put around an address or link in a sentence: "(ana@example.com)." .
_OPENERS = "<([{\"'«“‘"
_CLOSERS = {">": "<", ")": "(", "]": "[", "}": "{", "»": "«", "”": "“", "’": "‘"}
_TRAILING = ".,;:!?\"'"
_MAILTO = re.compile(r"^mailto:", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
_HAS_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*://", re.IGNORECASE)
# An LDH hostname (RFC 1123) whose last label is a real-looking TLD: letters, or an IDNA A-label.
# It runs on the ASCII (IDNA-encoded) form, so internationalised names pass through it too.
_HOSTNAME = re.compile(
    r"(?:(?!-)[a-z0-9-]{1,63}(?<!-)\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})",
    re.ASCII,
)


def _trim(token: str) -> str:
    """Drop the quotes, brackets and sentence punctuation around a token.

    A closing bracket stays when it closes one inside the token: ".../wiki/Foo_(bar)".
    """
    token = token.lstrip(_OPENERS)
    while token:
        last = token[-1]
        opener = _CLOSERS.get(last)
        unbalanced = opener is not None and token.count(opener) < token.count(last)
        if last not in _TRAILING and not unbalanced:
            break
        token = token[:-1]
    return token


def parse_email(text: str) -> ParseResult:
    """Accept one e-mail address, alone or inside a short sentence; never looks up DNS."""
    if len(text) > _MAX_TEXT:
        return Rejected("email")
    candidates = {
        _MAILTO.sub("", _trim(token))
        for token in text.split()
        if "@" in token and len(token) <= _MAX_EMAIL_TOKEN
    }
    # Two different addresses leave us guessing which one is meant.
    if len(candidates) != 1:
        return Rejected("email")
    try:
        email = validate_email(candidates.pop(), check_deliverability=False)
    except EmailNotValidError:
        return Rejected("email")
    return Parsed(email.normalized, email.normalized)


def parse_phone(text: str, *, region: str | None) -> ParseResult:
    """Accept one valid phone number; `region` is the default country for national numbers.

    With `region=None` the number has to be international (start with + or an exit code).
    """
    stripped = text.strip()
    if not stripped or len(stripped) > _MAX_PHONE_TEXT:
        return Rejected("phone")
    region_code = region.upper() if region else None
    # phonenumbers reads letters as keypad digits (1-800-FLOWERS), so a reply with words in it
    # could turn into a valid but unintended number: only digit-only replies are parsed whole.
    if _LETTER.search(stripped) is None:
        try:
            number = phonenumbers.parse(stripped, region_code)
        except phonenumbers.NumberParseException:
            pass
        else:
            if phonenumbers.is_valid_number(number):
                return _phone_result(number)
    found = {
        phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164): match.number
        for match in phonenumbers.PhoneNumberMatcher(stripped, region_code or "ZZ")
        if phonenumbers.is_valid_number(match.number)
    }
    # Two different numbers leave us guessing which one is meant.
    if len(found) != 1:
        return Rejected("phone")
    return _phone_result(next(iter(found.values())))


def _phone_result(number: phonenumbers.PhoneNumber) -> Parsed:
    return Parsed(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    )


def parse_url(text: str) -> ParseResult:
    """Accept one http(s) link, alone or inside a short sentence; a bare host gets https://."""
    if len(text) > _MAX_TEXT:
        return Rejected("url")
    candidates = {
        url
        for token in text.split()
        if "." in token and len(token) <= _MAX_URL_TOKEN
        for url in [_normalize_url(_trim(token))]
        if url is not None
    }
    if len(candidates) != 1:
        return Rejected("url")
    url = candidates.pop()
    return Parsed(url, url)


def _normalize_url(token: str) -> str | None:
    """The canonical form of an http(s) URL, or None when `token` is not one."""
    if not token.isprintable():
        return None
    if _HAS_SCHEME.match(token) is None:
        token = "https://" + token
    try:
        parts = urlsplit(token)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    # Credentials in a link are a phishing trick, never part of a prospect's website.
    if scheme not in {"http", "https"} or host is None or parts.username is not None:
        return None
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    if _HOSTNAME.fullmatch(ascii_host) is None:
        return None
    netloc = host if port is None else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment))
