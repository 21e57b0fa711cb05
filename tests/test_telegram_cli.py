"""`leadbot telegram set-webhook` and `leadbot telegram info`, against the fake Bot API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.fake_telegram import SECRET, TOKEN, USERNAME, Answer, FakeTelegram
from webhooks.cli import main


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeTelegram]:
    """The fake Bot API in a thread (the commands run their own event loop), and settings
    that point at it."""
    fake = FakeTelegram()
    with fake.serving_in_thread() as url:
        monkeypatch.setenv("LEADBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
        monkeypatch.setenv("LEADBOT_PUBLIC_URL", "https://leads.example.com/")
        monkeypatch.setenv("LEADBOT_TELEGRAM__TOKEN", TOKEN)
        monkeypatch.setenv("LEADBOT_TELEGRAM__WEBHOOK_SECRET", SECRET)
        monkeypatch.setenv("LEADBOT_TELEGRAM__API_URL", url)
        yield fake


def test_set_webhook_registers_the_route_with_the_secret(fake: FakeTelegram) -> None:
    result = CliRunner().invoke(main, ["telegram", "set-webhook"])
    assert result.exit_code == 0, result.output
    assert fake.webhook == {
        "url": "https://leads.example.com/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": ["message", "callback_query"],
        "drop_pending_updates": "false",
    }
    assert f"@{USERNAME}" in result.output
    assert "https://leads.example.com/webhooks/telegram" in result.output
    assert SECRET not in result.output
    assert TOKEN not in result.output


def test_set_webhook_reads_the_config_file(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("LEADBOT_PUBLIC_URL")
    config = tmp_path / "leadbot.yaml"
    config.write_text("public_url: https://bot.example.org\n")
    result = CliRunner().invoke(main, ["telegram", "set-webhook", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert fake.webhook["url"] == "https://bot.example.org/webhooks/telegram"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("LEADBOT_TELEGRAM__TOKEN", None, "LEADBOT_TELEGRAM__TOKEN"),
        ("LEADBOT_TELEGRAM__WEBHOOK_SECRET", None, "LEADBOT_TELEGRAM__WEBHOOK_SECRET"),
        ("LEADBOT_TELEGRAM__WEBHOOK_SECRET", "has spaces", "LEADBOT_TELEGRAM__WEBHOOK_SECRET"),
        ("LEADBOT_TELEGRAM__TOKEN", "not-a-token", "LEADBOT_TELEGRAM__TOKEN"),
        ("LEADBOT_PUBLIC_URL", "http://leads.example.com", "https://"),
    ],
)
def test_set_webhook_says_which_setting_is_missing_or_wrong(
    fake: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    value: str | None,
    says: str,
) -> None:
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(main, ["telegram", "set-webhook"])
    assert result.exit_code == 1
    assert says in result.output
    assert fake.calls_to("setWebhook") == []


def test_a_token_telegram_does_not_know_is_named_not_shown(fake: FakeTelegram) -> None:
    fake.plan("getMe", Answer(401, "Unauthorized"))
    result = CliRunner().invoke(main, ["telegram", "info"])
    assert result.exit_code == 1
    assert "LEADBOT_TELEGRAM__TOKEN" in result.output
    assert TOKEN not in result.output


def test_telegram_refusing_the_webhook_says_why(fake: FakeTelegram) -> None:
    fake.fail_next("setWebhook", 400, "Bad Request: bad webhook: Failed to resolve host")
    result = CliRunner().invoke(main, ["telegram", "set-webhook"])
    assert result.exit_code == 1
    assert "Bad webhook: failed to resolve host" in result.output


def test_info_shows_the_webhook_pending_updates_and_last_error(fake: FakeTelegram) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["telegram", "info"])
    assert result.exit_code == 0, result.output
    assert "webhook: none (run: leadbot telegram set-webhook)" in result.output

    assert runner.invoke(main, ["telegram", "set-webhook"]).exit_code == 0
    fake.pending_update_count = 3
    fake.last_error = (1_767_607_200, "Wrong response from the webhook: 502 Bad Gateway")
    result = runner.invoke(main, ["telegram", "info"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"bot: @{USERNAME}",
        "webhook: https://leads.example.com/webhooks/telegram",
        "pending updates: 3",
        "last error: 2026-01-05 10:00:00 UTC: Wrong response from the webhook: 502 Bad Gateway",
    ]


def test_info_notices_a_webhook_set_elsewhere(fake: FakeTelegram) -> None:
    fake.webhook = {"url": "https://old.example.com/hook"}
    result = CliRunner().invoke(main, ["telegram", "info"])
    assert "webhook: https://old.example.com/hook" in result.output
    assert "this server expects https://leads.example.com/webhooks/telegram" in result.output
