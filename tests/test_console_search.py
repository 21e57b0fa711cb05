"""The console's pure parts: what a typed search means, durations as people say them, names, and
what a channel's messaging window does to a rep's message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.console_inbox import SearchTerms
from storage.console_queries import ConversationDetail, LeadCard
from webhooks.console.conversation import window_notice
from webhooks.console.present import display_name, waited
from webhooks.console.search import search_terms

TEMPLATE = "HX" + "0" * 32


@pytest.mark.parametrize(
    ("typed", "regions", "phones"),
    [
        ("612 34 56 78", ["ES"], ("+34612345678",)),
        ("(612) 345-678", ["ES"], ("+34612345678",)),
        ("+34 612 34 56 78", ["US"], ("+34612345678",)),  # international: no region needed
        ("0034612345678", [], ("+34612345678",)),
        ("07700 900123", ["GB", "ES", "GB"], ("+447700900123",)),
        ("612345678", ["ES", "PT"], ("+34612345678", "+351612345678")),
        ("202-555-0143", [None, "US"], ("+12025550143",)),
    ],
)
def test_a_typed_number_is_normalised_in_each_region(
    typed: str, regions: list[str | None], phones: tuple[str, ...]
) -> None:
    terms = search_terms(typed, regions)
    assert terms is not None
    assert terms.phones == phones
    assert terms.text == " ".join(typed.split())


def test_what_is_not_a_number_is_searched_as_text() -> None:
    assert search_terms("Ana Ruiz", ["ES"]) == SearchTerms(text="Ana Ruiz")
    assert search_terms("  ana   ruiz ", ["ES"]) == SearchTerms(text="ana ruiz")
    assert search_terms("ana@example.com", ["ES"]) == SearchTerms(text="ana@example.com")
    assert search_terms("", ["ES"]) is None
    assert search_terms(" \t ", ["ES"]) is None
    assert search_terms("x" * 500, []) == SearchTerms(text="x" * 100)


def test_partial_numbers_and_reference_codes() -> None:
    assert search_terms("5678", ["ES"]) == SearchTerms(text="5678", digits="5678")
    assert search_terms("678", ["ES"]) == SearchTerms(text="678")  # too short to mean much
    assert search_terms("k7m2qx", []) == SearchTerms(text="k7m2qx", reference="K7M2QX")
    # A code inside a sentence is a sentence: searched as text only.
    assert search_terms("code k7m2qx please", []) == SearchTerms(text="code k7m2qx please")
    assert search_terms("kmqxzz", []) == SearchTerms(text="kmqxzz")  # no digit: not a code


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (-5, "0 s"),
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3660 + 59, "1 h 1 min"),
        (47 * 3600, "47 h"),
        (49 * 3600, "2 days"),
    ],
)
def test_durations_read_the_way_people_say_them(seconds: float, said: str) -> None:
    assert waited(seconds) == said


def test_a_prospect_is_named_by_the_form_else_by_the_reference() -> None:
    assert display_name({"first_name": "Ana", "last_name": "Ruiz"}, "K7M2QX") == "Ana Ruiz"
    assert display_name({"full_name": " Ana Ruiz "}, "K7M2QX") == "Ana Ruiz"
    assert display_name({"name": "Ana"}, "K7M2QX") == "Ana"
    assert display_name({"email": "a@example.com"}, "K7M2QX") == "Lead K7M2QX"


def detail(channel: str, last_inbound_at: datetime | None, sent: int = 0) -> ConversationDetail:
    now = datetime.now(UTC)
    lead = LeadCard(
        id=1, reference="K7M2QX", source="form", script_id="s", fields={}, answers={},
        score=None, reasons=[], outcome=None, qualified=None, attribution={},
        consent_text=None, consent_at=None, phone=None, email=None, language="en",
        is_test=False, submitted_at=now, completed_at=None,
    )  # fmt: skip
    return ConversationDetail(
        id=1, channel=channel, channel_user_id="+34612345678", script_id="s",
        script_version="v", status="with_rep", state={}, version=3, held_by=1,
        held_by_name="Ana Ruiz", last_inbound_at=last_inbound_at, sent_since_inbound=sent,
        created_at=now, updated_at=now, lead=lead,
    )  # fmt: skip


def test_a_closed_window_is_told_before_the_rep_writes() -> None:
    now = datetime.now(UTC)
    fresh, stale = now - timedelta(hours=1), now - timedelta(days=2)
    assert window_notice(detail("whatsapp", fresh), None) is None
    assert window_notice(detail("sms", stale), None) is None  # SMS has no window
    held = window_notice(detail("whatsapp", stale), None)
    assert held is not None
    assert held.startswith("Your message will be held: outside WhatsApp's 24-hour window")
    assert held.endswith("no window template is configured.")
    template = window_notice(detail("whatsapp", stale), TEMPLATE)
    assert template is not None
    assert template.startswith("Outside WhatsApp's 24-hour window")
    assert f"goes out as the approved template {TEMPLATE}" in template
    never = window_notice(detail("whatsapp", None), None)
    assert never is not None
    assert "the prospect has not written yet" in never
    budget = window_notice(detail("tiktok", fresh, sent=10), None)
    assert budget is not None
    assert "about 10 messages until the prospect writes again" in budget
