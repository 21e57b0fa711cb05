"""The conversation service: lock, load, step, and save everything a turn did in one commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import appointments_service as booking
from bot import desk
from bot.catalog import ScriptCatalog
from bot.compiled import CompiledScript
from bot.effects import (
    CancelTimers,
    Closed,
    Complete,
    Effect,
    HandOff,
    MarkAbandoned,
    OptIn,
    OptOut,
    RecordAnswer,
    RecordConsent,
    ScheduleTimer,
    SendText,
)
from bot.engine import Transition, step
from bot.errors import ConversationExistsError, UnknownConversationError
from bot.inbound import (
    AppointmentCancelled,
    AppointmentMoved,
    ContactShared,
    ConversationStarted,
    Inbound,
    OptionPicked,
    ReturnedFromRep,
    TextReceived,
)
from bot.locks import KeyedLocks
from bot.ports import Storage, Transaction
from bot.records import Conversation, Receipt
from bot.state import ConversationState
from bot.suppression import address_of
from bot.textsafe import storable
from bot.tokens import TokenError, TokenSigner, find_reference
from bot.watchers import SavedTurn, TurnWatcher

SEND_TEXT = "send_text"
HANDOFF_REQUESTED = "handoff_requested"  # the audit log's action when a person is asked for
# Provider error codes that mean the prospect opted out or blocked the business (Twilio:
# 21610 "unsubscribed recipient", 63014 "blocked or opted out" on WhatsApp).
OPTED_OUT_CODES = frozenset({"21610", "63014"})

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TurnResult:
    conversation_id: int
    applied: bool  # False: a duplicate delivery, acknowledged and ignored
    state: ConversationState | None
    effects: tuple[Effect, ...] = ()
    channel: str = ""


@dataclass(frozen=True, slots=True)
class FirstMessage:
    """How a chat's first message opens its conversation (`answer_in_chat`): `lead_for` finds
    or stores the lead it belongs to, in the turn's transaction; `said` is its text."""

    lead_for: Callable[[Transaction, datetime], int]
    language: str | None
    said: str | None


@dataclass(frozen=True, slots=True)
class _Opening:
    """A conversation to open for a lead in a chat. `said` is the prospect's first message when
    they wrote first: kept in the transcript (it opens the conversation, it does not answer a
    question they have not seen yet)."""

    lead_id: int
    channel: str
    chat: str  # the channel's user id
    language: str | None
    timezone: str | None
    receipt: Receipt | None
    said: str | None = None


