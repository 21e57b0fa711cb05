"""docs/configuration.md stays true: its example file loads, and every setting is described."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from webhooks.settings import Settings, load_settings

DOC = (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()
# Settings whose keys are yours to name (relays by sender) or hidden on purpose (tests only).
FREE_FORM = {"relays", "routes", "dispatcher_first_retry_seconds"}


def setting_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        key = prefix + name
        if key in FREE_FORM:
            continue
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(setting_keys(annotation, key + "."))
        else:
            keys.append(key)
    return keys


def test_the_complete_example_file_loads(tmp_path: Path) -> None:
    section = DOC.split("## A complete example file", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert block is not None
    path = tmp_path / "leadbot.yaml"
    path.write_text(block.group(1))
    settings = load_settings(path)
    assert settings.twilio.enabled
    assert settings.tiktok.sends_messages
    assert settings.first_contact.timezone == "Europe/Madrid"


@pytest.mark.parametrize("key", setting_keys(Settings))
def test_every_setting_is_in_the_tables(key: str) -> None:
    variable = "LEADBOT_" + key.upper().replace(".", "__")
    assert f"`{key}`" in DOC, f"{key} is not described in docs/configuration.md"
    assert f"`{variable}`" in DOC, f"{variable} is not named in docs/configuration.md"
