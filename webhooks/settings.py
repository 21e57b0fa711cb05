"""Settings: one object, from an optional YAML file and LEADBOT_<SECTION>__<KEY> variables."""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)
from pydantic_settings import (
    SettingsError as SourceError,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.crm_records import EVENTS
from bot.spec import Duration
from storage.db import DEFAULT_URL, is_sqlite

# What a database URL may name, and the async driver leadbot uses for each.
DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


class SettingsError(Exception):
    """Settings that cannot be used; the message names each key and what is wrong."""


def _not_empty(value: SecretStr) -> SecretStr:
    # An empty secret would let anyone through (or fail every request): refuse it at start.
    if not value.get_secret_value().strip():
        raise ValueError("must not be empty (leave the key out to turn this off)")
    return value


Secret = Annotated[SecretStr, AfterValidator(_not_empty)]
CrmEvent = Literal[EVENTS]  # type: ignore[valid-type]
# Ids in routes are text; YAML or JSON may well write them as numbers.
IdText = Annotated[
    str, BeforeValidator(lambda value: str(value) if isinstance(value, int) else value)
]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TikTokSettings(Section):
    """TikTok lead webhooks (POST /leads/tiktok) and TikTok Direct Messages (POST
    /webhooks/tiktok, sending through the Business Messaging API)."""

    app_secret: Secret | None = None  # signs lead and message webhooks: enables both routes
    api_url: AnyHttpUrl = AnyHttpUrl("https://business-api.tiktok.com")
    username: str | None = None  # the business account, for tiktok.me chooser links
    # Direct Messages: the app and the business account's OAuth tokens (see docs/channels.md).
    app_id: str | None = None
    business_id: str | None = None  # the account's open_id
    access_token: SecretStr | None = None  # with business_id: enables sending DMs
    refresh_token: SecretStr | None = None  # renews the access token when TikTok rejects it
    timeout: float = Field(default=10.0, gt=0, le=60, description="seconds for one API call")
    per_chat_seconds: float = Field(default=1.0, ge=0)
    per_second: float = Field(default=10.0, ge=0, description="0: no overall limit")

    @property
    def sends_messages(self) -> bool:
        return self.business_id is not None and self.access_token is not None


class GoogleSettings(Section):
    key: Secret | None = None  # the google_key of the lead form webhook: enables /leads/google


class RelaySettings(Section):
    """One sender of flat JSON leads on POST /leads (Zapier, LeadsBridge, Make, your API)."""

    api_keys: list[Secret] = Field(default_factory=list)
    hmac_secret: Secret | None = None
    mapping: dict[str, str] = Field(default_factory=dict)  # lead field -> the sender's key
    id_field: str = "id"
    script: str | None = None  # the script its leads get, unless a route says otherwise

    @model_validator(mode="after")
    def _authenticated(self) -> RelaySettings:
        if not self.api_keys and self.hmac_secret is None:
            raise ValueError(
                "a relay needs api_keys or hmac_secret: leads are never taken unsigned"
            )
        return self


class RouteSettings(Section):
    script: str
    source: str | None = None
    form_id: IdText | None = None
    campaign_id: IdText | None = None
    adgroup_id: IdText | None = None


class FormSettings(Section):
    enabled: bool = True
    per_minute: int = Field(default=10, ge=1, description="submissions per client address")
    # Sites allowed to show leadbot's pages in an iframe, e.g. ["https://www.example.com"].
    frame_ancestors: list[AnyHttpUrl] = Field(default_factory=list)
    # Addresses of your load balancers: behind them, the client is X-Forwarded-For's first.
    trusted_proxies: list[str] = Field(default_factory=list)


class WebChatSettings(Section):
    enabled: bool = True


def _telegram_token(value: SecretStr) -> SecretStr:
    # "<bot id>:<secret>" as BotFather gives it; the bot id scopes update ids (receipts).
    if not re.fullmatch(r"[0-9]+:[A-Za-z0-9_-]+", value.get_secret_value().strip()):
        raise ValueError("must be the token BotFather gave, like 123456789:AAE...")
    return SecretStr(value.get_secret_value().strip())


def _webhook_secret(value: SecretStr) -> SecretStr:
    # What Telegram accepts as setWebhook's secret_token.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
        raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
    return value


class TelegramSettings(Section):
    """Telegram: the token enables sending; with webhook_secret, POST /webhooks/telegram."""

    token: Annotated[SecretStr, AfterValidator(_telegram_token)] | None = None
    webhook_secret: Annotated[SecretStr, AfterValidator(_webhook_secret)] | None = None
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    bot_username: str | None = None  # for t.me links on the chooser
    timeout: float = Field(default=5.0, gt=0, le=60, description="seconds for one Bot API call")
    # Telegram's limits: about one message a second into a chat, thirty a second in all.
    per_chat_seconds: float = Field(default=1.0, ge=0)
    per_second: float = Field(default=30.0, ge=0, description="0: no overall limit")
    # The reps' group (a negative id): a card per handoff and qualified lead, taken over there
    # (webhooks/channels/telegram_reps.py); reps_topics: a forum topic per lead.
    reps_chat_id: int | None = Field(default=None, lt=0)
    reps_topics: bool = False

    @property
    def bot_id(self) -> str:
        """The number before ":" in the token: Telegram's update ids are counted per bot."""
        return self.token.get_secret_value().split(":", 1)[0] if self.token else ""


class TwilioSettings(Section):
    """Twilio SMS and WhatsApp: account_sid and auth_token enable POST /webhooks/twilio (and its
    status callback) and sending; each number enables its channel."""

    account_sid: str | None = Field(default=None, pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: Secret | None = None
    api_url: AnyHttpUrl = AnyHttpUrl("https://api.twilio.com")
    sms_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    whatsapp_number: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    # An approved WhatsApp template (content SID) sent instead of a message that falls outside
    # the 24-hour window; without one such a message is held, and reps see why.
    whatsapp_window_template: str | None = Field(default=None, pattern=r"^HX[0-9a-fA-F]{32}$")
    timeout: float = Field(default=10.0, gt=0, le=60, description="seconds for one API call")
    # A long code sends about one message a second; a chat gets at most one a second too.
    per_chat_seconds: float = Field(default=1.0, ge=0)
    per_second: float = Field(default=1.0, ge=0, description="0: no overall limit")

    @property
    def enabled(self) -> bool:
        return self.account_sid is not None and self.auth_token is not None


class QuietHours(Section):
    """Local times between which nobody is written to first: start after end wraps midnight."""

    start: time = time(21, 0)
    end: time = time(8, 0)


class FirstContactSettings(Section):
    """The bot writing first (speed to lead), for scripts that ask for it."""

    quiet_hours: QuietHours = QuietHours()
    # The lead's time zone comes from their phone number; this one serves when it cannot
    # (e.g. UK mobiles); unset, the script's own `timezone` does.
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use a name like Europe/Madrid"
            ) from None
        return value


class CrmWebhookSettings(Section):
    """One receiver of CRM events (docs/crm.md): signed with its secret, for the events named."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    url: AnyHttpUrl
    secret: Secret
    events: list[CrmEvent] = Field(min_length=1)


class CrmSettings(Section):
    """Outbound webhooks to CRMs, and how their deliveries are retried."""

    webhooks: list[CrmWebhookSettings] = Field(default_factory=list)
    timeout: float = Field(default=10.0, gt=0, le=60, description="seconds for one delivery")
    give_up_after: Duration = timedelta(hours=24)
    first_retry_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Hooks made through /api/v1/hooks must use https unless this is on (tests, intranets).
    allow_http_hooks: bool = False

    @field_validator("webhooks")
    @classmethod
    def _unique_names(cls, value: list[CrmWebhookSettings]) -> list[CrmWebhookSettings]:
        names = [hook.name for hook in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"webhook names must be unique: {', '.join(repeated)} repeats")
        return value


class PrivacySettings(Section):
    """How long leads are kept before they are erased (docs/privacy.md); unset: until someone
    erases them. Erasing by itself would surprise a business, so both rules are off unless set."""

    erase_disqualified_after: Duration | None = None  # from the disqualifying outcome
    erase_all_after: Duration | None = None  # from the lead's last change
    sweep_every: Duration = timedelta(hours=1)

    @field_validator("erase_disqualified_after", "erase_all_after", "sweep_every")
    @classmethod
    def _at_least_a_minute(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value < timedelta(minutes=1):
            raise ValueError("must be at least a minute (PT1M)")
        return value


class MessengerSettings(Section):
    page: str | None = None  # the page's username, for m.me links


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADBOT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database_url: str = DEFAULT_URL
    public_url: AnyHttpUrl = AnyHttpUrl("http://127.0.0.1:8080")
    secret_key: Secret | None = None  # signs lead tokens; embedded mode keeps one on disk
    token_lifetime: Duration = timedelta(days=30)
    # How long a prospect who asked for a person waits for a rep, unless the script says.
    handoff_timeout: Duration = timedelta(minutes=10)
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
    first_contact: FirstContactSettings = FirstContactSettings()
    privacy: PrivacySettings = PrivacySettings()
    crm: CrmSettings = CrmSettings()
    # The first retry of a failed send waits this long, then twice as long each time (tests
    # shrink it; undocumented on purpose: the default suits every provider).
    dispatcher_first_retry_seconds: float = Field(default=2.0, gt=0, le=3600)
    log_format: str = Field(default="json", pattern="^(json|text)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")

    @field_validator("relays", mode="before")
    @classmethod
    def _relay_names_in_lower_case(cls, value: object) -> object:
        # Environment variable names arrive in lower case; the file's "Zapier" is the same relay.
        if isinstance(value, dict):
            return {str(name).lower(): relay for name, relay in value.items()}
        return value

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
        if backend == "sqlite" and url.database in (None, "", ":memory:"):
            raise ValueError("an in-memory database would lose every lead at exit: name a file")
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
    except SourceError as error:  # e.g. a list or mapping in an environment variable
        raise SettingsError(
            f"{error}: lists and mappings in environment variables are JSON, "
            """e.g. LEADBOT_RELAYS__ZAPIER__API_KEYS='["key"]'"""
        ) from None


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"]]
        key = ".".join(parts) or "(settings)"
        variable = "LEADBOT_" + "__".join(part.upper() for part in parts)
        lines.append(f"{key} ({variable}): {item['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