class ConversationService:
    """Every channel calls this. A turn that returns has been committed, whole."""

    def __init__(
        self,
        storage: Storage,
        catalog: ScriptCatalog,
        clock: Callable[[], datetime],
        *,
        on_commit: Callable[[], None] = lambda: None,
        on_turn: Callable[[str], None] = lambda channel: None,
        on_change: Callable[[int, tuple[Effect, ...]], None] = lambda conversation, effects: None,
        watchers: Sequence[TurnWatcher] = (),
        appointment_links: Callable[[int], str] | None = None,
    ) -> None:
        self._storage = storage
        self._catalog = catalog
        self._clock = clock
        self._on_commit = on_commit  # e.g. wake the dispatcher: there is work in the outbox
        self._on_turn = on_turn  # e.g. count turns per channel
        # e.g. the reps' console showing the conversation live, or telling reps of a handoff
        self._on_change = on_change
        # Inside each turn's transaction: what must commit with it (reps' cards, CRM events).
        self._watchers = tuple(watchers)
        self._locks = KeyedLocks()
        # An appointment id -> its calendar link (bot.appointments_links); None: no links.
        self._links = appointment_links

    @property
    def locks_held(self) -> int:
        return len(self._locks)

    async def start(
        self,
        lead_id: int,
        *,
        channel: str,
        channel_user_id: str,
        language: str | None = None,
        timezone: str | None = None,
        receipt: Receipt | None = None,
    ) -> TurnResult:
        """Open a conversation for a lead on a channel, and run its first turn."""
        opening = _Opening(lead_id, channel, channel_user_id, language, timezone, receipt)
        started = await self._start(opening, unless_open=False)
        assert isinstance(started, TurnResult)  # without unless_open there is nothing to find
        return started

    async def _start(self, opening: _Opening, *, unless_open: bool) -> TurnResult | Conversation:
        """`start`; with `unless_open`, first look for the lead's conversation in this chat in
        the same transaction, and return it untouched when there is one."""
        now = self._clock()

        def work(tx: Transaction) -> TurnResult | Conversation:
            if unless_open:
                existing = tx.conversations.find(opening.lead_id, opening.channel, opening.chat)
                if existing is not None:
                    return existing
            if opening.receipt is not None and not tx.receipts.add(opening.receipt, now):
                return TurnResult(0, False, None, channel=opening.channel)
            return self._open_in(tx, opening, now)

        result = await self._storage.run(work)
        if isinstance(result, TurnResult):
            self._turn_committed(result)
        return result

    def _open_in(self, tx: Transaction, opening: _Opening, now: datetime) -> TurnResult:
        """Open the conversation in the caller's transaction and run its first turn."""
        lead_id, channel, channel_user_id = opening.lead_id, opening.channel, opening.chat
        language, timezone = opening.language, opening.timezone
        lead = tx.leads.get(lead_id)
        if lead is None:
            raise UnknownConversationError(f"no lead {lead_id}")
        loaded = self._catalog.current(lead.script_id)
        tx.scripts.ensure(loaded.script.id, loaded.script.version, loaded.source, now)
        conversation = tx.conversations.add(
            lead_id=lead_id,
            channel=channel,
            channel_user_id=channel_user_id,
            script_id=loaded.script.id,
            script_version=loaded.script.version,
            now=now,
        )
        if opening.said:
            tx.transcript.add(
                conversation_id=conversation.id,
                author="prospect",
                text=storable(opening.said),
                status="received",
                now=now,
            )
        started = ConversationStarted(dict(lead.fields), language or lead.language, timezone)
        seen = booking.availability(tx, loaded.script, now)
        transition = booking.settle(
            tx,
            conversation,
            step(loaded.script, None, started, now, availability=seen),
            lambda full: step(loaded.script, None, started, now, availability=full),
            seen=seen,
            now=now,
            link=self._links,
        )
        self._save_turn(tx, conversation, transition, None, now, started=True)
        return TurnResult(conversation.id, True, transition.state, transition.effects, channel)

    async def open(
        self,
        lead_id: int,
        *,
        channel: str,
        channel_user_id: str,
        language: str | None = None,
        timezone: str | None = None,
        receipt: Receipt | None = None,
    ) -> TurnResult:
        """The lead's conversation in this chat: started now, or the one it already has (then
        the engine says "welcome back" and asks the pending question again)."""
        # Two first opens at once (two tabs, a double tap) must not start two conversations.
        async with self._locks.hold(("open", lead_id, channel, channel_user_id)):
            # Looking for the conversation and starting one are one trip to the database: the
            # first message of a new chat is the one the prospect waits on most.
            opening = _Opening(lead_id, channel, channel_user_id, language, timezone, receipt)
            try:
                opened = await self._start(opening, unless_open=True)
            except ConversationExistsError:  # another worker won the race: join it
                found = await self._storage.run(
                    lambda tx: tx.conversations.find(lead_id, channel, channel_user_id)
                )
                if found is None:
                    raise
                opened = found
        if isinstance(opened, TurnResult):
            return opened
        return await self.handle(opened.id, ConversationStarted(language=language), receipt)

    async def find_lead(
        self, token_or_text: str, signer: TokenSigner, *, codes: bool = True
    ) -> int | None:
        """The lead a chat's first message points at: a signed token (a deep link's payload),
        or (with `codes`) a reference code typed anywhere in it."""
        signed = _signed_lead(token_or_text, signer, self._clock())
        code = find_reference(token_or_text) if codes and signed is None else None
        if code is None:
            return signed
        return await self._storage.run(lambda tx: _lead_by_code(tx, code))

    async def record_delivery(
        self, channel: str, provider_id: str, status: str, error: str | None = None
    ) -> bool:
        """A provider's report on a message it took: the line's status moves forward, and a
        report that the prospect opted out or blocked us stops all sending to them. False when
        no message has that provider id (a report for a message leadbot did not send)."""
        now = self._clock()
        opted_out = error is not None and error.split(" ", 1)[0] in OPTED_OUT_CODES

        def work(tx: Transaction) -> bool:
            target = tx.transcript.set_delivery_status(provider_id, status, error)
            if target is None:
                return False
            if opted_out and error is not None:
                tx.suppressions.add(
                    address_of(target.channel, target.chat), target.channel, error, now
                )
                tx.outbox.fail_pending(target.conversation_id, error, now)
                tx.conversations.mark_unreachable(target.conversation_id, now)
                tx.timers.cancel_all(target.conversation_id)
            return True

        found = await self._storage.run(work)
        if not found:
            log.info("delivery report for unknown %s message", channel)
        return found

    async def suppress(self, channel: str, chat: str, reason: str, receipt: Receipt) -> bool:
        """An opt-out from a chat that has no conversation (e.g. STOP in reply to first
        contact): nothing more is sent to that address. False for a repeated delivery."""
        now = self._clock()

        def work(tx: Transaction) -> bool:
            if not tx.receipts.add(receipt, now):
                return False
            tx.suppressions.add(address_of(channel, chat), channel, reason, now)
            return True

        return await self._storage.run(work)

    async def act(
        self,
        conversation_id: int,
        rep: desk.Rep,
        action: desk.Action,
        receipt: Receipt | None = None,
    ) -> TurnResult:
        """A rep's action (take over, write, hand back, close, note), in turn with the
        prospect's messages. Raises desk.HeldByAnotherError, NotHoldingError or
        ActionRefusedError, having changed nothing. With a `receipt` (e.g. the Telegram update
        that carried it), a repeated delivery of the action changes nothing: applied is False."""

        def work(tx: Transaction) -> desk.ActionResult | None:
            if receipt is not None and not tx.receipts.add(receipt, now):
                return None
            done = desk.apply(
                tx,
                self._catalog,
                conversation_id,
                rep,
                action,
                now=now,
                save_turn=self._save_turn,
                queue_rep_text=_queue_rep_text,
            )
            if done.audited is not None:
                for watcher in self._watchers:
                    watcher.rep_acted(tx, done.audited)
            return done

        async with self._locks.hold(conversation_id):
            now = self._clock()
            done = await self._storage.run(work)
        if done is None:
            return TurnResult(conversation_id, False, None)
        self._on_commit()
        self._on_change(done.conversation_id, done.effects)
        return TurnResult(done.conversation_id, True, done.state, done.effects, done.channel)

    async def handle(
        self, conversation_id: int, inbound: Inbound, receipt: Receipt | None = None
    ) -> TurnResult:
        """Apply one inbound event to a conversation, once, in arrival order."""
        inbound = _storable(inbound)

        def work(tx: Transaction) -> TurnResult:
            if receipt is not None and not tx.receipts.add(receipt, now):
                return TurnResult(conversation_id, False, None)
            conversation = tx.conversations.lock(conversation_id)
            if conversation is None:
                raise UnknownConversationError(f"no conversation {conversation_id}")
            return self._turn(tx, conversation, inbound, now)

        async with self._locks.hold(conversation_id):
            now = self._clock()
            result = await self._storage.run(work)
        self._turn_committed(result)
        return result

    async def handle_in_chat(
        self, channel: str, channel_user_id: str, inbound: Inbound, receipt: Receipt | None = None
    ) -> TurnResult | None:
        """`handle` for the conversation a chat is in now (its newest), found in the turn's own
        transaction: one trip to the database where finding it and then `handle` took two.
        None, with nothing written, when the chat has no conversation. The caller keeps a
        chat's turns in order; a timer or a rep acting on the same conversation meanwhile
        waits for its row (FOR UPDATE on PostgreSQL, the one writer on SQLite)."""
        return await self._in_chat(channel, channel_user_id, inbound, receipt, None)

    async def answer_in_chat(
        self,
        channel: str,
        channel_user_id: str,
        inbound: Inbound,
        receipt: Receipt | None,
        first: FirstMessage,
    ) -> TurnResult:
        """`handle_in_chat`, and when the chat has no conversation yet, open one for the lead
        `first` finds or stores, in the same transaction: a chat's first message, the one a
        prospect waits on most, is one trip to the database. Its text is kept in the
        transcript; it answers no question the prospect has not seen yet."""
        try:
            result = await self._in_chat(channel, channel_user_id, inbound, receipt, first)
        except ConversationExistsError:  # another worker opened it a moment ago: join it
            result = await self._in_chat(channel, channel_user_id, inbound, receipt, first)
        assert result is not None  # with `first`, a chat without a conversation gets one
        return result

    async def _in_chat(
        self,
        channel: str,
        channel_user_id: str,
        inbound: Inbound,
        receipt: Receipt | None,
        first: FirstMessage | None,
    ) -> TurnResult | None:
        inbound = _storable(inbound)
        now = self._clock()

        def work(tx: Transaction) -> TurnResult | None:
            conversation = tx.conversations.lock_latest_in_chat(channel, channel_user_id)
            if conversation is None and first is None:
                return None
            if receipt is not None and not tx.receipts.add(receipt, now):
                return TurnResult(
                    conversation.id if conversation else 0, False, None, channel=channel
                )
            if conversation is not None:
                return self._turn(tx, conversation, inbound, now)
            assert first is not None
            lead_id = first.lead_for(tx, now)
            opening = _Opening(
                lead_id, channel, channel_user_id, first.language, None, None, said=first.said
            )
            return self._open_in(tx, opening, now)

        result = await self._storage.run(work)
        if result is not None:
            self._turn_committed(result)
        return result

    def _turn(
        self,
        tx: Transaction,
        conversation: Conversation,
        inbound: Inbound,
        now: datetime,
        script: CompiledScript | None = None,  # the conversation's, when the caller has it
    ) -> TurnResult:
        if script is None:
            script = self._catalog.version(
                conversation.script_id, conversation.script_version, tx.scripts
            )
        transition = self._stepped(tx, conversation, script, inbound, now)
        self._save_turn(tx, conversation, transition, inbound, now)
        return TurnResult(
            conversation.id, True, transition.state, transition.effects, conversation.channel
        )

    def _turn_committed(self, result: TurnResult) -> None:
        if result.applied:
            self._on_commit()
            self._on_turn(result.channel)
            self._on_change(result.conversation_id, result.effects)

    def _stepped(
        self,
        tx: Transaction,
        conversation: Conversation,
        script: CompiledScript,
        inbound: Inbound,
        now: datetime,
    ) -> Transition:
        """One step with the seats taken in the script's calendars, its bookings made."""
        seen = booking.availability(tx, script, now)
        return booking.settle(
            tx,
            conversation,
            step(script, conversation.state, inbound, now, availability=seen),
            lambda full: step(script, conversation.state, inbound, now, availability=full),
            seen=seen,
            now=now,
            link=self._links,
        )

    async def move_appointment(
        self, appointment_id: int, *, location: str, starts_at: datetime, rep: desk.Rep
    ) -> TurnResult:
        """A rep moves a booking to another slot (a seat there is taken first, the old one
        freed); the prospect is told on their channel. Raises booking.AppointmentError
        (unknown, not a slot, full), having changed nothing."""
        return await self._change_appointment(
            appointment_id, AppointmentMoved(location, starts_at, rep.name), rep
        )

    async def cancel_appointment(self, appointment_id: int, *, rep: desk.Rep) -> TurnResult:
        """A rep cancels a booking; the prospect is told on their channel."""
        return await self._change_appointment(appointment_id, AppointmentCancelled(rep.name), rep)

    async def _change_appointment(
        self, appointment_id: int, inbound: AppointmentMoved | AppointmentCancelled, rep: desk.Rep
    ) -> TurnResult:
        found = await self._storage.run(lambda tx: booking.booked(tx, appointment_id))
        conversation_id = found.conversation_id
        assert conversation_id is not None

        def work(tx: Transaction) -> TurnResult:
            appointment = booking.booked(tx, appointment_id)  # again, under the lock
            conversation = tx.conversations.lock(conversation_id)
            if conversation is None or appointment.conversation_id != conversation_id:
                raise booking.UnknownAppointmentError(f"no booked appointment {appointment_id}")
            script = self._catalog.version(
                conversation.script_id, conversation.script_version, tx.scripts
            )
            if isinstance(inbound, AppointmentMoved):
                booking.checked_move(
                    tx,
                    script,
                    appointment,
                    location=inbound.location,
                    starts_at=inbound.starts_at,
                    now=now,
                )
                action, detail = (
                    "appointment_moved",
                    f"{appointment.id} -> {inbound.location} {inbound.starts_at.isoformat()}",
                )
            else:
                action, detail = "appointment_cancelled", str(appointment.id)
            result = self._turn(tx, conversation, inbound, now, script)
            tx.audit.add(
                conversation_id=conversation.id,
                lead_id=conversation.lead_id,
                rep_id=rep.id,
                actor=rep.actor,
                action=action,
                detail=detail,
                now=now,
            )
            return result

        async with self._locks.hold(conversation_id):
            now = self._clock()
            result = await self._storage.run(work)
        self._on_commit()
        self._on_change(result.conversation_id, result.effects)
        return result

    def _save_turn(
        self,
        tx: Transaction,
        conversation: Conversation,
        transition: Transition,
        inbound: Inbound | None,
        now: datetime,
        *,
        started: bool = False,
    ) -> None:
        _save_turn(tx, conversation, transition, inbound, now, started=started)
        if self._watchers:
            saved = SavedTurn(
                conversation, transition.state, transition.effects, inbound, now, started
            )
            for watcher in self._watchers:
                watcher.turn_saved(tx, saved)


