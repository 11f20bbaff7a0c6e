"""The Lambda authorizer (TOKEN type): bearer token in, tenant and usage-plan key out.

API Gateway has already refused (401) a header that does not match
``credentials.HEADER_REGEX``. Here: the record named by the token id is read (SSM
SecureString, cached per warm container for ``CACHE_SECONDS``), the secret's salted hash
compared in constant time. Answers:

- unknown id or wrong secret: ``Unauthorized`` raised → API Gateway answers 401;
- revoked token: a Deny policy → 403;
- otherwise an Allow policy for exactly the called method, ``principalId`` = tenant, the
  context the routes read (``tenant``, ``token_id``, the uploads plan and key ids for
  ``/v1/usage``) and ``usageIdentifierKey``: the uploads plan's key for ``POST
  /v1/uploads`` (its quota counts uploads per day), the reads plan's key otherwise.

The tenant always comes from the record, never from the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from rasterdrop_api import credentials
from rasterdrop_api.store import TokenRecord, read_record

UNAUTHORIZED = "Unauthorized"  # the exact message API Gateway turns into a 401
CACHE_SECONDS = 30.0  # revocation takes effect within this time (README)
UPLOAD_ROUTE = ("POST", "v1/uploads")

_cache: dict[str, tuple[float, TokenRecord | None]] = {}
_lock = threading.Lock()


class Unauthorized(Exception):
    def __init__(self) -> None:
        super().__init__(UNAUTHORIZED)


def authorize(
    event: dict[str, Any],
    ssm: Any,
    parameter_prefix: str,
    *,
    monotonic: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """The authorizer's answer for one TOKEN event (see the module docstring)."""
    try:
        parsed = credentials.parse_header(event.get("authorizationToken"))
    except credentials.BadToken:
        raise Unauthorized() from None
    record = _record(ssm, parameter_prefix, parsed.token_id, monotonic)
    if record is None or not credentials.matches(parsed, record.salt, record.sha256):
        raise Unauthorized()
    method_arn = str(event.get("methodArn", ""))
    if record.revoked_at:
        return _policy(record.tenant, "Deny", method_arn)
    kind = "uploads" if route_of(method_arn) == UPLOAD_ROUTE else "reads"
    usage = record.usage.get(kind)
    uploads = record.usage.get("uploads")
    if usage is None or uploads is None:
        return _policy(record.tenant, "Deny", method_arn)  # a record without its plans
    answer = _policy(record.tenant, "Allow", method_arn)
    answer["context"] = {
        "tenant": record.tenant,
        "token_id": record.token_id,
        "uploads_plan_id": uploads.plan_id,
        "uploads_key_id": uploads.key_id,
    }
    answer["usageIdentifierKey"] = usage.key
    return answer


def route_of(method_arn: str) -> tuple[str, str]:
    """``arn:aws:execute-api:r:a:api/stage/POST/v1/uploads`` → ``("POST", "v1/uploads")``."""
    resource = method_arn.split(":", 5)[-1]
    parts = resource.split("/", 3)
    if len(parts) < 3:
        return ("", "")
    return (parts[2], parts[3] if len(parts) > 3 else "")


def _policy(principal: str, effect: str, method_arn: str) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
            ],
        },
    }


def _record(
    ssm: Any, prefix: str, token_id: str, monotonic: Callable[[], float]
) -> TokenRecord | None:
    with _lock:
        hit = _cache.get(token_id)
        if hit is not None and monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
    record = read_record(ssm, prefix, token_id)
    with _lock:
        _cache[token_id] = (monotonic(), record)
    return record


def clear_cache() -> None:
    with _lock:
        _cache.clear()
