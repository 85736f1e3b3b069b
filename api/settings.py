"""Settings in one place, read from ``PRACTICE_CIRCLE_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.workload import default_slots
from geo.district import DEFAULT_DISTRICT, default_cache_dir


class Settings(BaseSettings):
    """Service settings."""

    model_config = SettingsConfigDict(env_prefix="PRACTICE_CIRCLE_")

    district: str = DEFAULT_DISTRICT
    #: Further districts to serve beside ``district`` (comma-separated, each already built or
    #: bundled). Requests naming any other district get 404: a GET never builds one.
    districts: str = ""
    #: Expensive routes (planning analytics) computed at once, each in a worker process;
    #: beyond that 503 + Retry-After. Default: one fewer than the cores, at least one.
    expensive_slots: int = Field(default_factory=default_slots, ge=1, le=64)
    #: Seconds an expensive request may take before it is answered 503 (the work, bounded by
    #: the validated parameters, finishes in the background and is cached).
    work_budget_s: float = 30.0
    cache: Path = default_cache_dir()
    database_url: str = ""
    #: Overpass API interpreter that ``import-osm --overpass`` fetches a district's OSM data from.
    overpass_url: str = "https://overpass-api.de/api/interpreter"
    #: Seconds the Overpass server may spend on that query.
    overpass_timeout_s: float = Field(default=300.0, gt=0, le=3600)
    #: Dask scheduler that ``build --all`` and ``coverage --all`` send their districts to
    #: (``tcp://HOST:8786``). Empty: a LocalCluster of worker processes for each run.
    dask_scheduler: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    # Running in public (api/middleware.py). Limits are in `limits` notation: "60/minute",
    # "10/second;300/hour". Counters live in the process's memory (one per worker).
    #: Turn the rate limits off (benchmarks); body cap, headers and token expiry stay.
    rate_limit_enabled: bool = True
    #: GET/HEAD/OPTIONS from one client address (IPv6: its /64); /health* is not counted.
    rate_limit_reads: str = "1200/minute"
    #: POST/PUT/PATCH/DELETE per bearer token.
    rate_limit_writes: str = "60/minute"
    #: POST/PUT/PATCH/DELETE from one client address, whatever the token (or none).
    rate_limit_writes_per_address: str = "600/minute"
    #: Largest request body in bytes (413 payload_too_large beyond it; 0: no body allowed).
    max_body_bytes: int = 1_048_576
    #: Days a bearer token works after it was issued (`users rotate` issues a new one).
    token_ttl_days: float = 90.0
    #: Fernet key (urlsafe base64 of 32 bytes) encrypting volunteers' ID-card numbers. Empty:
    #: a key is made once in ``<cache>/id_card.key`` (owner-only); keep it, or the numbers are lost.
    id_card_key: str = ""
    #: Key signing the rotating check-in codes (HMAC). Empty: made once in ``<cache>/signing.key``.
    signing_key: str = ""
    #: Minutes a check-in code shows before the next replaces it (the previous one still works).
    checkin_code_minutes: float = Field(default=5.0, gt=0, le=60)
    #: Minutes before an activity starts and after it ends that check-in and check-out work.
    checkin_grace_minutes: float = Field(default=30.0, ge=0, le=240)
    #: Longest walk on the street network from the phone to the activity's position (minutes).
    checkin_walk_minutes: float = Field(default=5.0, gt=0, le=30)
    #: Points a volunteer earns per approved service hour (积分).
    points_per_hour: int = Field(default=10, ge=0, le=1000)
    #: Webhook that outbox events (order moves, waitlist promotions) are posted to. Empty:
    #: events are kept in the outbox and nothing is sent.
    webhook_url: str = ""
    #: Key signing each delivery (``X-Signature: sha256=<hex HMAC-SHA256 of the body>``).
    webhook_secret: str = ""
    #: Seconds between looks for due events when the outbox is idle.
    webhook_poll_s: float = Field(default=5.0, gt=0, le=3600)

    @field_validator("rate_limit_reads", "rate_limit_writes", "rate_limit_writes_per_address")
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        parse_many(value)  # ValueError on anything that is not a limit
        return value

    @property
    def served_districts(self) -> list[str]:
        """The served districts: ``district`` first, then ``districts``, without repeats."""
        names = [self.district, *(n.strip() for n in self.districts.split(","))]
        return list(dict.fromkeys(n for n in names if n))

    @property
    def resolved_database_url(self) -> str:
        """The database URL; SQLite in the cache directory unless set."""
        return self.database_url or f"sqlite:///{self.cache / 'practice.db'}"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings."""
    return Settings()
