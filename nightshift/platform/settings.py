"""Settings from the environment (prefix NIGHTSHIFT_), with an embedded default."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from nightshift.platform.retry_schedule import DEFAULT_RETRY_SCHEDULE, RetrySchedule


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NIGHTSHIFT_", extra="ignore")

    home: Path = Field(default=Path(".nightshift"), description="State folder: SQLite file, Prefect home.")
    database_url: str | None = Field(
        default=None, description="postgresql+psycopg://… in production; unset means a SQLite file in home."
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of experts' pseudonyms (HMAC); unset: a key file in home, made on first use.",
    )
    slack_token: SecretStr | None = None
    slack_token_secret: str | None = Field(
        default=None, description="Name of a Prefect Secret block holding the Slack token (if no slack_token)."
    )
    slack_base_url: str = "https://slack.com/api/"
    slack_ops_channel: str = "#nightshift-ops"
    delivery_dir: Path | None = None
    # Hosts allowed to receive webhooks over plain http (local receivers, the demo, tests).
    webhook_http_allowlist: list[str] = ["127.0.0.1", "localhost", "::1"]
    webhook_timeout_seconds: float = 10.0
    webhook_retry_schedule: RetrySchedule = Field(
        default=list(DEFAULT_RETRY_SCHEDULE),
        description="Seconds to wait after each failed webhook attempt, for endpoints without their own "
        "(a client spec's webhook_retry_schedule). At most 20 retries, 1 s to 1 day each, three days in all.",
    )
    source_allowlist: list[str] = Field(
        default=[],
        description="Hosts (names, addresses or networks like 10.0.0.0/8) a batch URL may point to even "
        "though they are not public. Empty: public addresses only.",
    )
    source_timeout_seconds: float = Field(default=60.0, gt=0, description="Timeout of each read of a batch URL.")
    max_request_bytes: int = Field(
        default=1024 * 1024, gt=0, description="Largest request body of the web service (the upload aside)."
    )
    max_upload_bytes: int = Field(
        default=5 * 1024**3, gt=0, description="Largest batch file accepted by upload or fetched from a URL."
    )
    webhook_page_bytes: int = Field(default=256 * 1024, description="Size cap of one webhook page, in bytes.")
    webhook_page_records: int = Field(default=1000, description="Most records in one webhook page.")
    webhook_lease_seconds: float = Field(
        default=300.0, description="A page claimed by a sender that died is due again after this long."
    )
    webhook_claim_pages: int = Field(
        default=32, description="Pages a sender takes per round (one claim, one bookkeeping transaction)."
    )
    webhook_endpoints_in_parallel: int = Field(default=4, description="Client endpoints sent to at once.")
    delivery_link_base: str | None = Field(
        default=None, description="Public base URL of the delivery store for file links; file:// when unset."
    )
    prefect_ui_url: str = "http://127.0.0.1:4200"
    payout_timezone: str = Field(default="UTC", description="Payroll time zone: where pay periods' midnights fall.")
    payouts_dir: Path | None = None
    data_docs_dir: Path | None = Field(
        default=None, description="Where each gate run's Great Expectations Data Docs are built."
    )
    review_part_submissions: int = Field(
        default=50_000,
        ge=1,
        description="A review round bigger than this many submissions is gated and aggregated in parts of "
        "about this size (by item), so its memory stays bounded.",
    )
    gate_worker_idle_seconds: float = Field(
        default=900.0,
        ge=0,
        description="The ingest gate's worker (Great Expectations loaded) stays this long after its last "
        "call, for the next command of this state folder; 0: each process starts and stops its own.",
    )
    local_prefect_idle_seconds: float = Field(
        default=1800.0,
        ge=0,
        description="Without PREFECT_API_URL, commands share a local Prefect API in the state folder that "
        "stops after this long without a request; 0: Prefect's temporary API for each command.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'nightshift.db').resolve()}"

    @property
    def resolved_delivery_dir(self) -> Path:
        return (self.delivery_dir or self.home / "deliveries").resolve()

    @property
    def resolved_data_docs_dir(self) -> Path:
        return (self.data_docs_dir or self.home / "data-docs").resolve()

    @property
    def resolved_payouts_dir(self) -> Path:
        return (self.payouts_dir or self.home / "payouts").resolve()

    def prepare_process_environment(self, console_log_level: str | None = None) -> None:
        """Point Prefect and GX at our state folder and silence their telemetry.

        Must run before Prefect is imported: Prefect reads its settings at import time.
        console_log_level limits what Prefect prints to the terminal; run logs still reach its API.
        """
        self.home.mkdir(parents=True, exist_ok=True)
        defaults = {
            "PREFECT_HOME": str((self.home / "prefect").resolve()),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "GX_ANALYTICS_ENABLED": "false",
            # The first migration of a new Prefect home outlasts Prefect's default start-up timeout.
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
        }
        if console_log_level:
            defaults["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = console_log_level
        for key, value in defaults.items():
            os.environ.setdefault(key, value)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (NIGHTSHIFT_…), with any overrides given: the one place they are
    read, for the composition root (nightshift.resources) and the few platform parts it cannot reach."""
    return Settings(**overrides)
