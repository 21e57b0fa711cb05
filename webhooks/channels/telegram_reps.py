"""The reps' Telegram group: a lead's card has a "Take over" button; in the lead's thread (its
forum topic, or replies to its card) the rep holding it writes to the prospect, on whatever
channel the prospect is on, and `/handback`, `/close <outcome>`, `/note <text>` and `/takeover`
act on it. Only Telegram users linked to an active rep (`leadbot rep link-telegram`) can act.

The Telegram webhook (telegram.py) hands every group update here. Answers to reps go out
through the outbox, like the cards; only button taps are answered at once (Telegram's spinner).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import web
from telegram import Bot, ReplyParameters, Update
from telegram.error import TelegramError

from bot import desk
from bot.dispatcher import Sender
from bot.errors import UnknownConversationError, UnknownScriptError
from bot.pacing import PaceRule
from bot.records import Receipt
from storage.rep_threads import SqlRepThreads
from webhooks.channels.telegram_bot import delivery_error
from webhooks.channels.telegram_reps_card import HELP, TAKE_OVER
from webhooks.channels.telegram_reps_inbound import GroupPost, GroupTap, read_group_update
from webhooks.channels.telegram_reps_notify import RepsNotifier
from webhooks.channels.telegram_reps_sender import RepsGroupSender
from webhooks.channels.telegram_reps_watch import REP_CARD, REP_NOTE
from webhooks.keys import (
    CATALOG,
    CONVERSATIONS,
    DATABASE,
    DISPATCHER,
    REPS_NOTIFIER,
    SETTINGS,
    TELEGRAM_BOT,
)
from webhooks.settings import TelegramSettings

log = logging.getLogger(__name__)

RECEIPTS = "telegram"  # the same receipts as the bot's private chats: update ids are per bot
COMMANDS = frozenset({"takeover", "handback", "close", "note"})
# Telegram takes about 20 messages a minute into one group: three times a private chat's gap.
GROUP_GAP = 3.0


def open_group(app: web.Application, clock: Callable[[], datetime]) -> dict[str, Sender]:
    """With a bot and telegram.reps_chat_id: the notifier on the app (REPS_NOTIFIER), and the
    outbox's senders for the group's rows (for the dispatcher, made next). Nothing without.
    What the group hears about leads is queued by a RepsWatcher on the conversation service."""
    settings = app[SETTINGS]
    bot = app.get(TELEGRAM_BOT)
    chat = settings.telegram.reps_chat_id
    if bot is None or chat is None:
        return {}

    def wake() -> None:  # queued rows are sent now rather than at the next poll
        app[DISPATCHER].wake()

    threads = SqlRepThreads(app[DATABASE])
    app[REPS_NOTIFIER] = RepsNotifier(threads, chat_id=chat, clock=clock, wake=wake)
    sender = RepsGroupSender(
        bot,
        threads,
        topics=settings.telegram.reps_topics,
        clock=clock,
        catalog=app[CATALOG],
        base_url=settings.base_url,
    )
    return {REP_CARD: sender, REP_NOTE: sender}


def pace_rule(settings: TelegramSettings) -> PaceRule:
    """The group's pace: from the bot's own settings (no pacing when they ask for none)."""
    return PaceRule(per_chat=GROUP_GAP * settings.per_chat_seconds, per_second=settings.per_second)


def _ok() -> web.Response:
    return web.json_response({"ok": True})


async def receive_group_update(request: web.Request, update: Update, chat: int) -> web.Response:
    """An update from a group (raises MalformedUpdateError for a broken one)."""
    app = request.app
    bot = app[TELEGRAM_BOT]
    incoming = read_group_update(update, _username(request))
    if incoming is None:
        return _ok()
    notifier = app.get(REPS_NOTIFIER)
    if notifier is None or chat != notifier.chat_id:
        # Not the reps' group (or none is set yet): only what helps to set one up.
        if isinstance(incoming, GroupTap):
            await _answer(bot, incoming.query_id)
        elif incoming.command in ("chatid", "whoami"):
            await _reply_now(bot, incoming)
        return _ok()
    receipt = Receipt(RECEIPTS, f"{app[SETTINGS].telegram.bot_id}:{update.update_id}")
    if await notifier.threads.seen(receipt.channel, receipt.provider_id):  # delivered again
        if isinstance(incoming, GroupTap):
            await _answer(bot, incoming.query_id)
        return _ok()
    key = f"rep-note-{notifier.chat_id}-{update.update_id}"
    if isinstance(incoming, GroupTap):
        text, refused = await _tap(request, notifier, incoming, receipt)
        await _answer(bot, incoming.query_id, text, alert=refused)
    else:
        await _post(request, notifier, incoming, key, receipt)
    # An action stored the receipt with itself (a repeat of it changes nothing); anything else
    # (a refusal, a help text) is remembered now.
    await notifier.threads.remember(receipt.channel, receipt.provider_id, datetime.now(UTC))
    return _ok()


async def _tap(
    request: web.Request, notifier: RepsNotifier, tap: GroupTap, receipt: Receipt
) -> tuple[str, bool]:
    """Take over from a card's button: what the rep is told, and whether it was refused."""
    threads = notifier.threads
    wanted = tap.data.removeprefix(TAKE_OVER) if tap.data.startswith(TAKE_OVER) else ""
    conversation = (
        await threads.conversation_of_card(tap.chat_id, tap.message_id)
        if tap.message_id is not None
        else None
    )
    # The button's data is the client's to send: the card it sits on says which lead it is.
    if conversation is None or wanted != str(conversation):
        return "This button no longer does anything.", True
    rep = await threads.linked_rep(tap.user_id)
    if rep is None:
        return (
            "Sorry, only reps linked to leadbot can take over leads. Ask an admin to link your "
            f"Telegram account (your id is {tap.user_id}).",
            True,
        )
    if await threads.holder(conversation) == rep.id:
        return "It's yours already: reply in this thread to write to the prospect.", False
    refused = await _act(request, conversation, _rep(rep.id, rep.name), desk.TakeOver(), receipt)
    if refused is not None:
        return refused, True
    return "It's yours: reply in this thread to write to the prospect.", False