def _save_turn(
    tx: Transaction,
    conversation: Conversation,
    transition: Transition,
    inbound: Inbound | None,
    now: datetime,
    *,
    started: bool = False,
) -> None:
    written = _transcript_line(inbound, transition.effects)
    if isinstance(inbound, OptionPicked) and not transition.effects:
        written = None  # a tap on an old button: the engine ignored it, so does the transcript
    if written is not None:
        author, text = written
        tx.transcript.add(
            conversation_id=conversation.id, author=author, text=text, status="received", now=now
        )
    answers: dict[str, Any] = {}
    consent: tuple[str, datetime] | None = None
    outcome = None
    address = address_of(conversation.channel, conversation.channel_user_id)
    opting_out = any(isinstance(effect, OptOut) for effect in transition.effects)
    for effect in transition.effects:
        match effect:
            case SendText() if opting_out and conversation.channel == "sms":
                # Twilio confirms an SMS opt-out itself, and refuses our sends from now on.
                tx.transcript.add(
                    conversation_id=conversation.id,
                    author="bot",
                    text=effect.text,
                    status="skipped",
                    now=now,
                )
            case SendText():
                _queue_text(
                    tx, conversation, effect, now, transition.state.language, notice=opting_out
                )
            case OptOut(keyword=keyword):
                tx.suppressions.add(address, conversation.channel, f"said {keyword!r}", now)
            case OptIn():
                tx.suppressions.remove(address)
            case RecordAnswer(question_id=question, value=value):
                answers[question] = value
            case RecordConsent(text=text, granted=True):
                consent = (text, now)
            case Complete():
                outcome = (effect.outcome, effect.score, effect.reasons, effect.qualified)
            case Closed():
                outcome = (effect.outcome, effect.score, effect.reasons, None)
            case HandOff(reason=reason):
                # On the record whether or not a rep comes: the console shows it, the funnel
                # counts it.
                tx.audit.add(
                    conversation_id=conversation.id,
                    lead_id=conversation.lead_id,
                    rep_id=None,
                    actor="bot",
                    action=HANDOFF_REQUESTED,
                    detail=reason[:200],
                    now=now,
                )
            case ScheduleTimer():
                tx.timers.schedule(conversation.id, effect.kind, effect.seq, effect.at)
            case CancelTimers():
                tx.timers.cancel_all(conversation.id)
            case MarkAbandoned(question_id=question):
                tx.conversations.mark_abandoned(conversation.id, question, now)
    if answers or consent or outcome or started:
        tx.leads.update_progress(
            conversation.lead_id,
            answers=answers,
            now=now,
            consent=consent,
            outcome=outcome,
            started=started,
        )
    # A conversation starts when the prospect arrives (a message, a deep link, the web chat):
    # that opens the channel's messaging window as much as any message does.
    tx.conversations.save(
        conversation,
        transition.state,
        now=now,
        inbound=started or (written is not None and written[0] == "prospect"),
    )


