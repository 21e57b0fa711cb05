"""Settings: one object, from an optional YAML file and LEADBOT_<SECTION>__<KEY> variables."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from storage.db import DEFAULT_URL, is_sqlite

# What a database URL may name, and the async driver leadbot uses for each.
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class SettingsError(Exception):
    """Settings that cannot be used; the message names each key and what is wrong."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TikTokSettings(Section):
    """TikTok lead webhooks (POST /leads/tiktok) and, later, TikTok Direct Messages."""

    app_secret: SecretStr | None = None  # signs lead webhooks: enables /leads/tiktok
    api_url: AnyHttpUrl = AnyHttpUrl("https://business-api.tiktok.com")
    username: str | None = None  # the business account, for tiktok.me chooser links


class GoogleSettings(Section):
    key: SecretStr | None = None  # the google_key of the lead form webhook: enables /leads/google


class RelaySettings(Section):
    """One sender of flat JSON leads on POST /leads (Zapier, LeadsBridge, Make, your API)."""

    api_keys: list[SecretStr] = Field(default_factory=list)
    hmac_secret: SecretStr | None = None
    mapping: dict[str, str] = Field(default_factory=dict)  # lead field -> the sender's key
    id_field: str = "id"
    script: str | None = None  # the script its leads get, unless a route says otherwise


class RouteSettings(Section):
    script: str
    source: str | None = None
    form_id: str | None = None
    campaign_id: str | None = None
    adgroup_id: str | None = None


class FormSettings(Section):
    enabled: bool = True
    per_minute: int = Field(default=10, ge=1, description="submissions per client address")


class WebChatSettings(Section):
    enabled: bool = True


class TelegramSettings(Section):
    token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    bot_username: str | None = None  # for t.me links on the chooser


class TwilioSettings(Section):
    account_sid: str | None = None
    auth_token: SecretStr | None = None
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    sms_number: str | None = None  # E.164, for sms: links
    whatsapp_number: str | None = None  # E.164, for wa.me links


class MessengerSettings(Section):
    page: str | None = None  # the page's username, for m.me links


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADBOT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database_url: str = DEFAULT_URL
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    secret_key: SecretStr | None = None  # signs lead tokens; embedded mode keeps one on disk
    token_lifetime: timedelta = timedelta(days=30)
    scripts: list[Path] = Field(default_factory=list)  # files or folders; empty: the examples
    default_script: str | None = None  # empty: the first script
    routes: list[RouteSettings] = Field(default_factory=list)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # a TikTok batch fits
    tiktok: TikTokSettings = TikTokSettings()
    google: GoogleSettings = GoogleSettings()
    relays: dict[str, RelaySettings] = Field(default_factory=dict)
    form: FormSettings = FormSettings()
    web_chat: WebChatSettings = WebChatSettings()
    telegram: TelegramSettings = TelegramSettings()
    twilio: TwilioSettings = TwilioSettings()
    messenger: MessengerSettings = MessengerSettings()
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError(
                "not a database URL; use sqlite+aiosqlite:///FILE or "
                "postgresql+asyncpg://USER@HOST:PORT/DB"
            ) from None
        backend = url.get_backend_name()
        if backend not in DRIVERS:
            raise ValueError(f"unsupported database {backend!r}: use SQLite or PostgreSQL")
        # "postgresql://..." and "sqlite:///..." are fine: leadbot picks the async driver.
        return url.set(drivername=DRIVERS[backend]).render_as_string(hide_password=False)

    @property
    def embedded(self) -> bool:
        """SQLite on this box: the schema upgrades itself at start."""
        return is_sqlite(self.database_url)

    @property
    def base_url(self) -> str:
        return str(self.public_url).rstrip("/")


def load_settings(config_file: Path | None = None) -> Settings:
    """Environment variables win over the file; the file wins over defaults."""

    class FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if config_file is not None:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
            return tuple(sources)

    if config_file is not None and not config_file.is_file():
        raise SettingsError(f"config file {config_file} does not exist")
    try:
        return FromFile()
    except ValidationError as error:
        raise SettingsError(_describe(error)) from None


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"]]
        key = ".".join(parts) or "(settings)"
        variable = "LEADBOT_" + "__".join(part.upper() for part in parts)
        lines.append(f"{key} ({variable}): {item['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
