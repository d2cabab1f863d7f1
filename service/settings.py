"""Service settings: the one place that reads the environment (prefix ``MIRRORLINE_``)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_data_dir() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "mirrorline"


class Settings(BaseSettings):
    """Every knob of the HTTP service. Analysis defaults live in the request schema instead."""

    model_config = SettingsConfigDict(env_prefix="MIRRORLINE_", extra="ignore", frozen=True)

    host: str = Field(
        default="127.0.0.1", description="Interface to listen on (0.0.0.0 in Docker)."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Log level of the JSON log lines on stderr."
    )
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the job database and not-yet-analysed uploads live.",
    )
    max_upload_mb: float = Field(
        default=500.0, gt=0, description="Largest accepted upload, MB (10^6 B)."
    )
    max_duration_s: float = Field(
        default=14400.0, gt=0, description="Longest accepted recording, s."
    )
    sync_max_duration_s: float = Field(
        default=600.0,
        gt=0,
        description="Longest recording POST /v1/analyze takes; longer: use jobs.",
    )
    api_keys: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), description="Comma-separated API keys; empty: no authentication."
    )
    webhook_secret: str | None = Field(
        default=None,
        description="Standard Webhooks signing secret, 'whsec_' + base64 of a key of at "
        "least 16 bytes (other forms are refused at start-up).",
    )
    webhook_max_attempts: int = Field(
        default=6, ge=1, le=20, description="Deliveries tried per event."
    )
    webhook_backoff_s: float = Field(
        default=2.0, gt=0, description="First retry delay, s; doubled after each failed attempt."
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Timeout of one delivery, s.")
    webhook_allow_private: bool = Field(
        default=False,
        description="Allow callback URLs on loopback, private, link-local or reserved "
        "addresses (off: callers cannot make the server reach its own network).",
    )
    result_ttl_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        description="Results (and kept audio) are deleted this long after the job finished, s.",
    )
    sweep_interval_s: float = Field(
        default=60.0, gt=0, description="How often expired jobs are swept, s."
    )
    workers: int = Field(
        default=2, ge=1, le=64, description="Analyses run at the same time (processes)."
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=2,
        description="Threads per analysis for the per-channel stage (default: 2 on 2+ cores); "
        "1 when WORKERS processes already keep every core busy.",
    )
    max_queue: int = Field(
        default=32,
        ge=0,
        description="Jobs (and waiting sync requests) queued before 503 server.busy.",
    )
    retry_after_s: int = Field(
        default=10, ge=1, description="Retry-After sent with 503 server.busy, s."
    )
    max_job_attempts: int = Field(
        default=2,
        ge=1,
        description="A job interrupted by a crash/kill is re-run at most this many times.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base URL of Location, job and webhook result URLs (unset: URLs are "
        "relative, '/v1/analyses/...'; the request's Host header is never used).",
    )
    upload_idle_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="An upload that sends nothing for this long is refused (408), s.",
    )
    upload_min_bytes_per_s: float = Field(
        default=4096.0,
        ge=0,
        description="After UPLOAD_IDLE_TIMEOUT_S, an upload slower than this on average is "
        "refused (408), bytes/s; 0: no minimum.",
    )

    # -- multi-node mode (docs/deploy.md) --------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="postgresql://user:password@host:port/db: jobs, results, idempotency "
        "keys, job audio and the task queue live in PostgreSQL, shared by any number of "
        "`mirrorline serve` API nodes and `mirrorline worker` nodes. Unset: the embedded "
        "mode (SQLite in DATA_DIR, the analyses in this server's own processes).",
    )
    worker_heartbeat_s: float = Field(
        default=5.0, gt=0, description="How often a worker node says it is alive, s."
    )
    worker_stalled_s: float = Field(
        default=30.0,
        gt=0,
        description="A worker silent this long is presumed dead and its jobs run again "
        "elsewhere, s (at least 3x WORKER_HEARTBEAT_S).",
    )

    # -- live streams (docs/live.md) ------------------------------------------------
    stream_agent_track: Literal["inbound", "outbound"] = Field(
        default="outbound",
        description="Twilio/Telnyx track that carries the agent (a stream's customParameters "
        "agent_track overrides it): outbound is what the platform plays to the caller.",
    )
    stream_max_concurrent: int = Field(
        default=100, ge=1, description="Live streams at once; more are refused (close 4503)."
    )
    stream_jitter_ms: float = Field(
        default=1000.0,
        ge=0,
        le=10000,
        description="Reordering window: audio is released this far behind the furthest "
        "frame received, ms; a frame later than that is dropped.",
    )
    stream_max_gap_s: float = Field(
        default=60.0,
        gt=0,
        description="A frame starting more than this past the audio released so far is "
        "refused (a broken timestamp), s.",
    )
    stream_idle_timeout_s: float = Field(
        default=30.0, gt=0, description="A stream that sends nothing for this long ends, s."
    )
    stream_keep_s: float = Field(
        default=3600.0,
        gt=0,
        description="An ended stream's record (GET /v1/streams/{id}) is kept this long, s; "
        "its analysis stays for RESULT_TTL_S.",
    )
    live_workers: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Processes computing live events, a batch of streams each at a time.",
    )
    live_mirroring_s: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="Live events carry the mirroring of the call so far, measured again "
        "every this many seconds of finished minutes (0: off).",
    )
    analysis_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="Niceness of the analysis processes: on a busy machine the server and "
        "live events go first, analyses take the rest (0: the server's priority).",
    )
    live_interval_s: float = Field(
        default=1.0, ge=0.2, le=60, description="Seconds of audio between two live events."
    )
    live_window_s: float = Field(
        default=10.0,
        ge=2,
        le=60,
        description="Recent pitch, loudness and speaking rate are measured on this many "
        "last seconds.",
    )
    cue_hold_s: float = Field(
        default=10.0, ge=0, description="A pace or loudness mismatch must hold this long, s."
    )
    cue_pace_ratio: float = Field(
        default=1.25,
        gt=1,
        description="Pace mismatch: one speaking rate this many times the other's or more.",
    )
    cue_loudness_db: float = Field(
        default=6.0,
        gt=0,
        description="Loudness mismatch: one speaker this many dB louder than the other, "
        "each relative to their own usual level in the call.",
    )
    cue_monologue_s: float = Field(
        default=60.0, gt=0, description="Long monologue: the other silent this long, s."
    )
    cue_silence_s: float = Field(
        default=8.0, gt=0, description="Long silence: nobody speaking for this long, s."
    )
    cue_interruption_overlap_s: float = Field(
        default=0.5,
        gt=0,
        description="Interruption: starting over the other and both speaking this long, s.",
    )

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _postgres(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql://user:password@host:port/database URL")
        return value

    @field_validator("webhook_secret", "public_base_url", "database_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("webhook_secret")
    @classmethod
    def _whsec(cls, value: str | None) -> str | None:
        if value is not None:
            from service.webhooks import secret_bytes

            secret_bytes(value)  # ValueError: refused, with what would work
        return value

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1_000_000)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process (read once from the environment)."""
    return Settings()
