"""Typed settings, read once at start from ``LICENTIA_*`` variables and passed down."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal, Self

from limits import parse_many
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from licentia.domain.webhook_targets import TargetPolicy

PLACEHOLDER_SECRETS = frozenset({"", "change-me", "changeme", "placeholder", "secret", "dev"})


def half_the_cores() -> int:
    """Half the cores this process may run on, at least one: the password checks a
    process runs at once by default. On two cores, two checks at once (each some
    160 ms of one core, 64 MiB of memory streamed three times) slowed every other
    request of the machine, even at a lower priority (docs/benchmarks.md)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // 2)


class Settings(BaseSettings):
    """Everything an operator can set. Unsafe values are refused outside development."""

    model_config = SettingsConfigDict(env_prefix="LICENTIA_", env_file=None, extra="ignore")

    # Production unless declared otherwise: development's conveniences (a master key
    # file created on first run, placeholder keys tolerated) must be asked for.
    environment: Literal["development", "production"] = "production"
    database_url: str = "sqlite:///var/licentia.db"
    master_key: SecretStr | None = None
    master_key_file: Path = Path("var/master.key")
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""  # empty: http://<host>:<port>, where `licentia serve` listens
    session_ttl_minutes: int = 8 * 60
    database_pool_size: int = 10
    sweep_seconds: float = 30.0  # the seat lease sweep's period (a periodic job; 0: none)
    # How often this process renews the automatic subscriptions that are due (0: never;
    # another node must). Several nodes may: each renewal happens once.
    subscription_renew_seconds: float = Field(default=60.0, ge=0)
    # Durable jobs (docs/operations.md): how often this process looks for due jobs (0: it
    # runs none; another node must), how long a claimed job is leased to its worker (a
    # job whose node died runs again after that), and how long done jobs are kept.
    job_poll_seconds: float = Field(default=1.0, ge=0)
    job_lease_seconds: float = Field(default=120.0, gt=0)
    job_retention_days: int = Field(default=7, ge=1)
    reminder_seconds: float = Field(default=3600.0, ge=0)  # expiry reminders' period; 0: none
    # An order adding more licenses than this is answered 202 and issued by a job.
    order_synchronous_licenses: int = Field(default=1000, ge=1, le=1000)
    order_issue_batch: int = Field(default=500, ge=1, le=1000)  # licenses per transaction
    # Webhooks (docs/integrations.md): how long this process waits between rounds when
    # it commits no event (0: it delivers none; another node must), and how long a
    # receiver may take to answer.
    webhook_poll_seconds: float = Field(default=1.0, ge=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # How long a claim of deliveries is this process's own: a dead process's deliveries
    # are sent again once it ends (a claim sends up to 20, one after the other).
    webhook_lease_seconds: float = Field(default=300.0, gt=0)
    # Webhook receivers (docs/security.md): public https addresses only, unless these
    # allow plain http and non-public networks (comma-separated networks, or "*" for
    # every private, loopback, link-local and unique-local address).
    webhook_allow_http: bool = False
    webhook_allowed_networks: str = ""
    credential_cache_seconds: float = 2.0
    threads: int = 40  # requests that run blocking code at once, per process
    # argon2id checks at once, per process: half the cores it may run on, at least one
    password_checks: int = Field(default_factory=half_the_cores, ge=1)
    # Mail: "file:<folder>" writes each message there and to the log (development);
    # "smtp://[user:password@]host[:port]" sends it (add "?starttls" for STARTTLS).
    mail_url: str = "file:var/mail"
    mail_from: str = "Licentia <licentia@localhost>"
    mail_templates_dir: Path | None = None  # per-vendor overrides: <dir>/<vendor slug>/<name>
    # Peers whose X-Forwarded-For / X-Forwarded-Proto `licentia serve` believes (the
    # proxy in front): comma-separated IPs or networks, "*" for any. Empty, the default:
    # the headers are ignored, since anyone can send them.
    trusted_proxies: str = ""
    # Connections (server/api/connections.py): a request's headers and body must arrive
    # in time, and one process holds a bounded number of connections, per address too.
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    body_timeout_seconds: float = Field(default=60.0, gt=0)
    keep_alive_seconds: int = Field(default=5, ge=1)
    # `licentia serve --workers N`: a worker that does not answer its supervisor's
    # ping within this time is killed and started again (with its requests in flight).
    worker_healthcheck_seconds: int = Field(default=30, ge=1)
    max_connections: int = Field(default=1000, ge=1)
    max_connections_per_address: int = Field(default=100, ge=0)  # 0: no cap
    # Push streams (server/push, docs/operations.md#push-streams): each holds a
    # connection, so a process holds at most push_stream_cap of them (/healthz and
    # ordinary requests keep the rest of max_connections); 0 turns push off.
    push_max_streams: int = Field(default=500, ge=0)
    push_streams_per_device: int = Field(default=4, ge=1)
    push_keepalive_seconds: int = Field(default=15, ge=1)
    push_stream_seconds: float = Field(default=900.0, gt=0)
    hsts_seconds: int = Field(default=365 * 86400, ge=0)  # 0: no Strict-Transport-Security
    login_failures_per_account: int = 5
    login_failures_per_address: int = 30
    login_window_minutes: int = 15
    totp_required_for_admins: bool = False  # vendor admins must turn TOTP on to act
    password_reset_minutes: int = Field(default=60, ge=5, le=24 * 60)  # a mailed reset link
    # An account's backoff: locked for the first time at its per-account failure, then
    # twice as long per further failure, never longer than the maximum.
    login_lock_minutes: int = Field(default=1, ge=1)
    login_lock_max_minutes: int = Field(default=60, ge=1)
    login_lock_reset_hours: int = Field(default=24, ge=1)  # failures forgotten after
    # Rate limits (docs/security.md): each family's limits, in the `limits` library's
    # notation ("10/minute;100/hour"; "" for none), count per client address and, apart,
    # per credential; a request counts against its route's family and its front's.
    rate_limits: bool = True  # false turns every rate limit off
    rate_limit_storage: str = "memory://"  # "redis://host:6379/0" to share among nodes
    rate_limit_strategy: Literal["fixed-window", "moving-window", "sliding-window-counter"] = (
        "fixed-window"
    )
    rate_limit_api: str = "6000/minute"
    rate_limit_pages: str = "600/minute"
    rate_limit_login: str = "10/minute;100/hour"
    rate_limit_ticket: str = "10/minute;100/hour"
    rate_limit_registration: str = "10/minute;100/hour"
    rate_limit_activation: str = "60/minute;1000/hour"
    rate_limit_password_reset: str = "5/minute;20/hour"  # noqa: S105 - not a password
    # A client refused again before its Retry-After has passed gets its refusals only
    # after this long (rate_limits/tarpit.py); 0 answers every refusal at once.
    rate_limit_hold_seconds: float = Field(default=2.0, ge=0, le=30)
    # Requests of each guessed family (login, ticket, registration, password-reset)
    # served at once per process; one more is answered 503 FAMILY_BUSY at once
    # (rate_limits/lines.py); login no more than password_checks. 0: no line. Off
    # with the rate limits.
    guesses_at_once: int = Field(default=4, ge=0)
    # Observability (docs/operations.md): logs as JSON lines or for a person to read
    # (default: console in development, JSON in production), at this level; /metrics
    # answers only a scraper that presents this bearer token (unset: 404 to everyone).
    log_format: Literal["json", "console"] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    metrics_token: SecretStr | None = None
    count_requests: bool = True  # false: no licentia_http_* series (a proxy counts them)

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < 16:
            raise ValueError("a metrics token has at least 16 characters (or is unset)")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError("a rate limit storage is memory:// or a redis:// URL")
        return value

    @field_validator(
        "rate_limit_api",
        "rate_limit_pages",
        "rate_limit_login",
        "rate_limit_ticket",
        "rate_limit_registration",
        "rate_limit_activation",
        "rate_limit_password_reset",
    )
    @classmethod
    def _limits_notation(cls, value: str) -> str:
        if value.strip():
            parse_many(value)  # a ValueError names what it could not read
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses(cls, value: str) -> str:
        for item in value.split(","):
            if item.strip() not in ("", "*"):
                ipaddress.ip_network(item.strip(), strict=False)  # ValueError names it
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        TargetPolicy.of(allow_http=False, networks=value.split(","))  # ValueError names it
        return value

    @property
    def webhook_targets(self) -> TargetPolicy:
        """Where webhooks may be delivered (``licentia.domain.webhook_targets``)."""
        return TargetPolicy.of(
            allow_http=self.webhook_allow_http, networks=self.webhook_allowed_networks.split(",")
        )

    @property
    def trusted_proxy_list(self) -> list[str]:
        """``LICENTIA_TRUSTED_PROXIES`` as a list of addresses and networks."""
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @model_validator(mode="after")
    def _default_public_url(self) -> Self:
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        return self

    @property
    def push_stream_cap(self) -> int:
        """The push streams one process may hold: ``push_max_streams``, but never more
        than nine tenths of ``max_connections``."""
        return min(self.push_max_streams, self.max_connections * 9 // 10)

    @property
    def logs_as_json(self) -> bool:
        """JSON lines unless ``LICENTIA_LOG_FORMAT`` says console, or it is unset in
        development."""
        if self.log_format is None:
            return not self.is_development
        return self.log_format == "json"

    @property
    def is_development(self) -> bool:
        return self.environment == "development"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
