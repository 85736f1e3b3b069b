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
    #: POST /auth/codes from one client address (each may send an SMS), on top of the above.
    rate_limit_signin: str = "5/10 minutes"
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
    #: Seconds one webhook POST may take.
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    #: Events one delivery pass claims (and posts one after another).
    webhook_batch: int = Field(default=20, ge=1, le=1000)
    #: Seconds before the first retry of a failed delivery, doubling with each failure up to
    #: ``webhook_backoff_max_s``.
    webhook_backoff_s: float = Field(default=5.0, gt=0, le=3600)
    webhook_backoff_max_s: float = Field(default=3600.0, gt=0, le=86_400)
    #: Attempts before an event is given up (``failed_at`` set; ``notify retry-failed`` revives).
    webhook_max_attempts: int = Field(default=12, ge=1, le=1000)
    #: Days a delivered event stays in the outbox (sign-in codes are deleted once delivered).
    outbox_keep_days: float = Field(default=7.0, ge=0, le=3650)
    # Phone sign-in by one-time code (api/services/signin.py).
    #: Minutes a sign-in code works.
    signin_code_minutes: float = Field(default=5.0, gt=0, le=60)
    #: Seconds before another code may be sent to the same phone (429 code_too_soon).
    signin_resend_s: float = Field(default=60.0, ge=0, le=3600)
    #: Wrong codes allowed per code before it stops working.
    signin_max_tries: int = Field(default=5, ge=1, le=20)
    #: Wrong codes allowed per phone in any 24 hours, whatever the codes; then the number is
    #: locked (429 signin_locked) until the oldest of them is 24 hours old.
    signin_max_wrong_per_day: int = Field(default=10, ge=1, le=1000)
    #: Codes sent per phone in any 24 hours (429 code_quota beyond).
    signin_codes_per_day: int = Field(default=10, ge=1, le=1000)
    #: Without a webhook, write codes to the server log (local use only; ``make run`` sets it).
    #: Off and no webhook: POST /auth/codes answers 503 sms_unavailable.
    signin_log_codes: bool = False
    # The dispatcher's workbench (api/services/desk_queue.py, escalation.py, duplicates.py).
    #: Minutes an order may wait (submitted or dispatched) at one level before it is escalated
    #: to the level above, per category code; ``"*"`` for the rest. JSON in the environment
    #: (``PRACTICE_CIRCLE_SLA_MINUTES='{"*": 120, "assistance": 60}'``). The defaults are
    #: planning defaults of this project, not a published standard.
    sla_minutes: dict[str, float] = Field(
        default_factory=lambda: {"*": 120.0, "assistance": 60.0, "elderly": 60.0})
    #: Seconds between escalation passes in the server (0: no escalation thread).
    escalation_poll_s: float = Field(default=60.0, ge=0, le=86_400)
    #: Two open orders of one category are flagged as possible duplicates when created within
    #: this many hours of each other and this many metres apart by walking on the network.
    duplicate_window_hours: float = Field(default=24.0, gt=0, le=24 * 30)
    duplicate_walk_m: float = Field(default=300.0, gt=0, le=5000)
    # Evidence photos (api/services/evidence.py).
    #: Largest photo upload in bytes (413 photo_too_large beyond it, counted as it streams in).
    photo_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1, le=50 * 1024 * 1024)
    #: Largest photo in pixels (width x height), read from its header before it is decoded: a
    #: small file can unpack into a huge image (a decompression bomb).
    photo_max_pixels: int = Field(default=50_000_000, ge=1, le=178_956_970)
    #: Longest side of a stored photo; larger ones are scaled down when re-encoded.
    photo_max_edge_px: int = Field(default=2560, ge=64, le=16384)
    #: Photos one request may carry (409 too_many_photos beyond).
    photos_per_request: int = Field(default=9, ge=1, le=100)
    #: Where photos are kept, by content hash. Empty: ``<cache>/evidence``.
    evidence_dir: str = ""

    @field_validator("sla_minutes")
    @classmethod
    def _sla(cls, value: dict[str, float]) -> dict[str, float]:
        from geo.categories import CATEGORIES

        known = {"*", *(str(c.code) for c in CATEGORIES)}
        unknown = sorted(set(value) - known)
        if unknown:
            msg = f"sla_minutes: unknown categories {unknown}; use '*' or {sorted(known - {'*'})}"
            raise ValueError(msg)
        if any(not 0 < v <= 30 * 24 * 60 for v in value.values()):
            msg = "sla_minutes: every value must be more than 0 and at most 30 days of minutes"
            raise ValueError(msg)
        return {"*": 120.0, **value}

    @field_validator("rate_limit_reads", "rate_limit_writes", "rate_limit_writes_per_address",
                     "rate_limit_signin")
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

    @property
    def resolved_evidence_dir(self) -> Path:
        """The directory of evidence photos; ``<cache>/evidence`` unless set."""
        return Path(self.evidence_dir) if self.evidence_dir else self.cache / "evidence"


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings."""
    return Settings()
