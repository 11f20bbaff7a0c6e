"""Signed, expiring link tokens naming exactly one object.

Format: ``b64url(payload) + "." + b64url(HMAC-SHA256(key, "rasterdrop.link/1." + b64url(payload)))``
with ``payload = {"k": <bucket-relative key>, "e": <expiry, epoch seconds>}`` as compact JSON,
no padding. The MAC covers the encoded payload, so changing the key or the expiry by a single
byte invalidates it; comparisons are constant-time (``hmac.compare_digest``). Verification
accepts any key of a key ring (rotation), signing always uses the first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass

from rasterdrop_notify.errors import ExpiredToken, InvalidToken

CONTEXT = b"rasterdrop.link/1."
MAX_TOKEN_CHARS = 4096
MIN_SECRET_BYTES = 32


@dataclass(frozen=True)
class LinkClaim:
    key: str
    expires_at: int


def sign_token(key: str, expires_at: int, secrets: Sequence[bytes]) -> str:
    """A token for ``key`` valid until ``expires_at`` (epoch s), signed with ``secrets[0]``."""
    if not secrets:
        raise ValueError("no signing key")
    payload = json.dumps(
        {"k": key, "e": int(expires_at)}, separators=(",", ":"), ensure_ascii=False
    )
    body = _b64encode(payload.encode("utf-8"))
    return f"{body}.{_b64encode(_mac(secrets[0], body))}"


def verify_token(token: str, secrets: Sequence[bytes], now: float) -> LinkClaim:
    """The claim of an authentic, unexpired token.

    Raises InvalidToken for anything malformed, forged or altered (checked first, so a forged
    token never learns whether it would have been expired) and ExpiredToken afterwards.
    """
    if not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise InvalidToken("malformed token")
    body, signature = token.split(".")
    try:
        given = _b64decode(signature)
    except ValueError as exc:
        raise InvalidToken("malformed signature") from exc
    # Compare against every key, without an early exit, so timing does not reveal which matched.
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(_mac(secret, body), given)
    if not matched:
        raise InvalidToken("bad signature")
    try:
        claim = json.loads(_b64decode(body).decode("utf-8"))
        key, expires_at = claim["k"], claim["e"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidToken("malformed payload") from exc
    if not isinstance(key, str) or not key or type(expires_at) is not int:
        raise InvalidToken("malformed payload")
    if now >= expires_at:
        raise ExpiredToken("token expired")
    return LinkClaim(key=key, expires_at=expires_at)


def _mac(secret: bytes, body: str) -> bytes:
    return hmac.new(secret, CONTEXT + body.encode("ascii"), hashlib.sha256).digest()


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or not text.isascii():
        raise ValueError("empty or non-ascii base64")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("bad base64") from exc
    if _b64encode(raw) != text:  # only the canonical spelling: no alternative token strings
        raise ValueError("non-canonical base64")
    return raw
