import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.answers.contact import parse_email, parse_phone, parse_url
from bot.answers.result import Parsed, ParseResult, Rejected

any_text = st.text() | st.text(min_size=1000, max_size=10_000)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ana@example.com", Parsed("ana@example.com", "ana@example.com")),
        ("  Ana@Example.COM ", Parsed("Ana@example.com", "Ana@example.com")),
        ("it's ana@example.com thanks", Parsed("ana@example.com", "ana@example.com")),
        ("write to <ana@example.com>.", Parsed("ana@example.com", "ana@example.com")),
        ("(ana@example.com)!", Parsed("ana@example.com", "ana@example.com")),
        ("mailto:ana@example.com", Parsed("ana@example.com", "ana@example.com")),
        ("ana@müller.de", Parsed("ana@müller.de", "ana@müller.de")),
        ("ana@example", Rejected("email")),
        ("ana@@example.com", Rejected("email")),
        ("ana.example.com", Rejected("email")),
        ("ana@localhost", Rejected("email")),
        ("ana@example.com or bo@example.com", Rejected("email")),
        ("", Rejected("email")),
        ("a" * 300 + "@example.com", Rejected("email")),
    ],
)
def test_parse_email(text: str, expected: ParseResult) -> None:
    assert parse_email(text) == expected


US_NUMBER = Parsed("+14155552671", "+1 415-555-2671")


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("415 555 2671", "US", US_NUMBER),
        ("(415) 555-2671", "us", US_NUMBER),
        ("+1 415 555 2671", None, US_NUMBER),
        ("+1 415 555 2671", "ES", US_NUMBER),
        ("call me on 415 555 2671", "US", US_NUMBER),
        ("415 555 2671 thanks!", "US", US_NUMBER),
        ("612 34 56 78", "ES", Parsed("+34612345678", "+34 612 34 56 78")),
        ("0034 612345678", "ES", Parsed("+34612345678", "+34 612 34 56 78")),
        ("+44 20 7946 0958", "US", Parsed("+442079460958", "+44 20 7946 0958")),
        ("(415) 555-2671 ext. 12", "US", Parsed("+14155552671", "+1 415-555-2671 ext. 12")),
        ("415 555 2671", None, Rejected("phone")),
        ("555 2671", "US", Rejected("phone")),
        ("12", "US", Rejected("phone")),
        ("5 pm is fine", "US", Rejected("phone")),
        ("1-800-FLOWERS", "US", Rejected("phone")),
        ("415-555-2671 or 415-555-2672", "US", Rejected("phone")),
        ("", "US", Rejected("phone")),
        ("4" * 600, "US", Rejected("phone")),
    ],
)
def test_parse_phone(text: str, region: str | None, expected: ParseResult) -> None:
    assert parse_phone(text, region=region) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://x.com/a", "https://x.com/a"),
        ("www.example.com", "https://www.example.com"),
        ("example.com/path", "https://example.com/path"),
        ("http://example.com", "http://example.com"),
        ("HTTPS://WWW.Example.COM/Path?q=1#top", "https://www.example.com/Path?q=1#top"),
        ("example.com:8080/a", "https://example.com:8080/a"),
        ("our site is example.com.", "https://example.com"),
        ("(www.example.com)", "https://www.example.com"),
        ("münchen.de", "https://münchen.de"),
        ("“https://en.wikipedia.org/wiki/Foo_(bar)”.", "https://en.wikipedia.org/wiki/Foo_(bar)"),
    ],
)
def test_parse_url_accepts(text: str, expected: str) -> None:
    assert parse_url(text) == Parsed(expected, expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "example",
        "ftp://example.com",
        "javascript:alert(1)",
        "http://user:secret@example.com",
        "localhost:8080",
        "http://192.168.0.1",
        "e.g. this",
        "3.5",
        "-example.com",
        "http://[::1",
        "example.com:99999",
        "example.com or example.org",
        "example.com\x00/x",
        "x" * 70 + ".com",
    ],
)
def test_parse_url_rejects(text: str) -> None:
    assert parse_url(text) == Rejected("url")


@settings(max_examples=200)
@given(any_text)
def test_parse_email_never_raises(text: str) -> None:
    assert isinstance(parse_email(text), Parsed | Rejected)


@settings(max_examples=200)
@given(any_text, st.sampled_from([None, "US", "ES", "GB", "XX", "", "us"]))
def test_parse_phone_never_raises(text: str, region: str | None) -> None:
    assert isinstance(parse_phone(text, region=region), Parsed | Rejected)


@settings(max_examples=200)
@given(any_text)
def test_parse_url_never_raises(text: str) -> None:
    assert isinstance(parse_url(text), Parsed | Rejected)


@settings(max_examples=200)
@given(st.from_regex(r"[\w.@:/%+-]{1,60}", fullmatch=True))
def test_contact_parsers_never_raise_on_address_like_text(text: str) -> None:
    assert isinstance(parse_email(text), Parsed | Rejected)
    assert isinstance(parse_phone(text, region="US"), Parsed | Rejected)
    assert isinstance(parse_url(text), Parsed | Rejected)
