"""The link-signing key ring, read from Secrets Manager once per cold start and cached.

Secret string formats accepted (docs/contracts.md):
- JSON ``{"keys": ["newest", "older", ...]}``: rotation; sign with the first, accept all;
- JSON ``{"key": "..."}`` (what CDK's ``generate_string_key="key"`` produces), optionally with
  ``"previous": "..."``;
- a bare string.
Every key must be at least 32 bytes. Key material is never logged or echoed.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from rasterdrop_notify.errors import ConfigurationError
from rasterdrop_notify.tokens import MIN_SECRET_BYTES

DEFAULT_MAX_AGE_S = 3600.0

_lock = threading.Lock()
_cache: dict[str, tuple[float, tuple[bytes, ...]]] = {}


def parse_secret(secret_string: str) -> tuple[bytes, ...]:
    """Signing keys in order (first signs), validated; ConfigurationError without echoing them."""
    text = secret_string.strip()
    keys: list[Any]
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError("link secret is not valid JSON") from exc
        if isinstance(doc.get("keys"), list):
            keys = list(doc["keys"])
        elif "key" in doc:
            keys = [doc["key"]] + ([doc["previous"]] if doc.get("previous") else [])
        else:
            raise ConfigurationError('link secret JSON needs "keys" or "key"')
    else:
        keys = [text]
    if not keys or not all(isinstance(k, str) for k in keys):
        raise ConfigurationError("link secret keys must be strings")
    encoded = tuple(k.encode("utf-8") for k in keys)
    if any(len(k) < MIN_SECRET_BYTES for k in encoded):
        raise ConfigurationError(f"every link secret key must be at least {MIN_SECRET_BYTES} bytes")
    return encoded


def load_keys(
    secrets_client: Any,
    secret_id: str,
    *,
    max_age_s: float = DEFAULT_MAX_AGE_S,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bytes, ...]:
    """The key ring for ``secret_id``, fetched at most once per ``max_age_s`` per process."""
    with _lock:
        hit = _cache.get(secret_id)
        if hit and clock() - hit[0] < max_age_s:
            return hit[1]
        if not secret_id:
            raise ConfigurationError("missing environment variable RASTERDROP_LINK_SECRET_ARN")
        value = secrets_client.get_secret_value(SecretId=secret_id)
        keys = parse_secret(value.get("SecretString") or "")
        _cache[secret_id] = (clock(), keys)
        return keys


def clear_cache() -> None:
    with _lock:
        _cache.clear()