async def _post(
    request: web.Request, notifier: RepsNotifier, post: GroupPost, key: str, receipt: Receipt
) -> None:
    """A message in the group: to the prospect, a command, or nothing for leadbot."""
    if post.command in ("chatid", "whoami"):
        await _reply_now(request.app[TELEGRAM_BOT], post)
        return
    threads = notifier.threads
    conversation = await threads.conversation_of(post.chat_id, post.answers, post.topic_id)

    async def reply(text: str) -> None:
        await notifier.note(
            key, text, conversation_id=conversation, reply_to=post.message_id, topic=post.topic_id
        )

    if conversation is None:  # the reps talking among themselves
        if post.command in COMMANDS or post.command == "help":
            await reply("Use this in a lead's thread: its topic, or a reply to its card.")
        return
    rep = await threads.linked_rep(post.user_id)
    if rep is None:
        await reply(
            "Sorry, only reps linked to leadbot can answer leads from here. An admin links you "
            "with: leadbot rep link-telegram --email <your email> "
            f"--telegram-user-id {post.user_id}"
        )
        return
    action: desk.Action
    match post.command:
        case None if post.text is None:
            await reply("Only text reaches the prospect from here.")
            return
        case None:
            action = desk.Write(post.text or "")
        case "takeover":
            action = desk.TakeOver()
        case "handback":
            action = desk.HandBack()
        case "close" if not post.argument:
            await reply("Say how it ended, e.g. /close won (or lost, no_answer...).")
            return
        case "close":
            action = desk.Close(post.argument)
        case "note":
            action = desk.Note(post.argument)
        case _:
            await reply(HELP)
            return
    # Done, the thread hears of it from the action itself (telegram_reps_watch); refused, the
    # rep is told why.
    refused = await _act(request, conversation, _rep(rep.id, rep.name), action, receipt)
    if refused is not None:
        await reply(refused)


def _rep(rep_id: int, name: str) -> desk.Rep:
    return desk.Rep(rep_id, name, via="telegram")


async def _act(
    request: web.Request, conversation: int, rep: desk.Rep, action: desk.Action, receipt: Receipt
) -> str | None:
    """Do it, once for this update; None when done, else why not, in the rep's words."""
    try:
        await request.app[CONVERSATIONS].act(conversation, rep, action, receipt)
    except desk.HeldByAnotherError as error:
        return f"{error.holder} is handling this lead."
    except desk.NotHoldingError:
        return (
            "Take this lead over first (✋ Take over on its card, or /takeover); then your "
            "replies here go to the prospect."
        )
    except desk.ActionRefusedError as error:
        return f"Not done: {error}."
    except (UnknownConversationError, UnknownScriptError):
        return "This lead is no longer there."
    return None


def _username(request: web.Request) -> str | None:
    """The bot's username, to tell our commands from other bots' ("/close@our_bot")."""
    try:
        return request.app[TELEGRAM_BOT].username
    except RuntimeError:  # Telegram was unreachable at start: getMe has not answered yet
        return request.app[SETTINGS].telegram.bot_username


async def _answer(bot: Bot, query_id: str, text: str | None = None, *, alert: bool = False) -> None:
    """Every tap is answered, or the rep's app spins; a refusal shows as an alert."""
    try:
        await bot.answer_callback_query(query_id, text=text, show_alert=alert)
    except TelegramError as error:
        log.warning("could not answer a tap in the reps' group: %s", delivery_error(error).reason)


async def _reply_now(bot: Bot, post: GroupPost) -> None:
    """/chatid and /whoami, for setting the group up: answered at once, not through the outbox
    (there may be no reps' group to send to yet)."""
    if post.command == "chatid":
        text = f"This group's chat id is {post.chat_id}: set telegram.reps_chat_id to it."
    else:
        text = (
            f"Your Telegram user id is {post.user_id}. An admin links it to your leadbot "
            f"login with: leadbot rep link-telegram --email <your email> "
            f"--telegram-user-id {post.user_id}"
        )
    try:
        await bot.send_message(
            chat_id=post.chat_id,
            text=text,
            message_thread_id=post.topic_id,
            reply_parameters=ReplyParameters(post.message_id, allow_sending_without_reply=True),
        )
    except TelegramError as error:
        log.warning(
            "could not answer /%s in a group: %s", post.command, delivery_error(error).reason
        )
