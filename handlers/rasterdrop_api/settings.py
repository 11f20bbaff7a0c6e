"""The API handlers' settings: the notifier's (bucket, prefixes, links, size cap) plus theirs.

Extra variables (docs/contracts.md, "The tenants' API"): ``RASTERDROP_MODEL_NAME`` (the
model predict jobs use: its ``current.json`` names the run a status looks for),
``RASTERDROP_UPLOAD_URL_SECONDS`` (lifetime of a presigned POST, default 300) and
``RASTERDROP_TOKEN_PARAMETER_PREFIX`` (where token records live; the authorizer's only
variable).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from rasterdrop_notify.errors import ConfigurationError
from rasterdrop_notify.settings import Settings

DEFAULT_UPLOAD_URL_SECONDS = 300
#: S3 refuses a browser-based POST upload above 5 GB; rasterdrop's own cap is below it.
S3_POST_MAX_BYTES = 5 * 1024**3


@dataclass(frozen=True)
class ApiSettings:
    base: Settings
    model_name: str = "demo"
    upload_url_seconds: int = DEFAULT_UPLOAD_URL_SECONDS
    token_parameter_prefix: str = ""

    @property
    def max_upload_bytes(self) -> int:
        return min(self.base.max_input_bytes, S3_POST_MAX_BYTES)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiSettings:
        env = os.environ if env is None else env
        raw = env.get("RASTERDROP_UPLOAD_URL_SECONDS", "").strip()
        try:
            seconds = int(raw) if raw else DEFAULT_UPLOAD_URL_SECONDS
        except ValueError as exc:
            raise ConfigurationError("RASTERDROP_UPLOAD_URL_SECONDS must be an integer") from exc
        if not 1 <= seconds <= 7 * 86400:
            raise ConfigurationError("RASTERDROP_UPLOAD_URL_SECONDS must be in [1, 604800]")
        return cls(
            base=Settings.from_env(env),
            model_name=env.get("RASTERDROP_MODEL_NAME", "").strip() or "demo",
            upload_url_seconds=seconds,
            token_parameter_prefix=env.get("RASTERDROP_TOKEN_PARAMETER_PREFIX", "").strip(),
        )


@cache
def get_settings() -> ApiSettings:
    return ApiSettings.from_env()
