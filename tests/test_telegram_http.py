"""PTB's networking on aiohttp: the same form fields and files PTB's own backend posts, and the
same errors when the Bot API is slow or unreachable."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import NetworkError, TimedOut

from webhooks.channels.telegram_http import AiohttpRequest

TOKEN = "123456:TEST-token"
ME = {"id": 123456, "is_bot": True, "first_name": "Test", "username": "test_bot"}


class Recorder:
    """A Bot API that keeps each call's content type and fields, and can answer late."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.delay = 0.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.delay)
        method = request.match_info["method"]
        fields: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                fields[name] = (value.filename, value.file.read())
            else:
                fields[name] = value
        self.calls.append((method, request.content_type, fields))
        if method == "getMe":
            return web.json_response({"ok": True, "result": ME})
        message = {
            "message_id": 7,
            "date": 0,
            "chat": {"id": int(fields["chat_id"]), "type": "private"},
        }
        return web.json_response({"ok": True, "result": message})


def bot_at(url: str, timeout: float = 2.0) -> Bot:
    return Bot(TOKEN, base_url=f"{url}/bot", request=AiohttpRequest(timeout=timeout))


async def test_a_message_goes_as_the_form_ptb_builds(aiohttp_server: AiohttpServer) -> None:
    recorder = Recorder()
    server = await aiohttp_server(recorder.app())
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    async with bot_at(str(server.make_url("")).rstrip("/")) as bot:
        sent = await bot.send_message(chat_id=42, text="Ready? ✅", reply_markup=markup)
    assert sent.message_id == 7
    method, content_type, fields = recorder.calls[-1]
    assert (method, content_type) == ("sendMessage", "application/x-www-form-urlencoded")
    assert fields["chat_id"] == "42"
    assert fields["text"] == "Ready? ✅"
    assert json.loads(fields["reply_markup"]) == {
        "inline_keyboard": [[{"text": "Yes", "callback_data": "yes"}]]
    }


async def test_a_file_goes_as_multipart_beside_its_fields(aiohttp_server: AiohttpServer) -> None:
    recorder = Recorder()
    server = await aiohttp_server(recorder.app())
    async with bot_at(str(server.make_url("")).rstrip("/")) as bot:
        await bot.send_document(chat_id=42, document=b"lead,score\n1,40\n", filename="leads.csv")
    method, content_type, fields = recorder.calls[-1]
    assert (method, content_type) == ("sendDocument", "multipart/form-data")
    assert fields["chat_id"] == "42"
    name, content = next(value for value in fields.values() if isinstance(value, tuple))
    assert (name, content) == ("leads.csv", b"lead,score\n1,40\n")


async def test_an_answer_later_than_the_timeout_is_timed_out(aiohttp_server: AiohttpServer) -> None:
    recorder = Recorder()
    server = await aiohttp_server(recorder.app())
    async with bot_at(str(server.make_url("")).rstrip("/"), timeout=0.2) as bot:
        recorder.delay = 1.0
        with pytest.raises(TimedOut):
            await bot.send_message(chat_id=42, text="hello")


async def test_an_unreachable_api_is_a_network_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    request = AiohttpRequest(timeout=2.0)
    await request.initialize()
    bot = Bot(TOKEN, base_url=f"http://127.0.0.1:{port}/bot", request=request)
    try:
        with pytest.raises(NetworkError, match=r"aiohttp\.ClientConnectorError") as raised:
            await bot.get_me()
        assert not isinstance(raised.value, TimedOut)
    finally:
        await request.shutdown()


async def test_a_request_used_before_initialize_says_so() -> None:
    with pytest.raises(RuntimeError, match="not initialized"):
        await AiohttpRequest(timeout=1.0).do_request("http://127.0.0.1:1/x", "POST")
