"""Settings in one place, read from ``PRACTICE_CIRCLE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from geo.district import DEFAULT_DISTRICT, default_cache_dir


class Settings(BaseSettings):
    """Service settings."""

    model_config = SettingsConfigDict(env_prefix="PRACTICE_CIRCLE_")

    district: str = DEFAULT_DISTRICT
    cache: Path = default_cache_dir()
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000

    @property
    def resolved_database_url(self) -> str:
        """The database URL; SQLite in the cache directory unless set."""
        return self.database_url or f"sqlite:///{self.cache / 'practice.db'}"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings."""
    return Settings()
