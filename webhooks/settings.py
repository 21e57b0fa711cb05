"""Settings: one object, from an optional YAML file and LEADBOT_<SECTION>__<KEY> variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError, field_validator
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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEADBOT_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    database_url: str = DEFAULT_URL

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
        key = ".".join(str(part) for part in item["loc"]) or "(settings)"
        variable = "LEADBOT_" + "__".join(str(part).upper() for part in item["loc"])
        lines.append(f"{key} ({variable}): {item['msg']}")
    return "invalid settings:\n  " + "\n  ".join(lines)
