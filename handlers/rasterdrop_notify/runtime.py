"""Process-wide singletons for the Lambda handlers: settings, boto3 clients and the clock.

Kept out of the logic modules so they stay pure; tests clear these caches between cases and
freeze the clock with ``use_clock``.
"""

from __future__ import annotations

from functools import cache

import boto3
from botocore.config import Config

from rasterdrop_notify.clock import Clock, system_clock
from rasterdrop_notify.service import Clients
from rasterdrop_notify.settings import Settings, get_settings

_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
# No automatic retries for SNS: a retried Publish whose first answer was lost is a duplicate
# email; markers.publish_once retries only what certainly sent nothing.
_SNS_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 1})
# SigV4 and virtual-hosted style give presigned URLs on the regional endpoint
# (https://<bucket>.s3.<region>.amazonaws.com/...), which never redirect.
_S3_CONFIG = _CONFIG.merge(Config(signature_version="s3v4", s3={"addressing_style": "virtual"}))

_clock: Clock = system_clock


def settings() -> Settings:
    return get_settings()


@cache
def clients() -> Clients:
    return Clients(
        s3=boto3.client("s3", config=_S3_CONFIG),
        sns=boto3.client("sns", config=_SNS_CONFIG),
        secrets=boto3.client("secretsmanager", config=_CONFIG),
    )


def clock() -> Clock:
    """The clock the handlers pass to the logic: the real one unless ``use_clock`` said."""
    return _clock


def use_clock(new: Clock) -> None:
    """Make the handlers read ``new`` for "now" (tests, sandbox) until ``reset()``."""
    global _clock
    _clock = new


def reset() -> None:
    """Forget cached settings and clients and go back to the real clock (tests, sandbox)."""
    global _clock
    get_settings.cache_clear()
    clients.cache_clear()
    _clock = system_clock
