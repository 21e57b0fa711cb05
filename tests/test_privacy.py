"""A lead's person exported and erased, on SQLite and PostgreSQL: after an erasure the whole
database, every table and column, holds neither their phone (any way they wrote it), email,
name nor chat id, while the other leads and the funnel's counts are untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.privacy import consent_version, hashed_address
from bot.records import NewLead
from storage.db import Database
from storage.privacy import SqlPrivacy, UnknownLeadError
from storage.tables import ConsentRow, LeadRow
from storage.transactions import SqlStorage
from tests.conftest import NOW
from tests.privacy_support import OTTO, ZELDA, Held, dump, found_in, hold
from tests.schema_drift import schema_differences

LEADS = LeadRow.__table__  # type: ignore[attr-defined]
CONSENTS = ConsentRow.__table__  # type: ignore[attr-defined]
LATER = NOW + timedelta(days=3)


@pytest.fixture
async def storage(database: Database) -> AsyncIterator[SqlStorage]:
    storage = SqlStorage(database)
    yield storage
    await storage.close()


async def _two_people(storage: SqlStorage, database: Database) -> tuple[Held, Held]:
    return await hold(storage, database, ZELDA, NOW), await hold(storage, database, OTTO, NOW)


async def _lead_row(database: Database, lead_id: int) -> Any:
    async with database.reading() as connection:
        return (await connection.execute(select(LEADS).where(LEADS.c.id == lead_id))).one()


async def test_the_erasure_leaves_no_trace_of_the_person_in_any_table(
    database: Database, storage: SqlStorage
) -> None:
    zelda, _otto = await _two_people(storage, database)
    before = await dump(database)
    # The dump sees the person in the places an erasure must reach (so this test can fail).
    places = {hit.split(":")[0] for hit in found_in(before, ZELDA)}
    assert {
        "leads.fields",
        "leads.raw",
        "leads.answers",
        "leads.phone",
        "leads.email",
        "leads.consent_text",
        "consents.text",
        "conversations.channel_user_id",
        "conversations.state",
        "messages.text",
        "outbox.payload",
        "audit_log.detail",
        "suppressions.address",
        "crm_events.body",
        "crm_deliveries.last_error",
    } <= places

    erasure = await SqlPrivacy(database).erase(zelda.lead_id, actor="command line", now=LATER)

    after = await dump(database)
    assert found_in(after, ZELDA) == []
    assert found_in(after, OTTO) == found_in(before, OTTO)  # nobody else's data moved
    assert not erasure.already
    assert erasure.removed["conversations"] == 2
    assert erasure.removed["messages"] == 2
    assert erasure.removed["outbox"] == 3
    assert erasure.removed["opt_outs_hashed"] == 2
    assert erasure.removed["crm_event_bodies"] == 1
    # Nothing left hangs off the erased conversations.
    gone = {zelda.sms_conversation, zelda.telegram_conversation}
    for table in ("messages", "timers", "telegram_rep_threads", "telegram_rep_messages"):
        assert not [row for row in after[table] if row["conversation_id"] in gone], table
    assert not [r for r in after["receipts"] if r["provider_id"].startswith(f"{min(gone)}:")]


async def test_an_erased_lead_still_counts_in_the_funnel_and_the_audit_log_says_who_erased_it(
    database: Database, storage: SqlStorage
) -> None:
    zelda, _ = await _two_people(storage, database)
    await SqlPrivacy(database).erase(zelda.lead_id, actor="rep 1 (Ana Ruiz)", now=LATER)
    shell = await _lead_row(database, zelda.lead_id)
    assert (shell.source, shell.script_id, shell.outcome, shell.qualified, shell.score) == (
        "tiktok",
        "privacy-test",
        "qualified",
        True,
        40,
    )
    assert shell.attribution == {"campaign_id": "1800", "ad_name": "spring"}
    assert (shell.submitted_at, shell.completed_at, shell.erased_at) == (NOW, NOW, LATER)
    assert shell.conversation_started_at == NOW
    # A typed reference code never finds it, and the conversation side sees no lead.
    assert await storage.run(lambda tx: tx.leads.by_reference(shell.reference)) is None
    assert await storage.run(lambda tx: tx.leads.get(zelda.lead_id)) is None
    # The consents keep their versions and times, not their words.
    async with database.reading() as connection:
        query = select(CONSENTS).where(CONSENTS.c.lead_id == zelda.lead_id)
        consents = (await connection.execute(query.order_by(CONSENTS.c.id))).all()
    assert [(c.text, c.version, c.via) for c in consents] == [
        (None, consent_version("Zelda, may we call you? (TikTok form)"), "source"),
        (None, consent_version("Zelda, may we email you offers?"), "chat"),
    ]
    audit = (await dump(database))["audit_log"]
    mine = [row for row in audit if row["lead_id"] == zelda.lead_id]
    # The rep's note stays as a fact (who, what, when), without its words or conversation.
    assert (mine[0]["action"], mine[0]["actor"], mine[0]["detail"]) == (
        "note",
        "rep 1 (Ana Ruiz)",
        None,
    )
    erased = mine[-1]
    assert (erased["action"], erased["actor"], erased["conversation_id"]) == (
        "erased",
        "rep 1 (Ana Ruiz)",
        None,
    )
    assert "conversations 2" in erased["detail"]


async def test_an_erased_persons_opt_out_still_stops_every_send(
    database: Database, storage: SqlStorage
) -> None:
    zelda, _ = await _two_people(storage, database)
    await SqlPrivacy(database).erase(zelda.lead_id, actor="command line", now=LATER)
    addresses = [f"phone:{ZELDA.phone}", f"telegram:{ZELDA.telegram_chat}", "phone:+34600000000"]
    suppressed = await storage.run(lambda tx: tx.suppressions.among(addresses))
    assert suppressed == {f"phone:{ZELDA.phone}", f"telegram:{ZELDA.telegram_chat}"}
    stored = {row["address"] for row in (await dump(database))["suppressions"]}
    assert hashed_address(f"phone:{ZELDA.phone}") in stored
    # START from that number lifts the hashed opt-out too.
    await storage.run(lambda tx: tx.suppressions.remove(f"phone:{ZELDA.phone}"))
    assert await storage.run(lambda tx: tx.suppressions.among(addresses)) == {
        f"telegram:{ZELDA.telegram_chat}"
    }


async def test_erasing_twice_changes_nothing_the_second_time(
    database: Database, storage: SqlStorage
) -> None:
    zelda, _ = await _two_people(storage, database)
    privacy = SqlPrivacy(database)
    await privacy.erase(zelda.lead_id, actor="command line", now=LATER)
    once = await dump(database)
    again = await privacy.erase(zelda.lead_id, actor="command line", now=LATER + timedelta(1))
    assert again.already
    assert again.removed == {}
    assert await dump(database) == once


async def test_an_unknown_lead_is_refused_by_name(database: Database) -> None:
    privacy = SqlPrivacy(database)
    with pytest.raises(UnknownLeadError, match="no lead with id 4242"):
        await privacy.erase(4242, actor="command line", now=LATER)
    with pytest.raises(UnknownLeadError, match="no lead with id 4242"):
        await privacy.export(4242, actor="command line", now=LATER)


async def test_the_export_holds_everything_about_the_person_and_nothing_about_others(
    database: Database, storage: SqlStorage
) -> None:
    zelda, _ = await _two_people(storage, database)
    found = await SqlPrivacy(database).export(zelda.lead_id, actor="API key 1 (dpo)", now=LATER)
    assert found["format"] == "leadbot.lead-export/1"
    assert found["lead"]["phone"] == ZELDA.phone
    assert found["lead"]["fields"]["first_name"] == "Zelda"
    assert found["lead"]["answers"]["callback"] == "612-345-678"
    assert found["lead"]["consent_version"] == consent_version("Zelda, may we email you offers?")
    assert [c["via"] for c in found["consents"]] == ["source", "chat"]
    chats = {c["channel"]: c for c in found["conversations"]}
    assert chats["sms"]["channel_user_id"] == ZELDA.phone
    assert [line["author"] for line in chats["sms"]["transcript"]] == ["prospect", "bot"]
    assert chats["sms"]["state"]["lead"]["first_name"] == "Zelda"
    assert chats["sms"]["reps_group_threads"][0]["topic_id"] == 5
    assert sorted(row["kind"] for row in found["outbox"]) == [
        "first_contact",
        "send_text",
        "telegram_rep_card",
    ]
    assert [row["action"] for row in found["audit_log"]] == ["note"]
    assert {row["address"] for row in found["suppressions"]} == {
        f"phone:{ZELDA.phone}",
        f"telegram:{ZELDA.telegram_chat}",
    }
    assert found["crm"]["events"][0]["body"]["lead"]["first_name"] == "Zelda"
    assert found["crm"]["deliveries"][0]["last_status"] == 400
    assert found_in({"export": [found]}, OTTO) == []
    # The export is JSON through and through (times as ISO 8601 text).
    assert found["lead"]["submitted_at"] == NOW.isoformat()
    # And it is in the audit log, by whom.
    audit = (await dump(database))["audit_log"]
    assert [(r["action"], r["actor"]) for r in audit if r["conversation_id"] is None] == [
        ("exported", "API key 1 (dpo)")
    ]


async def test_leads_are_found_by_phone_on_the_form_or_as_their_chat_and_by_email(
    database: Database, storage: SqlStorage
) -> None:
    zelda, otto = await _two_people(storage, database)

    def chat_only(tx: Any) -> int:  # a lead that came by SMS: no number on a form
        lead, _ = tx.leads.add(
            NewLead(source="chat", external_id="sms-1", script_id="privacy-test", submitted_at=NOW),
            "RCHAT1",
            NOW,
        )
        tx.conversations.add(
            lead_id=lead.id,
            channel="whatsapp",
            channel_user_id=ZELDA.phone,
            script_id="privacy-test",
            script_version="v-privacy-1",
            now=NOW,
        )
        return int(lead.id)

    by_chat = await storage.run(chat_only)
    privacy = SqlPrivacy(database)
    assert await privacy.leads_with(phone=ZELDA.phone) == [zelda.lead_id, by_chat]
    assert await privacy.leads_with(email=OTTO.email.upper()) == [otto.lead_id]
    await privacy.erase(zelda.lead_id, actor="command line", now=LATER)
    assert await privacy.leads_with(phone=ZELDA.phone) == [by_chat]


async def test_consent_is_stored_with_its_version_and_how_it_was_given(
    database: Database, storage: SqlStorage
) -> None:
    def add(tx: Any) -> tuple[int, int]:
        form, _ = tx.leads.add(
            NewLead(
                source="form",
                external_id="n1",
                script_id="s",
                submitted_at=NOW,
                consent_text="I agree to be contacted about this request.",
            ),
            "RFORM1",
            NOW,
        )
        silent, _ = tx.leads.add(
            NewLead(source="api:zapier", external_id="z1", script_id="s", submitted_at=NOW),
            "RZAP01",
            NOW,
        )
        return int(form.id), int(silent.id)

    form_id, silent_id = await storage.run(add)
    form = await _lead_row(database, form_id)
    assert (form.consent_version, form.consent_via, form.consent_at) == (
        consent_version("I agree to be contacted about this request."),
        "form",
        NOW,
    )
    silent = await _lead_row(database, silent_id)
    assert (silent.consent_text, silent.consent_version, silent.consent_via) == (None, None, None)
    async with database.reading() as connection:
        count = (await connection.execute(select(CONSENTS.c.lead_id))).scalars().all()
    assert count == [form_id]


def test_a_consent_version_follows_the_words_exactly() -> None:
    text = "I agree to be contacted about this request."
    assert consent_version(text) == consent_version(f"  {text}\n")
    assert consent_version(text) != consent_version(text.replace("this", "my"))
    assert consent_version("Café") == consent_version("Cafe\u0301")  # one text, two spellings
    assert len(consent_version(text)) == 12


# The privacy tables and columns of the models are exactly those of migration 0009.
MINE = {"consents", "maintenance_leases"}
MY_COLUMNS = {"consent_version", "consent_via", "erased_at"}


def _about_mine(diff: Any) -> bool:
    if isinstance(diff, list):  # a column's modifications
        return any(_about_mine(part) for part in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        return str(diff[1].name) in MINE
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return str(diff[1].table.name) in MINE
    if kind in ("add_column", "remove_column"):  # (kind, schema, table, column)
        return diff[2] in MINE or diff[3].name in MY_COLUMNS
    if kind.startswith("modify_"):  # (kind, schema, table, column, ...)
        return diff[2] in MINE or diff[3] in MY_COLUMNS
    return False


async def test_migration_0009_matches_the_models(database: Database) -> None:
    found = await schema_differences(database)
    assert [diff for diff in found if _about_mine(diff)] == []
