"""The peer of `bench.telegram`: the same solar-quote bot as most Python developers would build
it, with python-telegram-bot's `ConversationHandler` and `PicklePersistence`, behind a small
aiohttp webhook that answers 200 once `Application.process_update` has returned.

PicklePersistence is left at PTB's defaults (`update_interval=60`, `on_flush=False`,
`single_file=True`). Conversation states, `user_data` and `bot_data` live in the process's
memory; `Application.start()` runs a task that calls `update_persistence()` every 60 seconds,
and `stop()` calls it once more and then `flush()`. Only then does PicklePersistence rewrite
the whole pickle file (once per changed key, since `on_flush=False`), with `open("wb")` and
no fsync. A turn is therefore never on disk when its reply goes out: a crash loses up to a
minute of conversations, and one during a rewrite leaves a truncated file.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove, Update
from telegram.ext import (
    Application,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    PicklePersistence,
    filters,
)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
PICKLE = "peer.pickle"
Context = ContextTypes.DEFAULT_TYPE
Handler = Callable[[Update, Context], Coroutine[Any, Any, int]]


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    words: tuple[str, ...]  # lower case; the label's words count too
    score: int = 0


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    kind: str  # "choice", "number" or "text"
    options: tuple[Option, ...] = ()
    retry: str = "Sorry, I didn't catch that."

    def parse(self, text: str) -> object | None:
        """The answer, or None to ask again."""
        folded = text.strip().lower()
        if self.kind == "choice":
            for option in self.options:
                if option.label.lower() in folded or any(w in folded for w in option.words):
                    return option.value
            return None
        if self.kind == "number":
            match = re.search(r"(\d+(?:[.,]\d+)?)\s*(k\b)?", folded)
            if match is None:
                return None
            number = float(match.group(1).replace(",", "."))
            return round(number * (1000 if match.group(2) else 1))
        return text.strip() or None

    def keyboard(self) -> ReplyKeyboardMarkup | ReplyKeyboardRemove:
        if not self.options:
            return ReplyKeyboardRemove()
        rows = [[option.label] for option in self.options]
        return ReplyKeyboardMarkup(rows, one_time_keyboard=True, resize_keyboard=True)


GREETING = (
    "Hi {name}! Thanks for asking about solar panels. "
    "A few quick questions and we'll prepare your quote."
)
QUESTIONS = (
    Question(
        "property",
        "What kind of property is it?",
        "choice",
        (
            Option("house", "Detached house", ("house", "detached", "villa"), 10),
            Option("semi", "Semi-detached or terraced", ("semi", "terraced", "townhouse"), 5),
            Option("flat", "Flat", ("flat", "apartment")),
            Option("business", "Business premises", ("office", "shop", "warehouse"), 10),
        ),
        "Please pick one of the options.",
    ),
    Question(
        "ownership",
        "Do you own the property?",
        "choice",
        (
            Option("own", "I own it", ("yes", "own", "mine"), 10),
            Option("rent", "I rent it", ("no", "rent", "tenant")),
        ),
        "Please pick one of the options.",
    ),
    Question(
        "bill",
        "Roughly how much is your monthly electricity bill, in euros?",
        "number",
        retry="Just a rough number is fine, like 120.",
    ),
    Question(
        "roof",
        "Which way does your roof face?",
        "choice",
        (
            Option("south", "South", ("south",), 10),
            Option("east_west", "East or west", ("east", "west"), 5),
            Option("flat_roof", "It's a flat roof", ("flat roof",), 5),
            Option("not_sure", "Not sure", ("don't know", "dunno")),
        ),
        "Please pick one of the options.",
    ),
    Question(
        "timeline",
        "When would you like the panels installed?",
        "choice",
        (
            Option("soon", "In the next 3 months", ("asap", "soon", "now"), 20),
            Option("year", "This year", ("this year", "months"), 10),
            Option("later", "Just looking", ("later", "looking", "browsing")),
        ),
        "Please pick one of the options.",
    ),
    Question("postcode", "What is the postcode of the property?", "text"),
    Question(
        "notes",
        "Anything else we should know? (shading, a battery, an EV charger...)",
        "text",
    ),
)
HOT = "Thanks {name}! Your answers look great for solar: an installer will call you within a day."
COLD = "Thanks {name}! We'll email you a first estimate for your quote."


def _score(answers: dict[str, object]) -> int:
    score = sum(
        option.score
        for question in QUESTIONS
        for option in question.options
        if answers.get(question.id) == option.value
    )
    bill = answers.get("bill")
    return score + (20 if isinstance(bill, int) and bill >= 100 else 0)


def _name(update: Update) -> str:
    user = update.effective_user
    return user.first_name if user is not None and user.first_name else "there"


async def start(update: Update, context: Context) -> int:
    assert update.message is not None
    assert context.user_data is not None
    context.user_data.clear()
    await update.message.reply_text(GREETING.format(name=_name(update)))
    first = QUESTIONS[0]
    await update.message.reply_text(first.prompt, reply_markup=first.keyboard())
    return 0


def answer(index: int) -> Handler:
    """The handler of state `index`: store the answer and ask the next question."""
    question = QUESTIONS[index]

    async def handle(update: Update, context: Context) -> int:
        assert update.message is not None
        assert context.user_data is not None
        value = question.parse(update.message.text or "")
        if value is None:
            await update.message.reply_text(question.retry, reply_markup=question.keyboard())
            return index
        context.user_data[question.id] = value
        if index + 1 < len(QUESTIONS):
            following = QUESTIONS[index + 1]
            await update.message.reply_text(following.prompt, reply_markup=following.keyboard())
            return index + 1
        answers = dict(context.user_data)
        score = _score(answers)
        context.bot_data.setdefault("leads", []).append({"answers": answers, "score": score})
        outcome = HOT if score >= 40 else COLD
        await update.message.reply_text(
            outcome.format(name=_name(update)), reply_markup=ReplyKeyboardRemove()
        )
        return ConversationHandler.END

    return handle


async def cancel(update: Update, context: Context) -> int:
    assert update.message is not None
    await update.message.reply_text("Okay, stopped.", reply_markup=ReplyKeyboardRemove())
    return ConversationHandler.END


def build_application(
    folder: Path, api_url: str, token: str
) -> Application[Any, Any, Any, Any, Any, Any]:
    persistence = PicklePersistence(filepath=folder / PICKLE)  # PTB's defaults, as documented
    application = (
        Application.builder()
        .token(token)
        .base_url(f"{api_url}/bot")
        .persistence(persistence)
        .updater(None)
        .build()
    )
    text = filters.TEXT & ~filters.COMMAND
    states: dict[object, list[Any]] = {
        index: [MessageHandler(text, answer(index))] for index in range(len(QUESTIONS))
    }
    application.add_handler(
        ConversationHandler(
            entry_points=[CommandHandler("start", start)],
            states=states,
            fallbacks=[CommandHandler("cancel", cancel)],
            name="solar_quote",
            persistent=True,
        )
    )
    return application


APPLICATION = web.AppKey("application", Application)


def peer_app(folder: Path, api_url: str, token: str, secret: str) -> web.Application:
    """The webhook: POST /webhook runs the update through PTB, then answers 200."""
    logging.basicConfig(
        filename=folder / "peer.log",
        format="%(asctime)s - %(name)s - %(levelname)s - %(message)s",
        level=logging.INFO,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # as PTB's examples do
    app = web.Application()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        application = build_application(folder, api_url, token)
        await application.initialize()
        await application.start()
        app[APPLICATION] = application
        yield
        await application.stop()  # update_persistence() and flush(): the pickle is written
        await application.shutdown()

    async def webhook(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret.encode()):
            return web.Response(status=403)
        application = request.app[APPLICATION]
        update = Update.de_json(await request.json(), application.bot)
        await application.process_update(update)
        return web.Response()

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/webhook", webhook)
    app.router.add_get("/healthz", health)
    return app