def lead_named(tx: Transaction, text: str, signer: TokenSigner, now: datetime) -> int | None:
    """The lead a chat's first message names: by a signed token, or by a reference code typed
    anywhere in it."""
    signed = _signed_lead(text, signer, now)
    if signed is not None:
        return signed
    code = find_reference(text)
    return _lead_by_code(tx, code) if code is not None else None


def _lead_by_code(tx: Transaction, code: str) -> int | None:
    lead = tx.leads.by_reference(code)
    return lead.id if lead is not None else None


def _signed_lead(text: str, signer: TokenSigner, now: datetime) -> int | None:
    try:
        return signer.verify(text.strip(), now)
    except TokenError:
        return None


def _storable(inbound: Inbound) -> Inbound:
    """A typed text as the transcript can keep it (bot.textsafe.storable)."""
    if isinstance(inbound, TextReceived):
        return TextReceived(storable(inbound.text))
    return inbound


def _queue_text(
    tx: Transaction,
    conversation: Conversation,
    effect: SendText,
    now: datetime,
    language: str,
    *,
    notice: bool = False,
) -> None:
    options = [{"value": o.value, "label": o.label} for o in effect.options]
    message_id = tx.transcript.add(
        conversation_id=conversation.id,
        author="bot",
        text=effect.text,
        status="queued",
        now=now,
        options=options,
        question_id=effect.question_id,
    )
    tx.outbox.add(
        kind=SEND_TEXT,
        idempotency_key=f"message-{message_id}",
        payload={
            "channel": conversation.channel,
            "chat": conversation.channel_user_id,
            "text": effect.text,
            "options": options,
            "question_id": effect.question_id,
            "hint": effect.hint.value if effect.hint else None,
            "language": language,  # for the channel's own words, e.g. "share my number"
            "buttons_template": effect.buttons_template,
            # The confirmation of an opt-out is the one message that may go to the address it
            # just suppressed.
            "opt_out_notice": notice,
            # A reminder outside a channel's window is skipped, not held (bot/windows.py).
            "reminder": effect.reminder.value if effect.reminder else None,
        },
        due_at=now,
        now=now,
        conversation_id=conversation.id,
        message_id=message_id,
    )


