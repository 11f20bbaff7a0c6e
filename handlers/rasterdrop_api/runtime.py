"""The API handlers' process-wide clients and settings (the notifier's clock seam)."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from rasterdrop_api.settings import ApiSettings, get_settings
from rasterdrop_notify import runtime as notify_runtime

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 3})
# SigV4 and virtual-hosted style: presigned POSTs and links on the regional endpoint.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))

clock = notify_runtime.clock


def settings() -> ApiSettings:
    return get_settings()


@cache
def client(service: str) -> Any:
    return boto3.client(service, config=_S3_CONFIG if service == "s3" else _CONFIG)


def reset() -> None:
    get_settings.cache_clear()
    client.cache_clear()
