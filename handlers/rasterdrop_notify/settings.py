"""Handler settings, read from environment variables once into a frozen dataclass.

Names are pinned in docs/contracts.md; the CDK stack sets exactly these.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from rasterdrop_notify.errors import ConfigurationError
from rasterdrop_notify.layout import INPUT_PREFIX, OUTPUT_PREFIX

DEFAULT_LINK_TTL_DAYS = 7
DEFAULT_MAX_INPUT_BYTES = 4 * 1024**3  # the stack's default max_input_bytes (cdk/config.py)
DEFAULT_LEASE_SECONDS = 90
DEFAULT_PRESIGN_SECONDS = 300


@dataclass(frozen=True)
class Settings:
    """Everything the notify, reject and link handlers need to know about their deployment."""

    bucket: str
    topic_arn: str
    input_prefix: str = INPUT_PREFIX
    output_prefix: str = OUTPUT_PREFIX
    link_ttl_days: float = DEFAULT_LINK_TTL_DAYS
    link_base_url: str = ""
    link_secret_arn: str = ""
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    lease_seconds: int = DEFAULT_LEASE_SECONDS
    presign_seconds: int = DEFAULT_PRESIGN_SECONDS
    output_retention_days: int = 0  # 0: results are kept until deleted

    @property
    def link_ttl_seconds(self) -> int:
        return int(self.link_ttl_days * 86400)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse and validate the handler environment; raise ConfigurationError with the name."""
        env = os.environ if env is None else env
        ttl = _number(env, "RASTERDROP_LINK_TTL_DAYS", DEFAULT_LINK_TTL_DAYS, float)
        if not 0 < ttl <= 366:
            raise ConfigurationError("RASTERDROP_LINK_TTL_DAYS must be in (0, 366]")
        presign = _number(env, "RASTERDROP_LINK_PRESIGN_SECONDS", DEFAULT_PRESIGN_SECONDS, int)
        if not 1 <= presign <= 3600:
            raise ConfigurationError("RASTERDROP_LINK_PRESIGN_SECONDS must be in [1, 3600]")
        return cls(
            bucket=env.get("RASTERDROP_BUCKET", ""),
            topic_arn=env.get("RASTERDROP_TOPIC_ARN", ""),
            input_prefix=_prefix(env, "RASTERDROP_INPUT_PREFIX", INPUT_PREFIX),
            output_prefix=_prefix(env, "RASTERDROP_OUTPUT_PREFIX", OUTPUT_PREFIX),
            link_ttl_days=ttl,
            link_base_url=env.get("RASTERDROP_LINK_BASE_URL", "").strip(),
            link_secret_arn=env.get("RASTERDROP_LINK_SECRET_ARN", "").strip(),
            max_input_bytes=_number(
                env, "RASTERDROP_MAX_INPUT_BYTES", DEFAULT_MAX_INPUT_BYTES, int
            ),
            lease_seconds=_number(
                env, "RASTERDROP_NOTIFY_LEASE_SECONDS", DEFAULT_LEASE_SECONDS, int
            ),
            presign_seconds=presign,
            output_retention_days=_number(
                env, "RASTERDROP_OUTPUT_RETENTION_DAYS", 0, int, allow_zero=True
            ),
        )

    def require(self, *names: str) -> None:
        """Fail loudly (naming the variable) when a handler needs a setting that is empty."""
        env_names = {
            "bucket": "RASTERDROP_BUCKET",
            "topic_arn": "RASTERDROP_TOPIC_ARN",
            "link_secret_arn": "RASTERDROP_LINK_SECRET_ARN",
            "link_base_url": "RASTERDROP_LINK_BASE_URL",
        }
        missing = [env_names.get(n, n) for n in names if not getattr(self, n)]
        if missing:
            raise ConfigurationError(f"missing environment variable(s): {', '.join(missing)}")


@cache
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (once per cold start)."""
    return Settings.from_env()


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "") or default
    return value if value.endswith("/") else value + "/"


def _number(env: Mapping[str, str], name: str, default, kind, *, allow_zero: bool = False):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return value