def _queue_rep_text(
    tx: Transaction, conversation: Conversation, text: str, rep: desk.Rep, now: datetime
) -> None:
    """A rep's message: in the transcript as theirs, out through the prospect's channel with
    the same rules as the bot's (pacing, windows, the suppression list)."""
    message_id = tx.transcript.add(
        conversation_id=conversation.id, author="rep", text=text, status="queued", now=now
    )
    language = conversation.state.language if conversation.state else "en"
    tx.outbox.add(
        kind=SEND_TEXT,
        idempotency_key=f"message-{message_id}",
        payload={
            "channel": conversation.channel,
            "chat": conversation.channel_user_id,
            "text": text,
            "options": [],
            "question_id": None,
            "hint": None,
            "language": language,
            "buttons_template": None,
            "opt_out_notice": False,
            "rep": rep.name,
        },
        due_at=now,
        now=now,
        conversation_id=conversation.id,
        message_id=message_id,
    )


def _transcript_line(
    inbound: Inbound | None, effects: tuple[Effect, ...]
) -> tuple[str, str] | None:
    """How an inbound event reads in the transcript (author, text); timers leave no line."""
    match inbound:
        case TextReceived(text=text):
            return "prospect", text
        case OptionPicked(question_id=question, value=value):
            # A tap reads as the option's label, as if the prospect had typed it.
            for effect in effects:
                if isinstance(effect, RecordAnswer) and effect.question_id == question:
                    return "prospect", effect.display
            return "prospect", f"[tapped {value}]"
        case ContactShared(phone=phone):
            return "prospect", f"[shared contact {phone}]"
        case ReturnedFromRep():
            return "system", "handed back to the bot"
        case _:
            return None
