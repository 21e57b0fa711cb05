"""webhooks.http: the request ids leadbot makes up are plain and do not repeat."""

from __future__ import annotations

from webhooks.http import _SAFE_ID, new_request_id


def test_made_up_request_ids_are_plain_and_distinct() -> None:
    made = [new_request_id() for _ in range(10_000)]
    assert all(_SAFE_ID.fullmatch(made_id) and len(made_id) == 16 for made_id in made)
    assert len(set(made)) == len(made)
